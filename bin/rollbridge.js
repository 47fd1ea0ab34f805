#!/usr/bin/env node
// Development entry (`npm link`): runs the TypeScript sources with Node 24's type stripping.
// Hosts use the standalone binary from `npm run build` instead (see docs/operations.md).
import '../src/main.ts';
