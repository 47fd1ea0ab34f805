// Permission and user mix-ups on the built binary (issue 13 item 4), with a second, unprivileged local user:
// a control socket the user may not open is not "no daemon, start one"; an unwritable --daemon-log-path or
// --daemon-pid-path is a stable error naming the owner; status and doctor say which runtime directory (root's
// under sudo, the user's own otherwise) a user resolves to, and doctor finds the other user's daemon.
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {createLocalUser} from '../helpers/local-user.ts';
import type {LocalUser} from '../helpers/local-user.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {beforeRemoving, createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {getBinaryPath} from './binary-path.ts';

type Run = {code: number; stdout: string; stderr: string};
type ErrorJson = {error: {code: string; message: string; fix: string; details: Record<string, unknown>}};

const BINARY = getBinaryPath();

function runAsRoot(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(BINARY, args, {cwd, env: {...process.env, ROLLBRIDGE_OUTPUT: ``}, timeout: 60_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, stdout, stderr});
    });
  });
}

/** Runs the binary as `user` (cwd /, PATH only), with `env` added (ROLLBRIDGE_OUTPUT=human: text as on a terminal). */
function runAs(user: LocalUser, args: string[], env: Record<string, string> = {}): Run {
  const result = user.run(`env`, [...Object.entries(env).map(([name, value]) => `${name}=${value}`), BINARY, ...args]);
  return {code: result.status ?? 1, stdout: result.stdout, stderr: result.stderr};
}

function errorOf(result: Run): ErrorJson[`error`] {
  return (JSON.parse(result.stdout) as ErrorJson).error;
}

/** A project directory the other user can read (mode 0755) with its config (0644). */
function project(t: TestContext, config: Record<string, unknown>): {dir: string; configPath: string} {
  const dir = createTempDir(t, `rb-perm-`);
  fs.chmodSync(dir, 0o755);
  const configPath = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(configPath, JSON.stringify({proxy: {host: `127.0.0.1`, port: 0}, processes: [{id: `web`, command: `exec sleep 300`, policy: `proxied`, port: {from: 0, to: 0}}], ...config}, null, 2));
  fs.chmodSync(configPath, 0o644);
  return {dir, configPath};
}

test(`a control socket another user owns is ERR_CONTROL_PERMISSION_DENIED naming owner, mode and user; ensure-daemon starts no second daemon`, async (t) => {
  const other = createLocalUser(t);
  if (other === null) return;
  const {dir, configPath} = project(t, {application: `perm-socket`, control: {path: path.join(`${os.tmpdir()}`, `rb-perm-${crypto.randomBytes(3).toString(`hex`)}`, `control.sock`)}});
  const socketPath = (JSON.parse(fs.readFileSync(configPath, `utf8`)) as {control: {path: string}}).control.path;
  fs.mkdirSync(path.dirname(socketPath), {mode: 0o755});
  fs.chmodSync(path.dirname(socketPath), 0o755);
  t.after(() => fs.rmSync(path.dirname(socketPath), {recursive: true, force: true}));
  const started = await runAsRoot([`ensure-daemon`, `--json`, `--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)], dir);
  assert.equal(started.code, 0, started.stderr + started.stdout);
  const pid = Number(fs.readFileSync(path.join(dir, `daemon.pid`), `utf8`));
  beforeRemoving(dir, async () => {
    await runAsRoot([`shutdown`], dir);
    await waitFor(() => !isPidAlive(pid), {what: `the daemon ${pid} to exit`});
  });
  assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600);

  const json = runAs(other, [`status`, `--json`, `--config`, configPath]);
  assert.equal(json.code, 1, json.stderr);
  const error = errorOf(json);
  assert.equal(error.code, `ERR_CONTROL_PERMISSION_DENIED`);
  assert.equal(error.message, `Permission denied (EACCES): ${other.name} (uid ${other.uid}) may not connect to the control socket ${socketPath}; the socket belongs to root (uid 0), group root, mode 0600. A daemon may be running there: do not start another one`);
  assert.match(error.fix, /^Run the command with sudo, let a group in with control\.group and control\.mode/);
  assert.match(error.fix, /set control\.path/);
  assert.deepEqual(error.details.owner, {uid: 0, user: `root`, gid: 0, group: `root`, mode: `0600`});
  assert.deepEqual(error.details.user, {uid: other.uid, name: other.name});
  assert.doesNotMatch(JSON.stringify(error), /No rollbridge daemon is listening|ensure-daemon/);

  const human = runAs(other, [`status`, `--config`, configPath]);
  assert.equal(human.code, 1);
  assert.match(human.stderr, /^error ERR_CONTROL_PERMISSION_DENIED: Permission denied \(EACCES\): rbother-\w+ \(uid \d+\) may not connect/);
  assert.doesNotMatch(human.stderr, /at .*\.js:\d+|This is a bug/, `no stack`);

  // A group with access: the fix says to join it.
  fs.chmodSync(socketPath, 0o660);
  fs.chownSync(socketPath, 0, other.gid === 0 ? 1 : 0);
  const grouped = errorOf(runAs(other, [`status`, `--json`, `--config`, configPath]));
  assert.match(grouped.fix, /add rbother-\w+ to the group root \(usermod -aG root rbother-\w+/);

  const ensure = runAs(other, [`ensure-daemon`, `--json`, `--config`, configPath, `--daemon-log-path`, path.join(os.tmpdir(), `rollbridge-${other.uid}-never.log`)]);
  assert.equal(ensure.code, 1, ensure.stdout);
  assert.equal(errorOf(ensure).code, `ERR_CONTROL_PERMISSION_DENIED`, `ensure-daemon must not start a second daemon beside one it cannot reach`);
  assert.equal(fs.existsSync(path.join(os.tmpdir(), `rollbridge-${other.uid}-never.log`)), false);
  assert.ok(isPidAlive(pid));
});

test(`an unwritable --daemon-log-path or --daemon-pid-path is ERR_DAEMON_FILE_UNWRITABLE naming the owner and the flag, with no stack`, async (t) => {
  const other = createLocalUser(t);
  if (other === null) return;
  const {dir, configPath} = project(t, {application: `perm-log`, control: {path: path.join(`${os.tmpdir()}`, `rb-never-${crypto.randomBytes(3).toString(`hex`)}.sock`)}});
  const rootOnly = path.join(dir, `root-only`);
  fs.mkdirSync(rootOnly, {mode: 0o755});
  fs.chmodSync(rootOnly, 0o755);

  const log = runAs(other, [`ensure-daemon`, `--config`, configPath, `--daemon-log-path`, path.join(rootOnly, `daemon.log`)]);
  assert.equal(log.code, 1, log.stdout);
  assert.equal(log.stderr.split(`\n`)[0], `error ERR_DAEMON_FILE_UNWRITABLE: Cannot write the daemon's log file ${path.join(rootOnly, `daemon.log`)} (EACCES) as ${other.name} (uid ${other.uid}); ${rootOnly}, the nearest existing part of the path, belongs to root (uid 0), group root, mode 0755`);
  assert.match(log.stderr, /\n {2}fix: Pass --daemon-log-path a file in a directory rbother-\w+ may write, or leave --daemon-log-path out for the default in your runtime directory, or run the command as root \(sudo\)\n$/);
  assert.doesNotMatch(log.stderr, /ERR_INTERNAL|This is a bug|\n {4}at /);

  const pidJson = runAs(other, [`ensure-daemon`, `--json`, `--config`, configPath, `--daemon-log-path`, path.join(os.tmpdir(), `rollbridge-${other.uid}`, `perm-log-test.log`), `--daemon-pid-path`, path.join(rootOnly, `daemon.pid`)]);
  assert.equal(pidJson.code, 1, pidJson.stderr);
  const error = errorOf(pidJson);
  assert.equal(error.code, `ERR_DAEMON_FILE_UNWRITABLE`);
  assert.equal(error.details.key, `--daemon-pid-path`);
  assert.deepEqual(error.details.owner, {path: rootOnly, uid: 0, user: `root`, gid: 0, group: `root`, mode: `0755`});
  assert.equal(fs.statSync(path.join(os.tmpdir(), `rollbridge-${other.uid}`, `perm-log-test.log`)).size, 0, `no daemon was started (it would have written to its log)`);
  t.after(() => fs.rmSync(path.join(os.tmpdir(), `rollbridge-${other.uid}`), {recursive: true, force: true}));
});

test(`status and doctor show which runtime directory a user resolves to; root's doctor finds the other user's daemon for the same application`, async (t) => {
  // Registered before the user exists, so it runs before userdel: the user's daemon must be gone by then.
  let stopOtherDaemon: () => Promise<void> = async () => undefined;
  t.after(() => stopOtherDaemon());
  const other = createLocalUser(t);
  if (other === null) return;
  const application = `perm-dirs-${crypto.randomBytes(3).toString(`hex`)}`;
  const {configPath} = project(t, {application});
  const otherDir = path.join(os.tmpdir(), `rollbridge-${other.uid}`);
  const otherSocket = path.join(otherDir, `${application}.sock`);

  const started = runAs(other, [`ensure-daemon`, `--json`, `--config`, configPath]);
  assert.equal(started.code, 0, started.stderr + started.stdout);
  const pid = (JSON.parse(started.stdout) as {daemon: {pid: number}}).daemon.pid;
  stopOtherDaemon = async () => {
    runAs(other, [`shutdown`, `--config`, configPath]);
    await waitFor(() => !isPidAlive(pid), {what: `${other.name}'s daemon ${pid} to exit`});
    fs.rmSync(otherDir, {recursive: true, force: true});
  };

  const status = runAs(other, [`status`, `--json`, `--config`, configPath]);
  assert.equal(status.code, 0, status.stderr);
  assert.deepEqual((JSON.parse(status.stdout) as {control: Record<string, unknown>}).control, {path: otherSocket, source: `runtime`, runtimeDir: otherDir, uid: other.uid, user: other.name});
  const human = runAs(other, [`status`, `--config`, configPath], {ROLLBRIDGE_OUTPUT: `human`});
  assert.equal(human.code, 0, human.stderr);
  assert.ok(human.stdout.trimEnd().endsWith(`control socket ${otherSocket} (the runtime directory of ${other.name} (uid ${other.uid}): sudo uses root's, every other user their own ${path.join(os.tmpdir(), `rollbridge-<uid>`)})`), human.stdout);
  const otherDoctor = JSON.parse(runAs(other, [`doctor`, `--json`, `--config`, configPath]).stdout) as {checks: Array<{name: string; ok: boolean; detail: string}>};
  const otherCheck = otherDoctor.checks.find((check) => check.name === `control socket user`);
  assert.equal(otherCheck?.ok, true, JSON.stringify(otherCheck));
  assert.ok(otherCheck.detail.startsWith(`${other.name} (uid ${other.uid}) resolves control.path to ${otherSocket}, in its own runtime directory`), otherCheck.detail);
  if (fs.existsSync(path.join(os.tmpdir(), `rollbridge-0`))) assert.match(otherCheck.detail, /rollbridge-0 \(root \(uid 0\)'s runtime directory\) is private, so a daemon started with sudo cannot be seen from here: run "sudo rollbridge doctor"/);

  // Root (as with sudo) resolves its own directory, finds nothing there, and is told where the daemon is.
  const rootSocket = path.join(os.tmpdir(), `rollbridge-0`, `${application}.sock`);
  const rootStatus = await runAsRoot([`status`, `--json`, `--config`, configPath], os.tmpdir());
  assert.equal(rootStatus.code, 1);
  const unreachable = errorOf(rootStatus);
  assert.equal(unreachable.code, `ERR_DAEMON_UNREACHABLE`);
  assert.equal(unreachable.fix, `A control socket for this application exists in ${other.name} (uid ${other.uid})'s runtime directory (${otherSocket}): if that daemon is the one you mean, run the command as ${other.name}, without sudo; or set control.path in the config so every user reaches the same socket`);
  assert.doesNotMatch(unreachable.fix, /ensure-daemon/, `no advice to start a second daemon`);
  const rootDoctor = await runAsRoot([`doctor`, `--json`, `--config`, configPath], os.tmpdir());
  assert.equal(rootDoctor.code, 1);
  const rootCheck = (JSON.parse(rootDoctor.stdout) as {checks: Array<{name: string; ok: boolean; detail: string}>}).checks.find((check) => check.name === `control socket user`);
  assert.equal(rootCheck?.ok, false);
  assert.equal(rootCheck.detail, `root (uid 0) resolves control.path to ${rootSocket}, in its own runtime directory (sudo uses root's ${path.join(os.tmpdir(), `rollbridge-0`)}, every other user ${path.join(os.tmpdir(), `rollbridge-<uid>`)}); but a daemon for "${application}" answers on ${otherSocket} (${other.name} (uid ${other.uid})'s runtime directory): run rollbridge as ${other.name}, without sudo, to reach it, or stop one of the two`);
});
