import assert from 'node:assert/strict';
import test from 'node:test';
import {judgeCanary} from '../../src/deploy/canary.ts';
import type {CanaryFigures} from '../../src/deploy/canary.ts';
import {LatencyHistogram} from '../../src/deploy/latency-histogram.ts';

const RULES = {minRequests: 20, max5xxIncreasePercent: 1, maxP95Ratio: 1.5, minP95IncreaseMs: 50};
const figures = (requests: number, errors: number, p95Ms: number | null): CanaryFigures => ({requests, errors, errorPercent: requests === 0 ? 0 : Math.round((errors / requests) * 1_000) / 10, p95Ms});

test(`judgeCanary applies the documented rules in order`, () => {
  const cases: Array<[string, CanaryFigures, CanaryFigures, boolean, RegExp]> = [
    [`too few requests`, figures(19, 0, 5), figures(500, 0, 5), false, /only 19 requests .* canary\.minRequests 20/],
    [`5xx share more than 1 point above`, figures(100, 3, 5), figures(400, 4, 5), false, /5xx 3% \(3 of 100\) vs stable 1% \(4 of 400\): more than canary\.max5xxIncreasePercent 1 points/],
    [`5xx share within 1 point`, figures(100, 2, 5), figures(400, 4, 5), true, /5xx 2% .* vs stable 1%/],
    [`p95 1.5x and 50 ms above`, figures(100, 0, 200), figures(400, 0, 100), false, /p95 200 ms vs stable 100 ms: more than canary\.maxP95Ratio 1\.5× and canary\.minP95IncreaseMs 50 ms/],
    [`p95 ratio high but under 50 ms above`, figures(100, 0, 40), figures(400, 0, 10), true, /p95 40 ms vs stable 10 ms/],
    [`p95 not judged against a stable side with too few requests`, figures(100, 0, 900), figures(5, 0, 10), true, /p95 900 ms/],
  ];
  for (const [name, canary, stable, promote, reason] of cases) {
    const verdict = judgeCanary(canary, stable, RULES);
    assert.equal(verdict.promote, promote, name);
    assert.match(verdict.reason, reason, name);
  }
});

test(`LatencyHistogram reads quantiles as bucket upper bounds within √2 of the true value`, () => {
  const histogram = new LatencyHistogram();
  assert.equal(histogram.quantile(0.95), null);
  for (let i = 1; i <= 100; i++) histogram.record(i);
  const p95 = histogram.quantile(0.95)!;
  assert.ok(p95 >= 95 && p95 <= 95 * Math.SQRT2, String(p95));
  const p50 = histogram.quantile(0.5)!;
  assert.ok(p50 >= 50 && p50 <= 50 * Math.SQRT2, String(p50));
  histogram.record(10_000_000);
  assert.equal(histogram.count, 101);
  assert.ok(histogram.quantile(1)! >= 100_000, `a sample beyond the last bucket lands in it`);
});
