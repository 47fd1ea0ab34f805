import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {BufferedLogFile} from '../../src/log/buffered-log-file.ts';
import {createSilentLogger} from '../../src/log/logger.ts';
import {createTempDir} from '../helpers/temp-dir.ts';

test(`writes every line once, whole and in order, across batches of several blocks, multi-byte text and a line larger than a block`, async (t) => {
  const file = path.join(createTempDir(t), `access.log`);
  const log = new BufferedLogFile({path: file, maxBytes: 1024 ** 3, files: 1, log: createSilentLogger(), maxBufferedBytes: 64 * 1024 ** 2});
  const expected: string[] = [];
  const queue = (line: string): void => {
    expected.push(line);
    log.write(line);
  };
  // Lines queued in one go while the first write is in flight make a batch of many blocks (one writev).
  for (let i = 0; i < 6_000; i++) queue(`{"i":${i},"path":"/${`x`.repeat(i % 300)}","note":"${i % 7 === 0 ? `é€😀` : `ascii`}"}\n`);
  queue(`${`y`.repeat(200 * 1024)}\n`);
  for (let i = 0; i < 500; i++) queue(`after ${i}\n`);
  await log.flush();
  // Then one line at a time, each waiting for the next interval or batch.
  for (let i = 0; i < 50; i++) {
    queue(`slow ${i} ñ\n`);
    if (i % 10 === 0) await log.flush();
  }
  await log.close();
  assert.equal(log.written, expected.length);
  assert.equal(log.dropped, 0);
  assert.equal(fs.readFileSync(file, `utf8`), expected.join(``));
  log.write(`after close\n`);
  assert.equal(log.dropped, 1, `a line after close is dropped and counted`);
});

test(`drops and counts lines beyond maxBufferedBytes while a batch is being written, and keeps the file whole`, async (t) => {
  const file = path.join(createTempDir(t), `access.log`);
  const log = new BufferedLogFile({path: file, maxBytes: 1024 ** 3, files: 1, log: createSilentLogger(), maxBufferedBytes: 100 * 1024});
  const line = `${`z`.repeat(99)}\n`;
  for (let i = 0; i < 5_000; i++) log.write(line);
  await log.close();
  assert.ok(log.dropped > 0, `some lines were over the limit`);
  assert.equal(log.written + log.dropped, 5_000);
  const text = fs.readFileSync(file, `utf8`);
  assert.equal(text.length, log.written * line.length);
  assert.ok(text.split(`\n`).slice(0, -1).every((written) => written === line.slice(0, -1)));
});
