// `rollbridge-rolling`: the rolling-restart orchestrator's command line (`pnpm restart:rolling`,
// `… --service <name>`, `--force`, `--skip-migrations`, `--deploy --deploy-path <dir>`, the `:dry`
// variant) translated to one rollbridge command, printed, then run like the `rollbridge` command.
import {ROLLING_USAGE, RollingUsageError, toRollbridgeArgs} from '../rolling-args.ts';
import {runInherited} from '../run-inherited.ts';

/** clipanion's exit code for a usage error, as the rollbridge binary uses. */
const EXIT_USAGE = 2;

let command: ReturnType<typeof toRollbridgeArgs>;
try {
  command = toRollbridgeArgs(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof RollingUsageError)) throw error;
  process.stderr.write(`error ERR_USAGE: ${error.message}\n\n${ROLLING_USAGE}`);
  process.exit(EXIT_USAGE);
}
if (command.help) {
  process.stdout.write(ROLLING_USAGE);
  process.exit(0);
}
if (!command.json) process.stderr.write(`rollbridge-rolling: rollbridge ${command.args.join(` `)}\n`);
runInherited(command.args, {json: command.json});
