import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import test from 'node:test';
import type {TestContext} from 'node:test';
import {RollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {loadSwitch} from '../helpers/load-switch.ts';
import {waitFor} from '../helpers/wait-for.ts';

/** Keep-alive load through the proxy (ends with stop(), the test or after 120 s); tallies answers per release. */
function load(t: TestContext, port: number, agent: http.Agent) {
  const load = loadSwitch(t);
  const failures: string[] = [];
  const served = new Map<string, number>();
  const clients = Array.from({length: 8}, async () => {
    while (load.on()) {
      try {
        const result = await httpGet(port, `/`, {agent});
        if (result.status === 200) served.set(result.body.trim(), (served.get(result.body.trim()) ?? 0) + 1);
        else failures.push(`HTTP ${result.status}`);
      } catch (error) {
        failures.push(String(error));
      }
    }
  });
  return {
    served,
    stop: async () => {
      load.stop();
      await Promise.all(clients);
      return failures;
    },
  };
}

test(`deploy --skip-health-check waits for a slow-to-listen app's port before the switch: no request fails under load`, async (t) => {
  // The app listens 1.5 s after it starts; its health check would pass at once after that.
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {env: {APP_BOOT_MS: `1500`, APP_SHUTDOWN: `immediate`}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const agent = new http.Agent({keepAlive: true, maxSockets: 8});
  t.after(() => agent.destroy());
  const traffic = load(t, daemon.proxyPort, agent);
  await waitFor(() => (traffic.served.get(`v1`) ?? 0) > 20, {what: `traffic on v1`});

  const result = await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`, skipHealthCheck: true});
  assert.equal(result.activeReleaseId, `v2`);
  assert.deepEqual((result.phases as Array<{phase: string}>).map((phase) => phase.phase).filter((phase) => phase === `listening` || phase === `healthy`), [`listening`]);
  await waitFor(() => (traffic.served.get(`v2`) ?? 0) > 50, {what: `50 answers from v2`});
  assert.deepEqual(await traffic.stop(), []);
  await daemon.record((record) => record.msg === `health check skipped` && record.level === `warn`, `the "health check skipped" warning`);
});

test(`without a health check, a web process that never listens fails the deploy with ERR_PROCESS_NOT_LISTENING; the previous release keeps serving`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {health: {path: `/ping`, intervalMs: 20, timeoutMs: 1_000}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  // The same app, told to listen an hour from now.
  const config = JSON.parse(fs.readFileSync(daemon.configPath, `utf8`)) as {processes: Array<Record<string, unknown>>};
  config.processes[0]!.env = {APP_BOOT_MS: `3600000`};
  fs.writeFileSync(daemon.configPath, JSON.stringify(config));

  const error = await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`, skipHealthCheck: true}).then(() => null, (caught: unknown) => caught as RollbridgeError);
  assert.ok(error instanceof RollbridgeError);
  assert.equal(error.code, `ERR_PROCESS_NOT_LISTENING`);
  assert.match(error.message, /^Process "web" of release v2 did not accept connections on 127\.0\.0\.1:\d+ within 1000 ms \(connect ECONNREFUSED 127\.0\.0\.1:\d+\); its health check is skipped/);
  assert.match(error.fix ?? ``, /^Make processes\[0\]\.command listen on its port .* or raise processes\[0\]\.health\.timeoutMs/);
  assert.equal((await daemon.call(`status`)).activeReleaseId, `v1`);
  assert.equal((await httpGet(daemon.proxyPort, `/release`)).body.trim(), `v1`);
});
