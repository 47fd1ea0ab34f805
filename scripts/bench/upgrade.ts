// Part 9, upgrade: the upgrade from a REAL rollbridge 0.1.21 (the fixture tarball, installed with npm) in
// one command, under 64 keep-alive connections (a separate load process, only 127.0.0.1). A 0.1 daemon
// serves r1 (started and deployed with 0.1's own CLI, unchanged CommonJS config); then `rollbridge deploy
// --ensure-daemon` of this build deploys r2 and takes over. Load straight at the port, and through nginx
// retrying connection errors with the port listed 32 + 32 times (legacy-takeover's config) and 128 + 128
// times. Figures: requests, failed, the port gap the CLI reports, the longest pause the client saw, the
// command's wall time, and whether anything of 0.1 was left running.
import {execFile} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import type {HttpLoadResult} from './load-client.ts';
import {findFreePort, findNginx, retryingUpstreamConfig, startNginx} from './nginx.ts';
import type {NginxInstance} from './nginx.ts';
import {check} from './part-result.ts';
import type {BenchContext, PartResult} from './part-result.ts';
import {isAlive, readChildPids} from './process-usage.ts';
import {failureKinds, longestGap, nginxUpstreamErrors, startLoad, stopDetachedDaemon} from './recovery.ts';
import {REPO_ROOT, runRollbridge} from './rollbridge-cli.ts';
import {formatCount} from './stats.ts';
import {WEB_APP} from './bench-configs.ts';

const CONNECTIONS = 64;
const LOAD_BEFORE_MS = 1_000;
const LOAD_AFTER_MS = 2_000;
const TARBALL = `rollbridge-0.1.21.tgz`;

type LoadResult = HttpLoadResult & {event: `result`};
type Front = {name: string; upstream: {servers: number; backups: number} | null; goal: boolean};
type Exec = {code: number; stdout: string; stderr: string};

export async function benchUpgrade(ctx: BenchContext, result: PartResult): Promise<void> {
  const v01 = await install01(path.join(ctx.workDir, `v01`));
  if (typeof v01 !== `string` || !fs.existsSync(v01)) {
    result.findings.push(`upgrade from 0.1 not measured: ${typeof v01 === `string` ? `the installation has no ${v01}` : v01.skip}`);
    return;
  }
  const fronts: Front[] = [{name: `direct`, upstream: null, goal: false}];
  if (findNginx()) {
    fronts.push({name: `nginx, 32 × the port + 32 backup`, upstream: {servers: 32, backups: 32}, goal: false});
    fronts.push({name: `nginx, 128 × the port + 128 backup`, upstream: {servers: 128, backups: 128}, goal: true});
  } else {
    result.findings.push(`upgrade through nginx not measured: nginx is not installed (apt-get install -y nginx)`);
  }
  const rows: string[][] = [];
  let index = 0;
  for (const front of fronts) {
    index++;
    const outcome = await upgradeRun(ctx, v01, front, index, result.notes);
    rows.push([front.name, formatCount(outcome.requests), String(outcome.failed), outcome.kinds, String(outcome.portGapMs), String(outcome.gapSeenMs), outcome.nginxErrors, outcome.left, outcome.outcome]);
    ctx.log(`  upgrade from 0.1.21, ${front.name}: ${formatCount(outcome.requests)} requests, ${outcome.failed} failed (${outcome.kinds}); portGapMs ${outcome.portGapMs}; gap seen ${outcome.gapSeenMs} ms; 0.1 left: ${outcome.left}; ${outcome.outcome}`);
    result.checks.push(check(`upgrade from 0.1.21 (${front.name}): exit 0, r2 active, nothing of 0.1 left`, `${outcome.ok ? `exit 0, r2 active` : outcome.outcome}; 0.1 processes left: ${outcome.left}`, `exit 0, r2 active, none left`, outcome.ok && outcome.left === `none`));
    if (front.goal) {
      result.checks.push(check(`failed requests across the upgrade from 0.1.21 through nginx (${front.name})`, `${outcome.failed} of ${formatCount(outcome.requests)}${outcome.failed ? ` (${outcome.kinds})` : ``}`, `0`, outcome.failed === 0));
    }
    if (outcome.failed > 0) result.notes.push(`upgrade, ${front.name}${front.goal ? `` : ` (no goal)`}: ${outcome.analysis}`);
  }
  result.tables.push({
    title: `\`rollbridge deploy --ensure-daemon\` taking over from a rollbridge 0.1.21 daemon serving web-app.cjs, ${CONNECTIONS} keep-alive connections at the port (direct) or at nginx in front of it`,
    header: [`load through`, `requests`, `failed`, `failures by kind`, `portGapMs (CLI)`, `gap seen by the client ms`, `nginx error log (failed tries)`, `0.1 processes left`, `outcome`],
    rows,
  });
  result.notes.push(`0.1.21 from ../shared/fixtures/${TARBALL} (or ROLLBRIDGE_01_TARBALL), installed with npm, run by ${process.version}: \`rollbridge ensure-daemon\` and \`rollbridge deploy --release-path r1\` of 0.1, then this build's \`deploy --ensure-daemon --release-path r2 --json\` with the same rollbridge.js (CommonJS, control.path in the run's directory)`);
  result.notes.push(`the port gap is from the moment the 0.1 daemon was asked to let go (retire-owner) or the port was last seen taken, to the new daemon's bind; under CPU contention it grows to tens of ms, and nginx exhausts 32 + 32 tries of refused connections in a few ms`);
}

type UpgradeOutcome = {ok: boolean; requests: number; failed: number; kinds: string; portGapMs: number | string; gapSeenMs: number; nginxErrors: string; left: string; outcome: string; analysis: string};

async function upgradeRun(ctx: BenchContext, v01Bin: string, front: Front, index: number, notes: string[]): Promise<UpgradeOutcome> {
  const dir = path.join(ctx.workDir, `u${index}`);
  fs.mkdirSync(dir);
  const port = await findFreePort();
  const configPath = path.join(dir, `rollbridge.js`);
  const config = {
    application: `rb-bench-upgrade-${index}`,
    control: {path: path.join(dir, `c.sock`)},
    proxy: {host: `127.0.0.1`, port, drainTimeoutMs: 3_000, forceStopTimeoutMs: 3_000},
    processes: [{id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 25}}],
  };
  fs.writeFileSync(configPath, `module.exports = ${JSON.stringify(config, null, 2)};\n`);
  for (const release of [`r1`, `r2`]) fs.mkdirSync(path.join(dir, release));
  const v01 = (args: string[]) => exec(process.execPath, [v01Bin, ...args, `--config`, configPath], {cwd: dir});
  const rollbridge = (args: string[], timeoutMs = 60_000) => runRollbridge(ctx.cli, [...args, `--config`, configPath], {cwd: dir, timeoutMs});
  const seen = new Set<number>();
  let nginx: NginxInstance | null = null;
  let newPid = 0;
  try {
    const started = await v01([`ensure-daemon`, `--daemon-log-path`, path.join(dir, `v01.log`), `--daemon-pid-path`, path.join(dir, `v01.pid`), `--daemon-runtime-path`, path.join(dir, `v01-runtime`)]);
    if (started.code !== 0) throw new Error(`0.1 ensure-daemon exited ${started.code}: ${started.stderr.trim()}`);
    seen.add(Number(fs.readFileSync(path.join(dir, `v01.pid`), `utf8`)));
    const deployed = await v01([`deploy`, `--release-path`, path.join(dir, `r1`), `--release-id`, `r1`]);
    if (deployed.code !== 0) throw new Error(`0.1 deploy exited ${deployed.code}: ${deployed.stderr.trim()}`);
    const status = JSON.parse((await v01([`status`])).stdout) as {releases: Array<{processes: Array<{pid?: number}>}>};
    for (const managed of status.releases.flatMap((release) => release.processes)) {
      if (managed.pid === undefined) continue;
      seen.add(managed.pid);
      for (const child of readChildPids(managed.pid)) seen.add(child);
    }
    let loadPort = port;
    if (front.upstream) {
      nginx = await startNginx({dir: path.join(dir, `ngx`), upstreamPort: port, proxy: retryingUpstreamConfig(port, front.upstream)});
      loadPort = nginx.port;
    }
    const load = await startLoad(loadPort);
    let upgrade;
    let loadResult: LoadResult;
    try {
      await delay(LOAD_BEFORE_MS);
      upgrade = await rollbridge([`deploy`, `--ensure-daemon`, `--release-path`, path.join(dir, `r2`), `--release-id`, `r2`, `--json`, `--daemon-log-path`, path.join(dir, `new.log`), `--daemon-pid-path`, path.join(dir, `new.pid`)]);
      await delay(LOAD_AFTER_MS);
      loadResult = await load.finish<LoadResult>();
    } catch (error) {
      await load.kill();
      throw error;
    }
    newPid = Number(readText(path.join(dir, `new.pid`)).trim()) || 0;
    let json: {activeReleaseId?: string; upgrade?: {portGapMs: number; legacy: {stopped: number; killed: number}}; error?: {code: string; message: string}} = {};
    try {
      json = JSON.parse(upgrade.stdout) as typeof json;
    } catch {
      // reported with the exit code
    }
    const ok = upgrade.code === 0 && json.activeReleaseId === `r2`;
    const left = [...seen].filter((pid) => isAlive(pid));
    const failed = loadResult.requests - loadResult.ok;
    const end = upgrade.startedAt + upgrade.wallMs;
    const spans = Object.entries(loadResult.failureSpans).map(([kind, span]) => `${kind} × ${span.count} from ${span.first - upgrade.startedAt} to ${span.last - upgrade.startedAt} ms after the command started`).join(`; `);
    const nginxErrors = nginx ? nginxUpstreamErrors(readText(path.join(dir, `ngx`, `error.log`))) : `-`;
    return {
      ok,
      requests: loadResult.requests,
      failed,
      kinds: failureKinds(loadResult),
      portGapMs: json.upgrade?.portGapMs ?? `-`,
      gapSeenMs: longestGap(loadResult, upgrade.startedAt, end),
      nginxErrors,
      left: left.length === 0 ? `none` : left.join(`, `),
      outcome: ok
        ? `exit 0 in ${upgrade.wallMs.toFixed(0)} ms, r2 active, 0.1: ${json.upgrade?.legacy.stopped ?? 0} stopped / ${json.upgrade?.legacy.killed ?? 0} killed`
        : `exit ${upgrade.code}: ${json.error ? `${json.error.code}: ${json.error.message}` : (upgrade.stdout + upgrade.stderr).trim().slice(0, 300)}`,
      analysis: `${failed} failed (${spans}); CLI portGapMs ${json.upgrade?.portGapMs ?? `-`}${nginx ? `; nginx error log: ${nginxErrors}` : ``}`,
    };
  } finally {
    await nginx?.stop();
    if (newPid > 0) notes.push(...await stopDetachedDaemon(rollbridge, newPid));
    await v01([`shutdown`]).catch(() => undefined);
    for (const pid of seen) {
      if (!isAlive(pid)) continue;
      notes.push(`upgrade run ${index}: 0.1 process ${pid} still alive at the end: SIGKILLed`);
      process.kill(pid, `SIGKILL`);
    }
  }
}

/** The 0.1.21 CLI installed into `dir` (npm install of the fixture tarball), or why not. */
async function install01(dir: string): Promise<string | {skip: string}> {
  const tarball = [process.env.ROLLBRIDGE_01_TARBALL, path.resolve(REPO_ROOT, `..`, `shared`, `fixtures`, TARBALL)].find((candidate) => candidate && fs.existsSync(candidate));
  if (tarball === undefined) return {skip: `the rollbridge 0.1.21 fixture is absent (set ROLLBRIDGE_01_TARBALL or put ${TARBALL} in ../shared/fixtures)`};
  fs.mkdirSync(dir, {recursive: true});
  fs.writeFileSync(path.join(dir, `package.json`), `{"private": true}\n`);
  const npm = await exec(`npm`, [`install`, `--omit=dev`, `--no-audit`, `--no-fund`, `--loglevel=error`, tarball], {cwd: dir, timeoutMs: 180_000});
  if (npm.code !== 0) return {skip: `npm install of ${tarball} failed (exit ${npm.code}): ${npm.stderr.trim().split(`\n`).slice(-2).join(` `)}`};
  return path.join(dir, `node_modules`, `rollbridge`, `bin`, `rollbridge`);
}

function exec(file: string, args: string[], options: {cwd: string; timeoutMs?: number}): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(file, args, {cwd: options.cwd, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, stdout, stderr});
    });
  });
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, `utf8`);
  } catch {
    return ``;
  }
}
