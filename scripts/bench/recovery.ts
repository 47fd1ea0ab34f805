// Part 8, recovery: traffic across the daemon's own failures and hand-overs, under 64 keep-alive
// connections (a separate load process per run, only 127.0.0.1):
//   1. the daemon is SIGKILLed and started again at once with `ensure-daemon` (same config): it re-adopts
//      the surviving web process from the state file; 3 rounds, medians;
//   2. `legacy-takeover` from a web app run in a GNU screen session on the proxy port, with the load
//      straight at the port and through nginx with an upstream that retries connection errors;
//   3. `ensure-daemon --replace` (a new daemon takes over the old one's socket and processes), when the
//      CLI has the flag.
import {randomBytes} from 'node:crypto';
import {execFile} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {promisify} from 'node:util';
import {BenchDaemon, readTail} from './bench-daemon.ts';
import type {DaemonStatus} from './bench-daemon.ts';
import {WEB_APP, webConfig} from './bench-configs.ts';
import type {HttpLoadResult} from './load-client.ts';
import {LoadProcess} from './load-process.ts';
import {canConnect, findFreePort, findNginx, retryingUpstreamConfig, startNginx} from './nginx.ts';
import type {NginxInstance} from './nginx.ts';
import {check} from './part-result.ts';
import type {BenchContext, PartResult} from './part-result.ts';
import {isAlive} from './process-usage.ts';
import {runRollbridge} from './rollbridge-cli.ts';
import type {CliRun} from './rollbridge-cli.ts';
import {formatCount, median, round} from './stats.ts';

const run = promisify(execFile);
const CONNECTIONS = 64;
const KILL_ROUNDS = 3;
const LOAD_BEFORE_MS = 1_000;
const LOAD_AFTER_MS = 2_000;

type Mode = `graceful` | `immediate`;
type LoadResult = HttpLoadResult & {event: `result`};
type RecoveryStatus = DaemonStatus & {recovery?: {adopted?: string[]; started?: string[]; missing?: string[]; durationMs?: number} | null};

export async function benchRecovery(ctx: BenchContext, result: PartResult): Promise<void> {
  await benchDaemonKill(ctx, result);
  await benchLegacyTakeover(ctx, result);
  await benchReplace(ctx, result);
  result.notes.push(`load: scripts/bench/load-client.ts, ${CONNECTIONS} keep-alive connections (undici Pool, 1 request in flight each); every non-2xx response and every client error is a failed request; "gap seen" is the longest pause between two successful responses (the client's Date.now() timestamps)`);
}

// ---- 1. daemon SIGKILL, restarted with ensure-daemon ----

async function benchDaemonKill(ctx: BenchContext, result: PartResult): Promise<void> {
  const dir = path.join(ctx.workDir, `k`);
  fs.mkdirSync(dir);
  const port = await findFreePort();
  const config = webConfig(`rb-bench-recovery`, {env: {APP_SHUTDOWN: `immediate`}, proxy: {port, drainTimeoutMs: 3_000, forceStopTimeoutMs: 3_000}});
  const daemon = await BenchDaemon.start({cli: ctx.cli, dir, config});
  let daemonPid = daemon.pid;
  const rows: string[][] = [];
  const rounds: Array<{resumeMs: number; downMs: number; failed: number; outsideWindow: string[]; webSame: boolean; adopted: boolean}> = [];
  try {
    const first = await daemon.deploy(`k1`);
    if (!first.ok) throw new Error(`The first deploy failed: ${first.error}`);
    const webPid = activeWebPid(await daemon.status());
    for (let round = 1; round <= KILL_ROUNDS; round++) {
      const load = await startLoad(port);
      let restart: CliRun;
      let killedAt: number;
      let loadResult: LoadResult;
      try {
        await delay(LOAD_BEFORE_MS);
        killedAt = Date.now();
        process.kill(daemonPid, `SIGKILL`);
        restart = await daemon.rollbridge([`ensure-daemon`, `--json`, `--daemon-log-path`, path.join(dir, `daemon2.log`), `--daemon-pid-path`, path.join(dir, `daemon2.pid`)], 30_000);
        await delay(LOAD_AFTER_MS);
        loadResult = await load.finish<LoadResult>();
      } catch (error) {
        await load.kill();
        throw error;
      }
      if (restart.code !== 0) throw new Error(`ensure-daemon after the SIGKILL exited ${restart.code}: ${restart.stdout.trim()} ${restart.stderr.trim()}; daemon log:\n${readTail(path.join(dir, `daemon2.log`), 10)}`);
      const status = JSON.parse(restart.stdout) as RecoveryStatus;
      daemonPid = status.daemon.pid;
      const restartEnd = restart.startedAt + restart.wallMs;
      const firstOk = endOfOutage(loadResult, killedAt, restartEnd);
      const resumeMs = firstOk - restart.startedAt;
      const failed = loadResult.requests - loadResult.ok;
      // Failures are expected only while no daemon listens: from the kill until ensure-daemon has returned.
      const outsideWindow = Object.entries(loadResult.failureSpans).filter(([, span]) => span.first < killedAt || span.last > restartEnd).map(([kind, span]) => `${kind} (${span.first - killedAt}..${span.last - killedAt} ms after the kill)`);
      const webAfter = activeWebPid(status);
      const adopted = status.recovery?.adopted ?? [];
      const round_ = {resumeMs, downMs: firstOk - killedAt, failed, outsideWindow, webSame: webAfter === webPid, adopted: adopted.length > 0};
      rounds.push(round_);
      const line = `round ${round}: ${formatCount(loadResult.requests)} requests, ${failed} failed (${failureKinds(loadResult)}); ensure-daemon ${restart.wallMs.toFixed(0)} ms; first response ${resumeMs} ms after the restart command (${round_.downMs} ms after the kill); web pid ${webPid} → ${webAfter}; recovery.adopted ${JSON.stringify(adopted)}`;
      ctx.log(`  kill -9: ${line}`);
      rows.push([String(round), formatCount(loadResult.requests), String(failed), failureKinds(loadResult), `${restart.wallMs.toFixed(0)}`, String(resumeMs), String(round_.downMs), `${webPid} → ${webAfter}`, adopted.join(`, `) || `none`, outsideWindow.join(`; `) || `none`]);
      if (outsideWindow.length > 0) result.findings.push(`daemon kill round ${round}: failures outside the kill → restart window: ${outsideWindow.join(`; `)}`);
      if (!round_.webSame) result.findings.push(`daemon kill round ${round}: the web process changed (${webPid} → ${webAfter}): it was restarted, not re-adopted; recovery ${JSON.stringify(status.recovery)}`);
    }
  } finally {
    const forced = daemonPid === daemon.pid ? [] : await stopDetachedDaemon(daemon.rollbridge.bind(daemon), daemonPid);
    forced.push(...await daemon.stop());
    if (forced.length > 0) result.notes.push(`daemon kill: stopping: ${forced.join(`; `)}`);
  }
  result.tables.push({
    title: `1. Daemon SIGKILLed under load, then \`rollbridge ensure-daemon\` at once (same config; re-adoption from the state file), ${CONNECTIONS} keep-alive connections, ${LOAD_BEFORE_MS / 1000} s of load before and ${LOAD_AFTER_MS / 1000} s after`,
    header: [`round`, `requests`, `failed`, `failures by kind`, `ensure-daemon wall ms`, `restart command → first response ms`, `kill → first response ms`, `web pid`, `recovery.adopted`, `failures outside kill → restart`],
    rows,
  });
  const resume = median(rounds.map((r) => r.resumeMs));
  const down = median(rounds.map((r) => r.downMs));
  const failedMedian = median(rounds.map((r) => r.failed));
  result.checks.push(check(`traffic resumes to the surviving web process without restarting it (kill -9 + ensure-daemon, ${KILL_ROUNDS} rounds)`, `web pid unchanged in ${rounds.filter((r) => r.webSame).length}/${rounds.length}, adopted in ${rounds.filter((r) => r.adopted).length}/${rounds.length}, failures only between kill and restart in ${rounds.filter((r) => r.outsideWindow.length === 0).length}/${rounds.length}; median restart command → first response ${resume} ms (kill → first response ${down} ms), median ${failedMedian} failed while down`, `web pid unchanged, adopted, failures only while down`, rounds.length === KILL_ROUNDS && rounds.every((r) => r.webSame && r.adopted && r.outsideWindow.length === 0)));
  result.data.daemonKill = rounds;
}

function activeWebPid(status: DaemonStatus): number | null {
  const active = status.releases.find((release) => release.releaseId === status.activeReleaseId);
  return active?.processes.find((proc) => proc.id.startsWith(`web`))?.pid ?? null;
}

/**
 * Epoch ms of the first successful response after the outage that began at `from`: the end of the
 * longest pause between successes that starts in [from - 50 ms, to] (responses already on their way
 * when the daemon was killed may still arrive right after the kill).
 */
function endOfOutage(load: HttpLoadResult, from: number, to: number): number {
  const gaps = load.okGaps.filter((g) => g.from >= from - 50 && g.from <= to);
  if (gaps.length === 0) return Number.NaN;
  return gaps.reduce((longest, g) => (g.to - g.from > longest.to - longest.from ? g : longest)).to;
}

/** The longest pause between two successful responses overlapping [from, to] (ms), 0 when none ≥ 5 ms. */
export function longestGap(load: HttpLoadResult, from: number, to: number): number {
  return load.okGaps.filter((g) => g.to >= from && g.from <= to).reduce((max, g) => Math.max(max, g.to - g.from), 0);
}

export function failureKinds(load: HttpLoadResult): string {
  return Object.entries(load.failureSpans).map(([kind, span]) => `${kind} × ${span.count}`).join(`, `) || `none`;
}

export async function startLoad(port: number): Promise<LoadProcess> {
  const load = LoadProcess.start([`http`, `--port`, String(port), `--connections`, String(CONNECTIONS), `--max-ms`, `60000`]);
  try {
    await load.waitFor(`ready`, 15_000);
  } catch (error) {
    await load.kill();
    throw error;
  }
  return load;
}

/** `rollbridge shutdown` for a daemon we did not spawn ourselves (ensure-daemon detaches it), then its pid. */
export async function stopDetachedDaemon(rollbridge: (args: string[], timeoutMs?: number) => Promise<CliRun>, pid: number): Promise<string[]> {
  if (!isAlive(pid)) return [];
  const notes: string[] = [];
  const shutdown = await rollbridge([`shutdown`, `--json`], 60_000);
  if (shutdown.code !== 0) notes.push(`rollbridge shutdown of daemon ${pid} exited ${shutdown.code}: ${shutdown.stdout.trim()}`);
  const deadline = Date.now() + 20_000;
  while (isAlive(pid) && Date.now() < deadline) await delay(20);
  if (isAlive(pid)) {
    notes.push(`daemon ${pid} still alive 20 s after shutdown: SIGKILLed`);
    process.kill(pid, `SIGKILL`);
  }
  return notes;
}

// ---- 2. legacy-takeover from a screen session ----

/** Where the load goes: straight at the port, or through nginx with `upstream` retrying entries. */
type Front = {name: string; upstream: {servers: number; backups?: number} | null; goal: boolean};

async function benchLegacyTakeover(ctx: BenchContext, result: PartResult): Promise<void> {
  if (!(await hasScreen())) {
    result.findings.push(`legacy-takeover not measured: GNU screen is not installed (apt-get install -y screen)`);
    return;
  }
  const fronts: Front[] = [{name: `direct`, upstream: null, goal: false}];
  if (findNginx()) {
    // The first nginx config tried; with keepalive 64 its 4 tries can all be used up by cached
    // connections the legacy app closed, so the goal is checked on the second one.
    fronts.push({name: `nginx, 4 × the port`, upstream: {servers: 4}, goal: false});
    fronts.push({name: `nginx, 32 × the port + 32 backup`, upstream: {servers: 32, backups: 32}, goal: true});
  } else {
    result.findings.push(`legacy-takeover through nginx not measured: nginx is not installed (apt-get install -y nginx)`);
  }
  const rows: string[][] = [];
  let index = 0;
  for (const mode of [`graceful`, `immediate`] as const) {
    for (const front of fronts) {
      index++;
      const outcome = await takeoverRun(ctx, mode, front, index, result.notes);
      rows.push([mode, front.name, formatCount(outcome.requests), String(outcome.failed), outcome.kinds, String(outcome.portGapMs), String(outcome.gapSeenMs), outcome.nginxErrors, outcome.outcome]);
      ctx.log(`  legacy-takeover ${mode}, ${front.name}: ${formatCount(outcome.requests)} requests, ${outcome.failed} failed (${outcome.kinds}); portGapMs ${outcome.portGapMs}; gap seen ${outcome.gapSeenMs} ms; ${outcome.outcome}`);
      if (front.goal) {
        result.checks.push(check(`failed requests across legacy-takeover through nginx (${front.name}), APP_SHUTDOWN=${mode}`, `${outcome.failed} of ${formatCount(outcome.requests)}${outcome.failed ? ` (${outcome.kinds})` : ``}`, `0`, outcome.failed === 0));
      }
      if (!outcome.ok) result.findings.push(`legacy-takeover ${mode}, ${front.name}: ${outcome.outcome}`);
      if (outcome.failed > 0 && front.goal) result.findings.push(`legacy-takeover ${mode}, ${front.name}: ${outcome.analysis}`);
      else if (outcome.failed > 0) result.notes.push(`legacy-takeover ${mode}, ${front.name} (no goal): ${outcome.analysis}`);
    }
  }
  result.tables.push({
    title: `2. \`rollbridge legacy-takeover\` from web-app.cjs run in a GNU screen session on the proxy port, ${CONNECTIONS} keep-alive connections at the port (direct) or at nginx in front of it`,
    header: [`APP_SHUTDOWN`, `load through`, `requests`, `failed`, `failures by kind`, `portGapMs (CLI)`, `gap seen by the client ms`, `nginx error log (failed tries)`, `outcome`],
    rows,
  });
  result.notes.push(`legacy app: \`screen -dmS <unique> bash -c '… exec setsid -w node web-app.cjs'\` with ROLLBRIDGE_PORT = the proxy port, ROLLBRIDGE_RELEASE_ID=legacy; \`setsid -w\` keeps the app out of the screen window's process group so that it gets the takeover's SIGTERM (APP_SHUTDOWN decides what it does) instead of screen's SIGHUP (Node resets an ignored SIGHUP, so a plain \`exec node\` in screen always dies at once, like APP_SHUTDOWN=immediate)`);
  result.notes.push(`nginx upstreams: every entry is the proxy port with max_fails=0 and keepalive 64; \`proxy_next_upstream error timeout non_idempotent; proxy_next_upstream_tries 0; proxy_next_upstream_timeout 0; proxy_connect_timeout 200ms\`; the nginx error log counts each failed try by kind (a try on a cached keep-alive connection the legacy app had closed, a refused connect while the port was free), and "no live upstreams" each 502 nginx answered after every entry had failed`);
}

type TakeoverOutcome = {ok: boolean; requests: number; failed: number; kinds: string; portGapMs: number | string; gapSeenMs: number; nginxErrors: string; outcome: string; analysis: string};

/** The upstream errors nginx logged, by kind: each is one try that failed (and was retried, or answered 502). */
export function nginxUpstreamErrors(errorLog: string): string {
  const kinds: Array<[string, RegExp]> = [
    [`connect refused`, /connect\(\) failed \(111/g],
    [`reset by peer`, /\(104: Connection reset by peer\)/g],
    [`upstream closed early`, /upstream prematurely closed/g],
    [`other upstream errors`, /while (?:connecting to|reading response header from|sending request to) upstream/g],
    [`no live upstreams (502)`, /no live upstreams/g],
  ];
  const counts = kinds.map(([name, pattern]) => [name, (errorLog.match(pattern) ?? []).length] as const);
  // The generic pattern counts every upstream error line: keep only what the specific ones did not.
  const specific = counts[0]![1] + counts[1]![1] + counts[2]![1];
  return counts.map(([name, count]) => [name, name === `other upstream errors` ? Math.max(0, count - specific) : count] as const)
    .filter(([, count]) => count > 0).map(([name, count]) => `${name} × ${count}`).join(`, `) || `none`;
}

async function takeoverRun(ctx: BenchContext, mode: Mode, front: Front, index: number, notes: string[]): Promise<TakeoverOutcome> {
  const dir = path.join(ctx.workDir, `t${index}`);
  fs.mkdirSync(dir);
  const port = await findFreePort();
  const session = `rbb-${randomBytes(4).toString(`hex`)}`;
  const configPath = path.join(dir, `rollbridge.json`);
  const pidPath = path.join(dir, `daemon.pid`);
  const logPath = path.join(dir, `daemon.log`);
  const config = {
    ...webConfig(`rb-bench-takeover`, {env: {APP_SHUTDOWN: mode}, proxy: {port, drainTimeoutMs: 3_000, forceStopTimeoutMs: 3_000}}),
    control: {path: path.join(dir, `c.sock`)},
    statePath: path.join(dir, `state.json`),
    legacyTakeover: {screens: [session], forceStopTimeoutMs: 3_000},
  };
  fs.writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
  const rollbridge = (args: string[], timeoutMs = 30_000) => runRollbridge(ctx.cli, [...args, `--config`, configPath], {cwd: dir, timeoutMs});
  let nginx: NginxInstance | null = null;
  let legacyPid = 0;
  let daemonPid = 0;
  try {
    const script = `ROLLBRIDGE_PORT=${port} ROLLBRIDGE_RELEASE_ID=legacy APP_SHUTDOWN=${mode} exec setsid -w "${process.execPath}" "${WEB_APP}"`;
    await run(`screen`, [`-dmS`, session, `bash`, `-c`, script], {cwd: dir});
    const deadline = Date.now() + 10_000;
    while (!(await canConnect(port))) {
      if (Date.now() > deadline) throw new Error(`The legacy app in screen session ${session} did not listen on ${port} within 10 s`);
      await delay(20);
    }
    legacyPid = Number(await httpText(port, `/pid`));
    let loadPort = port;
    if (front.upstream) {
      nginx = await startNginx({dir: path.join(dir, `ngx`), upstreamPort: port, proxy: retryingUpstreamConfig(port, front.upstream)});
      loadPort = nginx.port;
    }
    const releasePath = path.join(dir, `r`, `t1`);
    fs.mkdirSync(releasePath, {recursive: true});
    const load = await startLoad(loadPort);
    let takeover: CliRun;
    let loadResult: LoadResult;
    try {
      await delay(LOAD_BEFORE_MS);
      takeover = await rollbridge([`legacy-takeover`, `--release-path`, releasePath, `--release-id`, `t1`, `--json`, `--daemon-log-path`, logPath, `--daemon-pid-path`, pidPath], 60_000);
      daemonPid = readPid(pidPath);
      await delay(LOAD_AFTER_MS / 2);
      loadResult = await load.finish<LoadResult>();
    } catch (error) {
      await load.kill();
      throw error;
    }
    const end = takeover.startedAt + takeover.wallMs;
    let json: {activeReleaseId?: string; portGapMs?: number; legacy?: {stopped: number; killed: number}; error?: {code: string; message: string}} = {};
    try {
      json = JSON.parse(takeover.stdout) as typeof json;
    } catch {
      // reported below with the exit code
    }
    const ok = takeover.code === 0 && json.activeReleaseId === `t1`;
    const outcome = ok
      ? `exit 0 in ${takeover.wallMs.toFixed(0)} ms, active t1, legacy ${json.legacy?.stopped ?? 0} stopped / ${json.legacy?.killed ?? 0} killed`
      : `exit ${takeover.code}: ${json.error ? `${json.error.code}: ${json.error.message}` : (takeover.stdout + takeover.stderr).trim().slice(0, 300)}`;
    const failed = loadResult.requests - loadResult.ok;
    const errorLog = nginx ? readText(path.join(dir, `ngx`, `error.log`)) : ``;
    const upstreamErrors = nginxUpstreamErrors(errorLog);
    const gapSeenMs = longestGap(loadResult, takeover.startedAt, end);
    const spans = Object.entries(loadResult.failureSpans).map(([kind, span]) => `${kind} × ${span.count} from ${span.first - takeover.startedAt} to ${span.last - takeover.startedAt} ms after the command started`).join(`; `);
    const gaps = loadResult.okGaps.filter((g) => g.to >= takeover.startedAt && g.from <= end).sort((a, b) => b.to - b.from - (a.to - a.from)).slice(0, 3).map((g) => `${g.to - g.from} ms at +${g.from - takeover.startedAt}`).join(`, `);
    const analysis = `${failed} failed (${spans}); longest pauses without a successful response: ${gaps || `none ≥ 5 ms`}; CLI portGapMs ${json.portGapMs ?? `-`}${nginx ? `; nginx error log: ${upstreamErrors}` : ``}`;
    return {ok, requests: loadResult.requests, failed, kinds: failureKinds(loadResult), portGapMs: json.portGapMs ?? `-`, gapSeenMs, nginxErrors: nginx ? upstreamErrors : `-`, outcome, analysis};
  } finally {
    await nginx?.stop();
    daemonPid ||= readPid(pidPath);
    if (daemonPid > 0) notes.push(...await stopDetachedDaemon(rollbridge, daemonPid));
    await run(`screen`, [`-S`, session, `-X`, `quit`]).catch(() => undefined);
    if (legacyPid > 0 && isAlive(legacyPid)) process.kill(legacyPid, `SIGKILL`);
  }
}

async function hasScreen(): Promise<boolean> {
  try {
    await run(`screen`, [`-v`]);
    return true;
  } catch (error) {
    // `screen -v` exits 1 after printing its version
    return /Screen version/i.test(String((error as {stdout?: string}).stdout ?? ``));
  }
}

function httpText(port: number, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({host: `127.0.0.1`, port, path: urlPath, agent: false}, (response) => {
      let body = ``;
      response.setEncoding(`utf8`).on(`data`, (chunk: string) => (body += chunk)).on(`end`, () => resolve(body.trim()));
    }).on(`error`, reject);
  });
}

function readPid(file: string): number {
  const pid = Number(readText(file).trim());
  return Number.isInteger(pid) && pid > 0 ? pid : 0;
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, `utf8`);
  } catch {
    return ``;
  }
}

// ---- 3. ensure-daemon --replace ----

async function benchReplace(ctx: BenchContext, result: PartResult): Promise<void> {
  const help = await runRollbridge(ctx.cli, [`ensure-daemon`, `--help`], {cwd: ctx.workDir, timeoutMs: 15_000});
  if (!/--replace\b/.test(help.stdout + help.stderr)) {
    ctx.log(`  ensure-daemon --replace: not available (\`ensure-daemon --help\` has no --replace)`);
    result.tables.push({title: `3. \`rollbridge ensure-daemon --replace\` under load`, header: [`result`], rows: [[`not available: \`ensure-daemon --help\` of ${ctx.cli.version} has no --replace`]]});
    result.notes.push(`ensure-daemon --replace: not available in the measured rollbridge, so not measured`);
    return;
  }
  const dir = path.join(ctx.workDir, `x`);
  fs.mkdirSync(dir);
  const port = await findFreePort();
  const config = webConfig(`rb-bench-replace`, {env: {APP_SHUTDOWN: `immediate`}, proxy: {port, drainTimeoutMs: 3_000, forceStopTimeoutMs: 3_000}});
  const daemon = await BenchDaemon.start({cli: ctx.cli, dir, config});
  let newPid = daemon.pid;
  const rows: string[][] = [];
  try {
    const first = await daemon.deploy(`x1`);
    if (!first.ok) throw new Error(`The first deploy failed: ${first.error}`);
    const webPid = activeWebPid(await daemon.status());
    const load = await startLoad(port);
    let replace: CliRun;
    let loadResult: LoadResult;
    try {
      await delay(LOAD_BEFORE_MS);
      replace = await daemon.rollbridge([`ensure-daemon`, `--replace`, `--json`, `--daemon-log-path`, path.join(dir, `daemon2.log`), `--daemon-pid-path`, path.join(dir, `daemon2.pid`)], 60_000);
      await delay(LOAD_AFTER_MS);
      loadResult = await load.finish<LoadResult>();
    } catch (error) {
      await load.kill();
      throw error;
    }
    if (replace.code !== 0) throw new Error(`ensure-daemon --replace exited ${replace.code}: ${replace.stdout.trim()} ${replace.stderr.trim()}`);
    const after = await daemon.status();
    newPid = after.daemon.pid;
    const webAfter = activeWebPid(after);
    const failed = loadResult.requests - loadResult.ok;
    const gapSeenMs = longestGap(loadResult, replace.startedAt, replace.startedAt + replace.wallMs);
    ctx.log(`  ensure-daemon --replace: ${formatCount(loadResult.requests)} requests, ${failed} failed (${failureKinds(loadResult)}); ${replace.wallMs.toFixed(0)} ms; daemon pid ${daemon.pid} → ${newPid}; web pid ${webPid} → ${webAfter}; gap seen ${gapSeenMs} ms`);
    rows.push([formatCount(loadResult.requests), String(failed), failureKinds(loadResult), replace.wallMs.toFixed(0), `${daemon.pid} → ${newPid}`, `${webPid} → ${webAfter}`, String(gapSeenMs)]);
    result.checks.push(check(`failed requests across ensure-daemon --replace`, `${failed} of ${formatCount(loadResult.requests)}${failed ? ` (${failureKinds(loadResult)})` : ``}`, `0`, failed === 0));
    result.checks.push(check(`ensure-daemon --replace: new daemon, same web process`, `daemon pid ${daemon.pid} → ${newPid}, web pid ${webPid} → ${webAfter}`, `daemon pid changed, web pid unchanged`, newPid !== daemon.pid && webAfter === webPid));
    result.data.replace = {failed, requests: loadResult.requests, wallMs: round(replace.wallMs), gapSeenMs, oldDaemonPid: daemon.pid, newDaemonPid: newPid, webPid, webAfter};
  } finally {
    const forced = newPid === daemon.pid ? [] : await stopDetachedDaemon(daemon.rollbridge.bind(daemon), newPid);
    forced.push(...await daemon.stop());
    if (forced.length > 0) result.notes.push(`ensure-daemon --replace: stopping: ${forced.join(`; `)}`);
  }
  result.tables.push({
    title: `3. \`rollbridge ensure-daemon --replace\` under load (${CONNECTIONS} keep-alive connections at the proxy port)`,
    header: [`requests`, `failed`, `failures by kind`, `command wall ms`, `daemon pid`, `web pid`, `gap seen by the client ms`],
    rows,
  });
}
