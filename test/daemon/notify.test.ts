import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import type {TestDaemon} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {assertMatchesSchema} from '../helpers/json-schemas.ts';
import {REPO_ROOT} from '../helpers/run-cli.ts';
import {requireCommands} from '../helpers/system-packages.ts';
import {waitFor} from '../helpers/wait-for.ts';

// health.type "notify": the web process gets a NOTIFY_SOCKET and counts as healthy at READY=1, sent by a
// real Python app over AF_UNIX SOCK_DGRAM (as gunicorn or uvicorn under systemd do) or by systemd-notify.

const NOTIFY_APP = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `notify-app.py`);
const PYTHON = [{command: `python3`, pkg: `python3`}];

type NotifyView = {ready: boolean; status?: string; mainPid?: number};
type ProcessView = {id: string; pid: number; state: string; notify?: NotifyView};
type ReleaseView = {releaseId: string; state: string; processes: ProcessView[]};

function notifyConfig(dir: string, web: Record<string, unknown> = {}): Record<string, unknown> {
  return webConfig(dir, {}, {command: `exec python3 "${NOTIFY_APP}"`, env: {APP_READY_FLAG: `ready-flag`}, health: {type: `notify`, timeoutMs: 20_000}, ...web});
}

async function webOf(daemon: TestDaemon, releaseId: string): Promise<ProcessView | undefined> {
  const releases = (await daemon.call(`status`)).releases as ReleaseView[];
  return releases.find((release) => release.releaseId === releaseId)?.processes.find((process) => process.id === `web`);
}

/** Sends one datagram to `socketPath` from a process outside the app (a python3 child of the test); returns its pid. */
function sendFromOutside(socketPath: string, message: string): number {
  const result = spawnSync(`python3`, [`-c`, `import socket, sys\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.sendto(sys.argv[2].encode(), sys.argv[1])`, socketPath, message]);
  assert.equal(result.status, 0, String(result.stderr));
  return result.pid ?? 0;
}

test(`a notify app is switched to only after READY=1, not when it answers HTTP; datagrams from outside its process group or over 4096 bytes are refused`, async (t) => {
  if (!requireCommands(t, PYTHON)) return;
  const daemon = await startDaemon(t, (dir) => notifyConfig(dir));
  const release = daemon.release(`v1`);
  let settled = false;
  const deploying = daemon.call(`deploy`, {releasePath: release, releaseId: `v1`}).finally(() => {
    settled = true;
  });
  // Serving HTTP and waiting for the flag: STATUS= arrived, READY=1 not yet.
  const starting = await waitFor(async () => {
    const web = await webOf(daemon, `v1`);
    return web?.notify?.status === `waiting for ready-flag` ? web : null;
  }, {what: `the app's STATUS= in status`});
  assert.equal(starting.notify?.ready, false);
  const env = fs.readFileSync(`/proc/${starting.pid}/environ`, `utf8`).split(`\0`);
  const socketPath = env.find((entry) => entry.startsWith(`NOTIFY_SOCKET=`))?.slice(`NOTIFY_SOCKET=`.length) ?? ``;
  assert.ok(socketPath.endsWith(`.sock`), `the process has NOTIFY_SOCKET (${socketPath})`);
  const socketStat = fs.statSync(socketPath);
  assert.ok(socketStat.isSocket());
  assert.equal(socketStat.mode & 0o777, 0o600, `the socket is private to the daemon's user`);
  assert.equal(fs.statSync(path.dirname(socketPath)).mode & 0o777, 0o700);
  const port = Number(env.find((entry) => entry.startsWith(`ROLLBRIDGE_PORT=`))?.slice(`ROLLBRIDGE_PORT=`.length));
  assert.equal((await httpGet(port)).body, `v1\n`, `the app already answers HTTP on its own port`);

  // Refused as outside the process group, or (if it is gone by the check) as exited: never READY.
  const outsider = sendFromOutside(socketPath, `READY=1`);
  const refused = await daemon.record((record) => record.msg === `notify message rejected` && record.senderPid === outsider, `a rejected READY=1 from outside`);
  assert.match(String(refused.reason), /outside the process group|exited before its message was checked/);
  sendFromOutside(socketPath, `READY=1\nSTATUS=${`x`.repeat(5_000)}`);
  await daemon.record((record) => record.msg === `notify message rejected` && record.reason === `datagram over 4096 bytes`, `a rejected oversized datagram`);
  assert.equal(settled, false, `the deploy still waits`);
  assert.equal((await webOf(daemon, `v1`))?.notify?.ready, false);
  assert.equal((await httpGet(daemon.proxyPort)).status, 503, `no traffic before READY=1`);

  fs.writeFileSync(path.join(release, `ready-flag`), ``);
  const result = await deploying;
  assert.equal(result.releaseId, `v1`);
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
  const web = await webOf(daemon, `v1`);
  assert.deepEqual(web?.notify, {ready: true, status: `serving`, mainPid: starting.pid});
  const ready = await daemon.record((record) => record.msg === `process notified ready`, `process notified ready`);
  assert.equal(ready.senderPid, starting.pid);
  assertMatchesSchema(`status.schema.json`, {status: `success`, ...await daemon.call(`status`)}, `status --json with notify`);
});

test(`a notify app that never sends READY=1 fails the deploy with ERR_HEALTH_NOTIFY_TIMEOUT, its last STATUS= and output; the previous release keeps serving`, async (t) => {
  if (!requireCommands(t, PYTHON)) return;
  // Long enough for python to start and send its STATUS= on a loaded machine.
  const daemon = await startDaemon(t, (dir) => notifyConfig(dir, {health: {type: `notify`, timeoutMs: 5_000}}));
  fs.writeFileSync(path.join(daemon.release(`v1`), `ready-flag`), ``);
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`}), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_HEALTH_NOTIFY_TIMEOUT`);
    assert.equal(error.message, `Process "web" did not send READY=1 on its NOTIFY_SOCKET within 5000 ms; its last STATUS= was "waiting for ready-flag"`);
    assert.match(String(error.fix), /processes\[0\]\.health\.timeoutMs/);
    assert.deepEqual(error.details.output, [`notify app serving, not ready yet`]);
    return true;
  });
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
});

test(`READY=1 sent by systemd-notify --ready (another pid of the process group, with its BARRIER=1) makes the app healthy`, async (t) => {
  if (!requireCommands(t, [...PYTHON, {command: `systemd-notify`, pkg: `systemd`}])) return;
  const daemon = await startDaemon(t, (dir) => notifyConfig(dir, {env: {APP_READY_FLAG: `ready-flag`, APP_NOTIFY_WITH: `systemd-notify`}}));
  fs.writeFileSync(path.join(daemon.release(`v1`), `ready-flag`), ``);
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
  const web = await webOf(daemon, `v1`);
  assert.equal(web?.notify?.ready, true);
  assert.equal(web?.notify?.status, `serving (systemd-notify)`);
  // systemd-notify returns once the barrier's descriptor was closed: the app printed its next line.
  await waitFor(() => fs.readFileSync(path.join(daemon.dir, `logs`, `v1`, `web.stdout.log`), `utf8`).includes(`notify app ready`), {what: `systemd-notify to return`});
});
