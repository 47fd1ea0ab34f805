// Part 7, lifecycle: under saturating keep-alive load (64 connections, a fresh load process per operation),
// count failed requests across a rollback, a restart of the web process, a memory-limit replacement of
// the web process, and a deploy whose new release crashes 2 s after the switch inside a 10 s watch window
// (rolled back automatically). The app exits at once on SIGTERM (the harsher variant). Then a rolling
// restart of 2 and 4 replicas that each hold WebSockets (so each drain lasts drainTimeoutMs): its wall time
// shows whether the drains overlap.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {BenchDaemon} from './bench-daemon.ts';
import {BenchWebSocket} from './bench-web-socket.ts';
import {webConfig} from './bench-configs.ts';
import type {HttpLoadResult} from './load-client.ts';
import {LoadProcess} from './load-process.ts';
import {check} from './part-result.ts';
import type {BenchContext, PartResult} from './part-result.ts';
import {formatCount} from './stats.ts';

const CONNECTIONS = 64;
const ROLLING_REPLICAS = [2, 4];
const ROLLING_DRAIN_MS = 3_000;
const MB = 1024 * 1024;

type Operation = {name: string; run: (daemon: BenchDaemon) => Promise<string>};

export async function benchLifecycle(ctx: BenchContext, result: PartResult): Promise<void> {
  const dir = path.join(ctx.workDir, `lifecycle`);
  fs.mkdirSync(dir);
  const config = webConfig(`rb-bench-lifecycle`, {
    env: {APP_SHUTDOWN: `immediate`, APP_HOG_BYTES: String(150 * MB), APP_CRASH_AFTER_MS: `2000`},
    proxy: {drainTimeoutMs: 3_000, forceStopTimeoutMs: 3_000},
    health: {intervalMs: 25},
    keep: 5,
  });
  const web = (config.processes as Array<Record<string, unknown>>)[0]!;
  web.memory = {limitBytes: 120 * MB, checkIntervalMs: 200};
  const daemon = await BenchDaemon.start({cli: ctx.cli, dir, config});
  const rows: string[][] = [];
  try {
    const first = await daemon.deploy(`l01`);
    if (!first.ok) throw new Error(`The first deploy failed: ${first.error}`);
    const second = await daemon.deploy(`l02`);
    if (!second.ok) throw new Error(`The second deploy failed: ${second.error}`);
    const operations: Operation[] = [
      {name: `rollback (l02 → l01)`, run: async (d) => describe(await d.rollbridge([`rollback`, `--json`], 60_000))},
      {name: `restart --process web`, run: async (d) => describe(await d.rollbridge([`restart`, `--process`, `web`, `--json`], 60_000))},
      {name: `memory limit: web grows to 150 MB over a 120 MB limit, replaced`, run: (d) => memoryRestart(d)},
      {name: `deploy crash-03 --watch 10s (new release exits 2 s after the switch)`, run: async (d) => {
        const run = await d.rollbridge([`deploy`, `--release-path`, d.release(`crash-03`), `--release-id`, `crash-03`, `--watch`, `10s`, `--json`], 60_000);
        return describe(run);
      }},
    ];
    for (const operation of operations) {
      const {outcome, load} = await underLoad(daemon.proxyPort, () => operation.run(daemon));
      report(ctx, result, rows, operation.name, outcome, load);
    }
    const active = (await daemon.status()).activeReleaseId;
    result.checks.push(check(`active release after the crashed deploy was rolled back`, String(active), `l01`, active === `l01`));
  } finally {
    const problems = await daemon.stop();
    for (const line of problems) ctx.log(`  daemon: ${line}`);
  }
  for (const replicas of ROLLING_REPLICAS) await rollingRestart(ctx, result, dir, replicas, rows);
  result.tables.unshift({
    title: `Each operation under ${CONNECTIONS} keep-alive connections (a separate load process, 1 s of load before and after)`,
    header: [`operation`, `requests`, `failed`, `failures by kind`, `outcome`],
    rows,
  });
  result.notes.push(`the app is test/fixtures/apps/web-app.cjs with APP_SHUTDOWN=immediate (process.exit on SIGTERM); memory.limitBytes 120 MB, checkIntervalMs 200; GET /hog makes the serving process allocate 150 MB`);
  result.notes.push(`the watch-window operation is expected to exit 1 with ERR_WATCH_ROLLED_BACK: traffic goes back to the previous release, which stayed warm and was the proxy's fallback`);
}

/**
 * `restart --process web` of N replicas that each hold WebSockets, so every old replica drains for the whole
 * proxy.drainTimeoutMs (as an app with long-lived connections does): the restart's wall time shows whether
 * the drains run one after another (≈ N × drainTimeoutMs) or overlap (≈ one drainTimeoutMs).
 */
async function rollingRestart(ctx: BenchContext, result: PartResult, parent: string, replicas: number, rows: string[][]): Promise<void> {
  const dir = path.join(parent, `rolling-${replicas}`);
  fs.mkdirSync(dir);
  const config = webConfig(`rb-bench-rolling-${replicas}`, {env: {APP_SHUTDOWN: `immediate`}, proxy: {drainTimeoutMs: ROLLING_DRAIN_MS, forceStopTimeoutMs: 3_000, wsCloseJitterMs: 200}, health: {intervalMs: 25}});
  const web = (config.processes as Array<Record<string, unknown>>)[0]!;
  web.replicas = replicas;
  const daemon = await BenchDaemon.start({cli: ctx.cli, dir, config});
  const sockets: BenchWebSocket[] = [];
  const name = `restart --process web, ${replicas} replicas each holding WebSockets (drainTimeoutMs ${ROLLING_DRAIN_MS})`;
  try {
    const first = await daemon.deploy(`r01`);
    if (!first.ok) throw new Error(`The first deploy failed: ${first.error}`);
    // Round robin: 2 per replica.
    for (let index = 0; index < replicas * 2; index++) sockets.push(await BenchWebSocket.connect(daemon.proxyPort));
    const {outcome, wallMs, load} = await underLoad(daemon.proxyPort, async () => describe(await daemon.rollbridge([`restart`, `--process`, `web`, `--json`], 120_000)));
    // Drains one after another cannot take less than replicas × drainTimeoutMs: below it, they overlapped.
    result.checks.push(check(`rolling restart wall time, ${replicas} replicas (drains ${ROLLING_DRAIN_MS} ms each)`, `${wallMs} ms`, `< ${replicas * ROLLING_DRAIN_MS} ms (drains overlap)`, wallMs < replicas * ROLLING_DRAIN_MS));
    report(ctx, result, rows, name, outcome, load);
  } finally {
    for (const socket of sockets) socket.socket.destroy();
    const problems = await daemon.stop();
    for (const line of problems) ctx.log(`  daemon: ${line}`);
  }
}

/**
 * Runs `operation` under CONNECTIONS keep-alive connections of a separate load process, with 1 s of load
 * before and after it; `outcome` is the operation's text with its wall time appended.
 */
async function underLoad(proxyPort: number, operation: () => Promise<string>): Promise<{outcome: string; wallMs: number; load: HttpLoadResult}> {
  const load = LoadProcess.start([`http`, `--port`, String(proxyPort), `--connections`, String(CONNECTIONS), `--max-ms`, `120000`]);
  try {
    await load.waitFor(`ready`, 15_000);
    await delay(1_000);
    const startedAt = Date.now();
    const outcome = await operation();
    const wallMs = Date.now() - startedAt;
    await delay(1_000);
    return {outcome: `${outcome} (${wallMs} ms)`, wallMs, load: await load.finish<HttpLoadResult & {event: `result`}>()};
  } catch (error) {
    load.kill();
    throw error;
  }
}

/** One operation's line, table row and "0 failed requests" check, with the failures by kind. */
function report(ctx: BenchContext, result: PartResult, rows: string[][], name: string, outcome: string, load: HttpLoadResult): void {
  const failed = load.requests - load.ok;
  const kinds: Record<string, number> = {...load.byError};
  for (const [status, count] of Object.entries(load.byStatus)) if (!status.startsWith(`2`)) kinds[`HTTP ${status}`] = count;
  const kindText = Object.entries(kinds).map(([kind, count]) => `${kind} × ${count}`).join(`, `) || `none`;
  ctx.log(`  ${name}: ${formatCount(load.requests)} requests, ${failed} failed (${kindText}); ${outcome}`);
  rows.push([name, formatCount(load.requests), String(failed), kindText, outcome]);
  result.checks.push(check(`failed requests during: ${name}`, `${failed} of ${formatCount(load.requests)}`, `0`, failed === 0));
}

function describe(run: {code: number; stdout: string}): string {
  try {
    const json = JSON.parse(run.stdout) as {error?: {code: string}; activeReleaseId?: string; restarted?: string[]};
    if (json.error) return `exit ${run.code}, ${json.error.code}`;
    if (json.restarted) return `exit ${run.code}, restarted ${json.restarted.join(`, `)}`;
    return `exit ${run.code}, active ${json.activeReleaseId}`;
  } catch {
    return `exit ${run.code}`;
  }
}

async function memoryRestart(daemon: BenchDaemon): Promise<string> {
  const before = daemon.logRecords().filter((record) => record.msg === `process replaced` && record.reason === `memory`).length;
  await new Promise<void>((resolve, reject) => {
    http.get({host: `127.0.0.1`, port: daemon.proxyPort, path: `/hog`, agent: false}, (response) => {
      response.resume();
      response.on(`end`, () => resolve());
    }).on(`error`, reject);
  });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (daemon.logRecords().filter((record) => record.msg === `process replaced` && record.reason === `memory`).length > before) return `replaced for memory`;
    await delay(50);
  }
  return `NOT replaced within 30 s`;
}
