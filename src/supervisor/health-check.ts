import http from 'node:http';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {abortableDelay} from '../util/abortable-delay.ts';

// Larger health bodies are cut off (the connection is closed) instead of read to the end.
const MAX_DISCARDED_BODY_BYTES = 64 * 1024;

export type HealthCheckOptions = {
  url: string;
  /** Budget for all probes, counted after the start delay. */
  timeoutMs: number;
  /** Pause between two probes. */
  intervalMs: number;
  /** Pause before the first probe. */
  startDelayMs: number;
  /** Limit of one probe; never longer than the time left before the deadline. */
  probeTimeoutMs: number;
  /** Consecutive passing probes needed. */
  successThreshold: number;
  /** Aborting rejects with the signal's reason (the caller aborts when the process exits). */
  signal?: AbortSignal | undefined;
  /** Config key of the health settings, named in the error's fix, e.g. `processes[1].health`. */
  configKey: string;
  /** The command that shows the process's output, named in the error's fix (default `rollbridge logs`). */
  logsCommand?: string | undefined;
};

export type HealthCheckResult = {attempts: number; /** From the call, start delay included. */ durationMs: number};

export type ProbeResult = {ok: true; status: number} | {
  ok: false;
  error: string;
  /** The HTTP status, when one was answered. */
  status?: number;
  /** Nothing listens on the port yet (ECONNREFUSED). */
  refused?: boolean;
};

const FIRST_RETRY_MS = 10;
// While nothing listens (the connection is refused), a probe costs the app nothing: the next one comes
// sooner, a twentieth of the time waited (at least 5 ms), so an app that boots in 150 ms is seen ~4 ms
// after it listens instead of ~15 ms. Once something answers, the steps grow with a fifth of it.
const REFUSED_RETRY_MS = 5;
// A client error that every probe gets for this long and this many probes in a row fails the check
// early: a wrong path (404) or an auth wall (401/403) does not go away by waiting out timeoutMs.
const STEADY_CLIENT_ERROR_MS = 2_000;
const STEADY_CLIENT_ERROR_PROBES = 5;

/** A 4xx that waiting does not cure: every one but 408 (Request Timeout) and 429 (Too Many Requests). */
export function isSteadyClientError(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

/** Probes `url` until it passes `successThreshold` times in a row, or throws ERR_HEALTH_CHECK_FAILED at the deadline. */
export async function waitForHealthy(options: HealthCheckOptions): Promise<HealthCheckResult> {
  const {url, signal} = options;
  const startedAt = Date.now();
  signal?.throwIfAborted();
  if (options.startDelayMs > 0) await abortableDelay(options.startDelayMs, signal);
  const deadline = Date.now() + options.timeoutMs;
  const successThreshold = Math.max(1, options.successThreshold);
  let attempts = 0;
  let passes = 0;
  let lastFailure = `no attempts`;
  let steady = null as {status: number; since: number; probes: number} | null;
  // A freshly started app usually listens within milliseconds: probe soon, then back off to intervalMs.
  const probingSince = Date.now();
  while (Date.now() < deadline) {
    const probeTimeoutMs = Math.max(1, Math.min(options.probeTimeoutMs, deadline - Date.now()));
    attempts++;
    const result = await probeHttp(url, probeTimeoutMs, signal);
    if (result.ok) {
      passes++;
      steady = null;
      if (passes >= successThreshold) return {attempts, durationMs: Date.now() - startedAt};
    } else {
      passes = 0;
      if (result.status !== undefined && isSteadyClientError(result.status)) {
        if (steady?.status === result.status) steady.probes++;
        else steady = {status: result.status, since: Date.now(), probes: 1};
        if (steady.probes >= STEADY_CLIENT_ERROR_PROBES && Date.now() - steady.since >= STEADY_CLIENT_ERROR_MS) throw steadyClientError(options, steady, attempts, Date.now() - startedAt);
      } else {
        steady = null;
      }
      // A probe cut short by the overall deadline says less than the failure before it.
      const clamped = probeTimeoutMs < options.probeTimeoutMs && attempts > 1;
      if (!clamped || !result.error.startsWith(`probe timed out`)) lastFailure = result.error;
    }
    // Steps grow with the time already waited (a fifth of it, at least 10 ms; a twentieth and 5 ms while the
    // connection is refused): an app that boots in 100 ms is seen within a few ms of listening, a slow one
    // soon settles at intervalMs.
    const refused = !result.ok && result.refused === true;
    const waitMs = Math.max(0, Math.min(options.intervalMs, Math.max(refused ? REFUSED_RETRY_MS : FIRST_RETRY_MS, (Date.now() - probingSince) / (refused ? 20 : 5))));
    if (Date.now() + waitMs >= deadline) break;
    await abortableDelay(waitMs, signal);
  }
  if (passes > 0) lastFailure = `${passes} of ${successThreshold} consecutive passes before the deadline`;
  const durationMs = Date.now() - startedAt;
  throw new RollbridgeError(`ERR_HEALTH_CHECK_FAILED`, `Health check failed for ${url} after ${attempts} ${attempts === 1 ? `attempt` : `attempts`} in ${durationMs} ms: ${lastFailure}`, {
    fix: `Make ${url} answer 2xx, or correct ${options.configKey}.path or raise ${options.configKey}.timeoutMs; \`${options.logsCommand ?? `rollbridge logs`}\` shows the process output`,
    details: {url, attempts, durationMs, lastFailure},
  });
}

function steadyClientError(options: HealthCheckOptions, steady: {status: number; since: number; probes: number}, attempts: number, durationMs: number): RollbridgeError {
  const {url, configKey} = options;
  const path = new URL(url).pathname;
  const hint = steady.status === 401 || steady.status === 403
    ? `Let ${path} answer 2xx without credentials (exempt it from authentication), or set ${configKey}.path to a path that does`
    : `Set ${configKey}.path to a path the app answers with 2xx (now "${path}"), or add that route to the app`;
  return new RollbridgeError(`ERR_HEALTH_CHECK_FAILED`, `Health check failed for ${url}: HTTP ${steady.status} to each of the last ${steady.probes} probes over ${Math.round((Date.now() - steady.since) / 100) / 10} s (${attempts} in all); a ${steady.status} does not go away by waiting, so the check gave up before ${configKey}.timeoutMs`, {
    fix: hint,
    details: {url, attempts, durationMs, lastFailure: `HTTP ${steady.status}`, status: steady.status, steadyProbes: steady.probes},
  });
}

/**
 * One GET without redirects; any 2xx passes. The body is read and discarded (cut off past 64 KiB).
 * Each probe opens its own connection (`agent: false`, `Connection: close`) and destroys it when it
 * settles: no pooled connection outlives a probe to a process that may be stopped next. A probe never
 * outlives `timeoutMs`; aborting `signal` rejects with its reason.
 */
export async function probeHttp(url: string, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  signal?.throwIfAborted();
  return new Promise<ProbeResult>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener(`abort`, onAbort);
      request.destroy();
      outcome();
    };
    const onAbort = (): void => settle(() => reject(signal?.reason));
    const request = http.get(url, {agent: false}, (response) => {
      const status = response.statusCode ?? 0;
      const result: ProbeResult = status >= 200 && status < 300 ? {ok: true, status} : {ok: false, error: `HTTP ${status}`, status};
      let discarded = 0;
      response.on(`data`, (chunk: Buffer) => {
        discarded += chunk.length;
        if (discarded > MAX_DISCARDED_BODY_BYTES) settle(() => resolve(result));
      });
      response.on(`end`, () => settle(() => resolve(result)));
      response.on(`error`, (error) => settle(() => resolve({ok: false, error: describeProbeError(error)})));
    });
    request.on(`error`, (error) => settle(() => resolve({ok: false, error: describeProbeError(error), ...((error as NodeJS.ErrnoException).code === `ECONNREFUSED` ? {refused: true} : {})})));
    const timer = setTimeout(() => settle(() => resolve({ok: false, error: `probe timed out after ${timeoutMs} ms`})), timeoutMs);
    signal?.addEventListener(`abort`, onAbort, {once: true});
  });
}

function describeProbeError(error: unknown): string {
  // Connection failures carry the useful text themselves: `connect ECONNREFUSED 127.0.0.1:4001`.
  return error instanceof Error ? error.message : String(error);
}
