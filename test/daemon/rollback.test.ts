import assert from 'node:assert/strict';
import test from 'node:test';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {startDaemon, webConfig, WEB_APP} from '../helpers/daemon.ts';
import {httpGet, TestWebSocket} from '../helpers/http.ts';
import {loadSwitch} from '../helpers/load-switch.ts';
import {isPidAlive} from '../helpers/processes.ts';

type ReleaseView = {releaseId: string; state: string; processes: Array<{id: string; pid: number; state: string}>};

async function expectCode(promise: Promise<unknown>, code: string): Promise<string> {
  let message = ``;
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isRollbridgeError(error), String(error));
    assert.equal(error.code, code, error.message);
    assert.ok(error.fix, `${code} has a fix`);
    message = error.message;
    return true;
  });
  return message;
}

test(`rollback re-activates the previous release, and rolling back twice toggles between the two`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`});
  const back = await daemon.call(`rollback`);
  assert.deepEqual([back.activeReleaseId, back.previousReleaseId], [`v1`, `v2`]);
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
  const forth = await daemon.call(`rollback`);
  assert.deepEqual([forth.activeReleaseId, forth.previousReleaseId], [`v2`, `v1`]);
  assert.equal((await httpGet(daemon.proxyPort)).body, `v2\n`);
  await daemon.record((record) => record.msg === `rollback starting` && record.releaseId === `v2`, `rollback starting`);
});

test(`rollback --release-id targets a retained release; no previous, unknown and already-active targets are refused`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  assert.match(await expectCode(daemon.call(`rollback`), `ERR_NO_PREVIOUS_RELEASE`), /No previous release/);
  await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`});
  await daemon.call(`deploy`, {releasePath: daemon.release(`v3`), releaseId: `v3`});
  assert.match(await expectCode(daemon.call(`rollback`, {releaseId: `v9`}), `ERR_RELEASE_NOT_FOUND`), /"v9"/);
  assert.match(await expectCode(daemon.call(`rollback`, {releaseId: `v3`}), `ERR_RELEASE_ALREADY_ACTIVE`), /"v3" is already active/);
  const result = await daemon.call(`rollback`, {releaseId: `v1`});
  assert.deepEqual([result.activeReleaseId, result.previousReleaseId], [`v1`, `v3`]);
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
});

test(`rollback to a release that is still draining stops its old processes first instead of orphaning them`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 30_000, forceStopTimeoutMs: 2_000}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const ws = await TestWebSocket.connect(daemon.proxyPort);
  t.after(() => ws.close());
  assert.equal(await ws.roundTrip(`hold`), `v1:hold`);
  await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`});
  const draining = (await daemon.call(`status`)).releases as ReleaseView[];
  const oldRelease = draining.find((release) => release.releaseId === `v1`);
  assert.equal(oldRelease?.state, `draining`, `the open WebSocket keeps v1 draining`);
  const oldPid = oldRelease?.processes[0]?.pid as number;
  const result = await daemon.call(`rollback`);
  assert.equal(result.activeReleaseId, `v1`);
  assert.equal(isPidAlive(oldPid), false, `the draining v1 process was stopped, not orphaned`);
  const status = await daemon.call(`status`);
  const v1 = (status.releases as ReleaseView[]).filter((release) => release.releaseId === `v1`);
  assert.equal(v1.filter((release) => release.state === `active`).length, 1);
  assert.notEqual(v1.find((release) => release.state === `active`)?.processes[0]?.pid, oldPid);
});

test(`releaseRetention.keep bounds the stopped releases kept for rollback`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {releaseRetention: {keep: 1}}));
  for (const id of [`v1`, `v2`, `v3`]) await daemon.call(`deploy`, {releasePath: daemon.release(id), releaseId: id});
  const {waitFor} = await import('../helpers/wait-for.ts');
  const releases = await waitFor(async () => {
    const current = (await daemon.call(`status`)).releases as ReleaseView[];
    return current.every((release) => release.state === `active` || release.state === `stopped`) && current.length === 2 ? current : null;
  }, {what: `the drains to finish and pruning to keep one stopped release`});
  assert.deepEqual(releases.map((release) => `${release.releaseId}:${release.state}`), [`v2:stopped`, `v3:active`]);
  await expectCode(daemon.call(`rollback`, {releaseId: `v1`}), `ERR_RELEASE_NOT_FOUND`);
});

test(`a nonBlockingDrain worker stops at once while its release is still draining`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 30_000, forceStopTimeoutMs: 2_000},
    processes: [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20}},
      {id: `jobs`, command: `exec sleep 300`, policy: `companion`, nonBlockingDrain: true},
      {id: `mailer`, command: `exec sleep 300`, policy: `companion`},
    ],
  }));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const ws = await TestWebSocket.connect(daemon.proxyPort);
  t.after(() => ws.close());
  assert.equal(await ws.roundTrip(`hold`), `v1:hold`);
  await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`});
  const {waitFor} = await import('../helpers/wait-for.ts');
  const v1 = await waitFor(async () => {
    const release = ((await daemon.call(`status`)).releases as ReleaseView[]).find((entry) => entry.releaseId === `v1`);
    return release?.processes.find((process) => process.id === `jobs`)?.state === `stopped` ? release : null;
  }, {what: `v1's nonBlockingDrain worker to stop`});
  assert.equal(v1.state, `draining`, `the release is still draining its WebSocket`);
  assert.equal(v1.processes.find((process) => process.id === `mailer`)?.state, `running`, `an ordinary companion waits for the drain`);
});

test(`deploy --skip-health-check switches without probing and logs that it did`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  const result = await daemon.call(`deploy`, {releasePath: daemon.release(`bad-1`), releaseId: `bad-1`, skipHealthCheck: true});
  assert.equal(result.activeReleaseId, `bad-1`, `a release whose health check would fail is switched to`);
  const {waitFor} = await import('../helpers/wait-for.ts');
  // The daemon's stdout reaches the test asynchronously: wait for the line rather than race the reply.
  await waitFor(() => daemon.records.some((record) => record.msg === `health check skipped` && record.level === `warn`), {what: `the "health check skipped" warning`});
});

test(`issue-9: after a watch rollback, rollback never goes to the failed release and the good one keeps serving under load`, async (t) => {
  const http = await import('node:http');
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {env: {APP_SHUTDOWN: `immediate`, APP_CRASH_AFTER: `first-request`}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const agent = new http.Agent({keepAlive: true, maxSockets: 8});
  t.after(() => agent.destroy());
  const load = loadSwitch(t);
  let failures = 0;
  const served: string[] = [];
  const clients = Array.from({length: 8}, async () => {
    while (load.on()) {
      try {
        const result = await httpGet(daemon.proxyPort, `/`, {agent});
        if (result.status === 200) served.push(result.body.trim());
        else failures += 1;
      } catch {
        failures += 1;
      }
    }
  });
  await expectCode(daemon.call(`deploy`, {releasePath: daemon.release(`crash-2`), releaseId: `crash-2`, watchMs: 5_000}), `ERR_WATCH_ROLLED_BACK`);
  const afterWatch = served.length;
  const failed = ((await daemon.call(`status`)).releases as Array<ReleaseView & {failure?: string}>).find((release) => release.releaseId === `crash-2`);
  assert.match(failed?.failure ?? ``, /web process web exited/);

  const none = await expectCode(daemon.call(`rollback`), `ERR_ROLLBACK_NO_HEALTHY_RELEASE`);
  assert.match(none, /crash-2 \(.*web process web exited.*\); v1 keeps serving/);
  await expectCode(daemon.call(`rollback`, {releaseId: `crash-2`}), `ERR_ROLLBACK_RELEASE_FAILED`);
  assert.equal((await daemon.call(`status`)).activeReleaseId, `v1`);

  await daemon.call(`deploy`, {releasePath: daemon.release(`v3`), releaseId: `v3`});
  const back = await daemon.call(`rollback`);
  assert.deepEqual([back.activeReleaseId, back.previousReleaseId], [`v1`, `v3`], `the most recently activated release that never failed`);
  const named = await daemon.record((record) => record.msg === `rollback starting`, `rollback starting`);
  assert.equal(named.releaseId, `v1`);
  const after = served.length + 50;
  const {waitFor} = await import('../helpers/wait-for.ts');
  await waitFor(() => served.length >= after, {what: `traffic after the rollback`});
  load.stop();
  await Promise.all(clients);
  assert.equal(failures, 0);
  assert.equal(served.slice(afterWatch).includes(`crash-2`), false, `the failed release served nothing after its watch rollback`);
  assert.equal(served.at(-1), `v1`);
});
