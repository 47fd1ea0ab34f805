import assert from 'node:assert/strict';
import net from 'node:net';
import {test} from 'node:test';
import {RESERVED_FDS} from '../../src/proxy/proxy-server.ts';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {waitFor} from '../helpers/wait-for.ts';

const OPEN_FILE_LIMIT = 400;

test(`under a low open-file limit, connections past the cap get 503 and a close while status, health checks and state writes keep working`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir), {openFileLimit: OPEN_FILE_LIMIT});
  await daemon.call(`deploy`, {releasePath: daemon.release(`one`), releaseId: `one`});
  const cap = Math.floor((OPEN_FILE_LIMIT - RESERVED_FDS) / 2);
  const listening = await daemon.record((record) => record.msg === `proxy listening`, `the proxy's connection limit`);
  assert.equal(listening.maxConnections, cap);

  // Slowloris-style: connections that send nothing, more than the limit leaves room for.
  const sockets: net.Socket[] = [];
  t.after(() => {
    for (const socket of sockets) socket.destroy();
  });
  const replies: string[] = [];
  for (let i = 0; i < OPEN_FILE_LIMIT; i++) {
    const socket = net.connect(daemon.proxyPort, `127.0.0.1`);
    socket.on(`error`, () => undefined);
    let text = ``;
    socket.on(`data`, (chunk: Buffer) => (text += chunk.toString(`latin1`)));
    socket.on(`close`, () => replies.push(text));
    sockets.push(socket);
  }
  await waitFor(() => replies.length >= OPEN_FILE_LIMIT - cap, {what: `the connections past the cap to be answered and closed`});
  const unexpected = replies.filter((text) => !/^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*Too many connections\n$/.test(text));
  assert.deepEqual(unexpected, [], `${unexpected.length} of ${replies.length} closed connections got something else; ${JSON.stringify(daemon.records.filter((r) => r.level !== `info` && r.level !== `debug`).slice(0, 5))}`);

  // Saturated: the control socket answers, and a deploy (spawn, health checks, state writes) succeeds.
  assert.equal((await daemon.call(`status`)).activeReleaseId, `one`);
  const second = await daemon.call(`deploy`, {releasePath: daemon.release(`two`), releaseId: `two`});
  assert.equal(second.activeReleaseId, `two`);
  for (const socket of sockets.splice(0, 10)) socket.destroy();
  await waitFor(async () => (await httpGet(daemon.proxyPort)).body === `two\n`, {what: `a request once connections are freed`});
});
