import {setTimeout as delay} from 'node:timers/promises';
import type {CanaryConfig, ProcessConfig} from '../config/types.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {requestChannel} from '../proxy/client-connection.ts';
import type {RequestEvent} from '../proxy/client-connection.ts';
import {LatencyHistogram} from './latency-histogram.ts';
import type {DeployContext} from './deploy-context.ts';
import type {Release} from './release.ts';

/** One side of a canary over its window. */
export type CanaryFigures = {
  /** Requests sent to the side's targets during the window. */
  requests: number;
  /** 5xx responses plus proxy errors (502/504: refused, reset, timed out). */
  errors: number;
  /** errors ÷ requests × 100 (0 without requests), one decimal. */
  errorPercent: number;
  /** 95th percentile of the completed requests' duration, by histogram bucket; null without any. */
  p95Ms: number | null;
};

export type CanaryReport = {
  verdict: `promoted` | `rolled-back`;
  /** Which rule decided, with the figures, in one sentence. */
  reason: string;
  percent: number;
  windowMs: number;
  /** How long the canary ran (shorter than windowMs when it was rolled back early). */
  durationMs: number;
  canary: CanaryFigures & {releaseId: string};
  stable: CanaryFigures & {releaseId: string};
};

// How often the figures are checked for an early rollback.
const CHECK_INTERVAL_MS = 100;

/**
 * The verdict rules (docs/operations.md "Canary deploys"), in order: too few canary requests → rolled
 * back; a 5xx share more than `max5xxIncreasePercent` points above the stable one → rolled back; a p95
 * more than `maxP95Ratio` × the stable p95 and more than `minP95IncreaseMs` above it (judged only when
 * both sides have `minRequests`) → rolled back; otherwise promoted.
 */
export function judgeCanary(canary: CanaryFigures, stable: CanaryFigures, rules: CanaryConfig): {promote: boolean; reason: string} {
  const errors = `5xx ${canary.errorPercent}% (${canary.errors} of ${canary.requests}) vs stable ${stable.errorPercent}% (${stable.errors} of ${stable.requests})`;
  if (canary.requests < rules.minRequests) {
    return {promote: false, reason: `only ${canary.requests} requests reached the canary in the window, fewer than canary.minRequests ${rules.minRequests}`};
  }
  if (tooManyErrors(canary, stable, rules)) {
    return {promote: false, reason: `${errors}: more than canary.max5xxIncreasePercent ${rules.max5xxIncreasePercent} points above the stable release`};
  }
  const latency = `p95 ${formatMs(canary.p95Ms)} vs stable ${formatMs(stable.p95Ms)}`;
  if (stable.requests >= rules.minRequests && canary.p95Ms !== null && stable.p95Ms !== null
    && canary.p95Ms > stable.p95Ms * rules.maxP95Ratio && canary.p95Ms - stable.p95Ms > rules.minP95IncreaseMs) {
    return {promote: false, reason: `${latency}: more than canary.maxP95Ratio ${rules.maxP95Ratio}× and canary.minP95IncreaseMs ${rules.minP95IncreaseMs} ms above the stable release`};
  }
  return {promote: true, reason: `${errors}; ${latency}`};
}

function tooManyErrors(canary: CanaryFigures, stable: CanaryFigures, rules: CanaryConfig): boolean {
  return canary.requests >= rules.minRequests && canary.errorPercent > stable.errorPercent + rules.max5xxIncreasePercent;
}

/**
 * Runs the canary window: per-side request counts from the targets, latencies from the proxy's
 * request channel (published only while someone listens, so the proxy pays nothing otherwise).
 * Ends early when the canary's web process exits or its 5xx share already fails the rule.
 */
export async function watchCanary(options: {canary: Release; stable: Release; percent: number; windowMs: number; rules: CanaryConfig; isWebProcess: (processId: string) => boolean}): Promise<CanaryReport> {
  const {canary, stable, percent, windowMs, rules} = options;
  const startedAt = performance.now();
  const latency = new Map([[canary.releaseId, new LatencyHistogram()], [stable.releaseId, new LatencyHistogram()]]);
  const onRequest = (message: unknown) => {
    const event = message as RequestEvent;
    if (event.statusCode >= 100) latency.get(event.releaseId)?.record(event.durationMs);
  };
  const baseline = (release: Release) => release.targets.map((target) => ({target, ...target.stats}));
  const baselines = {canary: baseline(canary), stable: baseline(stable)};
  const figures = (side: `canary` | `stable`): CanaryFigures => {
    let requests = 0;
    let errors = 0;
    for (const entry of baselines[side]) {
      const now = entry.target.stats;
      requests += now.requests - entry.requests;
      errors += now.responses5xx + now.errors - entry.responses5xx - entry.errors;
    }
    const release = side === `canary` ? canary : stable;
    return {requests, errors, errorPercent: requests === 0 ? 0 : Math.round((errors / requests) * 1_000) / 10, p95Ms: latency.get(release.releaseId)?.quantile(0.95) ?? null};
  };
  const controller = new AbortController();
  const webExits = canary.processes.filter((managed) => options.isWebProcess(managed.spec.processId))
    .map((managed) => managed.waitForExit().then((exit) => `the canary's web process ${managed.id} exited (${exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`})`));
  const early = (async (): Promise<string | null> => {
    while (!controller.signal.aborted) {
      await delay(CHECK_INTERVAL_MS, undefined, {signal: controller.signal}).catch(() => undefined);
      if (controller.signal.aborted) break;
      const now = {canary: figures(`canary`), stable: figures(`stable`)};
      if (tooManyErrors(now.canary, now.stable, rules)) return null;
    }
    return new Promise<never>(() => undefined);
  })();
  requestChannel.subscribe(onRequest);
  let exited: string | null = null;
  try {
    const outcome = await Promise.race([...webExits, early, delay(windowMs, undefined, {signal: controller.signal}).then(() => null)]);
    if (typeof outcome === `string`) exited = outcome;
  } finally {
    controller.abort();
    requestChannel.unsubscribe(onRequest);
  }
  const final = {canary: figures(`canary`), stable: figures(`stable`)};
  const verdict = exited !== null ? {promote: false, reason: exited} : judgeCanary(final.canary, final.stable, rules);
  return {
    verdict: verdict.promote ? `promoted` : `rolled-back`,
    reason: verdict.reason,
    percent,
    windowMs,
    durationMs: Math.round(performance.now() - startedAt),
    canary: {releaseId: canary.releaseId, ...final.canary},
    stable: {releaseId: stable.releaseId, ...final.stable},
  };
}

function formatMs(ms: number | null): string {
  return ms === null ? `n/a` : `${ms} ms`;
}

/** A canary needs a serving release to compare with, another release id, and a web process that may overlap. */
export function checkCanary(previous: Release | null, releaseId: string, hold: ProcessConfig | undefined): void {
  const refuse = (why: string, fix: string) => new RollbridgeError(ErrorCode.CANARY_UNAVAILABLE, `No canary for release ${releaseId}: ${why}`, {fix, details: {releaseId}});
  if (previous === null || previous.targets.every((target) => target.state !== `serving`)) {
    throw refuse(`no active release serves to compare it with`, `Deploy without --canary first; a canary needs a serving release`);
  }
  if (previous.releaseId === releaseId) throw refuse(`it is the active release's id`, `Give the new release another --release-id`);
  if (hold !== undefined) {
    const index = previous.config.processes.findIndex((process) => process.id === hold.id);
    throw refuse(`the web process "${hold.id}" has switch "hold" and never runs beside its previous copy`, `Deploy without --canary, or remove processes[${index}].switch`);
  }
}

/**
 * The canary phase of a deploy: the split (ActiveRelease.switchTo with `canary`), the window, the
 * verdict. Promoted: returns the report (the deploy goes on to the full switch). Rolled back: the split
 * ends, the canary's requests drain, and ERR_CANARY_REJECTED carries the report in `details.canary`.
 */
export async function runCanary(context: DeployContext, release: Release, previous: Release, percent: number, windowMs: number, phase: (name: string, extra?: Record<string, unknown>) => void): Promise<CanaryReport> {
  const {active, log} = context;
  active.switchTo(previous, {canary: {release, percent}});
  log.info(`canary started`, {releaseId: release.releaseId, stableReleaseId: previous.releaseId, percent, windowMs});
  phase(`canary`, {previousReleaseId: previous.releaseId, detail: `${release.releaseId} takes ${percent}% of the clients for ${windowMs} ms`});
  let report: CanaryReport;
  try {
    report = await watchCanary({canary: release, stable: previous, percent, windowMs, rules: release.config.canary, isWebProcess: (processId) => release.config.processes.find((process) => process.id === processId)?.policy === `proxied`});
  } finally {
    active.switchTo(previous);
  }
  const figures = {canary: report.canary, stable: report.stable, verdict: report.verdict};
  log.info(report.verdict === `promoted` ? `canary promoted` : `canary rolled back`, {releaseId: release.releaseId, reason: report.reason, ...figures});
  phase(`canaryJudged`, {ok: report.verdict === `promoted`, detail: `${report.verdict}: ${report.reason}`});
  if (report.verdict === `promoted`) return report;
  await Promise.all(release.targets.map((target) => target.drain({timeoutMs: release.config.proxy.drainTimeoutMs, wsCloseJitterMs: release.config.proxy.wsCloseJitterMs})));
  throw new RollbridgeError(ErrorCode.CANARY_REJECTED, `Canary ${release.releaseId} was rolled back after ${report.durationMs} ms at ${percent}%: ${report.reason}`, {
    fix: `Check "rollbridge logs --release ${release.releaseId}" and "rollbridge events" for the canary; fix it and deploy again (the rules are the canary.* keys of the config)`,
    details: {releaseId: release.releaseId, previousReleaseId: previous.releaseId, canary: report},
  });
}
