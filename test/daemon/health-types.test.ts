import assert from 'node:assert/strict';
import fs from 'node:fs';
import test from 'node:test';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';

// The proxied process's health check by `health.type`: tcp (its port accepts a connection) and command
// (a shell command in its directory and environment exits 0). http is covered by deploy.test.ts.

const PING_COMMAND = `"${process.execPath}" -e "fetch('http://127.0.0.1:' + process.env.ROLLBRIDGE_PORT + '/ping').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"`;

test(`health type tcp: a web process is switched to once its port accepts connections`, async (t) => {
  // The app listens only after 400 ms.
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {env: {APP_BOOT_MS: `400`}, health: {type: `tcp`, intervalMs: 20, timeoutMs: 5_000}}));
  const result = await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  assert.equal(result.releaseId, `v1`);
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
});

test(`health type tcp: a web process that never listens fails the deploy with ERR_HEALTH_CHECK_FAILED and its output; the previous release keeps serving`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {health: {type: `tcp`, intervalMs: 20, timeoutMs: 5_000}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const config = webConfig(daemon.dir, {}, {command: `echo booting without a port; exec sleep 300`, health: {type: `tcp`, intervalMs: 20, timeoutMs: 400}});
  fs.writeFileSync(daemon.configPath, JSON.stringify(config));
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`}), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_HEALTH_CHECK_FAILED`);
    assert.match(error.message, /Process "web" did not become healthy \(TCP 127\.0\.0\.1:\d+\) within 400 ms after \d+ attempts: connect ECONNREFUSED 127\.0\.0\.1:\d+/);
    assert.match(String(error.fix), /processes\[0\]\.health/);
    assert.deepEqual(error.details.output, [`booting without a port`]);
    return true;
  });
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
});

test(`health type command: the command runs with the process's environment (ROLLBRIDGE_PORT) and its exit status decides`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {env: {APP_BOOT_MS: `300`}, health: {type: `command`, command: PING_COMMAND, intervalMs: 50, timeoutMs: 10_000}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
  const failing = webConfig(daemon.dir, {}, {health: {type: `command`, command: `echo not ready yet >&2; exit 3`, intervalMs: 20, timeoutMs: 300}});
  fs.writeFileSync(daemon.configPath, JSON.stringify(failing));
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`}), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_HEALTH_CHECK_FAILED`);
    assert.match(error.message, /did not become healthy \(command "echo not ready yet >&2; exit 3"\) within 300 ms after \d+ attempts: command exited with 3: not ready yet/);
    return true;
  });
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
});
