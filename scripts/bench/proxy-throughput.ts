/**
 * Proxy throughput: wrk against a tiny Node app directly and through our proxy (each in its own
 * process), interleaved A B A B, reporting req/s, ratio, p50/p99 and the proxy's CPU per request.
 *
 *   node scripts/bench/proxy-throughput.ts [--rounds 3] [--duration 5s] [--connections 50] [--raw-relay] [--observed] [--json]
 *
 * --observed adds an interleaved target: the same proxy with request metrics and an access log (what
 * metrics.listen and proxy.accessLog turn on), reported as req/s and CPU lost against the plain proxy
 * (goal: at most 5% fewer req/s).
 * --raw-relay adds an interleaved target: a byte-piping TCP relay, the ceiling for any Node proxy.
 * --nginx adds nginx (1 worker, upstream keepalive), the reference for the p99 goal (needs `nginx` on PATH).
 */
import {spawn, execFileSync} from 'node:child_process';
import type {ChildProcess} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import {once} from 'node:events';
import {setTimeout as delay} from 'node:timers/promises';
import path from 'node:path';
import readline from 'node:readline';
import {parseArgs} from 'node:util';
import {
  DEFAULT_CLIENT_IDLE_TIMEOUT_MS, DEFAULT_MAX_HEADER_BYTES, DEFAULT_REQUEST_HEAD_TIMEOUT_MS,
  DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS, DEFAULT_UPSTREAM_RESPONSE_TIMEOUT_MS, DEFAULT_CLIENT_BODY_TIMEOUT_MS,
  DEFAULT_CLIENT_SEND_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS,
} from '../../src/config/defaults.ts';
import {BufferedLogFile} from '../../src/log/buffered-log-file.ts';
import {createSilentLogger} from '../../src/log/logger.ts';
import {AccessLog} from '../../src/proxy/access-log.ts';
import {ProxyServer} from '../../src/proxy/proxy-server.ts';
import {RequestMetrics} from '../../src/proxy/request-metrics.ts';

const root = path.resolve(import.meta.dirname, `../..`);
const APP = path.join(root, `test/fixtures/apps/proxy-hello.js`);

/** `accessLogPath`: with request metrics and an access log (as metrics.listen + proxy.accessLog). */
async function runProxyChild(appPort: number, accessLogPath?: string): Promise<void> {
  const log = createSilentLogger();
  const accessLogFile = accessLogPath === undefined ? null : new BufferedLogFile({path: accessLogPath, maxBytes: 64 * 1024 * 1024, files: 1, log});
  const proxy = await ProxyServer.start({
    metrics: accessLogFile === null ? null : new RequestMetrics(),
    accessLog: accessLogFile === null ? null : new AccessLog(accessLogFile, {includeQuery: false}),
    host: `127.0.0.1`, port: 0, trustForwarded: [`loopback`], maxHeaderBytes: DEFAULT_MAX_HEADER_BYTES,
    requestHeadTimeoutMs: DEFAULT_REQUEST_HEAD_TIMEOUT_MS, clientIdleTimeoutMs: DEFAULT_CLIENT_IDLE_TIMEOUT_MS,
    upstreamResponseTimeoutMs: DEFAULT_UPSTREAM_RESPONSE_TIMEOUT_MS, upstreamIdleTimeoutMs: DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS,
    clientBodyTimeoutMs: DEFAULT_CLIENT_BODY_TIMEOUT_MS, clientSendTimeoutMs: DEFAULT_CLIENT_SEND_TIMEOUT_MS, maxConnections: DEFAULT_MAX_CONNECTIONS,
    log: createSilentLogger(),
  });
  proxy.setActiveTargets([proxy.createTarget({releaseId: `bench`, processId: `web`, host: `127.0.0.1`, port: appPort})]);
  process.stdout.write(`${JSON.stringify({port: proxy.address.port})}\n`);
  process.on(`SIGTERM`, () => void proxy.close().then(() => process.exit(0)));
}

/** The ceiling: a TCP relay that pipes bytes without looking at them (one app connection per client). */
function runRawRelayChild(appPort: number): void {
  const server = net.createServer({noDelay: true}, (client) => {
    const app = net.connect({host: `127.0.0.1`, port: appPort, noDelay: true});
    client.pipe(app).pipe(client);
    client.on(`error`, () => app.destroy());
    app.on(`error`, () => client.destroy());
  });
  server.listen(0, `127.0.0.1`, () => process.stdout.write(`${JSON.stringify({port: (server.address() as net.AddressInfo).port})}\n`));
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, `127.0.0.1`);
  await once(server, `listening`);
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** nginx with one worker and upstream keep-alive: the reference the proxy is compared with. */
async function startNginx(appPort: number, dir: string): Promise<{child: ChildProcess; port: number}> {
  const port = await freePort();
  const conf = path.join(dir, `nginx.conf`);
  fs.writeFileSync(conf, `worker_processes 1;
error_log ${dir}/error.log;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream app { server 127.0.0.1:${appPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`);
  const child = spawn(`nginx`, [`-c`, conf, `-p`, dir, `-g`, `daemon off;`], {stdio: [`ignore`, `ignore`, `inherit`]});
  const deadline = Date.now() + 5_000;
  while (true) {
    const connected = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, `127.0.0.1`, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on(`error`, () => resolve(false));
    });
    if (connected) return {child, port};
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`nginx did not start (see ${dir}/error.log)`);
    await delay(50);
  }
}

function startChild(args: string[]): Promise<{child: ChildProcess; port: number}> {
  const child = spawn(process.execPath, args, {stdio: [`ignore`, `pipe`, `inherit`]});
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({input: child.stdout!});
    lines.once(`line`, (line) => resolve({child, port: (JSON.parse(line) as {port: number}).port}));
    child.once(`exit`, (code) => reject(new Error(`Child ${args.join(` `)} exited with ${code}`)));
  });
}

function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, `utf8`);
  const fields = stat.slice(stat.lastIndexOf(`)`) + 2).split(` `);
  return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14, 15)
}

type WrkResult = {requestsPerSec: number; requests: number; p50Ms: number; p99Ms: number; errors: number};

function toMs(value: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!match) return Number.NaN;
  const n = Number(match[1]);
  return match[2] === `us` ? n / 1000 : match[2] === `s` ? n * 1000 : n;
}

function runWrk(port: number, duration: string, connections: number): WrkResult {
  const out = execFileSync(`wrk`, [`-t2`, `-c${connections}`, `-d${duration}`, `--latency`, `http://127.0.0.1:${port}/`], {encoding: `utf8`});
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in/.exec(out);
  const p50 = /\s50%\s+(\S+)/.exec(out);
  const p99 = /\s99%\s+(\S+)/.exec(out);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    requestsPerSec: Number(rps?.[1]),
    requests: Number(total?.[1]),
    p50Ms: toMs(p50?.[1] ?? ``),
    p99Ms: toMs(p99?.[1] ?? ``),
    errors: (errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0) + Number(non2xx?.[1] ?? 0),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const {values} = parseArgs({options: {
    'child-proxy': {type: `string`},
    'child-raw-relay': {type: `string`},
    'raw-relay': {type: `boolean`, default: false},
    'access-log': {type: `string`},
    observed: {type: `boolean`, default: false},
    nginx: {type: `boolean`, default: false},
    rounds: {type: `string`, default: `3`},
    duration: {type: `string`, default: `5s`},
    connections: {type: `string`, default: `50`},
    json: {type: `boolean`, default: false},
  }});
  if (values[`child-proxy`] !== undefined) {
    await runProxyChild(Number(values[`child-proxy`]), values[`access-log`]);
    return;
  }
  if (values[`child-raw-relay`] !== undefined) {
    runRawRelayChild(Number(values[`child-raw-relay`]));
    return;
  }
  const rounds = Number(values.rounds);
  const connections = Number(values.connections);
  const app = await startChild([APP, `0`]);
  const proxy = await startChild([import.meta.filename, `--child-proxy`, String(app.port)]);
  const relay = values[`raw-relay`] ? await startChild([import.meta.filename, `--child-raw-relay`, String(app.port)]) : null;
  const observedDir = values.observed ? fs.mkdtempSync(path.join(os.tmpdir(), `rb-observed-`)) : null;
  const observed = observedDir === null ? null : await startChild([import.meta.filename, `--child-proxy`, String(app.port), `--access-log`, path.join(observedDir, `access.log`)]);
  const nginxDir = values.nginx ? fs.mkdtempSync(path.join(os.tmpdir(), `rb-nginx-`)) : null;
  const nginx = nginxDir === null ? null : await startNginx(app.port, nginxDir);
  const children = [app.child, proxy.child, ...(relay ? [relay.child] : []), ...(observed ? [observed.child] : []), ...(nginx ? [nginx.child] : [])];
  const withObservation: WrkResult[] = [];
  const observedCpuUsPerRequest: number[] = [];
  const raw: WrkResult[] = [];
  const viaNginx: WrkResult[] = [];
  process.on(`exit`, () => children.forEach((child) => child.kill(`SIGKILL`)));
  const direct: WrkResult[] = [];
  const proxied: WrkResult[] = [];
  const cpuUsPerRequest: number[] = [];
  const ticksPerSecond = Number(execFileSync(`getconf`, [`CLK_TCK`], {encoding: `utf8`}).trim()) || 100;
  runWrk(proxy.port, `1s`, connections); // warm-up (JIT, pool)
  if (observed) runWrk(observed.port, `1s`, connections);
  for (let round = 1; round <= rounds; round++) {
    const a = runWrk(app.port, values.duration, connections);
    direct.push(a);
    const before = cpuTicks(proxy.child.pid!);
    const b = runWrk(proxy.port, values.duration, connections);
    const ticks = cpuTicks(proxy.child.pid!) - before;
    proxied.push(b);
    cpuUsPerRequest.push((ticks / ticksPerSecond) * 1e6 / b.requests);
    if (observed) {
      const observedBefore = cpuTicks(observed.child.pid!);
      const c = runWrk(observed.port, values.duration, connections);
      withObservation.push(c);
      observedCpuUsPerRequest.push(((cpuTicks(observed.child.pid!) - observedBefore) / ticksPerSecond) * 1e6 / c.requests);
    }
    if (relay) raw.push(runWrk(relay.port, values.duration, connections));
    if (nginx) viaNginx.push(runWrk(nginx.port, values.duration, connections));
    if (!values.json) {
      process.stdout.write(`round ${round}: direct ${a.requestsPerSec.toFixed(0)} req/s (p50 ${a.p50Ms} ms, p99 ${a.p99Ms} ms) | `
        + `proxy ${b.requestsPerSec.toFixed(0)} req/s (p50 ${b.p50Ms} ms, p99 ${b.p99Ms} ms, ${cpuUsPerRequest.at(-1)!.toFixed(1)} µs CPU/req, errors ${b.errors}) | `
        + `ratio ${(b.requestsPerSec / a.requestsPerSec).toFixed(2)}`
        + (observed ? ` | metrics + access log ${withObservation.at(-1)!.requestsPerSec.toFixed(0)} req/s (p99 ${withObservation.at(-1)!.p99Ms} ms, ${observedCpuUsPerRequest.at(-1)!.toFixed(1)} µs CPU/req, lost ${((1 - withObservation.at(-1)!.requestsPerSec / b.requestsPerSec) * 100).toFixed(1)}%)` : ``)
        + (relay ? ` | raw TCP relay ${raw.at(-1)!.requestsPerSec.toFixed(0)} req/s (p99 ${raw.at(-1)!.p99Ms} ms, ratio ${(raw.at(-1)!.requestsPerSec / a.requestsPerSec).toFixed(2)})` : ``)
        + (nginx ? ` | nginx ${viaNginx.at(-1)!.requestsPerSec.toFixed(0)} req/s (p99 ${viaNginx.at(-1)!.p99Ms} ms, ratio ${(viaNginx.at(-1)!.requestsPerSec / a.requestsPerSec).toFixed(2)})` : ``) + `\n`);
    }
  }
  const ratios = proxied.map((b, i) => b.requestsPerSec / direct[i]!.requestsPerSec);
  const summary = {
    directRequestsPerSec: Math.round(median(direct.map((r) => r.requestsPerSec))),
    proxyRequestsPerSec: Math.round(median(proxied.map((r) => r.requestsPerSec))),
    ratio: Number(median(ratios).toFixed(3)),
    directP50Ms: median(direct.map((r) => r.p50Ms)), directP99Ms: median(direct.map((r) => r.p99Ms)),
    proxyP50Ms: median(proxied.map((r) => r.p50Ms)), proxyP99Ms: median(proxied.map((r) => r.p99Ms)),
    proxyCpuUsPerRequest: Number(median(cpuUsPerRequest).toFixed(1)),
    proxyErrors: proxied.reduce((sum, r) => sum + r.errors, 0),
    ...(nginx ? {
      nginxRatio: Number(median(viaNginx.map((r, i) => r.requestsPerSec / direct[i]!.requestsPerSec)).toFixed(3)),
      nginxP99Ms: median(viaNginx.map((r) => r.p99Ms)),
    } : {}),
    ...(observed ? {
      observedRequestsPerSec: Math.round(median(withObservation.map((r) => r.requestsPerSec))),
      observedLoss: Number(median(withObservation.map((r, i) => 1 - r.requestsPerSec / proxied[i]!.requestsPerSec)).toFixed(3)),
      observedCpuUsPerRequest: Number(median(observedCpuUsPerRequest).toFixed(1)),
      observedP99Ms: median(withObservation.map((r) => r.p99Ms)),
      observedErrors: withObservation.reduce((sum, r) => sum + r.errors, 0),
    } : {}),
    ...(relay ? {
      rawRelayRatio: Number(median(raw.map((r, i) => r.requestsPerSec / direct[i]!.requestsPerSec)).toFixed(3)),
      rawRelayP99Ms: median(raw.map((r) => r.p99Ms)),
    } : {}),
  };
  process.stdout.write(values.json ? `${JSON.stringify(summary)}\n` : `median: ${JSON.stringify(summary)}\n`);
  for (const child of children) child.kill(`SIGTERM`);
  if (observedDir !== null) {
    await once(observed!.child, `exit`);
    fs.rmSync(observedDir, {recursive: true, force: true});
  }
  if (nginxDir !== null) {
    await once(nginx!.child, `exit`);
    fs.rmSync(nginxDir, {recursive: true, force: true});
  }
}

await main();
