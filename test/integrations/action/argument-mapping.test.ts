// Unit test of the action's script at its two seams with rollbridge: which argv each command gets, and
// how the JSON that comes back (escapes, unicode, newlines, pipes) becomes outputs, annotations and the
// summary. A stub stands in for the binary here (it records its argv and prints a given answer); the
// real binary is exercised by action.test.ts and action-ssh.test.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {createTempDir} from '../../helpers/temp-dir.ts';
import {ACTION_DIR, makeNodelessPath} from './action-rig.ts';
import {runCompositeAction} from './composite-runner.ts';

function stubRig(t: TestContext, answer: string, exitCode = 0) {
  const workspace = createTempDir(t, `rb-action-stub-`);
  const runnerTemp = path.join(workspace, `.runner-temp`);
  fs.mkdirSync(runnerTemp);
  const stub = path.join(workspace, `stub-rollbridge`);
  fs.writeFileSync(path.join(workspace, `answer.json`), answer);
  // One argument per line, so an argument holding spaces stays recognisable.
  fs.writeFileSync(stub, `#!/bin/sh\nfor arg in "$@"; do printf '%s\\n' "$arg"; done > "${workspace}/argv"\nprintf 'ROLLBRIDGE_OUTPUT=%s\\n' "$ROLLBRIDGE_OUTPUT" >> "${workspace}/argv"\ncat "${workspace}/answer.json"\nexit ${exitCode}\n`, {mode: 0o755});
  fs.mkdirSync(path.join(workspace, `releases`, `r7`), {recursive: true});
  const machinePath = makeNodelessPath(path.join(workspace, `.runner-bin`), {rollbridge: stub});
  const run = (inputs: Record<string, string>) => runCompositeAction({
    actionDir: ACTION_DIR, workspace, runnerTemp, with: inputs,
    machineEnv: {PATH: machinePath, HOME: workspace}, github: {sha: `c0ffee0000000000000000000000000000000000`},
  });
  const argv = () => fs.readFileSync(path.join(workspace, `argv`), `utf8`).trimEnd().split(`\n`);
  return {run, argv};
}

const OK = `{"type":"result","status":"success","changed":true,"activeReleaseId":"r7","previousReleaseId":"r6","durationMs":5}\n`;

test(`each command gets its flags; args are one argument per line; ROLLBRIDGE_OUTPUT=json is set`, async (t) => {
  const {run, argv} = stubRig(t, OK);
  const cases: Array<[Record<string, string>, string[]]> = [
    [{'release-path': `releases/r7`}, [`deploy`, `--release-path`, `releases/r7`, `--release-id`, `c0ffee0000000000000000000000000000000000`, `--revision`, `c0ffee0000000000000000000000000000000000`, `--skip-if-active`, `--json`, `--stream`]],
    [{'release-path': `releases/r7`, 'release-id': `r7`, revision: `v1.2`, watch: `30s`, 'skip-if-active': `false`, config: `deploy/rollbridge.json`}, [`deploy`, `--config`, `deploy/rollbridge.json`, `--release-path`, `releases/r7`, `--release-id`, `r7`, `--revision`, `v1.2`, `--watch`, `30s`, `--json`, `--stream`]],
    [{'release-path': `releases/r7`, 'release-id': `r7`, 'dry-run': `TRUE`}, [`deploy`, `--release-path`, `releases/r7`, `--release-id`, `r7`, `--revision`, `c0ffee0000000000000000000000000000000000`, `--dry-run`, `--json`, `--stream`]],
    [{command: `rollback`}, [`rollback`, `--json`, `--stream`]],
    [{command: `rollback`, 'release-id': `r5`}, [`rollback`, `--release-id`, `r5`, `--json`, `--stream`]],
    [{command: `restart`, args: `--process\nworker\n\n--check-url\nhttp://127.0.0.1:8182/a b\n`}, [`restart`, `--json`, `--stream`, `--process`, `worker`, `--check-url`, `http://127.0.0.1:8182/a b`]],
    [{command: `legacy-takeover`, 'release-path': `releases/r7`, 'release-id': `r7`}, [`legacy-takeover`, `--release-path`, `releases/r7`, `--release-id`, `r7`, `--revision`, `c0ffee0000000000000000000000000000000000`, `--json`, `--stream`]],
    [{command: `predeploy-cleanup`, 'release-path': `releases/r7`}, [`predeploy-cleanup`, `--release-path`, `releases/r7`, `--json`]],
    [{command: `recover`, args: `--force`}, [`recover`, `--json`, `--force`]],
    [{command: `status`}, [`status`, `--json`]],
  ];
  for (const [inputs, expected] of cases) {
    const result = await run(inputs);
    assert.equal(result.status, `success`, `${JSON.stringify(inputs)}\n${result.log.join(`\n`)}`);
    assert.deepEqual(argv(), [...expected, `ROLLBRIDGE_OUTPUT=json`], JSON.stringify(inputs));
  }
});

test(`an error answer becomes one annotation with the decoded message and fix, escaped for the log and the summary`, async (t) => {
  const answer = `{"type":"phase","phase":"started","processId":"web","durationMs":3}\n{"type":"error","error":{"code":"ERR_SOMETHING_BROKE","message":"Line one\\nline \\"two\\" | 100% \\u00e9 \\ud83d\\ude00 \\\\ back","fix":"Set health.path: /ping, then retry"}}\n`;
  const {run} = stubRig(t, answer, 1);
  const result = await run({'release-path': `releases/r7`});
  assert.equal(result.status, `failure`);
  const errors = result.annotations.filter((annotation) => annotation.level === `error`);
  assert.deepEqual(errors.map((annotation) => [annotation.properties.title, annotation.message]), [
    [`rollbridge ERR_SOMETHING_BROKE`, `Line one\nline "two" | 100% é 😀 \\ back\nFix: Set health.path: /ping, then retry`],
    [undefined, `Process completed with exit code 1.`],
  ]);
  assert.equal(result.outputs.changed, `false`);
  assert.equal((JSON.parse(result.outputs.result ?? ``) as {error: {code: string}}).error.code, `ERR_SOMETHING_BROKE`);
  assert.match(result.summary, /^\*\*ERR_SOMETHING_BROKE\*\*: Line one line "two" \\\| 100% é 😀 \\ back$/m);
  assert.match(result.summary, /^\| started \| processId web \| 3 ms \|$/m, `phases before the failure are in the summary`);
});

test(`an answer that is not JSON, or none, fails with what is known`, async (t) => {
  const garbage = stubRig(t, `Segmentation fault\n`, 139);
  const crashed = await garbage.run({command: `status`});
  assert.equal(crashed.status, `failure`);
  assert.match(crashed.annotations[0]?.message ?? ``, /^rollbridge status printed no JSON result: it exited with status 139\nFix: /);
  assert.ok(crashed.log.includes(`Segmentation fault`), `what it printed is in the log`);

  const silent = stubRig(t, ``, 0);
  const empty = await silent.run({command: `status`});
  assert.equal(empty.status, `failure`);
  assert.match(empty.annotations[0]?.message ?? ``, /^rollbridge status printed no JSON result: it exited with status 0/);
});
