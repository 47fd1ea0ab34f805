import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {once} from 'node:events';
import {test} from 'node:test';
import {waitFor} from '../helpers/wait-for.ts';
import type {TestContext} from 'node:test';
import {ControlClient} from '../../src/control/client.ts';
import {RollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {STATUS, createTestHandlers, startControlServer} from './start-control-server.ts';

async function connect(t: TestContext, socketPath: string): Promise<ControlClient> {
  const client = await ControlClient.connect(socketPath);
  t.after(() => client.close());
  return client;
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<RollbridgeError> {
  const error = await promise.then(() => assert.fail(`expected ${code}`), (error: unknown) => error as RollbridgeError);
  assert.equal(error.code, code, error.message);
  return error;
}

/** A bare unix-socket server that answers each request line with `reply(request)` (raw text). */
async function startFakeDaemon(t: TestContext, reply: (request: Record<string, unknown>) => string): Promise<string> {
  const socketPath = path.join(createTempDir(t, `rbc-`), `fake.sock`);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on(`error`, () => {});
    let buffer = ``;
    socket.setEncoding(`utf8`);
    socket.on(`data`, (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf(`\n`)) !== -1) {
        socket.write(reply(JSON.parse(buffer.slice(0, newline)) as Record<string, unknown>));
        buffer = buffer.slice(newline + 1);
      }
    });
  });
  server.listen(socketPath);
  await once(server, `listening`);
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return socketPath;
}

test(`calls a command and resolves with the validated result`, async (t) => {
  const {socketPath} = await startControlServer(t);
  const client = await connect(t, socketPath);
  assert.deepEqual(await client.call(`status`, {}), STATUS);
  const deployed = await client.call(`deploy`, {releasePath: `/srv/app/r9`, releaseId: `r9`, wait: false});
  assert.equal(deployed.activeReleaseId, `r9`);
  assert.deepEqual(await client.call(`restart`, {policy: `companion`}), {restarted: [`worker`]});
});

test(`sends several calls at once on one connection; the daemon answers them one after the other, matched by id`, async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => { release = resolve; });
  const {socketPath} = await startControlServer(t, {handlers: createTestHandlers({
    deploy: async (params) => {
      await gate;
      return {activeReleaseId: params.releaseId ?? null, previousReleaseId: `r1`, releaseId: params.releaseId ?? `x`, durationMs: 1};
    },
  })});
  const client = await connect(t, socketPath);
  const settled: string[] = [];
  const first = client.call(`deploy`, {releasePath: `/srv/a`, releaseId: `a`}).then((result) => (settled.push(`a`), result));
  const second = client.call(`deploy`, {releasePath: `/srv/b`, releaseId: `b`}).then((result) => (settled.push(`b`), result));
  const events = client.call(`events`, {limit: 3}).then((result) => (settled.push(`events`), result));
  release();
  assert.equal((await events).events[0]?.data.limit, 3);
  assert.equal((await second).releaseId, `b`);
  assert.equal((await first).releaseId, `a`);
  assert.deepEqual(settled, [`a`, `b`, `events`]);
});

test(`passes progress events to onProgress before resolving`, async (t) => {
  const {socketPath} = await startControlServer(t, {handlers: createTestHandlers({
    deploy: async (_params, context) => {
      context.progress({phase: `started`});
      context.progress({phase: `switched`});
      return {activeReleaseId: `r2`, previousReleaseId: `r1`, releaseId: `r2`, durationMs: 2};
    },
  })});
  const client = await connect(t, socketPath);
  const seen: unknown[] = [];
  const result = await client.call(`deploy`, {releasePath: `/srv/r2`}, {onProgress: (event) => seen.push(event)});
  assert.deepEqual(seen, [{phase: `started`}, {phase: `switched`}]);
  assert.equal(result.releaseId, `r2`);
});

test(`rejects with the daemon's error rebuilt from its wire form`, async (t) => {
  const {socketPath} = await startControlServer(t, {handlers: createTestHandlers({
    rollback: async () => {
      throw new RollbridgeError(`ERR_NO_PREVIOUS_RELEASE`, `No previous release to roll back to`, {fix: `Deploy a release first`});
    },
  })});
  const client = await connect(t, socketPath);
  const error = await rejectsWithCode(client.call(`rollback`, {}), `ERR_NO_PREVIOUS_RELEASE`);
  assert.ok(error instanceof RollbridgeError);
  assert.equal(error.fix, `Deploy a release first`);
  assert.deepEqual(await client.call(`status`, {}), STATUS, `the connection survives an error reply`);
});

test(`rejects invalid params before sending them with ERR_CONTROL_INVALID_REQUEST`, async (t) => {
  const {socketPath} = await startControlServer(t);
  const client = await connect(t, socketPath);
  const error = await rejectsWithCode(client.call(`deploy`, {releasePath: `relative`, releaseId: `-bad`}), `ERR_CONTROL_INVALID_REQUEST`);
  assert.match(error.message, /\.releasePath: Expected an absolute path/);
  assert.match(error.message, /\.releaseId: Expected to match the pattern/);
});

test(`rejects a result that does not match the schema with ERR_CONTROL_INVALID_RESPONSE`, async (t) => {
  const {socketPath} = await startControlServer(t, {handlers: createTestHandlers({
    logs: async () => ({sources: `nope`}) as never,
  })});
  const client = await connect(t, socketPath);
  const error = await rejectsWithCode(client.call(`logs`, {}), `ERR_CONTROL_INVALID_RESPONSE`);
  assert.match(error.message, /^Invalid "logs" response from the daemon: \.sources: Expected an array/);
});

test(`accepts extra result fields from a newer daemon`, async (t) => {
  const {socketPath} = await startControlServer(t, {handlers: createTestHandlers({
    restart: async () => ({restarted: [`web`], skipped: [`cron`]}) as never,
  })});
  const client = await connect(t, socketPath);
  assert.deepEqual(await client.call(`restart`, {}), {restarted: [`web`], skipped: [`cron`]});
});

test(`talks to an upstream-style daemon that sends no ids and plain string errors`, async (t) => {
  const socketPath = await startFakeDaemon(t, (request) => request.command === `status`
    ? `${JSON.stringify({status: `success`, activeReleaseId: null, application: `legacy`})}\n`
    : `${JSON.stringify({error: `Unknown command: ${String(request.command)}`, status: `error`})}\n`);
  const client = await connect(t, socketPath);
  assert.deepEqual(await client.call(`status`, {}), {activeReleaseId: null, application: `legacy`});
  const error = await rejectsWithCode(client.call(`logs`, {}), `ERR_INTERNAL`);
  assert.equal(error.message, `Unknown command: logs`);
});

test(`completes a 0.1 daemon's deploy and rollback replies (no id, only activeReleaseId and previousReleaseId)`, async (t) => {
  const socketPath = await startFakeDaemon(t, (request) => `${JSON.stringify({status: `success`, activeReleaseId: request.command === `deploy` ? `r2` : `r1`, previousReleaseId: request.command === `deploy` ? `r1` : `r2`})}\n`);
  const client = await connect(t, socketPath);
  const deployed = await client.call(`deploy`, {releasePath: `/srv/r2`, releaseId: `r2`});
  assert.equal(typeof deployed.durationMs, `number`);
  assert.deepEqual({...deployed, durationMs: 0}, {activeReleaseId: `r2`, previousReleaseId: `r1`, releaseId: `r2`, durationMs: 0, legacyDaemon: true});
  const rolledBack = await client.call(`rollback`, {});
  assert.deepEqual([rolledBack.releaseId, rolledBack.previousReleaseId], [`r1`, `r2`]);
});

test(`never sends a 0.1 daemon a dry run or restart names (it would deploy or restart everything): ERR_CONTROL_LEGACY_UNSUPPORTED`, async (t) => {
  const received: string[] = [];
  const socketPath = await startFakeDaemon(t, (request) => {
    received.push(String(request.command));
    return request.command === `status`
      ? `${JSON.stringify({status: `success`, activeReleaseId: `r1`, application: `legacy`, daemonRuntime: {digest: `0`.repeat(64), format: 1, path: `/tmp/rt`, version: `0.1.21`}})}\n`
      : `${JSON.stringify({status: `success`, activeReleaseId: `r2`, previousReleaseId: `r1`})}\n`;
  });
  const client = await connect(t, socketPath);
  const error = await rejectsWithCode(client.call(`deploy`, {releasePath: `/srv/r2`, dryRun: true}), `ERR_CONTROL_LEGACY_UNSUPPORTED`);
  assert.match(error.message, /--dry-run \(0\.1 would deploy for real\); nothing was sent/);
  await rejectsWithCode(client.call(`restart`, {names: [`worker`]}), `ERR_CONTROL_LEGACY_UNSUPPORTED`);
  // A plain deploy goes through; the status was asked once.
  assert.equal((await client.call(`deploy`, {releasePath: `/srv/r2`})).activeReleaseId, `r2`);
  assert.deepEqual(received, [`status`, `deploy`]);
});

test(`sends a dry run to a daemon of this project after one status call`, async (t) => {
  const PLAN = {releaseId: `r2`, releasePath: `/srv/r2`, start: [], keep: [], singletons: [], hooks: {beforeSwitch: null, afterSwitch: null}, drain: null};
  const received: string[] = [];
  const socketPath = await startFakeDaemon(t, (request) => {
    received.push(String(request.command));
    return request.command === `status`
      ? `${JSON.stringify({id: request.id, status: `success`, activeReleaseId: null, application: `app`, daemon: {pid: 42, startedAt: new Date().toISOString(), uptimeMs: 1, configPath: `/srv/app/rollbridge.js`, deploying: null, stopping: false}})}\n`
      : `${JSON.stringify({id: request.id, status: `success`, activeReleaseId: null, previousReleaseId: null, releaseId: `r2`, durationMs: 1, plan: PLAN})}\n`;
  });
  const client = await connect(t, socketPath);
  assert.deepEqual((await client.call(`deploy`, {releasePath: `/srv/r2`, dryRun: true})).plan, PLAN);
  assert.deepEqual(received, [`status`, `deploy`]);
});

test(`rejects every waiting call with ERR_CONTROL_INVALID_RESPONSE when the daemon sends garbage`, async (t) => {
  const socketPath = await startFakeDaemon(t, () => `<html>\n`);
  const client = await connect(t, socketPath);
  const error = await rejectsWithCode(client.call(`status`, {}), `ERR_CONTROL_INVALID_RESPONSE`);
  assert.match(error.message, /not valid JSON/);
});

test(`rejects with ERR_DAEMON_UNREACHABLE when the daemon closes the connection before the final frame`, async (t) => {
  const {socketPath} = await startControlServer(t, {handlers: createTestHandlers({
    deploy: async (_params, context) => {
      context.progress({phase: `started`});
      (context.connection as net.Socket).destroy();
      return new Promise(() => {});
    },
  })});
  const client = await connect(t, socketPath);
  const error = await rejectsWithCode(client.call(`deploy`, {releasePath: `/srv/r2`}), `ERR_DAEMON_UNREACHABLE`);
  assert.match(error.message, /closed the connection before answering "deploy"/);
  await rejectsWithCode(client.call(`status`, {}), `ERR_DAEMON_UNREACHABLE`);
});

test(`rejects a call whose signal aborts; closing the client aborts the daemon's handler`, async (t) => {
  let handlerAborted = false;
  const {socketPath} = await startControlServer(t, {handlers: createTestHandlers({
    restart: async (_params, context) => {
      await once(context.signal, `abort`).catch(() => {});
      handlerAborted = true;
      return {restarted: []};
    },
  })});
  const client = await connect(t, socketPath);
  const controller = new AbortController();
  const pending = client.call(`restart`, {}, {signal: controller.signal});
  controller.abort(new Error(`cancelled by the test`));
  await assert.rejects(pending, /cancelled by the test/);
  client.close();
  await waitFor(() => handlerAborted);
  assert.deepEqual(await (await connect(t, socketPath)).call(`status`, {}), STATUS);
});

test(`connect fails with ERR_DAEMON_UNREACHABLE naming ENOENT when nothing is at the path`, async (t) => {
  const socketPath = path.join(createTempDir(t, `rbc-`), `missing.sock`);
  const error = await rejectsWithCode(ControlClient.connect(socketPath), `ERR_DAEMON_UNREACHABLE`);
  assert.equal(error.message, `No rollbridge daemon is listening on ${socketPath} (ENOENT)`);
  assert.equal(error.fix, `Start one with "rollbridge ensure-daemon" (or "rollbridge deploy --ensure-daemon"), or check control.path`);
});

test(`connect fails with ERR_DAEMON_UNREACHABLE naming a stale socket on ECONNREFUSED`, async (t) => {
  const dir = createTempDir(t, `rbc-`);
  const live = path.join(dir, `live.sock`);
  const socketPath = path.join(dir, `stale.sock`);
  const server = net.createServer();
  server.listen(live);
  await once(server, `listening`);
  fs.linkSync(live, socketPath);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const error = await rejectsWithCode(ControlClient.connect(socketPath), `ERR_DAEMON_UNREACHABLE`);
  assert.equal(error.message, `No rollbridge daemon is listening on ${socketPath} (ECONNREFUSED: stale socket)`);
});

test(`shutdown resolves before the daemon ends the connection`, async (t) => {
  const started = await startControlServer(t, {handlers: createTestHandlers({
    shutdown: async (_params, context) => {
      await started.server.close({keep: context.connection});
      return {message: `shutdown`};
    },
  })});
  const client = await connect(t, started.socketPath);
  assert.deepEqual(await client.call(`shutdown`, {}), {message: `shutdown`});
  await rejectsWithCode(ControlClient.connect(started.socketPath), `ERR_DAEMON_UNREACHABLE`);
});
