import assert from 'node:assert/strict';
import {test} from 'node:test';
import {isRequestKeepAlive, parseRequestHead, parseResponseHead, stripConnectionLines} from '../../src/proxy/http-head.ts';

function request(text: string) {
  return parseRequestHead(Buffer.from(text, `latin1`), text.length);
}

test(`parses the request line and the headers that matter, case-insensitively`, () => {
  const head = request(`POST /a?b=1 HTTP/1.1\r\nhost: example.com\r\nCONTENT-LENGTH: 12\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: 5.6.7.8\r\nConnection: close\r\n\r\n`)!;
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
  const head = request(`GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n`)!;
  assert.equal(head.upgrade, true);
  assert.equal(head.websocket, true);
  assert.deepEqual(head.strip, []);
});

test(`applies HTTP/1.0 keep-alive semantics`, () => {
  assert.equal(isRequestKeepAlive(request(`GET / HTTP/1.0\r\n\r\n`)!), false);
  assert.equal(isRequestKeepAlive(request(`GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n`)!), true);
  assert.equal(isRequestKeepAlive(request(`GET / HTTP/1.1\r\n\r\n`)!), true);
});

test(`rejects heads that could smuggle or confuse framing`, () => {
  for (const bad of [
    `GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n`,
    `GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n`,
    `GET / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n`,
    `GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n`,
    `GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`,
    `GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n`,
    `GET / HTTP/1.1\r\nName : value\r\n\r\n`,
    `GET /  HTTP/1.1\r\n\r\n`,
    `G(T / HTTP/1.1\r\n\r\n`,
    `GET / HTTP/1.2\r\n\r\n`,
  ]) {
    assert.equal(request(bad), null, JSON.stringify(bad));
  }
  assert.equal(request(`GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n`)!.contentLength, 5);
  assert.equal(request(`POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n`)!.chunked, true);
});

test(`parses response heads: status, framing and connection tokens`, () => {
  const parse = (text: string) => parseResponseHead(Buffer.from(text), text.length);
  assert.deepEqual(parse(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\n`), {
    status: 200, minorVersion: 1, contentLength: 5, chunked: false, connectionClose: false, connectionKeepAlive: false, connectionLines: [36, 59],
  });
  const chunked = parse(`HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\nConnection: close\r\n\r\n`)!;
  assert.equal(chunked.chunked, true);
  assert.equal(chunked.contentLength, -1);
  assert.equal(chunked.connectionClose, true);
  assert.equal(parse(`HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n`)!.connectionKeepAlive, true);
  assert.equal(parse(`HTTP/2 200\r\n\r\n`), null);
  assert.equal(parse(`HTTP/1.1 abc\r\n\r\n`), null);
});

test(`strips Connection and Keep-Alive lines from a response head`, () => {
  const text = `HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\nKeep-Alive: timeout=5\r\n\r\n`;
  const head = parseResponseHead(Buffer.from(text), text.length)!;
  assert.equal(stripConnectionLines(Buffer.from(text), text.length, head.connectionLines), `HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n`);
});
