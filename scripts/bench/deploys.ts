// Part 2, deploys: 20 back-to-back deploys while a separate load process keeps 64 keep-alive connections
// busy through the proxy; once with an app that shuts down gracefully on SIGTERM, once with one that
// exits at once, and once POST-heavy (75 % POST /echo with bodies of 0 B, 1 KiB, 64 KiB and 256 KiB,
// which the proxy never replays). Every non-2xx response and every client error counts as a failed request.
import fs from 'node:fs';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {BenchDaemon} from './bench-daemon.ts';
import type {DeployRun} from './bench-daemon.ts';
import {webConfig} from './bench-configs.ts';
import type {HttpLoadResult} from './load-client.ts';
import {LoadProcess} from './load-process.ts';
import {check} from './part-result.ts';
import type {BenchContext, PartResult} from './part-result.ts';
import {formatCount, median, percentile} from './stats.ts';

const DEPLOYS = 20;
const CONNECTIONS = 64;
const DRAIN_TIMEOUT_MS = 5_000;

type Mode = `graceful` | `immediate` | `post`;
/** The POST-heavy variant: share of POST /echo requests and their body sizes. */
const POST_PERCENT = 75;
const POST_SIZES = [0, 1024, 65_536, 262_144];

export async function benchDeploys(ctx: BenchContext, result: PartResult): Promise<void> {
  const rows: string[][] = [];
  const variants: Record<string, unknown> = {};
  for (const mode of [`graceful`, `immediate`, `post`] as const) {
    const variant = await runVariant(ctx, result, mode);
    variants[mode] = variant;
    rows.push(variant.row);
  }
  result.tables.unshift({
    title: `${DEPLOYS} back-to-back deploys, load = ${CONNECTIONS} keep-alive connections (undici Pool, 1 request in flight each) through the proxy`,
    header: [`APP_SHUTDOWN`, `requests`, `failed`, `failures by kind`, `req/s during deploys`, `req/s before`, `deploy wall median / p95 ms`, `daemon durationMs median / p95`, `deploys ok`, `releases that served`],
    rows,
  });
  result.notes.push(`the app is test/fixtures/apps/web-app.cjs (answers its release id); graceful = closes its server and idle connections on SIGTERM, immediate = process.exit(0) on SIGTERM, post = graceful with ${POST_PERCENT} % POST /echo requests (bodies ${POST_SIZES.join(`, `)} bytes, each echo checked byte count)`);
  result.notes.push(`proxy.drainTimeoutMs ${DRAIN_TIMEOUT_MS}, health.intervalMs 25; deploy wall time is measured around the \`rollbridge deploy --json\` process`);
  result.notes.push(`during the deploys the load, the daemon, each deploy CLI and the new app process share the 2 cores; "releases that served" counts the release ids seen in response bodies`);
  result.data = variants;
}

async function runVariant(ctx: BenchContext, result: PartResult, mode: Mode): Promise<{row: string[]} & Record<string, unknown>> {
  const dir = path.join(ctx.workDir, mode[0]!);
  fs.mkdirSync(dir);
  const prefix = mode === `graceful` ? `g` : mode === `immediate` ? `i` : `p`;
  const label = mode === `post` ? `POST-heavy load, APP_SHUTDOWN=graceful` : `APP_SHUTDOWN=${mode}`;
  const daemon = await BenchDaemon.start({
    cli: ctx.cli, dir,
    config: webConfig(`rb-bench-deploys`, {env: {APP_SHUTDOWN: mode === `immediate` ? `immediate` : `graceful`}, proxy: {drainTimeoutMs: DRAIN_TIMEOUT_MS, forceStopTimeoutMs: 3_000}, health: {intervalMs: 25}}),
  });
  let load: LoadProcess | null = null;
  try {
    const first = await daemon.deploy(`${prefix}00`);
    if (!first.ok) throw new Error(`The first deploy (${mode}) failed: ${first.error}`);
    const postArgs = mode === `post` ? [`--post-percent`, String(POST_PERCENT), `--post-sizes`, POST_SIZES.join(`,`)] : [];
    load = LoadProcess.start([`http`, `--port`, String(daemon.proxyPort), `--connections`, String(CONNECTIONS), `--max-ms`, `240000`, ...postArgs]);
    await load.waitFor(`ready`, 15_000);
    const loadStartedAt = Date.now();
    await delay(1_000);
    const deploys: DeployRun[] = [];
    for (let i = 1; i <= DEPLOYS; i++) {
      const deploy = await daemon.deploy(`${prefix}${String(i).padStart(2, `0`)}`);
      deploys.push(deploy);
      if (!deploy.ok) ctx.log(`  ${mode} deploy ${i} FAILED: ${deploy.error}`);
    }
    const firstStart = deploys[0]!.startedAt;
    const lastEnd = deploys.at(-1)!.startedAt + deploys.at(-1)!.wallMs;
    await delay(1_000);
    const load_ = await load.finish<HttpLoadResult & {event: `result`}>();
    load = null;

    const failed = load_.requests - load_.ok;
    const kinds: Record<string, number> = {...load_.byError};
    for (const [status, count] of Object.entries(load_.byStatus)) if (!status.startsWith(`2`)) kinds[`HTTP ${status}`] = count;
    const kindText = Object.entries(kinds).map(([kind, count]) => `${kind} × ${count}`).join(`, `) || `none`;
    const inWindow = (from: number, to: number) => Object.entries(load_.buckets).reduce((sum, [at, count]) => (Number(at) >= from && Number(at) < to ? sum + count : sum), 0);
    const duringRps = inWindow(firstStart, lastEnd) / ((lastEnd - firstStart) / 1000);
    const beforeRps = inWindow(firstStart - 1_000, firstStart) / 1;
    const walls = deploys.map((d) => d.wallMs);
    const durations = deploys.map((d) => d.durationMs).filter(Number.isFinite);
    const okDeploys = deploys.filter((d) => d.ok).length;
    ctx.log(`  ${mode}: ${formatCount(load_.requests)} requests, ${failed} failed (${kindText}); ${Math.round(duringRps)} req/s during deploys (${Math.round(beforeRps)} before); deploy wall median ${median(walls).toFixed(0)} ms, p95 ${percentile(walls, 95).toFixed(0)} ms; ${okDeploys}/${DEPLOYS} deploys ok`);
    const served = Object.keys(load_.byBody).filter((body) => body.startsWith(prefix)).length;

    result.checks.push(check(`failed requests over ${DEPLOYS} deploys, ${label}`, `${failed} of ${formatCount(load_.requests)}${failed ? ` (${kindText})` : ``}`, `0`, failed === 0));
    result.checks.push(check(`deploys that succeeded, ${label}`, `${okDeploys} of ${DEPLOYS}`, `${DEPLOYS}`, okDeploys === DEPLOYS));
    if (failed > 0) {
      const byDeploy = new Map<string, number>();
      for (const failure of load_.failures) {
        const index = deploys.findLastIndex((d) => d.startedAt <= failure.at);
        const deploy = deploys[index];
        const where = index === -1 ? `before the first deploy` : failure.at <= deploy!.startedAt + deploy!.wallMs ? `during deploy ${index + 1} (${deploy!.releaseId})` : `after deploy ${index + 1} (${deploy!.releaseId}) returned`;
        byDeploy.set(where, (byDeploy.get(where) ?? 0) + 1);
      }
      const samples = load_.failures.slice(0, 3).map((f) => `${f.kind}: ${f.detail}`).join(` | `);
      result.findings.push(`${label}: ${failed} failed requests of ${load_.requests} (${kindText}); when (first ${load_.failures.length}): ${[...byDeploy].map(([where, count]) => `${count} ${where}`).join(`, `)}; e.g. ${samples}`);
    }
    for (const deploy of deploys.filter((d) => !d.ok)) result.findings.push(`${label}: deploy ${deploy.releaseId} failed after ${deploy.wallMs.toFixed(0)} ms: ${deploy.error}`);
    const problems = daemon.problemLines(loadStartedAt);
    if (problems.length > 0 && (failed > 0 || okDeploys < DEPLOYS)) result.findings.push(`${label}: daemon warn/error log lines (${problems.length}), first: ${problems.slice(0, 4).join(` `)}`);
    else if (problems.length > 0) result.notes.push(`${label}: the daemon logged ${problems.length} warn/error lines, first: ${problems[0]}`);
    if (load_.abandonedAtStop > 0) result.notes.push(`${label}: ${load_.abandonedAtStop} requests were still in flight 5 s after the load stopped (not counted)`);
    return {
      row: [mode === `post` ? `graceful, ${POST_PERCENT} % POST` : mode, formatCount(load_.requests), String(failed), kindText, formatCount(duringRps), formatCount(beforeRps), `${median(walls).toFixed(0)} / ${percentile(walls, 95).toFixed(0)}`, `${median(durations).toFixed(0)} / ${percentile(durations, 95).toFixed(0)}`, `${okDeploys}/${DEPLOYS}`, `${served}/${DEPLOYS + 1}`],
      requests: load_.requests, failed, kinds, duringRps, beforeRps, releasesServed: served,
      deploys: deploys.map((d) => ({releaseId: d.releaseId, ok: d.ok, wallMs: Math.round(d.wallMs), durationMs: d.durationMs, error: d.error})),
      failures: load_.failures,
    };
  } finally {
    await load?.kill();
    const forced = await daemon.stop();
    if (forced.length > 0) result.findings.push(`${label}, stopping the daemon: ${forced.join(`; `)}`);
  }
}
