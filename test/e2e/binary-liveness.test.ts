// Liveness checks on the built binary, as an operator sees them: `status --json` shows a passing check,
// a web process whose /ping turns 503 after the switch is replaced while requests keep being answered,
// `events --json` holds `liveness failed` and `process replaced` with the evidence, /metrics counts the
// failed probes and the restart, and `status` on a terminal marks a failing process and says why.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {test} from 'node:test';
import {WEB_APP} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {freePort} from '../helpers/ports.ts';
import {parseExposition, scrape, sumOf} from '../helpers/prometheus-text.ts';
import {loadSwitch} from '../helpers/load-switch.ts';
import {assertMatchesSchema} from '../helpers/json-schemas.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {ensureBinaryDaemon, runBinary as run} from './binary-run.ts';

type WebView = {id: string; state: string; pid?: number; lastStartReason?: string; liveness?: {state: string; consecutiveFailures: number; lastError?: string; restarts: number}};
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
  const metricsPort = await freePort();
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({
    application: `liveness-e2e`,
    metrics: {listen: metricsPort},
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
    return view && view.state === `running` && view.pid !== undefined && view.pid !== passing.pid && view.liveness !== undefined ? view : null;
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

  // The restart and the failed probes, on a terminal and in /metrics.
  const human = await run([`status`], dir, `human`);
  assert.ok(human.stdout.split(`\n`).some((row) => /^v1 \(active\)\s+web\s+running\s.*\s0 \(1 liveness\)\s/.test(row)), human.stdout);
  const samples = parseExposition((await scrape(metricsPort)).body);
  assert.equal(sumOf(samples, `rollbridge_process_restarts_total`, {process: `web`, reason: `liveness`}), 1);
  // failureThreshold probes failed in a row (more only if a probe of the replacement failed too).
  assert.ok(sumOf(samples, `rollbridge_liveness_check_failures_total`, {process: `web`}) >= 3, JSON.stringify(samples.filter((sample) => sample.name.includes(`liveness`))));

  // The replacement fails too: the instance's count goes on (2), it does not start over.
  fs.writeFileSync(sickFile, String(replaced.pid));
  const second = await waitFor(async () => {
    const view = await web(dir);
    // Running (pid known, restart counted) and its liveness check registered.
    return view && view.state === `running` && view.pid !== undefined && view.pid !== replaced.pid && view.pid !== passing.pid && view.liveness !== undefined ? view : null;
  }, {what: `the second replacement in status --json`, timeoutMs: 20_000});
  assert.equal(second.liveness?.restarts, 2);
  const again = await run([`status`], dir, `human`);
  assert.ok(again.stdout.split(`\n`).some((row) => /^v1 \(active\)\s+web\s+running\s.*\s0 \(2 liveness\)\s/.test(row)), again.stdout);
  assert.equal(sumOf(parseExposition((await scrape(metricsPort)).body), `rollbridge_process_restarts_total`, {process: `web`, reason: `liveness`}), 2);
});

test(`status on a terminal marks a process failing its liveness checks and shows the last error under the table`, async (t) => {
  const dir = createTempDir(t, `rb-live-tty-`);
  fs.mkdirSync(path.join(dir, `releases`, `v1`), {recursive: true});
  const sickFile = path.join(dir, `worker-sick`);
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({
    application: `liveness-tty-e2e`,
    control: {path: path.join(dir, `control.sock`)},
    logs: {dir: path.join(dir, `logs`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 1_000, forceStopTimeoutMs: 2_000},
    processes: [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000}},
      // Fails while the file exists; the threshold is far enough that the failing state stays to be seen.
      {id: `worker`, command: `exec sleep 600`, readiness: {command: `test ! -e "${sickFile}" || { printf 'queue stalled \\033[31mred\\n' >&2; exit 1; }`, intervalMs: 20, liveness: {intervalMs: 50, failureThreshold: 100_000}}},
    ],
  }, null, 2));
  await ensureBinaryDaemon(dir);
  const deployed = await run([`deploy`, `--release-path`, `releases/v1`, `--release-id`, `v1`, `--json`], dir);
  assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
  const workerOf = async () => (JSON.parse((await run([`status`, `--json`], dir)).stdout) as Status).releases[0]?.processes.find((process) => process.id === `worker`);
  await waitFor(async () => (await workerOf())?.liveness?.state === `passing`, {what: `a passing liveness check of worker`});

  fs.writeFileSync(sickFile, ``);
  await waitFor(async () => ((await workerOf())?.liveness?.consecutiveFailures ?? 0) >= 2, {what: `two failed liveness probes of worker`});
  const human = await run([`status`], dir, `human`);
  assert.equal(human.code, 0, human.stderr);
  const row = human.stdout.split(`\n`).find((line) => /^v1 \(active\)\s+worker\s/.test(line)) ?? ``;
  assert.match(row, /\srunning \(liveness \d+\/100000 failed\)\s/, human.stdout);
  const note = human.stdout.split(`\n`).find((line) => line.startsWith(`worker (v1 (active)): liveness check failed `)) ?? ``;
  assert.match(note, /failed \d+ of 100000 times in a row: .*queue stalled/, human.stdout);
  // The process's own output reaches the terminal without its escape sequence.
  assert.ok(!human.stdout.includes(`\x1b[31m`), JSON.stringify(human.stdout));

  fs.rmSync(sickFile);
  await waitFor(async () => (await workerOf())?.liveness?.state === `passing`, {what: `worker's liveness check passing again`});
  const healed = await run([`status`], dir, `human`);
  assert.match(healed.stdout.split(`\n`).find((line) => /^v1 \(active\)\s+worker\s/.test(line)) ?? ``, /\srunning\s+\d+\s/, healed.stdout);
  assert.ok(!healed.stdout.includes(`liveness check failed`), healed.stdout);
});
