import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {startDaemon, WEB_APP} from '../helpers/daemon.ts';
import type {TestDaemon} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {freePort} from '../helpers/ports.ts';
import {isPidAlive, killQuietly} from '../helpers/processes.ts';
import {REPO_ROOT} from '../helpers/run-cli.ts';
import {waitFor} from '../helpers/wait-for.ts';

const RECORDER = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `recorder.cjs`);

type ProcessView = {id: string; pid?: number; state: string; adopted?: boolean};

function topology(proxyPort: number, servicePort: number) {
  return (dir: string) => {
    const recorder = `exec "${process.execPath}" "${RECORDER}"`;
    const env = {RECORD_FILE: path.join(dir, `record.log`)};
    return {
      application: `readopt`,
      control: {path: path.join(dir, `control.sock`)},
      proxy: {host: `127.0.0.1`, port: proxyPort, drainTimeoutMs: 1_000, forceStopTimeoutMs: 2_000},
      processes: [
        {id: `beacon`, command: recorder, policy: `service`, port: servicePort, env},
        {id: `scheduler`, command: recorder, policy: `singleton`, env},
        {id: `worker`, command: recorder, policy: `companion`, replicas: 2, env},
        {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000}},
      ],
    };
  };
}

function pidsOf(status: Record<string, unknown>): Map<string, ProcessView> {
  const views = new Map<string, ProcessView>();
  const active = (status.releases as Array<{releaseId: string; state: string; processes: ProcessView[]}>).find((release) => release.state === `active`);
  for (const process of active?.processes ?? []) views.set(process.id, process);
  for (const entry of [...status.services as Array<{id: string; process: ProcessView}>, ...status.singletons as Array<{id: string; process: ProcessView}>]) views.set(entry.id, entry.process);
  return views;
}

async function killDaemonHard(daemon: TestDaemon): Promise<void> {
  const exited = new Promise((resolve) => daemon.child.once(`exit`, resolve));
  daemon.child.kill(`SIGKILL`);
  await exited;
}

test(`a daemon killed with SIGKILL and started again re-adopts every process: same pids, traffic to the surviving web process, no second singleton`, async (t) => {
  const [proxyPort, servicePort] = [await freePort(), await freePort()];
  const first = await startDaemon(t, topology(proxyPort, servicePort));
  await first.call(`deploy`, {releasePath: first.release(`r1`), releaseId: `r1`});
  const before = pidsOf(await first.call(`status`));
  const webPid = Number((await httpGet(proxyPort, `/pid`)).body.trim());
  assert.equal(before.get(`web`)?.pid, webPid);
  for (const view of before.values()) t.after(() => view.pid && killQuietly(view.pid));
  const statePath = path.join(first.dir, `control.state.json`);
  await waitFor(() => fs.existsSync(statePath) && fs.readFileSync(statePath, `utf8`).includes(`"pid": ${webPid}`), {what: `the state file to record the web process`});
  assert.equal(fs.statSync(statePath).mode & 0o777, 0o600);
  const stateText = fs.readFileSync(statePath, `utf8`);
  assert.ok(!stateText.includes(`RECORD_FILE`) && !stateText.includes(WEB_APP), `no commands or env in the state file`);

  await killDaemonHard(first);
  for (const [id, view] of before) assert.ok(isPidAlive(view.pid as number), `${id} survives the daemon's death`);
  await assert.rejects(httpGet(proxyPort, `/pid`), `the proxy port is dark while no daemon runs`);

  const second = await startDaemon(t, topology(proxyPort, servicePort), {dir: first.dir});
  // The proxy listens only once the web process was re-adopted and health-checked: the first request is served.
  assert.equal((await httpGet(proxyPort, `/pid`)).body.trim(), String(webPid));
  const status = await second.call(`status`);
  assert.equal(status.activeReleaseId, `r1`);
  const after = pidsOf(status);
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
  for (const [id, view] of before) {
    assert.equal(after.get(id)?.pid, view.pid, `${id} keeps its pid`);
    assert.equal(after.get(id)?.adopted, true, `${id} is shown as adopted`);
    assert.equal(after.get(id)?.state, `running`);
  }
  const recovery = status.recovery as {adopted: string[]; started: string[]; missing: string[]; previousDaemonPid: number};
  assert.deepEqual([...recovery.adopted].sort(), [...before.keys()].sort());
  assert.deepEqual(recovery.started, []);
  assert.equal(recovery.previousDaemonPid, first.child.pid);
  // Exactly one start per process in the recorder log: nothing was started a second time.
  const starts = fs.readFileSync(path.join(first.dir, `record.log`), `utf8`).split(`\n`).filter((line) => line.startsWith(`start `));
  assert.equal(starts.length, 4, starts.join(`\n`));

  // An adopted process that dies is found by polling and restarted by its restart policy.
  const scheduler = after.get(`scheduler`)?.pid as number;
  process.kill(scheduler, `SIGKILL`);
  const restarted = await waitFor(async () => {
    const pid = pidsOf(await second.call(`status`)).get(`scheduler`)?.pid;
    return pid !== undefined && pid !== scheduler ? pid : null;
  }, {what: `the scheduler to be restarted`});
  t.after(() => killQuietly(restarted));

  // The next deploy replaces the adopted release like any other; shutdown stops everything and removes the state.
  await second.call(`deploy`, {releasePath: second.release(`r2`), releaseId: `r2`});
  assert.equal((await httpGet(proxyPort, `/`)).body, `r2\n`);
  await waitFor(() => !isPidAlive(webPid), {what: `the adopted web process to be stopped after the deploy`});
  await second.call(`shutdown`);
  await new Promise((resolve) => second.child.once(`exit`, resolve));
  assert.equal(fs.existsSync(statePath), false, `a clean shutdown leaves no state behind`);
  assert.equal(isPidAlive(before.get(`beacon`)?.pid as number), false);
});

test(`dead processes of the active release are started again and reported as missing`, async (t) => {
  const [proxyPort, servicePort] = [await freePort(), await freePort()];
  const first = await startDaemon(t, topology(proxyPort, servicePort));
  await first.call(`deploy`, {releasePath: first.release(`r1`), releaseId: `r1`});
  const before = pidsOf(await first.call(`status`));
  for (const view of before.values()) t.after(() => view.pid && killQuietly(view.pid));
  const statePath = path.join(first.dir, `control.state.json`);
  await waitFor(() => fs.existsSync(statePath) && fs.readFileSync(statePath, `utf8`).includes(`"pid": ${before.get(`web`)?.pid}`), {what: `the state file`});
  await killDaemonHard(first);
  const web = before.get(`web`)?.pid as number;
  process.kill(-web, `SIGKILL`);
  await waitFor(() => !isPidAlive(web), {what: `the web process to die`});

  const second = await startDaemon(t, topology(proxyPort, servicePort), {dir: first.dir});
  const status = await second.call(`status`);
  const recovery = status.recovery as {adopted: string[]; started: string[]; missing: string[]};
  assert.deepEqual(recovery.started, [`web`]);
  assert.deepEqual(recovery.missing, [`web`]);
  const newWeb = pidsOf(status).get(`web`);
  assert.notEqual(newWeb?.pid, web);
  assert.equal(newWeb?.adopted, undefined);
  t.after(() => newWeb?.pid && killQuietly(newWeb.pid));
  assert.equal((await httpGet(proxyPort, `/pid`)).body.trim(), String(newWeb?.pid));
});

test(`issue-9: a daemon started again after a crash with a worker scaled down stops the instances the config no longer has`, async (t) => {
  const config = (replicas: number) => (dir: string) => ({
    application: `readopt-scale`,
    control: {path: path.join(dir, `control.sock`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 1_000, forceStopTimeoutMs: 2_000},
    processes: [
      {id: `worker`, command: `exec sleep 300`, policy: `companion`, replicas},
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000}},
    ],
  });
  const first = await startDaemon(t, config(3));
  await first.call(`deploy`, {releasePath: first.release(`r1`), releaseId: `r1`});
  const before = pidsOf(await first.call(`status`));
  for (const view of before.values()) t.after(() => view.pid && killQuietly(view.pid));
  const statePath = path.join(first.dir, `control.state.json`);
  await waitFor(() => fs.existsSync(statePath) && fs.readFileSync(statePath, `utf8`).includes(`"pid": ${before.get(`worker#2`)?.pid}`), {what: `the state file to record worker#2`});
  await killDaemonHard(first);

  const second = await startDaemon(t, config(2), {dir: first.dir});
  const status = await second.call(`status`);
  const after = pidsOf(status);
  assert.deepEqual([...after.keys()].sort(), [`web`, `worker#0`, `worker#1`]);
  assert.equal(after.get(`worker#0`)?.pid, before.get(`worker#0`)?.pid, `worker#0 is re-adopted`);
  await waitFor(() => !isPidAlive(before.get(`worker#2`)?.pid as number), {what: `worker#2, no longer in the config, to be stopped`});
  assert.ok((status.recovery as {stopped: string[]}).stopped.some((entry) => entry.startsWith(`worker#2 (no longer in the config`)));
});
