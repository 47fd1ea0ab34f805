import path from 'node:path';
import {Command, Option} from 'clipanion';
import type {DeployPlanView} from '../../control/protocol.ts';
import {BaseCommand} from '../base-command.ts';
import {ensureDaemon, isOtherBuild, replaceDaemon} from '../daemon-launcher.ts';
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
      [`Show what a deploy would do, changing nothing`, `$0 deploy --release-path ./releases/43 --dry-run`],
      [`Watch the new release for 30 s and switch back automatically on trouble`, `$0 deploy --release-path ./releases/43 --watch 30s`],
    ],
  });

  releasePath = Option.String(`--release-path`, {required: true, description: `Directory of the prepared release (made absolute against the current directory)`});
  releaseId = Option.String(`--release-id`, {validator: isReleaseId, description: `Release id (default: --revision, else the UTC time as 17 digits)`});
  revision = Option.String(`--revision`, {description: `Revision recorded with the release (default: the release id)`});
  ensure = Option.Boolean(`--ensure-daemon`, false, {description: `Start a detached daemon first when none is running`});
  wait = Option.Boolean(`--wait`, true, {description: `Queue behind a running deploy (--no-wait fails at once with ERR_DAEMON_BUSY)`});
  skipHealthCheck = Option.Boolean(`--skip-health-check`, false, {description: `Switch without waiting for the health check (emergencies only; logged)`});
  skipBeforeSwitch = Option.Boolean(`--skip-before-switch`, false, {description: `Do not run hooks.beforeSwitch (e.g. migrations) for this deploy (logged)`});
  watch = Option.String(`--watch`, {description: `Keep the previous release warm this long after the switch (e.g. 30s) and switch back if the new web process exits, fails its health check or answers too many 5xx (default: watch.windowMs)`});
  dryRun = Option.Boolean(`--dry-run`, false, {description: `Print the plan (what starts, which ports, what drains, what stops) and change nothing`});
  daemonLogPath = Option.String(`--daemon-log-path`, {description: `With --ensure-daemon: where the daemon's output is appended`});
  daemonPidPath = Option.String(`--daemon-pid-path`, {description: `With --ensure-daemon: where the daemon's pid is written`});
  daemonStartTimeoutMs = Option.String(`--daemon-start-timeout-ms`, {description: `With --ensure-daemon: how long to wait for the daemon, in ms`});
  daemonRuntimePath = Option.String(`--daemon-runtime-path`, {hidden: true, description: `Accepted for compatibility with rollbridge 0.1; ignored`});

  async run(): Promise<number> {
    const watchMs = this.parseDuration(`--watch`, this.watch);
    const config = await this.loadConfig();
    if (this.ensure) {
      const launch = {logPath: this.daemonLogPath, pidPath: this.daemonPidPath, startTimeoutMs: parseStartTimeout(this.daemonStartTimeoutMs)};
      const {status} = await ensureDaemon(config, this.context, launch);
      // A daemon of another build (an upgrade) is replaced first, without downtime (product §8).
      if (isOtherBuild(status)) {
        const runtime = status.daemonRuntime as {version?: string; commit?: string};
        this.context.stderr.write(`Replacing the rollbridge daemon of build ${runtime.version}+${runtime.commit} with this build before deploying\n`);
        await replaceDaemon(config, this.context, launch);
      }
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
        ...(this.skipBeforeSwitch ? {skipBeforeSwitch: true} : {}),
        ...(this.dryRun ? {dryRun: true} : {}),
        ...(watchMs !== undefined ? {watchMs} : {}),
      }, {
        onProgress: human ? (event) => this.writeLine(formatPhase(event)) : undefined,
      });
      if (human && result.plan) {
        this.writeLine(formatPlan(result.plan as unknown as DeployPlanView));
      } else if (human) {
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

export function formatPlan(plan: DeployPlanView): string {
  const lines = [`Plan for release ${plan.releaseId} (${plan.releasePath}); nothing was changed:`];
  for (const process of plan.keep) lines.push(`  keep   ${process.processId} (${process.policy}, pid ${process.pid ?? `-`}, port ${process.port ?? `-`})`);
  for (const process of plan.start) lines.push(`  start  ${process.processId} (${process.policy}${process.port === null ? `` : `, port ${process.port}`})${process.healthCheck ? `, health check ${process.healthCheck}` : ``}`);
  if (plan.hooks.beforeSwitch) lines.push(`  run    hooks.beforeSwitch: ${plan.hooks.beforeSwitch}`);
  lines.push(`  switch traffic to ${plan.releaseId}`);
  for (const singleton of plan.singletons) lines.push(`  replace singleton ${singleton.processId}${singleton.replaces ? ` (stops pid ${singleton.replaces} first)` : ``}`);
  if (plan.hooks.afterSwitch) lines.push(`  run    hooks.afterSwitch: ${plan.hooks.afterSwitch}`);
  if (plan.drain) {
    lines.push(`  drain  ${plan.drain.releaseId} (${plan.drain.connections.http} http, ${plan.drain.connections.websocket} ws open; up to ${plan.drain.timeoutMs} ms)`);
    lines.push(`  stop   ${plan.drain.processes.join(`, `) || `(no processes)`} of ${plan.drain.releaseId}`);
  }
  return lines.join(`\n`);
}

export function formatPhase(event: Record<string, unknown>): string {
  const duration = typeof event.durationMs === `number` ? ` (${formatDuration(event.durationMs)})` : ``;
  switch (event.phase) {
    case `started`: return `  started ${String(event.processId)} pid ${String(event.pid)} port ${String(event.port)}${duration}`;
    case `healthy`: return `  healthy ${String(event.processId)}${duration}`;
    case `switched`: return `  switched traffic to ${String(event.releaseId)}${duration}`;
    case `watching`: return `  watching ${String(event.releaseId)} (${String(event.detail ?? ``)})`;
    case `watched`: return `  watch window passed${duration}`;
    case `draining`: return `  draining ${String(event.previousReleaseId)} (${String(event.detail ?? `in the background`)})`;
    default: return `  ${String(event.phase)}${duration}`;
  }
}
