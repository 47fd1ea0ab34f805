import type {ResultOf} from '../control/protocol.ts';
import type {ParamsOf} from '../control/protocol.ts';
import type {ProgressListener} from '../deploy/deployer.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {stopLegacyProcesses} from '../takeover/stop.ts';
import type {StopLegacyResult} from '../takeover/stop.ts';
import type {Daemon} from './daemon.ts';

// Between two attempts to bind the proxy port while the legacy app still holds it.
const BIND_RETRY_MS = 1;
// After the legacy processes are gone, how long the port may stay taken (TIME_WAIT does not block a listener).
const BIND_GRACE_MS = 2_000;

/**
 * The first handover from a legacy supervisor (product §5.9): the new release starts on its internal
 * port and passes its health check while the legacy app still serves; then, right before the switch,
 * the legacy processes are stopped (screen quit, TERM, poll, KILL) while the proxy retries binding the
 * port they held every millisecond; traffic is routed to the new release before the port opens, so
 * the first connection the proxy accepts is served. The gap in which the port refused connections is
 * measured: from the last moment it was seen taken (or the first stop action) to the bind.
 */
export async function runTakeover(daemon: Daemon, params: ParamsOf<`takeover`>, onProgress: ProgressListener): Promise<ResultOf<`takeover`>> {
  const {deployer, proxy} = daemon;
  if (deployer.activeRelease !== null || proxy.listening) {
    throw new RollbridgeError(ErrorCode.TAKEOVER_NOT_NEEDED, `The daemon already ${deployer.activeRelease ? `serves release ${deployer.activeRelease.releaseId}` : `listens on the proxy port`}; legacy-takeover is only for the first handover`, {
      fix: `Use "rollbridge deploy --release-path ${params.releasePath}" (and "rollbridge predeploy-cleanup" for leftovers of the legacy supervisor)`,
      details: {activeReleaseId: deployer.activeRelease?.releaseId ?? null},
    });
  }
  const log = daemon.log.child({component: `takeover`});
  let portGapMs = 0;
  let stopped: StopLegacyResult | undefined;
  const result = await deployer.deploy({
    releasePath: params.releasePath,
    releaseId: params.releaseId,
    revision: params.revision,
    beforeSwitchAction: async (release, phase) => {
      // Route first: the moment the port opens, requests go to the new release.
      proxy.setActiveTargets(release.targets);
      let signalledAt: number | null = null;
      const stopping = stopLegacyProcesses(params.legacy, {timeoutMs: params.forceStopTimeoutMs, log, onSignalled: () => {
        signalledAt = performance.now();
        phase(`legacyStopping`, {processes: params.legacy.processes.length, screens: params.legacy.screens.length});
      }});
      stopping.catch(() => undefined);
      let bound: {lastInUseAt: number | null; boundAt: number};
      try {
        bound = await proxy.listenWhenFree({giveUp: stopping, graceMs: BIND_GRACE_MS, retryMs: BIND_RETRY_MS});
      } catch (error) {
        proxy.setActiveTargets([]);
        await stopping.catch(() => undefined);
        throw error;
      }
      const gapStart = bound.lastInUseAt ?? signalledAt;
      // A port that was never taken (the legacy app listened elsewhere) had no gap.
      portGapMs = gapStart === null ? 0 : Math.max(0, Math.round((bound.boundAt - gapStart) * 100) / 100);
      phase(`proxyListening`, {port: proxy.address.port, portGapMs});
      stopped = await stopping;
      phase(`legacyStopped`, {stopped: stopped.stopped.length, killed: stopped.killed.length, survivors: stopped.survivors.length});
      if (stopped.survivors.length > 0) {
        log.error(`legacy processes survived the takeover`, {pids: stopped.survivors.map((process) => process.pid)});
      }
    },
  }, onProgress);
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
