// Failed deploys as an operator sees them, on the built binary (issue 13 items 1 and 3): why a release did
// not boot (its last output lines, exit 127 named as "command not found"), on a terminal and in --json, and a
// failed hooks.afterSwitch shown as a failure with its output while the switch stands (exit code 0).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {WEB_APP} from '../helpers/daemon.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {ensureBinaryDaemon, runBinary as run} from './binary-run.ts';

const GOOD_WEB = `exec "${process.execPath}" "${WEB_APP}"`;

/** Writes the config (again: each deploy reads it anew) with this web command, health path and hooks. */
function writeConfig(dir: string, web: {command: string; healthPath?: string; healthTimeoutMs?: number}, hooks: Record<string, string> = {}): void {
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({
    application: `failures`,
    control: {path: path.join(dir, `control.sock`)},
    logs: {dir: path.join(dir, `logs`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 500, forceStopTimeoutMs: 2_000},
    processes: [{id: `web`, command: web.command, policy: `proxied`, port: {from: 0, to: 0}, health: {path: web.healthPath ?? `/ping`, intervalMs: 20, timeoutMs: web.healthTimeoutMs ?? 1_500}}],
    hooks,
  }, null, 2));
}

/** A project with a daemon serving release `good`; the daemon is shut down before the directory goes. */
async function project(t: TestContext, hooks: Record<string, string> = {}): Promise<string> {
  const dir = createTempDir(t, `rb-fail-`);
  for (const name of [`good`, `r2`]) fs.mkdirSync(path.join(dir, `releases`, name), {recursive: true});
  writeConfig(dir, {command: GOOD_WEB});
  await ensureBinaryDaemon(dir);
  const deployed = await run([`deploy`, `--release-path`, `releases/good`, `--release-id`, `good`], dir);
  assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
  writeConfig(dir, {command: GOOD_WEB}, hooks);
  return dir;
}

type ErrorJson = {error: {code: string; message: string; fix: string; details: {processId?: string; exitCode?: number; output: string[]}}};

async function activeRelease(dir: string): Promise<unknown> {
  const status = await run([`status`, `--json`], dir);
  return (JSON.parse(status.stdout) as {activeReleaseId: unknown}).activeReleaseId;
}

test(`a release that crashes at boot shows its last output lines on a terminal and in --json; the previous release keeps serving`, async (t) => {
  const dir = await project(t);
  writeConfig(dir, {command: `echo "connecting to the database" >&2; echo "boot failed: DATABASE_URL is not set" >&2; exit 3`});

  const human = await run([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2`], dir, `human`);
  assert.equal(human.code, 1, human.stdout);
  assert.match(human.stderr, /error ERR_PROCESS_EXITED: Process "web" of release r2 exited \(code 3\) before it became healthy\n/);
  assert.match(human.stderr, / {2}last 2 lines of output of process web:\n {4}\| connecting to the database\n {4}\| boot failed: DATABASE_URL is not set\n {2}fix: Read the output above/);

  const json = await run([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2b`, `--json`], dir);
  assert.equal(json.code, 1, json.stderr);
  const {error} = JSON.parse(json.stdout) as ErrorJson;
  assert.equal(error.code, `ERR_PROCESS_EXITED`);
  assert.equal(error.details.exitCode, 3);
  assert.deepEqual(error.details.output, [`connecting to the database`, `boot failed: DATABASE_URL is not set`]);
  assert.equal(await activeRelease(dir), `good`);
});

test(`exit 127 is named "command not found" with the missing command and how to fix it`, async (t) => {
  const dir = await project(t);
  writeConfig(dir, {command: `exec rb-absent-uvicorn app:app`});

  const human = await run([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2`], dir, `human`);
  assert.equal(human.code, 1, human.stdout);
  assert.match(human.stderr, /exited \(code 127: command not found: rb-absent-uvicorn\) before it became healthy/);
  assert.match(human.stderr, /\| .*rb-absent-uvicorn: not found\n/);
  assert.match(human.stderr, /fix: Install "rb-absent-uvicorn" in the release .* or give its absolute path in processes\[0\]\.command; the process's PATH is \//);

  const json = await run([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2b`, `--json`], dir);
  const {error} = JSON.parse(json.stdout) as ErrorJson;
  assert.equal(error.details.exitCode, 127);
  assert.ok(error.details.output.some((line) => line.endsWith(`rb-absent-uvicorn: not found`)), JSON.stringify(error));
  assert.equal(await activeRelease(dir), `good`);
});

test(`a failed health check shows the process's last output lines`, async (t) => {
  const dir = await project(t);
  const app = `require('http').createServer((q, s) => { s.statusCode = 404; s.end(); }).listen(Number(process.env.ROLLBRIDGE_PORT), '127.0.0.1', () => console.log('listening, routes under /api'))`;
  writeConfig(dir, {command: `exec "${process.execPath}" -e "${app}"`, healthPath: `/health`});

  const human = await run([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2`], dir, `human`);
  assert.equal(human.code, 1, human.stdout);
  assert.match(human.stderr, /error ERR_HEALTH_CHECK_FAILED: .*HTTP 404/);
  assert.match(human.stderr, /last 1 line of output of process web:\n {4}\| listening, routes under \/api\n/);
  assert.equal(await activeRelease(dir), `good`);
});

test(`a health check answered 404 on every probe fails early, naming the URL, the status, the probes and health.path`, async (t) => {
  const dir = await project(t);
  const app = `require('http').createServer((q, s) => { s.statusCode = 404; s.end(); }).listen(Number(process.env.ROLLBRIDGE_PORT), '127.0.0.1')`;
  // A timeout no test waits out: only the early failure ends the deploy.
  writeConfig(dir, {command: `exec "${process.execPath}" -e "${app}"`, healthPath: `/health`, healthTimeoutMs: 600_000});

  const human = await run([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2`], dir, `human`);
  assert.equal(human.code, 1, human.stdout);
  assert.match(human.stderr, /error ERR_HEALTH_CHECK_FAILED: Health check failed for http:\/\/127\.0\.0\.1:\d+\/health: HTTP 404 to each of the last \d+ probes over [\d.]+ s/);
  assert.match(human.stderr, /fix: Set processes\[0\]\.health\.path to a path the app answers with 2xx \(now "\/health"\)/);

  const json = await run([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2b`, `--json`], dir);
  const {error} = JSON.parse(json.stdout) as {error: {code: string; details: {status: number; url: string}}};
  assert.equal(error.code, `ERR_HEALTH_CHECK_FAILED`);
  assert.equal(error.details.status, 404);
  assert.match(error.details.url, /\/health$/);
  assert.equal(await activeRelease(dir), `good`);
});

test(`a failed hooks.afterSwitch is shown as a failure with its output on a terminal; the switch stands and the exit code is 0`, async (t) => {
  const dir = await project(t, {afterSwitch: `echo "posting to chat" >&2; echo "notify failed: HTTP 401" >&2; exit 2`});

  const human = await run([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2`], dir, `human`);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, / {2}✗ afterSwitch failed \(exit 2\)/);
  assert.match(human.stdout, /✓ release r2 is active \(previous: good\)/);
  assert.match(human.stderr, /^✗ hooks\.afterSwitch failed: it exited with code 2 after .*; release r2 stays active \(the switch stands\)\n/);
  assert.match(human.stderr, / {2}last 2 lines of its output:\n {4}\| posting to chat\n {4}\| notify failed: HTTP 401\n {2}fix: Fix the command in hooks\.afterSwitch/);
  assert.equal(await activeRelease(dir), `r2`);

  const json = await run([`deploy`, `--release-path`, `releases/good`, `--release-id`, `r3`, `--json`], dir);
  assert.equal(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout) as {hooks: Array<{hook: string; ok: boolean; exitCode: number; output: string[]}>};
  assert.deepEqual(result.hooks.map((hook) => [hook.hook, hook.ok, hook.exitCode]), [[`afterSwitch`, false, 2]]);
  assert.equal(json.stderr, ``);
});
