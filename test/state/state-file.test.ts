import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import {test} from 'node:test';
import {isStateProcessAlive, readBootId, readStateFile, removeStaleTempFiles, writeStateFile} from '../../src/state/state-file.ts';
import type {DaemonState} from '../../src/state/state-file.ts';
import {readProcStat} from '../../src/system/proc.ts';
import {killQuietly} from '../helpers/processes.ts';
import {createTempDir} from '../helpers/temp-dir.ts';

const WRITER = path.join(import.meta.dirname, `../fixtures/apps/state-writer.ts`);

function sampleState(): DaemonState {
  return {
    format: 1, application: `app`, writtenAt: new Date().toISOString(), bootId: readBootId(),
    daemon: {pid: process.pid, startTime: readProcStat(process.pid)?.startTime ?? null, version: `test`},
    proxy: {host: `127.0.0.1`, port: 8182}, activeReleaseId: `r1`,
    releases: [{releaseId: `r1`, releasePath: `/srv/app`, revision: `abc`, state: `active`, createdAt: new Date().toISOString(), ports: {web: 3000}, instancePorts: {},
      processes: [{id: `web`, processId: `web`, policy: `proxied`, releaseId: `r1`, pid: 4242, pgid: 4242, startTime: 7, startedAt: new Date().toISOString(), port: 3000, restarts: 0}]}],
    services: [], singletons: [],
  };
}

test(`writes the state file with mode 0600 and reads it back`, async (t) => {
  const dir = createTempDir(t);
  const statePath = path.join(dir, `app.state.json`);
  await writeStateFile(statePath, sampleState());
  assert.equal(fs.statSync(statePath).mode & 0o777, 0o600);
  assert.deepEqual(readStateFile(statePath), JSON.parse(fs.readFileSync(statePath, `utf8`)));
  assert.deepEqual(fs.readdirSync(dir), [`app.state.json`]);
});

test(`a missing state file reads as null and a foreign one is ERR_STATE_UNREADABLE naming the path`, async (t) => {
  const dir = createTempDir(t);
  const statePath = path.join(dir, `state.json`);
  assert.equal(readStateFile(statePath), null);
  fs.writeFileSync(statePath, `{"releases": 1}`);
  assert.throws(() => readStateFile(statePath), (error: Error & {code?: string}) => error.code === `ERR_STATE_UNREADABLE` && error.message.includes(statePath));
  fs.writeFileSync(statePath, `{"format": 1, "releases": [], "services": [{"id": "x"}], "singletons": []}`);
  assert.throws(() => readStateFile(statePath), /without id, pid, pgid and startTime/);
});

test(`failed deploys are read back with the state; a malformed entry is ERR_STATE_UNREADABLE`, async (t) => {
  const dir = createTempDir(t);
  const statePath = path.join(dir, `state.json`);
  const failed = {releaseId: `r2`, failedAt: new Date().toISOString(), failure: `ERR_PROCESS_EXITED: Process "web" of release r2 exited (code 3) before it became healthy`, logsDir: dir,
    processes: [{id: `web`, lines: 2, logPaths: {stdout: path.join(dir, `r2/web.stdout.log`), stderr: path.join(dir, `r2/web.stderr.log`)}}, {id: `queue`, lines: 0}]};
  await writeStateFile(statePath, {...sampleState(), failedDeploys: [failed]});
  assert.deepEqual(readStateFile(statePath)?.failedDeploys, [failed]);
  const cases: Array<[unknown, string]> = [
    [{}, `not an array`],
    [[{...failed, logsDir: `logs`}], `a relative logsDir`],
    [[{...failed, failedAt: `yesterday`}], `a failedAt that is no time`],
    [[{...failed, processes: [{id: `web`, lines: -1}]}], `a negative line count`],
    [[{...failed, processes: [{id: `web`, lines: 1, logPaths: {stdout: `/x`}}]}], `logPaths without stderr`],
  ];
  for (const [broken, why] of cases) {
    fs.writeFileSync(statePath, JSON.stringify({...sampleState(), failedDeploys: broken}), {mode: 0o600});
    assert.throws(() => readStateFile(statePath), (error: Error & {code?: string}) => error.code === `ERR_STATE_UNREADABLE` && /failedDeploys/.test(error.message), why);
  }
});

test(`a write into a missing directory fails with ERR_STATE_WRITE_FAILED and a fix naming statePath`, async (t) => {
  const dir = createTempDir(t);
  const statePath = path.join(dir, `missing`, `state.json`);
  await assert.rejects(writeStateFile(statePath, sampleState()), (error: Error & {code?: string; fix?: string}) => error.code === `ERR_STATE_WRITE_FAILED` && /statePath/.test(error.fix ?? ``));
});

test(`a process is alive only with the same pid and start time, and never as a zombie`, (t) => {
  const child = spawn(`sleep`, [`30`], {stdio: `ignore`});
  const pid = child.pid as number;
  t.after(() => killQuietly(pid));
  const startTime = readProcStat(pid)?.startTime as number;
  assert.equal(isStateProcessAlive({pid, startTime}, readBootId()), true);
  assert.equal(isStateProcessAlive({pid, startTime: startTime + 1}, readBootId()), false, `a recycled pid has another start time`);
  assert.equal(isStateProcessAlive({pid, startTime}, `another-boot`), false, `after a reboot no pid is ours`);
});

test(`kill -9 of a writer in the middle of writes never leaves an unreadable state file`, async (t) => {
  const dir = createTempDir(t);
  const statePath = path.join(dir, `state.json`);
  const rounds = 25;
  for (let round = 0; round < rounds; round++) {
    const writer = spawn(process.execPath, [WRITER, statePath], {stdio: [`ignore`, `pipe`, `inherit`]});
    const pid = writer.pid as number;
    t.after(() => killQuietly(pid));
    const exited = new Promise((resolve) => writer.once(`exit`, resolve));
    // Kill after a varying number of completed writes, so the kill lands at varying points of the next one.
    const killAfter = 1 + (round * 7) % 11;
    const lines = readline.createInterface({input: writer.stdout});
    let seen = 0;
    for await (const line of lines) {
      if (!line.startsWith(`wrote `)) continue;
      seen += 1;
      if (seen >= killAfter) {
        writer.kill(`SIGKILL`);
        break;
      }
    }
    await exited;
    const state = readStateFile(statePath);
    assert.ok(state, `round ${round}: the state file exists`);
    assert.equal(state.releases[0]?.processes.length, 2000, `round ${round}: a whole document`);
    const lastGeneration = Number(state.releases[0]?.revision);
    assert.ok(lastGeneration >= killAfter, `round ${round}: holds a completed write (${lastGeneration} >= ${killAfter})`);
  }
  // Killed writers leave temp files behind; the next daemon removes them.
  removeStaleTempFiles(statePath);
  assert.deepEqual(fs.readdirSync(dir), [`state.json`]);
});
