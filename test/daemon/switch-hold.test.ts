import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {LINGERING_THREAD_APP, WEB_APP, startDaemon, webConfig} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {startKeepAliveLoad} from '../helpers/keep-alive-load.ts';
import type {KeepAliveLoad} from '../helpers/keep-alive-load.ts';
import {requireCommands} from '../helpers/system-packages.ts';
import {freePort} from '../helpers/ports.ts';
import {parseExposition, scrape, sumOf} from '../helpers/prometheus-text.ts';
import type {Sample} from '../helpers/prometheus-text.ts';
import type {TestDaemon} from '../helpers/daemon.ts';

/** The web app behind an exclusive, non-blocking flock: a second copy exits 1 at once while the first runs. */
function lockedWeb(dir: string, overrides: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Record<string, unknown> {
  return webConfig(dir, top, {command: `exec flock -n "${path.join(dir, `web.lock`)}" "${process.execPath}" "${WEB_APP}"`, switch: `hold`, holdTimeoutMs: 10_000, ...overrides});
}

/** The switch hold histogram's count and sum (seconds) for one outcome. */
/** Runs `action` under keep-alive load: release `before` serves first, `after` once it is done, and no request fails. */
async function underLoad<T>(t: test.TestContext, daemon: TestDaemon, before: string, after: string, action: () => Promise<T>): Promise<{result: T; load: KeepAliveLoad}> {
  const load = startKeepAliveLoad(t, daemon.proxyPort);
  await load.servedMore(before);
  const result = await action();
  await load.servedMore(after);
  await load.stop();
  assert.deepEqual(load.failures, []);
  return {result, load};
}

function holdsOf(samples: Sample[], outcome: string): {count: number; sumSeconds: number} {
  return {count: sumOf(samples, `rollbridge_switch_hold_duration_seconds_count`, {outcome}), sumSeconds: sumOf(samples, `rollbridge_switch_hold_duration_seconds_sum`, {outcome})};
}

test(`hold-on-switch deploys an app that cannot run twice (flock) under load with 0 failed requests and reports the hold time`, async (t) => {
  if (!requireCommands(t, [{command: `flock`, pkg: `util-linux`}])) return;
  const metricsPort = await freePort();
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {metrics: {listen: metricsPort}}, {command: `exec flock -n "${path.join(dir, `web.lock`)}" "${process.execPath}" "${WEB_APP}"`}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  // The usual overlapping deploy cannot work for this app: the new copy does not get the lock.
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`}), (error: unknown) => isRollbridgeError(error) && error.code === `ERR_PROCESS_EXITED`);
  fs.writeFileSync(daemon.configPath, JSON.stringify(lockedWeb(daemon.dir, {}, {metrics: {listen: metricsPort}})));
  const {result, load} = await underLoad(t, daemon, `v1`, `v3`, () => daemon.call(`deploy`, {releasePath: daemon.release(`v3`), releaseId: `v3`}));
  const hold = result.switchHold as {heldMs: number; drainMs: number; holdTimeoutMs: number};
  assert.equal(hold.holdTimeoutMs, 10_000);
  assert.ok(hold.heldMs > 0 && hold.heldMs < 10_000, JSON.stringify(hold));
  t.diagnostic(`hold-on-switch: requests held ${hold.heldMs} ms (drain of the previous web process ${hold.drainMs} ms); served v1 ${load.served.get(`v1`)}, v3 ${load.served.get(`v3`)}, failed ${load.failures.length}`);
  const phases = (result.phases as Array<{phase: string}>).map((entry) => entry.phase);
  assert.deepEqual(phases.filter((phase) => [`holding`, `previousStopped`, `started`, `healthy`, `switched`, `resumed`].includes(phase)), [`holding`, `previousStopped`, `started`, `healthy`, `switched`, `resumed`]);
  const status = await daemon.call(`status`);
  assert.equal(status.activeReleaseId, `v3`);
  assert.equal((status.traffic as {switchHold: boolean; mode: string}).switchHold, false);
  // The hold is in the metrics with the duration the deploy reported.
  const samples = parseExposition((await scrape(metricsPort)).body);
  assert.deepEqual(holdsOf(samples, `served`), {count: 1, sumSeconds: hold.heldMs / 1000});
  assert.deepEqual([sumOf(samples, `rollbridge_traffic_switch_hold`), sumOf(samples, `rollbridge_requests_held`)], [0, 0]);
});

test(`a hold deploy starts the new web process only once every thread of the previous one has exited: a lock held by a thread outliving its zombie main thread is free by then`, async (t) => {
  if (!requireCommands(t, [{command: `flock`, pkg: `util-linux`}, {command: `python3`, pkg: `python3`}])) return;
  // Under the lock, the web app runs as the child of a process whose main thread exits at SIGTERM while another
  // thread keeps the lock 1.5 s longer: /proc shows it as a zombie meanwhile. Node's worker threads do the same for
  // a moment after process.exit() on a loaded machine, which is how the new copy once found the lock still held.
  const daemon = await startDaemon(t, (dir) => lockedWeb(dir, {command: `exec flock -n "${path.join(dir, `web.lock`)}" python3 "${LINGERING_THREAD_APP}" 1500 "${process.execPath}" "${WEB_APP}"`}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const {result} = await underLoad(t, daemon, `v1`, `v2`, () => daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`}));
  assert.equal(result.activeReleaseId, `v2`);
  assert.ok((result.switchHold as {heldMs: number}).heldMs > 0);
});

test(`a hold deploy while the previous web process crashed and waits for its automatic restart still holds: the restart is cancelled, the previous copy never comes back beside the new one`, async (t) => {
  if (!requireCommands(t, [{command: `flock`, pkg: `util-linux`}])) return;
  const daemon = await startDaemon(t, (dir) => lockedWeb(dir, {restartDelayMs: 2_000}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  type Web = {releases: Array<{releaseId: string; processes: Array<{id: string; pid?: number; state: string}>}>};
  const web = async (releaseId: string) => ((await daemon.call(`status`)) as unknown as Web).releases.find((release) => release.releaseId === releaseId)?.processes.find((process) => process.id === `web`);
  const crashed = (await web(`v1`))?.pid;
  assert.ok(crashed !== undefined);
  process.kill(-crashed, `SIGKILL`);
  await daemon.record((record) => record.msg === `process restart scheduled` && record.id === `web`, `v1's restart to be scheduled`);
  // v2 takes 4 s to listen: without the hold, v1's restart (2 s after its crash) would come during the deploy.
  fs.writeFileSync(daemon.configPath, JSON.stringify(lockedWeb(daemon.dir, {restartDelayMs: 2_000, env: {APP_BOOT_MS: `4000`}})));
  const result = await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`});
  assert.equal(result.activeReleaseId, `v2`);
  await daemon.record((record) => record.msg === `traffic switched` && record.releaseId === `v2`, `the switch to v2`);
  const deployedAt = daemon.records.findIndex((record) => record.msg === `deploy starting` && record.releaseId === `v2`);
  const restarts = daemon.records.slice(deployedAt).filter((record) => record.msg === `process started` && record.reason === `crash`);
  assert.deepEqual(restarts, []);
  assert.ok(result.switchHold !== undefined, `the deploy held: ${JSON.stringify(result.phases)}`);
  assert.equal((await httpGet(daemon.proxyPort, `/release`)).body, `v2\n`);
});

test(`a new release that is not healthy within holdTimeoutMs is rolled back: the previous web process starts again and answers every held request`, async (t) => {
  if (!requireCommands(t, [{command: `flock`, pkg: `util-linux`}])) return;
  const metricsPort = await freePort();
  const daemon = await startDaemon(t, (dir) => lockedWeb(dir, {holdTimeoutMs: 1_500}, {metrics: {listen: metricsPort}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const load = startKeepAliveLoad(t, daemon.proxyPort);
  await load.servedMore(`v1`);
  // "bad" releases never pass their health check.
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`bad-2`), releaseId: `bad-2`}), (error: unknown) => {
    assert.ok(isRollbridgeError(error), String(error));
    assert.equal(error.code, `ERR_SWITCH_HOLD_TIMEOUT`, error.message);
    assert.match(error.message, /held \d+ ms for the switch to release bad-2, the limit processes\[0\]\.holdTimeoutMs is 1500 ms/);
    assert.match(error.fix ?? ``, /Raise processes\[0\]\.holdTimeoutMs/);
    return true;
  });
  await load.servedMore(`v1`);
  await load.stop();
  assert.deepEqual(load.failures, []);
  assert.equal(load.served.get(`bad-2`) ?? 0, 0);
  const status = await daemon.call(`status`);
  assert.equal(status.activeReleaseId, `v1`);
  assert.equal((status.traffic as {switchHold: boolean}).switchHold, false);
  const rolledBack = await daemon.record((record) => record.msg === `switch hold rolled back`, `switch hold rolled back`);
  const holds = holdsOf(parseExposition((await scrape(metricsPort)).body), `rolled_back`);
  assert.deepEqual(holds, {count: 1, sumSeconds: (rolledBack.heldMs as number) / 1000});
  assert.ok(holds.sumSeconds >= 1.5, `held at least holdTimeoutMs (${holds.sumSeconds} s)`);
});

test(`a config with switch "hold" on a process that is not proxied, or holdTimeoutMs without it, is refused with a fix`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  fs.writeFileSync(daemon.configPath, JSON.stringify({...webConfig(daemon.dir), processes: [
    ...(webConfig(daemon.dir).processes as unknown[]),
    {id: `worker`, command: `sleep 60`, switch: `hold`},
    {id: `clock`, command: `sleep 60`, holdTimeoutMs: 5_000},
  ]}));
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`}), (error: unknown) => {
    assert.ok(isRollbridgeError(error), String(error));
    assert.equal(error.code, `ERR_CONFIG_INVALID`);
    assert.match(error.message, /Process "worker" sets switch "hold" but its policy is "companion"/);
    assert.match(error.message, /Process "clock" sets holdTimeoutMs but not switch "hold"/);
    const issues = (error.details.issues as Array<{path: string; fix: string}>).map((issue) => [issue.path, issue.fix]);
    assert.deepEqual(issues, [
      [`processes[1].switch`, `Remove processes[1].switch, or set it on the process with policy "proxied"`],
      [`processes[2].holdTimeoutMs`, `Set processes[2].switch to "hold", or remove processes[2].holdTimeoutMs`],
    ]);
    return true;
  });
});

test(`restart --process web of a switch "hold" app restarts it in place with requests held: 0 failed, a new pid on the same port`, async (t) => {
  if (!requireCommands(t, [{command: `flock`, pkg: `util-linux`}])) return;
  const daemon = await startDaemon(t, (dir) => lockedWeb(dir));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  type Web = {releases: Array<{processes: Array<{id: string; pid: number; port: number}>}>};
  const web = async () => ((await daemon.call(`status`)) as unknown as Web).releases[0]!.processes.find((process) => process.id === `web`)!;
  const before = await web();
  const plan = await daemon.call(`restart`, {processId: `web`, dryRun: true});
  assert.deepEqual((plan.plan as {processes: Array<{how: string; check: string}>}).processes.map(({how, check}) => ({how, check})), [{how: `restart`, check: `health`}]);
  await underLoad(t, daemon, `v1`, `v1`, () => daemon.call(`restart`, {processId: `web`}));
  const after = await web();
  assert.notEqual(after.pid, before.pid);
  assert.equal(after.port, before.port);
  await daemon.record((record) => record.msg === `switch hold ended` && record.processId === `web`, `switch hold ended for the restart`);
});

test(`a switch "hold" web process failing its liveness checks is restarted in place with requests held: 0 failed, a new pid on the same port`, async (t) => {
  if (!requireCommands(t, [{command: `flock`, pkg: `util-linux`}])) return;
  let sickFile = ``;
  const daemon = await startDaemon(t, (dir) => {
    sickFile = path.join(dir, `sick-pid`);
    return lockedWeb(dir, {env: {APP_SICK_FILE: sickFile}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000, liveness: {intervalMs: 100, failureThreshold: 3, probeTimeoutMs: 1_000}}});
  });
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  type Web = {releases: Array<{processes: Array<{id: string; pid: number; port: number; lastStartReason?: string}>}>};
  const web = async () => ((await daemon.call(`status`)) as unknown as Web).releases[0]!.processes.find((process) => process.id === `web`)!;
  const before = await web();
  const load = startKeepAliveLoad(t, daemon.proxyPort);
  await load.servedMore(`v1`);
  // /ping of the app (flock's child) answers 503 from now on, though it still serves: its liveness checks
  // fail. A copy beside it could not start (the lock), so it must be restarted in place.
  const appPid = (await httpGet(daemon.proxyPort, `/pid`)).body.trim();
  fs.writeFileSync(sickFile, appPid);
  const restarted = await daemon.record((record) => record.msg === `process restarted` && record.reason === `liveness`, `the liveness restart`);
  assert.equal(restarted.previousPid, before.pid);
  assert.notEqual((await httpGet(daemon.proxyPort, `/pid`)).body.trim(), appPid);
  await load.servedMore(`v1`);
  await load.stop();
  assert.deepEqual(load.failures, []);
  const after = await web();
  assert.notEqual(after.pid, before.pid);
  assert.equal(after.port, before.port);
  assert.equal(after.lastStartReason, `liveness`);
  await daemon.record((record) => record.msg === `switch hold ended` && record.processId === `web`, `switch hold ended for the liveness restart`);
});
