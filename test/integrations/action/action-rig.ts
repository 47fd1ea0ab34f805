// What the action's tests share: where the action is, a PATH without node for its steps, the real
// binary run as a daemon (and as a CLI) in a test directory.
import {execFile, spawn} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type {TestContext} from 'node:test';
import {WEB_APP} from '../../helpers/daemon.ts';
import {REPO_ROOT} from '../../helpers/run-cli.ts';
import {beforeRemoving} from '../../helpers/temp-dir.ts';
import {waitFor} from '../../helpers/wait-for.ts';

export const ACTION_DIR = path.join(REPO_ROOT, `integrations`, `action`);
export const ACTION_SCRIPT = path.join(ACTION_DIR, `rollbridge-action.sh`);

/** The tools the action's script uses on a runner; node is not among them. */
const RUNNER_TOOLS = [`bash`, `sh`, `awk`, `od`, `tr`, `cut`, `sha256sum`, `date`, `find`, `du`, `mktemp`, `head`, `sed`, `dirname`, `basename`, `cat`, `rm`, `ssh`, `tar`, `wc`, `mkdir`, `chmod`, `env`];

/** A bin directory holding symlinks to the runner tools (and `extra` name → file), and nothing else. */
export function makeNodelessPath(dir: string, extra: Record<string, string> = {}): string {
  fs.mkdirSync(dir, {recursive: true});
  for (const tool of RUNNER_TOOLS) {
    const found = [`/usr/bin/${tool}`, `/bin/${tool}`].find((candidate) => fs.existsSync(candidate));
    if (found) fs.symlinkSync(found, path.join(dir, tool));
  }
  for (const [name, target] of Object.entries(extra)) fs.symlinkSync(target, path.join(dir, name));
  return dir;
}

export function runBinary(binary: string, args: string[], options: {cwd: string; env?: Record<string, string>}): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    execFile(binary, args, {cwd: options.cwd, env: options.env ?? {PATH: `/usr/bin:/bin`, HOME: options.cwd}, timeout: 60_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, stdout, stderr});
    });
  });
}

/** The config the action's tests deploy with: the fixture web app behind the proxy (port 0), short health checks. */
export function actionTestConfig(dir: string): Record<string, unknown> {
  return {
    application: `action-test`,
    control: {path: path.join(dir, `control.sock`)},
    logs: {dir: path.join(dir, `logs`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 500, forceStopTimeoutMs: 2_000},
    processes: [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 50, timeoutMs: 2_000}},
    ],
  };
}

/**
 * The real binary's daemon for `dir/rollbridge.json` (written here), stopped before `dir` (from
 * createTempDir) is removed. `ready` resolves once its control socket exists.
 */
export function startBinaryDaemon(t: TestContext, options: {binary: string; dir: string}): {ready: Promise<void>; output: () => string} {
  fs.writeFileSync(path.join(options.dir, `rollbridge.json`), JSON.stringify(actionTestConfig(options.dir), null, 2));
  const child = spawn(options.binary, [`daemon`, `--config`, path.join(options.dir, `rollbridge.json`)], {cwd: options.dir, env: {PATH: `/usr/bin:/bin`, HOME: options.dir}, stdio: [`ignore`, `pipe`, `pipe`]});
  let output = ``;
  child.stdout.on(`data`, (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on(`data`, (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once(`exit`, () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(`SIGTERM`);
    const timer = setTimeout(() => child.kill(`SIGKILL`), 10_000);
    await exited;
    clearTimeout(timer);
  };
  if (!beforeRemoving(options.dir, stop)) t.after(stop);
  const ready = waitFor(() => {
    if (child.exitCode !== null) throw new Error(`the daemon exited with ${child.exitCode}: ${output}`);
    return fs.existsSync(path.join(options.dir, `control.sock`));
  }, {what: `the binary daemon's control socket`, timeoutMs: 15_000}).then(() => undefined);
  return {ready, output: () => output};
}
