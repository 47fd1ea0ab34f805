import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import test from 'node:test';
import {ControlClient} from '../../src/control/client.ts';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {WEB_APP, startDaemon, webConfig} from '../helpers/daemon.ts';
import {TestWebSocket, httpGet} from '../helpers/http.ts';
import {loadSwitch} from '../helpers/load-switch.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {freePort} from '../helpers/ports.ts';

type ReleaseView = {releaseId: string; state: string; ports: Record<string, number>; processes: Array<{id: string; pid?: number; state: string}>};

async function expectError(promise: Promise<unknown>, code: string): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isRollbridgeError(error), `expected a RollbridgeError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return {message: error.message, fix: error.fix, details: error.details};
  }
  assert.fail(`expected ${code}`);
}

test(`deploy switches new traffic to the new release and stops the drained previous one`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  assert.equal((await httpGet(daemon.proxyPort)).status, 503);

  const first = await daemon.call(`deploy`, {releasePath: daemon.release(`one`), releaseId: `one`});
  assert.equal(first.activeReleaseId, `one`);
  assert.equal(first.previousReleaseId, null);
  assert.equal((await httpGet(daemon.proxyPort)).body, `one\n`);

  const second = await daemon.call(`deploy`, {releasePath: daemon.release(`two`), releaseId: `two`});
  assert.deepEqual([second.activeReleaseId, second.previousReleaseId], [`two`, `one`]);
  assert.equal((await httpGet(daemon.proxyPort)).body, `two\n`);

  const status = await waitFor(async () => {
    const current = await daemon.call(`status`);
    const releases = current.releases as ReleaseView[];
    return releases.find((release) => release.releaseId === `one`)?.state === `stopped` ? current : null;
  }, {what: `release one to be stopped after its drain`});
  const releases = status.releases as ReleaseView[];
  const oldWeb = releases.find((release) => release.releaseId === `one`)?.processes[0];
  assert.equal(oldWeb?.state, `stopped`);
  assert.equal(releases.find((release) => release.releaseId === `two`)?.state, `active`);
  for (const expected of [`deploy starting`, `traffic switched`, `release drained`]) await daemon.record((record) => record.msg === expected, expected);
});

test(`a failed health check leaves the previous release active and serving`, async (t) => {
  // The bad release listens and answers 503 until the timeout: long enough for it to boot on a loaded machine.
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {health: {path: `/ping`, intervalMs: 20, timeoutMs: 3_000}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`good`), releaseId: `good`});
  const failure = await expectError(daemon.call(`deploy`, {releasePath: daemon.release(`bad`), releaseId: `bad-1`}), `ERR_HEALTH_CHECK_FAILED`);
  assert.match(String(failure.message), /Health check failed for http:\/\/127\.0\.0\.1:\d+\/ping/);
  assert.match(String(failure.message), /HTTP 503/);
  assert.ok(failure.fix);
  assert.equal((await httpGet(daemon.proxyPort)).body, `good\n`);
  const status = await daemon.call(`status`);
  assert.equal(status.activeReleaseId, `good`);
  assert.deepEqual((status.releases as ReleaseView[]).map((release) => release.releaseId), [`good`]);
});

test(`a web process that exits before it is healthy fails the deploy at once with its output`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {command: `echo "boot failed: missing DATABASE_URL" >&2; exit 3`}));
  const failure = await expectError(daemon.call(`deploy`, {releasePath: daemon.release(`r1`), releaseId: `r1`}), `ERR_PROCESS_EXITED`);
  assert.match(String(failure.message), /exited \(code 3\) before it became healthy/);
  assert.deepEqual((failure.details as {output: string[]}).output, [`boot failed: missing DATABASE_URL`]);
  assert.equal((await httpGet(daemon.proxyPort)).status, 503);
});

test(`deploys are serialized and --no-wait fails fast while one runs`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {env: {APP_BOOT_MS: `300`}}));
  const a = daemon.call(`deploy`, {releasePath: daemon.release(`a`), releaseId: `a`});
  await waitFor(async () => ((await daemon.call(`status`)).daemon as {deploying: string | null}).deploying, {what: `deploy a to start`});
  const busy = expectError(daemon.call(`deploy`, {releasePath: daemon.release(`x`), releaseId: `x`, wait: false}), `ERR_DAEMON_BUSY`);
  const b = daemon.call(`deploy`, {releasePath: daemon.release(`b`), releaseId: `b`});
  const [resultA, resultB] = await Promise.all([a, b, busy]);
  assert.deepEqual([resultA.activeReleaseId, resultA.previousReleaseId], [`a`, null]);
  assert.deepEqual([resultB.activeReleaseId, resultB.previousReleaseId], [`b`, `a`]);
  assert.equal((await httpGet(daemon.proxyPort)).body, `b\n`);
});

test(`a config written for rollbridge 0.1 (proxied web, companion worker, fixed-port service, singleton) deploys twice unchanged`, async (t) => {
  const fixtures = path.resolve(import.meta.dirname, `..`, `fixtures`, `apps`);
  const servicePort = await freePort();
  const daemon = await startDaemon(t, (dir) => ({
    application: `legacy-topology`,
    control: {path: path.join(dir, `control.sock`)},
    proxy: {port: 0, drainTimeoutMs: 1_000, forceStopTimeoutMs: 2_000},
    processes: [
      {id: `beacon`, command: `"${process.execPath}" "${path.join(fixtures, `web-app.cjs`)}"`, policy: `service`, port: servicePort},
      {id: `worker`, command: `exec sleep 300`, policy: `companion`},
      {id: `scheduler`, command: `exec sleep 300`, policy: `singleton`},
      {id: `web`, command: `"${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, env: {BEACON_URL: `http://127.0.0.1:{{ports.beacon}}`}},
    ],
  }));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const first = await daemon.call(`status`);
  const servicePid = (first.services as Array<{id: string; process: {pid: number}}>)[0]?.process.pid;
  const singletonPid = (first.singletons as Array<{id: string; process: {pid: number}}>)[0]?.process.pid;
  assert.ok(servicePid && singletonPid);
  // Services have no readiness check (as in 0.1): only their spawn is awaited, so poll until it listens.
  await waitFor(async () => (await httpGet(servicePort, `/ping`)).status === 200, {what: `the beacon service to listen`});

  await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`});
  const second = await daemon.call(`status`);
  const service = (second.services as Array<{id: string; port: number; process: {pid: number; state: string}}>)[0];
  assert.equal(service?.process.pid, servicePid, `the service keeps its pid across deploys`);
  assert.equal(service?.port, servicePort);
  const singleton = (second.singletons as Array<{id: string; releaseId: string; process: {pid: number; state: string}}>)[0];
  assert.notEqual(singleton?.process.pid, singletonPid);
  assert.equal(singleton?.releaseId, `v2`);
  assert.equal(isPidAlive(singletonPid), false, `the old singleton stopped before the new one started`);
  const active = (second.releases as ReleaseView[]).find((release) => release.releaseId === `v2`);
  assert.deepEqual(active?.processes.map((process) => process.id), [`worker`, `web`]);
  assert.equal(active?.ports.beacon, servicePort);
  assert.equal((await httpGet(daemon.proxyPort)).body, `v2\n`);
});

test(`a singleton that cannot start after the switch switches traffic back to the previous release`, async (t) => {
  let configPath = ``;
  const daemon = await startDaemon(t, (dir) => {
    configPath = path.join(dir, `rollbridge.json`);
    return webConfig(dir, {processes: [
      {id: `web`, command: `"${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20}},
      {id: `cron`, command: `exec sleep 300`, policy: `singleton`},
    ]});
  });
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const config = JSON.parse(fs.readFileSync(configPath, `utf8`)) as {processes: Array<Record<string, unknown>>};
  (config.processes[1] as Record<string, unknown>).cwd = `does-not-exist`;
  fs.writeFileSync(configPath, JSON.stringify(config));
  const failure = await expectError(daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`}), `ERR_SINGLETON_START_FAILED`);
  assert.match(String(failure.message), /Singleton "cron"/);
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
  const status = await daemon.call(`status`);
  assert.equal(status.activeReleaseId, `v1`);
  const states = (status.releases as ReleaseView[]).map((release) => `${release.releaseId}:${release.state}`);
  assert.ok(states.includes(`v1:active`));
  assert.equal(states.filter((state) => state.endsWith(`:active`)).length, 1, `never two active releases`);
  const singleton = (status.singletons as Array<{process: {state: string}}>)[0];
  assert.equal(singleton?.process.state, `running`, `the previous singleton runs again`);
});

test(`a reloaded config that changes the proxy port is refused and the running release keeps serving`, async (t) => {
  let configPath = ``;
  const daemon = await startDaemon(t, (dir) => {
    configPath = path.join(dir, `rollbridge.json`);
    return webConfig(dir);
  });
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const config = JSON.parse(fs.readFileSync(configPath, `utf8`)) as {proxy: Record<string, unknown>};
  config.proxy.port = 1;
  fs.writeFileSync(configPath, JSON.stringify(config));
  const failure = await expectError(daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`}), `ERR_CONFIG_LIVE_RELOAD`);
  assert.match(String(failure.message), /proxy\.port/);
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
});

test(`a WebSocket opened before a deploy stays on the old release until the drain deadline, then gets 1001`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 400, wsCloseJitterMs: 100, forceStopTimeoutMs: 2_000}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const ws = await TestWebSocket.connect(daemon.proxyPort);
  t.after(() => ws.close());
  assert.equal(await ws.roundTrip(`hello`), `v1:hello`);
  await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`});
  assert.equal(await ws.roundTrip(`still there`), `v1:still there`, `the open WebSocket stays on v1 after the switch`);
  const fresh = await TestWebSocket.connect(daemon.proxyPort);
  t.after(() => fresh.close());
  assert.equal(await fresh.roundTrip(`new`), `v2:new`);
  await ws.closed;
  assert.equal(ws.closeCode, 1001);
});

test(`keep-alive clients see no failed request across back-to-back deploys`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {env: {APP_SHUTDOWN: `immediate`}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`r0`), releaseId: `r0`});
  const agent = new http.Agent({keepAlive: true, maxSockets: 4});
  t.after(() => agent.destroy());
  const load = loadSwitch(t);
  let failures = 0;
  let responses = 0;
  const clients = Array.from({length: 4}, async () => {
    while (load.on()) {
      try {
        const result = await httpGet(daemon.proxyPort, `/`, {agent});
        if (result.status === 200) responses += 1;
        else failures += 1;
      } catch {
        failures += 1;
      }
    }
  });
  for (let index = 1; index <= 3; index++) {
    await daemon.call(`deploy`, {releasePath: daemon.release(`r${index}`), releaseId: `r${index}`});
  }
  const target = responses + 50;
  await waitFor(() => responses >= target, {what: `requests after the last deploy`});
  load.stop();
  await Promise.all(clients);
  assert.equal(failures, 0);
  assert.ok(responses > 0);
});

test(`shutdown stops every managed process, removes the socket and lets a new daemon bind at once`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const status = await daemon.call(`status`);
  const pid = (status.releases as ReleaseView[])[0]?.processes[0]?.pid;
  assert.ok(pid);
  const reply = await daemon.call(`shutdown`);
  assert.equal(reply.message, `shutdown`);
  assert.equal(isPidAlive(pid), false);
  assert.equal(fs.existsSync(daemon.socketPath), false);
  await new Promise<void>((resolve) => (daemon.child.exitCode !== null ? resolve() : daemon.child.once(`exit`, () => resolve())));
  assert.equal(daemon.child.exitCode, 0);
  await expectError(ControlClient.connect(daemon.socketPath), `ERR_DAEMON_UNREACHABLE`);
});

test(`the control socket is created with mode 0600 by default`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  assert.equal(fs.statSync(daemon.socketPath).mode & 0o777, 0o600);
});

