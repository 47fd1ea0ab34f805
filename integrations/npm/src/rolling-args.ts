import {parseArgs} from 'node:util';

export const ROLLING_USAGE = `Usage: rollbridge-rolling [--service <name>] [--dry-run] [--force] [--skip-migrations]
                          [--deploy --deploy-path <dir>] [--config <file>] [--json]

The rolling-restart orchestrator's commands on rollbridge. Without --deploy: a rolling restart of every
process (\`rollbridge restart --all --before-switch\`): hooks.beforeSwitch (the migrations) first, then each
process in dependsOn order, the web process without downtime, each health-checked before the next,
stopping at the first failure.

  --service <name>     Only this process (a base id such as sso.api, or an instance id such as worker#1)
  --dry-run            Print the plan, change nothing
  --force              Skip the readiness and health checks (logged by the daemon)
  --skip-migrations    Do not run hooks.beforeSwitch
  --deploy             Deploy the release in --deploy-path instead of restarting
  --deploy-path <dir>  The prepared release directory to deploy (with --deploy)
  --config <file>      rollbridge's config file (default: rollbridge.js, then rollbridge.json)
  --json               rollbridge's JSON output

package.json:  "restart:rolling": "rollbridge-rolling",  "restart:rolling:dry": "rollbridge-rolling --dry-run"
`;

/** A command line the orchestrator never accepted: printed with the usage, exit 2. */
export class RollingUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = `RollingUsageError`;
  }
}

/** The rollbridge command line for an orchestrator command line (pure). Throws RollingUsageError. */
export function toRollbridgeArgs(argv: string[]): {args: string[]; json: boolean; help: boolean} {
  let values;
  try {
    ({values} = parseArgs({
      args: argv,
      strict: true,
      options: {
        'service': {type: `string`},
        'dry-run': {type: `boolean`, default: false},
        'force': {type: `boolean`, default: false},
        'skip-migrations': {type: `boolean`, default: false},
        'deploy': {type: `boolean`, default: false},
        'deploy-path': {type: `string`},
        'config': {type: `string`, short: `c`},
        'json': {type: `boolean`, default: false},
        'help': {type: `boolean`, short: `h`, default: false},
      },
    }));
  } catch (error) {
    throw new RollingUsageError((error as Error).message);
  }
  const common = [...(values.config !== undefined ? [`--config`, values.config] : []), ...(values.json ? [`--json`] : [])];
  const shared = [...(values[`dry-run`] ? [`--dry-run`] : []), ...(values.force ? [`--skip-health-check`] : [])];
  if (values.help) return {args: [], json: values.json, help: true};
  if (values.deploy || values[`deploy-path`] !== undefined) {
    if (!values.deploy) throw new RollingUsageError(`--deploy-path needs --deploy`);
    if (values[`deploy-path`] === undefined || values[`deploy-path`] === ``) throw new RollingUsageError(`--deploy needs --deploy-path <dir>`);
    if (values.service !== undefined) throw new RollingUsageError(`--service restarts one process; it cannot be combined with --deploy`);
    return {args: [`deploy`, `--release-path`, values[`deploy-path`], ...shared, ...(values[`skip-migrations`] ? [`--skip-before-switch`] : []), ...common], json: values.json, help: false};
  }
  const selection = values.service !== undefined ? [`--process`, values.service] : [`--all`];
  return {args: [`restart`, ...selection, ...shared, ...(values[`skip-migrations`] ? [] : [`--before-switch`]), ...common], json: values.json, help: false};
}
