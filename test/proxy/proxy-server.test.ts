import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import {test} from 'node:test';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {createSilentLogger} from '../../src/log/logger.ts';
import {ProxyServer} from '../../src/proxy/proxy-server.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {addTarget, rawClient, rawExchange, request, startApp, startProxy} from './harness.ts';

test(`answers 503 No active release while no target is active, then routes to the active one`, async (t) => {
  const proxy = await startProxy(t);
  const none = await request(proxy.address.port);
  assert.equal(none.status, 503);
  assert.equal(none.headers[`content-type`], `text/plain; charset=utf-8`);
  assert.equal(none.body, `No active release\n`);

  const app = await startApp(t, `blue`);
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  const ok = await request(proxy.address.port);
  assert.equal(ok.status, 200);
  assert.equal(ok.body, `blue`);
});

test(`answers a WebSocket upgrade with a raw 503 and closes when no target is active`, async (t) => {
  const proxy = await startProxy(t);
  const text = await rawExchange(proxy.address.port, `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
  assert.match(text, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
  assert.match(text, /Connection: close/);
});

test(`sends new requests to the new target after a switch while a slow in-flight request completes on the old one`, async (t) => {
  const proxy = await startProxy(t);
  let releaseSlow: () => void = () => undefined;
  let blueHandlerStarted: () => void = () => undefined;
  const slowStarted = new Promise<void>((resolve) => (blueHandlerStarted = resolve));
  const blue = await startApp(t, `blue`, (req, res) => {
    if (req.url === `/slow`) {
      releaseSlow = () => res.end(`blue-slow`);
      blueHandlerStarted();
      return;
    }
    res.end(`blue`);
  });
  const green = await startApp(t, `green`);
  const blueTarget = addTarget(proxy, blue, `r1`);
  const greenTarget = addTarget(proxy, green, `r2`);
  proxy.setActiveTargets([blueTarget]);

  const slow = request(proxy.address.port, {path: `/slow`});
  await slowStarted;
  assert.deepEqual(blueTarget.connections, {http: 1, websocket: 0});
  proxy.setActiveTargets([greenTarget]);
  assert.deepEqual(proxy.activeTargets, [greenTarget]);
  assert.equal((await request(proxy.address.port)).body, `green`);
  releaseSlow();
  assert.equal((await slow).body, `blue-slow`);
  assert.deepEqual(blueTarget.connections, {http: 0, websocket: 0});
  assert.equal(blueTarget.stats.requests, 1);
  assert.equal(greenTarget.stats.requests, 1);
});

test(`re-routes the next request of a keep-alive client connection after a switch`, async (t) => {
  const proxy = await startProxy(t);
  const blue = await startApp(t, `blue`);
  const green = await startApp(t, `green`);
  proxy.setActiveTargets([addTarget(proxy, blue, `r1`)]);
  const agent = new http.Agent({keepAlive: true, maxSockets: 1});
  t.after(() => agent.destroy());
  let clientConnections = 0;
  agent.on(`free`, () => undefined);
  const first = await request(proxy.address.port, {agent});
  proxy.setActiveTargets([addTarget(proxy, green, `r2`)]);
  const second = await request(proxy.address.port, {agent});
  assert.equal(first.body, `blue`);
  assert.equal(second.body, `green`);
  for (const sockets of Object.values(agent.freeSockets)) clientConnections += sockets?.length ?? 0;
  assert.equal(clientConnections, 1);
});

test(`balances requests round-robin over several active targets`, async (t) => {
  const proxy = await startProxy(t);
  const a = await startApp(t, `a`);
  const b = await startApp(t, `b`);
  proxy.setActiveTargets([addTarget(proxy, a, `r1`), addTarget(proxy, b, `r1`)]);
  const bodies = [];
  for (let i = 0; i < 4; i++) bodies.push((await request(proxy.address.port)).body);
  assert.deepEqual(bodies.sort(), [`a`, `a`, `b`, `b`]);
});

test(`answers 502 Bad gateway when the target refuses connections`, async (t) => {
  const proxy = await startProxy(t);
  const closed = net.createServer();
  closed.listen(0, `127.0.0.1`);
  await new Promise((resolve) => closed.once(`listening`, resolve));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const target = proxy.createTarget({releaseId: `r1`, processId: `web`, host: `127.0.0.1`, port});
  proxy.setActiveTargets([target]);
  const response = await request(proxy.address.port);
  assert.equal(response.status, 502);
  assert.equal(response.body, `Bad gateway\n`);
  assert.equal(response.headers.connection, `close`);
  assert.equal(target.stats.errors, 1);
  assert.deepEqual(target.connections, {http: 0, websocket: 0});
});

test(`answers 504 when the app sends no response head within upstreamResponseTimeoutMs`, async (t) => {
  const proxy = await startProxy(t, {upstreamResponseTimeoutMs: 50});
  const app = await startApp(t, `hang`, () => undefined);
  const target = addTarget(proxy, app, `r1`);
  proxy.setActiveTargets([target]);
  const response = await request(proxy.address.port);
  assert.equal(response.status, 504);
  assert.equal(response.headers.connection, `close`);
  assert.equal(target.connections.http, 0);
});

test(`answers 400 and closes on a malformed request head`, async (t) => {
  const proxy = await startProxy(t);
  const app = await startApp(t, `blue`);
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  for (const bad of [
    `GARBAGE\r\n\r\n`,
    `GET / HTTP/0.9\r\nHost: x\r\n\r\n`,
    `GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n`,
    `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n`,
    `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n`,
    `GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n`,
  ]) {
    const text = await rawExchange(proxy.address.port, bad);
    assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/, bad);
    assert.match(text, /Connection: close/);
  }
});

test(`answers 431 when the request head exceeds maxHeaderBytes, and applies a lowered limit live`, async (t) => {
  const proxy = await startProxy(t, {maxHeaderBytes: 4096});
  const app = await startApp(t, `blue`);
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  const big = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${`a`.repeat(5000)}\r\n\r\n`;
  assert.match(await rawExchange(proxy.address.port, big), /^HTTP\/1\.1 431 /);
  const medium = {headers: {'X-Medium': `a`.repeat(1000)}};
  assert.equal((await request(proxy.address.port, medium)).status, 200);
  proxy.updateOptions({maxHeaderBytes: 512});
  assert.equal((await request(proxy.address.port, medium)).status, 431);
});

test(`answers 408 and closes when the request head is not complete within requestHeadTimeoutMs`, async (t) => {
  const proxy = await startProxy(t, {requestHeadTimeoutMs: 50});
  const text = await rawExchange(proxy.address.port, `GET / HTTP/1.1\r\nHost: x\r\n`);
  assert.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
});

test(`closes idle keep-alive client connections after clientIdleTimeoutMs`, async (t) => {
  const proxy = await startProxy(t, {clientIdleTimeoutMs: 50});
  const app = await startApp(t, `blue`);
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  const client = rawClient(t, proxy.address.port);
  client.socket.write(`GET / HTTP/1.1\r\nHost: x\r\n\r\n`);
  await client.readUntil((text) => text.endsWith(`blue`));
  await new Promise((resolve) => client.socket.once(`end`, resolve));
});

test(`sets X-Forwarded-* for untrusted peers and replaces their values`, async (t) => {
  const proxy = await startProxy(t, {trustForwarded: []});
  let seen: http.IncomingHttpHeaders = {};
  const app = await startApp(t, `blue`, (req, res) => {
    seen = req.headers;
    res.end(`ok`);
  });
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  await request(proxy.address.port, {headers: {Host: `example.com:8443`, 'X-Forwarded-For': `203.0.113.9`, 'X-Forwarded-Proto': `https`, 'X-Forwarded-Host': `evil.example`, 'X-Forwarded-Port': `1`}});
  assert.equal(seen[`x-forwarded-for`], `203.0.113.9, 127.0.0.1`);
  assert.equal(seen[`x-forwarded-proto`], `http`);
  assert.equal(seen[`x-forwarded-host`], `example.com:8443`);
  assert.equal(seen[`x-forwarded-port`], `8443`);
  assert.equal(seen.host, `example.com:8443`);
});

test(`keeps X-Forwarded-Proto and -Host from trusted peers and never sends https,http`, async (t) => {
  const proxy = await startProxy(t);
  let seen: http.IncomingHttpHeaders = {};
  const app = await startApp(t, `blue`, (req, res) => {
    seen = req.headers;
    res.end(`ok`);
  });
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  await request(proxy.address.port, {headers: {Host: `example.com`, 'X-Forwarded-For': `198.51.100.7`, 'X-Forwarded-Proto': `https`, 'X-Forwarded-Host': `www.example.com`}});
  assert.equal(seen[`x-forwarded-for`], `198.51.100.7, 127.0.0.1`);
  assert.equal(seen[`x-forwarded-proto`], `https`);
  assert.equal(seen[`x-forwarded-host`], `www.example.com`);
  assert.equal(seen[`x-forwarded-port`], `443`);
  await request(proxy.address.port, {headers: {Host: `example.com`}});
  assert.equal(seen[`x-forwarded-for`], `127.0.0.1`);
  assert.equal(seen[`x-forwarded-proto`], `http`);
  assert.equal(seen[`x-forwarded-port`], `80`);
});

test(`applies a live trustForwarded change to the next request of an open connection`, async (t) => {
  const proxy = await startProxy(t);
  const protos: unknown[] = [];
  const app = await startApp(t, `blue`, (req, res) => {
    protos.push(req.headers[`x-forwarded-proto`]);
    res.end(`ok`);
  });
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  const agent = new http.Agent({keepAlive: true, maxSockets: 1});
  t.after(() => agent.destroy());
  await request(proxy.address.port, {agent, headers: {'X-Forwarded-Proto': `https`}});
  proxy.updateOptions({trustForwarded: []});
  await request(proxy.address.port, {agent, headers: {'X-Forwarded-Proto': `https`}});
  assert.deepEqual(protos, [`https`, `http`]);
  assert.equal(app.connections, 1);
});

test(`survives a flood of malformed and aborted connections and keeps serving`, async (t) => {
  const proxy = await startProxy(t);
  const app = await startApp(t, `blue`);
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  const garbage = [
    `\x00\x01\x02\r\n\r\n`, `GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n`,
    `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`, `GET / HTTP/1.1\r\n: x\r\n\r\n`,
    `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc`, `\r\n\r\n\r\n`,
  ];
  await Promise.all(Array.from({length: 200}, (_, i) => new Promise<void>((resolve) => {
    const socket = net.connect(proxy.address.port, `127.0.0.1`);
    socket.on(`error`, () => resolve());
    socket.on(`close`, () => resolve());
    socket.on(`data`, () => undefined);
    socket.write(garbage[i % garbage.length]!, () => {
      if (i % 3 === 0) socket.destroy();
      else socket.end();
    });
  })));
  const response = await request(proxy.address.port);
  assert.equal(response.status, 200);
});

test(`rejects with ERR_PROXY_LISTEN_FAILED when the port is taken`, async (t) => {
  const proxy = await startProxy(t);
  await assert.rejects(ProxyServer.start({
    host: `127.0.0.1`, port: proxy.address.port, trustForwarded: [`loopback`], maxHeaderBytes: 1024,
    requestHeadTimeoutMs: 1000, clientIdleTimeoutMs: 1000, upstreamResponseTimeoutMs: 0, upstreamIdleTimeoutMs: 1000,
    clientBodyTimeoutMs: 1000, clientSendTimeoutMs: 1000, maxConnections: 10, log: createSilentLogger(),
  }), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_PROXY_LISTEN_FAILED`);
    assert.match(error.fix ?? ``, /proxy\.port/);
    return true;
  });
});

test(`rejects invalid options with ERR_PROXY_OPTIONS_INVALID naming the key`, async () => {
  await assert.rejects(ProxyServer.start({
    host: `127.0.0.1`, port: 0, trustForwarded: [`not-an-ip`], maxHeaderBytes: 1024,
    requestHeadTimeoutMs: 1000, clientIdleTimeoutMs: 1000, upstreamResponseTimeoutMs: 0, upstreamIdleTimeoutMs: 1000,
    clientBodyTimeoutMs: 1000, clientSendTimeoutMs: 1000, maxConnections: 10, log: createSilentLogger(),
  }), (error: unknown) => isRollbridgeError(error) && error.code === `ERR_PROXY_OPTIONS_INVALID` && /trustForwarded/.test(error.fix ?? ``));
});

test(`binds with reusePort so a second proxy can share the port`, async (t) => {
  const first = await startProxy(t, {reusePort: true});
  const second = await startProxy(t, {reusePort: true, port: first.address.port});
  assert.equal(second.address.port, first.address.port);
});

test(`close() destroys open client connections and stops listening`, async (t) => {
  const proxy = await startProxy(t);
  const app = await startApp(t, `blue`, () => undefined);
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  const pending = request(proxy.address.port).then(() => `response`, () => `error`);
  await waitFor(() => app.connections === 1);
  await proxy.close();
  assert.equal(await pending, `error`);
  await assert.rejects(request(proxy.address.port));
});

test(`proxies over IPv6 loopback and reports the IPv6 peer in X-Forwarded-For`, async (t) => {
  const proxy = await startProxy(t, {host: `::1`});
  let seen: http.IncomingHttpHeaders = {};
  const app = http.createServer((req, res) => {
    seen = req.headers;
    res.end(`v6`);
  });
  app.listen(0, `::1`);
  await new Promise((resolve) => app.once(`listening`, resolve));
  t.after(() => {
    app.closeAllConnections();
    app.close();
  });
  const target = proxy.createTarget({releaseId: `r1`, processId: `web`, host: `::1`, port: (app.address() as net.AddressInfo).port});
  assert.equal(target.url, `http://[::1]:${(app.address() as net.AddressInfo).port}`);
  proxy.setActiveTargets([target]);
  assert.equal(proxy.address.host, `::1`);
  const body = await new Promise<string>((resolve, reject) => {
    http.get({host: `::1`, port: proxy.address.port, agent: false, headers: {Host: `[::1]:${proxy.address.port}`}}, (res) => {
      let text = ``;
      res.on(`data`, (chunk: Buffer) => (text += chunk.toString()));
      res.on(`end`, () => resolve(text));
    }).on(`error`, reject);
  });
  assert.equal(body, `v6`);
  assert.equal(seen[`x-forwarded-for`], `::1`);
  assert.equal(seen[`x-forwarded-port`], String(proxy.address.port));
});
