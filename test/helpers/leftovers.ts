import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import path from 'node:path';
import type {TestContext} from 'node:test';
import {readBootId, writeStateFile} from '../../src/state/state-file.ts';
import type {StateProcess} from '../../src/state/state-file.ts';
import {readProcStat} from '../../src/system/proc.ts';
import {killQuietly} from './processes.ts';
import {REPO_ROOT} from './run-cli.ts';
import {waitFor} from './wait-for.ts';

export const RECOVER_APP = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `recover-app.cjs`);

export type Leftover = {
  pid: number;
  startTime: number;
  output: () => string;
  exit: Promise<{code: number | null; signal: NodeJS.Signals | null}>;
  closeStdin: () => void;
};

/** Starts the recover fixture in `mode`, detached (it leads its own process group), once its signal handlers are installed. */
export async function spawnLeftover(t: Pick<TestContext, `after`>, mode: string): Promise<Leftover> {
  const child = spawn(process.execPath, [RECOVER_APP, mode], {detached: true, stdio: [`pipe`, `pipe`, `ignore`]});
  let output = ``;
  child.stdout.setEncoding(`utf8`);
  child.stdout.on(`data`, (chunk: string) => (output += chunk));
  const exit = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => child.once(`exit`, (code, signal) => resolve({code, signal})));
  const pid = child.pid as number;
  t.after(async () => {
    killQuietly(pid);
    await exit;
  });
  await waitFor(() => output.includes(`ready\n`), {what: `the ${mode} fixture to be ready`});
  const stat = readProcStat(pid);
  assert.ok(stat);
  return {pid, startTime: stat.startTime, output: () => output, exit, closeStdin: () => child.stdin.end()};
}

/** A state entry for a spawned process (its own group leader). */
export function recorded(id: string, spawned: {pid: number; startTime: number}, releaseId = `r1`): StateProcess {
  return {
    id, processId: id.split(`#`)[0] as string, policy: `companion`, releaseId,
    pid: spawned.pid, pgid: spawned.pid, startTime: spawned.startTime, startedAt: new Date().toISOString(), restarts: 0,
  };
}

/** Writes a state file as a crashed daemon (a pid that cannot exist) of `application` would have left it. */
export async function writeLeftoverState(statePath: string, options: {application: string; releaseId: string; processes: StateProcess[]; services?: StateProcess[]; singletons?: StateProcess[]}): Promise<void> {
  const {releaseId} = options;
  await writeStateFile(statePath, {
    format: 1, application: options.application, writtenAt: new Date().toISOString(), bootId: readBootId(),
    daemon: {pid: 2 ** 22 + 1, startTime: 1, version: `test`}, proxy: {host: `127.0.0.1`, port: 1},
    activeReleaseId: releaseId,
    releases: [{releaseId, releasePath: `/srv/app/${releaseId}`, revision: releaseId, state: `active`, createdAt: new Date().toISOString(), ports: {}, instancePorts: {}, processes: options.processes}],
    services: options.services ?? [], singletons: options.singletons ?? [],
  });
}
