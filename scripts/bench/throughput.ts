// Part 1, throughput: wrk -t2 -c50 -d5s (keep-alive) against the same tiny Node app directly, through our
// proxy (a real daemon with the app deployed as its proxied process), through a second daemon with
// metrics.listen and proxy.accessLog on (same app, same config otherwise) and through nginx 1.22
// (1 worker, upstream keepalive 64), interleaved A B C D, 3 rounds.
import path from 'node:path';
import fs from 'node:fs';
import {BenchDaemon} from './bench-daemon.ts';
import {helloConfig} from './bench-configs.ts';
import {startNginx} from './nginx.ts';
import type {NginxInstance} from './nginx.ts';
import {check} from './part-result.ts';
import type {BenchContext, PartResult} from './part-result.ts';
import {readCpuMs} from './process-usage.ts';
import {median, round} from './stats.ts';
import {runWrk} from './wrk.ts';
import {findFreePort} from './nginx.ts';
import type {WrkResult} from './wrk.ts';

export const THROUGHPUT_GOALS = {ratio: 0.6, p99VsNginx: 2, observedLoss: 0.05} as const;
const UPSTREAM_RATIO = 0.06;

export type ThroughputOptions = {rounds?: number; durationS?: number; connections?: number};

type Target = {name: `direct` | `proxy` | `observed` | `nginx`; port: number; cpuMs: () => number};
type Run = WrkResult & {round: number; cpuUsPerRequest: number};

export async function benchThroughput(ctx: BenchContext, result: PartResult, options: ThroughputOptions = {}): Promise<void> {
  const rounds = options.rounds ?? 3;
  const durationS = options.durationS ?? 5;
  const connections = options.connections ?? 50;
  const dir = path.join(ctx.workDir, `d`);
  fs.mkdirSync(dir);
  const daemon = await BenchDaemon.start({cli: ctx.cli, dir, config: helloConfig(`rb-bench-throughput`)});
  let observed: BenchDaemon | null = null;
  let nginx: NginxInstance | null = null;
  try {
    const deploy = await daemon.deploy(`t1`);
    if (!deploy.ok) throw new Error(`The first deploy failed: ${deploy.error}`);
    const appPort = await daemon.activePort();
    // The same daemon config plus the Prometheus endpoint and the access log (scraped once a second, as a
    // Prometheus with a short interval would).
    const observedDir = path.join(ctx.workDir, `o`);
    fs.mkdirSync(observedDir);
    const metricsPort = await findFreePort();
    const accessLogPath = path.join(observedDir, `access.log`);
    observed = await BenchDaemon.start({cli: ctx.cli, dir: observedDir, config: {...helloConfig(`rb-bench-observed`), metrics: {listen: metricsPort}, logs: {dir: path.join(observedDir, `logs`), maxBytes: 64 * 1024 * 1024, files: 1}, proxy: {host: `127.0.0.1`, port: 0, accessLog: accessLogPath}}});
    const observedDeploy = await observed.deploy(`t1`);
    if (!observedDeploy.ok) throw new Error(`The deploy with metrics and access log failed: ${observedDeploy.error}`);
    const observedDaemon = observed;
    const targets: Target[] = [
      {name: `direct`, port: appPort, cpuMs: () => Number.NaN},
      {name: `proxy`, port: daemon.proxyPort, cpuMs: () => readCpuMs(daemon.pid)},
      {name: `observed`, port: observedDaemon.proxyPort, cpuMs: () => readCpuMs(observedDaemon.pid)},
    ];
    try {
      nginx = await startNginx({dir: path.join(ctx.workDir, `nginx`), upstreamPort: appPort});
      targets.push({name: `nginx`, port: nginx.port, cpuMs: nginx.cpuMs});
      result.notes.push(`nginx ${nginx.version}: 1 worker, upstream keepalive 64, proxy_http_version 1.1, Connection "", access_log off`);
    } catch (error) {
      result.findings.push(`nginx could not run, so the p99 comparison is missing: ${(error as Error).message}`);
    }
    ctx.log(`  warm-up (1 s per target)`);
    for (const target of targets) await runWrk({port: target.port, durationS: 1, connections});
    const runs: Record<Target[`name`], Run[]> = {direct: [], proxy: [], observed: [], nginx: []};
    for (let round = 1; round <= rounds; round++) {
      for (const target of targets) {
        const before = target.cpuMs();
        const scraper = target.name === `observed` ? setInterval(() => void scrapeOnce(metricsPort), 1_000) : null;
        const wrk = await runWrk({port: target.port, durationS, connections}).finally(() => {
          if (scraper !== null) clearInterval(scraper);
        });
        const cpuMs = target.cpuMs() - before;
        const run: Run = {...wrk, round, cpuUsPerRequest: (cpuMs * 1000) / wrk.requests};
        runs[target.name].push(run);
        ctx.log(`  round ${round} ${target.name.padEnd(6)} ${Math.round(wrk.requestsPerSec).toString().padStart(6)} req/s  p50 ${wrk.p50Ms} ms  p99 ${wrk.p99Ms} ms${Number.isFinite(run.cpuUsPerRequest) ? `  ${run.cpuUsPerRequest.toFixed(1)} µs CPU/req` : ``}${wrk.errors ? `  errors ${wrk.errors} (${wrk.errorDetail})` : ``}`);
      }
    }
    const summary = (name: Target[`name`]) => {
      const list = runs[name];
      const ratios = list.map((run, index) => run.requestsPerSec / runs.direct[index]!.requestsPerSec);
      return {
        requestsPerSec: Math.round(median(list.map((r) => r.requestsPerSec))),
        ratio: round(median(ratios), 3),
        p50Ms: median(list.map((r) => r.p50Ms)),
        p99Ms: median(list.map((r) => r.p99Ms)),
        cpuUsPerRequest: round(median(list.map((r) => r.cpuUsPerRequest)), 1),
        errors: list.reduce((sum, r) => sum + r.errors, 0),
        errorDetail: list.map((r) => r.errorDetail).filter(Boolean).join(` | `),
      };
    };
    const direct = summary(`direct`);
    const proxy = summary(`proxy`);
    const withObservation = summary(`observed`);
    // Same round, same conditions: the loss is judged per round, then the median taken.
    const observedLoss = round(median(runs.observed.map((run, index) => 1 - run.requestsPerSec / runs.proxy[index]!.requestsPerSec)), 3);
    const scraped = await scrapeOnce(metricsPort);
    const loggedLines = countLines(accessLogPath);
    const viaNginx = runs.nginx.length > 0 ? summary(`nginx`) : null;
    result.tables.push({
      title: `wrk -t2 -c${connections} -d${durationS}s, keep-alive, ${rounds} rounds interleaved (direct, proxy, nginx); medians`,
      header: [`target`, `req/s`, `ratio vs direct`, `p50 ms`, `p99 ms`, `CPU µs/request`, `errors`],
      rows: [
        [`direct to the tiny Node app`, String(direct.requestsPerSec), `1.00`, String(direct.p50Ms), String(direct.p99Ms), `-`, String(direct.errors)],
        [`rollbridge proxy (daemon)`, String(proxy.requestsPerSec), proxy.ratio.toFixed(2), String(proxy.p50Ms), String(proxy.p99Ms), String(proxy.cpuUsPerRequest), String(proxy.errors)],
        [`rollbridge proxy, metrics + access log on`, String(withObservation.requestsPerSec), withObservation.ratio.toFixed(2), String(withObservation.p50Ms), String(withObservation.p99Ms), String(withObservation.cpuUsPerRequest), String(withObservation.errors)],
        ...(viaNginx ? [[`nginx (1 worker, keepalive 64)`, String(viaNginx.requestsPerSec), viaNginx.ratio.toFixed(2), String(viaNginx.p50Ms), String(viaNginx.p99Ms), String(viaNginx.cpuUsPerRequest), String(viaNginx.errors)]] : []),
        [`upstream rollbridge 0.1.21 (anchor, not run)`, `-`, UPSTREAM_RATIO.toFixed(2), `-`, `-`, `-`, `-`],
      ],
    });
    result.tables.push({
      title: `every round`,
      header: [`round`, `target`, `req/s`, `p50 ms`, `p99 ms`, `CPU µs/request`],
      rows: ([`direct`, `proxy`, `observed`, `nginx`] as const).flatMap((name) => runs[name].map((run) => [String(run.round), name, String(Math.round(run.requestsPerSec)), String(run.p50Ms), String(run.p99Ms), Number.isFinite(run.cpuUsPerRequest) ? run.cpuUsPerRequest.toFixed(1) : `-`])),
    });
    result.checks.push(check(`proxy req/s ÷ direct req/s (same run)`, `${proxy.ratio.toFixed(3)} (${round(proxy.ratio / UPSTREAM_RATIO, 1)}× upstream's 0.06${viaNginx ? `; nginx ${viaNginx.ratio.toFixed(2)}` : ``})`, `≥ ${THROUGHPUT_GOALS.ratio}`, proxy.ratio >= THROUGHPUT_GOALS.ratio));
    if (viaNginx) {
      result.checks.push(check(`proxy p99 vs nginx p99`, `${proxy.p99Ms} ms vs ${viaNginx.p99Ms} ms (${round(proxy.p99Ms / viaNginx.p99Ms, 2)}×)`, `≤ ${THROUGHPUT_GOALS.p99VsNginx}×`, proxy.p99Ms <= THROUGHPUT_GOALS.p99VsNginx * viaNginx.p99Ms));
    } else {
      result.checks.push(check(`proxy p99 vs nginx p99`, `not measured (no nginx)`, `≤ ${THROUGHPUT_GOALS.p99VsNginx}×`, false));
    }
    result.checks.push(check(`req/s lost with metrics + access log on (same run, per round)`, `${(observedLoss * 100).toFixed(1)}% (${withObservation.requestsPerSec} vs ${proxy.requestsPerSec} req/s; CPU ${withObservation.cpuUsPerRequest} vs ${proxy.cpuUsPerRequest} µs/request)`, `≤ ${THROUGHPUT_GOALS.observedLoss * 100}%`, observedLoss <= THROUGHPUT_GOALS.observedLoss));
    result.notes.push(`metrics + access log: a second daemon with metrics.listen (scraped every second during its runs) and proxy.accessLog; ${loggedLines} access log lines written, ${scraped.dropped} dropped, /metrics ${scraped.bytes} bytes`);
    if (withObservation.errors > 0) result.findings.push(`wrk counted ${withObservation.errors} errors through the proxy with metrics and access log on: ${withObservation.errorDetail}`);
    if (proxy.errors > 0) result.findings.push(`wrk counted ${proxy.errors} errors through the proxy: ${proxy.errorDetail}`);
    const problems = daemon.problemLines();
    if (problems.length > 0) result.findings.push(`daemon warn/error log lines during the throughput run (${problems.length}), first: ${problems.slice(0, 3).join(` `)}`);
    result.notes.push(`CPU µs/request = utime+stime of the process (daemon pid ${daemon.pid}; nginx master + worker) over the wrk run ÷ requests`);
    result.data = {connections, durationS, rounds, direct, proxy, observed: withObservation, observedLoss, accessLogLines: loggedLines, nginx: viaNginx, runs};
  } finally {
    await nginx?.stop();
    const forcedObserved = await observed?.stop() ?? [];
    if (forcedObserved.length > 0) result.findings.push(`stopping the daemon with metrics on: ${forcedObserved.join(`; `)}`);
    const forced = await daemon.stop();
    if (forced.length > 0) result.findings.push(`stopping the daemon: ${forced.join(`; `)}`);
  }
}

/** One GET /metrics: its size and the access log's dropped-lines counter (0 when absent). */
async function scrapeOnce(port: number): Promise<{bytes: number; dropped: number}> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    const body = await response.text();
    const dropped = /^rollbridge_access_log_dropped_lines_total (\d+)$/m.exec(body)?.[1];
    return {bytes: body.length, dropped: Number(dropped ?? 0)};
  } catch {
    return {bytes: 0, dropped: 0};
  }
}

function countLines(file: string): number {
  try {
    let count = 0;
    const text = fs.readFileSync(file, `utf8`);
    for (let i = text.indexOf(`\n`); i !== -1; i = text.indexOf(`\n`, i + 1)) count++;
    return count;
  } catch {
    return 0;
  }
}
