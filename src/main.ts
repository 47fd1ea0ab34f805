import {runCli} from './cli/cli.ts';
import {createProcessContext} from './cli/context.ts';

// No top-level await: the bundle is CommonJS (one file inside the standalone binary).
void runCli(process.argv.slice(2), createProcessContext()).then((code) => {
  process.exitCode = code;
});
