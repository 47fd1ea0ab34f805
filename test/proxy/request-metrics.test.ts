import assert from 'node:assert/strict';
import {test} from 'node:test';
import {AccessLog} from '../../src/proxy/access-log.ts';
import type {AccessLogSink} from '../../src/proxy/access-log.ts';
import {METHOD_CLASSES, RequestMetrics, STATUS_CLASSES} from '../../src/proxy/request-metrics.ts';
import type {RequestSeries} from '../../src/proxy/request-metrics.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {addTarget, connectWebSocket, rawClient, rawExchange, request, startApp, startProxy} from './harness.ts';

function count(series: RequestSeries, method: typeof METHOD_CLASSES[number], status: typeof STATUS_CLASSES[number]): number {
  return series.requestCount(METHOD_CLASSES.indexOf(method), STATUS_CLASSES.indexOf(status));
}

/** An access log sink that keeps the parsed lines. */
function memorySink(): AccessLogSink & {lines: Array<Record<string, unknown>>} {
  const lines: Array<Record<string, unknown>> = [];
  return {lines, write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>)};
}

test(`records every way an exchange ends once: answered, upgraded, answered by the proxy, cut short`, async (t) => {
  const metrics = new RequestMetrics();
  const sink = memorySink();
  const proxy = await startProxy(t, {metrics, accessLog: new AccessLog(sink, {includeQuery: false})});
  const port = proxy.address.port;
  // Before any target: the proxy's own 503, counted without a release.
  assert.equal((await request(port)).status, 503);
  assert.equal(count(metrics.unrouted, `GET`, `proxy_error`), 1);

  const app = await startApp(t, `v1`, (req, res) => {
    if (req.url === `/slow`) return; // never answers: the client gives up
    if (req.url === `/cut`) {
      res.writeHead(200, {'content-length': `100`});
      res.write(`partial`);
      setTimeout(() => res.destroy(), 20);
      return;
    }
    res.statusCode = req.url === `/missing` ? 404 : req.url === `/error` ? 500 : 200;
    res.end(`v1`);
  });
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  const series = metrics.seriesFor(`r1`, `web`);
  assert.equal((await request(port, {path: `/a?secret=1`})).status, 200);
  assert.equal((await request(port, {path: `/missing`, method: `DELETE`})).status, 404);
  assert.equal((await request(port, {path: `/error`, method: `POST`, body: `x`})).status, 500);
  assert.equal((await request(port, {method: `MKCOL`})).status, 200);
  const ws = await connectWebSocket(t, port);
  ws.socket.destroy();
  const slow = rawClient(t, port);
  slow.socket.write(`GET /slow HTTP/1.1\r\nHost: x\r\n\r\n`);
  await waitFor(() => proxy.activeTargets[0]!.connections.http === 1, {what: `the slow request in flight`});
  slow.socket.destroy();
  await assert.rejects(request(port, {path: `/cut`}));
  // A malformed head is the proxy's 400, before any target.
  assert.match(await rawExchange(port, `GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n`), /^HTTP\/1\.1 400 /);

  await waitFor(() => count(series, `GET`, `aborted`) === 2, {what: `the two cut exchanges recorded`});
  assert.equal(count(series, `GET`, `2xx`), 1);
  assert.equal(count(series, `DELETE`, `4xx`), 1);
  assert.equal(count(series, `POST`, `5xx`), 1);
  assert.equal(count(series, `other`, `2xx`), 1);
  assert.equal(count(series, `GET`, `1xx`), 1, `a WebSocket upgrade is recorded at its 101`);
  assert.equal(count(metrics.unrouted, `other`, `proxy_error`), 1, `the malformed head`);
  const total = [...series.requests].reduce((sum, n) => sum + n, 0);
  assert.equal(total, 7);
  assert.equal([...series.latencyBuckets].reduce((sum, n) => sum + n, 0), 7, `every exchange that reached a target is timed`);

  const byPath = new Map(sink.lines.map((line) => [line.path, line]));
  assert.equal(sink.lines.length, 9);
  assert.equal(byPath.get(`/a`)?.status, 200, `the query is left out`);
  assert.equal(byPath.get(`/slow`)?.status, 0, `no response reached the client`);
  assert.equal(byPath.get(`/cut`)?.status, 200, `the status that was sent, though the body was cut`);
  assert.equal(byPath.get(``)?.method, ``, `the malformed head has no method or path`);
  assert.equal(byPath.get(``)?.status, 400);
});

test(`a 502 for an app that refuses connections is the proxy's error, counted for the release it tried`, async (t) => {
  const metrics = new RequestMetrics();
  const sink = memorySink();
  const proxy = await startProxy(t, {metrics, accessLog: new AccessLog(sink, {includeQuery: false})});
  const app = await startApp(t, `v1`);
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  assert.equal((await request(proxy.address.port)).status, 200);
  app.server.closeAllConnections();
  await new Promise<void>((resolve) => app.server.close(() => resolve()));
  assert.equal((await request(proxy.address.port, {path: `/gone`})).status, 502);
  assert.equal(count(metrics.seriesFor(`r1`, `web`), `GET`, `proxy_error`), 1);
  assert.deepEqual([sink.lines[1]?.path, sink.lines[1]?.status, sink.lines[1]?.releaseId], [`/gone`, 502, `r1`]);
});

test(`retainReleases forgets the series of releases the daemon pruned`, () => {
  const metrics = new RequestMetrics();
  metrics.seriesFor(`r1`, `web`).record(0, 1, 1);
  metrics.seriesFor(`r2`, `web`).record(0, 1, 1);
  metrics.seriesFor(`r2`, `web#1`).record(0, 1, 1);
  metrics.retainReleases(new Set([`r2`]));
  assert.deepEqual([...metrics.series()].map((series) => `${series.releaseId}/${series.processId}`), [`r2/web`, `r2/web#1`]);
});

test(`puts each latency in the first bucket whose bound holds it`, () => {
  const series = new RequestMetrics().seriesFor(`r1`, `web`);
  for (const ms of [0.2, 1, 1.01, 9.9, 10_000, 60_000]) series.record(0, 1, ms);
  // Bounds: 1 ms, 2.5 ms, 5 ms, 10 ms, … 10 s, then +Inf.
  assert.deepEqual([...series.latencyBuckets], [2, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
  assert.equal(series.latencySumMs, 0.2 + 1 + 1.01 + 9.9 + 10_000 + 60_000);
});

test(`a proxy without metrics or access log records nothing and passes X-Request-ID through untouched`, async (t) => {
  const app = await startApp(t, `v1`, (req, res) => res.end(String(req.headers[`x-request-id`])));
  const proxy = await startProxy(t);
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  assert.equal((await request(proxy.address.port)).body, `undefined`, `no id is added`);
  assert.equal((await request(proxy.address.port, {headers: {'x-request-id': `not valid!`}})).body, `not valid!`);
  assert.equal(proxy.activeTargets[0]!.series, null);
});
