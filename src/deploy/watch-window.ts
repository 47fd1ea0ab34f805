import {setTimeout as delay} from 'node:timers/promises';
import type {Config} from '../config/types.ts';
import {describeReadinessCheck, healthProbeCheck, probeCheck} from '../supervisor/readiness.ts';
import {hasMainThreadExited, isProcessGroupAlive} from '../system/proc.ts';
import {formatHttpUrl} from './instance-spec.ts';
import type {Release} from './release.ts';

/**
 * The watch window (product §5.4): while the previous release stays warm, the new one is watched for
 * `windowMs`. Resolves null when the window passed, else the reason to switch back: a web process
 * exited, the 5xx/error share passed `watch.max5xxPercent`, or the health check failed twice.
 */
export async function watchRelease(release: Release, windowMs: number, config: Config): Promise<string | null> {
  const web = config.processes.find((process) => process.policy === `proxied`);
  const webProcesses = release.processes.filter((managed) => config.processes.find((process) => process.id === managed.spec.processId)?.policy === `proxied`);
  const baseline = release.targets.map((target) => ({...target.stats}));
  const controller = new AbortController();
  const exits = webProcesses.map((managed) => managed.waitForExit().then((exit) => `web process ${managed.id} exited (${exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`})`));
  const probes = (async (): Promise<string | never> => {
    let failures = 0;
    const intervalMs = Math.min(web?.health?.intervalMs ?? 500, 500);
    while (!controller.signal.aborted) {
      await delay(intervalMs, undefined, {signal: controller.signal}).catch(() => undefined);
      if (controller.signal.aborted) break;
      let requests = 0;
      let bad = 0;
      release.targets.forEach((target, index) => {
        requests += target.stats.requests - (baseline[index]?.requests ?? 0);
        bad += target.stats.responses5xx + target.stats.errors - (baseline[index]?.responses5xx ?? 0) - (baseline[index]?.errors ?? 0);
      });
      if (requests >= config.watch.minRequests && requests > 0 && (bad / requests) * 100 > config.watch.max5xxPercent) {
        return `${bad} of ${requests} responses were 5xx or errors (${((bad / requests) * 100).toFixed(1)}% > watch.max5xxPercent ${config.watch.max5xxPercent}%)`;
      }
      const check = web?.health ? healthProbeCheck(web.health) : null;
      if (web?.health && check) {
        for (const target of release.targets) {
          const managed = webProcesses.find((candidate) => candidate.id === target.processId);
          const probeTarget = {processId: target.processId, host: target.host, port: target.port, cwd: managed?.spec.cwd ?? release.releasePath, env: managed?.spec.env ?? {}};
          const result = await probeCheck(check, probeTarget, web.health.probeTimeoutMs).catch(() => ({ok: false as const, error: `probe aborted`}));
          // A web process that died fails its probes too: its exit (reported a moment later) is the reason to give.
          // Its main thread gone is enough to tell: its other threads may take a while to close, and the exit is
          // reported only after the last one (isLiveProcess).
          if (!result.ok && managed !== undefined && isOnItsWayOut(managed.pid, managed.pgid)) continue;
          if (result.ok) failures = 0;
          else if (++failures >= 2) return `health check of ${check.kind === `http` ? formatHttpUrl(target.host, target.port, check.path ?? `/`) : describeReadinessCheck(check, target)} failed twice: ${result.error}`;
        }
      }
    }
    return new Promise<never>(() => undefined);
  })();
  try {
    return await Promise.race([...exits, probes, delay(windowMs, null, {signal: controller.signal})]);
  } finally {
    controller.abort();
  }
}

function isOnItsWayOut(pid: number | undefined, pgid: number | undefined): boolean {
  return (pid !== undefined && hasMainThreadExited(pid)) || (pgid !== undefined && !isProcessGroupAlive(pgid));
}
