// sd_notify readiness on the built binary: the notify helper embedded in it binds NOTIFY_SOCKET, a Python
// app's READY=1 lets `rollbridge deploy` switch, and a release that never says READY=1 fails the CLI with
// ERR_HEALTH_NOTIFY_TIMEOUT and the app's last output lines while the previous release keeps serving.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {REPO_ROOT} from '../helpers/run-cli.ts';
import {requireCommands} from '../helpers/system-packages.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {ensureBinaryDaemon, runBinary as run} from './binary-run.ts';

const NOTIFY_APP = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `notify-app.py`);

test(`the binary waits for READY=1 of a notify app, and a release without it fails with ERR_HEALTH_NOTIFY_TIMEOUT and its output`, async (t) => {
  if (!requireCommands(t, [{command: `python3`, pkg: `python3`}])) return;
  const dir = createTempDir(t, `rb-notify-`);
  for (const name of [`good`, `silent`]) fs.mkdirSync(path.join(dir, `releases`, name), {recursive: true});
  fs.writeFileSync(path.join(dir, `releases`, `good`, `ready-flag`), ``);
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({
    application: `notify-e2e`,
    control: {path: path.join(dir, `control.sock`)},
    logs: {dir: path.join(dir, `logs`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 500, forceStopTimeoutMs: 2_000},
    processes: [{id: `web`, command: `exec python3 "${NOTIFY_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, env: {APP_READY_FLAG: `ready-flag`}, health: {type: `notify`, timeoutMs: 1_500}}],
  }, null, 2));
  await ensureBinaryDaemon(dir);

  const deployed = await run([`deploy`, `--release-path`, `releases/good`, `--release-id`, `good`, `--json`], dir);
  assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
  const status = JSON.parse((await run([`status`, `--json`], dir)).stdout) as {proxy?: {port?: number}; releases: Array<{processes: Array<{id: string; notify?: {ready: boolean; status?: string}}>}>};
  assert.deepEqual(status.releases[0]?.processes[0]?.notify, {ready: true, status: `serving`, mainPid: (status.releases[0]?.processes[0] as {pid?: number}).pid});

  const failed = await run([`deploy`, `--release-path`, `releases/silent`, `--release-id`, `silent`], dir, `human`);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /ERR_HEALTH_NOTIFY_TIMEOUT/);
  assert.match(failed.stderr, /did not send READY=1 on its NOTIFY_SOCKET within 1500 ms; its last STATUS= was "waiting for ready-flag"/);
  assert.match(failed.stderr, /notify app serving, not ready yet/, `the app's last output lines are shown`);
  assert.match(failed.stderr, /processes\[0\]\.health\.timeoutMs/);
  const after = JSON.parse((await run([`status`, `--json`], dir)).stdout) as {activeReleaseId: string};
  assert.equal(after.activeReleaseId, `good`);
});
