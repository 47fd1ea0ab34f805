import {getUpgradeControlPath} from '../config/paths.ts';
import type {Config} from '../config/types.ts';
import {ControlClient} from '../control/client.ts';
import type {ProgressOf, ResultOf} from '../control/protocol.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import type {Logger} from '../log/logger.ts';
import {retireLegacyDaemon} from '../takeover/legacy-daemon.ts';
import type {LegacyDaemon} from '../takeover/legacy-daemon.ts';
import type {CliContext} from './context.ts';
import {ensureDaemon} from './daemon-launcher.ts';
import type {EnsureDaemonOptions} from './daemon-launcher.ts';

export type UpgradeRequest = {
  /** The release to start; absent: the 0.1 daemon's active release (ensure-daemon). */
  release?: {releasePath: string; releaseId?: string | undefined; revision?: string | undefined} | undefined;
  launch: EnsureDaemonOptions;
  onProgress?: ((event: ProgressOf<`takeover`>) => void) | undefined;
  /** Warnings of the work done in this process (retiring a 0.1 daemon that serves nothing). */
  log: Logger;
};

/** What the upgrade did; the `upgrade` member of the deploy / ensure-daemon result. */
export type UpgradeReport = {
  from: {version: string | null; pid: number | null; socketPath: string; activeReleaseId: string | null};
  /** The release the new daemon serves; null when the 0.1 daemon served none (nothing was switched). */
  activeReleaseId: string | null;
  /** From the shutdown request to the 0.1 daemon until the new daemon accepted on the proxy port (0 when nothing was served). */
  portGapMs: number;
  /** The 0.1 daemon and its processes: gone by its own shutdown or SIGTERM, SIGKILLed, or still running. */
  legacy: {stopped: number; killed: number; survivors: Array<{pid: number; args: string}>};
  durationMs: number;
  phases: Array<Record<string, unknown>>;
};

/**
 * The upgrade from a running rollbridge 0.1 daemon in one command (issue 8 item 6): a daemon of this
 * build starts beside it without binding the proxy port (and on a temporary control socket when the
 * 0.1 daemon holds control.path), starts the release and health-checks it while 0.1 still serves,
 * then has the 0.1 daemon let go through its own shutdown and binds the port: `legacy-takeover`'s
 * machinery (daemon/takeover.ts), with the 0.1 daemon's processes as the legacy plan. Afterwards
 * nothing of 0.1 runs and control.path belongs to the new daemon. A failure before the switch leaves
 * 0.1 serving and stops the new daemon.
 */
export async function upgradeFromLegacyDaemon(config: Config, context: CliContext, legacy: LegacyDaemon, request: UpgradeRequest): Promise<UpgradeReport> {
  if (legacy.application !== config.application) {
    throw new RollbridgeError(ErrorCode.DAEMON_APPLICATION_MISMATCH, `The rollbridge ${legacy.version ?? `0.1`} daemon on ${legacy.socketPath} serves application "${legacy.application}", not "${config.application}"; it was left alone`, {
      fix: `Set control.path to this application's own socket, or run the upgrade with the config of "${legacy.application}"`,
      details: {path: legacy.socketPath, application: legacy.application},
    });
  }
  const from = {version: legacy.version, pid: legacy.pid, socketPath: legacy.socketPath, activeReleaseId: legacy.activeRelease?.releaseId ?? null};
  const release = request.release ?? legacy.activeRelease ?? undefined;
  if (release === undefined) {
    // Nothing served: no switch to protect, so the 0.1 daemon simply goes and a daemon of this build starts.
    const startedAt = performance.now();
    const stopped = await retireLegacyDaemon(legacy.plan, legacy, {timeoutMs: config.proxy.forceStopTimeoutMs, log: request.log});
    await ensureDaemon(config, context, request.launch);
    return {from, activeReleaseId: null, portGapMs: 0, legacy: summarize(stopped), durationMs: Math.round(performance.now() - startedAt), phases: []};
  }
  const controlPath = legacy.socketPath === config.control.path ? getUpgradeControlPath(config.control.path) : config.control.path;
  const started = await ensureDaemon(config, context, {...request.launch, controlPath, daemonArgs: [`--proxy-deferred`]});
  const client = await ControlClient.connect(controlPath);
  let takeover: ResultOf<`takeover`>;
  try {
    takeover = await client.call(`takeover`, {
      releasePath: release.releasePath,
      ...(release.releaseId !== undefined ? {releaseId: release.releaseId} : {}),
      ...(release.revision !== undefined ? {revision: release.revision} : {}),
      legacy: legacy.plan,
      forceStopTimeoutMs: config.proxy.forceStopTimeoutMs,
      legacyDaemon: {socketPath: legacy.socketPath, pid: legacy.pid},
    }, {onProgress: request.onProgress});
  } catch (error) {
    client.close();
    // The deploy failed before the switch: 0.1 still serves. The new daemon goes, so a retry starts clean.
    if (started.started) await shutdownQuietly(controlPath);
    throw error;
  }
  client.close();
  return {
    from,
    activeReleaseId: takeover.activeReleaseId,
    portGapMs: takeover.portGapMs,
    legacy: {stopped: takeover.legacy.stopped, killed: takeover.legacy.killed, survivors: takeover.legacy.survivors ?? []},
    durationMs: takeover.durationMs,
    phases: takeover.phases ?? [],
  };
}

/** One line for people: what was taken over and what it cost. */
export function formatUpgrade(report: UpgradeReport): string {
  const {from, legacy} = report;
  const who = `the rollbridge ${from.version ?? `0.1`} daemon${from.pid === null ? `` : ` (pid ${from.pid})`} on ${from.socketPath}`;
  const processes = `0.1 processes: ${legacy.stopped} stopped, ${legacy.killed} killed${legacy.survivors.length > 0 ? `, ${legacy.survivors.length} STILL RUNNING (pids ${legacy.survivors.map((entry) => entry.pid).join(`, `)})` : ``}`;
  if (report.activeReleaseId === null) return `Upgraded from ${who}: it served no release; ${processes}`;
  return `Upgraded from ${who}: release ${report.activeReleaseId} is active; port gap ${report.portGapMs} ms; ${processes}`;
}

function summarize(result: {stopped: unknown[]; killed: unknown[]; survivors: Array<{pid: number; args: string}>}): UpgradeReport[`legacy`] {
  return {stopped: result.stopped.length, killed: result.killed.length, survivors: result.survivors.map((entry) => ({pid: entry.pid, args: entry.args}))};
}

async function shutdownQuietly(controlPath: string): Promise<void> {
  try {
    const client = await ControlClient.connect(controlPath);
    try {
      await client.call(`shutdown`, {});
    } finally {
      client.close();
    }
  } catch {
    // Already gone.
  }
}
