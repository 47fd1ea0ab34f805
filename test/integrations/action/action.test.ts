// integrations/action run through the local composite runner, on this runner (no SSH), against the
// real built binary and a real daemon it started; the steps see a PATH without node.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {getBinaryPath} from '../../e2e/binary-path.ts';
import {httpGet} from '../../helpers/http.ts';
import {createTempDir} from '../../helpers/temp-dir.ts';
import {ACTION_DIR, makeNodelessPath, runBinary, startBinaryDaemon} from './action-rig.ts';
import {runCompositeAction} from './composite-runner.ts';
import type {CompositeRun} from './composite-runner.ts';

type Status = {activeReleaseId: string | null; proxy: {port: number}; releases: Array<{releaseId: string; state: string; processes: Array<{id: string; pid: number}>}>};

function setUp(t: TestContext) {
  const binary = getBinaryPath();
  const workspace = createTempDir(t, `rb-action-`);
  const runnerTemp = path.join(workspace, `.runner-temp`);
  fs.mkdirSync(runnerTemp);
  const machinePath = makeNodelessPath(path.join(workspace, `.runner-bin`), {rollbridge: binary});
  const daemon = startBinaryDaemon(t, {binary, dir: workspace});
  const run = (inputs: Record<string, string>, github: Record<string, string> = {}): Promise<CompositeRun> => runCompositeAction({
    actionDir: ACTION_DIR, workspace, runnerTemp, with: {config: `rollbridge.json`, ...inputs},
    machineEnv: {PATH: machinePath, HOME: workspace, LANG: `C.UTF-8`}, github: {sha: `0123456789abcdef0123456789abcdef01234567`, ...github},
  });
  const release = (id: string) => {
    fs.mkdirSync(path.join(workspace, `releases`, id), {recursive: true});
    return `releases/${id}`;
  };
  const status = async () => JSON.parse((await runBinary(binary, [`status`, `--json`], {cwd: workspace})).stdout) as Status;
  return {binary, workspace, daemon, run, release, status, machinePath};
}

const errors = (run: CompositeRun) => run.annotations.filter((annotation) => annotation.level === `error`);

test(`the action deploys on this runner: outputs, phases in the log, a job summary, then changed=false, dry runs and failures`, async (t) => {
  const {daemon, run, release, status, machinePath} = setUp(t);
  assert.equal(fs.existsSync(path.join(machinePath, `node`)), false, `the steps run without node on PATH`);
  await daemon.ready;

  const first = await run({'release-path': release(`r1`), 'release-id': `r1`, revision: `rev-1`});
  assert.equal(first.status, `success`, first.log.join(`\n`));
  assert.deepEqual([first.outputs[`active-release`], first.outputs[`previous-release`], first.outputs.changed], [`r1`, ``, `true`]);

  await t.test(`a deploy sets the outputs, streams its phases and writes the summary`, async () => {
    const deployed = await run({'release-path': release(`r2`), 'release-id': `r2`, revision: `rev-2`});
    assert.equal(deployed.status, `success`, deployed.log.join(`\n`));
    assert.deepEqual([deployed.outputs[`active-release`], deployed.outputs[`previous-release`], deployed.outputs.changed], [`r2`, `r1`, `true`]);
    assert.match(deployed.outputs[`duration-ms`] ?? ``, /^\d+$/);
    const result = JSON.parse(deployed.outputs.result ?? ``) as {type: string; status: string; activeReleaseId: string};
    assert.deepEqual([result.type, result.status, result.activeReleaseId], [`result`, `success`, `r2`]);
    const groupStart = deployed.log.findIndex((line) => line.startsWith(`##[group]rollbridge deploy on this runner`));
    const groupEnd = deployed.log.indexOf(`##[endgroup]`, groupStart);
    assert.ok(groupStart >= 0 && deployed.log.slice(groupStart, groupEnd).some((line) => /^ {2}healthy \(processId web releaseId r2\) \d+ ms$/.test(line)), `phases stream inside a group:\n${deployed.log.join(`\n`)}`);
    assert.ok(deployed.log.includes(`✓ rollbridge deploy: release r2 is active (previous: r1; changed: true; ${formatMs(Number(deployed.outputs[`duration-ms`]))})`), deployed.log.join(`\n`));
    assert.match(deployed.summary, /^### ✅ rollbridge deploy: release r2 is active$/m);
    assert.match(deployed.summary, /^\| Before \| `r1` \|$/m);
    assert.match(deployed.summary, /^\| After \| `r2` \|$/m);
    assert.match(deployed.summary, /^\| Revision \| `rev-2` \|$/m);
    assert.match(deployed.summary, /^\| healthy \| processId web releaseId r2 \| \d+ ms \|$/m, deployed.summary);
    assert.equal(errors(deployed).length, 0);
    const current = await status();
    assert.equal(current.activeReleaseId, `r2`);
    assert.equal((await httpGet(current.proxy.port, `/release`)).body, `r2\n`);
  });

  await t.test(`the same deploy again reports changed=false and restarts nothing`, async () => {
    const before = await status();
    const again = await run({'release-path': release(`r2`), 'release-id': `r2`, revision: `rev-2`});
    assert.equal(again.status, `success`, again.log.join(`\n`));
    assert.deepEqual([again.outputs[`active-release`], again.outputs.changed], [`r2`, `false`]);
    assert.match(again.summary, /release r2 was already active: nothing was changed/);
    const after = await status();
    const pid = (s: Status) => s.releases.find((entry) => entry.releaseId === `r2`)?.processes.find((entry) => entry.id === `web`)?.pid;
    assert.ok(pid(before));
    assert.equal(pid(after), pid(before));
  });

  await t.test(`dry-run shows the plan and changes nothing`, async () => {
    const planned = await run({'release-path': release(`r3`), 'release-id': `r3`, 'dry-run': `true`});
    assert.equal(planned.status, `success`, planned.log.join(`\n`));
    assert.deepEqual([planned.outputs.changed, planned.outputs[`active-release`]], [`false`, `r2`]);
    assert.equal((JSON.parse(planned.outputs.result ?? ``) as {dryRun: boolean}).dryRun, true);
    assert.match(planned.summary, /dry run: nothing was changed/);
    assert.match(planned.summary, /^\| start \| web \| proxied \|$/m, planned.summary);
    const after = await status();
    assert.equal(after.activeReleaseId, `r2`);
    assert.ok(!after.releases.some((entry) => entry.releaseId === `r3`));
  });

  await t.test(`a release that fails its health check fails the step with the fix; the old release keeps serving`, async () => {
    const failed = await run({'release-path': release(`r4-bad`), 'release-id': `r4-bad`});
    assert.equal(failed.status, `failure`);
    const [annotation] = errors(failed);
    assert.ok(annotation, failed.log.join(`\n`));
    assert.equal(annotation.properties.title, `rollbridge ERR_HEALTH_CHECK_FAILED`);
    const result = JSON.parse(failed.outputs.result ?? ``) as {type: string; error: {code: string; message: string; fix: string}};
    assert.equal(result.type, `error`);
    assert.ok(result.error.fix.length > 0);
    assert.equal(annotation.message, `${result.error.message}\nFix: ${result.error.fix}`);
    assert.equal(failed.outputs.changed, `false`);
    assert.match(failed.summary, /^### ❌ rollbridge deploy failed on this runner$/m);
    assert.match(failed.summary, /^\*\*Fix:\*\* /m);
    const current = await status();
    assert.equal(current.activeReleaseId, `r2`);
    assert.equal((await httpGet(current.proxy.port, `/release`)).body, `r2\n`);
  });

  await t.test(`rollback and status run through the action too`, async () => {
    const rolledBack = await run({command: `rollback`});
    assert.equal(rolledBack.status, `success`, rolledBack.log.join(`\n`));
    assert.deepEqual([rolledBack.outputs[`active-release`], rolledBack.outputs[`previous-release`], rolledBack.outputs.changed], [`r1`, `r2`, `true`]);
    const shown = await run({command: `status`});
    assert.equal(shown.status, `success`, shown.log.join(`\n`));
    assert.deepEqual([shown.outputs[`active-release`], shown.outputs.changed], [`r1`, `false`]);
    assert.equal((JSON.parse(shown.outputs.result ?? ``) as Status).activeReleaseId, `r1`);
  });

  await t.test(`bad inputs fail before rollbridge runs, each with the input to fix`, async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{command: `launch`}, /^Input command must be one of deploy rollback restart status legacy-takeover predeploy-cleanup recover, got "launch"\nFix: Set command: /],
      [{command: `deploy`}, /^Input release-path is required for deploy\nFix: Set release-path: /],
      [{command: `rollback`, 'dry-run': `true`}, /^Input dry-run applies to deploy and legacy-takeover, not rollback\nFix: /],
      [{'release-path': `releases/r1`, 'dry-run': `yes`}, /^Input dry-run must be true or false, got "yes"\nFix: /],
      [{'release-path': `releases/r1`, 'release-id': `../etc`}, /^Input release-id "\.\.\/etc" is not a release id/],
      [{'release-path': `releases/r1`, 'ssh-host': `127.0.0.1`}, /^Input ssh-user is required with ssh-host\nFix: /],
      [{'release-path': `releases/r1`, 'ssh-host': `127.0.0.1`, 'ssh-user': `deploy`, 'ssh-private-key': `not-a-real-key`}, /^Input ssh-known-hosts is required with ssh-host/],
      [{'release-path': `releases/r1`, 'ssh-host': `127.0.0.1`, 'ssh-user': `deploy`, 'ssh-private-key': `not-a-real-key`, 'ssh-known-hosts': `x`, 'ssh-port': `70000`}, /^Input ssh-port must be a port number/],
      [{'release-path': `releases/r1`, 'install-binary': `rollbridge`}, /^Input install-binary needs ssh-host/],
    ];
    const before = await status();
    for (const [inputs, message] of cases) {
      const outcome = await run(inputs);
      assert.equal(outcome.status, `failure`, JSON.stringify(inputs));
      const annotations = errors(outcome);
      assert.equal(annotations.length >= 1, true, JSON.stringify(inputs));
      assert.equal(annotations[0]?.properties.title, `rollbridge`);
      assert.match(annotations[0]?.message ?? ``, message);
      assert.ok(!outcome.log.some((line) => line.startsWith(`##[group]rollbridge`)), `rollbridge did not run for ${JSON.stringify(inputs)}`);
    }
    assert.equal((await status()).activeReleaseId, before.activeReleaseId);
  });

  await t.test(`a missing binary is reported with the binary input to fix`, async () => {
    const outcome = await run({'release-path': release(`r5`), 'release-id': `r5`, binary: `/nonexistent/rollbridge`});
    assert.equal(outcome.status, `failure`);
    assert.match(errors(outcome)[0]?.message ?? ``, /^rollbridge deploy printed no JSON result: the binary "\/nonexistent\/rollbridge" was not found on this runner\nFix: Set binary: /);
  });
});

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.floor(ms / 1000)}.${String(Math.floor((ms % 1000) / 10)).padStart(2, `0`)} s`;
}
