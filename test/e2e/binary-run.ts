// Running the built binary from an e2e test, and a daemon of it for one test's project directory.
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {isPidAlive} from '../helpers/processes.ts';
import {beforeRemoving} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {getBinaryPath} from './binary-path.ts';

export type BinaryRun = {code: number; stdout: string; stderr: string};

/**
 * Runs the binary in `cwd`; `human` renders as on a terminal (ROLLBRIDGE_OUTPUT=human), `` as in a pipe.
 * `env` changes this environment (an undefined value removes the variable).
 */
export function runBinary(args: string[], cwd: string, output: `human` | `` = ``, env: Record<string, string | undefined> = {}): Promise<BinaryRun> {
  return new Promise((resolve) => {
    execFile(getBinaryPath(), args, {cwd, env: {...process.env, ROLLBRIDGE_OUTPUT: output, ...env}, timeout: 60_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, stdout, stderr});
    });
  });
}

/**
 * Starts the daemon of the config in `dir` with `ensure-daemon` (its log and pid files in `dir`) and
 * registers its shutdown before `dir` is removed. Returns the daemon's pid.
 */
export async function ensureBinaryDaemon(dir: string, env: Record<string, string | undefined> = {}): Promise<number> {
  const started = await runBinary([`ensure-daemon`, `--json`, `--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)], dir, ``, env);
  assert.equal(started.code, 0, started.stderr + started.stdout);
  const pid = Number(fs.readFileSync(path.join(dir, `daemon.pid`), `utf8`));
  beforeRemoving(dir, async () => {
    if (!isPidAlive(pid)) return;
    await runBinary([`shutdown`], dir);
    await waitFor(() => !isPidAlive(pid), {what: `the daemon ${pid} to exit`});
  });
  return pid;
}
