// Every --json output of the built binary against its published schema (docs/schemas), beyond the ones
// binary-scripted.test.ts covers, plus the fields and lines rollbridge 0.1 scripts parse (issue 8, item 8).
import assert from 'node:assert/strict';
import {createHash} from 'node:crypto';
import {execFile, spawn} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {WEB_APP} from '../helpers/daemon.ts';
import {assertMatchesSchema} from '../helpers/json-schemas.ts';
import {freePort} from '../helpers/ports.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {beforeRemoving, createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {startDetached, uniqueName} from '../takeover/legacy-fixtures.ts';
import {getBinaryPath} from './binary-path.ts';

type Run = {code: number; stdout: string; stderr: string};
type Json = Record<string, unknown>;

const BINARY = getBinaryPath();

function run(args: string[], options: {cwd: string; env?: Record<string, string>}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(BINARY, args, {cwd: options.cwd, env: {...process.env, ROLLBRIDGE_OUTPUT: ``, ...options.env}, timeout: 60_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, stdout, stderr});
    });
  });
}

function json<T = Json>(result: Run, schema: string, exitCode = 0): T {
  assert.equal(result.code, exitCode, result.stderr + result.stdout);
  const document = JSON.parse(result.stdout) as unknown;
  assertMatchesSchema(schema, document);
  return document as T;
}

/** Runs a command that streams NDJSON until stopped; resolves with the first `count` lines, then stops it. */
async function firstLines(t: TestContext, args: string[], cwd: string, count: number): Promise<Json[]> {
  const child = spawn(BINARY, args, {cwd, env: {...process.env, ROLLBRIDGE_OUTPUT: ``}, stdio: [`ignore`, `pipe`, `pipe`]});
  const exited = new Promise<void>((resolve) => child.once(`exit`, () => resolve()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(`SIGTERM`);
    await exited;
  });
  let stdout = ``;
  child.stdout.on(`data`, (chunk: Buffer) => (stdout += chunk.toString()));
  const lines = await waitFor(() => {
    const complete = stdout.split(`\n`).slice(0, -1);
    return complete.length >= count ? complete.slice(0, count) : null;
  }, {what: `${count} lines from ${args.join(` `)}`, timeoutMs: 15_000});
  child.kill(`SIGTERM`);
  await exited;
  return lines.map((line) => JSON.parse(line) as Json);
}

function writeProject(t: TestContext, extra: Json = {}, processes?: Json[]): {dir: string; socketPath: string} {
  const dir = createTempDir(t, `rb-out-`);
  const socketPath = path.join(dir, `control.sock`);
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({
    application: `outputs`,
    control: {path: socketPath},
    logs: {dir: path.join(dir, `logs`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 1_000, forceStopTimeoutMs: 2_000},
    processes: processes ?? [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000}},
      {id: `worker`, command: `echo worker up; exec sleep 300`, policy: `companion`},
    ],
    ...extra,
  }, null, 2));
  for (const name of [`r1`, `r2`]) fs.mkdirSync(path.join(dir, `releases`, name), {recursive: true});
  return {dir, socketPath};
}

/** `ensure-daemon` as scripts call it; shut down (and checked against its schema) after the test. */
async function ensureDaemon(t: TestContext, dir: string): Promise<Json> {
  const started = json(await run([`ensure-daemon`, `--json`, `--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)], {cwd: dir}), `ensure-daemon.schema.json`);
  assert.equal(started.changed, true);
  const pid = Number(fs.readFileSync(path.join(dir, `daemon.pid`), `utf8`));
  beforeRemoving(dir, () => stopDaemon(dir, pid));
  return started;
}

/** Before the test's directory goes: `shutdown` (it stops the daemon's processes too), then wait for the exit. */
async function stopDaemon(dir: string, pid: number): Promise<void> {
  if (!isPidAlive(pid)) return;
  await run([`shutdown`], {cwd: dir});
  await waitFor(() => !isPidAlive(pid), {what: `the daemon ${pid} to exit`});
}

test(`status, logs, events (also --follow), status --check, doctor, validate, recover, predeploy-cleanup, version and ensure-daemon --replace print what their schemas say`, async (t) => {
  // A fixed proxy port: predeploy-cleanup keeps a daemon only when it serves the configured address.
  const {dir} = writeProject(t, {proxy: {host: `127.0.0.1`, port: await freePort(), drainTimeoutMs: 1_000, forceStopTimeoutMs: 2_000}});
  await ensureDaemon(t, dir);
  json(await run([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--json`], {cwd: dir}), `deploy.schema.json`);

  const status = json<{daemonRuntime: {digest: string; path: string; sha256: string}}>(await run([`status`, `--json`], {cwd: dir}), `status.schema.json`);
  // Item 8: rollbridge 0.1's digest and path, never null, beside sha256: the binary's own hash.
  assert.equal(status.daemonRuntime.path, BINARY);
  assert.equal(status.daemonRuntime.digest, createHash(`sha256`).update(fs.readFileSync(BINARY)).digest(`hex`));
  assert.equal(status.daemonRuntime.sha256, status.daemonRuntime.digest);

  assert.deepEqual(json(await run([`status`, `--check`, `--json`], {cwd: dir}), `status-check.schema.json`), {ok: true, problems: []});
  const logs = json<Array<{id: string; logs: Array<{line: string}>}>>(await run([`logs`, `--json`], {cwd: dir}), `logs.schema.json`);
  assert.ok(logs.find((source) => source.id === `worker`)?.logs.some((entry) => entry.line === `worker up`), JSON.stringify(logs));
  for (const line of await firstLines(t, [`logs`, `--follow`, `--json`, `--process`, `worker`], dir, 1)) assertMatchesSchema(`logs-follow-line.schema.json`, line);
  const events = json<Array<{message: string}>>(await run([`events`, `--json`], {cwd: dir}), `events.schema.json`);
  assert.ok(events.some((event) => event.message === `traffic switched`));
  for (const line of await firstLines(t, [`events`, `--follow`, `--json`, `--limit`, `2`], dir, 2)) assertMatchesSchema(`events-follow-line.schema.json`, line);
  json(await run([`doctor`, `--json`], {cwd: dir}), `doctor.schema.json`, 0);
  json(await run([`validate`, `--json`], {cwd: dir}), `validate.schema.json`);
  json(await run([`version`, `--json`], {cwd: dir}), `version.schema.json`);
  json(await run([`--version`, `--json`], {cwd: dir}), `version.schema.json`);
  const cleanup = json<Json>(await run([`predeploy-cleanup`, `--json`], {cwd: dir}), `predeploy-cleanup.schema.json`);
  assert.deepEqual(cleanup, {status: `success`, changed: false, action: `daemon-active`, legacyProcesses: [], recoveredOrphans: 0});

  const replaced = json<{changed: boolean; replaced: boolean; pid: number}>(await run([`ensure-daemon`, `--replace`, `--json`, `--daemon-pid-path`, path.join(dir, `daemon.pid`), `--daemon-log-path`, path.join(dir, `daemon.log`)], {cwd: dir}), `ensure-daemon.schema.json`);
  assert.equal(replaced.replaced, true);
  json(await run([`shutdown`, `--json`], {cwd: dir}), `shutdown.schema.json`);
  await waitFor(() => !isPidAlive(replaced.pid), {what: `the replacement daemon to exit`});

  const problems = json<{ok: boolean}>(await run([`status`, `--check`, `--json`], {cwd: dir}), `error.schema.json`, 1);
  assert.equal((problems as unknown as {error: {code: string}}).error.code, `ERR_DAEMON_UNREACHABLE`);
  const recovered = json<Json>(await run([`recover`, `--json`], {cwd: dir}), `recover.schema.json`);
  assert.equal(recovered.changed, false);
  const invalid = json<{valid: boolean}>(await run([`validate`, `--json`, `--config`, path.join(dir, `missing.json`)], {cwd: dir}), `validate.schema.json`, 1);
  assert.equal(invalid.valid, false);
});

test(`legacy-takeover --dry-run --json and --json --stream on the binary: plan, phases as NDJSON, then the result with changed`, async (t) => {
  const port = await freePort();
  const marker = uniqueName(`rb-legacy-`);
  const {dir} = writeProject(t, {proxy: {host: `127.0.0.1`, port, drainTimeoutMs: 1_000, forceStopTimeoutMs: 2_000}, legacyTakeover: {processes: [{name: `legacy app`, includes: [marker]}], forceStopTimeoutMs: 2_000}});
  const legacyPid = startDetached(t, `exec "${process.execPath}" -e "require('net').createServer().listen(${port}, '127.0.0.1')" ${marker}`);
  await waitFor(async () => (await run([`legacy-takeover`, `--release-path`, `releases/r1`, `--dry-run`, `--json`], {cwd: dir})).stdout.includes(`"heldByLegacy": true`), {what: `the legacy app to hold the port`});

  const plan = json<{changed: boolean; dryRun: boolean; plan: {legacy: {processes: Array<{pid: number}>}}}>(await run([`legacy-takeover`, `--release-path`, `releases/r1`, `--dry-run`, `--json`], {cwd: dir}), `legacy-takeover.schema.json`);
  assert.equal(plan.changed, false);
  assert.deepEqual(plan.plan.legacy.processes.map((entry) => entry.pid), [legacyPid]);

  const streamed = await run([`legacy-takeover`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--json`, `--stream`, `--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)], {cwd: dir});
  const daemonPid = Number(fs.readFileSync(path.join(dir, `daemon.pid`), `utf8`));
  beforeRemoving(dir, () => stopDaemon(dir, daemonPid));
  assert.equal(streamed.code, 0, streamed.stderr + streamed.stdout);
  const lines = streamed.stdout.trimEnd().split(`\n`).map((line) => JSON.parse(line) as Json);
  for (const line of lines) assertMatchesSchema(`stream-line.schema.json`, line);
  const phases = lines.slice(0, -1).map((line) => line.phase);
  for (const phase of [`started`, `healthy`, `switched`, `legacy-stopping`, `proxy-listening`, `legacy-stopped`]) assert.ok(phases.includes(phase), `${phase} in ${phases.join(`, `)}`);
  const result = lines.at(-1) as Json;
  assert.equal(result.type, `result`);
  assert.equal(result.changed, true);
  const {type: _type, ...document} = result;
  assertMatchesSchema(`legacy-takeover.schema.json`, document);
  assert.equal(isPidAlive(legacyPid), false);
});

test(`rollbridge 0.1 fields and lines scripts parse: data.error on deploy failed, release startup failed and command failed; later 0.1.x keys with one notice`, async (t) => {
  const {dir} = writeProject(t, {ownerRecovery: {enabled: true}}, [
    {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000}},
    {id: `jobs`, command: `exec sleep 300`, policy: `service`, deployStrategy: `handoff`, port: {from: 0, to: 0}, lifecycle: {activateCommand: `true`}},
  ]);
  // The notice: once, on deploy (and in the daemon's log at start), never on other commands.
  const validate = json<{warnings: unknown[]; notices: Array<{path: string}>}>(await run([`validate`, `--json`], {cwd: dir}), `validate.schema.json`);
  assert.deepEqual(validate.warnings, []);
  assert.deepEqual(validate.notices.map((notice) => notice.path), [`ownerRecovery`, `processes[1].lifecycle.activateCommand`]);
  await ensureDaemon(t, dir);
  assert.match(fs.readFileSync(path.join(dir, `daemon.log`), `utf8`), /notice: .* holds keys of a later rollbridge 0\.1\.x, accepted and ignored: ownerRecovery, processes\[1\]\.lifecycle\.activateCommand/);
  const deployed = await run([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`], {cwd: dir});
  assert.equal(deployed.code, 0, deployed.stderr);
  assert.equal(deployed.stderr.match(/^notice: /gm)?.length, 1, deployed.stderr);
  assert.doesNotMatch(deployed.stderr, /warning/);
  for (const args of [[`status`], [`logs`], [`events`], [`deploy`, `--release-path`, `releases/r1`, `--json`]]) {
    assert.equal((await run(args, {cwd: dir})).stderr, ``, `${args[0]} prints no notice or warning`);
  }

  // A release whose web process exits at once: deploy failed and release startup failed carry data.error.
  fs.writeFileSync(path.join(dir, `releases`, `r2`, `fail.flag`), ``);
  const failing = JSON.parse(fs.readFileSync(path.join(dir, `rollbridge.json`), `utf8`)) as {processes: Array<{command: string}>};
  const web = failing.processes[0];
  assert.ok(web);
  web.command = `test -e fail.flag && exit 3; ${web.command}`;
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify(failing, null, 2));
  const failed = json<{error: {code: string}}>(await run([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2`, `--json`], {cwd: dir}), `error.schema.json`, 1);
  const events = json<Array<{message: string; data: {error?: unknown; err?: {message?: string}}}>>(await run([`events`, `--json`], {cwd: dir}), `events.schema.json`);
  for (const message of [`deploy failed`, `release startup failed`, `command failed`]) {
    const event = events.findLast((entry) => entry.message === message);
    assert.ok(event, `${message} in ${events.map((entry) => entry.message).join(`, `)}`);
    assert.equal(typeof event.data.error, `string`, `${message}: data.error is the message`);
    assert.ok((event.data.error as string).length > 0);
  }
  assert.equal(events.findLast((entry) => entry.message === `command failed`)?.data.error, events.findLast((entry) => entry.message === `deploy failed`)?.data.error);
  assert.ok(failed.error.code.startsWith(`ERR_`));
});

test(`verify --json prints the self-test report its schema describes`, async (t) => {
  const dir = createTempDir(t, `rb-out-`);
  const report = json<{ok: boolean; failedRequests: number}>(await run([`verify`, `--json`, `--connections`, `1`, `--websockets`, `1`, `--drain-timeout-ms`, `100`], {cwd: dir}), `verify.schema.json`);
  assert.equal(report.ok, true);
  assert.equal(report.failedRequests, 0);
});

test(`recover and predeploy-cleanup print rollbridge 0.1's lines with real plurals: 1 orphaned process`, async (t) => {
  const {dir} = writeProject(t, {}, [
    {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000}},
  ]);
  const started = await ensureDaemon(t, dir) as {daemon: {pid: number}};
  json(await run([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--json`], {cwd: dir}), `deploy.schema.json`);
  // A crash: the daemon dies, its web process stays (recorded in the state file).
  process.kill(started.daemon.pid, `SIGKILL`);
  await waitFor(() => !isPidAlive(started.daemon.pid), {what: `the daemon to die`});
  const listed = await run([`recover`], {cwd: dir});
  assert.match(listed.stdout, /^Found 1 orphaned process \(run with --force to stop\):\n {2}web \(pid \d+, release r1\)\n/);
  const cleanup = await run([`predeploy-cleanup`], {cwd: dir});
  assert.equal(cleanup.stdout, `No active Rollbridge daemon found.\nRecovered 1 Rollbridge orphaned process.\nStopped 0 legacy processes.\n`);
  assert.equal((await run([`recover`], {cwd: dir})).stdout, `No orphaned processes found.\n`);
});
