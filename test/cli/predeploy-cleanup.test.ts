import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {once} from 'node:events';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {freePort} from '../helpers/ports.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {runCli} from '../helpers/run-cli.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {readProcessTable, readProcStat} from '../../src/system/proc.ts';
import {ESCAPEES_COMMAND, listOwnSessions, pidsOfSession, requireScreen, startDetached, startScreenSession, uniqueName} from '../takeover/legacy-fixtures.ts';

function writeConfig(t: TestContext, legacyTakeover: Record<string, unknown>): {dir: string; configPath: string} {
  const dir = createTempDir(t);
  const configPath = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(configPath, JSON.stringify(webConfig(dir, {legacyTakeover: {forceStopTimeoutMs: 2_000, ...legacyTakeover}})));
  return {dir, configPath};
}

/** A unique `sleep <seconds>` command line to match on. */
function uniqueSleep(): string {
  return `sleep ${370_000 + Math.floor(Math.random() * 100_000)}`;
}

async function startMatched(t: TestContext, marker: string): Promise<number> {
  const pid = startDetached(t, `exec ${marker}`);
  await waitFor(() => readProcStat(pid)?.comm === `sleep`, {what: `the exec`});
  return pid;
}

test(`without a daemon, stops the screen session (escapees included) and matched processes, printing rollbridge 0.1's lines`, async (t) => {
  if (!requireScreen(t)) return;
  const name = uniqueName();
  const marker = uniqueSleep();
  const {dir, configPath} = writeConfig(t, {screens: [name], processes: [{name: `worker`, includes: [marker]}]});
  const session = await startScreenSession(t, name, ESCAPEES_COMMAND, {cwd: dir, processes: 4});
  const sessionPids = [session.pid, ...pidsOfSession(session.id)];
  const worker = await startMatched(t, marker);
  const result = await runCli([`predeploy-cleanup`, `--config`, configPath]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, [
    `No active Rollbridge daemon found.`,
    `Recovered 0 Rollbridge orphaned processes.`,
    `Stopped 6 legacy processes.`,
    ``,
  ].join(`\n`));
  for (const pid of [...sessionPids, worker]) assert.equal(isPidAlive(pid), false, `pid ${pid} still runs`);
  assert.ok(!(await listOwnSessions()).some((entry) => entry.id === session.id));
});

test(`--json reports the action, the stopped legacy processes with their parent pids, and recovered orphans`, async (t) => {
  const marker = uniqueSleep();
  const {configPath} = writeConfig(t, {processes: [{includes: [marker]}]});
  const worker = await startMatched(t, marker);
  const result = await runCli([`predeploy-cleanup`, `--config`, configPath, `--json`]);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.json(), {
    status: `success`,
    changed: true,
    action: `no-daemon-cleaned`,
    legacyProcesses: [{pid: worker, parentPid: process.pid, args: marker}],
    recoveredOrphans: 0,
  });
  assert.equal(isPidAlive(worker), false);
});

test(`leaves another user's processes alone when legacyTakeover.user names that user`, async (t) => {
  const marker = uniqueSleep();
  const {configPath} = writeConfig(t, {processes: [{includes: [marker]}], user: `nobody`});
  const worker = await startMatched(t, marker);
  const result = await runCli([`predeploy-cleanup`, `--config`, configPath]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^Stopped 0 legacy processes\.$/m);
  assert.match(result.stderr, /belongs to uid \d+, not 65534 \(nobody\); it was left alone/);
  assert.equal(isPidAlive(worker), true);
});

test(`does nothing while the daemon has an active release on the configured proxy address`, async (t) => {
  const marker = uniqueSleep();
  const port = await freePort();
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {
    proxy: {host: `127.0.0.1`, port, drainTimeoutMs: 2_000, forceStopTimeoutMs: 2_000},
    legacyTakeover: {processes: [{includes: [marker]}]},
  }));
  await daemon.call(`deploy`, {releasePath: daemon.release(`r1`)});
  const worker = await startMatched(t, marker);
  const result = await runCli([`predeploy-cleanup`, `--config`, daemon.configPath]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, `Rollbridge daemon already has an active release; no legacy cleanup needed.\n`);
  assert.equal(isPidAlive(worker), true);
  assert.equal(daemon.child.exitCode, null);
  const json = await runCli([`predeploy-cleanup`, `--config`, daemon.configPath, `--json`]);
  assert.deepEqual(json.json(), {status: `success`, changed: false, action: `daemon-active`, legacyProcesses: [], recoveredOrphans: 0});
});

test(`shuts down a daemon without an active release before cleaning up`, async (t) => {
  const marker = uniqueSleep();
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {legacyTakeover: {processes: [{includes: [marker]}]}}));
  const worker = await startMatched(t, marker);
  const exited = once(daemon.child, `exit`);
  const result = await runCli([`predeploy-cleanup`, `--config`, daemon.configPath]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, [
    `Stopped existing Rollbridge daemon before deploy.`,
    `Recovered 0 Rollbridge orphaned processes.`,
    `Stopped 1 legacy process.`,
    ``,
  ].join(`\n`));
  await exited;
  assert.equal(fs.existsSync(daemon.socketPath), false);
  assert.equal(isPidAlive(worker), false);
});

test(`refuses with ERR_CONTROL_SOCKET_IN_USE when something else listens on control.path`, async (t) => {
  const marker = uniqueSleep();
  const {dir, configPath} = writeConfig(t, {processes: [{includes: [marker]}]});
  const server = net.createServer(() => undefined);
  server.listen(path.join(dir, `control.sock`));
  await once(server, `listening`);
  t.after(() => server.close());
  const worker = await startMatched(t, marker);
  const result = await runCli([`predeploy-cleanup`, `--config`, configPath, `--json`]);
  assert.equal(result.code, 1);
  assert.equal((result.json() as {error: {code: string}}).error.code, `ERR_CONTROL_SOCKET_IN_USE`);
  assert.equal(isPidAlive(worker), true);
});

test(`fails with ERR_LEGACY_STILL_RUNNING, listing pid and command line, when a legacy process comes back`, async (t) => {
  const marker = uniqueName(`rbm`);
  // On SIGTERM the shell starts a successor (its command line carries the marker too) and exits.
  const pid = startDetached(t, `trap '/bin/sh -c "sleep 1000 & wait" "$0-again" & exit 0' TERM; sleep 1000 & wait`, [marker]);
  // The trap is set before the shell starts its child.
  await waitFor(() => readProcessTable().some((entry) => entry.ppid === pid && entry.args === `sleep 1000`), {what: `the legacy shell's child`});
  const {configPath} = writeConfig(t, {processes: [{includes: [marker]}]});
  const result = await runCli([`predeploy-cleanup`, `--config`, configPath, `--json`]);
  assert.equal(result.code, 1, result.stdout);
  const {error} = result.json() as {error: {code: string; message: string; details: {processes: Array<{pid: number; args: string}>}}};
  assert.equal(error.code, `ERR_LEGACY_STILL_RUNNING`);
  const successor = error.details.processes.find((entry) => entry.args.includes(`${marker}-again`));
  assert.ok(successor, error.message);
  assert.notEqual(successor.pid, pid);
  assert.match(error.message, new RegExp(`^${successor.pid} /bin/sh -c sleep 1000 & wait ${marker}-again$`, `m`));
  assert.equal(isPidAlive(pid), false);
});
