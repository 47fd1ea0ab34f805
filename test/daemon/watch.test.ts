import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import test from 'node:test';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {CRASH_LINGERING_APP, startDaemon, webConfig} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {loadSwitch} from '../helpers/load-switch.ts';
import {requireCommands} from '../helpers/system-packages.ts';
import {waitFor} from '../helpers/wait-for.ts';

type ReleaseView = {releaseId: string; state: string};

async function expectRolledBack(promise: Promise<unknown>, reason: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isRollbridgeError(error), String(error));
    assert.equal(error.code, `ERR_WATCH_ROLLED_BACK`, error.message);
    assert.match(error.message, reason);
    return true;
  });
}

test(`a new release that crashes inside its watch window is switched back with no failed request under load`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {env: {APP_SHUTDOWN: `immediate`, APP_CRASH_AFTER: `first-request`}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const agent = new http.Agent({keepAlive: true, maxSockets: 8});
  t.after(() => agent.destroy());
  const load = loadSwitch(t);
  let failures = 0;
  const served = new Map<string, number>();
  const clients = Array.from({length: 8}, async () => {
    while (load.on()) {
      try {
        const result = await httpGet(daemon.proxyPort, `/`, {agent});
        if (result.status === 200) served.set(result.body.trim(), (served.get(result.body.trim()) ?? 0) + 1);
        else failures += 1;
      } catch {
        failures += 1;
      }
    }
  });
  await expectRolledBack(daemon.call(`deploy`, {releasePath: daemon.release(`crash-2`), releaseId: `crash-2`, watchMs: 5_000}), /web process web exited \(code 1\)/);
  const after = (served.get(`v1`) ?? 0) + 50;
  await waitFor(() => (served.get(`v1`) ?? 0) >= after, {what: `v1 serving again`});
  load.stop();
  await Promise.all(clients);
  assert.equal(failures, 0);
  assert.ok((served.get(`crash-2`) ?? 0) > 0, `the new release served traffic before it crashed`);
  const status = await daemon.call(`status`);
  assert.equal(status.activeReleaseId, `v1`);
  const states = Object.fromEntries((status.releases as ReleaseView[]).map((release) => [release.releaseId, release.state]));
  assert.equal(states.v1, `active`);
  await daemon.record((record) => record.msg === `watch failed; switched back`, `watch failed; switched back`);
});

test(`a web process whose main thread exited while another thread still closes is switched back for its exit, not for its failed probes`, async (t) => {
  if (!requireCommands(t, [{command: `python3`, pkg: `python3`}])) return;
  // Its port refuses connections for 1.5 s before the exit is reported: probes every 20 ms fail meanwhile.
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  // The config is read again at each deploy.
  fs.writeFileSync(daemon.configPath, JSON.stringify(webConfig(daemon.dir, {}, {command: `exec python3 "${CRASH_LINGERING_APP}" {{port}} 1500`})));
  const watched = daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`, watchMs: 20_000});
  await waitFor(async () => (await daemon.call(`status`)).activeReleaseId === `v2`, {what: `the switch to v2`});
  await httpGet(daemon.proxyPort, `/`);
  await expectRolledBack(watched, /web process web exited \(code 1\)/);
});

test(`too many 5xx inside the watch window switch traffic back`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {watch: {windowMs: 30_000, max5xxPercent: 10, minRequests: 10}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  // The window is long so a loaded machine still sends the 20 requests inside it; the switch-back comes
  // as soon as the 5xx share is over the limit.
  const rolledBack = expectRolledBack(daemon.call(`deploy`, {releasePath: daemon.release(`fivexx-2`), releaseId: `fivexx-2`}), /\d+ of \d+ responses were 5xx or errors \(\d+\.\d% > watch\.max5xxPercent 10%\)/);
  await waitFor(async () => (await daemon.call(`status`)).activeReleaseId === `fivexx-2`, {what: `the switch to fivexx-2`});
  const answers: number[] = [];
  while (answers.length < 20) answers.push((await httpGet(daemon.proxyPort)).status);
  await rolledBack;
  assert.ok(answers.includes(500));
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
});

test(`a failing health check inside the watch window switches traffic back; a healthy release passes its window`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  await expectRolledBack(daemon.call(`deploy`, {releasePath: daemon.release(`sick-2`), releaseId: `sick-2`, watchMs: 5_000}), /health check of http:\/\/127\.0\.0\.1:\d+\/ping failed twice: HTTP 503/);
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
  const ok = await daemon.call(`deploy`, {releasePath: daemon.release(`v3`), releaseId: `v3`, watchMs: 300});
  assert.deepEqual([ok.activeReleaseId, ok.previousReleaseId], [`v3`, `v1`]);
  assert.ok((ok.phases as Array<{phase: string}>).some((phase) => phase.phase === `watched`));
  assert.equal((await httpGet(daemon.proxyPort)).body, `v3\n`);
});
