import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import test from 'node:test';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {freePort} from '../helpers/ports.ts';
import {parseExposition, scrape, sumOf} from '../helpers/prometheus-text.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {fillUp, mountSmallDisk} from '../helpers/small-disk.ts';

type AccessLine = {time: string; method: string; path: string; status: number; bytes: number; durationMs: number; releaseId: string | null; processId: string | null; clientIp: string; requestId: string; retried: boolean};

const GENERATED_ID = /^[0-9a-f]{16}-[0-9a-f]+$/;

function readLines(file: string): AccessLine[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, `utf8`).split(`\n`).filter(Boolean).map((line) => JSON.parse(line) as AccessLine);
}

test(`proxy.accessLog writes one JSON line per request without the query, and passes a request id to the app`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 2_000, forceStopTimeoutMs: 2_000, accessLog: `logs/access.log`}}));
  const file = path.join(daemon.dir, `logs`, `access.log`);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  // Before any release: the proxy's own 503 is logged too, without a release.
  assert.equal((await httpGet(daemon.proxyPort, `/early`)).status, 503);
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});

  const generated = await httpGet(daemon.proxyPort, `/headers?token=secret&x=1`);
  const generatedId = (JSON.parse(generated.body) as Record<string, string>)[`x-request-id`];
  assert.match(generatedId ?? ``, GENERATED_ID, `a request without X-Request-ID gets one`);
  const kept = await httpGet(daemon.proxyPort, `/headers`, {headers: {'x-request-id': `deploy-42.a_b~c`}});
  assert.equal((JSON.parse(kept.body) as Record<string, string>)[`x-request-id`], `deploy-42.a_b~c`, `a valid id reaches the app unchanged`);
  for (const invalid of [`has space`, `x`.repeat(129), `semi;colon`]) {
    const replaced = await httpGet(daemon.proxyPort, `/headers`, {headers: {'x-request-id': invalid}});
    const seen = (JSON.parse(replaced.body) as Record<string, string>)[`x-request-id`];
    assert.match(seen ?? ``, GENERATED_ID, `an invalid id (${invalid.slice(0, 20)}) is replaced`);
  }
  const posted = await httpGet(daemon.proxyPort, `/echo?q=1`, {method: `POST`, body: `hello`});
  assert.equal(posted.body, `hello`);

  const lines = await waitFor(() => {
    const all = readLines(file);
    return all.length >= 7 ? all : null;
  }, {what: `seven access log lines`});
  const [early, first, second, , , , post] = lines;
  assert.deepEqual({...early, time: ``, durationMs: 0, requestId: ``}, {time: ``, method: `GET`, path: `/early`, status: 503, bytes: early!.bytes, durationMs: 0, releaseId: null, processId: null, clientIp: `127.0.0.1`, requestId: ``, retried: false});
  assert.ok(early!.bytes > 0);
  assert.equal(first!.path, `/headers`, `the query is left out by default`);
  assert.equal(first!.requestId, generatedId, `the log carries the id the app saw`);
  assert.equal(first!.status, 200);
  assert.equal(first!.releaseId, `v1`);
  assert.equal(first!.processId, `web`);
  assert.equal(first!.clientIp, `127.0.0.1`);
  assert.equal(first!.retried, false);
  assert.ok(first!.bytes > Buffer.byteLength(generated.body), `bytes count the head too`);
  assert.ok(first!.durationMs >= 0 && first!.durationMs < 5_000);
  assert.ok(Math.abs(Date.parse(first!.time) - Date.now()) < 60_000);
  assert.equal(second!.requestId, `deploy-42.a_b~c`);
  assert.equal(post!.method, `POST`);
  assert.equal(post!.path, `/echo`);
  assert.equal(post!.status, 200);
});

test(`proxy.accessLog keeps the query with includeQuery and rotates like the process logs (logs.maxBytes, logs.files)`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {
    logs: {dir: path.join(dir, `logs`), maxBytes: 4_096, files: 2},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 2_000, forceStopTimeoutMs: 2_000, accessLog: {path: `access.log`, includeQuery: true}},
  }));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const file = path.join(daemon.dir, `access.log`);
  const agent = new http.Agent({keepAlive: true, maxSockets: 1});
  t.after(() => agent.destroy());
  let sent = 0;
  // Each line is ~250 bytes: a few hundred requests fill the file and both rotated copies.
  await waitFor(async () => {
    for (let i = 0; i < 20; i++, sent++) await httpGet(daemon.proxyPort, `/release?n=${sent}`, {agent});
    return fs.existsSync(`${file}.2`);
  }, {timeoutMs: 30_000, what: `access.log.2 after rotations`});
  assert.equal(fs.existsSync(`${file}.3`), false, `at most logs.files copies are kept`);
  for (const copy of [`${file}.2`, `${file}.1`]) {
    const lines = readLines(copy);
    assert.ok(lines.length > 0);
    assert.ok(fs.statSync(copy).size <= 4_096 + 64 * 1024, `a rotated copy holds about logs.maxBytes`);
    for (const line of lines) assert.match(line.path, /^\/release\?n=\d+$/, `the query is kept with includeQuery`);
  }
  // Lines are consecutive across the rotated files: none lost, none doubled.
  const numbers = [...readLines(`${file}.2`), ...readLines(`${file}.1`), ...readLines(file)].map((line) => Number(line.path.slice(line.path.indexOf(`=`) + 1)));
  for (let i = 1; i < numbers.length; i++) assert.equal(numbers[i], numbers[i - 1]! + 1);
});

test(`on a full disk the access log drops lines and counts them, requests never fail, and no line is torn`, async (t) => {
  const disk = mountSmallDisk(t, `256k`);
  if (disk === null) return;
  const {dir, full} = disk;
  const file = path.join(full, `access.log`);
  const metricsPort = await freePort();
  const daemon = await startDaemon(t, (root) => webConfig(root, {
    metrics: {listen: metricsPort},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 2_000, forceStopTimeoutMs: 2_000, accessLog: file},
  }), {dir});
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const agent = new http.Agent({keepAlive: true, maxSockets: 4});
  t.after(() => agent.destroy());
  const counters = async () => {
    const samples = parseExposition((await scrape(metricsPort)).body);
    return {written: sumOf(samples, `rollbridge_access_log_lines_total`), dropped: sumOf(samples, `rollbridge_access_log_dropped_lines_total`)};
  };

  const filler = path.join(full, `filler`);
  fillUp(filler);
  for (let i = 0; i < 300; i++) assert.equal((await httpGet(daemon.proxyPort, `/release`, {agent})).status, 200, `request ${i} is answered on a full disk`);
  await waitFor(async () => (await counters()).dropped >= 300, {what: `300 dropped lines counted`});
  await daemon.record((record) => record.msg === `access log write failed; lines are dropped until it works again`, `the write failure`);
  for (const line of fs.readFileSync(file, `utf8`).split(`\n`).filter(Boolean)) JSON.parse(line);

  fs.rmSync(filler);
  const {written} = await counters();
  for (let i = 0; i < 10; i++) assert.equal((await httpGet(daemon.proxyPort, `/release?after=${i}`, {agent})).status, 200);
  await waitFor(async () => (await counters()).written >= written + 10, {what: `lines written again once there is space`});
  const lines = readLines(file);
  assert.deepEqual(lines.slice(-10).map((line) => line.path), Array.from({length: 10}, () => `/release`));
  await daemon.record((record) => record.msg === `access log writes again`, `the recovery`);
});
