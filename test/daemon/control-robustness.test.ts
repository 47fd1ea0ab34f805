import assert from 'node:assert/strict';
import net from 'node:net';
import test from 'node:test';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';

/** Sends raw bytes on a fresh connection; resolves with the reply lines received until the server closes or `lines` arrived. */
function rawExchange(path: string, payload: string | Buffer, {lines = 1, end = false}: {lines?: number; end?: boolean} = {}): Promise<{replies: Array<Record<string, unknown>>; closedByServer: boolean}> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    let buffer = ``;
    const replies: Array<Record<string, unknown>> = [];
    let settled = false;
    const finish = (closedByServer: boolean) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve({replies, closedByServer});
    };
    socket.setEncoding(`utf8`);
    socket.on(`data`, (chunk: string) => {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf(`\n`)) !== -1) {
        replies.push(JSON.parse(buffer.slice(0, newline)) as Record<string, unknown>);
        buffer = buffer.slice(newline + 1);
      }
      if (replies.length >= lines) finish(false);
    });
    socket.on(`close`, () => finish(true));
    socket.on(`error`, (error: NodeJS.ErrnoException) => (error.code === `EPIPE` || error.code === `ECONNRESET` ? finish(true) : reject(error)));
    socket.on(`connect`, () => {
      socket.write(payload);
      if (end) socket.end();
    });
  });
}

function errorCode(reply: Record<string, unknown> | undefined): unknown {
  return (reply?.error as {code?: unknown} | undefined)?.code;
}

test(`malformed control messages get coded errors and the daemon keeps serving traffic`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});

  const invalidJson = await rawExchange(daemon.socketPath, `not json\n`);
  assert.equal(errorCode(invalidJson.replies[0]), `ERR_CONTROL_INVALID_JSON`);
  assert.equal(invalidJson.replies[0]?.status, `error`);

  const nonObject = await rawExchange(daemon.socketPath, `42\n["status"]\nnull\n`, {lines: 3});
  assert.deepEqual(nonObject.replies.map(errorCode), [`ERR_CONTROL_INVALID_REQUEST`, `ERR_CONTROL_INVALID_REQUEST`, `ERR_CONTROL_INVALID_REQUEST`]);

  const unknown = await rawExchange(daemon.socketPath, `{"id":7,"command":"explode"}\n`);
  assert.equal(unknown.replies[0]?.id, 7);
  assert.equal(errorCode(unknown.replies[0]), `ERR_CONTROL_UNKNOWN_COMMAND`);
  assert.match(String((unknown.replies[0]?.error as {fix: string}).fix), /deploy/);

  const badParams = await rawExchange(daemon.socketPath, `{"id":"x","command":"deploy","releasePath":12}\n`);
  assert.equal(errorCode(badParams.replies[0]), `ERR_CONTROL_INVALID_REQUEST`);

  const huge = await rawExchange(daemon.socketPath, Buffer.alloc(10 * 1024 * 1024, 0x61));
  assert.equal(errorCode(huge.replies[0]), `ERR_CONTROL_MESSAGE_TOO_LARGE`);

  const cut = await rawExchange(daemon.socketPath, `{"id":1,"command":"sta`, {lines: 1, end: true});
  assert.deepEqual(cut.replies, []);

  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`, `the proxy still serves the active release`);
  const status = await daemon.call(`status`);
  assert.equal(status.activeReleaseId, `v1`);
  assert.equal(daemon.child.exitCode, null);
});
