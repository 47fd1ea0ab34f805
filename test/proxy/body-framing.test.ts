import assert from 'node:assert/strict';
import {test} from 'node:test';
import {BodyFramer, Framing, MAX_CHUNK_METADATA_BYTES} from '../../src/proxy/body-framing.ts';

function feedBytewise(framer: BodyFramer, data: Buffer): number {
  let consumed = 0;
  for (let i = 0; i < data.length && !framer.done && !framer.failed; i++) consumed += framer.consume(data.subarray(i, i + 1), 0);
  return consumed;
}

test(`finds the end of a chunked body with extensions and trailers, whatever the split`, () => {
  const body = Buffer.from(`5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n`);
  const next = Buffer.from(`GET /next HTTP/1.1\r\n\r\n`);
  const whole = new BodyFramer();
  whole.reset(Framing.CHUNKED, -1);
  assert.equal(whole.consume(Buffer.concat([body, next]), 0), body.length);
  assert.equal(whole.done, true);

  const bytewise = new BodyFramer();
  bytewise.reset(Framing.CHUNKED, -1);
  assert.equal(feedBytewise(bytewise, Buffer.concat([body, next])), body.length);
  assert.equal(bytewise.done, true);
});

test(`finds the end of a chunked body without trailers and starting at an offset`, () => {
  const framer = new BodyFramer();
  framer.reset(Framing.CHUNKED, -1);
  const data = Buffer.from(`HEAD3\r\nabc\r\n0\r\n\r\nrest`);
  assert.equal(framer.consume(data, 4), data.length - 4 - 4);
  assert.equal(framer.done, true);
});

test(`fails on malformed chunk sizes and missing CRLF after chunk data`, () => {
  for (const bad of [`zz\r\n`, `\r\n`, `3\r\nabcX\r\n`, `3\nabc`]) {
    const framer = new BodyFramer();
    framer.reset(Framing.CHUNKED, -1);
    framer.consume(Buffer.from(bad), 0);
    assert.equal(framer.failed, true, JSON.stringify(bad));
  }
});

test(`accepts the exact chunk-extension grammar, quoted strings with escapes included, whatever the split`, () => {
  const body = Buffer.from(`3;a;b=c;q="x \\" y;z"\r\nabc\r\n0;last\r\n\r\n`);
  for (const feed of [(framer: BodyFramer) => framer.consume(body, 0), (framer: BodyFramer) => feedBytewise(framer, body)]) {
    const framer = new BodyFramer();
    framer.reset(Framing.CHUNKED, -1);
    assert.equal(feed(framer), body.length);
    assert.equal(framer.done, true);
  }
});

test(`fails on whitespace, bare CR or LF, NUL and oversize in chunk lines and trailers`, () => {
  const bad = [
    `3 \r\nabc\r\n0\r\n\r\n`, `3 ;a\r\n`, `3;a =b\r\n`, `3;=b\r\n`, `3;a=\r\n`, `3;a="b"c\r\n`, `3;a\nabc`, `3;a\rb\r\n`,
    `3;a="\x00"\r\n`, `0\r\nX: a\nY: b\r\n\r\n`, `0\r\n X: a\r\n\r\n`, `0\r\nX : a\r\n\r\n`, `0\r\nX: \x00\r\n\r\n`,
    `1000000000001\r\n`, `+1\r\n`, `0x1\r\n`,
    `1;${`a`.repeat(MAX_CHUNK_METADATA_BYTES + 1)}\r\n`, `0\r\nX: ${`a`.repeat(MAX_CHUNK_METADATA_BYTES)}\r\n\r\n`,
  ];
  for (const text of bad) {
    const framer = new BodyFramer();
    framer.reset(Framing.CHUNKED, -1);
    framer.consume(Buffer.from(text, `latin1`), 0);
    assert.equal(framer.failed, true, JSON.stringify(text.slice(0, 40)));
  }
});

test(`counts content-length bodies across chunks and leaves extra bytes unconsumed`, () => {
  const framer = new BodyFramer();
  framer.reset(Framing.LENGTH, 10);
  assert.equal(framer.consume(Buffer.from(`12345`), 0), 5);
  assert.equal(framer.done, false);
  assert.equal(framer.consume(Buffer.from(`67890extra`), 0), 5);
  assert.equal(framer.done, true);
  framer.reset(Framing.LENGTH, 0);
  assert.equal(framer.done, true);
});

test(`treats close-delimited bodies as open until end() and empty bodies as done`, () => {
  const framer = new BodyFramer();
  framer.reset(Framing.CLOSE, -1);
  assert.equal(framer.consume(Buffer.from(`anything`), 0), 8);
  assert.equal(framer.done, false);
  framer.end();
  assert.equal(framer.done, true);
  framer.reset(Framing.NONE, -1);
  assert.equal(framer.done, true);
  assert.equal(framer.consume(Buffer.from(`x`), 0), 0);
});
