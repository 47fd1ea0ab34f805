import assert from 'node:assert/strict';
import {test} from 'node:test';
import {MAX_LINE_CHARS, OutputBuffer} from '../../src/supervisor/output-buffer.ts';

function lines(buffer: OutputBuffer): string[] {
  return buffer.lines().map((entry) => `${entry.stream}:${entry.line}`);
}

test(`joins a line split across chunks instead of storing its pieces`, () => {
  const buffer = new OutputBuffer(10);
  buffer.write(`stdout`, `hel`);
  assert.deepEqual(lines(buffer), []);
  buffer.write(`stdout`, `lo\nwor`);
  buffer.write(`stdout`, `ld\n`);
  assert.deepEqual(lines(buffer), [`stdout:hello`, `stdout:world`]);
});

test(`keeps partial lines per stream`, () => {
  const buffer = new OutputBuffer(10);
  buffer.write(`stdout`, `out-`);
  buffer.write(`stderr`, `err-`);
  buffer.write(`stderr`, `line\n`);
  buffer.write(`stdout`, `line\n`);
  assert.deepEqual(lines(buffer), [`stderr:err-line`, `stdout:out-line`]);
});

test(`strips carriage returns and drops empty lines`, () => {
  const buffer = new OutputBuffer(10);
  buffer.write(`stdout`, `a\r\n\r\n\n`);
  buffer.write(`stdout`, `b\r`);
  buffer.write(`stdout`, `\n`);
  assert.deepEqual(lines(buffer), [`stdout:a`, `stdout:b`]);
});

test(`flush stores the unterminated last line of each stream`, () => {
  const buffer = new OutputBuffer(10);
  buffer.write(`stdout`, `tail`);
  buffer.write(`stderr`, `err`);
  buffer.flush();
  buffer.flush();
  assert.deepEqual(lines(buffer), [`stdout:tail`, `stderr:err`]);
});

test(`keeps only the newest lines up to its capacity, also after the capacity shrinks`, () => {
  const buffer = new OutputBuffer(3);
  buffer.write(`stdout`, `1\n2\n3\n4\n5\n`);
  assert.deepEqual(lines(buffer), [`stdout:3`, `stdout:4`, `stdout:5`]);
  buffer.capacity = 2;
  assert.deepEqual(lines(buffer), [`stdout:4`, `stdout:5`]);
  assert.equal(buffer.capacity, 2);
});

test(`returns copies that callers cannot use to change the ring`, () => {
  const buffer = new OutputBuffer(3);
  buffer.write(`stdout`, `x\n`);
  const [entry] = buffer.lines();
  assert.ok(entry);
  assert.ok(!Number.isNaN(Date.parse(entry.at)));
  entry.line = `changed`;
  assert.deepEqual(lines(buffer), [`stdout:x`]);
});

test(`keeps at most MAX_LINE_CHARS of a line that never ends, however much is written`, () => {
  const buffer = new OutputBuffer(10);
  const chunk = `x`.repeat(64 * 1024);
  for (let index = 0; index < 160; index++) buffer.write(`stdout`, chunk);
  buffer.write(`stdout`, `\ny\n`);
  const [long, next] = buffer.lines();
  assert.equal(long?.line, `${`x`.repeat(MAX_LINE_CHARS)}… [${160 * 64 * 1024 - MAX_LINE_CHARS} more characters]`);
  assert.equal(next?.line, `y`);
});

test(`holds capacity × MAX_LINE_CHARS at most, whatever the lines' length (a retained release keeps its ring)`, () => {
  const buffer = new OutputBuffer(50);
  const huge = `${`z`.repeat(1024 * 1024)}\n`;
  for (let index = 0; index < 200; index++) buffer.write(index % 2 === 0 ? `stdout` : `stderr`, huge);
  const kept = buffer.lines();
  assert.equal(kept.length, 50);
  const suffix = `… [${1024 * 1024 - MAX_LINE_CHARS} more characters]`;
  for (const entry of kept) assert.equal(entry.line, `${`z`.repeat(MAX_LINE_CHARS)}${suffix}`);
  assert.ok(kept.reduce((sum, entry) => sum + entry.line.length, 0) <= 50 * (MAX_LINE_CHARS + suffix.length));
});

test(`a line of exactly MAX_LINE_CHARS (with or without \\r) is kept whole`, () => {
  const buffer = new OutputBuffer(10);
  buffer.write(`stdout`, `${`a`.repeat(MAX_LINE_CHARS)}\r\n`);
  buffer.write(`stdout`, `${`b`.repeat(MAX_LINE_CHARS - 1)}`);
  buffer.write(`stdout`, `b\n`);
  assert.deepEqual(buffer.lines().map((entry) => entry.line), [`a`.repeat(MAX_LINE_CHARS), `b`.repeat(MAX_LINE_CHARS)]);
});
