import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {ErrorCode} from '../../src/errors/codes.ts';
import {renderCliDocs} from '../../scripts/gen-cli-docs.ts';
import {REPO_ROOT} from '../helpers/run-cli.ts';

test(`every error code has exactly one section in docs/errors.md, and every section is a code`, () => {
  const docs = fs.readFileSync(path.join(REPO_ROOT, `docs`, `errors.md`), `utf8`);
  const sections = [...docs.matchAll(/^## (ERR_[A-Z_]+)$/gm)].map((match) => match[1]);
  const codes = Object.values(ErrorCode);
  assert.deepEqual([...new Set(sections)].sort(), [...codes].sort());
  assert.equal(sections.length, new Set(sections).size, `no code is documented twice`);
});

test(`docs/cli.md matches the commands' usage (run "npm run docs:cli" after changing a command)`, () => {
  const docs = fs.readFileSync(path.join(REPO_ROOT, `docs`, `cli.md`), `utf8`);
  assert.equal(docs, renderCliDocs());
});
