/**
 * Conformance of the real proxy against malformed, ambiguous and hostile HTTP/1.1: every case is sent
 * as raw bytes, and both what the client gets back and what the app received are checked, behind a
 * strict app (node:http, llhttp) and a lenient one (insecureHTTPParser), which is where a desync
 * between the proxy and the app would show.
 */
import assert from 'node:assert/strict';
import {once} from 'node:events';
import http from 'node:http';
import net from 'node:net';
import {describe, test} from 'node:test';
import type {TestContext} from 'node:test';
import {waitFor} from '../helpers/wait-for.ts';
import type {ProxyOptions, ProxyServer} from '../../src/proxy/proxy-server.ts';
import {countOf, rawClient, rawExchange, startProxy} from './harness.ts';

type Seen = {method: string; url: string; headers: http.IncomingHttpHeaders; rawHeaders: string[]; body: string; complete: boolean};

type RecordingApp = {
  port: number;
  /** Every request the app's parser produced (complete or not), in order. */
  requests: Seen[];
  /** Parse errors the app's parser raised (a desync the proxy let through). */
  clientErrors: string[];
  /** Raw bytes the app received on all its connections. */
  bytes: () => number;
  /** App connections closed so far (by either side). */
  closed: number;
};

/** A node:http app that records what its parser saw; `/big` answers 8 MB, `/status/<n>` answers that status. */
async function startRecordingApp(t: TestContext, lenient: boolean): Promise<RecordingApp> {
  const app: RecordingApp = {port: 0, requests: [], clientErrors: [], bytes: () => received, closed: 0};
  let received = 0;
  const server = http.createServer({insecureHTTPParser: lenient, keepAliveTimeout: 5_000}, (req, res) => {
    const seen: Seen = {method: req.method ?? ``, url: req.url ?? ``, headers: req.headers, rawHeaders: req.rawHeaders, body: ``, complete: false};
    app.requests.push(seen);
    req.setEncoding(`latin1`);
    req.on(`data`, (chunk: string) => (seen.body += chunk));
    req.on(`error`, () => undefined);
    req.on(`end`, () => {
      seen.complete = true;
      const status = /^\/status\/(\d{3})$/.exec(seen.url)?.[1];
      if (status !== undefined) {
        res.writeHead(Number(status), {'Content-Length': `5`}); // HEAD, 204 and 304 carry no body whatever the length says
        res.end(Number(status) === 204 || Number(status) === 304 ? undefined : `hello`);
      } else if (seen.url === `/big`) {
        res.writeHead(200, {'Content-Length': String(8 * 1024 * 1024)});
        res.end(Buffer.alloc(8 * 1024 * 1024, 120));
      } else {
        res.end(`ok ${seen.method} ${seen.url} ${seen.body.length}`);
      }
    });
  });
  server.on(`connection`, (socket: net.Socket) => {
    socket.on(`data`, (chunk: Buffer) => (received += chunk.length));
    socket.on(`close`, () => app.closed++);
  });
  server.on(`clientError`, (error: NodeJS.ErrnoException, socket: net.Socket) => {
    if (error.code !== `ECONNRESET`) app.clientErrors.push(`${error.code ?? ``}: ${error.message}`);
    socket.destroy();
  });
  server.listen(0, `127.0.0.1`);
  await once(server, `listening`);
  app.port = (server.address() as net.AddressInfo).port;
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return app;
}

async function rig(t: TestContext, lenient: boolean, overrides: Partial<ProxyOptions> = {}): Promise<{proxy: ProxyServer; app: RecordingApp}> {
  const proxy = await startProxy(t, overrides);
  const app = await startRecordingApp(t, lenient);
  proxy.setActiveTargets([proxy.createTarget({releaseId: `r1`, processId: `web`, host: `127.0.0.1`, port: app.port})]);
  return {proxy, app};
}

/** Cases the proxy must refuse before a single byte reaches the app: [name, request, status]. */
const REFUSED: Array<[string, string, number]> = [
  [`CL + TE (CL first)`, `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  [`TE + CL (TE first)`, `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n`, 400],
  [`TE not chunked`, `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n`, 501],
  [`TE chunked twice`, `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  [`TE chunked, identity`, `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`, 501],
  [`TE with \\v`, `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n`, 400],
  [`TE with \\xa0`, `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \xa0chunked\r\n\r\n0\r\n\r\n`, 501],
  [`TE on HTTP/1.0`, `POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  [`CL twice, same value`, `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx`, 400],
  [`CL list`, `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx`, 400],
  [`CL with \\f`, `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \x0c1\r\n\r\nx`, 400],
  [`CL signed`, `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx`, 400],
  [`CL hex`, `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x1\r\n\r\nx`, 400],
  [`no Host`, `GET / HTTP/1.1\r\n\r\n`, 400],
  [`two Hosts`, `GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, 400],
  [`empty Host`, `GET / HTTP/1.1\r\nHost:\r\n\r\n`, 400],
  [`Host with a path`, `GET / HTTP/1.1\r\nHost: a/b\r\n\r\n`, 400],
  [`obs-fold`, `GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n`, 400],
  [`space before colon`, `GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n`, 400],
  [`non-token name`, `GET / HTTP/1.1\r\nHost: a\r\nX[A]: 1\r\n\r\n`, 400],
  [`bare LF in a value`, `GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\nTransfer-Encoding: chunked\r\n\r\n`, 400],
  [`bare CR in a value`, `GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\rX-B: 2\r\n\r\n`, 400],
  [`NUL in a value`, `GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n`, 400],
  [`bare LF line end`, `GET / HTTP/1.1\nHost: a\r\n\r\n`, 400],
  [`LF in the target`, `GET /a\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  [`control byte in the target`, `GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  [`non-ASCII in the target`, `GET /\xe9 HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  [`fragment in the target`, `GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  [`bad percent escape`, `GET /%G0 HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  [`target without a slash`, `GET a/b HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  [`asterisk for GET`, `GET * HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  [`userinfo in absolute-form`, `GET http://user@a/ HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  [`CONNECT`, `CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n`, 405],
  [`two spaces`, `GET  / HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  [`HTTP/0.9`, `GET /\r\n\r\n`, 400],
  [`HTTP/2.0`, `GET / HTTP/2.0\r\nHost: a\r\n\r\n`, 505],
  [`lowercase version`, `GET / http/1.1\r\nHost: a\r\n\r\n`, 400],
  [`bare LF before the request`, `\nGET / HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
];

/** Bodies the proxy must cut off: the head went through, so the app sees an incomplete request at most, never a second one. */
const BAD_BODIES: Array<[string, string]> = [
  [`bare LF in a chunk extension`, `5;a\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\nhello\r\n0\r\n\r\n`],
  [`bare CR in a chunk extension`, `5;a\rb\r\nhello\r\n0\r\n\r\n`],
  [`whitespace after the chunk size`, `5 \r\nhello\r\n0\r\n\r\n`],
  [`whitespace in a chunk extension`, `5; a=b\r\nhello\r\n0\r\n\r\n`],
  [`unterminated quoted extension`, `5;a="b\r\nhello\r\n0\r\n\r\n`],
  [`chunk size overflow`, `10000000000000001\r\nhello\r\n0\r\n\r\n`],
  [`chunk size sign`, `+5\r\nhello\r\n0\r\n\r\n`],
  [`chunk data longer than its size`, `3\r\nhello\r\n0\r\n\r\n`],
  [`bare LF after chunk data`, `5\r\nhello\n0\r\n\r\n`],
  [`bare LF in a trailer`, `0\r\nX-T: a\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n\r\n`],
  [`obs-fold in a trailer`, `0\r\nX-T: a\r\n b\r\n\r\n`],
  [`non-token trailer name`, `0\r\nX T: a\r\n\r\n`],
  [`NUL in a trailer`, `0\r\nX-T: a\x00\r\n\r\n`],
];

for (const lenient of [false, true]) {
  describe(`behind a ${lenient ? `lenient (insecureHTTPParser)` : `strict`} app`, () => {
    test(`refuses malformed and ambiguous heads with nginx's status and a close; the app receives nothing`, async (t) => {
      const {proxy, app} = await rig(t, lenient);
      for (const [name, bytes, status] of REFUSED) {
        const reply = await rawExchange(proxy.address.port, bytes);
        assert.match(reply, new RegExp(`^HTTP/1\\.1 ${status} `), name);
        assert.match(reply, /\r\nConnection: close\r\n/, name);
        assert.equal(countOf(reply, `HTTP/1.1 `), 1, `${name}: one response, then the close`);
      }
      assert.equal(app.bytes(), 0);
      assert.deepEqual(app.requests, []);
    });

    test(`cuts off malformed chunked bodies: the app never completes the request nor sees a smuggled one`, async (t) => {
      const {proxy, app} = await rig(t, lenient);
      for (const [name, body] of BAD_BODIES) {
        const before = app.requests.length;
        const reply = await rawExchange(proxy.address.port, `POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
        assert.match(reply, /^HTTP\/1\.1 400 /, name);
        await waitFor(() => app.requests.length === before || app.requests.length === before + 1, {what: name});
        const seen = app.requests.slice(before);
        assert.ok(seen.every((r) => r.url === `/chunked` && !r.complete), `${name}: ${JSON.stringify(seen.map((r) => [r.url, r.complete]))}`);
      }
      assert.ok(app.requests.every((r) => r.url !== `/smuggled`));
    });

    test(`forwards valid but unusual framing in one clean form the app reads the same way`, async (t) => {
      const {proxy, app} = await rig(t, lenient);
      const client = rawClient(t, proxy.address.port);
      client.socket.write(`POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length:\t007 \r\n\r\n1234567`);
      await client.readUntil((text) => text.includes(`ok POST /cl 7`));
      client.socket.write(`POST /te HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  CHUNKED\r\n\r\n3;ext=1;q="a\\"b"\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n`);
      await client.readUntil((text) => text.includes(`ok POST /te 3`));
      client.socket.write(`GET http://b.example:81/abs?x=1 HTTP/1.1\r\nHost: a\r\n\r\n`);
      await client.readUntil((text) => text.includes(`ok GET /abs?x=1 0`));
      const [cl, te, absolute] = app.requests;
      assert.deepEqual(cl!.rawHeaders.filter((_, i, all) => i % 2 === 0 && /content-length/i.test(all[i]!)).length, 1);
      assert.equal(cl!.headers[`content-length`], `7`);
      assert.equal(te!.headers[`transfer-encoding`], `chunked`);
      assert.equal(te!.body, `abc`);
      assert.equal(absolute!.headers.host, `b.example:81`);
      assert.equal(absolute!.rawHeaders.filter((name) => name.toLowerCase() === `host`).length, 1);
      assert.deepEqual(app.clientErrors, []);
    });

    test(`answers pipelined requests in order, including after HEAD, 204 and 304 with a Content-Length`, async (t) => {
      const {proxy, app} = await rig(t, lenient);
      const client = rawClient(t, proxy.address.port);
      client.socket.write(
        `HEAD /status/200 HTTP/1.1\r\nHost: a\r\n\r\n`
        + `GET /status/204 HTTP/1.1\r\nHost: a\r\n\r\n`
        + `GET /status/304 HTTP/1.1\r\nHost: a\r\n\r\n`
        + `POST /after HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi`
        + `GET /last HTTP/1.1\r\nHost: a\r\n\r\n`,
      );
      const text = await client.readUntil((s) => s.includes(`ok GET /last 0`));
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
      assert.deepEqual(statuses, [`200`, `204`, `304`, `200`, `200`]);
      assert.ok(text.indexOf(`ok POST /after 2`) < text.indexOf(`ok GET /last 0`));
      assert.equal(countOf(text, `hello`), 0, `no body after HEAD, 204 or 304`);
      assert.deepEqual(app.requests.map((r) => r.url), [`/status/200`, `/status/204`, `/status/304`, `/after`, `/last`]);
    });

    test(`relays 100 Continue and then the final response`, async (t) => {
      const {proxy, app} = await rig(t, lenient);
      const client = rawClient(t, proxy.address.port);
      client.socket.write(`POST /expect HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n`);
      await client.readUntil((text) => text.startsWith(`HTTP/1.1 100 Continue\r\n\r\n`));
      client.socket.write(`body`);
      await client.readUntil((text) => text.includes(`ok POST /expect 4`));
      assert.equal(app.requests[0]!.body, `body`);
    });

    test(`passes an Upgrade other than WebSocket as a plain request without its Upgrade headers`, async (t) => {
      const {proxy, app} = await rig(t, lenient);
      const reply = await rawExchange(proxy.address.port, `GET /h2c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`);
      assert.match(reply, /^HTTP\/1\.1 200 OK\r\n/);
      assert.equal(app.requests[0]!.headers.upgrade, undefined);
      assert.equal(app.requests[0]!.headers.connection, undefined);
    });
  });
}

test(`drops the Content-Length of a chunked response and never relays both`, async (t) => {
  const proxy = await startProxy(t);
  const server = net.createServer((socket) => {
    socket.on(`error`, () => undefined);
    socket.once(`data`, () => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`));
  });
  server.listen(0, `127.0.0.1`);
  await once(server, `listening`);
  t.after(() => new Promise((resolve) => server.close(resolve)));
  proxy.setActiveTargets([proxy.createTarget({releaseId: `r1`, processId: `web`, host: `127.0.0.1`, port: (server.address() as net.AddressInfo).port})]);
  const client = rawClient(t, proxy.address.port);
  client.socket.write(`GET / HTTP/1.1\r\nHost: a\r\n\r\n`);
  const text = await client.readUntil((s) => s.endsWith(`0\r\n\r\n`));
  assert.doesNotMatch(text, /content-length/i);
  assert.match(text, /\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n$/);
});

test(`answers a malformed response from the app with 502`, async (t) => {
  const proxy = await startProxy(t);
  const server = net.createServer((socket) => {
    socket.on(`error`, () => undefined);
    socket.once(`data`, () => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi`));
  });
  server.listen(0, `127.0.0.1`);
  await once(server, `listening`);
  t.after(() => new Promise((resolve) => server.close(resolve)));
  proxy.setActiveTargets([proxy.createTarget({releaseId: `r1`, processId: `web`, host: `127.0.0.1`, port: (server.address() as net.AddressInfo).port})]);
  assert.match(await rawExchange(proxy.address.port, `GET / HTTP/1.1\r\nHost: a\r\n\r\n`), /^HTTP\/1\.1 502 /);
});

test(`slowloris: empty lines and a trickled head do not extend the head deadline`, async (t) => {
  const {proxy, app} = await rig(t, false, {requestHeadTimeoutMs: 300, clientIdleTimeoutMs: 10_000});
  for (const trickle of [`\r\n`, `G`]) {
    const client = rawClient(t, proxy.address.port);
    const startedAt = Date.now();
    const timer = setInterval(() => {
      if (!client.socket.destroyed) client.socket.write(trickle);
    }, 50);
    t.after(() => clearInterval(timer));
    const text = await client.readUntil((s) => s.includes(`\r\n\r\n`));
    clearInterval(timer);
    assert.match(text, /^HTTP\/1\.1 408 /, JSON.stringify(trickle));
    assert.ok(Date.now() - startedAt < 5_000, `closed by the 300 ms head deadline, not the 10 s idle timeout`);
  }
  assert.deepEqual(app.requests, []);
});

test(`a stalled upload gets 408 after clientBodyTimeoutMs and the app's request is aborted`, async (t) => {
  const {proxy, app} = await rig(t, false, {clientBodyTimeoutMs: 300});
  const client = rawClient(t, proxy.address.port);
  client.socket.write(`POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab`);
  const text = await client.readUntil((s) => s.includes(`\r\n\r\n`));
  assert.match(text, /^HTTP\/1\.1 408 /);
  assert.equal(app.requests.length, 1);
  assert.equal(app.requests[0]!.complete, false);
});

test(`a client that stops reading its response is cut after clientSendTimeoutMs, freeing the app connection`, async (t) => {
  const {proxy, app} = await rig(t, false, {clientSendTimeoutMs: 300});
  const socket = net.connect(proxy.address.port, `127.0.0.1`);
  t.after(() => socket.destroy());
  socket.on(`error`, () => undefined);
  socket.write(`GET /big HTTP/1.1\r\nHost: a\r\n\r\n`);
  socket.pause(); // never reads the 8 MB
  await waitFor(() => app.requests.length === 1);
  await waitFor(() => proxy.connections.open === 0, {what: `the client connection to be cut`});
  await waitFor(() => app.closed === 1, {what: `the app connection to be closed`});
});

test(`answers 503 and closes beyond maxConnections, and accepts again once a connection ends`, async (t) => {
  const {proxy} = await rig(t, false, {maxConnections: 2});
  const first = rawClient(t, proxy.address.port);
  const second = rawClient(t, proxy.address.port);
  first.socket.write(`GET / HTTP/1.1\r\nHost: a\r\n\r\n`);
  second.socket.write(`GET / HTTP/1.1\r\nHost: a\r\n\r\n`);
  await first.readUntil((s) => s.includes(`ok GET`));
  await second.readUntil((s) => s.includes(`ok GET`));
  const refused = await rawExchange(proxy.address.port, `GET / HTTP/1.1\r\nHost: a\r\n\r\n`);
  assert.match(refused, /^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*Connection: close\r\n\r\nToo many connections\n$/);
  assert.equal(proxy.connections.refused, 1);
  first.socket.destroy();
  await waitFor(() => proxy.connections.open === 1);
  assert.match(await rawExchange(proxy.address.port, `GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 200 /);
});
