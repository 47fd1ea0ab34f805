import {spawn} from 'node:child_process';
import type {ChildProcess} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {ControlClient} from '../../src/control/client.ts';
import {beforeRemoving, createTempDir} from './temp-dir.ts';
import {MAIN, REPO_ROOT} from './run-cli.ts';
import {waitFor} from './wait-for.ts';

export const WEB_APP = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `web-app.cjs`);
/** Python: at SIGTERM its main thread exits while another thread lingers argv[1] ms (a zombie in /proc/<pid>/stat that still holds its descriptors). */
export const LINGERING_THREAD_APP = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `lingering-thread.py`);
export const CRASH_LINGERING_APP = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `crash-lingering.py`);

type After = {after(fn: () => unknown): void};

export type TestDaemon = {
  dir: string;
  configPath: string;
  socketPath: string;
  child: ChildProcess;
  /** Lines the daemon printed on stdout (JSON records). */
  records: Array<Record<string, unknown>>;
  stderr: () => string;
  proxyPort: number;
  call: (command: string, params?: Record<string, unknown>) => Promise<Record<string, unknown>>;
  /** A release directory (empty; processes run their command with it as cwd). */
  release: (name: string) => string;
  /** Waits for a matching log line: the daemon's stdout reaches the test asynchronously, after its replies. */
  record: (predicate: (record: Record<string, unknown>) => boolean, what: string) => Promise<Record<string, unknown>>;
};

/** A config with one proxied web process running the fixture web app; override fields as needed. */
export function webConfig(dir: string, overrides: Record<string, unknown> = {}, webOverrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    application: `test-app`,
    control: {path: path.join(dir, `control.sock`)},
    logs: {dir: path.join(dir, `logs`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 2_000, forceStopTimeoutMs: 2_000},
    processes: [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000}, ...webOverrides},
    ],
    ...overrides,
  };
}

/**
 * Starts the real daemon (`node src/main.ts daemon`, or `<executable> daemon` for a built binary) as a
 * child process with a JSON config.
 */
export async function startDaemon(t: After, config: Record<string, unknown> | ((dir: string) => Record<string, unknown>), options: {env?: Record<string, string>; dir?: string; openFileLimit?: number; executable?: string} = {}): Promise<TestDaemon> {
  // `dir` restarts a daemon in the directory (config, socket, state) of an earlier one.
  const dir = options.dir ?? createTempDir(t);
  const resolved = typeof config === `function` ? config(dir) : config;
  const configPath = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(configPath, JSON.stringify(resolved, null, 2));
  const socketPath = (resolved.control as {path: string}).path;
  const argv = options.executable === undefined ? [process.execPath, MAIN, `daemon`, `--config`, configPath] : [options.executable, `daemon`, `--config`, configPath];
  // `openFileLimit` runs the daemon under `ulimit -n` (the shell execs it, so the pid stays the daemon's).
  const [file, ...args] = options.openFileLimit === undefined ? argv : [`sh`, `-c`, `ulimit -n ${options.openFileLimit} && exec "$@"`, `sh`, ...argv];
  const child = spawn(file!, args, {cwd: dir, env: {...process.env, ...options.env}, stdio: [`ignore`, `pipe`, `pipe`]});
  const records: Array<Record<string, unknown>> = [];
  let stderr = ``;
  let partial = ``;
  child.stdout.setEncoding(`utf8`);
  child.stdout.on(`data`, (chunk: string) => {
    partial += chunk;
    const lines = partial.split(`\n`);
    partial = lines.pop() ?? ``;
    for (const line of lines) {
      try {
        records.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        records.push({raw: line});
      }
    }
  });
  child.stderr.setEncoding(`utf8`);
  child.stderr.on(`data`, (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once(`exit`, () => resolve()));
  // Stopped before its directory (config, socket, state file) is removed, also when a later daemon reuses it.
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(`SIGTERM`);
      const timer = setTimeout(() => child.kill(`SIGKILL`), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };
  if (!beforeRemoving(dir, stop)) t.after(stop);
  const call = async (command: string, params: Record<string, unknown> = {}) => {
    const client = await ControlClient.connect(socketPath);
    try {
      return await client.call(command as `status`, params as Record<string, never>) as Record<string, unknown>;
    } finally {
      client.close();
    }
  };
  const status = await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}: ${stderr}`);
    return call(`status`);
  }, {timeoutMs: 15_000, what: `the daemon's control socket`}).catch((error: unknown) => {
    throw new Error(`${String(error)}\nstderr: ${stderr}`);
  });
  const proxyPort = (status.proxy as {port: number}).port;
  const release = (name: string) => {
    const releaseDir = path.join(dir, `releases`, name);
    fs.mkdirSync(releaseDir, {recursive: true});
    return releaseDir;
  };
  const record = (predicate: (entry: Record<string, unknown>) => boolean, what: string) => waitFor(() => records.find(predicate), {what: `the daemon to log ${what}`});
  return {dir, configPath, socketPath, child, records, stderr: () => stderr, proxyPort, call, release, record};
}
