// Part 6, memory: daemon RSS idle (after one deploy) and peak under the throughput load (wrk -t2 -c50
// -d10s through the proxy), sampling /proc/<pid>/status VmRSS every 100 ms; then RSS 5 s after the load.
// The idle figure is broken down from /proc/<pid>/smaps: the executable's own file pages (code pages),
// other files, glibc malloc (main arena and thread arenas) and the other anonymous memory, of which the
// V8 heap (status `daemon.memory`).
import fs from 'node:fs';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {spawnTracked, stopChild} from './tracked-children.ts';
import {BenchDaemon} from './bench-daemon.ts';
import {helloConfig} from './bench-configs.ts';
import {check} from './part-result.ts';
import type {BenchContext, PartResult, Table} from './part-result.ts';
import {readMemoryMap, readRssBytes, sampleRss} from './process-usage.ts';
import type {MemoryMap} from './process-usage.ts';
import {formatMb, median} from './stats.ts';
import {runWrk} from './wrk.ts';

export const MEMORY_GOALS_MB = {idle: 60, load: 100} as const;
const MB = 1024 * 1024;

export async function benchMemory(ctx: BenchContext, result: PartResult): Promise<void> {
  const dir = path.join(ctx.workDir, `d`);
  fs.mkdirSync(dir);
  const daemon = await BenchDaemon.start({cli: ctx.cli, dir, config: helloConfig(`rb-bench-memory`)});
  try {
    const deploy = await daemon.deploy(`m1`);
    if (!deploy.ok) throw new Error(`The deploy failed: ${deploy.error}`);
    await delay(2_000);
    const idleSampler = sampleRss(daemon.pid);
    await delay(1_000);
    const idle = median(idleSampler.stop());
    const idleParts = readMemoryMap(daemon.pid);
    const heap = (await daemon.status()).daemon.memory;
    ctx.log(`  idle RSS after one deploy: ${formatMb(idle)} (code pages ${formatMb(idleParts?.codePages ?? Number.NaN)}, anonymous ${formatMb(idleParts?.anonymous ?? Number.NaN)}, of which malloc ${formatMb((idleParts?.mallocMain ?? Number.NaN) + (idleParts?.mallocThreads ?? Number.NaN))}; heapTotal ${formatMb(heap?.heapTotal ?? Number.NaN)}, heapUsed ${formatMb(heap?.heapUsed ?? Number.NaN)}, external ${formatMb(heap?.external ?? Number.NaN)})`);
    const loadSampler = sampleRss(daemon.pid);
    const wrk = await runWrk({port: daemon.proxyPort, durationS: 10, connections: 50});
    const samples = loadSampler.stop();
    const peak = Math.max(...samples);
    ctx.log(`  under load (wrk -t2 -c50 -d10s, ${Math.round(wrk.requestsPerSec)} req/s): peak RSS ${formatMb(peak)} over ${samples.length} samples`);
    await delay(5_000);
    const after = median(sampleRss(daemon.pid).stop());
    ctx.log(`  5 s after the load: ${formatMb(after)}`);
    result.tables.push({
      header: [`daemon RSS`, `MB`],
      rows: [
        [`idle, 2 s after one deploy (median of 1 s of samples)`, (idle / MB).toFixed(1)],
        [`peak under wrk -t2 -c50 -d10s through the proxy (${Math.round(wrk.requestsPerSec)} req/s; 100 ms samples)`, (peak / MB).toFixed(1)],
        [`5 s after the load`, (after / MB).toFixed(1)],
        [`upstream 0.1.21 (anchor, not run): idle / peak`, `61 / 108–111`],
      ],
    });
    const {rss: bare, parts: bareParts} = await bareNodeRss();
    result.tables[0]!.rows.splice(3, 0, [`reference: a bare Node ${process.version} process doing nothing (node -e 'setTimeout(…)'), 1 s after start`, (bare / MB).toFixed(1)]);
    result.tables.push(memoryMapTable(`where the idle RSS is`, [
      [`rollbridge daemon, idle after one deploy`, idleParts, heap ?? null],
      [`bare Node ${process.version} (node -e 'setTimeout(…)')`, bareParts, null],
    ]));
    if (idleParts && bareParts) result.notes.push(`of the idle RSS, ${formatMb(idleParts.codePages)} are the binary's own file pages (its code and read-only data the daemon has executed or read; a bare Node process touches ${formatMb(bareParts.codePages)} of its own) and ${formatMb(idleParts.anonymous)} anonymous memory (bare Node: ${formatMb(bareParts.anonymous)})`);
    result.checks.push(check(`daemon RSS idle`, formatMb(idle), `≤ ${MEMORY_GOALS_MB.idle} MB`, idle <= MEMORY_GOALS_MB.idle * MB));
    if (idle > MEMORY_GOALS_MB.idle * MB) result.findings.push(`idle daemon RSS is ${formatMb(idle)} after one deploy (goal ≤ ${MEMORY_GOALS_MB.idle} MB; upstream 61 MB); a bare Node process doing nothing takes ${formatMb(bare)} on this machine`);
    if (peak > MEMORY_GOALS_MB.load * MB) result.findings.push(`daemon RSS peaked at ${formatMb(peak)} under wrk -c50 (goal ≤ ${MEMORY_GOALS_MB.load} MB)`);
    if (after > idle * 1.1) result.notes.push(`RSS 5 s after the load (${formatMb(after)}) had not come back to the idle figure (${formatMb(idle)})`);
    result.checks.push(check(`daemon RSS peak under load`, formatMb(peak), `≤ ${MEMORY_GOALS_MB.load} MB`, peak <= MEMORY_GOALS_MB.load * MB));
    if (wrk.errors > 0) result.findings.push(`wrk counted ${wrk.errors} errors through the proxy: ${wrk.errorDetail}`);
    result.notes.push(`VmRSS of the daemon pid (${daemon.pid}) from /proc; the app is the tiny keep-alive Node app (test/fixtures/apps/proxy-hello.js)`);
    result.data = {idleBytes: idle, peakBytes: peak, afterBytes: after, requestsPerSec: wrk.requestsPerSec, idleParts, heap, bareParts};
  } finally {
    const forced = await daemon.stop();
    if (forced.length > 0) result.findings.push(`stopping the daemon: ${forced.join(`; `)}`);
  }
}

async function bareNodeRss(): Promise<{rss: number; parts: MemoryMap | null}> {
  const child = spawnTracked(process.execPath, [`-e`, `setTimeout(() => {}, 60_000)`], {stdio: `ignore`});
  try {
    await delay(1_000);
    return {rss: readRssBytes(child.pid!), parts: readMemoryMap(child.pid!)};
  } finally {
    await stopChild(child);
  }
}

type HeapFigures = {heapTotal: number; heapUsed: number; external: number};

/**
 * The RSS of each process by kind (MB): the binary's code pages, other files, glibc malloc (main arena,
 * thread arenas), V8's heap (committed, from process.memoryUsage()) and the rest of the anonymous memory.
 */
export function memoryMapTable(what: string, rows: Array<[string, MemoryMap | null, HeapFigures | null]>): Table {
  const mb = (bytes: number | undefined) => (bytes === undefined || !Number.isFinite(bytes) ? `-` : (bytes / MB).toFixed(1));
  return {
    title: `${what} (MB, from /proc/<pid>/smaps: code pages = file-backed pages of the executable itself, clean and shared with every process of the same file; malloc = glibc's main arena ([heap]) and its thread arenas; V8 heap = heapTotal, committed; other anonymous = the rest: V8's JIT code and compiler zones, thread stacks, the part of the V8 heap not resident)`,
    header: [`process`, `RSS`, `code pages`, `other files`, `malloc main / threads (arenas)`, `V8 heapTotal / heapUsed`, `external`, `other anonymous`, `threads`],
    rows: rows.map(([name, map, heap]) => [
      name,
      mb(map?.rss),
      mb(map?.codePages),
      mb(map?.otherFiles),
      map ? `${mb(map.mallocMain)} / ${mb(map.mallocThreads)} (${map.threadArenas})` : `-`,
      heap ? `${mb(heap.heapTotal)} / ${mb(heap.heapUsed)}` : `-`,
      mb(heap?.external),
      map ? mb(heap ? Math.max(0, map.otherAnonymous - heap.heapTotal) : map.otherAnonymous) : `-`,
      map ? String(map.threads) : `-`,
    ]),
  };
}
