// Start-up cost of the standalone binary: size, `--version` and `status` (median of >= 10 runs each).
// Uses hyperfine when it is on PATH (`apt-get install hyperfine`), else a Node loop timing each
// spawnSync with process.hrtime. `status` runs against a daemon started with the binary itself.
// Run: `node scripts/bench/startup.ts [--binary <file>] [--runs <n>] [--tool auto|hyperfine|node-loop] [--json]`.
import {spawn, spawnSync} from 'node:child_process';
import type {ChildProcess} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {parseArgs} from 'node:util';
import {getBinaryPath} from '../../test/e2e/binary-path.ts';

/** Goals from the benchmarks note: `--version` <= 45 ms, `status` <= 50 ms (median). */
export const STARTUP_GOALS_MS = {version: 45, status: 50} as const;
export const MIN_RUNS = 10;
const WARMUP_RUNS = 3;
const DAEMON_START_TIMEOUT_MS = 15_000;

export type Timing = {
  /** What was timed, as a command line. */
  command: string;
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  tool: `hyperfine` | `node-loop`;
  /** Mean user + system CPU per run: steadier than wall time on a shared machine. */
  cpuMs: number;
  goalMs: number;
  meetsGoal: boolean;
};

export type StartupResult = {
  binary: string;
  bytes: number;
  compressed: {file: string; bytes: number} | null;
  version: Timing;
  /** Against a running daemon; `null` with `statusNote` saying why when none could be started. */
  status: Timing | null;
  statusNote: string;
};

export type StartupOptions = {
  binary: string;
  runs: number;
  /** `auto`: hyperfine when it is on PATH, else the Node loop. @default `auto` */
  tool?: `auto` | Timing[`tool`];
};

export async function benchStartup(options: StartupOptions): Promise<StartupResult> {
  const runs = Math.max(MIN_RUNS, options.runs);
  const binary = path.resolve(options.binary);
  const bytes = fs.statSync(binary).size;
  const compressed = [`xz`, `gz`].map(ext => `${binary}.${ext}`).find(file => fs.existsSync(file));
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `rb-bench-`));
  try {
    const hyperfine = options.tool === `node-loop` ? null : findHyperfine();
    if (options.tool === `hyperfine` && hyperfine === null) throw new Error(`hyperfine is not on PATH: apt-get install -y hyperfine, or use --tool node-loop`);
    const version = timeCommand([binary, `--version`], {runs, cwd: workDir, goalMs: STARTUP_GOALS_MS.version, workDir, hyperfine});
    const {status, statusNote} = await benchStatus(binary, {runs, workDir, hyperfine});
    return {binary, bytes, compressed: compressed ? {file: compressed, bytes: fs.statSync(compressed).size} : null, version, status, statusNote};
  } finally {
    fs.rmSync(workDir, {recursive: true, force: true});
  }
}

async function benchStatus(binary: string, {runs, workDir, hyperfine}: {runs: number; workDir: string; hyperfine: string | null}): Promise<{status: Timing | null; statusNote: string}> {
  const configPath = path.join(workDir, `rollbridge.json`);
  const controlPath = path.join(workDir, `control.sock`);
  fs.writeFileSync(configPath, `${JSON.stringify({
    application: `rb-bench`,
    control: {path: controlPath},
    proxy: {host: `127.0.0.1`, port: 0},
    statePath: path.join(workDir, `state.json`),
    processes: [{id: `web`, command: `/bin/sh -c 'exec sleep 600'`, policy: `proxied`, port: {from: 47_100, to: 47_109}}],
  }, null, 2)}\n`);

  const daemonLog = path.join(workDir, `daemon.log`);
  const logFd = fs.openSync(daemonLog, `w`);
  let daemon: ChildProcess;
  try {
    daemon = spawn(binary, [`daemon`, `--config`, configPath], {cwd: workDir, env: cleanEnv(workDir), stdio: [`ignore`, logFd, logFd]});
  } finally {
    fs.closeSync(logFd);
  }
  const exited = new Promise<void>(resolve => daemon.once(`exit`, () => resolve()));
  try {
    const ready = await waitForStatus(binary, configPath, workDir, daemon);
    if (!ready) {
      const tail = fs.readFileSync(daemonLog, `utf8`).trim().split(`\n`).slice(-3).join(` | `);
      const exit = daemon.exitCode ?? daemon.signalCode;
      const what = exit === null ? `did not answer \`status\` within ${DAEMON_START_TIMEOUT_MS} ms` : `exited (${String(exit)}) before answering \`status\``;
      return {status: null, statusNote: `not measured: \`${path.basename(binary)} daemon\` ${what}; its output: ${tail || `none`}`};
    }
    const status = timeCommand([binary, `status`, `--json`, `--config`, configPath], {runs, cwd: workDir, goalMs: STARTUP_GOALS_MS.status, workDir, hyperfine});
    return {status, statusNote: `against a running daemon started with the binary (one configured process, no release deployed)`};
  } finally {
    if (daemon.exitCode === null && daemon.signalCode === null && daemon.pid !== undefined) {
      process.kill(daemon.pid, `SIGTERM`);
      const timer = setTimeout(() => {
        if (daemon.exitCode === null && daemon.pid !== undefined) process.kill(daemon.pid, `SIGKILL`);
      }, 5_000);
      await exited;
      clearTimeout(timer);
    }
  }
}

/** Polls `status` until it exits 0 (the daemon answers), the daemon exits, or the timeout. */
async function waitForStatus(binary: string, configPath: string, cwd: string, daemon: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + DAEMON_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (daemon.exitCode !== null || daemon.signalCode !== null) return false;
    const probe = spawnSync(binary, [`status`, `--json`, `--config`, configPath], {cwd, env: cleanEnv(cwd), stdio: `ignore`, timeout: 5_000});
    if (probe.status === 0) return true;
    await new Promise(resolve => setTimeout(resolve, 50));
  }
  return false;
}

function timeCommand(argv: string[], options: {runs: number; cwd: string; goalMs: number; workDir: string; hyperfine: string | null}): Timing {
  const command = argv.map(arg => path.isAbsolute(arg) ? path.basename(arg) : arg).join(` `);
  const samples = options.hyperfine ? timeWithHyperfine(options.hyperfine, argv, options) : timeWithNodeLoop(argv, options);
  const sorted = [...samples.timesMs].sort((a, b) => a - b);
  const medianMs = median(sorted);
  return {
    command,
    runs: sorted.length,
    medianMs,
    minMs: sorted[0] ?? Number.NaN,
    maxMs: sorted.at(-1) ?? Number.NaN,
    tool: samples.tool,
    cpuMs: samples.cpuMs,
    goalMs: options.goalMs,
    meetsGoal: medianMs <= options.goalMs,
  };
}

type Samples = {timesMs: number[]; cpuMs: number; tool: Timing[`tool`]};

function timeWithHyperfine(hyperfine: string, argv: string[], options: {runs: number; cwd: string; workDir: string}): Samples {
  const exportPath = path.join(options.workDir, `hyperfine.json`);
  const result = spawnSync(hyperfine, [
    `--shell=none`, `--warmup`, String(WARMUP_RUNS), `--runs`, String(options.runs), `--style`, `none`,
    `--export-json`, exportPath, argv.map(shellQuote).join(` `),
  ], {cwd: options.cwd, env: cleanEnv(options.cwd), encoding: `utf8`});
  if (result.status !== 0) throw new Error(`hyperfine failed for ${argv.join(` `)}: ${result.error?.message ?? result.stderr.trim()}`);
  const report = JSON.parse(fs.readFileSync(exportPath, `utf8`)) as {results: Array<{times: number[]; user: number; system: number}>};
  const first = report.results[0];
  if (first === undefined) throw new Error(`hyperfine reported no result for ${argv.join(` `)}`);
  return {timesMs: first.times.map(seconds => seconds * 1000), cpuMs: (first.user + first.system) * 1000, tool: `hyperfine`};
}

function timeWithNodeLoop(argv: string[], options: {runs: number; cwd: string}): Samples {
  const [file, ...args] = argv as [string, ...string[]];
  const timesMs: number[] = [];
  let childCpuTicks = 0;
  for (let run = 0; run < WARMUP_RUNS + options.runs; run++) {
    const cpuBefore = readChildrenCpuTicks();
    const startedAt = process.hrtime.bigint();
    const result = spawnSync(file, args, {cwd: options.cwd, env: cleanEnv(options.cwd), stdio: `ignore`});
    const elapsedMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
    if (result.status !== 0) throw new Error(`${argv.join(` `)} exited with ${String(result.status ?? result.signal)}`);
    if (run >= WARMUP_RUNS) {
      timesMs.push(elapsedMs);
      childCpuTicks += readChildrenCpuTicks() - cpuBefore;
    }
  }
  return {timesMs, cpuMs: (childCpuTicks * 1000) / CLOCK_TICKS_PER_SECOND / options.runs, tool: `node-loop`};
}

/** USER_HZ: the unit of /proc/<pid>/stat times on Linux x64. */
const CLOCK_TICKS_PER_SECOND = 100;

/** cutime + cstime of this process: CPU of the children it has waited for, in clock ticks. */
function readChildrenCpuTicks(): number {
  const stat = fs.readFileSync(`/proc/self/stat`, `utf8`);
  const fields = stat.slice(stat.lastIndexOf(`)`) + 2).split(` `);
  // Fields after the command start at field 3 (state); cutime and cstime are fields 16 and 17.
  return Number(fields[16 - 3]) + Number(fields[17 - 3]);
}

/** No node on PATH and no inherited settings: what a bare host gives the binary. */
function cleanEnv(cwd: string): Record<string, string> {
  return {PATH: `/usr/sbin:/usr/bin:/sbin:/bin`.split(`:`).filter(dir => !fs.existsSync(path.join(dir, `node`))).join(`:`), HOME: cwd, LANG: `C.UTF-8`};
}

/** Absolute path of hyperfine (looked up on this process's PATH, since the runs get a clean one), or null. */
function findHyperfine(): string | null {
  const result = spawnSync(`sh`, [`-c`, `command -v hyperfine`], {encoding: `utf8`});
  const found = result.status === 0 ? result.stdout.trim() : ``;
  return path.isAbsolute(found) ? found : null;
}

function median(sorted: number[]): number {
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function formatStartupResult(result: StartupResult): string {
  const mb = (bytes: number) => `${(bytes / 1_000_000).toFixed(1)} MB`;
  const timing = (timing: Timing) => `${timing.medianMs.toFixed(1)} ms median (min ${timing.minMs.toFixed(1)}, max ${timing.maxMs.toFixed(1)}, CPU ${timing.cpuMs.toFixed(1)} ms, ${timing.runs} runs, ${timing.tool}); goal <= ${timing.goalMs} ms: ${timing.meetsGoal ? `met` : `MISSED`}`;
  return [
    `startup: ${result.binary}`,
    `  size       ${mb(result.bytes)}${result.compressed ? `, ${path.basename(result.compressed.file)} ${mb(result.compressed.bytes)}` : ``}`,
    `  --version  ${timing(result.version)}`,
    `  status     ${result.status ? timing(result.status) : `-`}`,
    `             ${result.statusNote}`,
  ].join(`\n`);
}

async function main(): Promise<void> {
  const {values} = parseArgs({
    options: {
      binary: {type: `string`},
      runs: {type: `string`, default: `20`},
      tool: {type: `string`, default: `auto`},
      json: {type: `boolean`, default: false},
    },
  });
  if (values.tool !== `auto` && values.tool !== `hyperfine` && values.tool !== `node-loop`) throw new Error(`--tool must be auto, hyperfine or node-loop, got ${values.tool}`);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < MIN_RUNS) throw new Error(`--runs must be an integer >= ${MIN_RUNS}, got ${values.runs}`);
  const result = await benchStartup({binary: values.binary ?? getBinaryPath(), runs, tool: values.tool});
  process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `${formatStartupResult(result)}\n`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
