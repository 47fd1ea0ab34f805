import assert from 'node:assert/strict';
import {test} from 'node:test';
import {isRequestKeepAlive, parseRequestHead, parseResponseHead, stripConnectionLines} from '../../src/proxy/http-head.ts';
import type {RequestHead} from '../../src/proxy/http-head.ts';
import {buildUpstreamHead} from '../../src/proxy/forwarded-headers.ts';

function parse(text: string): RequestHead | number {
  return parseRequestHead(Buffer.from(text, `latin1`), text.length);
}

function request(text: string): RequestHead {
  const head = parse(text);
  assert.notEqual(typeof head, `number`, `rejected with ${String(head)}: ${JSON.stringify(text)}`);
  return head as RequestHead;
}

const PEER = {ip: `127.0.0.1`, trusted: false};

test(`parses the request line and the headers that matter, case-insensitively`, () => {
  const head = request(`POST /a?b=1 HTTP/1.1\r\nhost: example.com\r\nCONTENT-LENGTH: 12\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: 5.6.7.8\r\nConnection: close\r\n\r\n`);
  assert.equal(head.method, `POST`);
  assert.equal(head.minorVersion, 1);
  assert.equal(head.host, `example.com`);
  assert.equal(head.contentLength, 12);
  assert.equal(head.forwardedFor, `1.2.3.4, 5.6.7.8`);
  assert.equal(head.connection, `close`);
  assert.equal(isRequestKeepAlive(head), false);
  assert.equal(head.strip.length, 6); // two X-Forwarded-For lines + Connection
});

test(`recognises WebSocket upgrades and keeps their Connection header`, () => {
  const head = request(`GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n`);
  assert.equal(head.upgrade, true);
  assert.equal(head.websocket, true);
  assert.deepEqual(head.strip, []);
});

test(`applies HTTP/1.0 keep-alive semantics`, () => {
  assert.equal(isRequestKeepAlive(request(`GET / HTTP/1.0\r\n\r\n`)), false);
  assert.equal(isRequestKeepAlive(request(`GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n`)), true);
  assert.equal(isRequestKeepAlive(request(`GET / HTTP/1.1\r\nHost: a\r\n\r\n`)), true);
});

test(`rejects heads that could smuggle or confuse framing, with nginx's status codes`, () => {
  const cases: Array<[string, number]> = [
    [`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n`, 400],
    [`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n`, 501],
    [`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n`, 501],
    [`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n`, 400],
    [`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n`, 400],
    [`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\xa0\r\n\r\n`, 501],
    [`POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n`, 400],
    [`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n`, 400],
    [`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n`, 400],
    [`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n`, 400],
    [`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n`, 400],
    [`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \x0c1\r\n\r\n`, 400],
    [`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999\r\n\r\n`, 400],
    [`GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, 400],
    [`GET / HTTP/1.1\r\n\r\n`, 400],
    [`GET / HTTP/1.1\r\nHost: \r\n\r\n`, 400],
    [`GET / HTTP/1.1\r\nHost: a/b\r\n\r\n`, 400],
    [`GET / HTTP/1.1\r\nHost: a\r\nX: a\nY: b\r\n\r\n`, 400],
    [`GET / HTTP/1.1\r\nHost: a\r\nX: a\rY: b\r\n\r\n`, 400],
    [`GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n`, 400],
    [`GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n`, 400],
    [`GET / HTTP/1.1\r\nHost: a\r\nName : value\r\n\r\n`, 400],
    [`GET / HTTP/1.1\r\nHost: a\r\nNa(me: value\r\n\r\n`, 400],
    [`GET / HTTP/1.1\r\nHost: a\r\n: value\r\n\r\n`, 400],
    [`GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n`, 400],
    [`GET / HTTP/1.1\r\n Host: a\r\n\r\n`, 400],
    [`GET /  HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
    [`GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
    [`GET /a\xffb HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
    [`GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
    [`GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
    [`GET a HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
    [`GET * HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
    [`GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
    [`GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
    [`CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n`, 405],
    [`G(T / HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
    [`GET / HTTP/1.2\r\nHost: a\r\n\r\n`, 505],
    [`GET / HTTP/2.0\r\nHost: a\r\n\r\n`, 505],
    [`GET / HTTP/1.1 \r\nHost: a\r\n\r\n`, 400],
    [`GET /\r\n\r\n`, 400],
  ];
  for (const [text, status] of cases) assert.equal(parse(text), status, JSON.stringify(text));
});

test(`forwards Content-Length and Transfer-Encoding in one clean form`, () => {
  const messy = request(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\t007 \r\nAccept: */*\r\n\r\n`);
  assert.equal(messy.contentLength, 7);
  assert.equal(buildUpstreamHead(messy, PEER).split(`\r\n`).filter((line) => /^content-length/i.test(line)).join(), `Content-Length: 7`);
  const clean = request(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\n`);
  assert.deepEqual(clean.strip, []);
  const chunked = request(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:   ChunKed\r\n\r\n`);
  assert.equal(chunked.chunked, true);
  assert.match(buildUpstreamHead(chunked, PEER), /^POST \/ HTTP\/1\.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-Forwarded-For/);
});

test(`rewrites an absolute-form target to origin-form with its authority as the only Host`, () => {
  const head = request(`GET http://b.example:81?q=1 HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n`);
  assert.equal(head.host, `b.example:81`);
  assert.equal(buildUpstreamHead(head, PEER),
    `GET /?q=1 HTTP/1.1\r\nAccept: */*\r\nHost: b.example:81\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: b.example:81\r\nX-Forwarded-Port: 81\r\n\r\n`);
  assert.equal(request(`OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n`).method, `OPTIONS`);
  assert.equal(request(`GET /a/b;c=d?e=f&g=[1]|{2} HTTP/1.1\r\nHost: [::1]:80\r\n\r\n`).host, `[::1]:80`);
});

test(`passes only WebSocket upgrades; any other Upgrade reaches the app as a plain request`, () => {
  const h2c = request(`GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`);
  assert.equal(h2c.upgrade, false);
  assert.doesNotMatch(buildUpstreamHead(h2c, PEER), /Upgrade|Connection/i);
  assert.equal(request(`POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n`).upgrade, false);
});

test(`parses response heads: status, framing and connection tokens`, () => {
  const parse = (text: string) => parseResponseHead(Buffer.from(text), text.length);
  assert.deepEqual(parse(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\n`), {
    status: 200, minorVersion: 1, contentLength: 5, chunked: false, connectionClose: false, connectionKeepAlive: false, connectionLines: [36, 59],
    framingLines: [], framingExtra: ``,
  });
  const chunked = parse(`HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\nConnection: close\r\n\r\n`)!;
  assert.equal(chunked.chunked, true);
  assert.equal(chunked.contentLength, -1);
  assert.equal(chunked.connectionClose, true);
  assert.deepEqual(chunked.framingLines, [52, 71], `the Content-Length of a chunked response is dropped`);
  assert.equal(parse(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n`), null);
  assert.equal(parse(`HTTP/1.1 200 OK\r\nX: a\x00\r\n\r\n`), null);
  assert.equal(parse(`HTTP/1.1 200 OK\r\nX : a\r\n\r\n`), null);
  assert.equal(parse(`HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n`)!.status, 200);
  assert.equal(parse(`HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n`)!.connectionKeepAlive, true);
  assert.equal(parse(`HTTP/2 200\r\n\r\n`), null);
  assert.equal(parse(`HTTP/1.1 abc\r\n\r\n`), null);
});

test(`strips Connection and Keep-Alive lines from a response head`, () => {
  const text = `HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\nKeep-Alive: timeout=5\r\n\r\n`;
  const head = parseResponseHead(Buffer.from(text), text.length)!;
  assert.equal(stripConnectionLines(Buffer.from(text), text.length, head.connectionLines), `HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n`);
});

test(`recognises every header name it acts on in any case, and no other name of the same length`, () => {
  const mixed = request(`POST / HTTP/1.1\r\nhOsT: a\r\ncOnNeCtIoN: kEeP-aLiVe\r\nKEEP-ALIVE: timeout=5\r\nX-rEqUeSt-Id: abc\r\ncontent-LENGTH: 3\r\nX-FORWARDED-FOR: 1.2.3.4\r\nx-Forwarded-Host: h\r\nX-forwarded-PORT: 81\r\nproxy-CONNECTION: x\r\nX-Forwarded-PROTO: https\r\n\r\n`);
  assert.equal(mixed.host, `a`);
  assert.equal(mixed.connection, `keep-alive`);
  assert.equal(mixed.requestId, `abc`);
  assert.equal(mixed.contentLength, 3);
  assert.equal(mixed.forwardedFor, `1.2.3.4`);
  assert.equal(mixed.forwardedHost, `h`);
  assert.equal(mixed.forwardedPort, `81`);
  assert.equal(mixed.forwardedProto, `https`);
  assert.equal(mixed.strip.length / 2, 7, `Connection, Keep-Alive, Proxy-Connection and the four X-Forwarded-* lines`);
  assert.equal(request(`POST / HTTP/1.1\r\nHost: a\r\ntRaNsFeR-eNcOdInG: chunked\r\n\r\n`).chunked, true);
  // Same lengths, one byte off (including "-" against other token characters): plain headers.
  const lookalikes = request(`GET / HTTP/1.1\r\nHost: a\r\nHosu: b\r\nConnectioo: close\r\nKeep_Alive: x\r\nX-Request_ID: z\r\nContent-Lengtg: 5\r\nX-Forwarded+For: 9.9.9.9\r\nTransfer-Encodinh: chunked\r\n\r\n`);
  assert.equal(lookalikes.connection, undefined);
  assert.equal(lookalikes.requestId, undefined);
  assert.equal(lookalikes.contentLength, -1);
  assert.equal(lookalikes.chunked, false);
  assert.equal(lookalikes.forwardedFor, undefined);
  assert.deepEqual(lookalikes.strip, []);
  const text = `HTTP/1.1 200 OK\r\ncOnTeNt-LeNgTh: 2\r\nCONNECTION: Keep-Alive\r\nkeep-alive: timeout=5\r\nConnectioo: close\r\n\r\n`;
  const response = parseResponseHead(Buffer.from(text), text.length)!;
  assert.equal(response.contentLength, 2);
  assert.equal(response.connectionKeepAlive, true);
  assert.equal(response.connectionClose, false);
  assert.equal(response.connectionLines.length, 4);
});

test(`finds a Connection token anywhere in a list, with optional whitespace around it, and only whole`, () => {
  const keepAlive = (connection: string) => isRequestKeepAlive(request(`GET / HTTP/1.1\r\nHost: a\r\nConnection: ${connection}\r\n\r\n`));
  assert.equal(keepAlive(`upgrade, close`), false);
  assert.equal(keepAlive(`upgrade ,\tclose\t, te`), false);
  assert.equal(keepAlive(`,,close`), false);
  assert.equal(keepAlive(`closed, unclose, clos, close-x`), true);
  assert.equal(keepAlive(``), true);
  const response = (connection: string) => {
    const text = `HTTP/1.1 200 OK\r\nConnection: ${connection}\r\n\r\n`;
    return parseResponseHead(Buffer.from(text), text.length)!;
  };
  assert.equal(response(`TE , Close`).connectionClose, true);
  assert.equal(response(`keep-alive,upgrade`).connectionKeepAlive, true);
  assert.equal(response(`keep-alives`).connectionKeepAlive, false);
});
