import path from 'node:path';
import {Command, Option} from 'clipanion';
import {BaseCommand} from '../base-command.ts';
import {ensureDaemon} from '../daemon-launcher.ts';
import {isReleaseId} from '../options.ts';
import {formatDuration} from '../render.ts';
import {parseStartTimeout} from './ensure-daemon.ts';

export class DeployCommand extends BaseCommand {
  static paths = [[`deploy`]];

  static usage = Command.Usage({
    description: `Start a release beside the running one, switch traffic once it is healthy, drain the old one`,
    details: `
      Starts the release's processes (services first, then companions, then the proxied web process on a
      fresh port), waits for the web process's health check, switches new requests and WebSocket
      upgrades to it, starts singletons, and drains the previous release in the background for up to
      \`proxy.drainTimeoutMs\`. A failure before the switch leaves the previous release serving
      untouched. Deploys, rollbacks and restarts run one at a time: a second one waits (or fails at
      once with \`--no-wait\`). The config file is re-read on every deploy.

      Prints each phase on a terminal; JSON (\`{status, activeReleaseId, previousReleaseId, …}\`) with
      \`--json\` or when stdout is not a terminal, as rollbridge 0.1 did.
    `,
    examples: [
      [`Deploy the release in ./releases/42`, `$0 deploy --release-path ./releases/42`],
      [`Deploy with an explicit id and revision, starting the daemon if needed`, `$0 deploy --release-path /srv/app/releases/42 --release-id 42 --revision 3f2a9c1 --ensure-daemon`],
      [`Fail at once if another deploy is running`, `$0 deploy --release-path ./current --no-wait`],
    ],
  });

  releasePath = Option.String(`--release-path`, {required: true, description: `Directory of the prepared release (made absolute against the current directory)`});
  releaseId = Option.String(`--release-id`, {validator: isReleaseId, description: `Release id (default: --revision, else the UTC time as 17 digits)`});
  revision = Option.String(`--revision`, {description: `Revision recorded with the release (default: the release id)`});
  ensure = Option.Boolean(`--ensure-daemon`, false, {description: `Start a detached daemon first when none is running`});
  wait = Option.Boolean(`--wait`, true, {description: `Queue behind a running deploy (--no-wait fails at once with ERR_DAEMON_BUSY)`});
  skipHealthCheck = Option.Boolean(`--skip-health-check`, false, {description: `Switch without waiting for the health check (emergencies only; logged)`});
  daemonLogPath = Option.String(`--daemon-log-path`, {description: `With --ensure-daemon: where the daemon's output is appended`});
  daemonPidPath = Option.String(`--daemon-pid-path`, {description: `With --ensure-daemon: where the daemon's pid is written`});
  daemonStartTimeoutMs = Option.String(`--daemon-start-timeout-ms`, {description: `With --ensure-daemon: how long to wait for the daemon, in ms`});
  daemonRuntimePath = Option.String(`--daemon-runtime-path`, {hidden: true, description: `Accepted for compatibility with rollbridge 0.1; ignored`});

  async run(): Promise<number> {
    const config = await this.loadConfig();
    if (this.ensure) {
      await ensureDaemon(config, this.context, {logPath: this.daemonLogPath, pidPath: this.daemonPidPath, startTimeoutMs: parseStartTimeout(this.daemonStartTimeoutMs)});
    }
    const human = !this.json && this.isTTY;
    const client = await this.connect(config);
    try {
      const result = await client.call(`deploy`, {
        releasePath: path.resolve(this.context.cwd, this.releasePath),
        ...(this.releaseId !== undefined ? {releaseId: this.releaseId} : {}),
        ...(this.revision !== undefined ? {revision: this.revision} : {}),
        wait: this.wait,
        skipHealthCheck: this.skipHealthCheck,
      }, {
        onProgress: human ? (event) => this.writeLine(formatPhase(event)) : undefined,
      });
      if (human) {
        this.writeLine(`✓ release ${result.activeReleaseId} is active (previous: ${result.previousReleaseId ?? `none`}) in ${formatDuration(result.durationMs)}`);
      } else {
        this.writeJson({status: `success`, ...result});
      }
    } finally {
      client.close();
    }
    return 0;
  }
}

export function formatPhase(event: Record<string, unknown>): string {
  const duration = typeof event.durationMs === `number` ? ` (${formatDuration(event.durationMs)})` : ``;
  switch (event.phase) {
    case `started`: return `  started ${String(event.processId)} pid ${String(event.pid)} port ${String(event.port)}${duration}`;
    case `healthy`: return `  healthy ${String(event.processId)}${duration}`;
    case `switched`: return `  switched traffic to ${String(event.releaseId)}${duration}`;
    case `draining`: return `  draining ${String(event.previousReleaseId)} (${String(event.detail ?? `in the background`)})`;
    default: return `  ${String(event.phase)}${duration}`;
  }
}
