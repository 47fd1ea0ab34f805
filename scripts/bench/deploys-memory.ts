// Part deploys-memory: 1,000 deploys of the tiny app one after the other, each followed by one request
// through the proxy; the daemon's RSS (VmRSS from /proc) and its V8 heap (status `daemon.memory`) at
// deploys 1, 50, 100, 500 and 1,000. Goal: RSS grows ≤ 10 % from deploy 50 to deploy 1,000 (issue 15).
// The deploys go over the control socket (the CLI's own ControlClient) rather than 1,000 CLI processes,
// so that the part fits in a few minutes; what the daemon does per deploy is the same.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {ControlClient} from '../../src/control/client.ts';
import {BenchDaemon} from './bench-daemon.ts';
import {check} from './part-result.ts';
import type {BenchContext, PartResult} from './part-result.ts';
import {memoryMapTable} from './memory.ts';
import {readMemoryMap, sampleRss} from './process-usage.ts';
import type {MemoryMap} from './process-usage.ts';
import {formatMb, median, percentile} from './stats.ts';

export const DEPLOYS = 1_000;
export const CHECKPOINTS = [1, 50, 100, 500, 1_000] as const;
/** RSS may grow at most this much from deploy 50 to deploy 1,000. */
export const GROWTH_GOAL = 0.1;
/** The part gives up (and fails) when the deploys take longer than this on a loaded machine. */
const BUDGET_MS = 8 * 60_000;
const MB = 1024 * 1024;

/**
 * The app: perl (Debian's perl-base) starts in a few ms where Node needs ~40 ms of CPU, so 1,000 deploys
 * fit in a few minutes on a loaded machine; it answers each request with its release id and closes.
 */
const PERL_APP = `use strict; use warnings; use IO::Socket::INET;
my $server = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $ENV{ROLLBRIDGE_PORT}, Listen => 64, ReuseAddr => 1) or die "listen: $!";
$SIG{TERM} = sub { exit 0 };
while (my $client = $server->accept) {
  while (my $line = <$client>) { last if $line =~ /^\\r?\\n$/; }
  my $body = "$ENV{ROLLBRIDGE_RELEASE_ID}\\n";
  print $client "HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: " . length($body) . "\\r\\nConnection: close\\r\\n\\r\\n$body";
  close $client;
}
`;

type Checkpoint = {deploys: number; rss: number; anonymous: number; fileBacked: number; heapUsed: number; heapTotal: number; external: number; releases: number; elapsedS: number; map: MemoryMap | null};

export async function benchDeploysMemory(ctx: BenchContext, result: PartResult): Promise<void> {
  const dir = path.join(ctx.workDir, `d`);
  fs.mkdirSync(dir);
  const app = path.join(dir, `app.pl`);
  fs.writeFileSync(app, PERL_APP);
  const config = {
    application: `rb-bench-deploys-memory`,
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 2_000},
    processes: [{id: `web`, command: `perl ${app}`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/`, intervalMs: 25}}],
  };
  const daemon = await BenchDaemon.start({cli: ctx.cli, dir, config});
  const client = await ControlClient.connect(path.join(dir, `c.sock`));
  const agent = new http.Agent({keepAlive: true, maxSockets: 1});
  const checkpoints: Checkpoint[] = [];
  const durations: number[] = [];
  const failures: string[] = [];
  const started = performance.now();
  try {
    const releaseDir = daemon.release(`app`);
    for (let n = 1; n <= DEPLOYS; n++) {
      if (performance.now() - started > BUDGET_MS) {
        failures.push(`stopped after ${n - 1} deploys: the ${BUDGET_MS / 60_000} min budget of the part ran out`);
        break;
      }
      const releaseId = `m${String(n).padStart(4, `0`)}`;
      try {
        const deploy = await client.call(`deploy`, {releasePath: releaseDir, releaseId});
        durations.push(deploy.durationMs);
        const body = await get(daemon.proxyPort, agent);
        if (body !== `${releaseId}\n`) failures.push(`deploy ${releaseId}: the proxy answered ${JSON.stringify(body.slice(0, 80))}`);
      } catch (error) {
        failures.push(`deploy ${releaseId}: ${error instanceof Error ? error.message : String(error)}`);
        if (failures.length >= 5) break;
      }
      if ((CHECKPOINTS as readonly number[]).includes(n)) {
        const point = await measure(client, daemon.pid, n, (performance.now() - started) / 1000);
        checkpoints.push(point);
        ctx.log(`  after ${n} deploys (${point.elapsedS.toFixed(0)} s): RSS ${formatMb(point.rss)} (anonymous ${formatMb(point.anonymous)}, of which malloc ${formatMb((point.map?.mallocMain ?? Number.NaN) + (point.map?.mallocThreads ?? Number.NaN))} in ${point.map?.threadArenas ?? `?`} thread arenas and the main one; file-backed ${formatMb(point.fileBacked)}), heapUsed ${formatMb(point.heapUsed)} of ${formatMb(point.heapTotal)}, external ${formatMb(point.external)}, ${point.releases} releases retained`);
      }
    }
  } finally {
    client.close();
    agent.destroy();
    const forced = await daemon.stop();
    if (forced.length > 0) result.findings.push(`stopping the daemon: ${forced.join(`; `)}`);
  }
  result.tables.push({
    title: `${DEPLOYS} deploys of the tiny app one after the other (each then answers one request through the proxy); measured 1 s after the deploy, once no release drains`,
    header: [`after deploys`, `daemon RSS MB`, `anonymous MB`, `file-backed MB`, `heapUsed MB`, `heapTotal MB`, `external MB`, `releases retained`, `elapsed s`],
    rows: checkpoints.map((p) => [String(p.deploys), (p.rss / MB).toFixed(1), (p.anonymous / MB).toFixed(1), (p.fileBacked / MB).toFixed(1), (p.heapUsed / MB).toFixed(1), (p.heapTotal / MB).toFixed(1), (p.external / MB).toFixed(1), String(p.releases), p.elapsedS.toFixed(0)]),
  });
  result.tables.push(memoryMapTable(`where the RSS is at each checkpoint`, checkpoints.map((p) => [`after ${p.deploys} deploys`, p.map, Number.isFinite(p.heapTotal) ? p : null])));
  const at50 = checkpoints.find((p) => p.deploys === 50);
  const atEnd = checkpoints.find((p) => p.deploys === DEPLOYS);
  const growth = at50 && atEnd ? atEnd.rss / at50.rss - 1 : Number.NaN;
  const heapGrowth = at50 && atEnd ? atEnd.heapUsed - at50.heapUsed : Number.NaN;
  result.checks.push(check(
    `daemon RSS from deploy 50 to deploy ${DEPLOYS.toLocaleString(`en-US`)}`,
    at50 && atEnd ? `${formatMb(at50.rss)} → ${formatMb(atEnd.rss)} (${growth >= 0 ? `+` : ``}${(growth * 100).toFixed(1)} %; heapUsed ${heapGrowth >= 0 ? `+` : ``}${(heapGrowth / MB).toFixed(1)} MB)` : `not reached (${checkpoints.at(-1)?.deploys ?? 0} deploys)`,
    `≤ +${GROWTH_GOAL * 100} %`,
    Number.isFinite(growth) && growth <= GROWTH_GOAL,
  ));
  result.checks.push(check(`deploys that succeeded and answered through the proxy`, `${durations.length - failures.filter((f) => f.includes(`answered`)).length} of ${DEPLOYS}`, String(DEPLOYS), failures.length === 0 && durations.length === DEPLOYS));
  if (at50?.map && atEnd?.map) {
    const delta = (before: number, after: number) => `${after - before >= 0 ? `+` : ``}${((after - before) / MB).toFixed(1)} MB`;
    const otherAnonymous = (p: Checkpoint) => p.map!.otherAnonymous - p.heapTotal;
    result.notes.push(`what grew from deploy 50 to deploy ${DEPLOYS}: code pages ${delta(at50.map.codePages, atEnd.map.codePages)}, malloc ${delta(at50.map.mallocMain + at50.map.mallocThreads, atEnd.map.mallocMain + atEnd.map.mallocThreads)} (main arena ${delta(at50.map.mallocMain, atEnd.map.mallocMain)}, thread arenas ${delta(at50.map.mallocThreads, atEnd.map.mallocThreads)}), V8 heapTotal ${delta(at50.heapTotal, atEnd.heapTotal)} (heapUsed ${delta(at50.heapUsed, atEnd.heapUsed)}), other anonymous ${delta(otherAnonymous(at50), otherAnonymous(atEnd))}`);
  }
  if (Number.isFinite(growth) && growth > GROWTH_GOAL) result.findings.push(`daemon RSS grew ${(growth * 100).toFixed(1)} % from deploy 50 to deploy ${DEPLOYS} (goal ≤ ${GROWTH_GOAL * 100} %)`);
  for (const failure of failures.slice(0, 10)) result.findings.push(failure);
  if (durations.length > 0) result.notes.push(`daemon durationMs per deploy: median ${median(durations).toFixed(0)}, p95 ${percentile(durations, 95).toFixed(0)}, max ${Math.max(...durations).toFixed(0)}`);
  result.notes.push(`the app is a perl one-file HTTP server (answers its release id, \`Connection: close\`; health GET / every 25 ms); releaseRetention is the default (keep 10); the deploys go through the control socket with the CLI's ControlClient (one connection), not 1,000 CLI processes; RSS is the median of 1 s of 100 ms samples of VmRSS, heap figures are the daemon's process.memoryUsage() from \`status\` (daemon.memory)`);
  result.data = {checkpoints, durations: {median: median(durations), p95: percentile(durations, 95)}, failures};
}

async function measure(client: ControlClient, pid: number, deploys: number, elapsedS: number): Promise<Checkpoint> {
  let status = await client.call(`status`, {});
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (status.releases ?? []).some((release) => release.state === `draining`)) {
    await delay(100);
    status = await client.call(`status`, {});
  }
  await delay(1_000);
  const sampler = sampleRss(pid);
  await delay(1_000);
  const rss = median(sampler.stop());
  const map = readMemoryMap(pid);
  status = await client.call(`status`, {});
  const memory = status.daemon?.memory;
  return {deploys, rss, anonymous: map?.anonymous ?? Number.NaN, fileBacked: map ? map.rss - map.anonymous : Number.NaN, heapUsed: memory?.heapUsed ?? Number.NaN, heapTotal: memory?.heapTotal ?? Number.NaN, external: memory?.external ?? Number.NaN, releases: status.releases?.length ?? 0, elapsedS, map};
}

function get(port: number, agent: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get({host: `127.0.0.1`, port, path: `/`, agent, timeout: 10_000}, (response) => {
      let body = ``;
      response.setEncoding(`utf8`).on(`data`, (chunk: string) => (body += chunk)).on(`end`, () => resolve(response.statusCode === 200 ? body : `HTTP ${response.statusCode}: ${body}`));
    });
    request.on(`timeout`, () => request.destroy(new Error(`no answer within 10 s`)));
    request.on(`error`, reject);
  });
}
