import {runCli} from './cli/cli.ts';
import {createProcessContext} from './cli/context.ts';

process.exitCode = await runCli(process.argv.slice(2), createProcessContext());
