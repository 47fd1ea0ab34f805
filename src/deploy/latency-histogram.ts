/**
 * A cheap latency histogram: log-spaced buckets (×√2 from 0.125 ms to ~2 min), one array increment per
 * sample; quantiles are read as the upper bound of the bucket that holds them (at most ~41% above the
 * true value, plenty to tell a slow release from a fast one).
 */
export class LatencyHistogram {
  readonly #counts = new Uint32Array(BUCKETS);
  #count = 0;

  get count(): number {
    return this.#count;
  }

  record(durationMs: number): void {
    const index = durationMs <= FIRST_BOUND_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log2(durationMs / FIRST_BOUND_MS) * 2));
    this.#counts[index]!++;
    this.#count++;
  }

  /** The upper bound (ms) of the bucket holding quantile `q` (0–1); null without samples. */
  quantile(q: number): number | null {
    if (this.#count === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let index = 0; index < BUCKETS; index++) {
      seen += this.#counts[index]!;
      if (seen >= rank) return boundMs(index);
    }
    return boundMs(BUCKETS - 1);
  }
}

const FIRST_BOUND_MS = 0.125;
const BUCKETS = 42;

function boundMs(index: number): number {
  return Math.round(FIRST_BOUND_MS * 2 ** (index / 2) * 1_000) / 1_000;
}
