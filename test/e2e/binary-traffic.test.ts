// Traffic control on the built binary (issue 14 items 3-5): pause, resume, maintenance as scripts and
// operators see them (--json against docs/schemas, human lines, usage errors, exit codes).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {WEB_APP} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {requireCommands} from '../helpers/system-packages.ts';
import {assertMatchesSchema} from '../helpers/json-schemas.ts';
import {loadSwitch} from '../helpers/load-switch.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {ensureBinaryDaemon, runBinary} from './binary-run.ts';
import type {BinaryRun} from './binary-run.ts';

type Json = Record<string, unknown>;
type Traffic = {mode: string; held: number; pause: {expired: boolean} | null; maintenance: {message: string; retryAfterSeconds: number} | null};

function json<T = Json>(result: BinaryRun, schema: string, exitCode = 0): T {
  assert.equal(result.code, exitCode, result.stderr + result.stdout);
  const document = JSON.parse(result.stdout) as unknown;
  assertMatchesSchema(schema, document);
  return document as T;
}

/** A project with one proxied web app, a daemon started by `ensure-daemon` and release r1 deployed. */
async function startProject(t: TestContext, web: Json = {}, extra: Json = {}): Promise<{dir: string; port: number}> {
  const dir = createTempDir(t, `rb-traffic-`);
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({
    application: `traffic-e2e`,
    control: {path: path.join(dir, `control.sock`)},
    logs: {dir: path.join(dir, `logs`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 1_000, forceStopTimeoutMs: 2_000},
    processes: [{id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000}, ...web}],
    ...extra,
  }, null, 2));
  for (const name of [`r1`, `r2`, `flaky-3`]) fs.mkdirSync(path.join(dir, `releases`, name), {recursive: true});
  await ensureBinaryDaemon(dir);
  json(await runBinary([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--json`], dir), `deploy.schema.json`);
  const status = json<{proxy: {port: number}}>(await runBinary([`status`, `--json`], dir), `status.schema.json`);
  return {dir, port: status.proxy.port};
}

test(`pause, resume and maintenance on the binary: JSON per schema, human lines, usage errors and ERR_TRAFFIC_MAINTENANCE`, async (t) => {
  const {dir, port} = await startProject(t);
  const paused = json<{changed: boolean; traffic: Traffic}>(await runBinary([`pause`, `--timeout`, `0`, `--json`], dir), `pause.schema.json`);
  assert.equal(paused.changed, true);
  assert.equal(paused.traffic.mode, `paused`);
  const held = httpGet(port, `/release`);
  await waitFor(async () => (json<{traffic: Traffic}>(await runBinary([`status`, `--json`], dir), `status.schema.json`)).traffic.held === 1, {what: `a held request`});
  const human = await runBinary([`status`], dir, `human`);
  assert.match(human.stdout, /^traffic: paused since \S+, held until "rollbridge resume" \(1 of at most 1000 held\)$/m);
  const resumed = json<{changed: boolean; released: number}>(await runBinary([`resume`, `--json`], dir), `resume.schema.json`);
  assert.deepEqual([resumed.changed, resumed.released], [true, 1]);
  assert.equal((await held).body, `r1\n`);
  const again = await runBinary([`resume`], dir, `human`);
  assert.match(again.stdout, /^Not paused: open$/m);

  const on = json<{traffic: Traffic}>(await runBinary([`maintenance`, `on`, `--message`, `Back soon`, `--retry-after`, `2m`, `--json`], dir), `maintenance.schema.json`);
  assert.deepEqual(on.traffic.maintenance && {message: on.traffic.maintenance.message, retryAfterSeconds: on.traffic.maintenance.retryAfterSeconds}, {message: `Back soon`, retryAfterSeconds: 120});
  const page = await httpGet(port, `/`, {headers: {accept: `application/json`}});
  assert.equal(page.status, 503);
  assert.equal(page.headers[`retry-after`], `120`);
  assert.equal(JSON.parse(page.body).message, `Back soon`);
  const refused = json<{error: {code: string; fix: string}}>(await runBinary([`pause`, `--json`], dir), `error.schema.json`, 1);
  assert.equal(refused.error.code, `ERR_TRAFFIC_MAINTENANCE`);
  const refusedHuman = await runBinary([`pause`], dir, `human`);
  assert.equal(refusedHuman.code, 1);
  assert.match(refusedHuman.stderr, /fix: Run "rollbridge maintenance off" first/);
  const off = await runBinary([`maintenance`, `off`], dir, `human`);
  assert.match(off.stdout, /^Maintenance off: open$/m);
  assert.equal((await httpGet(port, `/release`)).body, `r1\n`);

  for (const args of [[`maintenance`, `maybe`], [`maintenance`, `off`, `--message`, `x`], [`maintenance`, `on`, `--retry-after`, `1500ms`], [`pause`, `--timeout`, `soon`]]) {
    const usage = json<{error: {code: string}}>(await runBinary([...args, `--json`], dir), `error.schema.json`, 2);
    assert.equal(usage.error.code, `ERR_USAGE`, args.join(` `));
  }
});

/** Requests from 20 client addresses (X-Forwarded-For from loopback) until the returned stop(). */
function load(t: TestContext, port: number): {failed: () => number; stop: () => Promise<void>} {
  const on = loadSwitch(t, 30_000);
  let failed = 0;
  let next = 0;
  const loops = Array.from({length: 4}, async () => {
    while (on.on()) {
      const result = await httpGet(port, `/`, {headers: {'x-forwarded-for': `192.0.2.${(next++ % 20) + 1}`}}).catch(() => null);
      if (result?.status !== 200) failed++;
    }
  });
  return {failed: () => failed, stop: async () => {
    on.stop();
    await Promise.all(loops);
  }};
}

test(`deploy --canary on the binary: a healthy canary is promoted (exit 0, canary figures per schema), a flaky one rolled back (exit 1, ERR_CANARY_REJECTED)`, async (t) => {
  const {dir, port} = await startProject(t, {}, {canary: {minRequests: 10}});
  const traffic = load(t, port);
  t.after(() => traffic.stop());
  const promoted = json<{activeReleaseId: string; canary: {verdict: string; canary: {requests: number}}}>(await runBinary([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2`, `--canary`, `50`, `--canary-window`, `1500ms`, `--json`], dir), `deploy.schema.json`);
  assert.equal(promoted.activeReleaseId, `r2`);
  assert.equal(promoted.canary.verdict, `promoted`);
  assert.ok(promoted.canary.canary.requests >= 10);
  const rejected = await runBinary([`deploy`, `--release-path`, `releases/flaky-3`, `--release-id`, `flaky-3`, `--canary`, `50%`, `--canary-window`, `10s`], dir, `human`);
  assert.equal(rejected.code, 1, rejected.stdout + rejected.stderr);
  assert.match(rejected.stdout, /✗ canary rolled-back: 5xx/);
  assert.match(rejected.stderr, /ERR_CANARY_REJECTED: Canary flaky-3 was rolled back after \d+ ms at 50%: 5xx [\d.]+% \(\d+ of \d+\) vs stable 0%/);
  assert.match(rejected.stderr, /fix: Check "rollbridge logs --release flaky-3"/);
  await traffic.stop();
  assert.equal(json<{activeReleaseId: string}>(await runBinary([`status`, `--json`], dir), `status.schema.json`).activeReleaseId, `r2`);
  for (const args of [[`--canary`, `0`], [`--canary`, `100`], [`--canary-window`, `5s`], [`--canary`, `10`, `--canary-window`, `0`]]) {
    const usage = json<{error: {code: string}}>(await runBinary([`deploy`, `--release-path`, `releases/r2`, ...args, `--json`], dir), `error.schema.json`, 2);
    assert.equal(usage.error.code, `ERR_USAGE`, args.join(` `));
  }
});

test(`a switch: "hold" deploy on the binary prints how long requests were held and reports switchHold per schema`, async (t) => {
  if (!requireCommands(t, [{command: `flock`, pkg: `util-linux`}])) return;
  const lock = path.join(createTempDir(t, `rb-lock-`), `web.lock`);
  // flock -n: a second copy exits 1 at once if it ever runs beside the first, so both hold deploys prove no overlap.
  const {dir, port} = await startProject(t, {command: `exec flock -n "${lock}" "${process.execPath}" "${WEB_APP}"`, switch: `hold`, holdTimeoutMs: 10_000});
  const traffic = load(t, port);
  t.after(() => traffic.stop());
  const human = await runBinary([`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2`], dir, `human`);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /holding new requests \(new requests are held \(at most 10000 ms\)/);
  assert.match(human.stdout, /^ {2}requests were held (\d+ms|[\d.]+s) for the switch \(limit 10\.0s\)$/m);
  const result = json<{switchHold: {heldMs: number}}>(await runBinary([`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1b`, `--json`], dir), `deploy.schema.json`);
  assert.ok(result.switchHold.heldMs > 0);
  await traffic.stop();
  assert.equal(traffic.failed(), 0);
});
