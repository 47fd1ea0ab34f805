/**
 * What another local user can do to the daemon's files and socket, tried as that user (created here):
 * plant a state file, symlinks or files where the daemon writes, create the runtime directory first,
 * connect to the control socket. The daemon runs as root, as in production on many hosts.
 */
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {readBootId, readStateFile} from '../../src/state/state-file.ts';
import {readProcessStartTime} from '../../src/system/proc.ts';
import {createLocalUser} from '../helpers/local-user.ts';
import type {LocalUser} from '../helpers/local-user.ts';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {runCli} from '../helpers/run-cli.ts';
import {createTempDir} from '../helpers/temp-dir.ts';

/** A directory anyone may create files in: sticky and world-writable like /tmp, or without the sticky bit. */
function sharedDir(t: TestContext, mode: 0o1777 | 0o777): string {
  const parent = createTempDir(t);
  fs.chmodSync(parent, 0o755);
  const dir = path.join(parent, `shared`);
  fs.mkdirSync(dir);
  fs.chmodSync(dir, mode);
  return dir;
}

function asUser(user: LocalUser, command: string, args: string[], input?: string): void {
  const result = user.run(command, args, input);
  assert.equal(result.status, 0, `${command} ${args.join(` `)} as ${user.name}: ${result.stderr}`);
}

/** A root-owned file with known content: what a planted symlink points at. */
function preciousFile(t: TestContext): string {
  const file = path.join(createTempDir(t), `precious`);
  fs.writeFileSync(file, `precious\n`, {mode: 0o644});
  return file;
}

function writeConfig(dir: string, config: Record<string, unknown>): string {
  const configPath = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(configPath, JSON.stringify(config));
  return configPath;
}

test(`a state file another user planted is refused: the daemon does not start and signals nobody`, async (t) => {
  const other = createLocalUser(t);
  if (other === null) return;
  const shared = sharedDir(t, 0o1777);
  const victim = spawn(`sleep`, [`60`], {stdio: `ignore`});
  t.after(() => victim.kill(`SIGKILL`));
  const statePath = path.join(shared, `app.state.json`);
  const planted = {
    format: 1, application: `test-app`, writtenAt: new Date().toISOString(), bootId: readBootId(),
    daemon: {pid: 999_999, startTime: null, version: `0.2.0`}, proxy: {host: `127.0.0.1`, port: 0}, activeReleaseId: null,
    releases: [], services: [],
    singletons: [{id: `worker`, processId: `worker`, policy: `singleton`, releaseId: `r1`, pid: victim.pid!, pgid: victim.pid!, startTime: readProcessStartTime(victim.pid!), startedAt: new Date().toISOString(), restarts: 0}],
  };
  asUser(other, `sh`, [`-c`, `cat > "$1"`, `sh`, statePath], JSON.stringify(planted));
  assert.throws(() => readStateFile(statePath), (error: {code?: string; message?: string}) => error.code === `ERR_STATE_FILE_UNSAFE` && new RegExp(`owned by uid ${other.uid}`).test(error.message ?? ``));

  const dir = createTempDir(t);
  const configPath = writeConfig(dir, webConfig(dir, {statePath}));
  const result = await runCli([`daemon`, `--config`, configPath], {timeoutMs: 20_000});
  assert.notEqual(result.code, 0);
  assert.match(result.stdout + result.stderr, /ERR_STATE_FILE_UNSAFE/);
  assert.equal(victim.exitCode, null, `the planted pid was not signalled`);
  assert.equal(victim.signalCode, null);

  // Root's own state file made writable by others is refused too.
  fs.rmSync(statePath);
  fs.writeFileSync(statePath, JSON.stringify(planted), {mode: 0o600});
  fs.chmodSync(statePath, 0o666);
  assert.throws(() => readStateFile(statePath), /writable by other users \(mode 0666\)/);
});

test(`symlinks and files another user planted at eventsPath, the daemon log and the pid file are never used`, async (t) => {
  const other = createLocalUser(t);
  if (other === null) return;
  const shared = sharedDir(t, 0o1777);
  const precious = preciousFile(t);
  for (const name of [`events.log`, `daemon.log`, `daemon.pid`, `app.state.json`]) asUser(other, `ln`, [`-s`, precious, path.join(shared, name)]);
  assert.throws(() => readStateFile(path.join(shared, `app.state.json`)), /ERR_STATE_FILE_UNSAFE|symbolic link/);

  const dir = createTempDir(t);
  const withEvents = writeConfig(dir, webConfig(dir, {eventsPath: path.join(shared, `events.log`)}));
  const daemon = await runCli([`daemon`, `--config`, withEvents], {timeoutMs: 20_000});
  assert.notEqual(daemon.code, 0);
  assert.match(daemon.stdout + daemon.stderr, /ERR_FILE_UNSAFE[\s\S]*symbolic link|symbolic link[\s\S]*ERR_FILE_UNSAFE/);

  const plain = writeConfig(dir, webConfig(dir));
  const ensure = await runCli([`ensure-daemon`, `--config`, plain, `--daemon-log-path`, path.join(shared, `daemon.log`), `--daemon-pid-path`, path.join(shared, `daemon.pid`)], {timeoutMs: 20_000});
  assert.notEqual(ensure.code, 0);
  assert.match(ensure.stderr + ensure.stdout, /ERR_FILE_UNSAFE/);
  assert.equal(fs.readFileSync(precious, `utf8`), `precious\n`, `nothing was appended or truncated through a link`);

  // A regular file the other user created where the daemon log goes: refused, not appended to.
  fs.rmSync(path.join(shared, `daemon.log`));
  asUser(other, `sh`, [`-c`, `: > "$1" && chmod 666 "$1"`, `sh`, path.join(shared, `daemon.log`)]);
  const planted = await runCli([`ensure-daemon`, `--config`, plain, `--daemon-log-path`, path.join(shared, `daemon.log`)], {timeoutMs: 20_000});
  assert.notEqual(planted.code, 0);
  assert.match(planted.stderr + planted.stdout, new RegExp(`owned by uid ${other.uid}`));
  assert.equal(fs.statSync(path.join(shared, `daemon.log`)).size, 0);
});

test(`statePath, eventsPath and logs.dir in a directory others can write are refused`, async (t) => {
  const other = createLocalUser(t);
  if (other === null) return;
  const open = sharedDir(t, 0o777);
  asUser(other, `touch`, [path.join(open, `anyone-can-write-here`)]);
  const dir = createTempDir(t);
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{statePath: path.join(open, `app.state.json`)}, /ERR_STATE_FILE_UNSAFE/],
    [{eventsPath: path.join(open, `events.log`)}, /ERR_FILE_UNSAFE/],
    [{logs: {dir: path.join(open, `logs`)}}, /ERR_FILE_UNSAFE/],
  ];
  for (const [overrides, code] of cases) {
    const configPath = writeConfig(dir, webConfig(dir, overrides));
    const result = await runCli([`daemon`, `--config`, configPath], {timeoutMs: 20_000});
    assert.notEqual(result.code, 0, JSON.stringify(overrides));
    assert.match(result.stdout + result.stderr, code, JSON.stringify(overrides));
    assert.match(result.stdout + result.stderr, /writable by other users \(mode 0777\) without the sticky bit/);
  }
  assert.deepEqual(fs.readdirSync(open), [`anyone-can-write-here`], `the daemon created nothing there`);
});

test(`a runtime directory another user created first is refused for the default daemon log and pid file`, async (t) => {
  const other = createLocalUser(t);
  if (other === null) return;
  const tmp = sharedDir(t, 0o1777);
  const runtimeDir = path.join(tmp, `rollbridge-0`);
  asUser(other, `mkdir`, [`-m`, `0777`, runtimeDir]);
  const dir = createTempDir(t);
  const configPath = writeConfig(dir, webConfig(dir));
  const result = await runCli([`ensure-daemon`, `--config`, configPath], {timeoutMs: 20_000, env: {TMPDIR: tmp}});
  assert.notEqual(result.code, 0);
  assert.match(result.stderr + result.stdout, new RegExp(`ERR_FILE_UNSAFE[\\s\\S]*${runtimeDir.replace(/[/.]/g, `\\$&`)}`));
  assert.deepEqual(fs.readdirSync(runtimeDir), [], `no log or pid file was written into it`);
});

test(`another user can neither connect to the control socket nor read the state file`, async (t) => {
  const other = createLocalUser(t);
  if (other === null) return;
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  const connect = other.run(process.execPath, [`-e`, `require("node:net").connect(process.argv[1]).on("connect", () => process.exit(0)).on("error", (e) => { console.error(e.code); process.exit(3); })`, daemon.socketPath]);
  assert.equal(connect.status, 3, connect.stderr);
  assert.match(connect.stderr, /EACCES/);
  const read = other.run(`cat`, [path.join(daemon.dir, `control.state.json`)]);
  assert.notEqual(read.status, 0);
  assert.match(read.stderr, /Permission denied|No such file/);
  assert.equal((await daemon.call(`status`)).application, `test-app`, `the daemon's own user still gets in`);
});
