// What an operator reads, on the built binary (issue 13 items 2, 11 and 12): `logs` with failed releases,
// --release, --since and the merged view; `status` with the current releases only, RSS, CPU, memory
// restarts and adopted processes; `events --follow` ending with 0; `legacy-takeover` printing JSON when
// piped; `doctor` naming who holds the proxy port.
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {WEB_APP} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {assertMatchesSchema} from '../helpers/json-schemas.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {beforeRemoving, createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {getBinaryPath} from './binary-path.ts';
import {runBinary as run} from './binary-run.ts';
import type {BinaryRun} from './binary-run.ts';

type Run = BinaryRun;
type Json = Record<string, unknown>;
type LogSource = {id: string; source: string; releaseId?: string; failure?: string; logs: Array<{at: string; stream: string; line: string}>};
type ProcessView = {id: string; state: string; rssBytes?: number; cpuPercent?: number; cpuWindowMs?: number; memoryRestarts: number; adopted?: boolean};
type StatusView = {daemon: {pid: number}; proxy: {port: number}; releases: Array<{releaseId: string; state: string; processes: ProcessView[]}>};

const BINARY = getBinaryPath();
const GOOD_WEB = `exec "${process.execPath}" "${WEB_APP}"`;

function parse<T>(result: Run, schema: string | null, exitCode = 0): T {
  assert.equal(result.code, exitCode, result.stderr + result.stdout);
  const document = JSON.parse(result.stdout) as unknown;
  if (schema !== null) assertMatchesSchema(schema, document);
  return document as T;
}

function writeConfig(dir: string, web: Json, extra: Json = {}): void {
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({
    application: `views`,
    control: {path: path.join(dir, `control.sock`)},
    logs: {dir: path.join(dir, `logs`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 300, forceStopTimeoutMs: 2_000},
    processes: [{id: `web`, command: GOOD_WEB, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000}, ...web}],
    ...extra,
  }, null, 2));
}

/** A project whose daemon is started (and shut down before the directory goes) with release directories r1…r4. */
async function project(t: TestContext, web: Json = {}, extra: Json = {}): Promise<string> {
  const dir = createTempDir(t, `rb-view-`);
  for (const name of [`r1`, `r2`, `r3`, `r4`]) fs.mkdirSync(path.join(dir, `releases`, name), {recursive: true});
  writeConfig(dir, web, extra);
  const launch = [`--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)];
  const started = await run([`ensure-daemon`, `--json`, ...launch], dir);
  assert.equal(started.code, 0, started.stderr + started.stdout);
  beforeRemoving(dir, async () => {
    // `ensure-daemon --replace` may have started a successor: the pid file names the current daemon.
    const pid = Number(fs.readFileSync(path.join(dir, `daemon.pid`), `utf8`));
    if (!isPidAlive(pid)) return;
    await run([`shutdown`], dir);
    await waitFor(() => !isPidAlive(pid), {what: `the daemon ${pid} to exit`});
  });
  return dir;
}

async function deploy(dir: string, releaseId: string, release = releaseId): Promise<Run> {
  return run([`deploy`, `--release-path`, `releases/${release}`, `--release-id`, releaseId], dir);
}

/** web (`command`) and a companion `queue` whose readiness command is `ready` (each deploy reads the config anew). */
function withQueue(web: Json, ready: string): Json {
  return {processes: [
    {id: `web`, command: GOOD_WEB, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000}, ...web},
    {id: `queue`, command: `echo "queue: waiting for redis"; exec sleep 300`, policy: `companion`, readiness: {command: ready, timeoutMs: 300}},
  ]};
}

test(`logs shows a failed deploy's output: by default beside the active release, with --release alone, --since filters by time`, async (t) => {
  const dir = await project(t, {}, withQueue({}, `exit 0`));
  assert.equal((await deploy(dir, `r1`)).code, 0);
  writeConfig(dir, {}, withQueue({command: `echo "connecting to the database"; echo "boot failed: DATABASE_URL is not set" >&2; exit 3`}, `exit 0`));
  const failed = await run([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2`, `--json`], dir);
  const {error} = parse<{error: {code: string; fix: string}}>(failed, null, 1);
  assert.equal(error.code, `ERR_PROCESS_EXITED`);
  assert.match(error.fix, /"rollbridge logs --release r2 --process web"/);

  // The default view: the active release and the failed deploy after it, merged by time.
  const merged = await run([`logs`], dir, `human`);
  assert.equal(merged.code, 0, merged.stderr);
  const [header, body] = merged.stdout.split(`\n\n`) as [string, string];
  assert.deepEqual(header.split(`\n`), [
    `== release r1 (active): queue, web ==`,
    `== release r2 (failed): queue, web ==`,
    `   failed: ERR_PROCESS_EXITED: Process "web" of release r2 exited (code 3) before it became healthy`,
  ]);
  const lines = body.trimEnd().split(`\n`);
  assert.ok(lines.some((line) => / web@r2 +\[stdout\] connecting to the database$/.test(line)), body);
  assert.ok(lines.some((line) => / web@r2 +\[stderr\] boot failed: DATABASE_URL is not set$/.test(line)), body);
  const times = lines.map((line) => Date.parse(line.slice(0, line.indexOf(` `))));
  assert.ok(times.every((time, index) => !Number.isNaN(time) && (index === 0 || time >= (times[index - 1] as number))), body);

  // One release, failed or not, as JSON (rollbridge 0.1's array with the release and its failure added).
  const sources = parse<LogSource[]>(await run([`logs`, `--release`, `r2`, `--process`, `web`, `--json`], dir), `logs.schema.json`);
  assert.deepEqual(sources.map((source) => [source.id, source.source, source.releaseId]), [[`web`, `release r2 (failed)`, `r2`]]);
  assert.match(sources[0]?.failure ?? ``, /^ERR_PROCESS_EXITED: /);
  assert.deepEqual(sources[0]?.logs.map((entry) => `${entry.stream} ${entry.line}`).sort(), [`stderr boot failed: DATABASE_URL is not set`, `stdout connecting to the database`]);

  const unknown = parse<{error: {code: string; message: string; fix: string}}>(await run([`logs`, `--release`, `r9`, `--json`], dir), `error.schema.json`, 1);
  assert.equal(unknown.error.code, `ERR_RELEASE_NOT_FOUND`);
  assert.match(unknown.error.message, /^No retained release "r9" to show the output of; retained: r1 \(active\), r2 \(failed deploy\)$/);
  assert.match(unknown.error.fix, /--release/);

  const recent = parse<LogSource[]>(await run([`logs`, `--release`, `r2`, `--process`, `web`, `--since`, `1h`, `--json`], dir), `logs.schema.json`);
  assert.equal(recent[0]?.logs.length, 2);
  const future = await run([`logs`, `--release`, `r2`, `--since`, `2099-01-01T00:00:00Z`], dir, `human`);
  assert.match(future.stdout, /\n\(no output since 2099-01-01T00:00:00\.000Z\)\n$/);
  const invalid = await run([`logs`, `--since`, `yesterday`], dir, `human`);
  assert.equal(invalid.code, 2);
  assert.match(invalid.stderr, /^error ERR_USAGE: Invalid value for --since: .*\(got "yesterday"\)\n/);

  // A readiness check that never passes: its fix names the failed release's output as well.
  writeConfig(dir, {}, withQueue({}, `exit 1`));
  const unready = parse<{error: {code: string; fix: string}}>(await run([`deploy`, `--release-path`, `releases/r4`, `--release-id`, `r4`, `--json`], dir), null, 1);
  assert.equal(unready.error.code, `ERR_READINESS_FAILED`);
  assert.match(unready.error.fix, /"rollbridge logs --release r4 --process queue" shows its output/);
  const queue = parse<LogSource[]>(await run([`logs`, `--release`, `r4`, `--process`, `queue`, `--json`], dir), `logs.schema.json`);
  assert.deepEqual(queue.map((source) => [source.id, source.logs.map((entry) => entry.line)]), [[`queue`, [`queue: waiting for redis`]]]);

  // A later successful deploy: the older failures leave the default view, --release still shows them.
  writeConfig(dir, {}, withQueue({}, `exit 0`));
  assert.equal((await deploy(dir, `r3`)).code, 0);
  const current = await run([`logs`, `--json`], dir);
  assert.deepEqual(parse<LogSource[]>(current, `logs.schema.json`).map((source) => source.source), [`release r3 (active)`, `release r3 (active)`]);
  assert.equal(parse<LogSource[]>(await run([`logs`, `--release`, `r2`, `--json`], dir), `logs.schema.json`).length, 2);
  const all = parse<LogSource[]>(await run([`logs`, `--all`, `--json`], dir), `logs.schema.json`);
  assert.deepEqual(new Set(all.map((source) => source.releaseId)), new Set([`r1`, `r2`, `r3`, `r4`]));

  // A release switched back in its watch window (web-app.cjs with a "crash" id exits 300 ms after the
  // first proxied request) is retained as failed: the default view shows it beside the active release.
  fs.mkdirSync(path.join(dir, `releases`, `crash1`));
  writeConfig(dir, {}, withQueue({env: {APP_CRASH_AFTER: `first-request`}}, `exit 0`));
  const watching = run([`deploy`, `--release-path`, `releases/crash1`, `--release-id`, `crash1`, `--watch`, `20s`, `--json`], dir);
  const proxyPort = await waitFor(async () => {
    const status = JSON.parse((await run([`status`, `--json`], dir)).stdout) as {activeReleaseId: string; proxy: {port: number}};
    return status.activeReleaseId === `crash1` ? status.proxy.port : undefined;
  }, {what: `the switch to crash1`, timeoutMs: 30_000});
  await httpGet(proxyPort, `/release`);
  const watched = parse<{error: {code: string; fix: string}}>(await watching, null, 1);
  assert.equal(watched.error.code, `ERR_WATCH_ROLLED_BACK`);
  assert.match(watched.error.fix, /"rollbridge logs --release crash1"/);
  const afterWatch = parse<LogSource[]>(await run([`logs`, `--process`, `web`, `--json`], dir), `logs.schema.json`);
  assert.deepEqual(afterWatch.map((source) => [source.source, source.failure !== undefined]), [[`release r3 (active)`, false], [`release crash1 (failed)`, true]]);
});

test(`a failed deploy's output survives a daemon killed with SIGKILL and a replaced daemon: logs --release, the default view, status`, async (t) => {
  const dir = await project(t, {}, withQueue({}, `exit 0`));
  assert.equal((await deploy(dir, `r1`)).code, 0);
  writeConfig(dir, {}, withQueue({command: `echo "connecting to the database"; echo "boot failed: DATABASE_URL is not set" >&2; exit 3`}, `exit 0`));
  assert.equal((await deploy(dir, `r2`)).code, 1);
  writeConfig(dir, {}, withQueue({}, `exit 0`));
  // The state file names the failed deploy and its log files, never its output.
  const statePath = path.join(dir, `control.state.json`);
  const state = fs.readFileSync(statePath, `utf8`);
  const recorded = (JSON.parse(state) as {failedDeploys?: Array<{releaseId: string; failure: string; processes: Array<{id: string; lines: number}>}>}).failedDeploys;
  assert.deepEqual(recorded?.map((entry) => [entry.releaseId, entry.processes.map((process) => [process.id, process.lines])]), [[`r2`, [[`queue`, 1], [`web`, 2]]]]);
  assert.ok(!state.includes(`DATABASE_URL`), state);

  const launch = [`--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)];
  const pid = Number(fs.readFileSync(path.join(dir, `daemon.pid`), `utf8`));
  process.kill(pid, `SIGKILL`);
  await waitFor(() => !isPidAlive(pid), {what: `the killed daemon ${pid} to be gone`});
  const restarted = await run([`ensure-daemon`, `--json`, ...launch], dir);
  assert.equal(restarted.code, 0, restarted.stderr + restarted.stdout);

  const check = async (when: string): Promise<void> => {
    const sources = parse<LogSource[]>(await run([`logs`, `--release`, `r2`, `--json`], dir), `logs.schema.json`);
    assert.deepEqual(sources.map((source) => [source.id, source.source]), [[`queue`, `release r2 (failed)`], [`web`, `release r2 (failed)`]], when);
    assert.match(sources[1]?.failure ?? ``, /^ERR_PROCESS_EXITED: Process "web" of release r2 exited \(code 3\) before it became healthy$/, when);
    assert.deepEqual(sources[1]?.logs.map((entry) => `${entry.stream} ${entry.line}`).sort(), [`stderr boot failed: DATABASE_URL is not set`, `stdout connecting to the database`], when);
    assert.deepEqual(sources[0]?.logs.map((entry) => entry.line), [`queue: waiting for redis`], when);
    // The default view: the active release (re-adopted) and the failed deploy after it.
    const merged = await run([`logs`], dir, `human`);
    assert.equal(merged.code, 0, merged.stderr);
    assert.deepEqual(merged.stdout.split(`\n\n`)[0]?.split(`\n`), [
      `== release r1 (active): queue, web ==`,
      `== release r2 (failed): queue, web ==`,
      `   failed: ERR_PROCESS_EXITED: Process "web" of release r2 exited (code 3) before it became healthy`,
    ], when);
    assert.match(merged.stdout, / web@r2 +\[stderr\] boot failed: DATABASE_URL is not set$/m, when);
    const status = await run([`status`], dir, `human`);
    assert.ok(status.stdout.split(`\n`).some((row) => /^r1 \(active\)\s+web\s+running \(adopted\)\s/.test(row)), `${when}: ${status.stdout}`);
  };
  await check(`after SIGKILL and ensure-daemon`);
  const replaced = await run([`ensure-daemon`, `--replace`, `--json`, ...launch], dir);
  assert.equal(replaced.code, 0, replaced.stderr + replaced.stdout);
  await check(`after ensure-daemon --replace`);

  // Retention still applies to the restored entries: with keep 1 the next failure drops r2 and its log folder.
  writeConfig(dir, {command: `echo "port in use" >&2; exit 4`}, {...withQueue({command: `echo "port in use" >&2; exit 4`}, `exit 0`), releaseRetention: {keep: 1}});
  assert.equal((await deploy(dir, `r3`)).code, 1);
  const gone = parse<{error: {code: string; message: string}}>(await run([`logs`, `--release`, `r2`, `--json`], dir), `error.schema.json`, 1);
  assert.equal(gone.error.code, `ERR_RELEASE_NOT_FOUND`);
  assert.match(gone.error.message, /retained: r1 \(active\), r3 \(failed deploy\)$/);
  assert.ok(!fs.existsSync(path.join(dir, `logs`, `r2`)), `the log folder of r2 is removed`);
});

test(`status on a terminal lists the current releases with RSS, CPU and memory restarts, --all the rest; adopted processes are marked`, async (t) => {
  // GET /hog makes web resident above its memory limit: the watchdog replaces it (a memory restart).
  const dir = await project(t, {memory: {limitBytes: 100 * 1024 * 1024, checkIntervalMs: 100}, env: {APP_HOG_BYTES: String(128 * 1024 * 1024)}});
  assert.equal((await deploy(dir, `r1`)).code, 0);
  assert.equal((await deploy(dir, `r2`)).code, 0);
  const status = async () => parse<StatusView>(await run([`status`, `--json`], dir), `status.schema.json`);
  await waitFor(async () => (await status()).releases.find((release) => release.releaseId === `r1`)?.state === `stopped`, {what: `r1 to stop`});

  const document = await status();
  const web = document.releases.find((release) => release.releaseId === `r2`)?.processes[0];
  assert.ok(web && (web.rssBytes ?? 0) > 0 && typeof web.cpuPercent === `number` && (web.cpuWindowMs ?? 0) > 0, JSON.stringify(web));
  assert.equal(web.memoryRestarts, 0);

  const human = await run([`status`], dir, `human`);
  assert.equal(human.code, 0, human.stderr);
  const rows = human.stdout.split(`\n`);
  const header = rows.find((row) => row.startsWith(`RELEASE`)) ?? ``;
  assert.match(header, /^RELEASE\s+PROCESS\s+STATE\s+PID\s+PORT\s+UPTIME\s+RESTARTS\s+RSS\s+CPU\s+CONNECTIONS$/);
  assert.ok(rows.some((row) => /^r2 \(active\)\s+web\s+running\s+\d+\s+\d+\s+\S+\s+0\s+\d+(\.\d)?[KMG]\s+\d+\.\d%/.test(row)), human.stdout);
  assert.ok(!human.stdout.includes(`r1 (stopped)`), human.stdout);
  assert.match(human.stdout, /\n1 more retained release \(stopped\) not shown: "rollbridge status --all" lists them$/m);
  const all = await run([`status`, `--all`], dir, `human`);
  assert.ok(all.stdout.split(`\n`).some((row) => /^r1 \(stopped\)\s+web\s+stopped\s/.test(row)), all.stdout);

  // Two memory restarts: the replacements of the instance keep counting.
  for (const expected of [1, 2]) {
    await httpGet(document.proxy.port, `/hog`);
    await waitFor(async () => (await status()).releases.find((release) => release.releaseId === `r2`)?.processes[0]?.memoryRestarts === expected, {what: `memory restart ${expected}`});
  }
  const restarted = await run([`status`], dir, `human`);
  assert.ok(restarted.stdout.split(`\n`).some((row) => /^r2 \(active\)\s+web\s+running\s.*\s0 \(2 memory\)\s/.test(row)), restarted.stdout);

  // A successor daemon re-adopts the running processes.
  const replaced = await run([`ensure-daemon`, `--replace`, `--json`, `--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)], dir);
  assert.equal(replaced.code, 0, replaced.stderr);
  const adopted = await run([`status`], dir, `human`);
  assert.ok(adopted.stdout.split(`\n`).some((row) => /^r2 \(active\)\s+web\s+running \(adopted\)\s/.test(row)), adopted.stdout);
  assert.match(adopted.stdout, /\nadopted: re-adopted from the previous daemon/);
});

test(`events --follow exits 0 on SIGINT and on SIGTERM`, async (t) => {
  const dir = await project(t);
  for (const signal of [`SIGINT`, `SIGTERM`] as const) {
    const child = spawn(BINARY, [`events`, `--follow`, `--json`, `--limit`, `1`], {cwd: dir, env: {...process.env, ROLLBRIDGE_OUTPUT: ``}, stdio: [`ignore`, `pipe`, `pipe`]});
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once(`exit`, (code, received) => resolve([code, received])));
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill(`SIGKILL`);
    });
    let stdout = ``;
    child.stdout.on(`data`, (chunk: Buffer) => (stdout += chunk.toString()));
    await waitFor(() => stdout.includes(`\n`), {what: `the first event`});
    child.kill(signal);
    assert.deepEqual(await exited, [0, null], signal);
  }
});

test(`legacy-takeover prints JSON when stdout is not a terminal; doctor names the pid, command and user holding the proxy port`, async (t) => {
  const dir = createTempDir(t, `rb-view-`);
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, `127.0.0.1`, resolve));
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  writeConfig(dir, {}, {proxy: {host: `127.0.0.1`, port}, legacyTakeover: {processes: [{name: `legacy`, includes: [`rb-no-such-legacy-app-${process.pid}`]}]}});

  const plan = parse<{status: string; dryRun: boolean; plan: {proxy: {listeners: Array<{pid: number}>}}}>(await run([`legacy-takeover`, `--release-path`, dir, `--dry-run`], dir), `legacy-takeover.schema.json`);
  assert.deepEqual([plan.status, plan.dryRun], [`success`, true]);
  assert.deepEqual(plan.plan.proxy.listeners.map((listener) => listener.pid), [process.pid]);

  const doctor = parse<{checks: Array<{name: string; ok: boolean; detail: string}>}>(await run([`doctor`, `--json`], dir), `doctor.schema.json`, 1);
  const check = doctor.checks.find((entry) => entry.name === `proxy port`);
  assert.equal(check?.ok, false);
  assert.ok(check.detail.startsWith(`127.0.0.1:${port} is unavailable (EADDRINUSE): held by pid ${process.pid} (${process.execPath}`), check.detail);
  assert.ok(check.detail.endsWith(`) of user ${os.userInfo().username}`), check.detail);
});
