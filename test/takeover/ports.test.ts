import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import net from 'node:net';
import {once} from 'node:events';
import {test} from 'node:test';
import {findListeningPids, findPortHolders} from '../../src/takeover/ports.ts';
import {killQuietly} from '../helpers/processes.ts';

async function listen(t: {after(fn: () => unknown): void}, host: string): Promise<number> {
  const server = net.createServer();
  server.listen(0, host);
  await once(server, `listening`);
  t.after(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

test(`finds this process listening on an IPv4 and an IPv6 port`, async (t) => {
  const v4 = await listen(t, `127.0.0.1`);
  assert.deepEqual(findListeningPids(v4), [process.pid]);
  const v6 = await listen(t, `::1`);
  assert.deepEqual(findListeningPids(v6), [process.pid]);
});

test(`finds a child listening on a port and marks whether it is a legacy process`, async (t) => {
  const child = spawn(process.execPath, [`-e`, `const s = require('net').createServer().listen(0, '127.0.0.1', () => console.log(s.address().port))`], {stdio: [`ignore`, `pipe`, `inherit`]});
  t.after(() => killQuietly(child.pid ?? 0));
  const [chunk] = await once(child.stdout, `data`) as [Buffer];
  const port = Number(chunk.toString().trim());
  const pid = child.pid ?? 0;
  assert.deepEqual(findListeningPids(port), [pid]);
  const [holder] = findPortHolders(port, new Set([pid]));
  assert.equal(holder?.pid, pid);
  assert.equal(holder?.legacy, true);
  assert.match(holder?.args ?? ``, /createServer/);
  assert.equal(findPortHolders(port, new Set())[0]?.legacy, false);
});

test(`finds nobody on a port that is not listening, even with a connection open to another port`, async (t) => {
  const server = net.createServer();
  server.listen(0, `127.0.0.1`);
  await once(server, `listening`);
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.deepEqual(findListeningPids(port), []);
  const other = await listen(t, `127.0.0.1`);
  const socket = net.connect(other, `127.0.0.1`);
  await once(socket, `connect`);
  t.after(() => socket.destroy());
  assert.deepEqual(findListeningPids(socket.localPort ?? 0), []);
});
