import assert from 'node:assert/strict';
import {test} from 'node:test';
import type {RestartConfig} from '../../src/config/types.ts';
import {planRestart} from '../../src/supervisor/restart-policy.ts';

const UNLIMITED: RestartConfig = {maxRestarts: undefined, windowMs: 0, backoffFactor: 1, maxDelayMs: 0};

/** Plays `count` consecutive crashes at the given times and returns the delays. */
function delaysFor(restart: RestartConfig, restartDelayMs: number, times: number[]): Array<number | null> {
  let history: number[] = [];
  return times.map((now) => {
    const plan = planRestart({restart, restartDelayMs, history, now});
    history = plan.history;
    return plan.delayMs;
  });
}

test(`restarts unlimited processes after the constant delay without keeping history`, () => {
  const plan = planRestart({restart: UNLIMITED, restartDelayMs: 1_000, history: [], now: 5});
  assert.deepEqual(plan, {delayMs: 1_000, history: []});
  assert.deepEqual(delaysFor(UNLIMITED, 1_000, [1, 2, 3]), [1_000, 1_000, 1_000]);
});

test(`the unlimited constant-delay fast path still applies maxDelayMs`, () => {
  assert.deepEqual(delaysFor({...UNLIMITED, maxDelayMs: 250}, 1_000, [1, 2]), [250, 250]);
});

test(`treats a negative restartDelayMs as an immediate restart`, () => {
  assert.deepEqual(delaysFor(UNLIMITED, -5, [1]), [0]);
});

test(`does not restart at all when maxRestarts is 0`, () => {
  assert.deepEqual(delaysFor({...UNLIMITED, maxRestarts: 0}, 1_000, [1]), [null]);
});

test(`applies exponential backoff to restart delays, capped by maxDelayMs`, () => {
  const restart = {...UNLIMITED, backoffFactor: 2, maxDelayMs: 5_000};
  assert.deepEqual(delaysFor(restart, 1_000, [0, 1, 2, 3, 4]), [1_000, 2_000, 4_000, 5_000, 5_000]);
});

test(`stops restarting once maxRestarts is reached over the whole lifetime when windowMs is 0`, () => {
  const restart = {...UNLIMITED, maxRestarts: 2};
  assert.deepEqual(delaysFor(restart, 100, [0, 1_000_000, 2_000_000]), [100, 100, null]);
});

test(`counts only the restarts inside the window`, () => {
  const restart = {...UNLIMITED, maxRestarts: 2, windowMs: 1_000};
  assert.deepEqual(delaysFor(restart, 100, [0, 10, 20, 1_005, 1_015, 1_020]), [100, 100, null, 100, 100, null]);
});

test(`restarts backoff from the number of restarts still inside the window`, () => {
  const restart = {...UNLIMITED, backoffFactor: 3, windowMs: 1_000};
  assert.deepEqual(delaysFor(restart, 10, [0, 1, 2, 5_000]), [10, 30, 90, 10]);
});

test(`returns a pruned copy of the history and leaves the caller's array untouched`, () => {
  const history = [0, 500];
  const plan = planRestart({restart: {...UNLIMITED, maxRestarts: 5, windowMs: 1_000}, restartDelayMs: 10, history, now: 1_200});
  assert.deepEqual(plan.history, [500, 1_200]);
  assert.deepEqual(history, [0, 500]);
});
