import assert from 'node:assert/strict';
import {test} from 'node:test';
import {AccessLog, formatDurationMs, jsonString} from '../../src/proxy/access-log.ts';
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

test(`requests the traffic gate answers are recorded like the proxy's other answers; a held request's duration includes the hold`, async (t) => {
  const metrics = new RequestMetrics();
  const sink = memorySink();
  const proxy = await startProxy(t, {metrics, accessLog: new AccessLog(sink, {includeQuery: false}), maxHeldRequests: 1});
  const app = await startApp(t, `v1`);
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  const port = proxy.address.port;
  const series = metrics.seriesFor(`r1`, `web`);
  const line = (path: string) => sink.lines.find((entry) => entry.path === path);

  proxy.gate.setMaintenance({message: `Back soon`, retryAfterSeconds: 60});
  assert.equal((await request(port, {path: `/maintenance`})).status, 503);
  assert.equal(count(metrics.unrouted, `GET`, `proxy_error`), 1);
  assert.deepEqual([line(`/maintenance`)?.status, line(`/maintenance`)?.releaseId], [503, null]);
  proxy.gate.setMaintenance(null);

  // Paused: the first request is held, one more is over proxy.maxHeldRequests (1) and answered 503 at once.
  proxy.gate.pause(0);
  const held = request(port, {path: `/held`, agent: false});
  await waitFor(() => proxy.gate.status.held === 1, {what: `the request held`});
  const heldAt = performance.now();
  assert.equal((await request(port, {path: `/overflow`, agent: false})).status, 503);
  assert.equal(line(`/overflow`)?.status, 503);
  // A held request its client gives up on: no status, counted as aborted.
  const gone = rawClient(t, port);
  proxy.gate.maxHeld = 2;
  gone.socket.write(`POST /gone HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
  await waitFor(() => proxy.gate.status.held === 2, {what: `the second request held`});
  gone.socket.destroy();
  await waitFor(() => line(`/gone`) !== undefined, {what: `the abandoned held request recorded`});
  assert.equal(line(`/gone`)?.status, 0);
  assert.equal(count(metrics.unrouted, `POST`, `aborted`), 1);
  const resumedAt = performance.now();
  proxy.gate.resume();
  assert.equal((await held).status, 200);
  assert.equal(line(`/held`)?.releaseId, `r1`);
  // It was parked before heldAt and went on after resumedAt.
  assert.ok((line(`/held`)?.durationMs as number) >= resumedAt - heldAt, `held ${String(line(`/held`)?.durationMs)} ms`);
  assert.equal(count(series, `GET`, `2xx`), 1);

  // A pause that times out answers the request it held 503, recorded with the time it was held.
  proxy.gate.pause(0);
  const expired = request(port, {path: `/expired`, agent: false});
  await waitFor(() => proxy.gate.status.held === 1, {what: `the request held`});
  proxy.gate.pause(100); // pausing again restarts the timeout: it expires 100 ms from now
  assert.equal((await expired).status, 503);
  assert.equal(line(`/expired`)?.status, 503);
  assert.ok((line(`/expired`)?.durationMs as number) >= 100, `held until the pause timed out (${String(line(`/expired`)?.durationMs)} ms)`);
  assert.equal(count(metrics.unrouted, `GET`, `proxy_error`), 3, `maintenance, overflow, expired`);
});

test(`retainReleases forgets the series of releases the daemon pruned`, () => {
  const metrics = new RequestMetrics();
  metrics.seriesFor(`r1`, `web`).record(0, 1, 1);
  metrics.seriesFor(`r2`, `web`).record(0, 1, 1);
  metrics.seriesFor(`r2`, `web#1`).record(0, 1, 1);
  metrics.retainReleases(new Set([`r2`]));
  assert.deepEqual([...metrics.series()].map((series) => `${series.releaseId}/${series.processId}`), [`r2/web`, `r2/web#1`]);
});

test(`prints access log durations exactly as the rounded number would print, to the microsecond`, () => {
  const reference = (ms: number) => `${Math.round(ms * 1000) / 1000}`;
  const samples = [0, 0.0004, 0.0005, 0.001, 0.0015, 0.01, 0.1, 0.5, 1, 1.05, 2.1005, 999.9995, 1000, 60_000.25, 1e9 + 0.1234, 0.1 + 0.2];
  for (let i = 0; i < 20_000; i++) samples.push(i / 997, i * 0.0001, i * 13.0007);
  for (const ms of samples) assert.equal(formatDurationMs(ms), reference(ms), `durationMs ${ms}`);
});

test(`the access log's path is the JSON string JSON.stringify makes, for any characters`, () => {
  const samples = [``, `/`, `/a/b.html`, `/"quoted"`, `/back\\slash`, `/tab\there`, `/nul\u0000`, `/del\u007f`, `/caf\u00e9`, `/\u2028`, `/\ud800`, `/~!$&'()*+,;=:@[]{}|^\``];
  for (const value of samples) assert.equal(jsonString(value), JSON.stringify(value), value);
  for (let c = 0; c < 256; c++) {
    const value = `/x${String.fromCharCode(c)}y`;
    assert.equal(jsonString(value), JSON.stringify(value), `character ${c}`);
  }
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
