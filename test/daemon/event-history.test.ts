import assert from 'node:assert/strict';
import test from 'node:test';
import {EventHistory} from '../../src/daemon/event-history.ts';
import {Logger} from '../../src/log/logger.ts';

test(`records log records as events with time, message, level and data, dropping the oldest past the limit`, () => {
  const history = new EventHistory(3);
  const log = new Logger({sinks: [history.sink]}).child({component: `deploy`});
  for (const id of [`a`, `b`, `c`, `d`]) log.info(`deploy starting`, {releaseId: id});
  const events = history.recent();
  assert.deepEqual(events.map((event) => event.data.releaseId), [`b`, `c`, `d`]);
  assert.equal(events[0]?.message, `deploy starting`);
  assert.equal(events[0]?.level, `info`);
  assert.equal(events[0]?.data.component, `deploy`);
  assert.match(events[0]?.at ?? ``, /^\d{4}-\d\d-\d\dT/);
});

test(`recent(limit) returns the newest events oldest first; a missing or non-positive limit returns all`, () => {
  const history = new EventHistory(10);
  const log = new Logger({sinks: [history.sink]});
  for (let index = 0; index < 5; index++) log.info(`event`, {index});
  assert.deepEqual(history.recent(2).map((event) => event.data.index), [3, 4]);
  assert.equal(history.recent().length, 5);
  assert.equal(history.recent(0).length, 5);
  assert.equal(history.recent(-1).length, 5);
});

test(`subscribers see every new event until they unsubscribe`, () => {
  const history = new EventHistory(10);
  const log = new Logger({sinks: [history.sink]});
  const seen: string[] = [];
  const unsubscribe = history.subscribe((event) => seen.push(event.message));
  log.warn(`first`);
  unsubscribe();
  log.warn(`second`);
  assert.deepEqual(seen, [`first`]);
});
