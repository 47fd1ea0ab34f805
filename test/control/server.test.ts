import assert from 'node:assert/strict';
import net from 'node:net';
import {once} from 'node:events';
import {test} from 'node:test';
import {RollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {CONTROL_COMMAND_NAMES} from '../../src/control/protocol.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {RawConnection, STATUS, createTestHandlers, startControlServer} from './start-control-server.ts';

function deferred<T = void>(): {promise: Promise<T>; resolve(value: T): void} {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return {promise, resolve};
}

test(`answers a request with its id and the result spread at the top level`, async (t) => {
  const {socketPath} = await startControlServer(t);
  const connection = await RawConnection.open(t, socketPath);
  connection.send(`${JSON.stringify({id: `a1`, command: `status`})}\n`);
  connection.send(`${JSON.stringify({id: 7, command: `events`, limit: 5})}\n`);
  const frames = await connection.waitForFrames(2);
  const byId = new Map(frames.map((frame) => [frame.id, frame]));
  assert.deepEqual(byId.get(`a1`), {id: `a1`, status: `success`, ...STATUS});
  assert.deepEqual(byId.get(7), {id: 7, status: `success`, events: [{at: `2026-01-01T00:00:00.000Z`, message: `Release switched`, data: {limit: 5}}]});
});

test(`answers a request without an id with "id": null, like upstream clients expect`, async (t) => {
  const {socketPath} = await startControlServer(t);
  const connection = await RawConnection.open(t, socketPath);
  connection.send(`{"command":"status"}\n`);
  const [frame] = await connection.waitForFrames(1);
  assert.equal(frame?.id, null);
  assert.equal(frame?.status, `success`);
  assert.equal(frame?.application, `demo`);
});

test(`answers pipelined requests one at a time, in order: the next starts only when the previous is answered`, async (t) => {
  const gate = deferred();
  const started: string[] = [];
  const {socketPath} = await startControlServer(t, {handlers: createTestHandlers({
    deploy: async () => {
      started.push(`deploy`);
      await gate.promise;
      return {activeReleaseId: `r2`, previousReleaseId: `r1`, releaseId: `r2`, durationMs: 1};
    },
    status: async () => {
      started.push(`status`);
      return STATUS;
    },
  })});
  const connection = await RawConnection.open(t, socketPath);
  connection.send([
    JSON.stringify({id: 1, command: `deploy`, releasePath: `/srv/app/r2`}),
    JSON.stringify({id: 2, command: `status`}),
  ].join(`\n`) + `\n`);
  await waitFor(() => started.length === 1);
  const other = await RawConnection.open(t, socketPath);
  other.send(`{"id":"other","command":"status"}\n`);
  await other.waitForFrames(1); // another connection is served meanwhile
  assert.deepEqual(started, [`deploy`, `status`]);
  assert.equal(connection.frames.length, 0, `the second request waits for the first`);
  gate.resolve();
  const frames = await connection.waitForFrames(2);
  assert.deepEqual(frames.map((frame) => frame.id), [1, 2]);
});

test(`stops reading a connection whose replies are not drained, then answers everything once it reads`, async (t) => {
  let handled = 0;
  const big = `x`.repeat(64 * 1024);
  const {socketPath} = await startControlServer(t, {handlers: createTestHandlers({
    status: async () => {
      handled++;
      return {...STATUS, padding: big};
    },
  })});
  const socket = net.connect(socketPath);
  t.after(() => socket.destroy());
  await once(socket, `connect`);
  socket.pause(); // reads nothing: 1000 replies of 64 KiB would be 64 MiB in the daemon without backpressure
  const total = 1_000;
  socket.write(Array.from({length: total}, (_, i) => JSON.stringify({id: i, command: `status`})).join(`\n`) + `\n`);
  await waitFor(() => handled > 0);
  let previous = -1;
  await waitFor(() => {
    const settled = handled === previous;
    previous = handled;
    return settled;
  }, {intervalMs: 200, what: `the daemon to stop handling`});
  assert.ok(handled < total / 4, `handled ${handled} of ${total} without the client reading`);
  let text = ``;
  socket.setEncoding(`utf8`);
  socket.on(`data`, (chunk: string) => (text += chunk));
  socket.resume();
  await waitFor(() => text.split(`\n`).length > total, {what: `all replies`, timeoutMs: 60_000}); // 64 MiB through a socket: slow on a loaded machine
  const ids = text.trim().split(`\n`).map((line) => (JSON.parse(line) as {id: number}).id);
  assert.deepEqual(ids, Array.from({length: total}, (_, i) => i));
});

test(`answers deeply nested JSON with a protocol error, never ERR_INTERNAL`, async (t) => {
  const {socketPath, records} = await startControlServer(t);
  const connection = await RawConnection.open(t, socketPath);
  const deep = `${`[`.repeat(10_000)}${`]`.repeat(10_000)}`;
  connection.send(`{"id":1,"command":${deep}}\n{"id":2,"command":"status","x":${deep}}\n{"id":3,"command":"status","x":[[["ok"]]]}\n`);
  const frames = await connection.waitForFrames(3);
  for (const frame of frames) assert.equal((frame.error as {code: string}).code, `ERR_CONTROL_INVALID_REQUEST`, JSON.stringify(frame).slice(0, 200));
  assert.match((frames[0]!.error as {message: string}).message, /nested 10001 levels deep/);
  assert.equal(records.filter((record) => record.level === `error`).length, 0);
});

test(`logs a flood of rejected lines once, then once more with the count`, async (t) => {
  const {server, socketPath, records} = await startControlServer(t);
  const connection = await RawConnection.open(t, socketPath);
  connection.send(`junk\n`.repeat(1_000));
  await connection.waitForFrames(1_000);
  await server.close();
  const rejected = records.filter((record) => String(record.msg).startsWith(`Control request`));
  assert.equal(rejected.length, 2, JSON.stringify(rejected));
  assert.equal(rejected[0]!.code, `ERR_CONTROL_INVALID_JSON`);
  assert.equal(rejected[1]!.count, 999);
});

test(`sends progress frames before the final frame of a long command`, async (t) => {
  const {socketPath} = await startControlServer(t, {handlers: createTestHandlers({
    deploy: async (_params, context) => {
      context.progress({phase: `started`});
      context.progress({phase: `healthy`, durationMs: 4});
      return {activeReleaseId: `r2`, previousReleaseId: null, releaseId: `r2`, durationMs: 9, phases: [{phase: `started`}]};
    },
  })});
  const connection = await RawConnection.open(t, socketPath);
  connection.send(`${JSON.stringify({id: `d`, command: `deploy`, releasePath: `/srv/app/r2`})}\n`);
  const frames = await connection.waitForFrames(3);
  assert.deepEqual(frames, [
    {id: `d`, status: `progress`, event: {phase: `started`}},
    {id: `d`, status: `progress`, event: {phase: `healthy`, durationMs: 4}},
    {id: `d`, status: `success`, activeReleaseId: `r2`, previousReleaseId: null, releaseId: `r2`, durationMs: 9, phases: [{phase: `started`}]},
  ]);
});

test(`rejects invalid JSON with ERR_CONTROL_INVALID_JSON and keeps the connection open`, async (t) => {
  const {socketPath} = await startControlServer(t);
  const connection = await RawConnection.open(t, socketPath);
  connection.send(`not json\n{"id":2,"command":"status"}\n`);
  const [error, status] = await connection.waitForFrames(2);
  assert.equal(error?.id, null);
  assert.equal(error?.status, `error`);
  assert.equal((error?.error as {code: string}).code, `ERR_CONTROL_INVALID_JSON`);
  assert.equal(status?.id, 2);
  assert.equal(status?.status, `success`);
});

test(`rejects numbers, strings, null and arrays with ERR_CONTROL_INVALID_REQUEST`, async (t) => {
  const {socketPath} = await startControlServer(t);
  const connection = await RawConnection.open(t, socketPath);
  connection.send(`42\n"status"\nnull\n[{"command":"status"}]\n`);
  const frames = await connection.waitForFrames(4);
  for (const frame of frames) {
    assert.equal(frame.id, null);
    assert.equal((frame.error as {code: string}).code, `ERR_CONTROL_INVALID_REQUEST`);
  }
  assert.match((frames[3]?.error as {message: string}).message, /an array/);
});

test(`rejects a request without a command and one with an invalid id`, async (t) => {
  const {socketPath} = await startControlServer(t);
  const connection = await RawConnection.open(t, socketPath);
  connection.send(`{"id":5}\n{"id":{"x":1},"command":"status"}\n`);
  const frames = await connection.waitForFrames(2);
  const missing = frames.find((frame) => frame.id === 5);
  const badId = frames.find((frame) => frame.id === null);
  assert.equal((missing?.error as {code: string}).code, `ERR_CONTROL_INVALID_REQUEST`);
  assert.match((missing?.error as {message: string}).message, /\.command: Expected a string/);
  assert.equal((badId?.error as {code: string}).code, `ERR_CONTROL_INVALID_REQUEST`);
});

test(`rejects an unknown command with ERR_CONTROL_UNKNOWN_COMMAND and a fix listing the known ones`, async (t) => {
  const {socketPath} = await startControlServer(t);
  const connection = await RawConnection.open(t, socketPath);
  connection.send(`{"id":"u","command":"explode"}\n`);
  const [frame] = await connection.waitForFrames(1);
  const error = frame?.error as {code: string; message: string; fix: string};
  assert.equal(frame?.id, `u`);
  assert.equal(error.code, `ERR_CONTROL_UNKNOWN_COMMAND`);
  assert.equal(error.message, `Unknown control command "explode"`);
  for (const name of CONTROL_COMMAND_NAMES) assert.ok(error.fix.includes(name), `fix lists ${name}`);
});

test(`lists every invalid param in one ERR_CONTROL_INVALID_REQUEST naming the CLI command`, async (t) => {
  const {socketPath} = await startControlServer(t);
  const connection = await RawConnection.open(t, socketPath);
  connection.send(`${JSON.stringify({id: 1, command: `deploy`, releaseId: `../etc`, wait: `yes`, bogus: 1})}\n`);
  connection.send(`${JSON.stringify({id: 2, command: `deploy`, releasePath: `relative/path`})}\n`);
  connection.send(`${JSON.stringify({id: 3, command: `events`, limit: 0})}\n`);
  connection.send(`${JSON.stringify({id: 4, command: `restart`, policy: `weird`})}\n`);
  const frames = await connection.waitForFrames(4);
  const errorOf = (id: number) => frames.find((frame) => frame.id === id)?.error as {code: string; message: string; fix: string; details: {issues: string[]}};
  const deploy = errorOf(1);
  assert.equal(deploy.code, `ERR_CONTROL_INVALID_REQUEST`);
  assert.match(deploy.message, /^Invalid "deploy" request: /);
  assert.match(deploy.message, /\.releasePath: Expected a string \(got undefined\)/);
  assert.match(deploy.message, /\.releaseId: Expected to match the pattern/);
  assert.match(deploy.message, /\.wait: Expected a boolean/);
  assert.match(deploy.message, /\.bogus: Extraneous property/);
  assert.equal(deploy.details.issues.length, 4);
  assert.match(deploy.fix, /rollbridge deploy/);
  assert.match(errorOf(2).message, /\.releasePath: Expected an absolute path/);
  assert.match(errorOf(3).message, /^Invalid "events" request: \.limit/);
  assert.match(errorOf(4).message, /^Invalid "restart" request: \.policy/);
});

test(`sends a handler's RollbridgeError as its wire form and logs the failure at warn`, async (t) => {
  const {socketPath, records} = await startControlServer(t, {handlers: createTestHandlers({
    rollback: async () => {
      throw new RollbridgeError(`ERR_NO_PREVIOUS_RELEASE`, `No previous release to roll back to`, {fix: `Deploy a release first`, details: {active: `r1`}});
    },
  })});
  const connection = await RawConnection.open(t, socketPath);
  connection.send(`{"id":1,"command":"rollback"}\n`);
  const [frame] = await connection.waitForFrames(1);
  assert.deepEqual(frame, {id: 1, status: `error`, error: {code: `ERR_NO_PREVIOUS_RELEASE`, message: `No previous release to roll back to`, fix: `Deploy a release first`, details: {active: `r1`}}});
  const logged = records.find((record) => record.msg === `command failed`);
  assert.equal(logged?.level, `warn`);
  assert.equal(logged?.command, `rollback`);
  assert.equal(logged?.code, `ERR_NO_PREVIOUS_RELEASE`);
});

test(`turns an unexpected handler exception into ERR_INTERNAL and logs it at error with the stack`, async (t) => {
  const {socketPath, records} = await startControlServer(t, {handlers: createTestHandlers({
    stop: async () => {
      throw new TypeError(`Cannot read properties of undefined`);
    },
  })});
  const connection = await RawConnection.open(t, socketPath);
  connection.send(`{"id":1,"command":"stop"}\n{"id":2,"command":"status"}\n`);
  const frames = await connection.waitForFrames(2);
  const failed = frames.find((frame) => frame.id === 1);
  assert.deepEqual(failed?.error, {code: `ERR_INTERNAL`, message: `Cannot read properties of undefined`});
  assert.equal(frames.find((frame) => frame.id === 2)?.status, `success`);
  const logged = records.find((record) => record.msg === `command failed`);
  assert.equal(logged?.level, `error`);
  assert.equal(logged?.code, `ERR_INTERNAL`);
  assert.match(String(logged?.stack), /TypeError/);
});

test(`answers a 10 MB line with ERR_CONTROL_MESSAGE_TOO_LARGE, closes that connection and keeps serving others`, async (t) => {
  const {socketPath} = await startControlServer(t, {maxMessageBytes: 1024 * 1024});
  const bystander = await RawConnection.open(t, socketPath);
  const connection = await RawConnection.open(t, socketPath);
  const chunk = Buffer.alloc(1024 * 1024, `a`);
  connection.send(`{"id":1,"command":"deploy","releasePath":"`);
  for (let index = 0; index < 10 && !connection.socket.destroyed; index++) connection.socket.write(chunk);
  await connection.closed;
  assert.equal(connection.frames.length, 1);
  assert.equal(connection.frames[0]?.id, null);
  assert.equal((connection.frames[0]?.error as {code: string}).code, `ERR_CONTROL_MESSAGE_TOO_LARGE`);
  bystander.send(`{"id":"still","command":"status"}\n`);
  const [frame] = await bystander.waitForFrames(1);
  assert.equal(frame?.status, `success`);
  const fresh = await RawConnection.open(t, socketPath);
  fresh.send(`{"id":"new","command":"status"}\n`);
  assert.equal((await fresh.waitForFrames(1))[0]?.status, `success`);
});

test(`accepts a line just under the size limit`, async (t) => {
  const {socketPath} = await startControlServer(t, {maxMessageBytes: 200});
  const connection = await RawConnection.open(t, socketPath);
  const line = JSON.stringify({id: 1, command: `deploy`, releasePath: `/srv/${`x`.repeat(120)}`});
  assert.ok(Buffer.byteLength(line) <= 200);
  connection.send(`${line}\n`);
  assert.equal((await connection.waitForFrames(1))[0]?.status, `success`);
});

test(`cleans up a connection closed mid-message and keeps serving`, async (t) => {
  const {socketPath, records} = await startControlServer(t);
  const connection = await RawConnection.open(t, socketPath);
  connection.socket.end(`{"id":1,"command":"sta`);
  await connection.closed;
  const next = await RawConnection.open(t, socketPath);
  next.send(`{"id":2,"command":"status"}\n`);
  assert.equal((await next.waitForFrames(1))[0]?.status, `success`);
  assert.equal(records.filter((record) => record.level === `error`).length, 0);
});

test(`aborts the handler's signal when the client disconnects`, async (t) => {
  const started = deferred();
  const aborted = deferred<unknown>();
  const {socketPath} = await startControlServer(t, {handlers: createTestHandlers({
    restart: async (_params, context) => {
      started.resolve();
      await once(context.signal, `abort`);
      aborted.resolve(context.signal.reason);
      return {restarted: []};
    },
  })});
  const connection = await RawConnection.open(t, socketPath);
  connection.send(`{"id":1,"command":"restart"}\n`);
  await started.promise;
  connection.socket.destroy();
  const reason = await aborted.promise;
  assert.equal((reason as RollbridgeError).code, `ERR_DAEMON_UNREACHABLE`);
});

test(`shutdown replies on the asking connection, ends it, drops the others and unlinks the socket`, async (t) => {
  const started = await startControlServer(t, {handlers: createTestHandlers({
    shutdown: async (_params, context) => {
      await started.server.close({keep: context.connection});
      return {message: `shutdown`};
    },
  })});
  const other = await RawConnection.open(t, started.socketPath);
  const asking = await RawConnection.open(t, started.socketPath);
  asking.send(`{"id":"bye","command":"shutdown"}\n`);
  await asking.closed;
  await other.closed;
  assert.deepEqual(asking.frames, [{id: `bye`, status: `success`, message: `shutdown`}]);
  assert.equal(other.frames.length, 0);
  const refused = net.connect(started.socketPath);
  const [error] = await once(refused, `error`) as [NodeJS.ErrnoException];
  assert.equal(error.code, `ENOENT`);
});

test(`drops the reply of a request whose client disconnected, without logging an error`, async (t) => {
  const started = deferred();
  const gate = deferred();
  const finished = deferred();
  const {socketPath, records} = await startControlServer(t, {handlers: createTestHandlers({
    status: async () => {
      started.resolve();
      await gate.promise;
      finished.resolve();
      return STATUS;
    },
  })});
  const connection = await RawConnection.open(t, socketPath);
  connection.send(`{"id":1,"command":"status"}\n`);
  await started.promise;
  connection.socket.destroy();
  await connection.closed;
  gate.resolve();
  await finished.promise;
  const next = await RawConnection.open(t, socketPath);
  next.send(`{"id":2,"command":"events"}\n`);
  assert.equal((await next.waitForFrames(1))[0]?.status, `success`);
  assert.equal(records.filter((record) => record.level === `error`).length, 0);
});

test(`answers ERR_INTERNAL when a result cannot be serialised, and drops an unserialisable progress event`, async (t) => {
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  const {socketPath} = await startControlServer(t, {handlers: createTestHandlers({
    deploy: async (_params, context) => {
      context.progress(circular);
      context.progress({phase: `fine`});
      return {activeReleaseId: `r2`, previousReleaseId: null, releaseId: `r2`, durationMs: 1, extra: circular} as never;
    },
  })});
  const connection = await RawConnection.open(t, socketPath);
  connection.send(`{"id":1,"command":"deploy","releasePath":"/srv/r2"}\n`);
  const frames = await connection.waitForFrames(2);
  assert.deepEqual(frames[0], {id: 1, status: `progress`, event: {phase: `fine`}});
  assert.equal(frames[1]?.status, `error`);
  assert.equal((frames[1]?.error as {code: string}).code, `ERR_INTERNAL`);
  connection.send(`{"id":2,"command":"status"}\n`);
  assert.equal((await connection.waitForFrames(3))[2]?.status, `success`);
});
