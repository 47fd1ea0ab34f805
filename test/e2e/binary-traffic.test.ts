// Traffic control on the built binary (issue 14 items 3-5): pause, resume, maintenance as scripts and
// operators see them (--json against docs/schemas, human lines, usage errors, exit codes).
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import fs from 'node:fs';
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

type Run = {code: number; stdout: string; stderr: string};
type Json = Record<string, unknown>;
type Traffic = {mode: string; held: number; pause: {expired: boolean} | null; maintenance: {message: string; retryAfterSeconds: number} | null};

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

/** A project with one proxied web app, a daemon started by `ensure-daemon` and release r1 deployed. */
async function startProject(t: TestContext): Promise<{dir: string; port: number}> {
  const dir = createTempDir(t, `rb-traffic-`);
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({
    application: `traffic-e2e`,
    control: {path: path.join(dir, `control.sock`)},
    logs: {dir: path.join(dir, `logs`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 1_000, forceStopTimeoutMs: 2_000},
    processes: [{id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000}}],
  }, null, 2));
  fs.mkdirSync(path.join(dir, `releases`, `r1`), {recursive: true});
  const started = await run([`ensure-daemon`, `--json`, `--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)], {cwd: dir});
  assert.equal(started.code, 0, started.stderr);
  const pid = Number(fs.readFileSync(path.join(dir, `daemon.pid`), `utf8`));
  beforeRemoving(dir, async () => {
    if (!isPidAlive(pid)) return;
    await run([`shutdown`], {cwd: dir});
    await waitFor(() => !isPidAlive(pid), {what: `the daemon ${pid} to exit`});
  });
  json(await run([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--json`], {cwd: dir}), `deploy.schema.json`);
  const status = json<{proxy: {port: number}}>(await run([`status`, `--json`], {cwd: dir}), `status.schema.json`);
  return {dir, port: status.proxy.port};
}

test(`pause, resume and maintenance on the binary: JSON per schema, human lines, usage errors and ERR_TRAFFIC_MAINTENANCE`, async (t) => {
  const {dir, port} = await startProject(t);
  const paused = json<{changed: boolean; traffic: Traffic}>(await run([`pause`, `--timeout`, `0`, `--json`], {cwd: dir}), `pause.schema.json`);
  assert.equal(paused.changed, true);
  assert.equal(paused.traffic.mode, `paused`);
  const held = httpGet(port, `/release`);
  await waitFor(async () => (json<{traffic: Traffic}>(await run([`status`, `--json`], {cwd: dir}), `status.schema.json`)).traffic.held === 1, {what: `a held request`});
  const human = await run([`status`], {cwd: dir, env: {ROLLBRIDGE_OUTPUT: `human`}});
  assert.match(human.stdout, /^traffic: paused since \S+, held until "rollbridge resume" \(1 of at most 1000 held\)$/m);
  const resumed = json<{changed: boolean; released: number}>(await run([`resume`, `--json`], {cwd: dir}), `resume.schema.json`);
  assert.deepEqual([resumed.changed, resumed.released], [true, 1]);
  assert.equal((await held).body, `r1\n`);
  const again = await run([`resume`], {cwd: dir, env: {ROLLBRIDGE_OUTPUT: `human`}});
  assert.match(again.stdout, /^Not paused: open$/m);

  const on = json<{traffic: Traffic}>(await run([`maintenance`, `on`, `--message`, `Back soon`, `--retry-after`, `2m`, `--json`], {cwd: dir}), `maintenance.schema.json`);
  assert.deepEqual(on.traffic.maintenance && {message: on.traffic.maintenance.message, retryAfterSeconds: on.traffic.maintenance.retryAfterSeconds}, {message: `Back soon`, retryAfterSeconds: 120});
  const page = await httpGet(port, `/`, {headers: {accept: `application/json`}});
  assert.equal(page.status, 503);
  assert.equal(page.headers[`retry-after`], `120`);
  assert.equal(JSON.parse(page.body).message, `Back soon`);
  const refused = json<{error: {code: string; fix: string}}>(await run([`pause`, `--json`], {cwd: dir}), `error.schema.json`, 1);
  assert.equal(refused.error.code, `ERR_TRAFFIC_MAINTENANCE`);
  const refusedHuman = await run([`pause`], {cwd: dir, env: {ROLLBRIDGE_OUTPUT: `human`}});
  assert.equal(refusedHuman.code, 1);
  assert.match(refusedHuman.stderr, /fix: Run "rollbridge maintenance off" first/);
  const off = await run([`maintenance`, `off`], {cwd: dir, env: {ROLLBRIDGE_OUTPUT: `human`}});
  assert.match(off.stdout, /^Maintenance off: open$/m);
  assert.equal((await httpGet(port, `/release`)).body, `r1\n`);

  for (const args of [[`maintenance`, `maybe`], [`maintenance`, `off`, `--message`, `x`], [`maintenance`, `on`, `--retry-after`, `1500ms`], [`pause`, `--timeout`, `soon`]]) {
    const usage = json<{error: {code: string}}>(await run([...args, `--json`], {cwd: dir}), `error.schema.json`, 2);
    assert.equal(usage.error.code, `ERR_USAGE`, args.join(` `));
  }
});
