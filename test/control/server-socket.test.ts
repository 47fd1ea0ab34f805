import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {once} from 'node:events';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {ControlServer, probeControlSocket} from '../../src/control/server.ts';
import {createSilentLogger} from '../../src/log/logger.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {createTestHandlers, startControlServer} from './start-control-server.ts';

const NOBODY = 65534;

function modeOf(target: string): number {
  return fs.lstatSync(target).mode & 0o7777;
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<Error & {code: string; fix?: string}> {
  const error = await promise.then(() => assert.fail(`expected ${code}`), (error: unknown) => error as Error & {code: string; fix?: string});
  assert.equal(error.code, code, error.message);
  return error;
}

function startAt(socketPath: string, extra: {application?: string} = {}): Promise<ControlServer> {
  return ControlServer.start({path: socketPath, application: extra.application ?? `demo`, maxMessageBytes: 4096, handlers: createTestHandlers(), log: createSilentLogger()});
}

/** A socket file with nothing listening: hard-link a live socket, then close the listener. */
async function createStaleSocket(t: TestContext, socketPath: string): Promise<void> {
  const live = `${socketPath}.live`;
  const server = net.createServer();
  server.listen(live);
  await once(server, `listening`);
  fs.linkSync(live, socketPath);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  t.after(() => fs.rmSync(socketPath, {force: true}));
}

async function listenForeign(t: TestContext, socketPath: string): Promise<void> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on(`error`, () => {});
  });
  server.listen(socketPath);
  await once(server, `listening`);
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
}

test(`creates the socket with mode 0600 by default`, async (t) => {
  const {socketPath} = await startControlServer(t);
  assert.ok(fs.lstatSync(socketPath).isSocket());
  assert.equal(modeOf(socketPath), 0o600);
});

test(`applies a configured mode, owner and group`, async (t) => {
  const dir = createTempDir(t, `rbc-`);
  const {socketPath} = await startControlServer(t, {path: path.join(dir, `c.sock`), mode: 0o660, owner: NOBODY, group: NOBODY});
  const stat = fs.lstatSync(socketPath);
  assert.equal(stat.mode & 0o7777, 0o660);
  assert.equal(stat.uid, NOBODY);
  assert.equal(stat.gid, NOBODY);
});

test(`binds under a temporary name and only then publishes the final path with its final mode`, async (t) => {
  const dir = createTempDir(t, `rbc-`);
  const socketPath = path.join(dir, `c.sock`);
  const seen: string[] = [];
  const modes: number[] = [];
  const watcher = fs.watch(dir, (_event, name) => {
    if (name === null) return;
    seen.push(name);
    if (name === `c.sock`) {
      try { modes.push(modeOf(socketPath)); } catch { /* removed again */ }
    }
  });
  t.after(() => watcher.close());
  const server = await startAt(socketPath);
  t.after(() => server.close());
  await waitFor(() => seen.includes(`c.sock.${process.pid}.tmp`) && seen.includes(`c.sock`), {what: `watch events for the temporary and the final name`});
  assert.ok(modes.every((mode) => mode === 0o600), `final path only ever had mode 0600 (${modes.map((mode) => mode.toString(8)).join(`, `)})`);
  assert.ok(!fs.existsSync(`${socketPath}.${process.pid}.tmp`));
});

test(`creates a missing socket directory with mode 0700, or 0710 and the group when one is set`, async (t) => {
  const dir = createTempDir(t, `rbc-`);
  await startControlServer(t, {path: path.join(dir, `private`, `c.sock`)});
  assert.equal(modeOf(path.join(dir, `private`)), 0o700);
  await startControlServer(t, {path: path.join(dir, `shared`, `c.sock`), group: NOBODY, mode: 0o660});
  const shared = fs.lstatSync(path.join(dir, `shared`));
  assert.equal(shared.mode & 0o7777, 0o710);
  assert.equal(shared.gid, NOBODY);
});

test(`refuses to create more than the last directory of the path`, async (t) => {
  const dir = createTempDir(t, `rbc-`);
  await rejectsWithCode(startAt(path.join(dir, `a`, `b`, `c.sock`)), `ERR_CONTROL_LISTEN_FAILED`);
  assert.ok(!fs.existsSync(path.join(dir, `a`)));
});

test(`refuses a symlinked socket path or directory with ERR_CONTROL_SOCKET_UNSAFE`, async (t) => {
  const dir = createTempDir(t, `rbc-`);
  fs.mkdirSync(path.join(dir, `real`), {mode: 0o700});
  fs.symlinkSync(path.join(dir, `real`), path.join(dir, `link`));
  await rejectsWithCode(startAt(path.join(dir, `link`, `c.sock`)), `ERR_CONTROL_SOCKET_UNSAFE`);
  fs.symlinkSync(path.join(dir, `elsewhere.sock`), path.join(dir, `c.sock`));
  const error = await rejectsWithCode(startAt(path.join(dir, `c.sock`)), `ERR_CONTROL_SOCKET_UNSAFE`);
  assert.match(error.message, /symbolic link/);
  assert.ok(fs.lstatSync(path.join(dir, `c.sock`)).isSymbolicLink(), `left the symlink alone`);
});

test(`refuses a group-writable directory without the sticky bit, accepts one with it`, async (t) => {
  const dir = createTempDir(t, `rbc-`);
  const open = path.join(dir, `open`);
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o770);
  const error = await rejectsWithCode(startAt(path.join(open, `c.sock`)), `ERR_CONTROL_SOCKET_UNSAFE`);
  assert.match(error.fix ?? ``, /chmod go-w/);
  fs.chmodSync(open, 0o1777);
  await startControlServer(t, {path: path.join(open, `c.sock`)});
});

test(`refuses a directory owned by another non-root user`, async (t) => {
  const dir = createTempDir(t, `rbc-`);
  const foreign = path.join(dir, `foreign`);
  fs.mkdirSync(foreign, {mode: 0o700});
  fs.chownSync(foreign, NOBODY, NOBODY);
  await rejectsWithCode(startAt(path.join(foreign, `c.sock`)), `ERR_CONTROL_SOCKET_UNSAFE`);
});

test(`refuses a regular file at the socket path with ERR_CONTROL_SOCKET_IN_USE and leaves it alone`, async (t) => {
  const dir = createTempDir(t, `rbc-`);
  const socketPath = path.join(dir, `c.sock`);
  fs.writeFileSync(socketPath, `precious`);
  const error = await rejectsWithCode(startAt(socketPath), `ERR_CONTROL_SOCKET_IN_USE`);
  assert.equal(error.fix, `Stop the process holding ${socketPath} or set a different control.path`);
  assert.equal(fs.readFileSync(socketPath, `utf8`), `precious`);
});

test(`removes a stale socket file and logs it`, async (t) => {
  const dir = createTempDir(t, `rbc-`);
  const socketPath = path.join(dir, `c.sock`);
  await createStaleSocket(t, socketPath);
  assert.equal((await probeControlSocket(socketPath)).state, `stale`);
  const {records} = await startControlServer(t, {path: socketPath});
  assert.ok(records.some((record) => record.msg === `Removed stale control socket` && record.path === socketPath));
  assert.equal((await probeControlSocket(socketPath)).state, `daemon`);
});

test(`refuses a second daemon on the same socket with ERR_DAEMON_RUNNING`, async (t) => {
  const {socketPath} = await startControlServer(t);
  const error = await rejectsWithCode(startAt(socketPath, {application: `other`}), `ERR_DAEMON_RUNNING`);
  assert.equal(error.message, `A rollbridge daemon for application "demo" is already running on ${socketPath} (active release: r1)`);
  assert.equal(error.fix, `Run "rollbridge status" to inspect it or "rollbridge shutdown" to stop it, or set a different control.path`);
  assert.equal((await probeControlSocket(socketPath)).state, `daemon`, `the first daemon still answers`);
});

test(`refuses a socket held by a listener that never answers with ERR_CONTROL_SOCKET_IN_USE`, async (t) => {
  const dir = createTempDir(t, `rbc-`);
  const socketPath = path.join(dir, `c.sock`);
  await listenForeign(t, socketPath);
  const error = await rejectsWithCode(startAt(socketPath), `ERR_CONTROL_SOCKET_IN_USE`);
  assert.equal(error.fix, `Stop the process holding ${socketPath} or set a different control.path`);
  assert.ok(fs.lstatSync(socketPath).isSocket());
});

test(`probes report absent, stale, daemon with its status, and foreign`, async (t) => {
  const dir = createTempDir(t, `rbc-`);
  assert.deepEqual(await probeControlSocket(path.join(dir, `none.sock`)), {state: `absent`});
  await createStaleSocket(t, path.join(dir, `stale.sock`));
  assert.deepEqual(await probeControlSocket(path.join(dir, `stale.sock`)), {state: `stale`});
  await listenForeign(t, path.join(dir, `foreign.sock`));
  assert.deepEqual(await probeControlSocket(path.join(dir, `foreign.sock`), 50), {state: `foreign`});
  const {socketPath} = await startControlServer(t);
  const probe = await probeControlSocket(socketPath);
  assert.equal(probe.state, `daemon`);
  assert.equal(probe.state === `daemon` && probe.status.application, `demo`);
});

test(`close unlinks the socket only while it is still ours`, async (t) => {
  const dir = createTempDir(t, `rbc-`);
  const socketPath = path.join(dir, `c.sock`);
  const first = await startAt(socketPath);
  await first.close();
  assert.ok(!fs.existsSync(socketPath));
  const second = await startAt(socketPath);
  fs.unlinkSync(socketPath);
  fs.writeFileSync(socketPath, `someone else`);
  await second.close();
  assert.equal(fs.readFileSync(socketPath, `utf8`), `someone else`);
});
