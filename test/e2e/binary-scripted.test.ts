// The scripted surface on the built binary (issue 8, items 1–4): what the GitHub Action, the Ansible
// module, the Capistrano recipes and the npm API parse. `deploy --dry-run` without a daemon, `--skip-if-active`,
// `changed` on every mutating result, `--json --stream` NDJSON, and ROLLBRIDGE_OUTPUT.
import assert from 'node:assert/strict';
import {execFile, spawn} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {WEB_APP} from '../helpers/daemon.ts';
import {assertMatchesSchema} from '../helpers/json-schemas.ts';
import {httpGet} from '../helpers/http.ts';
import {requireCommands} from '../helpers/system-packages.ts';
import {beforeRemoving, createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {getBinaryPath} from './binary-path.ts';

type Run = {code: number; stdout: string; stderr: string};
type Json = Record<string, unknown>;

const BINARY = getBinaryPath();

function run(args: string[], options: {cwd: string; env?: Record<string, string>}): Promise<Run> {
  return new Promise((resolve) => {
    // ROLLBRIDGE_OUTPUT from the developer's shell must not leak into the assertions.
    const env = {...process.env, ROLLBRIDGE_OUTPUT: ``, ...options.env};
    execFile(BINARY, args, {cwd: options.cwd, env, timeout: 60_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, stdout, stderr});
    });
  });
}

/** The one JSON document of a successful command, checked against its published schema. */
function json(result: Run, schema: string): Json {
  assert.equal(result.code, 0, result.stderr + result.stdout);
  const document = JSON.parse(result.stdout) as Json;
  assertMatchesSchema(schema, document);
  return document;
}

/** The error document of a failed command (exit 1, or 2 for usage), checked against error.schema.json. */
function failure(result: Run, code: 1 | 2): {code: string; message: string; fix?: string} {
  assert.equal(result.code, code, result.stderr + result.stdout);
  const document = JSON.parse(result.stdout) as {error: {code: string; message: string; fix?: string}};
  assertMatchesSchema(`error.schema.json`, document);
  return document.error;
}

/** NDJSON: every line one JSON object matching stream-line.schema.json, the last one a result or an error. */
function lines(result: Run): Json[] {
  assert.ok(result.stdout.endsWith(`\n`), `NDJSON ends with a newline`);
  const parsed = result.stdout.trimEnd().split(`\n`).map((line) => JSON.parse(line) as Json);
  for (const line of parsed) assertMatchesSchema(`stream-line.schema.json`, line);
  assert.ok(parsed.slice(0, -1).every((line) => line.type === `phase`), `only the last line is a result or an error`);
  assert.notEqual(parsed.at(-1)?.type, `phase`);
  return parsed;
}

function writeProject(t: TestContext, overrides: Json = {}): {dir: string; configPath: string; socketPath: string} {
  const dir = createTempDir(t, `rb-sf-`);
  const socketPath = path.join(dir, `control.sock`);
  const config = {
    application: `scripted`,
    control: {path: socketPath},
    logs: {dir: path.join(dir, `logs`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 1_000, forceStopTimeoutMs: 2_000},
    processes: [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000}},
      {id: `worker`, command: `exec sleep 300`, policy: `companion`},
    ],
    ...overrides,
  };
  const configPath = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  for (const name of [`r1`, `r2`]) fs.mkdirSync(path.join(dir, `releases`, name), {recursive: true});
  return {dir, configPath, socketPath};
}

async function startBinaryDaemon(t: TestContext, project: {dir: string; socketPath: string}): Promise<void> {
  const daemon = spawn(BINARY, [`daemon`], {cwd: project.dir, env: {...process.env, ROLLBRIDGE_OUTPUT: ``}, stdio: [`ignore`, `pipe`, `pipe`]});
  let output = ``;
  daemon.stdout.on(`data`, (chunk: Buffer) => (output += chunk.toString()));
  daemon.stderr.on(`data`, (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => daemon.once(`exit`, () => resolve()));
  beforeRemoving(project.dir, async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill(`SIGTERM`);
      await exited;
    }
  });
  await waitFor(() => fs.existsSync(project.socketPath) || daemon.exitCode !== null, {what: `the binary daemon's socket`, timeoutMs: 15_000});
  assert.equal(daemon.exitCode, null, output);
}

test(`deploy --dry-run without a daemon prints the plan from the config, starts nothing (even with --ensure-daemon) and exits 0`, async (t) => {
  const project = writeProject(t);
  const pidPath = path.join(project.dir, `daemon.pid`);
  const logPath = path.join(project.dir, `daemon.log`);
  const ensure = [`--ensure-daemon`, `--daemon-pid-path`, pidPath, `--daemon-log-path`, logPath];

  const document = json(await run([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--dry-run`, ...ensure, `--json`], {cwd: project.dir}), `deploy-dry-run.schema.json`);
  assert.equal(document.status, `success`);
  assert.equal(document.changed, false);
  assert.equal(document.dryRun, true);
  assert.equal(document.daemonRunning, false);
  assert.equal(document.activeReleaseId, null);
  assert.deepEqual(document.plan, {
    releaseId: `r1`,
    releasePath: path.join(project.dir, `releases`, `r1`),
    start: [
      {processId: `worker`, policy: `companion`, port: null, healthCheck: null},
      {processId: `web`, policy: `proxied`, port: `ephemeral`, healthCheck: `http://127.0.0.1:<port>/ping`},
    ],
    keep: [],
    singletons: [],
    hooks: {beforeSwitch: null, afterSwitch: null},
    drain: null,
  });

  const human = await run([`deploy`, `--release-path`, `releases/r1`, `--dry-run`, ...ensure], {cwd: project.dir, env: {ROLLBRIDGE_OUTPUT: `human`}});
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^no daemon running; everything starts fresh\nPlan for release \d{17} \(.*releases\/r1\); nothing was changed:\n {2}start {2}worker \(companion\)\n {2}start {2}web \(proxied, port ephemeral\), health check http:\/\/127\.0\.0\.1:<port>\/ping\n {2}switch traffic to \d{17}\n$/);

  // Nothing was started: no socket, no daemon pid or log file, no state file.
  assert.deepEqual(fs.readdirSync(project.dir).sort(), [`releases`, `rollbridge.json`]);

  const missing = await run([`deploy`, `--release-path`, `releases/none`, `--dry-run`, `--json`], {cwd: project.dir});
  assert.equal(failure(missing, 1).code, `ERR_RELEASE_PATH_INVALID`);
});

test(`deploy --dry-run without a daemon plans to drain what the state file says a new daemon would re-adopt`, async (t) => {
  const project = writeProject(t);
  await startBinaryDaemon(t, project);
  json(await run([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--json`], {cwd: project.dir}), `deploy.schema.json`);
  const status = json(await run([`status`, `--json`], {cwd: project.dir}), `status.schema.json`) as {releases: Array<{processes: Array<{id: string; pid: number}>}>};
  const pids = status.releases[0]?.processes.map((process) => process.pid) ?? [];
  assert.equal(pids.length, 2);
  // A daemon killed with SIGKILL leaves its processes and its state file behind (what a crash does).
  const daemonPid = (json(await run([`status`, `--json`], {cwd: project.dir}), `status.schema.json`) as {daemon: {pid: number}}).daemon.pid;
  process.kill(daemonPid, `SIGKILL`);
  await waitFor(async () => (await run([`status`, `--json`], {cwd: project.dir})).code === 1, {what: `the daemon to be gone`});
  beforeRemoving(project.dir, async () => {
    assert.equal((await run([`recover`, `--force`], {cwd: project.dir})).code, 0, `the crashed daemon's processes are stopped`);
  });

  const document = json(await run([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2`, `--dry-run`, `--ensure-daemon`, `--json`], {cwd: project.dir}), `deploy-dry-run.schema.json`);
  assert.equal(document.daemonRunning, false);
  assert.equal(document.activeReleaseId, `r1`);
  assert.deepEqual((document.plan as {drain: unknown}).drain, {releaseId: `r1`, timeoutMs: 1_000, connections: {http: 0, websocket: 0}, processes: [`worker`, `web`]});
  const human = await run([`deploy`, `--release-path`, `releases/r2`, `--dry-run`], {cwd: project.dir, env: {ROLLBRIDGE_OUTPUT: `human`}});
  assert.match(human.stdout, /^no daemon running; a daemon started now re-adopts the 2 processes still running from .*control\.state\.json\n/);
  assert.match(human.stdout, /\n {2}drain {2}r1 \(0 http, 0 ws open; up to 1000 ms\)\n {2}stop {3}worker, web of r1\n$/);
  assert.equal((await run([`status`], {cwd: project.dir})).code, 1, `the dry run started no daemon`);

  // rollbridge 0.1's lines, with real plurals (scripts grep them).
  const listed = await run([`recover`], {cwd: project.dir});
  assert.match(listed.stdout, /^Found 2 orphaned processes \(run with --force to stop\):\n/);
});

test(`--skip-if-active does nothing when the release is already active with the same path and revision, and every mutating result carries changed`, async (t) => {
  const project = writeProject(t);
  await startBinaryDaemon(t, project);
  const cwd = project.dir;
  const first = json(await run([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--revision`, `abc`, `--skip-if-active`, `--json`], {cwd}), `deploy.schema.json`);
  assert.equal(first.changed, true);
  assert.equal(first.skipped, undefined);
  const webPid = (json(await run([`status`, `--json`], {cwd}), `status.schema.json`) as {releases: Array<{processes: Array<{id: string; pid: number}>}>}).releases[0]?.processes.find((process) => process.id === `web`)?.pid;

  const again = json(await run([`deploy`, `--release-path`, path.join(cwd, `releases`, `r1`), `--release-id`, `r1`, `--revision`, `abc`, `--skip-if-active`, `--json`], {cwd}), `deploy.schema.json`);
  assert.deepEqual({...again, durationMs: 0}, {status: `success`, changed: false, skipped: true, activeReleaseId: `r1`, previousReleaseId: null, releaseId: `r1`, durationMs: 0, phases: []});
  const after = json(await run([`status`, `--json`], {cwd}), `status.schema.json`) as {releases: Array<{releaseId: string; processes: Array<{id: string; pid: number}>}>};
  assert.equal(after.releases.length, 1, `no second release was started`);
  assert.equal(after.releases[0]?.processes.find((process) => process.id === `web`)?.pid, webPid);
  const human = await run([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--revision`, `abc`, `--skip-if-active`], {cwd, env: {ROLLBRIDGE_OUTPUT: `human`}});
  assert.equal(human.stdout, `✓ release r1 is already active with the same release path and revision; nothing was changed\n`);

  // Another revision (or path) under the same id is a real deploy.
  const otherRevision = json(await run([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--revision`, `def`, `--skip-if-active`, `--json`], {cwd}), `deploy.schema.json`);
  assert.equal(otherRevision.changed, true);
  assert.equal(otherRevision.skipped, undefined);

  const noId = await run([`deploy`, `--release-path`, `releases/r1`, `--skip-if-active`, `--json`], {cwd});
  assert.equal(failure(noId, 2).code, `ERR_USAGE`);

  const dryRun = json(await run([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--revision`, `def`, `--skip-if-active`, `--dry-run`, `--json`], {cwd}), `deploy-dry-run.schema.json`);
  assert.equal(dryRun.daemonRunning, true);
  assert.equal(dryRun.changed, false);
  assert.equal(dryRun.skipped, true);

  assert.equal(json(await run([`restart`, `--process`, `worker`, `--json`], {cwd}), `restart.schema.json`).changed, true);
  json(await run([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2`, `--json`], {cwd}), `deploy.schema.json`);
  assert.equal(json(await run([`rollback`, `--json`], {cwd}), `rollback.schema.json`).changed, true);
  assert.equal(json(await run([`stop`, `--json`], {cwd}), `stop.schema.json`).changed, true);
  assert.equal(json(await run([`ensure-daemon`, `--json`], {cwd}), `ensure-daemon.schema.json`).changed, false);
  assert.deepEqual(json(await run([`shutdown`, `--json`], {cwd}), `shutdown.schema.json`), {status: `success`, changed: true, message: `shutdown`});
});

test(`--json --stream prints one NDJSON line per phase as it happens, then the result or the error as the last line`, async (t) => {
  const project = writeProject(t);
  await startBinaryDaemon(t, project);
  const cwd = project.dir;
  json(await run([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--json`], {cwd}), `deploy.schema.json`);

  const deployed = await run([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2`, `--json`, `--stream`], {cwd});
  assert.equal(deployed.code, 0, deployed.stderr);
  const deployLines = lines(deployed);
  const result = deployLines.at(-1) as Json;
  assert.equal(result.type, `result`);
  assert.equal(result.status, `success`);
  assert.equal(result.changed, true);
  assert.equal(result.activeReleaseId, `r2`);
  const phases = deployLines.slice(0, -1);
  assert.ok(phases.every((line) => line.type === `phase`), deployed.stdout);
  // Each process's start, and each wait as it starts (`waiting`, ended by the next phase).
  assert.deepEqual(phases.map((line) => `${String(line.phase)} ${String(line.processId ?? ``)}`.trim()), [`started worker`, `started web`, `waiting web`, `healthy web`, `switched`, `draining`]);
  const web = phases.find((line) => line.phase === `started` && line.processId === `web`) as Json;
  assert.equal(typeof web.pid, `number`);
  assert.equal(typeof web.port, `number`);
  assert.equal(web.releaseId, `r2`);
  assert.equal(typeof web.durationMs, `number`);
  assert.equal((await httpGet((json(await run([`status`, `--json`], {cwd}), `status.schema.json`) as {proxy: {port: number}}).proxy.port)).body, `r2\n`);

  // --stream implies --json; rollback and restart stream the same way.
  const rolledBack = lines(await run([`rollback`, `--stream`], {cwd}));
  assert.deepEqual(rolledBack.map((line) => line.type === `phase` ? line.phase : line.type), [`target`, `started`, `started`, `waiting`, `healthy`, `switched`, `draining`, `result`]);
  assert.equal(rolledBack.at(-1)?.activeReleaseId, `r1`);
  const restarted = lines(await run([`restart`, `--json`, `--stream`], {cwd}));
  assert.deepEqual(restarted.map((line) => line.type === `phase` ? `${String(line.phase)} ${String(line.processId)}` : line.type), [`restarting worker`, `started worker`, `restarted worker`, `result`]);
  assert.deepEqual(restarted.at(-1)?.restarted, [`worker`]);

  const failed = await run([`rollback`, `--release-id`, `nope`, `--json`, `--stream`], {cwd});
  assert.equal(failed.code, 1);
  const [error] = lines(failed);
  assert.equal(lines(failed).length, 1);
  assert.equal(error?.type, `error`);
  assert.equal((error?.error as {code: string}).code, `ERR_RELEASE_NOT_FOUND`);
  assert.equal(typeof (error?.error as {fix: string}).fix, `string`);

  const usage = await run([`deploy`, `--stream`], {cwd});
  assert.equal(usage.code, 2);
  assert.equal((lines(usage)[0]?.error as {code: string}).code, `ERR_USAGE`);

  // Without --stream, --json stays one (pretty-printed) document.
  const single = await run([`restart`, `--json`], {cwd});
  assert.equal(json(single, `restart.schema.json`).changed, true);
  assert.ok(single.stdout.startsWith(`{\n  "status": "success",\n  "changed": true,`), single.stdout);
});

test(`ROLLBRIDGE_OUTPUT=json gives JSON on a terminal for every command; human forces text when piped; anything else is a usage error`, async (t) => {
  if (!requireCommands(t, [{command: `script`, pkg: `bsdutils`}])) return;
  const project = writeProject(t);
  await startBinaryDaemon(t, project);
  const cwd = project.dir;
  json(await run([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--json`], {cwd}), `deploy.schema.json`);
  const runScript = (args: string[], env: Record<string, string> = {}) => new Promise<Run>((resolve) => {
    execFile(`script`, args, {cwd, env: {...process.env, ROLLBRIDGE_OUTPUT: ``, ...env}, timeout: 60_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, stdout: stdout.replace(/\r\n/g, `\n`), stderr});
    });
  });
  /** Runs the binary on a pseudo-terminal (util-linux `script`), as Capistrano with `pty: true` or `ssh -t` does. */
  const terminal = (args: string[], env: Record<string, string> = {}) => runScript([`-q`, `-e`, `-c`, [BINARY, ...args].map((arg) => `'${arg}'`).join(` `), `/dev/null`], env);

  const table = await terminal([`status`]);
  assert.equal(table.code, 0, table.stdout);
  assert.match(table.stdout, /^rollbridge "scripted": proxy 127\.0\.0\.1:\d+, active release r1/);
  for (const args of [[`status`], [`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--skip-if-active`], [`events`, `--limit`, `1`], [`validate`], [`version`]]) {
    const result = await terminal(args, {ROLLBRIDGE_OUTPUT: `json`});
    assert.equal(result.code, 0, `${args.join(` `)}: ${result.stdout}`);
    assert.doesNotThrow(() => JSON.parse(result.stdout), `${args.join(` `)} printed JSON on a terminal: ${result.stdout}`);
    assertMatchesSchema(`${args[0]}.schema.json`, JSON.parse(result.stdout), `${args.join(` `)} on a terminal`);
  }
  const deployOnTerminal = JSON.parse((await terminal([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--skip-if-active`], {ROLLBRIDGE_OUTPUT: `JSON`})).stdout) as Json;
  assert.equal(deployOnTerminal.skipped, true);

  // Piped (not a terminal), deploy prints JSON as rollbridge 0.1 did, unless ROLLBRIDGE_OUTPUT=human.
  const piped = await run([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--skip-if-active`], {cwd, env: {ROLLBRIDGE_OUTPUT: `human`}});
  assert.match(piped.stdout, /^✓ release r1 is already active/);
  assert.equal(json(await run([`status`, `--json`], {cwd, env: {ROLLBRIDGE_OUTPUT: `human`}}), `status.schema.json`).activeReleaseId, `r1`, `--json wins over ROLLBRIDGE_OUTPUT=human`);

  const bad = await run([`status`], {cwd, env: {ROLLBRIDGE_OUTPUT: `yaml`}});
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error ERR_USAGE: ROLLBRIDGE_OUTPUT must be json, human or auto \(got "yaml"\)\n {2}fix: Set ROLLBRIDGE_OUTPUT=json/);
  const badJson = await run([`status`, `--json`], {cwd, env: {ROLLBRIDGE_OUTPUT: `yaml`}});
  assert.equal(failure(badJson, 2).code, `ERR_USAGE`);
});
