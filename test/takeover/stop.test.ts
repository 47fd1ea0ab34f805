import assert from 'node:assert/strict';
import {test} from 'node:test';
import {discoverLegacyProcesses} from '../../src/takeover/discover.ts';
import type {LegacyPlan, LegacyProcess} from '../../src/takeover/discover.ts';
import {resolveLegacyUser} from '../../src/takeover/legacy-user.ts';
import {stopLegacyProcesses} from '../../src/takeover/stop.ts';
import {Logger} from '../../src/log/logger.ts';
import type {LogRecord} from '../../src/log/logger.ts';
import {readProcStat} from '../../src/system/proc.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {ESCAPEES_COMMAND, listOwnSessions, pidsWithArgs, requireScreen, startDetached, startScreenSession, uniqueName} from './legacy-fixtures.ts';

const me = resolveLegacyUser(undefined);

function recordingLogger(): {log: Logger; records: LogRecord[]} {
  const records: LogRecord[] = [];
  return {log: new Logger({level: `debug`, sinks: [(record) => records.push(record)]}), records};
}

async function planFor(matcher: string): Promise<LegacyPlan> {
  return discoverLegacyProcesses({screens: [], matchers: [{name: `app`, includes: [matcher]}], uid: me.uid, user: me.name});
}

function pids(processes: LegacyProcess[]): number[] {
  return processes.map((entry) => entry.pid).sort((a, b) => a - b);
}

test(`stops every process of a screen session, setsid and nohup escapees included`, async (t) => {
  if (!requireScreen(t)) return;
  const name = uniqueName();
  const session = await startScreenSession(t, name, ESCAPEES_COMMAND, {cwd: createTempDir(t), processes: 4});
  const plan = await discoverLegacyProcesses({screens: [name], matchers: [], uid: me.uid, user: me.name});
  assert.equal(plan.processes.length, 5);
  let signalled = 0;
  const {log, records} = recordingLogger();
  const result = await stopLegacyProcesses(plan, {timeoutMs: 5_000, log, onSignalled: () => signalled++});
  assert.equal(signalled, 1);
  assert.deepEqual(pids(result.stopped), pids(plan.processes));
  assert.deepEqual(result.killed, []);
  assert.deepEqual(result.survivors, []);
  for (const entry of plan.processes) assert.equal(isPidAlive(entry.pid), false, `${entry.pid} ${entry.args} still runs`);
  assert.ok(!(await listOwnSessions()).some((entry) => entry.id === session.id));
  assert.ok(records.some((record) => record.msg === `Legacy screen session quit` && record[`sessionId`] === session.id));
});

test(`kills a process that ignores SIGTERM once the timeout has passed`, async (t) => {
  const marker = uniqueName(`rbm`);
  // An ignored signal stays ignored across exec.
  const stubborn = startDetached(t, `trap "" TERM; exec sleep 340`, [marker]);
  await waitFor(() => readProcStat(stubborn)?.comm === `sleep`, {what: `the exec`});
  const plan = await planFor(`sleep 340`);
  assert.deepEqual(pids(plan.processes), [stubborn]);
  const {log, records} = recordingLogger();
  const result = await stopLegacyProcesses(plan, {timeoutMs: 100, log});
  assert.deepEqual(pids(result.killed), [stubborn]);
  assert.deepEqual(result.stopped, []);
  assert.equal(isPidAlive(stubborn), false);
  assert.ok(records.some((record) => record.msg === `Legacy process ignored SIGTERM; killing it` && record[`pid`] === stubborn));
});

// The timeout is far longer than the test may run: only an early end of the wait lets it pass.
test(`ends the wait as soon as the processes have exited, without sleeping the whole timeout`, {timeout: 20_000}, async (t) => {
  const marker = uniqueName(`rbm`);
  const quick = startDetached(t, `sleep 350 & wait`, [marker]);
  await waitFor(() => pidsWithArgs(`sleep 350`).length === 2, {what: `the child (the shell's own command line names it too)`});
  const plan = await planFor(marker);
  assert.equal(plan.processes.length, 2);
  const result = await stopLegacyProcesses(plan, {timeoutMs: 600_000, log: recordingLogger().log});
  assert.deepEqual(pids(result.stopped), pids(plan.processes));
  assert.deepEqual(result.killed, []);
  assert.equal(isPidAlive(quick), false);
});

test(`does not signal a pid whose start time no longer matches`, async (t) => {
  const pid = startDetached(t, `exec sleep 360`);
  await waitFor(() => readProcStat(pid)?.comm === `sleep`, {what: `the exec`});
  const stat = readProcStat(pid);
  assert.ok(stat);
  const recycled: LegacyProcess = {pid, startTime: stat.startTime + 1, pgid: stat.pgrp, ppid: stat.ppid, args: `sleep 360`, state: `S`, source: `matcher app`};
  let signalled = 0;
  const {log, records} = recordingLogger();
  const result = await stopLegacyProcesses({user: me, screens: [], processes: [recycled], warnings: []}, {timeoutMs: 100, log, onSignalled: () => signalled++});
  assert.equal(isPidAlive(pid), true);
  assert.equal(signalled, 0);
  assert.deepEqual(pids(result.stopped), [pid]);
  assert.deepEqual(result.killed, []);
  assert.ok(records.some((record) => record.msg === `Legacy process pid was reused; left alone` && record[`pid`] === pid));
});

test(`counts processes that are already gone as stopped without signalling anything`, async () => {
  const gone: LegacyProcess = {pid: 2 ** 30, startTime: 1, pgid: 2 ** 30, ppid: 1, args: `sleep 1`, state: `S`, source: `matcher app`};
  let signalled = 0;
  const result = await stopLegacyProcesses({user: me, screens: [], processes: [gone], warnings: []}, {timeoutMs: 100, log: recordingLogger().log, onSignalled: () => signalled++});
  assert.deepEqual(result, {stopped: [gone], killed: [], survivors: []});
  assert.equal(signalled, 0);
});
