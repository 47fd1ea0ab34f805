import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import test from 'node:test';
import type {TestContext} from 'node:test';
import {loadConfig} from '../../src/config/load.ts';
import type {Config} from '../../src/config/types.ts';
import {recoverLeftovers} from '../../src/takeover/recover.ts';
import {Logger} from '../../src/log/logger.ts';
import type {LogRecord} from '../../src/log/logger.ts';
import {readProcStat} from '../../src/system/proc.ts';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {isPidAlive, killQuietly} from '../helpers/processes.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {RECOVER_APP, recorded, spawnLeftover, writeLeftoverState} from '../helpers/leftovers.ts';





const idle = `exec "${process.execPath}" "${RECOVER_APP}"`;

async function setup(t: TestContext): Promise<{dir: string; config: Config; statePath: string; records: LogRecord[]; log: Logger}> {
  const dir = createTempDir(t);
  const configPath = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(configPath, JSON.stringify({
    application: `recover-app`,
    control: {path: path.join(dir, `control.sock`)},
    proxy: {host: `127.0.0.1`, port: 0, forceStopTimeoutMs: 5_000},
    processes: [
      {id: `web`, command: idle, policy: `proxied`, port: {from: 0, to: 0}},
      {id: `worker`, command: idle, policy: `companion`},
      {id: `usr2`, command: idle, policy: `companion`, stopSignal: `SIGUSR2`, gracefulStopMs: 30_000},
      {id: `stubborn`, command: idle, policy: `companion`, gracefulStopMs: 50},
    ],
  }));
  const {config} = await loadConfig({cwd: dir, configPath});
  const records: LogRecord[] = [];
  return {dir, config, statePath: path.join(dir, `control.state.json`), records, log: new Logger({level: `debug`, sinks: [(record) => records.push(record)]})};
}

test(`without force, lists the recorded processes that still run and signals none of them`, async (t) => {
  const {config, statePath, log} = await setup(t);
  const [worker, gone] = [await spawnLeftover(t, `forever`), await spawnLeftover(t, `forever`)];
  await writeLeftoverState(statePath, {application: `recover-app`, releaseId: `r1`, processes: [recorded(`worker#0`, worker), recorded(`worker#1`, gone)]});
  killQuietly(gone.pid);
  await gone.exit;

  const result = await recoverLeftovers({config, force: false, log});
  assert.deepEqual(result, {
    statePath,
    found: [{id: `worker#0`, processId: `worker`, releaseId: `r1`, pid: worker.pid, pgid: worker.pid, members: [worker.pid]}],
    stopped: [],
    survivors: [],
  });
  assert.ok(isPidAlive(worker.pid));
  assert.ok(fs.existsSync(statePath), `listing keeps the state file`);
});

test(`a missing state file finds nothing; force then leaves nothing behind`, async (t) => {
  const {config, statePath, log} = await setup(t);
  assert.deepEqual(await recoverLeftovers({config, force: false, log}), {statePath, found: [], stopped: [], survivors: []});
  assert.deepEqual(await recoverLeftovers({config, force: true, log}), {statePath, found: [], stopped: [], survivors: []});
  assert.equal(fs.existsSync(statePath), false);
});

test(`force stops each group with its process's stopSignal, SIGKILLs one that ignores it after gracefulStopMs, and clears the state file`, async (t) => {
  const {config, statePath, log, records} = await setup(t);
  const [worker, usr2, stubborn] = [await spawnLeftover(t, `forever`), await spawnLeftover(t, `usr2`), await spawnLeftover(t, `ignore-term`)];
  await writeLeftoverState(statePath, {application: `recover-app`, releaseId: `r1`, processes: [recorded(`worker#0`, worker), recorded(`stubborn`, stubborn)], services: [recorded(`usr2`, usr2, `r0`)]});

  const result = await recoverLeftovers({config, force: true, log});
  assert.deepEqual(result.found.map((leftover) => leftover.id), [`worker#0`, `stubborn`, `usr2`]);
  assert.deepEqual(result.stopped, result.found);
  assert.deepEqual(result.survivors, []);
  assert.deepEqual(await worker.exit, {code: null, signal: `SIGTERM`});
  assert.deepEqual(await usr2.exit, {code: 0, signal: null}, `the SIGUSR2 handler ran: SIGTERM alone would not stop it`);
  assert.match(usr2.output(), /stopped by SIGUSR2\n/);
  assert.deepEqual(await stubborn.exit, {code: null, signal: `SIGKILL`});
  assert.equal(fs.existsSync(statePath), false, `the state file is cleared`);
  assert.ok(records.some((record) => record.msg === `Leftover process killed` && record.id === `stubborn` && record.gracefulStopMs === 50));
  assert.ok(records.some((record) => record.msg === `Leftover process stopped` && record.id === `usr2` && record.signal === `SIGUSR2`));
});

test(`finds and stops the rest of a process group whose leader already died`, async (t) => {
  const {config, statePath, log} = await setup(t);
  const parent = await spawnLeftover(t, `parent`);
  const childPid = Number(/child (\d+)\n/.exec(parent.output())?.[1]);
  t.after(() => killQuietly(childPid));
  await waitFor(() => readProcStat(childPid)?.pgrp === parent.pid, {what: `the child to run in the parent's group`});
  await writeLeftoverState(statePath, {application: `recover-app`, releaseId: `r1`, processes: [recorded(`worker#0`, parent)]});
  parent.closeStdin();
  assert.deepEqual(await parent.exit, {code: 0, signal: null});

  const listed = await recoverLeftovers({config, force: false, log});
  assert.deepEqual(listed.found, [{id: `worker#0`, processId: `worker`, releaseId: `r1`, pid: parent.pid, pgid: parent.pid, members: [childPid]}]);
  const forced = await recoverLeftovers({config, force: true, log});
  assert.equal(forced.stopped.length, 1);
  await waitFor(() => !isPidAlive(childPid), {what: `the orphaned child to be gone`});
  assert.equal(fs.existsSync(statePath), false);
});

test(`a recycled pid (another start time) is neither listed nor signalled`, async (t) => {
  const {config, statePath, log} = await setup(t);
  const stranger = await spawnLeftover(t, `forever`);
  await writeLeftoverState(statePath, {application: `recover-app`, releaseId: `r1`, processes: [recorded(`worker#0`, {pid: stranger.pid, startTime: stranger.startTime - 1})]});
  assert.deepEqual((await recoverLeftovers({config, force: false, log})).found, []);
  const forced = await recoverLeftovers({config, force: true, log});
  assert.deepEqual(forced, {statePath, found: [], stopped: [], survivors: []});
  assert.ok(isPidAlive(stranger.pid), `the unrelated process still runs`);
  assert.equal(stranger.output(), `ready\n`);
});

test(`refuses with ERR_RECOVER_DAEMON_RUNNING while a daemon or another program answers on the control socket`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  const {config: base, log} = await setup(t);
  const worker = await spawnLeftover(t, `forever`);
  const daemonConfig = {...base, control: {...base.control, path: daemon.socketPath}};
  await assert.rejects(recoverLeftovers({config: daemonConfig, force: true, log}), (error: {code?: string; message?: string}) => {
    assert.equal(error.code, `ERR_RECOVER_DAEMON_RUNNING`);
    assert.match(error.message ?? ``, /A rollbridge daemon for "test-app" is running on /);
    return true;
  });

  const foreignPath = path.join(daemon.dir, `foreign.sock`);
  const foreign = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => foreign.listen(foreignPath, resolve));
  t.after(() => new Promise((resolve) => foreign.close(resolve)));
  await assert.rejects(recoverLeftovers({config: {...base, control: {...base.control, path: foreignPath}}, force: true, log}), {code: `ERR_RECOVER_DAEMON_RUNNING`});
  assert.ok(isPidAlive(worker.pid));
});
