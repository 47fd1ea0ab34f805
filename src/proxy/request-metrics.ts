/**
 * Per-request counters of the proxy, kept as plain numbers in typed arrays: the hot path does one
 * array increment per counter and builds no string. The label set (release, process) is resolved
 * once per target (a release's web process), not per request; method and status become small
 * integer indexes. Rendering to the exposition format happens only when /metrics is scraped.
 */

/** Method classes (label `method`): the common methods by name, the rest as `other` (bounded cardinality). */
export const METHOD_CLASSES = [`GET`, `HEAD`, `POST`, `PUT`, `DELETE`, `PATCH`, `OPTIONS`, `other`] as const;
const METHOD_OTHER = METHOD_CLASSES.length - 1;

/**
 * Status classes (label `status`): what the app answered by class; `proxy_error` when the proxy itself
 * answered (502 bad gateway, 503 no active release, 504 timeout, 4xx for a malformed request);
 * `aborted` when the exchange ended without a complete response (the client went away, the app cut it).
 */
export const STATUS_CLASSES = [`1xx`, `2xx`, `3xx`, `4xx`, `5xx`, `proxy_error`, `aborted`] as const;
export const STATUS_PROXY_ERROR = 5;
export const STATUS_ABORTED = 6;

/** Upper bounds (seconds) of the latency histogram's buckets; +Inf is implied. */
export const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
const BUCKET_BOUNDS_MS = LATENCY_BUCKETS_SECONDS.map((seconds) => seconds * 1000);

const STATUS_COUNT = STATUS_CLASSES.length;

export function methodClassOf(method: string): number {
  switch (method) {
    case `GET`: return 0;
    case `HEAD`: return 1;
    case `POST`: return 2;
    case `PUT`: return 3;
    case `DELETE`: return 4;
    case `PATCH`: return 5;
    case `OPTIONS`: return 6;
    default: return METHOD_OTHER;
  }
}

/** The status class index of an answer the app sent (100–599). */
export function statusClassOf(status: number): number {
  const index = Math.floor(status / 100) - 1;
  return index >= 0 && index < 5 ? index : STATUS_PROXY_ERROR;
}

/** The counters of one (release, process) pair: every target of that process adds to the same series. */
export class RequestSeries {
  readonly releaseId: string;
  readonly processId: string;
  /** [methodClass * STATUS_CLASSES.length + statusClass] → requests. */
  readonly requests = new Float64Array(METHOD_CLASSES.length * STATUS_COUNT);
  /** Non-cumulative bucket counts; the last one is +Inf. */
  readonly latencyBuckets = new Float64Array(LATENCY_BUCKETS_SECONDS.length + 1);
  latencySumMs = 0;

  constructor(releaseId: string, processId: string) {
    this.releaseId = releaseId;
    this.processId = processId;
  }

  /** One completed request; `durationMs` < 0 means it was not timed (only counted). */
  record(methodClass: number, statusClass: number, durationMs: number): void {
    this.requests[methodClass * STATUS_COUNT + statusClass]!++;
    if (durationMs < 0) return;
    let bucket = 0;
    while (bucket < BUCKET_BOUNDS_MS.length && durationMs > BUCKET_BOUNDS_MS[bucket]!) bucket++;
    this.latencyBuckets[bucket]!++;
    this.latencySumMs += durationMs;
  }

  requestCount(methodClass: number, statusClass: number): number {
    return this.requests[methodClass * STATUS_COUNT + statusClass]!;
  }
}

/**
 * Every request series of the proxy, keyed by release and process. Releases the daemon forgot
 * (pruned from its history) are dropped by `retainReleases`, so memory stays bounded over any number
 * of deploys.
 */
export class RequestMetrics {
  readonly #series = new Map<string, RequestSeries>();
  /** Requests no release was picked for (no active release, a malformed request head). */
  readonly unrouted = new RequestSeries(``, ``);

  /** The series of one release's process (created on first use; called when a target is created). */
  seriesFor(releaseId: string, processId: string): RequestSeries {
    const key = `${releaseId}\u0000${processId}`;
    let series = this.#series.get(key);
    if (series === undefined) {
      series = new RequestSeries(releaseId, processId);
      this.#series.set(key, series);
    }
    return series;
  }

  /** Drops the series of every release not in `releaseIds`. */
  retainReleases(releaseIds: ReadonlySet<string>): void {
    for (const [key, series] of this.#series) {
      if (!releaseIds.has(series.releaseId)) this.#series.delete(key);
    }
  }

  series(): IterableIterator<RequestSeries> {
    return this.#series.values();
  }
}
