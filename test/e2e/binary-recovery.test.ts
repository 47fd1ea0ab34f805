// End-to-end on the built binary: crash re-adoption (kill -9 of the daemon) and the zero-downtime
// replacement, which passes the listening socket to a successor over an IPC channel — both must work
// in the standalone executable, with no node on PATH.
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {beforeRemoving, createTempDir} from '../helpers/temp-dir.ts';
import {httpGet} from '../helpers/http.ts';
import {isPidAlive, killQuietly} from '../helpers/processes.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {getBinaryPath} from './binary-path.ts';

const WEB_APP = path.resolve(import.meta.dirname, `..`, `fixtures`, `apps`, `web-app.cjs`);

function run(binary: string, args: string[], options: {cwd: string; env: Record<string, string>}): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    execFile(binary, args, {cwd: options.cwd, env: options.env, timeout: 60_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, stdout, stderr});
    });
  });
}

type Status = {daemon: {pid: number}; proxy: {port: number}; recovery: {adopted: string[]} | null; releases: Array<{state: string; processes: Array<{id: string; pid: number; adopted?: boolean}>}>};

test(`the binary re-adopts the web process after kill -9 of its daemon, and hands over to a successor with ensure-daemon --replace`, async (t) => {
  const binary = getBinaryPath();
  const dir = createTempDir(t, `rb-e2e-`);
  const env = {PATH: `/usr/bin:/bin`, HOME: dir};
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({
    application: `e2e-recovery`,
    control: {path: path.join(dir, `control.sock`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 1_000},
    processes: [{id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 50}}],
  }));
  fs.mkdirSync(path.join(dir, `r1`));
  const launch = [`--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)];
  const daemons = new Set<number>();
  beforeRemoving(dir, async () => {
    await run(binary, [`shutdown`], {cwd: dir, env});
    for (const pid of daemons) await waitFor(() => !isPidAlive(pid), {what: `daemon ${pid} to exit`}).catch(() => killQuietly(pid));
  });
  const status = async () => JSON.parse((await run(binary, [`status`, `--json`], {cwd: dir, env})).stdout) as Status;
  const deployed = await run(binary, [`deploy`, `--ensure-daemon`, `--release-path`, `r1`, `--release-id`, `r1`, ...launch], {cwd: dir, env});
  assert.equal(deployed.code, 0, deployed.stderr);
  const first = await status();
  daemons.add(first.daemon.pid);
  const webPid = first.releases[0]?.processes[0]?.pid as number;
  t.after(() => killQuietly(webPid));
  // Re-adoption: the state file records the web process within 500 ms of any change; the deploy wrote it.
  await waitFor(() => fs.readFileSync(path.join(dir, `control.state.json`), `utf8`).includes(`"pid": ${webPid}`), {what: `the state file`});
  process.kill(first.daemon.pid, `SIGKILL`);
  await waitFor(() => !isPidAlive(first.daemon.pid), {what: `the daemon to die`});
  const restarted = await run(binary, [`ensure-daemon`, ...launch], {cwd: dir, env});
  assert.equal(restarted.code, 0, restarted.stderr);
  const second = await status();
  daemons.add(second.daemon.pid);
  assert.deepEqual(second.recovery?.adopted, [`web`]);
  assert.equal((await httpGet(second.proxy.port, `/pid`)).body.trim(), String(webPid));

  // Replacement: the successor receives the listening socket over IPC and re-adopts the web process.
  const replaced = await run(binary, [`ensure-daemon`, `--replace`, `--json`, ...launch], {cwd: dir, env});
  assert.equal(replaced.code, 0, replaced.stderr + fs.readFileSync(path.join(dir, `daemon.log`), `utf8`));
  const result = JSON.parse(replaced.stdout) as {replaced: boolean; previousPid: number; pid: number};
  daemons.add(result.pid);
  assert.deepEqual([result.replaced, result.previousPid], [true, second.daemon.pid]);
  const third = await status();
  assert.equal(third.daemon.pid, result.pid);
  assert.equal(third.proxy.port, second.proxy.port);
  assert.equal((await httpGet(third.proxy.port, `/pid`)).body.trim(), String(webPid));
  await waitFor(() => !isPidAlive(second.daemon.pid), {what: `the replaced daemon to exit`});
});
