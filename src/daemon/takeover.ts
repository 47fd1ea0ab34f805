import type {ResultOf} from '../control/protocol.ts';
import type {ParamsOf} from '../control/protocol.ts';
import type {DeployRequest, DeployResult, ProgressListener} from '../deploy/deployer.ts';
import type {Release} from '../deploy/release.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import type {Logger} from '../log/logger.ts';
import type {ProxyServer} from '../proxy/proxy-server.ts';
import {retireLegacyDaemon} from '../takeover/legacy-daemon.ts';
import {stopLegacyProcesses} from '../takeover/stop.ts';
import type {StopLegacyResult} from '../takeover/stop.ts';

// Between two attempts to bind the proxy port while the legacy app still holds it.
const BIND_RETRY_MS = 1;
// A 0.1 daemon closes its listener moments after it is asked to let go (its quiesce hooks first): the
// bind is retried without a timer then, as every millisecond of gap is a burst of refused connections.
const LEGACY_DAEMON_BIND_RETRY_MS = 0;
// After the legacy processes are gone, how long the port may stay taken (TIME_WAIT does not block a listener).
const BIND_GRACE_MS = 2_000;

/** The parts of the daemon a legacy takeover uses. */
export type TakeoverHost = {
  readonly log: Logger;
  readonly proxy: Pick<ProxyServer, `listening` | `listenWhenFree` | `address`>;
  readonly deployer: {readonly activeRelease: Release | null; deploy(request: DeployRequest, onProgress?: ProgressListener): Promise<DeployResult>};
  /** The upgrade from a 0.1 daemon: the control socket moves from its temporary path to control.path. */
  publishControlSocket(): Promise<void>;
  readonly state: {rewrite(): Promise<void>};
};

/**
 * The first handover from a legacy supervisor (product §5.9): the new release starts on its internal
 * port and passes its health check while the legacy app still serves; then it is switched to (the
 * deploy's own switch: the proxy does not listen yet, so nothing moves) and the legacy processes are
 * stopped (screen quit, TERM, poll, KILL) while the proxy retries binding the port they held every
 * millisecond, so the first connection the proxy accepts is served. A failure switches back to
 * nothing and stops the new release. The gap in which the port refused connections is measured:
 * from the last moment it was seen taken (or the first stop action) to the bind.
 */
export async function runTakeover(host: TakeoverHost, params: ParamsOf<`takeover`>, onProgress: ProgressListener): Promise<ResultOf<`takeover`>> {
  const {deployer, proxy} = host;
  if (deployer.activeRelease !== null || proxy.listening) {
    throw new RollbridgeError(ErrorCode.TAKEOVER_NOT_NEEDED, `The daemon already ${deployer.activeRelease ? `serves release ${deployer.activeRelease.releaseId}` : `listens on the proxy port`}; legacy-takeover is only for the first handover`, {
      fix: `Use "rollbridge deploy --release-path ${params.releasePath}" (and "rollbridge predeploy-cleanup" for leftovers of the legacy supervisor)`,
      details: {activeReleaseId: deployer.activeRelease?.releaseId ?? null},
    });
  }
  const log = host.log.child({component: `takeover`});
  let portGapMs = 0;
  let stopped: StopLegacyResult | undefined;
  const result = await deployer.deploy({
    releasePath: params.releasePath,
    releaseId: params.releaseId,
    revision: params.revision,
    onSwitched: async (_release, phase) => {
      let signalledAt: number | null = null;
      const onSignalled = () => {
        signalledAt = performance.now();
        phase(`legacy-stopping`, {processes: params.legacy.processes.length, screens: params.legacy.screens.length});
      };
      // A rollbridge 0.1 daemon lets go through its own shutdown; other legacy supervisors are signalled.
      const listening = Promise.withResolvers<void>();
      const stopping = params.legacyDaemon === undefined
        ? stopLegacyProcesses(params.legacy, {timeoutMs: params.forceStopTimeoutMs, log, onSignalled})
        : retireLegacyDaemon(params.legacy, params.legacyDaemon, {timeoutMs: params.forceStopTimeoutMs, log, onSignalled, released: listening.promise});
      stopping.catch(() => undefined);
      let bound: {lastInUseAt: number | null; boundAt: number};
      try {
        bound = await proxy.listenWhenFree({giveUp: stopping, graceMs: BIND_GRACE_MS, retryMs: params.legacyDaemon === undefined ? BIND_RETRY_MS : LEGACY_DAEMON_BIND_RETRY_MS});
        listening.resolve();
      } catch (error) {
        listening.resolve();
        await stopping.catch(() => undefined);
        throw error;
      }
      const gapStart = bound.lastInUseAt ?? signalledAt;
      // A port that was never taken (the legacy app listened elsewhere) had no gap.
      portGapMs = gapStart === null ? 0 : Math.max(0, Math.round((bound.boundAt - gapStart) * 100) / 100);
      phase(`proxy-listening`, {port: proxy.address.port, portGapMs});
      stopped = await stopping;
      phase(`legacy-stopped`, {stopped: stopped.stopped.length, killed: stopped.killed.length, survivors: stopped.survivors.length});
      if (stopped.survivors.length > 0) {
        log.error(`legacy processes survived the takeover`, {pids: stopped.survivors.map((process) => process.pid)});
      }
    },
  }, onProgress);
  if (params.legacyDaemon !== undefined) {
    // The 0.1 daemon is gone (or was stopped): its socket path and a shared statePath are ours now
    // (its shutdown may have deleted the state file).
    await host.publishControlSocket();
    await host.state.rewrite();
  }
  log.info(`legacy takeover finished`, {releaseId: result.releaseId, portGapMs, stopped: stopped?.stopped.length ?? 0, killed: stopped?.killed.length ?? 0});
  return {
    activeReleaseId: result.activeReleaseId ?? result.releaseId,
    portGapMs,
    legacy: {
      stopped: stopped?.stopped.length ?? 0,
      killed: stopped?.killed.length ?? 0,
      survivors: (stopped?.survivors ?? []).map((process) => ({pid: process.pid, args: process.args})),
    },
    durationMs: result.durationMs,
    phases: result.phases,
  };
}
