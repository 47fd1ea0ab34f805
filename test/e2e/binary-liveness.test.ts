// Liveness checks on the built binary, as an operator sees them: `status --json` shows a passing check,
// a web process whose /ping turns 503 after the switch is replaced while requests keep being answered,
// and `events --json` holds `liveness failed` and `process replaced` with the evidence.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {test} from 'node:test';
import {WEB_APP} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {loadSwitch} from '../helpers/load-switch.ts';
import {assertMatchesSchema} from '../helpers/json-schemas.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {ensureBinaryDaemon, runBinary as run} from './binary-run.ts';

type WebView = {id: string; pid: number; lastStartReason?: string; liveness?: {state: string; consecutiveFailures: number; lastError?: string; restarts: number}};
type Status = {releases: Array<{processes: WebView[]}>};

async function web(dir: string): Promise<WebView | undefined> {
  const status = await run([`status`, `--json`], dir);
  assert.equal(status.code, 0, status.stderr);
  const document = JSON.parse(status.stdout) as Status;
  assertMatchesSchema(`status.schema.json`, document, `status --json`);
  return document.releases[0]?.processes.find((process) => process.id === `web`);
}

test(`the binary replaces a web process failing its liveness checks; status --json and events --json show it`, async (t) => {
  const dir = createTempDir(t, `rb-live-`);
  fs.mkdirSync(path.join(dir, `releases`, `v1`), {recursive: true});
  const sickFile = path.join(dir, `sick-pid`);
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({
    application: `liveness-e2e`,
    control: {path: path.join(dir, `control.sock`)},
    logs: {dir: path.join(dir, `logs`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 1_000, forceStopTimeoutMs: 2_000},
    processes: [{id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, env: {APP_SICK_FILE: sickFile},
      health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000, liveness: {intervalMs: 100, failureThreshold: 3}}}],
  }, null, 2));
  await ensureBinaryDaemon(dir);
  const deployed = await run([`deploy`, `--release-path`, `releases/v1`, `--release-id`, `v1`, `--json`], dir);
  assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
  const proxyPort = (JSON.parse((await run([`status`, `--json`], dir)).stdout) as {proxy: {port: number}}).proxy.port;
  assert.ok(proxyPort > 0);

  const passing = await waitFor(async () => {
    const view = await web(dir);
    return view?.liveness?.state === `passing` ? view : null;
  }, {what: `a passing liveness check in status --json`});

  const agent = new http.Agent({keepAlive: true, maxSockets: 4});
  t.after(() => agent.destroy());
  const load = loadSwitch(t);
  let failures = 0;
  let lastPid = ``;
  const clients = Array.from({length: 4}, async () => {
    while (load.on()) {
      try {
        const result = await httpGet(proxyPort, `/pid`, {agent});
        if (result.status === 200) lastPid = result.body.trim();
        else failures += 1;
      } catch {
        failures += 1;
      }
    }
  });
  fs.writeFileSync(sickFile, String(passing.pid));
  await waitFor(() => lastPid !== `` && lastPid !== String(passing.pid), {what: `the replacement web process to serve`, timeoutMs: 20_000});
  load.stop();
  await Promise.all(clients);
  assert.equal(failures, 0);

  const replaced = await waitFor(async () => {
    const view = await web(dir);
    return view && view.pid !== passing.pid ? view : null;
  }, {what: `the replacement in status --json`});
  assert.equal(replaced.lastStartReason, `liveness`);
  assert.equal(replaced.liveness?.restarts, 1);
  const events = await run([`events`, `--json`], dir);
  assert.equal(events.code, 0, events.stderr);
  const list = JSON.parse(events.stdout) as Array<{message: string; data: Record<string, unknown>}>;
  assertMatchesSchema(`events.schema.json`, list, `events --json`);
  const failed = list.find((event) => event.message === `liveness failed`);
  assert.equal(failed?.data.lastError, `HTTP 503`);
  assert.equal(failed?.data.pid, passing.pid);
  const replacement = list.find((event) => event.message === `process replaced` && event.data.reason === `liveness`);
  assert.equal(replacement?.data.previousPid, passing.pid);
  assert.equal(replacement?.data.pid, replaced.pid);
});

