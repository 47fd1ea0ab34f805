import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import test from 'node:test';
import {startDaemon, webConfig, WEB_APP} from '../helpers/daemon.ts';
import type {TestDaemon} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {loadSwitch} from '../helpers/load-switch.ts';
import {assertMatchesSchema} from '../helpers/json-schemas.ts';
import {waitFor} from '../helpers/wait-for.ts';

type LivenessView = {state: string; consecutiveFailures: number; failureThreshold: number; lastError?: string; restarts: number};
type ProcessView = {id: string; pid: number; state: string; lastStartReason?: string; liveness?: LivenessView};
type ReleaseView = {releaseId: string; processes: ProcessView[]};

async function processOf(daemon: TestDaemon, id: string): Promise<ProcessView | undefined> {
  const releases = (await daemon.call(`status`)).releases as ReleaseView[];
  return releases.find((release) => release.processes.some((process) => process.id === id))?.processes.find((process) => process.id === id);
}

test(`a proxied process that starts failing its liveness checks after the switch is replaced with 0 failed requests under load`, async (t) => {
  let sickFile = ``;
  const daemon = await startDaemon(t, (dir) => {
    sickFile = path.join(dir, `sick-pid`);
    return webConfig(dir, {}, {
      env: {APP_SICK_FILE: sickFile},
      health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000, liveness: {intervalMs: 100, failureThreshold: 3, probeTimeoutMs: 1_000}},
    });
  });
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const healthy = await waitFor(async () => {
    const web = await processOf(daemon, `web`);
    return web?.liveness?.state === `passing` ? web : null;
  }, {what: `a passing liveness check in status`});
  assert.equal(healthy.liveness?.consecutiveFailures, 0);
  assert.equal(healthy.liveness?.failureThreshold, 3);

  const agent = new http.Agent({keepAlive: true, maxSockets: 8});
  t.after(() => agent.destroy());
  const load = loadSwitch(t);
  let failures = 0;
  let lastPid = ``;
  const clients = Array.from({length: 8}, async () => {
    while (load.on()) {
      try {
        const result = await httpGet(daemon.proxyPort, `/pid`, {agent});
        if (result.status === 200) lastPid = result.body.trim();
        else failures += 1;
      } catch {
        failures += 1;
      }
    }
  });
  // The web process now answers 503 on /ping (but still serves): its liveness checks fail.
  fs.writeFileSync(sickFile, String(healthy.pid));
  const failing = await waitFor(async () => {
    const web = await processOf(daemon, `web`);
    return web?.liveness?.state === `failing` ? web : null;
  }, {what: `a failing liveness check in status`, timeoutMs: 10_000});
  assert.equal(failing.liveness?.lastError, `HTTP 503`);
  await waitFor(() => lastPid !== `` && lastPid !== String(healthy.pid), {what: `the replacement web process to serve`, timeoutMs: 15_000});
  load.stop();
  await Promise.all(clients);
  assert.equal(failures, 0, `no request failed while the process was replaced`);

  const replacement = await waitFor(async () => {
    const web = await processOf(daemon, `web`);
    return web && web.pid !== healthy.pid && web.liveness?.state === `passing` ? web : null;
  }, {what: `the replacement's passing liveness check`});
  assert.equal(replacement.lastStartReason, `liveness`);
  assert.equal(replacement.liveness?.restarts, 1);
  assertMatchesSchema(`status.schema.json`, {status: `success`, ...await daemon.call(`status`)}, `status --json with liveness`);
  const failed = await daemon.record((record) => record.msg === `liveness failed`, `liveness failed`);
  assert.equal(failed.pid, healthy.pid);
  assert.equal(failed.lastError, `HTTP 503`);
  assert.equal(failed.failures, 3);
  assert.match(String(failed.check), /^GET http:\/\/127\.0\.0\.1:\d+\/ping$/);
  assert.ok(Array.isArray(failed.output), `the process's last output lines are in the event`);
  const replaced = await daemon.record((record) => record.msg === `process replaced` && record.reason === `liveness`, `process replaced`);
  assert.equal(replaced.previousPid, healthy.pid);
  assert.equal(replaced.lastError, `HTTP 503`);
  const events = (await daemon.call(`events`, {})).events as Array<{message: string; data: Record<string, unknown>}>;
  assert.ok(events.some((event) => event.message === `liveness failed` && event.data.lastError === `HTTP 503`), `events lists the liveness failure`);
  assert.ok(events.some((event) => event.message === `process replaced` && event.data.reason === `liveness`), `events lists the replacement`);
});

test(`a companion failing its readiness.liveness command is restarted in place`, async (t) => {
  let flag = ``;
  const daemon = await startDaemon(t, (dir) => {
    flag = path.join(dir, `worker-sick`);
    return webConfig(dir, {processes: [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20}},
      {id: `worker`, command: `echo worker up; exec sleep 300`, policy: `companion`, readiness: {command: `test ! -f "${flag}"`, timeoutMs: 5_000, liveness: {intervalMs: 100, failureThreshold: 2}}},
    ]});
  });
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const before = await waitFor(async () => {
    const worker = await processOf(daemon, `worker`);
    return worker?.liveness?.state === `passing` ? worker : null;
  }, {what: `the worker's passing liveness check`});
  fs.writeFileSync(flag, ``);
  const restarted = await daemon.record((record) => record.msg === `process restarted` && record.reason === `liveness`, `process restarted`);
  fs.rmSync(flag);
  assert.equal(restarted.previousPid, before.pid);
  assert.match(String(restarted.lastError), /command exited with 1/);
  assert.deepEqual(restarted.output, [`worker up`]);
  const after = await waitFor(async () => {
    const worker = await processOf(daemon, `worker`);
    return worker && worker.pid !== before.pid && worker.state === `running` ? worker : null;
  }, {what: `the restarted worker`});
  assert.equal(after.lastStartReason, `liveness`);
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
});

test(`liveness checks are off by default: status shows none`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const web = await processOf(daemon, `web`);
  assert.equal(web?.state, `running`);
  assert.equal(web?.liveness, undefined);
});
