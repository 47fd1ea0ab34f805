import fs from 'node:fs';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {Command, Option} from 'clipanion';
import {listLegacyControlPaths} from '../../config/paths.ts';
import {ControlClient} from '../../control/client.ts';
import {isLegacyDaemonStatus} from '../../control/protocol.ts';
import {probeControlSocket} from '../../control/server.ts';
import type {ProbeResult} from '../../control/server.ts';
import type {Config, LegacyTakeoverConfig} from '../../config/types.ts';
import {recoverLeftovers} from '../../takeover/recover.ts';
import {ErrorCode} from '../../errors/codes.ts';
import {RollbridgeError, isRollbridgeError} from '../../errors/rollbridge-error.ts';
import {discoverLegacyProcesses, listRunningProcesses} from '../../takeover/discover.ts';
import type {LegacyPlan, LegacyProcess} from '../../takeover/discover.ts';
import {resolveLegacyUser} from '../../takeover/legacy-user.ts';
import {stopLegacyProcesses} from '../../takeover/stop.ts';
import type {Logger} from '../../log/logger.ts';
import {BaseCommand} from '../base-command.ts';
import {plural} from '../render.ts';
import {formatLeftover} from './recover.ts';

export type PredeployCleanupAction = `daemon-active` | `daemon-stopped` | `no-daemon-cleaned`;

/** The `--json` document, as rollbridge 0.1 returned it. */
export type PredeployCleanupResult = {
  action: PredeployCleanupAction;
  legacyProcesses: Array<{pid: number; parentPid: number; args: string}>;
  recoveredOrphans: number;
};

const DAEMON_STOP_TIMEOUT_MS = 30_000;
const DAEMON_STOP_POLL_MS = 100;

export class PredeployCleanupCommand extends BaseCommand {
  static paths = [[`predeploy-cleanup`]];

  static usage = Command.Usage({
    description: `Prepare the host for a deploy script written for rollbridge 0.1: stop a stale daemon, recover orphans, stop legacy processes`,
    details: `
      Leaves everything alone when a daemon for this application already has an active release on the
      configured proxy host and port (and, with \`--release-path\`, the release ships the same
      \`node_modules/rollbridge\` version as the active one, or the daemon is a rollbridge 0.1 daemon, which the
      following \`deploy --ensure-daemon\` takes over without an outage; with no \`control.path\` in the config it
      is looked for on 0.1's default socket too). Otherwise it shuts that daemon down (waiting up to
      30 s for its control socket to disappear), stops the processes a crashed daemon left behind (as
      \`rollbridge recover --force\` does), and stops the legacy processes \`legacyTakeover\` describes: screen sessions are
      quit as their owner, then every discovered process (setsid/nohup escapees and descendants included) gets
      SIGTERM and, after \`legacyTakeover.forceStopTimeoutMs\`, SIGKILL. Fails with ERR_LEGACY_STILL_RUNNING if
      any of them survives.

      Prints the same lines as rollbridge 0.1 so deploy scripts can grep them (\`Recovered 1 Rollbridge orphaned
      process.\`, \`Stopped 2 legacy processes.\`); \`--json\` prints \`{status, changed, action, legacyProcesses:
      [{pid, parentPid, args}], recoveredOrphans}\` (\`changed\`: a daemon, an orphan or a legacy process was stopped). For a handover without an outage,
      use \`rollbridge legacy-takeover\` instead.
    `,
    examples: [
      [`Clean up before the first deploy of a release`, `$0 predeploy-cleanup --release-path /srv/app/releases/42`],
      [`The same, as JSON`, `$0 predeploy-cleanup --json`],
    ],
  });

  releasePath = Option.String(`--release-path`, {description: `Release about to be deployed: a change of its node_modules/rollbridge version restarts the daemon`});

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const log = this.stderrLogger();
    const {socketPath, probe} = await probeDaemon(config);
    let action: PredeployCleanupAction = `no-daemon-cleaned`;
    if (probe.state === `foreign`) {
      throw new RollbridgeError(ErrorCode.CONTROL_SOCKET_IN_USE, `A process that is not a rollbridge daemon listens on ${socketPath}; predeploy cleanup refused`, {
        fix: `Stop the process holding ${socketPath}, or set control.path to this application's socket`,
        details: {path: socketPath},
      });
    }
    if (probe.state === `daemon`) {
      const application = probe.status[`application`];
      if (application !== config.application) {
        throw new RollbridgeError(ErrorCode.DAEMON_APPLICATION_MISMATCH, `The rollbridge daemon on ${socketPath} serves application "${String(application)}", not "${config.application}"`, {
          fix: `Set control.path to this application's own socket, or run "rollbridge shutdown" with that application's config`,
          details: {path: socketPath, application, expected: config.application},
        });
      }
      if (isDaemonServing(probe.status, config, this.releasePath === undefined ? undefined : path.resolve(this.context.cwd, this.releasePath))) {
        return this.#report({action: `daemon-active`, legacyProcesses: [], recoveredOrphans: 0});
      }
      await stopDaemon(socketPath);
      action = `daemon-stopped`;
    }
    const recoveredOrphans = await recoverOrphans(config, log);
    const legacy = config.legacyTakeover === undefined ? [] : await this.#stopLegacy(config.legacyTakeover, log);
    return this.#report({
      action,
      legacyProcesses: legacy.map((entry) => ({pid: entry.pid, parentPid: entry.ppid, args: entry.args})),
      recoveredOrphans,
    });
  }

  async #stopLegacy(legacy: LegacyTakeoverConfig, log: Logger): Promise<LegacyProcess[]> {
    const user = resolveLegacyUser(legacy.user);
    const discover = () => discoverLegacyProcesses({screens: legacy.screens, matchers: legacy.processes, uid: user.uid, user: user.name});
    const plan = await discover();
    this.#warn(plan);
    const result = await stopLegacyProcesses(plan, {timeoutMs: legacy.forceStopTimeoutMs, log});
    // A legacy supervisor may have started new processes meanwhile: look once more.
    const rescan = await discover();
    const survivorPids = new Set(result.survivors.map((entry) => entry.pid));
    const stillRunning = [...result.survivors, ...listRunningProcesses(rescan).filter((entry) => !survivorPids.has(entry.pid))];
    if (stillRunning.length > 0) {
      throw new RollbridgeError(ErrorCode.LEGACY_STILL_RUNNING, `${plural(stillRunning.length, `legacy process`, `legacy processes`)} still running after SIGTERM and SIGKILL:\n${stillRunning.map((entry) => `${entry.pid} ${entry.args}`).join(`\n`)}`, {
        fix: `Stop them by hand (kill -9 ${stillRunning.map((entry) => entry.pid).join(` `)}) or stop whatever restarts them, then run "rollbridge predeploy-cleanup" again`,
        details: {processes: stillRunning.map((entry) => ({pid: entry.pid, args: entry.args, source: entry.source}))},
      });
    }
    return listRunningProcesses(plan);
  }

  #report(result: PredeployCleanupResult): number {
    if (this.json) {
      this.writeSuccess({changed: result.action === `daemon-stopped` || result.recoveredOrphans > 0 || result.legacyProcesses.length > 0, ...result});
      return 0;
    }
    // These lines are rollbridge 0.1's, word for word: deploy scripts grep them.
    if (result.action === `daemon-active`) {
      this.writeLine(`Rollbridge daemon already has an active release; no legacy cleanup needed.`);
      return 0;
    }
    this.writeLine(result.action === `daemon-stopped` ? `Stopped existing Rollbridge daemon before deploy.` : `No active Rollbridge daemon found.`);
    this.writeLine(`Recovered ${plural(result.recoveredOrphans, `Rollbridge orphaned process`, `Rollbridge orphaned processes`)}.`);
    this.writeLine(`Stopped ${plural(result.legacyProcesses.length, `legacy process`, `legacy processes`)}.`);
    return 0;
  }

  #warn(plan: LegacyPlan): void {
    if (this.json) return;
    for (const warning of plan.warnings) this.context.stderr.write(`warning: ${warning}\n`);
  }
}

/**
 * The daemon on control.path, else (control.path left to its default) a rollbridge 0.1 daemon on 0.1's
 * default socket: the one the script's next `deploy --ensure-daemon` takes over.
 */
async function probeDaemon(config: Config): Promise<{socketPath: string; probe: ProbeResult}> {
  const [primary, legacyDefault] = listLegacyControlPaths(config.application, config.control.path);
  const probe = await probeSocket(primary as string);
  if (probe.state !== `absent` && probe.state !== `stale`) return {socketPath: primary as string, probe};
  if (legacyDefault !== undefined) {
    const legacy = await probeSocket(legacyDefault);
    if (legacy.state === `daemon` && isLegacyDaemonStatus(legacy.status)) return {socketPath: legacyDefault, probe: legacy};
  }
  return {socketPath: primary as string, probe};
}

async function probeSocket(socketPath: string): Promise<ProbeResult> {
  try {
    return await probeControlSocket(socketPath);
  } catch (error) {
    throw new RollbridgeError(ErrorCode.DAEMON_UNREACHABLE, `Probing the control socket ${socketPath} failed (${(error as NodeJS.ErrnoException).code ?? String(error)})`, {
      fix: `Run predeploy-cleanup as the daemon's user (or root), or check control.path`,
      details: {path: socketPath},
      cause: error,
    });
  }
}

/**
 * The daemon keeps serving when it has an active release on the configured proxy address and the pending
 * release ships the same rollbridge package version as the active one (an unreadable version counts as the same).
 */
function isDaemonServing(status: Record<string, unknown>, config: Config, releasePath: string | undefined): boolean {
  const activeReleaseId = status[`activeReleaseId`];
  if (typeof activeReleaseId !== `string`) return false;
  const proxy = (status[`proxy`] ?? {}) as {host?: unknown; port?: unknown; upstreamHost?: unknown};
  if (proxy.host !== config.proxy.host || proxy.port !== config.proxy.port || proxy.upstreamHost !== config.proxy.upstreamHost) return false;
  // A serving rollbridge 0.1 daemon is left alone whatever the release ships: `deploy --ensure-daemon` takes
  // over from it without an outage (0.1 stopped it here when the release's rollbridge version changed).
  if (releasePath === undefined || isLegacyDaemonStatus(status)) return true;
  const releases = Array.isArray(status[`releases`]) ? status[`releases`] as Array<{releaseId?: unknown; releasePath?: unknown}> : [];
  const active = releases.find((release) => release.releaseId === activeReleaseId);
  const activeVersion = typeof active?.releasePath === `string` ? readPackageVersion(active.releasePath) : null;
  const pendingVersion = readPackageVersion(releasePath);
  return activeVersion === null || pendingVersion === null || activeVersion === pendingVersion;
}

function readPackageVersion(releasePath: string): string | null {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(releasePath, `node_modules`, `rollbridge`, `package.json`), `utf8`)) as {version?: unknown};
    return typeof manifest.version === `string` ? manifest.version : null;
  } catch {
    return null;
  }
}

/** Sends `shutdown` and waits until nothing answers on the socket any more. */
async function stopDaemon(socketPath: string): Promise<void> {
  try {
    const client = await ControlClient.connect(socketPath);
    try {
      await client.call(`shutdown`, {});
    } finally {
      client.close();
    }
  } catch (error) {
    // The daemon may close the connection (or already be stopping) before it answers: the poll below decides.
    if (!isRollbridgeError(error)) throw error;
  }
  const deadline = Date.now() + DAEMON_STOP_TIMEOUT_MS;
  while (true) {
    const state = (await probeSocket(socketPath)).state;
    if (state === `absent` || state === `stale`) return;
    if (Date.now() >= deadline) break;
    await delay(DAEMON_STOP_POLL_MS);
  }
  throw new RollbridgeError(ErrorCode.DAEMON_STOP_TIMEOUT, `The rollbridge daemon on ${socketPath} was asked to shut down but still answers after ${DAEMON_STOP_TIMEOUT_MS} ms`, {
    fix: `Read the daemon's log to see what it waits for, or stop it with "kill <pid>" (rollbridge status shows daemon.pid)`,
    details: {path: socketPath, timeoutMs: DAEMON_STOP_TIMEOUT_MS},
  });
}

// recover: step 3. Whatever a crashed daemon left running is stopped (recover --force); a survivor fails the cleanup.
async function recoverOrphans(config: Config, log: Logger): Promise<number> {
  const result = await recoverLeftovers({config, force: true, log});
  if (result.survivors.length > 0) {
    throw new RollbridgeError(ErrorCode.RECOVER_SURVIVORS, `Could not stop ${plural(result.survivors.length, `Rollbridge orphaned process`, `Rollbridge orphaned processes`)}:\n${result.survivors.map(formatLeftover).join(`\n`)}`, {
      fix: `Check them with "ps -o pid,user,stat,args -p ${result.survivors.flatMap((leftover) => leftover.members.length > 0 ? leftover.members : [leftover.pid]).join(`,`)}", stop them as their owner, then run "rollbridge predeploy-cleanup" again`,
      details: {...result},
    });
  }
  return result.stopped.length;
}
