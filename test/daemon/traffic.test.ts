import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import test from 'node:test';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {startKeepAliveLoad} from '../helpers/keep-alive-load.ts';
import {freePort} from '../helpers/ports.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {parseExposition, scrape, sumOf} from '../helpers/prometheus-text.ts';
import type {Sample} from '../helpers/prometheus-text.ts';
import {MAIN} from '../helpers/run-cli.ts';
import {beforeRemoving} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';

type Traffic = {mode: string; held: number; maxHeld: number; switchHold: boolean; pause: {expired: boolean; deadline: string | null} | null; maintenance: {message: string; retryAfterSeconds: number} | null};

async function trafficOf(daemon: {call: (command: string, params?: Record<string, unknown>) => Promise<Record<string, unknown>>}): Promise<Traffic> {
  return (await daemon.call(`status`)).traffic as Traffic;
}

async function samplesAt(port: number): Promise<Sample[]> {
  return parseExposition((await scrape(port)).body);
}

test(`pause holds requests under load without failing one; resume answers every held request, from a release deployed meanwhile`, async (t) => {
  const metricsPort = await freePort();
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {metrics: {listen: metricsPort}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const load = startKeepAliveLoad(t, daemon.proxyPort, {maxMs: 20_000});
  const served = load.served;
  await waitFor(() => (served.get(`v1`) ?? 0) >= 50, {what: `load on v1`});
  const paused = await daemon.call(`pause`, {timeoutMs: 0});
  assert.equal(paused.changed, true);
  assert.equal((paused.traffic as Traffic).mode, `paused`);
  // Every client ends up waiting on a held request.
  await waitFor(async () => (await trafficOf(daemon)).held === 8, {what: `8 held requests`});
  const whilePaused = await samplesAt(metricsPort);
  assert.deepEqual([`open`, `paused`, `maintenance`].map((mode) => sumOf(whilePaused, `rollbridge_traffic_mode`, {mode})), [0, 1, 0]);
  assert.equal(sumOf(whilePaused, `rollbridge_requests_held`), 8);
  const answeredWhilePaused = load.answered();
  // Health checks are not held: a deploy completes while paused.
  const deployed = await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`});
  assert.equal(deployed.activeReleaseId, `v2`);
  assert.equal(load.answered(), answeredWhilePaused, `no request was answered while paused`);
  assert.equal((await trafficOf(daemon)).held, 8);
  const resumed = await daemon.call(`resume`);
  assert.equal(resumed.changed, true);
  assert.equal(resumed.released, 8);
  await waitFor(() => (served.get(`v2`) ?? 0) >= 50, {what: `load on v2 after resume`});
  await load.stop();
  assert.deepEqual(load.failures, []);
  const after = await samplesAt(metricsPort);
  assert.deepEqual([sumOf(after, `rollbridge_traffic_mode`, {mode: `open`}), sumOf(after, `rollbridge_requests_held`)], [1, 0]);
  assert.equal(sumOf(after, `rollbridge_http_requests_total`, {status: `proxy_error`}), 0, `no request was refused`);
  assert.equal((await daemon.call(`resume`)).changed, false, `a second resume changes nothing`);
  await daemon.record((record) => record.msg === `traffic resumed`, `traffic resumed`);
});

test(`a pause that times out answers its held requests and new ones 503 with Retry-After until resume`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  await daemon.call(`pause`, {timeoutMs: 400});
  const held = [httpGet(daemon.proxyPort), httpGet(daemon.proxyPort, `/echo`, {method: `POST`, body: `kept`})];
  await waitFor(async () => (await trafficOf(daemon)).held === 2, {what: `2 held requests`});
  for (const result of await Promise.all(held)) {
    assert.equal(result.status, 503);
    assert.equal(result.headers[`retry-after`], `5`);
    assert.match(result.body, /paused/);
  }
  const traffic = await trafficOf(daemon);
  assert.equal(traffic.mode, `paused`);
  assert.equal(traffic.pause?.expired, true);
  const later = await httpGet(daemon.proxyPort);
  assert.equal(later.status, 503, `a new request after the timeout is refused, not held`);
  await daemon.call(`resume`);
  assert.equal((await httpGet(daemon.proxyPort)).status, 200);
});

test(`at proxy.maxHeldRequests one more request is answered 503 at once`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 2_000, forceStopTimeoutMs: 2_000, maxHeldRequests: 2}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  await daemon.call(`pause`, {timeoutMs: 0});
  const held = [httpGet(daemon.proxyPort), httpGet(daemon.proxyPort)];
  await waitFor(async () => (await trafficOf(daemon)).held === 2, {what: `2 held requests`});
  const third = await httpGet(daemon.proxyPort);
  assert.equal(third.status, 503);
  assert.equal(third.headers[`retry-after`], `5`);
  assert.match(third.body, /proxy\.maxHeldRequests 2/);
  await daemon.call(`resume`);
  assert.deepEqual((await Promise.all(held)).map((result) => result.status), [200, 200]);
});

test(`maintenance answers 503 with Retry-After and a page in the format the client accepts, ends held requests, and off serves again`, async (t) => {
  const metricsPort = await freePort();
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {metrics: {listen: metricsPort}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  await daemon.call(`pause`, {timeoutMs: 0});
  const held = httpGet(daemon.proxyPort, `/api`, {headers: {accept: `application/json`}});
  await waitFor(async () => (await trafficOf(daemon)).held === 1, {what: `a held request`});
  const on = await daemon.call(`maintenance`, {enabled: true, message: `Back at 14:00 <UTC> & "soon"`, retryAfterSeconds: 120});
  assert.equal(on.changed, true);
  assert.equal((on.traffic as Traffic).mode, `maintenance`);
  assert.equal((on.traffic as Traffic).pause, null, `maintenance ends the pause`);
  const heldResult = await held;
  assert.equal(heldResult.status, 503);
  assert.equal(heldResult.headers[`retry-after`], `120`);
  assert.match(String(heldResult.headers[`content-type`]), /^application\/json/, `the held request gets the page in the format it accepts`);

  const agent = new http.Agent({keepAlive: true, maxSockets: 1});
  t.after(() => agent.destroy());
  const plain = await httpGet(daemon.proxyPort, `/`, {agent});
  assert.equal(plain.status, 503);
  assert.equal(plain.headers[`retry-after`], `120`);
  assert.match(String(plain.headers[`content-type`]), /^text\/plain/);
  assert.equal(plain.body, `Back at 14:00 <UTC> & "soon"\n`);
  const html = await httpGet(daemon.proxyPort, `/`, {agent, headers: {accept: `text/html,application/xhtml+xml,*/*;q=0.8`}});
  assert.match(String(html.headers[`content-type`]), /^text\/html/);
  assert.match(html.body, /<p>Back at 14:00 &#60;UTC&#62; &#38; &#34;soon&#34;<\/p>/);
  const json = await httpGet(daemon.proxyPort, `/api`, {agent, headers: {accept: `application/json`}});
  assert.match(String(json.headers[`content-type`]), /^application\/json/);
  assert.deepEqual(JSON.parse(json.body), {error: `maintenance`, message: `Back at 14:00 <UTC> & "soon"`, retryAfterSeconds: 120});
  // A request with a body gets the page and a close (its body is not read).
  const post = await httpGet(daemon.proxyPort, `/echo`, {method: `POST`, body: `x`.repeat(10_000)});
  assert.equal(post.status, 503);
  // The 5 answers of maintenance (the held request's included) are the proxy's own, without a release.
  const during = await samplesAt(metricsPort);
  assert.equal(sumOf(during, `rollbridge_traffic_mode`, {mode: `maintenance`}), 1);
  assert.equal(sumOf(during, `rollbridge_http_requests_total`, {release: ``, status: `proxy_error`}), 5);
  assert.equal(sumOf(during, `rollbridge_http_requests_total`, {release: ``, method: `POST`, status: `proxy_error`}), 1);

  await assert.rejects(daemon.call(`pause`), (error: unknown) => isRollbridgeError(error) && error.code === `ERR_TRAFFIC_MAINTENANCE` && /maintenance off/.test(error.fix ?? ``));
  await assert.rejects(daemon.call(`resume`), (error: unknown) => isRollbridgeError(error) && error.code === `ERR_TRAFFIC_MAINTENANCE`);
  const off = await daemon.call(`maintenance`, {enabled: false});
  assert.equal(off.changed, true);
  assert.equal((await httpGet(daemon.proxyPort, `/`, {agent})).body, `v1\n`);
  assert.equal((await daemon.call(`maintenance`, {enabled: false})).changed, false);
});

test(`pause and maintenance survive a daemon killed with SIGKILL and a clean restart`, async (t) => {
  const first = await startDaemon(t, (dir) => webConfig(dir));
  await first.call(`deploy`, {releasePath: first.release(`v1`), releaseId: `v1`});
  await first.call(`pause`, {timeoutMs: 0});
  first.child.kill(`SIGKILL`);
  await new Promise((resolve) => first.child.once(`exit`, resolve));
  const second = await startDaemon(t, (dir) => webConfig(dir), {dir: first.dir});
  const restored = await trafficOf(second);
  assert.equal(restored.mode, `paused`);
  assert.equal(restored.pause?.deadline, null);
  // The re-adopted v1 is there, but a request is held.
  const held = httpGet(second.proxyPort);
  await waitFor(async () => (await trafficOf(second)).held === 1, {what: `a held request after the restart`});
  await second.call(`maintenance`, {enabled: true, message: `Upgrading`});
  assert.equal((await held).status, 503);
  // A clean stop (SIGTERM: every process stops) keeps the maintenance for the next daemon.
  second.child.kill(`SIGTERM`);
  await new Promise((resolve) => second.child.once(`exit`, resolve));
  const third = await startDaemon(t, (dir) => webConfig(dir), {dir: first.dir});
  const traffic = await trafficOf(third);
  assert.equal(traffic.mode, `maintenance`);
  assert.equal(traffic.maintenance?.message, `Upgrading`);
  assert.equal((await httpGet(third.proxyPort)).body, `Upgrading\n`);
  await third.call(`maintenance`, {enabled: false});
  await third.call(`deploy`, {releasePath: third.release(`v2`), releaseId: `v2`});
  assert.equal((await httpGet(third.proxyPort)).body, `v2\n`);
});

test(`pause, resume and maintenance requests are validated strictly`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  const invalid = async (command: string, params: Record<string, unknown>, pattern: RegExp) => {
    await assert.rejects(daemon.call(command, params), (error: unknown) => {
      assert.ok(isRollbridgeError(error), String(error));
      assert.equal(error.code, `ERR_CONTROL_INVALID_REQUEST`);
      assert.match(error.message, pattern);
      return true;
    });
  };
  await invalid(`pause`, {timeoutMs: -1}, /timeoutMs/);
  await invalid(`pause`, {timeoutMs: 1.5}, /timeoutMs/);
  await invalid(`pause`, {until: `never`}, /until/);
  await invalid(`resume`, {force: true}, /force/);
  await invalid(`maintenance`, {}, /enabled/);
  await invalid(`maintenance`, {enabled: false, message: `x`}, /message/);
  await invalid(`maintenance`, {enabled: true, message: `a\r\nSet-Cookie: x=1`}, /message/);
  await invalid(`maintenance`, {enabled: true, message: `x`.repeat(1_001)}, /message/);
  await invalid(`maintenance`, {enabled: true, retryAfterSeconds: 86_401}, /retryAfterSeconds/);
  assert.equal((await trafficOf(daemon)).mode, `open`);
});

test(`a pipelined pair of requests held while paused both go on after resume`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  await daemon.call(`pause`, {timeoutMs: 0});
  const socket = net.connect(daemon.proxyPort, `127.0.0.1`);
  t.after(() => socket.destroy());
  let received = ``;
  socket.setEncoding(`latin1`).on(`data`, (chunk: string) => (received += chunk));
  socket.write(`GET /release HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello`);
  await waitFor(async () => (await trafficOf(daemon)).held === 1, {what: `the first pipelined request held`});
  assert.equal(received, ``);
  await daemon.call(`resume`);
  await waitFor(() => (received.match(/HTTP\/1\.1 200/g) ?? []).length === 2 && received.endsWith(`hello`), {what: `both pipelined responses`});
  assert.match(received, /v1\n/);
});

test(`a pause carries over a daemon replacement; requests the old daemon held are answered 503 with Retry-After`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  await daemon.call(`pause`, {timeoutMs: 0});
  const held = httpGet(daemon.proxyPort);
  await waitFor(async () => (await trafficOf(daemon)).held === 1, {what: `a held request`});
  const token = fs.readFileSync(`${daemon.socketPath}.token`, `utf8`).trim();
  await daemon.call(`replace`, {token, executable: {file: process.execPath, args: [MAIN]}, logPath: path.join(daemon.dir, `successor.log`)});
  const answer = await held;
  assert.equal(answer.status, 503);
  assert.equal(answer.headers[`retry-after`], `5`);
  const successor = await trafficOf(daemon);
  assert.equal(successor.mode, `paused`);
  const next = httpGet(daemon.proxyPort);
  await waitFor(async () => (await trafficOf(daemon)).held === 1, {what: `a request held by the successor`});
  await daemon.call(`resume`);
  assert.equal((await next).body, `v1\n`);
  // The successor is not the test's child: it is shut down before the directory (its socket, state) goes.
  const pid = ((await daemon.call(`status`)).daemon as {pid: number}).pid;
  beforeRemoving(daemon.dir, async () => {
    await daemon.call(`shutdown`).catch(() => undefined);
    await waitFor(() => !isPidAlive(pid), {what: `the successor daemon to exit`});
  });
});
