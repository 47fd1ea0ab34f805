import assert from 'node:assert/strict';
import {test} from 'node:test';
import {buildUpstreamHead, formatHostPort, isTrustedPeer, portOfHost, resolvePeer} from '../../src/proxy/forwarded-headers.ts';
import {parseRequestHead} from '../../src/proxy/http-head.ts';
import type {RequestHead} from '../../src/proxy/http-head.ts';

function head(text: string): RequestHead {
  const parsed = parseRequestHead(Buffer.from(text, `latin1`), text.length);
  assert.notEqual(typeof parsed, `number`, `rejected: ${JSON.stringify(text)}`);
  return parsed as RequestHead;
}

test(`resolves peers: IPv4-mapped addresses unwrapped, loopback and literal trust`, () => {
  assert.deepEqual(resolvePeer(`::ffff:127.0.0.1`, [`loopback`]), {ip: `127.0.0.1`, trusted: true});
  assert.deepEqual(resolvePeer(`::1`, [`loopback`]), {ip: `::1`, trusted: true});
  assert.deepEqual(resolvePeer(`10.0.0.5`, [`loopback`]), {ip: `10.0.0.5`, trusted: false});
  assert.equal(isTrustedPeer(`10.0.0.5`, [`10.0.0.5`]), true);
  assert.equal(isTrustedPeer(`2001:db8::1`, [`2001:db8::1`]), true);
});

test(`brackets IPv6 hosts where they appear in URLs and reads ports from Host values`, () => {
  assert.equal(formatHostPort(`::1`, 8080), `[::1]:8080`);
  assert.equal(formatHostPort(`127.0.0.1`, 8080), `127.0.0.1:8080`);
  assert.equal(portOfHost(`[::1]:8443`, `http`), `8443`);
  assert.equal(portOfHost(`[::1]`, `https`), `443`);
  assert.equal(portOfHost(`example.com:81`, `http`), `81`);
  assert.equal(portOfHost(`example.com`, `http`), `80`);
  assert.equal(portOfHost(undefined, `http`), `80`);
});

test(`rewrites the head: drops hop-by-hop and client X-Forwarded-* lines, appends ours`, () => {
  const text = `GET / HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-Proto: https\r\nConnection: close\r\nAccept: */*\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n`;
  assert.equal(buildUpstreamHead(head(text), {ip: `10.0.0.9`, trusted: false}),
    `GET / HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\nX-Forwarded-For: 1.1.1.1, 10.0.0.9\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: a.example\r\nX-Forwarded-Port: 80\r\n\r\n`);
  assert.equal(buildUpstreamHead(head(text), {ip: `127.0.0.1`, trusted: true}),
    `GET / HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\nX-Forwarded-For: 1.1.1.1, 127.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: a.example\r\nX-Forwarded-Port: 443\r\n\r\n`);
});

test(`sets proto http for WebSocket upgrades from untrusted peers and keeps the Upgrade headers`, () => {
  const text = `GET /ws HTTP/1.1\r\nHost: [::1]:9000\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Forwarded-Proto: wss\r\n\r\n`;
  assert.equal(buildUpstreamHead(head(text), {ip: `::1`, trusted: false}),
    `GET /ws HTTP/1.1\r\nHost: [::1]:9000\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Forwarded-For: ::1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: [::1]:9000\r\nX-Forwarded-Port: 9000\r\n\r\n`);
});
