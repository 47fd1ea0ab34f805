import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import {once} from 'node:events';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {RollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {probeHttp, waitForHealthy} from '../../src/supervisor/health-check.ts';
import {waitFor} from '../helpers/wait-for.ts';

type Handler = (request: http.IncomingMessage, response: http.ServerResponse, index: number) => void;

/** A real server on 127.0.0.1:0 answering request n with `handler(…, n)`; records when each request arrived. */
async function startServer(t: TestContext, handler: Handler): Promise<{url: string; arrivals: number[]}> {
  const arrivals: number[] = [];
  const server = http.createServer((request, response) => {
    arrivals.push(performance.now());
    handler(request, response, arrivals.length - 1);
  });
  server.listen(0, `127.0.0.1`);
  await once(server, `listening`);
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/ping`, arrivals};
}

function respond(status: number): Handler {
  return (_request, response) => {
    response.statusCode = status;
    response.end(`status ${status}`);
  };
}

const BASE = {timeoutMs: 5_000, intervalMs: 10, startDelayMs: 0, probeTimeoutMs: 1_000, successThreshold: 1, configKey: `processes[0].health`};

test(`passes on the first 2xx answer`, async (t) => {
  const {url} = await startServer(t, respond(204));
  const result = await waitForHealthy({...BASE, url});
  assert.equal(result.attempts, 1);
  assert.ok(result.durationMs >= 0);
});

test(`keeps probing after a 503 until the endpoint answers 200`, async (t) => {
  const {url} = await startServer(t, (request, response, index) => respond(index < 2 ? 503 : 200)(request, response, index));
  const result = await waitForHealthy({...BASE, url});
  assert.equal(result.attempts, 3);
});

test(`needs successThreshold consecutive passes, starting over after a failure`, async (t) => {
  const statuses = [200, 503, 200, 200, 200];
  const {url} = await startServer(t, (request, response, index) => respond(statuses[index] ?? 200)(request, response, index));
  const result = await waitForHealthy({...BASE, url, successThreshold: 3});
  assert.equal(result.attempts, 5);
});

test(`delays the first probe by startDelayMs`, async (t) => {
  const {url, arrivals} = await startServer(t, respond(200));
  const calledAt = performance.now();
  await waitForHealthy({...BASE, url, startDelayMs: 100});
  assert.equal(arrivals.length, 1);
  // setTimeout never fires early; the margin covers the two clocks' rounding.
  assert.ok((arrivals[0] as number) - calledAt >= 99, `first probe after ${(arrivals[0] as number) - calledAt} ms`);
});

test(`fails with ERR_HEALTH_CHECK_FAILED naming the last HTTP status and the config keys to change`, async (t) => {
  const {url} = await startServer(t, respond(503));
  // Every probe answers 503, so it is certainly the last failure.
  await assert.rejects(waitForHealthy({...BASE, url, timeoutMs: 2_000, intervalMs: 5_000}), (error: {code?: string; message?: string; fix?: string; details?: Record<string, unknown>}) => {
    assert.equal(error.code, `ERR_HEALTH_CHECK_FAILED`);
    assert.match(error.message ?? ``, new RegExp(`^Health check failed for ${url} after \\d+ attempts? in \\d+ ms: HTTP 503$`));
    assert.match(error.fix ?? ``, /processes\[0\]\.health\.path/);
    assert.match(error.fix ?? ``, /processes\[0\]\.health\.timeoutMs/);
    assert.match(error.fix ?? ``, /`rollbridge logs`/);
    assert.equal(error.details?.lastFailure, `HTTP 503`);
    return true;
  });
});

test(`an answer that is not 2xx is not marked as refused`, async (t) => {
  const {url} = await startServer(t, respond(503));
  assert.deepEqual(await probeHttp(url, 1_000), {ok: false, error: `HTTP 503`, status: 503});
});

test(`probes again soon after a failure, then backs off to intervalMs`, async (t) => {
  let probes = 0;
  const {url} = await startServer(t, (_request, response) => {
    probes += 1;
    response.writeHead(probes < 4 ? 503 : 200);
    response.end();
  });
  // With a 10 s interval only the ramp (10, 20, 40 ms) can reach the fourth probe before the deadline.
  const result = await waitForHealthy({...BASE, url, timeoutMs: 3_000, intervalMs: 10_000});
  assert.equal(result.attempts, 4);
});

test(`does not follow redirects`, async (t) => {
  const {url} = await startServer(t, (_request, response) => {
    response.writeHead(302, {location: `/elsewhere`});
    response.end();
  });
  assert.deepEqual(await probeHttp(url, 1_000), {ok: false, error: `HTTP 302`, status: 302});
});

test(`bounds each probe against a server that never answers`, async (t) => {
  const {url, arrivals} = await startServer(t, () => undefined);
  await assert.rejects(waitForHealthy({...BASE, url, timeoutMs: 400, probeTimeoutMs: 50}), (error: {code?: string; message?: string; details?: Record<string, unknown>}) => {
    assert.equal(error.code, `ERR_HEALTH_CHECK_FAILED`);
    assert.match(error.message ?? ``, /: probe timed out after \d+ ms$/);
    assert.ok((error.details?.attempts as number) >= 2);
    return true;
  });
  assert.ok(arrivals.length >= 2);
});

test(`never lets a probe run past the overall deadline`, async (t) => {
  const {url} = await startServer(t, () => undefined);
  await assert.rejects(waitForHealthy({...BASE, url, timeoutMs: 100, probeTimeoutMs: 60_000}), (error: {code?: string; message?: string; details?: Record<string, unknown>}) => {
    assert.equal(error.code, `ERR_HEALTH_CHECK_FAILED`);
    assert.equal(error.details?.attempts, 1);
    assert.match(error.message ?? ``, /: probe timed out after \d+ ms$/);
    return true;
  });
});

test(`reports a refused connection with its address, marked as refused (probed again sooner)`, async () => {
  // A port nothing listens on: bind one, then close it.
  const server = http.createServer();
  server.listen(0, `127.0.0.1`);
  await once(server, `listening`);
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const result = await probeHttp(`http://127.0.0.1:${port}/ping`, 1_000);
  assert.deepEqual(result, {ok: false, error: `connect ECONNREFUSED 127.0.0.1:${port}`, refused: true});
});

test(`reports no attempts when timeoutMs leaves no time for a probe`, async (t) => {
  const {url} = await startServer(t, respond(200));
  await assert.rejects(waitForHealthy({...BASE, url, timeoutMs: 0}), (error: {message?: string}) => {
    assert.match(error.message ?? ``, /after 0 attempts in \d+ ms: no attempts$/);
    return true;
  });
});

test(`rejects with the signal's reason when aborted between probes`, async (t) => {
  const controller = new AbortController();
  const {url} = await startServer(t, (request, response, index) => {
    if (index === 1) controller.abort(new Error(`process exited`));
    respond(503)(request, response, index);
  });
  await assert.rejects(waitForHealthy({...BASE, url, signal: controller.signal}), {message: `process exited`});
});

test(`rejects with the signal's reason when aborted during the start delay or a hanging probe`, async (t) => {
  const {url, arrivals} = await startServer(t, () => undefined);
  const duringDelay = new AbortController();
  const delayed = waitForHealthy({...BASE, url, startDelayMs: 60_000, signal: duringDelay.signal});
  duringDelay.abort(new Error(`stop requested`));
  await assert.rejects(delayed, {message: `stop requested`});
  assert.equal(arrivals.length, 0);

  const duringProbe = new AbortController();
  const probing = waitForHealthy({...BASE, url, probeTimeoutMs: 60_000, signal: duringProbe.signal});
  await waitFor(() => arrivals.length === 1, {what: `the probe to arrive`});
  duringProbe.abort(new Error(`process exited`));
  await assert.rejects(probing, {message: `process exited`});
});

test(`opens a fresh connection per probe and closes it when the probe settles, even past a large body`, async (t) => {
  const connectionHeaders: (string | undefined)[] = [];
  const server = http.createServer((request, response) => {
    connectionHeaders.push(request.headers.connection);
    response.writeHead(200);
    // The second answer is far larger than the 64 KiB a probe reads: the probe cuts it off.
    response.end(connectionHeaders.length === 2 ? Buffer.alloc(4 * 1024 * 1024) : `ok`);
  });
  server.listen(0, `127.0.0.1`);
  await once(server, `listening`);
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/ping`;
  const openConnections = async (): Promise<number> => new Promise((resolve, reject) => server.getConnections((error, count) => error ? reject(error) : resolve(count)));

  assert.deepEqual(await probeHttp(url, 1_000), {ok: true, status: 200});
  await waitFor(async () => await openConnections() === 0, {what: `the first probe's connection to close`});
  assert.deepEqual(await probeHttp(url, 1_000), {ok: true, status: 200});
  await waitFor(async () => await openConnections() === 0, {what: `the cut-off probe's connection to close`});
  assert.deepEqual(connectionHeaders, [`close`, `close`]);
});

test(`the same 404 on every probe fails early, naming the URL, the status, the probes and health.path`, async (t) => {
  const {url, arrivals} = await startServer(t, respond(404));
  // A timeout the test could never wait out: only the early failure ends it.
  const error = await waitForHealthy({...BASE, url, timeoutMs: 600_000}).then(() => null, (caught: unknown) => caught);
  assert.ok(error instanceof RollbridgeError);
  assert.equal(error.code, `ERR_HEALTH_CHECK_FAILED`);
  assert.ok(error.message.startsWith(`Health check failed for ${url}: HTTP 404 to each of the last `), error.message);
  assert.match(error.message, /HTTP 404 to each of the last \d+ probes over [\d.]+ s \(\d+ in all\)/);
  assert.equal(error.details.status, 404);
  assert.ok((error.details.steadyProbes as number) >= 5);
  // Every probe is counted; on a loaded machine the last one may be cut off before the server saw it.
  const attempts = error.details.attempts as number;
  assert.ok(attempts >= arrivals.length && attempts <= arrivals.length + 1, `${attempts} attempts, ${arrivals.length} arrived`);
  assert.match(error.fix ?? ``, /^Set processes\[0\]\.health\.path to a path the app answers with 2xx \(now "\/ping"\)/);
});

test(`a steady 401 fails early with a fix about authentication`, async (t) => {
  const {url} = await startServer(t, respond(401));
  const error = await waitForHealthy({...BASE, url, timeoutMs: 600_000}).then(() => null, (caught: unknown) => caught);
  assert.ok(error instanceof RollbridgeError);
  assert.equal(error.details.status, 401);
  assert.match(error.fix ?? ``, /without credentials .* or set processes\[0\]\.health\.path/);
});

test(`404s that turn into a 200 pass, and a 429 or 503 is waited out to the timeout`, async (t) => {
  const {url} = await startServer(t, (request, response, index) => respond(index < 3 ? 404 : 200)(request, response, index));
  assert.equal((await waitForHealthy({...BASE, url})).attempts, 4);
  for (const status of [429, 503]) {
    const {url: busy, arrivals} = await startServer(t, respond(status));
    const error = await waitForHealthy({...BASE, url: busy, timeoutMs: 2_500}).then(() => null, (caught: unknown) => caught);
    assert.ok(error instanceof RollbridgeError);
    assert.equal(error.details.status, undefined, `no early failure for ${status}`);
    assert.match(error.message, new RegExp(`after ${arrivals.length} attempts in \\d+ ms: HTTP ${status}$`));
  }
});
