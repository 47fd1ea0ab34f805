// End-to-end on the built binary: the boot-time bootstrap `daemon --release-path <dir> [--release-id]
// [--revision]` (rollbridge 0.1's way to start an exact release from systemd): the release is deployed
// before the control socket opens and reported in status.bootstrap; a failed one exits 1 leaving
// nothing; SIGTERM during it exits 0 leaving nothing; a restart after a crash keeps the re-adopted
// release; 0.1's --boot-attestation / --takeover-owner are refused naming what replaces them.
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import type {ChildProcess} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {WEB_APP} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {assertMatchesSchema} from '../helpers/json-schemas.ts';
import {isPidAlive, killQuietly} from '../helpers/processes.ts';
import {runFile} from '../helpers/rollbridge-01.ts';
import {beforeRemoving, createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {getBinaryPath} from './binary-path.ts';

type Daemon = {child: ChildProcess; lines: Array<Record<string, unknown>>; stderr: () => string; exited: Promise<number | null>};
type Status = {activeReleaseId: string | null; bootstrap?: Record<string, unknown>; releases: Array<{releaseId: string; processes: Array<{id: string; pid: number}>}>};

function setUp(t: TestContext, env: Record<string, string> = {}) {
  const binary = getBinaryPath();
  const dir = createTempDir(t, `rb-boot-`);
  const controlPath = path.join(dir, `control.sock`);
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({
    application: `e2e-bootstrap`,
    control: {path: controlPath},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 1_000},
    processes: [{id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, env, health: {path: `/ping`, intervalMs: 50, timeoutMs: 1_500}}],
  }));
  for (const release of [`r1`, `bad1`]) fs.mkdirSync(path.join(dir, release));
  const cliEnv = {PATH: `/usr/bin:/bin`, HOME: dir};
  const pids = new Set<number>();
  beforeRemoving(dir, async () => {
    await runFile(binary, [`shutdown`], {cwd: dir, env: cliEnv});
    for (const pid of pids) if (isPidAlive(pid)) killQuietly(pid);
  });
  const startDaemon = (args: string[]): Daemon => {
    const child = spawn(binary, [`daemon`, ...args], {cwd: dir, env: cliEnv, stdio: [`ignore`, `pipe`, `pipe`]});
    if (child.pid !== undefined) pids.add(child.pid);
    const lines: Array<Record<string, unknown>> = [];
    let stdout = ``;
    let stderr = ``;
    child.stdout!.setEncoding(`utf8`).on(`data`, (chunk: string) => {
      stdout += chunk;
      const complete = stdout.split(`\n`);
      stdout = complete.pop() ?? ``;
      for (const line of complete) {
        try {
          const record = JSON.parse(line) as Record<string, unknown>;
          lines.push(record);
          if (typeof record.pid === `number`) pids.add(record.pid);
        } catch {
          lines.push({msg: line});
        }
      }
    });
    child.stderr!.setEncoding(`utf8`).on(`data`, (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once(`exit`, (code) => resolve(code)));
    return {child, lines, stderr: () => stderr, exited};
  };
  const status = async () => JSON.parse((await runFile(binary, [`status`, `--json`], {cwd: dir, env: cliEnv})).stdout) as Status;
  return {binary, dir, controlPath, cliEnv, startDaemon, status};
}

const indexOf = (daemon: Daemon, msg: string) => daemon.lines.findIndex((line) => line.msg === msg);

test(`daemon --release-path deploys the release before the control socket opens, reports status.bootstrap, and keeps it after a crash restart`, async (t) => {
  const {controlPath, startDaemon, status} = setUp(t);
  const args = [`--release-path`, `r1`, `--release-id`, `r1`, `--revision`, `3f2a9c1`];
  const daemon = startDaemon(args);
  await waitFor(() => fs.existsSync(controlPath), {what: `the control socket`, timeoutMs: 20_000});
  // Order: the release served before the socket existed.
  // The socket file can exist before the test has read the daemon's line about it: wait for the line.
  const {index: listening} = await waitFor(() => {
    const index = indexOf(daemon, `control socket listening`);
    return index === -1 ? null : {index};
  }, {what: `the "control socket listening" line`, timeoutMs: 20_000});
  const switched = indexOf(daemon, `traffic switched`);
  assert.ok(switched !== -1, JSON.stringify(daemon.lines.map((line) => line.msg)));
  assert.ok(switched < listening, JSON.stringify(daemon.lines.map((line) => line.msg)));
  const first = await status();
  assert.equal(first.activeReleaseId, `r1`);
  assertMatchesSchema(`status.schema.json`, first, `status --json with bootstrap`);
  assert.deepEqual({...first.bootstrap, startedAt: `-`, durationMs: 0}, {releaseId: `r1`, releasePath: path.join(path.dirname(controlPath), `r1`), revision: `3f2a9c1`, outcome: `deployed`, startedAt: `-`, durationMs: 0});
  const proxyPort = (JSON.parse(JSON.stringify(first)) as {proxy: {port: number}}).proxy.port;
  assert.equal((await httpGet(proxyPort, `/`)).body.trim(), `r1`);
  const webPid = first.releases[0]?.processes[0]?.pid as number;

  // systemd restarts a crashed daemon with the same ExecStart: the surviving release is re-adopted, not restarted.
  daemon.child.kill(`SIGKILL`);
  await daemon.exited;
  const again = startDaemon(args);
  await waitFor(async () => (await status().catch(() => null))?.bootstrap !== undefined, {what: `the restarted daemon`, timeoutMs: 20_000});
  const second = await status();
  assert.equal(second.bootstrap?.outcome, `already-active`);
  assert.equal(second.releases[0]?.processes[0]?.pid, webPid);
  again.child.kill(`SIGTERM`);
  assert.equal(await again.exited, 0);
});

test(`a failed boot-time deploy exits 1 and leaves no socket and no process`, async (t) => {
  const {controlPath, startDaemon} = setUp(t);
  // Release ids containing "bad" never pass the fixture app's health check.
  const daemon = startDaemon([`--release-path`, `bad1`, `--release-id`, `bad1`]);
  assert.equal(await daemon.exited, 1);
  assert.ok(indexOf(daemon, `bootstrap activation failed`) !== -1, daemon.stderr());
  assert.match(daemon.stderr(), /ERR_HEALTH/);
  assert.equal(fs.existsSync(controlPath), false);
  const started = daemon.lines.filter((line) => line.msg === `process started`).map((line) => line.pid as number);
  assert.ok(started.length > 0);
  for (const pid of started) assert.equal(isPidAlive(pid), false, `process ${pid} still runs`);
});

test(`SIGTERM during the boot-time deploy stops it and exits 0 without a socket`, async (t) => {
  const {controlPath, startDaemon} = setUp(t, {APP_BOOT_MS: `5000`});
  const daemon = startDaemon([`--release-path`, `r1`]);
  await waitFor(() => indexOf(daemon, `process started`) !== -1, {what: `the web process to start`, timeoutMs: 20_000});
  daemon.child.kill(`SIGTERM`);
  assert.equal(await daemon.exited, 0, daemon.stderr());
  assert.equal(fs.existsSync(controlPath), false);
  const started = daemon.lines.filter((line) => line.msg === `process started`).map((line) => line.pid as number);
  for (const pid of started) assert.equal(isPidAlive(pid), false, `process ${pid} still runs`);
});

test(`0.1's --takeover-owner and --boot-attestation are refused (exit 2) naming what replaces them; --release-id needs --release-path`, async (t) => {
  const {binary, dir, cliEnv, controlPath} = setUp(t);
  const owner = await runFile(binary, [`daemon`, `--release-path`, `r1`, `--takeover-owner`], {cwd: dir, env: cliEnv});
  assert.equal(owner.code, 2);
  assert.match(owner.stderr, /--takeover-owner .*not supported/);
  assert.match(owner.stderr, /ensure-daemon --replace/);
  const attestation = await runFile(binary, [`daemon`, `--boot-attestation`, `sha256:${`0`.repeat(64)}`, `--json`], {cwd: dir, env: cliEnv});
  assert.equal(attestation.code, 2);
  assert.equal((JSON.parse(attestation.stdout) as {error: {code: string}}).error.code, `ERR_USAGE`);
  const stray = await runFile(binary, [`daemon`, `--release-id`, `r1`], {cwd: dir, env: cliEnv});
  assert.equal(stray.code, 2);
  assert.match(stray.stderr, /needs --release-path/);
  assert.equal(fs.existsSync(controlPath), false);
});
