import assert from 'node:assert/strict';
import {test} from 'node:test';
import {FrameTracker, createCloseFrame} from '../../src/proxy/forward-websocket.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {addTarget, connectWebSocket, decodeFrame, encodeFrame, startApp, startProxy} from './harness.ts';

test(`relays WebSockets, counts them on their target and keeps them on it across a switch`, async (t) => {
  const proxy = await startProxy(t);
  const blue = await startApp(t, `blue`);
  const green = await startApp(t, `green`);
  const blueTarget = addTarget(proxy, blue, `r1`);
  proxy.setActiveTargets([blueTarget]);
  const client = await connectWebSocket(t, proxy.address.port);
  await waitFor(() => client.messages.includes(`hello from blue`));
  assert.deepEqual(blueTarget.connections, {http: 0, websocket: 1});

  const greenTarget = addTarget(proxy, green, `r2`);
  proxy.setActiveTargets([greenTarget]);
  client.send(`still here`);
  await waitFor(() => client.messages.includes(`blue: still here`));
  const big = `x`.repeat(200_000);
  client.send(big);
  await waitFor(() => client.messages.includes(`blue: ${big}`));

  const fresh = await connectWebSocket(t, proxy.address.port);
  await waitFor(() => fresh.messages.includes(`hello from green`));
  assert.deepEqual(greenTarget.connections, {http: 0, websocket: 1});

  client.close(1000);
  assert.equal((await client.closed).code, 1000);
  assert.deepEqual(blue.wsCloseCodes, [1000]);
  await waitFor(() => blueTarget.connections.websocket === 0);
});

test(`closes WebSockets still open at the drain deadline with 1001 to both ends, spread over the jitter window`, async (t) => {
  const proxy = await startProxy(t);
  const blue = await startApp(t, `blue`);
  const target = addTarget(proxy, blue, `r1`);
  proxy.setActiveTargets([target]);
  const clients = await Promise.all([1, 2, 3].map(() => connectWebSocket(t, proxy.address.port)));
  await waitFor(() => clients.every((client) => client.messages.length > 0));
  proxy.setActiveTargets([]);
  const result = await target.drain({timeoutMs: 20, wsCloseJitterMs: 100});
  assert.equal(result.timedOut, true);
  assert.deepEqual(result.remaining, {http: 0, websocket: 3});
  const closes = await Promise.all(clients.map((client) => client.closed));
  assert.deepEqual(closes.map((close) => close.code), [1001, 1001, 1001]);
  await waitFor(() => blue.wsCloseCodes.length === 3);
  assert.deepEqual(blue.wsCloseCodes, [1001, 1001, 1001]);
  assert.equal(target.connections.websocket, 0);
  // Spread: not all three in the same instant (the schedule puts them 0, 33 and 67 ms apart).
  assert.equal(new Set(closes.map((close) => Math.round(close.at))).size > 1, true);
});

test(`injects the 1001 close frame only between frames`, () => {
  const tracker = new FrameTracker();
  const first = encodeFrame(1, Buffer.alloc(300, 1), true);
  const second = encodeFrame(2, Buffer.alloc(70_000, 2), false);
  const stream = Buffer.concat([first, second]);
  assert.equal(tracker.atBoundary, true);
  // Split inside the extended-length header of the second frame.
  const cut = first.length + 3;
  assert.equal(tracker.advance(stream.subarray(0, cut), 0, true), first.length);
  assert.equal(tracker.advance(stream.subarray(0, cut), first.length, false), cut);
  assert.equal(tracker.atBoundary, false);
  assert.equal(tracker.advance(stream.subarray(cut), 0, true), stream.length - cut);
  assert.equal(tracker.atBoundary, true);
});

test(`builds masked 1001 close frames for the app and unmasked ones for the client`, () => {
  const toClient = decodeFrame(createCloseFrame(false))!;
  const toApp = createCloseFrame(true);
  assert.equal((toApp[1]! & 0x80) !== 0, true);
  const decoded = decodeFrame(toApp)!;
  assert.equal(toClient.opcode, 8);
  assert.equal(toClient.payload.readUInt16BE(0), 1001);
  assert.equal(decoded.opcode, 8);
  assert.equal(decoded.payload.readUInt16BE(0), 1001);
});

test(`relays a refused upgrade as a normal response`, async (t) => {
  const proxy = await startProxy(t);
  const app = await startApp(t, `plain`);
  app.server.removeAllListeners(`upgrade`);
  app.server.on(`upgrade`, (_req, socket) => socket.end(`HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`));
  const target = addTarget(proxy, app, `r1`);
  proxy.setActiveTargets([target]);
  await assert.rejects(connectWebSocket(t, proxy.address.port), /426 Upgrade Required/);
  await waitFor(() => target.connections.http === 0);
  assert.equal(target.connections.websocket, 0);
});

test(`waits for the end of a frame in flight before injecting the 1001 close frame`, async (t) => {
  const proxy = await startProxy(t);
  const blue = await startApp(t, `blue`);
  const target = addTarget(proxy, blue, `r1`);
  proxy.setActiveTargets([target]);
  const client = await connectWebSocket(t, proxy.address.port);
  await waitFor(() => client.messages.includes(`hello from blue`));
  const frame = encodeFrame(1, Buffer.alloc(100_000, `y`), true);
  client.socket.write(frame.subarray(0, 1000));
  await waitFor(() => blue.wsBytes >= 1000);
  const drained = target.drain({timeoutMs: 1, wsCloseJitterMs: 0});
  await waitFor(() => client.closeCode === 1001);
  client.socket.write(frame.subarray(1000));
  client.socket.write(encodeFrame(1, Buffer.from(`after the deadline`), true));
  const result = await drained;
  assert.deepEqual(result.remaining, {http: 0, websocket: 1});
  assert.equal((await client.closed).code, 1001);
  assert.deepEqual(blue.wsMessages, [`y`.repeat(100_000)]);
  assert.deepEqual(blue.wsCloseCodes, [1001]);
});
