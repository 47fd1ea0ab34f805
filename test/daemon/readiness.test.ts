import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {startDaemon, webConfig, WEB_APP} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {freePort} from '../helpers/ports.ts';


// Connects once to ROLLBRIDGE_DB_PORT as soon as it starts and writes what happened: no retry loop.
const CONNECT_ONCE = `const s = require('net').connect(Number(process.env.ROLLBRIDGE_DB_PORT), '127.0.0.1');
s.on('connect', () => { require('fs').writeFileSync(process.env.OUT, 'connected'); s.destroy(); });
s.on('error', (e) => require('fs').writeFileSync(process.env.OUT, e.code));
setInterval(() => {}, 1000);`;

test(`dependsOn starts a process only once its dependency passes its readiness check (no wait-for-it)`, async (t) => {
  const dbPort = await freePort();
  let out = ``;
  const daemon = await startDaemon(t, (dir) => {
    out = path.join(dir, `connect.out`);
    fs.writeFileSync(path.join(dir, `connect-once.cjs`), CONNECT_ONCE);
    return webConfig(dir, {processes: [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20}, dependsOn: [`db`, `consumer`]},
      {id: `consumer`, command: `exec "${process.execPath}" "${path.join(dir, `connect-once.cjs`)}"`, policy: `companion`, env: {OUT: out}, dependsOn: [`db`]},
      // The "database" needs 400 ms before it accepts connections.
      {id: `db`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `service`, port: dbPort, env: {APP_BOOT_MS: `400`}, readiness: {tcp: true, timeoutMs: 5_000}},
    ]});
  });
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  // The consumer writes its one attempt's outcome once Node has booted.
  await waitFor(() => fs.existsSync(out), {what: `the consumer's connection attempt`});
  assert.equal(fs.readFileSync(out, `utf8`), `connected`);
  await daemon.record((record) => record.msg === `process ready` && record.processId === `db`, `process ready`);
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
});

test(`a readiness check that never passes fails the deploy with ERR_READINESS_FAILED and the previous release keeps serving`, async (t) => {
  let configPath = ``;
  const daemon = await startDaemon(t, (dir) => {
    configPath = path.join(dir, `rollbridge.json`);
    return webConfig(dir, {processes: [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20}},
      {id: `worker`, command: `exec sleep 300`, policy: `companion`, readiness: {command: `test -f ready-flag`, timeoutMs: 300}},
    ]});
  });
  fs.writeFileSync(path.join(daemon.release(`v1`), `ready-flag`), ``);
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`}), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_READINESS_FAILED`);
    assert.match(error.message, /Process "worker" did not become ready \(command "test -f ready-flag"\) within 300 ms after \d+ attempts: command exited with 1/);
    assert.match(String(error.fix), /processes\[1\]\.readiness/);
    return true;
  });
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
  assert.ok(configPath);
});

test(`an http readiness check probes the process's own port`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {processes: [
    {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20}},
    {id: `api`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `companion`, port: {from: 0, to: 0}, env: {APP_BOOT_MS: `200`}, readiness: {http: `/ping`, timeoutMs: 5_000}},
  ]}));
  const result = await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  assert.equal(result.activeReleaseId, `v1`);
  await daemon.record((record) => record.msg === `process ready` && record.processId === `api`, `process ready`);
});

test(`a readiness command that outlives its probe timeout is stopped with everything it started (no orphaned grandchild)`, async (t) => {
  let pidFile = ``;
  const daemon = await startDaemon(t, (dir) => {
    pidFile = path.join(dir, `grandchild.pid`);
    return webConfig(dir, {processes: [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20}},
      // The check starts a long sleep in the background and waits for it: each probe times out.
      {id: `worker`, command: `exec sleep 300`, policy: `companion`, readiness: {command: `sleep 300 & echo $! >> "${pidFile}"; wait`, probeTimeoutMs: 200, timeoutMs: 700}},
    ]});
  });
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`}), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_READINESS_FAILED`);
    assert.match(error.message, /command timed out after \d+ ms/);
    return true;
  });
  const pids = fs.readFileSync(pidFile, `utf8`).trim().split(`\n`).map(Number);
  assert.ok(pids.length >= 1 && pids.every((pid) => Number.isInteger(pid) && pid > 0), `the checks wrote their sleep's pid: ${pids.join(`, `)}`);
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return !fs.readFileSync(`/proc/${pid}/stat`, `utf8`).includes(`) Z `);
    } catch {
      return false;
    }
  };
  t.after(() => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, `SIGKILL`);
  });
  await waitFor(() => pids.every((pid) => !alive(pid)), {what: `every background sleep started by the timed-out checks to be gone`});
});
