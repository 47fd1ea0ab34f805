import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import test from 'node:test';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {freePort} from '../helpers/ports.ts';
import {MAIN} from '../helpers/run-cli.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {parseExposition, scrape, sumOf} from '../helpers/prometheus-text.ts';
import {waitFor} from '../helpers/wait-for.ts';

test(`metrics.listen serves requests by release, method and status class, latency, the active release and daemon figures`, async (t) => {
  const port = await freePort();
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {metrics: {listen: port}, releaseRetention: {keep: 1}}));
  const before = await scrape(port);
  assert.equal(before.status, 200);
  assert.equal(before.contentType, `text/plain; version=0.0.4; charset=utf-8`);
  // No active release yet: the proxy's own 503 is counted without a release.
  assert.equal((await httpGet(daemon.proxyPort, `/`)).status, 503);
  assert.equal(sumOf(parseExposition((await scrape(port)).body), `rollbridge_http_requests_total`, {release: ``, status: `proxy_error`, method: `GET`}), 1);
  assert.equal(sumOf(parseExposition(before.body), `rollbridge_active_release_info`), 0, `no active release, no info sample`);

  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`, revision: `abc123`});
  const agent = new http.Agent({keepAlive: true, maxSockets: 4});
  t.after(() => agent.destroy());
  for (let i = 0; i < 20; i++) assert.equal((await httpGet(daemon.proxyPort, `/release`, {agent})).status, 200);
  for (let i = 0; i < 3; i++) assert.equal((await httpGet(daemon.proxyPort, `/echo`, {agent, method: `POST`, body: `x`})).status, 200);
  assert.equal((await httpGet(daemon.proxyPort, `/missing`, {agent, method: `PROPFIND`})).status, 200);

  let samples = parseExposition((await scrape(port)).body);
  assert.equal(sumOf(samples, `rollbridge_http_requests_total`, {release: `v1`, process: `web`, method: `GET`, status: `2xx`}), 20);
  assert.equal(sumOf(samples, `rollbridge_http_requests_total`, {release: `v1`, method: `POST`, status: `2xx`}), 3);
  assert.equal(sumOf(samples, `rollbridge_http_requests_total`, {release: `v1`, method: `other`}), 1, `unknown methods share one label value`);
  assert.equal(sumOf(samples, `rollbridge_http_request_duration_seconds_count`, {release: `v1`, process: `web`}), 24);
  assert.equal(sumOf(samples, `rollbridge_http_request_duration_seconds_bucket`, {release: `v1`, le: `+Inf`}), 24);
  assert.ok(sumOf(samples, `rollbridge_http_request_duration_seconds_sum`, {release: `v1`}) > 0);
  assert.equal(sumOf(samples, `rollbridge_active_release_info`, {release: `v1`, revision: `abc123`}), 1);
  assert.equal(sumOf(samples, `rollbridge_deploys_total`, {outcome: `succeeded`}), 1);
  assert.ok(sumOf(samples, `rollbridge_process_resident_memory_bytes`, {release: `v1`, process: `web`}) > 1_000_000);
  assert.ok(sumOf(samples, `rollbridge_process_cpu_seconds_total`, {release: `v1`, process: `web`}) > 0);
  assert.ok(sumOf(samples, `process_resident_memory_bytes`) > 10_000_000);
  assert.ok(sumOf(samples, `process_open_fds`) > 3);
  assert.ok(Math.abs(sumOf(samples, `process_start_time_seconds`) - Date.now() / 1000) < 600);
  assert.equal(sumOf(samples, `rollbridge_upstream_connections_open`, {release: `v1`}) >= 1, true);

  // In flight: a slow request is counted while it waits.
  const slow = httpGet(daemon.proxyPort, `/slow?ms=1500`);
  await waitFor(async () => sumOf(parseExposition((await scrape(port)).body), `rollbridge_http_requests_in_flight`, {release: `v1`}) === 1, {what: `one request in flight`});
  await slow;

  // A failed deploy (never healthy) and a rollback are counted; the active release info follows the switch.
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`bad1`), releaseId: `bad1`}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`});
  samples = parseExposition((await scrape(port)).body);
  assert.equal(sumOf(samples, `rollbridge_active_release_info`), 1);
  assert.equal(sumOf(samples, `rollbridge_active_release_info`, {release: `v2`}), 1);
  assert.equal(sumOf(samples, `rollbridge_deploys_total`, {outcome: `failed`}), 1);
  assert.equal(sumOf(samples, `rollbridge_deploys_total`, {outcome: `succeeded`}), 2);
  assert.equal(sumOf(samples, `rollbridge_health_check_failures_total`, {check: `health`}), 1);
  await daemon.call(`rollback`, {});
  samples = parseExposition((await scrape(port)).body);
  assert.equal(sumOf(samples, `rollbridge_rollbacks_total`, {trigger: `command`}), 1);
  assert.equal(sumOf(samples, `rollbridge_active_release_info`, {release: `v1`}), 1);

  // A crashed process is restarted and counted by reason.
  const pid = Number((await httpGet(daemon.proxyPort, `/pid`)).body.trim());
  process.kill(pid, `SIGKILL`);
  await waitFor(async () => sumOf(parseExposition((await scrape(port)).body), `rollbridge_process_restarts_total`, {process: `web`, reason: `crash`}) === 1, {what: `the crash restart counted`});

  // Releases pruned from the history (keep: 1) leave the labels.
  await daemon.call(`deploy`, {releasePath: daemon.release(`v3`), releaseId: `v3`});
  await daemon.call(`deploy`, {releasePath: daemon.release(`v4`), releaseId: `v4`});
  await waitFor(async () => {
    const releases = new Set(parseExposition((await scrape(port)).body).filter((sample) => sample.name === `rollbridge_http_requests_total`).map((sample) => sample.labels.release));
    return !releases.has(`v1`) && !releases.has(`v2`);
  }, {what: `the pruned releases v1 and v2 to leave the request series`});

  assert.equal((await scrape(port, `127.0.0.1`, `/other`)).status, 404);
});

test(`metrics.listen refuses a port that is taken with ERR_METRICS_LISTEN_FAILED naming metrics.listen`, async (t) => {
  const holder = http.createServer();
  await new Promise<void>((resolve) => holder.listen(0, `127.0.0.1`, resolve));
  t.after(() => holder.close());
  const port = (holder.address() as {port: number}).port;
  const dir = createTempDir(t);
  const configPath = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(configPath, JSON.stringify(webConfig(dir, {metrics: {listen: `127.0.0.1:${port}`}})));
  const result = spawnSync(process.execPath, [MAIN, `daemon`, `--config`, configPath], {cwd: dir, encoding: `utf8`, timeout: 20_000});
  assert.equal(result.status, 1);
  assert.match(result.stderr + result.stdout, /ERR_METRICS_LISTEN_FAILED/);
  assert.match(result.stderr + result.stdout, /Set metrics\.listen to a free port/);
  assert.equal(fs.existsSync(path.join(dir, `control.sock`)), false, `the daemon did not start`);
});
