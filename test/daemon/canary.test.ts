import assert from 'node:assert/strict';
import test from 'node:test';
import type {TestContext} from 'node:test';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import type {TestDaemon} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {loadSwitch} from '../helpers/load-switch.ts';
import {freePort} from '../helpers/ports.ts';
import {parseExposition, scrape, sumOf} from '../helpers/prometheus-text.ts';
import {waitFor} from '../helpers/wait-for.ts';

type Figures = {releaseId: string; requests: number; errors: number; errorPercent: number; p95Ms: number | null};
type Report = {verdict: string; reason: string; percent: number; windowMs: number; durationMs: number; canary: Figures; stable: Figures};

const CLIENTS = 40;

/**
 * 40 clients (distinct X-Forwarded-For addresses from loopback, a trusted peer, and no cookie jar, so the
 * address hash keeps each on its side), served by 6 concurrent loops until stop() or 30 s. Records per
 * client which releases answered and every failure.
 */
function startClients(t: TestContext, daemon: TestDaemon) {
  const load = loadSwitch(t, 30_000);
  const byClient = Array.from({length: CLIENTS}, () => ({releases: new Set<string>(), ok: 0, failed: 0}));
  let next = 0;
  let total = 0;
  const loops = Array.from({length: 6}, async () => {
    while (load.on()) {
      const index = next++ % CLIENTS;
      const client = byClient[index]!;
      try {
        const result = await httpGet(daemon.proxyPort, `/`, {headers: {'x-forwarded-for': `198.51.100.${index + 1}`}});
        total++;
        const release = result.body.trim();
        client.releases.add(release);
        if (result.status === 200) client.ok++;
        else client.failed++;
      } catch {
        total++;
        client.failed++;
      }
    }
  });
  return {
    byClient,
    get total() {
      return total;
    },
    stop: async () => {
      load.stop();
      await Promise.all(loops);
    },
  };
}

test(`a canary answering 500 to 20% of its requests is rolled back by itself; only its clients saw failures, and they are bounded by its share`, async (t) => {
  const metricsPort = await freePort();
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {canary: {minRequests: 20}, metrics: {listen: metricsPort}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const clients = startClients(t, daemon);
  await waitFor(() => clients.total >= 100, {what: `load on v1`});
  const startTotal = clients.total;
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`flaky-2`), releaseId: `flaky-2`, canaryPercent: 20, canaryWindowMs: 10_000}), (error: unknown) => {
    assert.ok(isRollbridgeError(error), String(error));
    assert.equal(error.code, `ERR_CANARY_REJECTED`, error.message);
    const report = error.details.canary as Report;
    assert.equal(report.verdict, `rolled-back`);
    assert.equal(report.canary.releaseId, `flaky-2`);
    assert.equal(report.stable.releaseId, `v1`);
    assert.ok(report.canary.requests >= 20, JSON.stringify(report));
    assert.ok(report.canary.errorPercent > 10, JSON.stringify(report));
    assert.equal(report.stable.errors, 0);
    assert.match(error.message, /Canary flaky-2 was rolled back after \d+ ms at 20%: 5xx [\d.]+% \(\d+ of \d+\) vs stable 0% \(0 of \d+\): more than canary\.max5xxIncreasePercent 1 points above the stable release/);
    assert.ok(report.durationMs < 10_000, `rolled back before the window ended: ${report.durationMs} ms`);
    t.diagnostic(`canary rejected after ${report.durationMs} ms: canary ${JSON.stringify(report.canary)}, stable ${JSON.stringify(report.stable)}`);
    return true;
  });
  const windowTotal = clients.total - startTotal;
  await waitFor(() => clients.total >= startTotal + windowTotal + 100, {what: `load after the rollback`});
  await clients.stop();
  const status = await daemon.call(`status`);
  assert.equal(status.activeReleaseId, `v1`);
  const canaryClients = clients.byClient.filter((client) => client.releases.has(`flaky-2`));
  const failed = clients.byClient.reduce((sum, client) => sum + client.failed, 0);
  assert.ok(canaryClients.length > 0 && canaryClients.length <= CLIENTS * 0.4, `about 20% of the clients were sent to the canary (${canaryClients.length} of ${CLIENTS})`);
  assert.ok(failed > 0, `the canary did answer 500s`);
  for (const client of clients.byClient) if (client.failed > 0) assert.ok(client.releases.has(`flaky-2`), `only canary clients saw failures`);
  // Failures are a fifth of the canary's requests, the canary had its share of the clients: far below 20% overall.
  assert.ok(failed <= clients.total * 0.2 * 0.4, `failed ${failed} of ${clients.total} requests`);
  t.diagnostic(`canary clients ${canaryClients.length}/${CLIENTS}; failed requests ${failed} of ${clients.total}`);
  // Sticky: a client stays on the side it was given (v1 clients never saw the canary).
  for (const client of clients.byClient) if (!client.releases.has(`flaky-2`)) assert.deepEqual([...client.releases], [`v1`]);
  const samples = parseExposition((await scrape(metricsPort)).body);
  assert.deepEqual([sumOf(samples, `rollbridge_canaries_total`, {outcome: `rolled_back`}), sumOf(samples, `rollbridge_canaries_total`, {outcome: `promoted`})], [1, 0]);
});

test(`a healthy canary is promoted after its window, with the figures in the result; the cookie keeps a client on its side`, async (t) => {
  const metricsPort = await freePort();
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {canary: {minRequests: 20}, metrics: {listen: metricsPort}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const clients = startClients(t, daemon);
  await waitFor(() => clients.total >= 100, {what: `load on v1`});
  const deploying = daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`, canaryPercent: 30, canaryWindowMs: 2_500});
  // While the canary runs: the proxy sets a cookie naming the side, and honours it whatever the address.
  const first = await waitFor(async () => {
    const status = await daemon.call(`status`);
    if ((status.daemon as {deploying: string | null}).deploying === null) return null;
    const answer = await httpGet(daemon.proxyPort, `/`, {headers: {'x-forwarded-for': `203.0.113.7`}});
    return typeof answer.headers[`set-cookie`]?.[0] === `string` ? answer : null;
  }, {what: `a response with the canary cookie`});
  const cookie = first.headers[`set-cookie`]![0]!;
  assert.match(cookie, /^rollbridge-canary=v2\.[01]; Path=\/; Max-Age=86400; HttpOnly; SameSite=Lax$/);
  const side = cookie.startsWith(`rollbridge-canary=v2.1`) ? `v2` : `v1`;
  for (let i = 0; i < 10; i++) {
    const again = await httpGet(daemon.proxyPort, `/`, {headers: {'x-forwarded-for': `203.0.113.${100 + i}`, cookie: `a=b; ${cookie.split(`;`)[0]}`}});
    assert.equal(again.body.trim(), side, `the cookie decides, not the address`);
    assert.equal(again.headers[`set-cookie`], undefined, `a client with the cookie gets none again`);
  }
  const result = await deploying;
  await clients.stop();
  assert.equal(result.activeReleaseId, `v2`);
  const report = result.canary as Report;
  assert.equal(report.verdict, `promoted`);
  assert.equal(report.percent, 30);
  assert.equal(report.windowMs, 2_500);
  assert.ok(report.canary.requests >= 20 && report.stable.requests > 0, JSON.stringify(report));
  assert.equal(report.canary.errors, 0);
  assert.equal(typeof report.canary.p95Ms, `number`);
  const failed = clients.byClient.reduce((sum, client) => sum + client.failed, 0);
  assert.equal(failed, 0);
  assert.ok((result.phases as Array<{phase: string}>).some((entry) => entry.phase === `canaryJudged`));
  assert.equal((await httpGet(daemon.proxyPort, `/`)).headers[`set-cookie`], undefined, `no cookie once the canary is over`);
  const samples = parseExposition((await scrape(metricsPort)).body);
  assert.deepEqual([sumOf(samples, `rollbridge_canaries_total`, {outcome: `promoted`}), sumOf(samples, `rollbridge_canaries_total`, {outcome: `rolled_back`})], [1, 0]);
});

test(`a canary that gets too few requests is rolled back, and one without an active release is refused`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`, canaryPercent: 10}), (error: unknown) => isRollbridgeError(error) && error.code === `ERR_CANARY_UNAVAILABLE` && /no active release serves/.test(error.message));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`, canaryPercent: 10, canaryWindowMs: 300}), (error: unknown) => {
    assert.ok(isRollbridgeError(error), String(error));
    assert.equal(error.code, `ERR_CANARY_REJECTED`);
    assert.match(error.message, /only 0 requests reached the canary in the window, fewer than canary\.minRequests 20/);
    return true;
  });
  assert.equal((await daemon.call(`status`)).activeReleaseId, `v1`);
  assert.equal((await httpGet(daemon.proxyPort, `/`)).body, `v1\n`);
});
