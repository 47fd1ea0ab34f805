import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {runCli} from '../helpers/run-cli.ts';
import {waitFor} from '../helpers/wait-for.ts';

test(`hooks.beforeSwitch runs in the release's environment after the health check, before traffic moves`, async (t) => {
  let log = ``;
  const daemon = await startDaemon(t, (dir) => {
    log = path.join(dir, `hooks.log`);
    return webConfig(dir, {hooks: {
      beforeSwitch: `echo "before $ROLLBRIDGE_RELEASE_ID $(pwd) web=$ROLLBRIDGE_WEB_PORT" >> ${log}`,
      afterSwitch: `echo "after $ROLLBRIDGE_RELEASE_ID previous=$ROLLBRIDGE_PREVIOUS_RELEASE_ID" >> ${log}`,
    }});
  });
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const result = await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`});
  const lines = fs.readFileSync(log, `utf8`).trim().split(`\n`);
  assert.equal(lines.length, 4, lines.join(`\n`));
  assert.match(lines[0] ?? ``, new RegExp(`^before v1 ${daemon.dir}/releases/v1 web=\\d+$`));
  assert.equal(lines[1], `after v1 previous=`);
  assert.match(lines[2] ?? ``, new RegExp(`^before v2 ${daemon.dir}/releases/v2 web=\\d+$`));
  assert.equal(lines[3], `after v2 previous=v1`);
  const hooks = result.hooks as Array<{hook: string; ok: boolean}>;
  assert.deepEqual(hooks.map((hook) => [hook.hook, hook.ok]), [[`beforeSwitch`, true], [`afterSwitch`, true]]);
  await daemon.record((record) => record.msg === `hook finished` && record.hook === `beforeSwitch`, `hook finished`);
});

test(`a failing hooks.beforeSwitch aborts the deploy with its output and the previous release keeps serving`, async (t) => {
  let configPath = ``;
  const daemon = await startDaemon(t, (dir) => {
    configPath = path.join(dir, `rollbridge.json`);
    return webConfig(dir);
  });
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const config = JSON.parse(fs.readFileSync(configPath, `utf8`)) as Record<string, unknown>;
  config.hooks = {beforeSwitch: `echo "migration 42 failed: lock timeout" >&2; exit 4`};
  fs.writeFileSync(configPath, JSON.stringify(config));
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`}), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_HOOK_FAILED`);
    assert.match(error.message, /hooks\.beforeSwitch for release v2 exited with code 4: migration 42 failed: lock timeout/);
    assert.deepEqual(error.details.output, [`migration 42 failed: lock timeout`]);
    return true;
  });
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
  const status = await daemon.call(`status`);
  assert.equal(status.activeReleaseId, `v1`);
  assert.deepEqual((status.releases as Array<{releaseId: string}>).map((release) => release.releaseId), [`v1`]);
});

test(`a hook that outlives hooks.timeoutMs is killed with its process group and fails the deploy`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {hooks: {beforeSwitch: `sleep 30 & sleep 30`, timeoutMs: 200}}));
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`}), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_HOOK_FAILED`);
    assert.match(error.message, /timed out after \d+ ms/);
    assert.match(String(error.fix), /hooks\.timeoutMs/);
    return true;
  });
  assert.equal((await httpGet(daemon.proxyPort)).status, 503);
});

test(`deploy --dry-run prints the plan and changes nothing`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const before = await daemon.call(`status`);
  const result = await runCli([`deploy`, `--release-path`, daemon.release(`v2`), `--release-id`, `v2`, `--dry-run`, `--json`], {cwd: daemon.dir});
  assert.equal(result.code, 0, result.stderr);
  const plan = (result.json() as {plan: {start: Array<{processId: string; port: unknown; healthCheck: string}>; drain: {releaseId: string; processes: string[]}}}).plan;
  assert.deepEqual(plan.start.map((entry) => [entry.processId, entry.port]), [[`web`, `ephemeral`]]);
  assert.match(plan.start[0]?.healthCheck ?? ``, /^http:\/\/127\.0\.0\.1:<port>\/ping$/);
  assert.deepEqual([plan.drain.releaseId, plan.drain.processes], [`v1`, [`web`]]);
  const after = await daemon.call(`status`);
  assert.deepEqual((after.releases as unknown[]).length, (before.releases as unknown[]).length);
  assert.equal(after.activeReleaseId, `v1`);
  assert.equal((await httpGet(daemon.proxyPort)).body, `v1\n`);
});

test(`stopped releases older than releaseRetention.maxAgeMs are forgotten without another deploy`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {releaseRetention: {keep: 10, maxAgeMs: 300}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`});
  await waitFor(async () => {
    const releases = (await daemon.call(`status`)).releases as Array<{releaseId: string}>;
    return releases.length === 1 && releases[0]?.releaseId === `v2`;
  }, {what: `v1 to be pruned by age`});
});
