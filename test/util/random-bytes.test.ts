import assert from 'node:assert/strict';
import {test} from 'node:test';
import {randomBytes} from '../../src/util/random-bytes.ts';

test(`randomBytes gives the size asked for, from the pool or directly, and never the same bytes twice`, () => {
  const sizes = [1, 4, 9, 32, 500, 512, 513, 4096];
  const drawn = sizes.map((size) => randomBytes(size));
  assert.deepEqual(drawn.map((bytes) => bytes.length), sizes);
  // Enough draws of 9 bytes to cross the 512-byte pool several times.
  const keys = Array.from({length: 300}, () => randomBytes(9).toString(`hex`));
  assert.equal(new Set(keys).size, keys.length, `no 9-byte draw repeats`);
  assert.ok(keys.every((key) => key !== `00`.repeat(9)), `no wiped (zero) bytes handed out`);
});

test(`randomBytes returns buffers of their own: changing one changes no later draw`, () => {
  const first = randomBytes(16);
  const copy = Buffer.from(first);
  first.fill(0);
  const second = randomBytes(16);
  assert.notDeepEqual(second, Buffer.alloc(16));
  assert.notDeepEqual(copy, second);
});

test(`randomBytes looks uniform: 64 KiB use every byte value`, () => {
  const counts = new Array<number>(256).fill(0);
  for (const byte of randomBytes(65_536)) counts[byte]! += 1;
  // 256 expected per value; a value missing or 4 times too frequent would mean a broken source.
  assert.ok(counts.every((count) => count > 100 && count < 1_000), `byte counts between ${Math.min(...counts)} and ${Math.max(...counts)}`);
});
