import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {once} from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {
  isProcessGroupAlive,
  listDescendants,
  listProcessGroupMembers,
  parseProcStat,
  readProcessGroupRss,
  readProcessGroupsUsage,
  readProcessStartTime,
  readProcStat,
  readRssBytes,
} from '../../src/system/proc.ts';
import {LINGERING_THREAD_APP} from '../helpers/daemon.ts';
import {killQuietly} from '../helpers/processes.ts';
import {requireCommands} from '../helpers/system-packages.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';

// No pid on Linux reaches this (pid_max is at most 2^22).
const MISSING_PID = 2 ** 30;

/** Starts `/bin/sh -c script` as the leader of a new process group; killed with its group after the test. */
function startGroup(t: TestContext, script: string): number {
  const child = spawn(`/bin/sh`, [`-c`, script], {detached: true, stdio: `ignore`});
  const pid = child.pid;
  assert.ok(pid !== undefined);
  t.after(() => killQuietly(pid));
  return pid;
}

test(`reads pid, parent, group, session, state, start time and command of a live process`, (t) => {
  // A detached child calls setsid(), so it leads its own group and session; our own
  // session may lie outside the pid namespace (session 0) on CI machines.
  const pid = startGroup(t, `exec sleep 30`);
  const stat = readProcStat(pid);
  assert.ok(stat);
  assert.equal(stat.pid, pid);
  assert.equal(stat.ppid, process.pid);
  assert.equal(stat.pgrp, pid);
  assert.equal(stat.session, pid);
  assert.match(stat.state, /^[A-Za-z]$/);
  assert.ok(Number.isInteger(stat.startTime) && stat.startTime > 0);
  assert.ok(stat.comm.length > 0);
});

test(`parses a command name holding spaces and parentheses`, () => {
  const line = `4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000000 200 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0`;
  assert.deepEqual(parseProcStat(line), {pid: 4242, ppid: 1, pgrp: 4242, session: 4242, state: `S`, startTime: 987654, cpuTicks: 3, comm: `my (odd) app`});
  assert.equal(parseProcStat(`garbage`), null);
});

test(`reads the RSS and CPU ticks of several process groups in one pass; a group with no live member is left out`, async (t) => {
  // A busy loop (the shell's own) and a sleeping member: the group's CPU time grows, its RSS is the sum.
  const busy = startGroup(t, `sleep 30 & while :; do :; done`);
  const idle = startGroup(t, `exec sleep 30`);
  const first = readProcessGroupsUsage(new Set([busy, idle, MISSING_PID]));
  assert.deepEqual([...first.keys()].sort(), [busy, idle].sort());
  assert.ok((first.get(idle)?.rssBytes ?? 0) > 0);
  const expected = (readRssBytes(busy) ?? 0) + listProcessGroupMembers(busy).filter((pid) => pid !== busy).reduce((sum, pid) => sum + (readRssBytes(pid) ?? 0), 0);
  assert.ok(Math.abs((readProcessGroupsUsage(new Set([busy])).get(busy)?.rssBytes ?? 0) - expected) < 1024 * 1024);
  const before = first.get(busy)?.cpuTicks ?? 0;
  await waitFor(() => (readProcessGroupsUsage(new Set([busy])).get(busy)?.cpuTicks ?? 0) > before + 2, {what: `the busy group's CPU time to grow`});
  assert.equal(readProcessGroupsUsage(new Set()).size, 0);
});

test(`returns null for a pid that does not exist`, () => {
  assert.equal(readProcStat(MISSING_PID), null);
  assert.equal(readProcessStartTime(MISSING_PID), null);
  assert.equal(readRssBytes(MISSING_PID), null);
});

test(`identifies a process by a start time that stays the same for its whole life`, () => {
  const first = readProcessStartTime(process.pid);
  assert.ok(first !== null && first > 0);
  assert.equal(readProcessStartTime(process.pid), first);
  assert.ok((readProcessStartTime(process.ppid) ?? Infinity) <= first);
});

test(`lists the live members of a process group and sees the group go`, async (t) => {
  const pgid = startGroup(t, `sleep 30 & sleep 30 & wait`);
  const members = await waitFor((): number[] | null => {
    const pids = listProcessGroupMembers(pgid);
    return pids.length === 3 ? pids : null;
  }, {what: `three group members`});
  assert.ok(members.includes(pgid));
  assert.equal(isProcessGroupAlive(pgid), true);
  assert.deepEqual(listDescendants(pgid).sort(), members.filter((pid) => pid !== pgid).sort());
  process.kill(-pgid, `SIGKILL`);
  await waitFor(() => !isProcessGroupAlive(pgid), {what: `the group to die`});
  assert.deepEqual(listProcessGroupMembers(pgid), []);
});

test(`does not count a zombie as a live group member`, async (t) => {
  const dir = createTempDir(t, `rb-proc-`);
  const pidFile = path.join(dir, `zombie.pid`);
  // setsid makes the background shell lead its own group; it exits, and its parent (sleep, after exec) never reaps it.
  const parent = startGroup(t, `setsid /bin/sh -c 'echo $$ > ${pidFile}' & exec sleep 30`);
  const zombie = Number(await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, `utf8`).trim()));
  await waitFor(() => readProcStat(zombie)?.state === `Z`, {what: `the zombie`});
  assert.equal(readProcStat(zombie)?.pgrp, zombie);
  assert.equal(readProcStat(zombie)?.ppid, parent);
  assert.equal(isProcessGroupAlive(zombie), false);
  assert.deepEqual(listProcessGroupMembers(zombie), []);
  assert.equal(readProcessGroupRss(zombie), null);
  assert.deepEqual(listDescendants(parent), []);
});

test(`counts a process whose main thread exited while another thread runs on as alive: /proc/<pid>/stat shows a zombie, yet it still holds its descriptors`, async (t) => {
  if (!requireCommands(t, [{command: `python3`, pkg: `python3`}])) return;
  const child = spawn(`python3`, [LINGERING_THREAD_APP, `600000`], {detached: true, stdio: [`ignore`, `pipe`, `ignore`]});
  const pid = child.pid;
  assert.ok(pid !== undefined);
  t.after(() => killQuietly(pid));
  await once(child.stdout, `data`);
  // Its main thread exits at SIGTERM; the other thread sleeps on (10 minutes) until it is killed below.
  process.kill(pid, `SIGTERM`);
  await waitFor(() => readProcStat(pid)?.state === `Z`, {what: `the main thread to exit`});
  assert.equal(isProcessGroupAlive(pid), true);
  assert.deepEqual(listProcessGroupMembers(pid), [pid]);
  process.kill(pid, `SIGKILL`);
  await waitFor(() => !isProcessGroupAlive(pid), {what: `the last thread to exit`});
  assert.deepEqual(listProcessGroupMembers(pid), []);
});

test(`measures the resident memory of a process and of its live group`, async (t) => {
  assert.ok((readRssBytes(process.pid) ?? 0) > 0);
  const pgid = startGroup(t, `sleep 30 & exec sleep 30`);
  await waitFor(() => listProcessGroupMembers(pgid).length === 2, {what: `two group members`});
  const single = readRssBytes(pgid) ?? 0;
  const total = readProcessGroupRss(pgid) ?? 0;
  assert.ok(single > 0);
  assert.ok(total > single);
  assert.equal(readProcessGroupRss(MISSING_PID), null);
});
