// A real rollbridge daemon for one benchmark part: run in the foreground as our child (`rollbridge
// daemon --config …`, optionally under a raised `ulimit -n`), driven through the CLI, stopped with
// `rollbridge shutdown` and then by its pid if it is still alive. Its environment is the one `ensure-daemon`
// gives a daemon it starts (the malloc settings of src/config/daemon-env.ts), so the figures are the product's.
import type {ChildProcess} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {daemonExecutable, daemonLaunchEnv} from '../../src/config/daemon-env.ts';
import {isAlive} from './process-usage.ts';
import {cliEnv, runRollbridge} from './rollbridge-cli.ts';
import type {CliRun, RollbridgeCli} from './rollbridge-cli.ts';
import {spawnTracked, stopChild, waitForExit} from './tracked-children.ts';

const START_TIMEOUT_MS = 20_000;
const running = new Set<BenchDaemon>();

export type DaemonStatus = {
  activeReleaseId: string | null;
  daemon: {pid: number; memory?: {rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number}};
  proxy: {port: number};
  releases: Array<{
    releaseId: string;
    state: string;
    ports: Record<string, number>;
    connections?: {http: number; websocket: number};
    processes: Array<{id: string; pid: number | null; state: string}>;
  }>;
};

export type DeployRun = {
  ok: boolean;
  releaseId: string;
  /** Wall time of the CLI process, spawn to exit. */
  wallMs: number;
  /** Epoch ms at spawn. */
  startedAt: number;
  /** `durationMs` the daemon reported. */
  durationMs: number;
  /** The daemon's phases (`started`, `healthy`, `switched` …) with their durations. */
  phases: Array<{phase: string; durationMs: number}>;
  /** The daemon's time by step (`timings` of the result) and the CLI's own (`cliTimings`), ms; empty from older builds. */
  timings: Record<string, number>;
  cliTimings: Record<string, number>;
  /** Error code (from the JSON error, or `exit <n>`) when the deploy failed. */
  error: string | null;
  run: CliRun;
};

export type LogRecord = {time?: string; level?: string; msg?: string; [key: string]: unknown};

export type BenchDaemonOptions = {
  cli: RollbridgeCli;
  /** A directory for this daemon (config, socket, log, releases); it must exist and be short. */
  dir: string;
  /** The config without `control` and `statePath` (set here). */
  config: Record<string, unknown>;
  /** Raise the open-files limit of the daemon (and so of the apps it starts). */
  nofile?: number;
};

export class BenchDaemon {
  readonly cli: RollbridgeCli;
  readonly dir: string;
  readonly configPath: string;
  readonly logPath: string;
  readonly pid: number;
  readonly proxyPort: number;
  readonly #child: ChildProcess;
  readonly #appPids = new Set<number>();

  private constructor(options: {cli: RollbridgeCli; dir: string; configPath: string; logPath: string; child: ChildProcess; pid: number; proxyPort: number}) {
    this.cli = options.cli;
    this.dir = options.dir;
    this.configPath = options.configPath;
    this.logPath = options.logPath;
    this.#child = options.child;
    this.pid = options.pid;
    this.proxyPort = options.proxyPort;
  }

  static async start(options: BenchDaemonOptions): Promise<BenchDaemon> {
    const {cli, dir} = options;
    const configPath = path.join(dir, `rollbridge.json`);
    const logPath = path.join(dir, `daemon.log`);
    fs.writeFileSync(configPath, `${JSON.stringify({...options.config, control: {path: path.join(dir, `c.sock`)}, statePath: path.join(dir, `state.json`)}, null, 2)}\n`);
    // Started as ensure-daemon starts a daemon: the binary's daemon V8 flags, the malloc settings.
    const executable = daemonExecutable({file: cli.file, args: cli.prefixArgs, standalone: cli.kind === `binary`});
    const argv = [executable.file, ...executable.args, `daemon`, `--config`, configPath];
    const logFd = fs.openSync(logPath, `a`);
    const env = daemonLaunchEnv(cliEnv()) as NodeJS.ProcessEnv;
    let child: ChildProcess;
    try {
      child = options.nofile
        ? spawnTracked(`bash`, [`-c`, `ulimit -n ${options.nofile} && exec "$@"`, `bash`, ...argv], {cwd: dir, env, stdio: [`ignore`, logFd, logFd]})
        : spawnTracked(argv[0]!, argv.slice(1), {cwd: dir, env, stdio: [`ignore`, logFd, logFd]});
    } finally {
      fs.closeSync(logFd);
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    let lastError = ``;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      const run = await runRollbridge(cli, [`status`, `--json`, `--config`, configPath], {cwd: dir, timeoutMs: 10_000});
      if (run.code === 0) {
        const status = JSON.parse(run.stdout) as DaemonStatus;
        const daemon = new BenchDaemon({cli, dir, configPath, logPath, child, pid: status.daemon.pid, proxyPort: status.proxy.port});
        running.add(daemon);
        return daemon;
      }
      lastError = run.stdout.trim() || run.stderr.trim();
      await delay(50);
    }
    await stopChild(child);
    const tail = readTail(logPath, 10);
    throw new Error(`The daemon did not answer \`status\` within ${START_TIMEOUT_MS} ms (exit ${String(child.exitCode ?? child.signalCode)}; last status: ${lastError}); daemon log:\n${tail}`);
  }

  /** An empty release directory (the fixture apps are referenced by absolute path in the config). */
  release(name: string): string {
    const releaseDir = path.join(this.dir, `r`, name);
    fs.mkdirSync(releaseDir, {recursive: true});
    return releaseDir;
  }

  async deploy(releaseId: string, options: {timeoutMs?: number} = {}): Promise<DeployRun> {
    const releasePath = this.release(releaseId);
    const run = await this.rollbridge([`deploy`, `--release-path`, releasePath, `--release-id`, releaseId, `--json`], options.timeoutMs ?? 120_000);
    let durationMs = Number.NaN;
    let phases: DeployRun[`phases`] = [];
    let timings: Record<string, number> = {};
    let cliTimings: Record<string, number> = {};
    let error: string | null = run.code === 0 ? null : `exit ${run.code}`;
    try {
      const json = JSON.parse(run.stdout) as {durationMs?: number; phases?: DeployRun[`phases`]; timings?: Record<string, number>; cliTimings?: Record<string, number>; error?: {code: string; message: string}};
      if (typeof json.durationMs === `number`) durationMs = json.durationMs;
      if (Array.isArray(json.phases)) phases = json.phases;
      timings = json.timings ?? {};
      cliTimings = json.cliTimings ?? {};
      if (json.error) error = `${json.error.code}: ${json.error.message}`;
    } catch {
      if (run.code !== 0) error = `exit ${run.code}: ${(run.stdout + run.stderr).trim().slice(0, 300)}`;
    }
    return {ok: run.code === 0 && error === null, releaseId, wallMs: run.wallMs, startedAt: run.startedAt, durationMs, phases, timings, cliTimings, error, run};
  }

  async status(): Promise<DaemonStatus> {
    const run = await this.rollbridge([`status`, `--json`], 15_000);
    if (run.code !== 0) throw new Error(`rollbridge status failed (exit ${run.code}): ${run.stdout.trim()} ${run.stderr.trim()}`);
    const status = JSON.parse(run.stdout) as DaemonStatus;
    for (const release of status.releases) {
      for (const proc of release.processes) if (proc.pid) this.#appPids.add(proc.pid);
    }
    return status;
  }

  /** The port of `processId` in the active release. */
  async activePort(processId = `web`): Promise<number> {
    const status = await this.status();
    const active = status.releases.find((release) => release.releaseId === status.activeReleaseId);
    const port = active?.ports[processId];
    if (!port) throw new Error(`No active release with a port for "${processId}" in status: ${JSON.stringify(status.releases.map((r) => ({id: r.releaseId, state: r.state})))}`);
    return port;
  }

  rollbridge(args: string[], timeoutMs = 30_000): Promise<CliRun> {
    return runRollbridge(this.cli, [...args, `--config`, this.configPath], {cwd: this.dir, timeoutMs});
  }

  logRecords(): LogRecord[] {
    if (!fs.existsSync(this.logPath)) return [];
    return fs.readFileSync(this.logPath, `utf8`).split(`\n`).filter(Boolean).map((line) => {
      try {
        return JSON.parse(line) as LogRecord;
      } catch {
        return {raw: line};
      }
    });
  }

  /** Log lines at warn or error level (or not JSON), optionally only from `sinceMs` (epoch). */
  problemLines(sinceMs = 0): string[] {
    return this.logRecords()
      .filter((record) => record.level === undefined || record.level === `warn` || record.level === `error`)
      .filter((record) => record.time === undefined || Date.parse(record.time) >= sinceMs)
      .map((record) => JSON.stringify(record));
  }

  /** Epoch ms of the first log record with `msg` (and matching `fields`), or NaN. */
  logTime(msg: string, fields: Record<string, unknown> = {}): number {
    const record = this.logRecords().find((r) => r.msg === msg && Object.entries(fields).every(([key, value]) => r[key] === value));
    return record?.time ? Date.parse(record.time) : Number.NaN;
  }

  /**
   * `rollbridge shutdown`, then SIGTERM/SIGKILL by pid if the daemon is still alive, then any app
   * process it had started that outlived it. Returns what had to be forced (empty when clean).
   */
  async stop(): Promise<string[]> {
    running.delete(this);
    const notes: string[] = [];
    try {
      await this.status();
    } catch {
      // the daemon may already be gone; the pids seen earlier are still checked below
    }
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const run = await this.rollbridge([`shutdown`, `--json`], 60_000);
      if (run.code !== 0) notes.push(`rollbridge shutdown exited ${run.code}: ${run.stdout.trim()} ${run.stderr.trim()}`.trim());
      const exited = await waitForExit(this.#child, 20_000);
      if (!exited) {
        notes.push(`daemon pid ${this.pid} still alive 20 s after shutdown: stopped by signal`);
        await stopChild(this.#child);
      }
    }
    for (const pid of this.#appPids) {
      if (!isAlive(pid)) continue;
      notes.push(`app process ${pid} outlived the daemon: killed with its process group`);
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, `SIGKILL`); // the daemon starts each app in its own process group
        } catch {
          // no such group, or already gone
        }
      }
    }
    return notes;
  }
}

export function readTail(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, `utf8`).trim().split(`\n`).slice(-lines).join(`\n`);
  } catch {
    return `(no log)`;
  }
}

/** Stops every daemon still running (Ctrl-C, or a part that failed before its own cleanup). */
export async function stopAllDaemons(): Promise<void> {
  await Promise.all([...running].map((daemon) => daemon.stop().catch(() => undefined)));
}
