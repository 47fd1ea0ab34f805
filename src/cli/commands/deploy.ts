import path from 'node:path';
import {Command, Option, UsageError} from 'clipanion';
import type {Config} from '../../config/types.ts';
import {ControlClient} from '../../control/client.ts';
import type {DeployPlanView, DeployResult, ProgressEvent, StatusResult} from '../../control/protocol.ts';
import {describeDeployPlan} from '../../deploy/dry-run.ts';
import {generateReleaseId, validateReleasePath} from '../../deploy/release.ts';
import {ErrorCode} from '../../errors/codes.ts';
import {isRollbridgeError} from '../../errors/rollbridge-error.ts';
import {ensureDaemon, isOtherBuild, parseStartTimeout, replaceDaemon} from '../daemon-launcher.ts';
import {snapshotFromStateFile, snapshotFromStatus} from '../dry-run.ts';
import {findLegacyDaemon} from '../../takeover/legacy-daemon.ts';
import type {LegacyDaemon} from '../../takeover/legacy-daemon.ts';
import type {EnsureDaemonOptions} from '../daemon-launcher.ts';
import {formatUpgrade, upgradeFromLegacyDaemon} from '../legacy-upgrade.ts';
import {isReleaseId} from '../options.ts';
import {formatDuration, plural} from '../render.ts';
import {StreamingCommand} from '../streaming-command.ts';

export class DeployCommand extends StreamingCommand {
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

      \`--skip-if-active\` makes the deploy idempotent: when the release id is already the active release
      with the same release path and revision, nothing happens and the result says \`"skipped": true,
      "changed": false\` (decided by the daemon in its deploy queue, so a concurrent deploy cannot slip
      in between). It needs \`--release-id\` or \`--revision\`.

      \`--dry-run\` prints the plan (what starts, on which ports, what is kept, replaced and drained) and
      changes nothing. It works without a daemon too, and then starts none, even with
      \`--ensure-daemon\`: the plan comes from the config and the state file (the processes a daemon
      started now would re-adopt), or "no daemon running; everything starts fresh".

      Prints each phase on a terminal as it happens: each process as it starts (with its policy, pid and
      port) and becomes ready, and each wait as it starts with what is waited for (a readiness check, the
      health check's URL and timeout, a hook, the deploy queue and what holds it), the wait in progress
      with a live elapsed time. JSON (\`{status, changed, activeReleaseId, previousReleaseId, …}\`) with
      \`--json\` or when stdout is not a terminal, as rollbridge 0.1 did. \`--stream\` prints one NDJSON line
      per phase as it happens (a wait as \`"phase": "waiting"\`), then the result line. The JSON result of a
      deploy that ran also carries \`timings\` (the daemon's time by step, ms) and \`cliTimings\` (this
      command's own start, config, connect and request, ms): docs/schemas/common.schema.json describes each.

      With \`--ensure-daemon\`, a running rollbridge 0.1 daemon of this application (on \`control.path\`, or
      on 0.1's default \`/tmp/rollbridge-<application>.sock\` when the config sets none) is upgraded in the
      same command: a daemon of this build starts the release beside it, health-checks it, has the 0.1
      daemon let go, binds the proxy port and switches; the result carries \`upgrade\` (the port gap,
      the 0.1 processes stopped). See docs/migrating-from-0.1.md.

      \`--canary <percent> [--canary-window <duration>]\` (default window 60s): once healthy, the new release
      takes that share of the clients (1-99), sticky per client (the \`rollbridge-canary\` cookie the proxy
      sets, else a hash of the client address: the last X-Forwarded-For address from a trusted peer, or the
      connection's). Over the window the 5xx share and p95 latency of both releases are compared; the canary
      is then promoted (the full switch follows; the result's \`canary\` has the figures) or rolled back
      (exit 1, ERR_CANARY_REJECTED with the figures in \`details.canary\`). The rules and their \`canary.*\`
      keys: docs/operations.md "Canary deploys".

      A proxied process with \`switch: "hold"\` never runs beside its previous copy: new requests are held,
      the previous web process drains and stops, the new one starts and passes its health check, traffic
      switches and the held requests go on, within \`holdTimeoutMs\`; otherwise the previous one starts
      again and gets them. The result's \`switchHold.heldMs\` says how long requests were held.

      Exit codes: \`0\` the new release serves traffic; \`1\` the deploy failed and the previous release
      still serves (the error shows the failed process's or hook's last output lines, \`details.output\`
      with \`--json\`). A failing \`hooks.afterSwitch\` runs after the switch, which stands: the exit code
      stays \`0\`, a terminal shows the hook as failed with its output on stderr, and the JSON result
      has \`hooks[].ok: false\` with its \`exitCode\` and \`output\`.
    `,
    examples: [
      [`Deploy the release in ./releases/42`, `$0 deploy --release-path ./releases/42`],
      [`Deploy with an explicit id and revision, starting the daemon if needed`, `$0 deploy --release-path /srv/app/releases/42 --release-id 42 --revision 3f2a9c1 --ensure-daemon`],
      [`Deploy only if release 42 is not already the active one (idempotent)`, `$0 deploy --release-path /srv/app/releases/42 --release-id 42 --skip-if-active --json`],
      [`Upgrade from a running rollbridge 0.1 daemon and deploy, with the unchanged config`, `$0 deploy --release-path /srv/app/releases/43 --release-id 43 --ensure-daemon`],
      [`Fail at once if another deploy is running`, `$0 deploy --release-path ./current --no-wait`],
      [`Show what a deploy would do, changing nothing (works without a daemon)`, `$0 deploy --release-path ./releases/43 --dry-run`],
      [`Stream each phase as NDJSON for a CI log or a wrapper`, `$0 deploy --release-path ./releases/43 --json --stream`],
      [`Watch the new release for 30 s and switch back automatically on trouble`, `$0 deploy --release-path ./releases/43 --watch 30s`],
      [`Send 10% of the clients to the new release for 5 minutes, then promote or roll back by itself`, `$0 deploy --release-path ./releases/43 --canary 10 --canary-window 5m`],
    ],
  });

  releasePath = Option.String(`--release-path`, {required: true, description: `Directory of the prepared release (made absolute against the current directory)`});
  releaseId = Option.String(`--release-id`, {validator: isReleaseId, description: `Release id (default: --revision, else the UTC time as 17 digits)`});
  revision = Option.String(`--revision`, {description: `Revision recorded with the release (default: the release id)`});
  ensure = Option.Boolean(`--ensure-daemon`, false, {description: `Start a detached daemon first when none is running and take over from a running rollbridge 0.1 daemon (never with --dry-run)`});
  skipIfActive = Option.Boolean(`--skip-if-active`, false, {description: `Do nothing when this release id is already active with the same release path and revision ("changed": false)`});
  wait = Option.Boolean(`--wait`, true, {description: `Queue behind a running deploy (--no-wait fails at once with ERR_DAEMON_BUSY)`});
  skipHealthCheck = Option.Boolean(`--skip-health-check`, false, {description: `Switch without waiting for the health check, only for the port to accept connections (emergencies only; logged)`});
  skipBeforeSwitch = Option.Boolean(`--skip-before-switch`, false, {description: `Do not run hooks.beforeSwitch (e.g. migrations) for this deploy (logged)`});
  watch = Option.String(`--watch`, {description: `Keep the previous release warm this long after the switch (e.g. 30s) and switch back if the new web process exits, fails its health check or answers too many 5xx (default: watch.windowMs)`});
  canary = Option.String(`--canary`, {description: `Send this percentage of the clients (1-99) to the new release first, judge it over --canary-window, then promote or roll back (exit 1, ERR_CANARY_REJECTED)`});
  canaryWindow = Option.String(`--canary-window`, {description: `With --canary: how long both releases are compared (e.g. 60s, 5m; default 60s)`});
  dryRun = Option.Boolean(`--dry-run`, false, {description: `Print the plan (what starts, which ports, what drains, what stops) and change nothing; needs no daemon`});
  daemonLogPath = Option.String(`--daemon-log-path`, {description: `With --ensure-daemon: where the daemon's output is appended`});
  daemonPidPath = Option.String(`--daemon-pid-path`, {description: `With --ensure-daemon: where the daemon's pid is written`});
  daemonStartTimeoutMs = Option.String(`--daemon-start-timeout-ms`, {description: `With --ensure-daemon: how long to wait for the daemon, in ms`});
  daemonRuntimePath = Option.String(`--daemon-runtime-path`, {hidden: true, description: `Accepted for compatibility with rollbridge 0.1; ignored`});

  async run(): Promise<number> {
    // Since the process started (performance's time origin): the runtime's start and module loading.
    const runStartedAt = performance.now();
    const watchMs = this.parseDuration(`--watch`, this.watch);
    const canaryPercent = parseCanaryPercent(this.canary);
    const canaryWindowMs = this.parseDuration(`--canary-window`, this.canaryWindow);
    if (canaryWindowMs !== undefined && canaryPercent === undefined) throw new UsageError(`--canary-window goes with --canary <percent>`);
    if (canaryWindowMs === 0) throw new UsageError(`Invalid value for --canary-window: the window must be longer than 0 (got "${this.canaryWindow}")`);
    if (this.skipIfActive && this.releaseId === undefined && this.revision === undefined) {
      throw new UsageError(`--skip-if-active needs --release-id or --revision: a generated release id is never the active one`);
    }
    const config = await this.loadConfig({notices: true});
    const configLoadedAt = performance.now();
    if (this.dryRun) return this.#dryRun(config);
    // One listener for the whole command: the wait for a daemon it starts, then the deploy's phases.
    const onProgress = this.progressListener(formatPhase);
    if (this.ensure) {
      const launch = {logPath: this.daemonLogPath, pidPath: this.daemonPidPath, startTimeoutMs: parseStartTimeout(this.daemonStartTimeoutMs), onProgress};
      // A rollbridge 0.1 daemon serving this app (on control.path or 0.1's default socket) is taken over.
      const legacy = await findLegacyDaemon(config);
      if (legacy !== null) return this.#upgrade(config, legacy, launch);
      const {status} = await ensureDaemon(config, this.context, launch);
      // A daemon of another build (an upgrade) is replaced first, without downtime (product §8).
      if (isOtherBuild(status)) {
        const runtime = status.daemonRuntime as {version?: string; commit?: string};
        this.context.stderr.write(`Replacing the rollbridge daemon of build ${runtime.version}+${runtime.commit} with this build before deploying\n`);
        await replaceDaemon(config, this.context, launch);
      }
    }
    const connectStartedAt = performance.now();
    const client = await this.connect(config);
    const requestStartedAt = performance.now();
    let result: DeployResult;
    try {
      result = await client.call(`deploy`, {
        releasePath: path.resolve(this.context.cwd, this.releasePath),
        ...(this.releaseId !== undefined ? {releaseId: this.releaseId} : {}),
        ...(this.revision !== undefined ? {revision: this.revision} : {}),
        wait: this.wait,
        skipHealthCheck: this.skipHealthCheck,
        ...(this.skipBeforeSwitch ? {skipBeforeSwitch: true} : {}),
        ...(this.skipIfActive ? {skipIfActive: true} : {}),
        ...(watchMs !== undefined ? {watchMs} : {}),
        ...(canaryPercent !== undefined ? {canaryPercent} : {}),
        ...(canaryWindowMs !== undefined ? {canaryWindowMs} : {}),
      }, {onProgress});
    } finally {
      client.close();
    }
    if (!this.human) {
      const cliTimings = {startMs: runStartedAt, configMs: configLoadedAt - runStartedAt, connectMs: requestStartedAt - connectStartedAt, requestMs: performance.now() - requestStartedAt};
      // With the daemon's timings (a deploy that ran; not a skipped one), the CLI's own beside them.
      const timed = result.timings === undefined ? {} : {cliTimings: Object.fromEntries(Object.entries(cliTimings).map(([key, ms]) => [key, Math.round(ms * 10) / 10]))};
      this.writeSuccess({changed: result.changed ?? true, ...result, ...timed});
    } else if (result.skipped) {
      this.writeLine(`✓ release ${result.releaseId} is already active with the same release path and revision; nothing was changed`);
    } else {
      this.writeLine(`✓ release ${result.activeReleaseId} is active (previous: ${result.previousReleaseId ?? `none`}) in ${formatDuration(result.durationMs)}`);
      if (result.canary) this.writeLine(`  canary promoted after ${formatDuration(result.canary.durationMs)} at ${result.canary.percent}%: ${result.canary.reason}`);
      if (result.switchHold) this.writeLine(`  requests were held ${formatDuration(result.switchHold.heldMs)} for the switch (limit ${formatDuration(result.switchHold.holdTimeoutMs)})`);
      // The switch stands when hooks.afterSwitch fails (exit code 0), but a terminal must not read it as success.
      for (const hook of result.hooks ?? []) if (hook.hook === `afterSwitch` && !hook.ok) this.context.stderr.write(formatFailedAfterSwitch(hook, result.activeReleaseId));
    }
    return 0;
  }

  async #upgrade(config: Config, legacy: LegacyDaemon, launch: EnsureDaemonOptions): Promise<number> {
    this.context.stderr.write(`Taking over from the rollbridge ${legacy.version ?? `0.1`} daemon${legacy.pid === null ? `` : ` (pid ${legacy.pid})`} on ${legacy.socketPath}: it and its processes (${legacy.plan.processes.length} in all) stop once release ${this.releaseId ?? `(new)`} serves\n`);
    const report = await upgradeFromLegacyDaemon(config, this.context, legacy, {
      release: {releasePath: path.resolve(this.context.cwd, this.releasePath), releaseId: this.releaseId, revision: this.revision},
      launch,
      onProgress: launch.onProgress,
      log: this.stderrLogger(),
    });
    if (this.human) {
      this.writeLine(`✓ ${formatUpgrade(report)} (took ${formatDuration(report.durationMs)})`);
    } else {
      this.context.stderr.write(`${formatUpgrade(report)}\n`);
      const {phases, ...upgrade} = report;
      this.writeSuccess({
        changed: true,
        activeReleaseId: report.activeReleaseId,
        previousReleaseId: report.from.activeReleaseId,
        releaseId: report.activeReleaseId,
        durationMs: report.durationMs,
        phases,
        upgrade,
      });
    }
    return 0;
  }

  /** The plan: from the daemon when ours runs, else from the config and the state file. Starts nothing. */
  async #dryRun(config: Config): Promise<number> {
    const releasePath = path.resolve(this.context.cwd, this.releasePath);
    const client = await tryConnect(config);
    if (client === null) return this.#localDryRun(config, releasePath, null);
    let result: DeployResult;
    try {
      const status = await client.call(`status`, {});
      // A rollbridge 0.1 daemon knows no dry run (it would deploy): plan here from what it reports.
      if (status.daemon === undefined) return this.#localDryRun(config, releasePath, status);
      result = await client.call(`deploy`, {
        releasePath,
        ...(this.releaseId !== undefined ? {releaseId: this.releaseId} : {}),
        ...(this.revision !== undefined ? {revision: this.revision} : {}),
        skipHealthCheck: this.skipHealthCheck,
        ...(this.skipBeforeSwitch ? {skipBeforeSwitch: true} : {}),
        ...(this.skipIfActive ? {skipIfActive: true} : {}),
        dryRun: true,
      });
    } finally {
      client.close();
    }
    if (result.plan === undefined) throw new Error(`Assertion failed: the daemon answered a dry run without a plan`);
    this.#writePlan({changed: false, dryRun: true, daemonRunning: true, ...result}, result.plan, null);
    return 0;
  }

  #localDryRun(config: Config, releasePath: string, legacyStatus: StatusResult | null): number {
    const startedAt = performance.now();
    validateReleasePath(releasePath);
    const source = legacyStatus === null ? snapshotFromStateFile(config) : {running: snapshotFromStatus(legacyStatus), statePath: null, adoptable: 0};
    const releaseId = this.releaseId ?? this.revision ?? generateReleaseId();
    const plan = describeDeployPlan({config, releaseId, releasePath, skipHealthCheck: this.skipHealthCheck, skipBeforeSwitch: this.skipBeforeSwitch, running: source.running});
    const activeReleaseId = source.running.active?.releaseId ?? null;
    const note = legacyStatus !== null
      ? `a rollbridge 0.1 daemon is running (it cannot dry-run); planned from its status`
      : source.adoptable === 0
        ? `no daemon running; everything starts fresh`
        : `no daemon running; a daemon started now re-adopts the ${source.adoptable === 1 ? `1 process` : `${source.adoptable} processes`} still running from ${source.statePath}`;
    this.#writePlan({
      changed: false,
      dryRun: true,
      daemonRunning: legacyStatus !== null,
      activeReleaseId,
      previousReleaseId: activeReleaseId,
      releaseId,
      durationMs: Math.round(performance.now() - startedAt),
      plan,
    }, plan, note);
    return 0;
  }

  #writePlan(result: Record<string, unknown> & {skipped?: boolean}, plan: DeployPlanView, note: string | null): void {
    if (!this.human) {
      this.writeSuccess(result);
      return;
    }
    if (note !== null) this.writeLine(note);
    if (result.skipped) this.writeLine(`release ${plan.releaseId} is already active with the same release path and revision: --skip-if-active would do nothing`);
    this.writeLine(formatPlan(plan));
  }
}

/** A client of the daemon on control.path, or null when none runs there. */
async function tryConnect(config: Config): Promise<ControlClient | null> {
  try {
    return await ControlClient.connect(config.control.path);
  } catch (error) {
    if (isRollbridgeError(error) && error.code === ErrorCode.DAEMON_UNREACHABLE) return null;
    throw error;
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

/** A failed hooks.afterSwitch on a terminal: what failed, that the release still serves, and its output. */
export function formatFailedAfterSwitch(hook: NonNullable<DeployResult[`hooks`]>[number], activeReleaseId: string | null): string {
  const how = hook.timedOut ? `timed out` : hook.signal ? `was killed by ${hook.signal}` : `exited with code ${String(hook.exitCode)}`;
  let text = `✗ hooks.afterSwitch failed: it ${how} after ${formatDuration(hook.durationMs)}; release ${String(activeReleaseId)} stays active (the switch stands)\n`;
  if (hook.output.length > 0) text += `  last ${plural(hook.output.length, `line`)} of its output:\n${hook.output.map((line) => `    | ${line}\n`).join(``)}`;
  text += `  fix: Fix the command in hooks.afterSwitch and run it by hand in the release directory; "rollbridge events" has this result too\n`;
  return text;
}

/** `--canary 10` or `10%`: an integer percentage from 1 to 99. */
function parseCanaryPercent(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d{1,2})%?$/.exec(value.trim());
  const percent = match ? Number(match[1]) : NaN;
  if (!(percent >= 1 && percent <= 99)) throw new UsageError(`Invalid value for --canary: expected a percentage of the clients from 1 to 99, such as 10 (got "${value}")`);
  return percent;
}

export function formatPhase(event: ProgressEvent): string {
  const duration = typeof event.durationMs === `number` ? ` (${formatDuration(event.durationMs)})` : ``;
  switch (event.phase) {
    case `waiting`: return `  waiting for ${String(event.detail ?? event.wait ?? `the daemon`)}`;
    case `dequeued`: return `  left the deploy queue${duration}`;
    case `daemon-listening`: return `  daemon listening (pid ${String(event.pid ?? `-`)})${duration}`;
    // The proxied process of a deploy (no policy): the line rollbridge 0.1 printed, which scripts match.
    case `started`: return event.policy === undefined
      ? `  started ${String(event.processId)} pid ${String(event.pid)} port ${String(event.port)}${duration}`
      : `  started ${String(event.processId)} (${event.policy}) pid ${String(event.pid)}${typeof event.port === `number` ? ` port ${event.port}` : ``}${duration}`;
    case `ready`: return `  ready ${String(event.processId)}${duration}`;
    case `healthy`: return `  healthy ${String(event.processId)}${duration}`;
    case `restarting`: return `  restarting ${String(event.processId)} (pid ${String(event.pid ?? `-`)})`;
    case `replaced`: return `  switched ${String(event.processId)} to pid ${String(event.pid)} port ${String(event.port)} (was pid ${String(event.previousPid ?? `-`)})${duration}`;
    case `drained`: return `  drained ${String(event.processId)} (pid ${String(event.pid ?? `-`)})${event.ok === false ? `: timed out, its remaining connections were closed` : ``}${duration}`;
    case `restarted`: return `  restarted ${String(event.processId ?? `?`)} pid ${String(event.pid ?? `-`)}${duration}`;
    case `listening`: return `  listening ${String(event.processId)} (no health check)${duration}`;
    case `switched`: return `  switched traffic to ${String(event.releaseId)}${duration}`;
    case `watching`: return `  watching ${String(event.releaseId)} (${String(event.detail ?? ``)})`;
    case `watched`: return `  watch window passed${duration}`;
    case `draining`: return `  draining ${String(event.previousReleaseId)} (${String(event.detail ?? `in the background`)})`;
    case `holding`: return `  holding new requests (${String(event.detail ?? ``)})`;
    case `previousStopped`: return `  stopped ${String(event.previousReleaseId)}'s web process (${String(event.detail ?? ``)})`;
    case `resumed`: return `  resumed: ${String(event.detail ?? ``)}`;
    case `canary`: return `  canary: ${String(event.detail ?? ``)}`;
    case `canaryJudged`: return `  ${event.ok === false ? `✗` : `✓`} canary ${String(event.detail ?? ``)}`;
    case `afterSwitch`: return event.ok === false ? `  ✗ afterSwitch failed (exit ${String(event.exitCode)})${duration}` : `  afterSwitch${duration}`;
    default: return `  ${String(event.phase)}${duration}`;
  }
}
