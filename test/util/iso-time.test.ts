import assert from 'node:assert/strict';
import {test} from 'node:test';
import {isoTime} from '../../src/util/iso-time.ts';

test(`isoTime writes what toISOString writes, for every kind of time a Date holds`, () => {
  const times = [0, 1, -1, Date.UTC(2026, 11, 1, 22, 5, 9, 7), Date.UTC(1969, 0, 1), Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.UTC(10_000, 0, 1), Date.UTC(-1, 5, 6), Date.UTC(-271_821, 3, 20), 8.64e15, -8.64e15];
  for (let n = 0; n < 2_000; n++) times.push(Math.round((Math.random() - 0.5) * 2 * 8.64e15));
  for (const time of times) {
    assert.equal(isoTime(time), new Date(time).toISOString(), `time ${time}`);
    assert.equal(isoTime(new Date(time)), new Date(time).toISOString(), `Date ${time}`);
  }
  const before = Date.now();
  const now = Date.parse(isoTime());
  assert.ok(now >= before && now <= Date.now(), `without an argument: now`);
});

test(`isoTime refuses an invalid time as toISOString does`, () => {
  assert.throws(() => new Date(Number.NaN).toISOString(), RangeError);
  assert.throws(() => isoTime(Number.NaN), {name: `RangeError`, message: `Invalid time value`});
  assert.throws(() => isoTime(new Date(`not a date`)), RangeError);
});
