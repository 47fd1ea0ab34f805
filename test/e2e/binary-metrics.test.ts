// The Prometheus endpoint of the built binary, scraped by a real Prometheus (Debian's package) during a
// deploy under load; the series are read back through Prometheus's HTTP API (issue 14, item 1).
import assert from 'node:assert/strict';
import {execFile, spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {test} from 'node:test';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {freePort} from '../helpers/ports.ts';
import {scrape} from '../helpers/prometheus-text.ts';
import {requireCommands} from '../helpers/system-packages.ts';
import {beforeRemoving, createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {getBinaryPath} from './binary-path.ts';

const BINARY = getBinaryPath();
const PROMETHEUS = [{command: `prometheus`, pkg: `prometheus`}, {command: `promtool`, pkg: `prometheus`}];
/** The load loop never runs longer than this, whatever happens. */
const LOAD_LIMIT_MS = 30_000;

function cli(args: string[], cwd: string): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    execFile(BINARY, args, {cwd, env: {...process.env, ROLLBRIDGE_OUTPUT: ``}, timeout: 60_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, stdout, stderr});
    });
  });
}

/** GET a Prometheus API path and return its `data`. */
function promApi(port: number, apiPath: string): Promise<{resultType: string; result: Array<{metric: Record<string, string>; value: [number, string]}>}> {
  return new Promise((resolve, reject) => {
    http.get({host: `127.0.0.1`, port, path: apiPath, agent: false}, (response) => {
      let body = ``;
      response.setEncoding(`utf8`);
      response.on(`data`, (chunk: string) => (body += chunk));
      response.on(`end`, () => {
        try {
          const parsed = JSON.parse(body) as {status: string; data: never; error?: string};
          if (parsed.status !== `success`) reject(new Error(`Prometheus ${apiPath}: ${parsed.error ?? body}`));
          else resolve(parsed.data);
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    }).on(`error`, reject);
  });
}

async function queryValue(port: number, query: string): Promise<number | null> {
  const data = await promApi(port, `/api/v1/query?query=${encodeURIComponent(query)}`);
  const first = data.result[0];
  return first === undefined ? null : Number(first.value[1]);
}

test(`a real Prometheus scrapes metrics.listen during a deploy under load and reads back request counts and the active release`, async (t) => {
  if (!requireCommands(t, PROMETHEUS)) return;
  const metricsPort = await freePort();
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {
    metrics: {listen: `127.0.0.1:${metricsPort}`},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 2_000, forceStopTimeoutMs: 2_000, accessLog: `access.log`},
  }), {executable: BINARY});
  const deploy = async (releaseId: string) => {
    const result = await cli([`deploy`, `--release-path`, daemon.release(releaseId), `--release-id`, releaseId, `--revision`, `rev-${releaseId}`, `--config`, daemon.configPath, `--json`], daemon.dir);
    assert.equal(result.code, 0, result.stdout + result.stderr);
  };
  await deploy(`v1`);

  // Prometheus of its own: loopback, its own config and data directory, a 1 s scrape interval.
  const promDir = createTempDir(t, `rb-prom-`);
  const promPort = await freePort();
  fs.writeFileSync(path.join(promDir, `prometheus.yml`), [
    `global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}`,
    `scrape_configs:`,
    `  - job_name: rollbridge`,
    `    static_configs: [{targets: ["127.0.0.1:${metricsPort}"]}]`,
    ``,
  ].join(`\n`));
  const prometheus = spawn(`prometheus`, [
    `--config.file=${path.join(promDir, `prometheus.yml`)}`, `--storage.tsdb.path=${path.join(promDir, `data`)}`,
    `--web.listen-address=127.0.0.1:${promPort}`, `--log.level=error`,
  ], {cwd: promDir, stdio: [`ignore`, `ignore`, `pipe`]});
  let promStderr = ``;
  prometheus.stderr.on(`data`, (chunk: Buffer) => (promStderr += chunk.toString()));
  const promExited = new Promise<void>((resolve) => prometheus.once(`exit`, () => resolve()));
  // Stopped by its pid before its directory is removed.
  beforeRemoving(promDir, async () => {
    if (prometheus.exitCode === null && prometheus.signalCode === null) {
      process.kill(prometheus.pid!, `SIGTERM`);
      const timer = setTimeout(() => process.kill(prometheus.pid!, `SIGKILL`), 10_000);
      await promExited;
      clearTimeout(timer);
    }
  });
  await waitFor(async () => (await queryValue(promPort, `up{job="rollbridge"}`)) === 1, {timeoutMs: 30_000, what: `Prometheus to scrape the endpoint (stderr: ${promStderr})`});

  // Load: 4 keep-alive clients until stopped (bounded by LOAD_LIMIT_MS), counting what was answered.
  const agent = new http.Agent({keepAlive: true, maxSockets: 4});
  t.after(() => agent.destroy());
  let stop = false;
  const answered = {ok: 0, failed: 0};
  const startedAt = Date.now();
  const client = async () => {
    while (!stop && Date.now() - startedAt < LOAD_LIMIT_MS) {
      const status = await new Promise<number>((resolve) => {
        http.get({host: `127.0.0.1`, port: daemon.proxyPort, path: `/release?user=1`, agent}, (response) => {
          response.resume();
          response.on(`end`, () => resolve(response.statusCode ?? 0));
        }).on(`error`, () => resolve(0));
      });
      if (status === 200) answered.ok++;
      else answered.failed++;
    }
  };
  const clients = [client(), client(), client(), client()];
  await waitFor(() => answered.ok > 200, {what: `load before the deploy`});
  await deploy(`v2`);
  await waitFor(() => answered.ok > 600, {what: `load after the deploy`});
  stop = true;
  await Promise.all(clients);
  assert.equal(answered.failed, 0, `no request failed during the deploy`);

  // Prometheus catches up with the final counts, then the series read back through its API.
  await waitFor(async () => (await queryValue(promPort, `sum(rollbridge_http_requests_total{status="2xx",method="GET"})`)) === answered.ok, {timeoutMs: 20_000, what: `Prometheus to see all ${answered.ok} requests`});
  const v1 = await queryValue(promPort, `sum(rollbridge_http_requests_total{release="v1",status="2xx"})`);
  const v2 = await queryValue(promPort, `sum(rollbridge_http_requests_total{release="v2",status="2xx"})`);
  assert.ok(v1 !== null && v1 > 0 && v2 !== null && v2 > 0, `both releases served (v1 ${v1}, v2 ${v2})`);
  assert.equal(v1 + v2, answered.ok);
  assert.equal(await queryValue(promPort, `rollbridge_active_release_info{release="v2",revision="rev-v2"}`), 1);
  assert.equal(await queryValue(promPort, `rollbridge_active_release_info{release="v1"}`), null, `v1 is no longer active`);
  assert.equal(await queryValue(promPort, `max_over_time(rollbridge_active_release_info{release="v1",revision="rev-v1"}[5m])`), 1, `Prometheus saw v1 active before the deploy`);
  assert.equal(await queryValue(promPort, `rollbridge_deploys_total{outcome="succeeded"}`), 2);
  assert.ok((await queryValue(promPort, `sum(rollbridge_http_request_duration_seconds_count)`))! >= answered.ok);
  assert.equal(await queryValue(promPort, `rollbridge_http_requests_total{status=~"5xx|proxy_error|aborted"}`), null, `no error series`);

  // promtool accepts the exposition as the daemon serves it.
  const body = (await scrape(metricsPort)).body;
  const promtool = spawnSync(`promtool`, [`check`, `metrics`], {input: body, encoding: `utf8`, timeout: 30_000});
  assert.equal(promtool.status, 0, `promtool check metrics: ${promtool.stdout}${promtool.stderr}`);
});
