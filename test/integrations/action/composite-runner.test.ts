// The local composite runner does what GitHub's runner does for `run:` steps (file commands, workflow
// commands, masking, conditions, continue-on-error, outputs), checked on small actions written here.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {createTempDir} from '../../helpers/temp-dir.ts';
import {evaluateCondition, evaluateTemplate, parseKeyValueFile, runCompositeAction} from './composite-runner.ts';
import type {CompositeOptions} from './composite-runner.ts';

function writeAction(t: TestContext, yaml: string): {actionDir: string; workspace: string; runnerTemp: string} {
  const dir = createTempDir(t, `rb-composite-`);
  const actionDir = path.join(dir, `workspace`, `action`);
  fs.mkdirSync(actionDir, {recursive: true});
  fs.mkdirSync(path.join(dir, `temp`));
  fs.writeFileSync(path.join(actionDir, `action.yml`), yaml);
  return {actionDir, workspace: path.join(dir, `workspace`), runnerTemp: path.join(dir, `temp`)};
}

async function run(t: TestContext, yaml: string, options: Partial<CompositeOptions> = {}) {
  return runCompositeAction({...writeAction(t, yaml), ...options});
}

test(`outputs (plain and multi-line), env and path pass from step to step, the summary is collected`, async (t) => {
  const result = await run(t, `
name: sample
description: sample
inputs:
  release: {description: r, default: "r-\${{ github.sha }}"}
  app: {description: a, required: true}
outputs:
  release: {description: r, value: "\${{ steps.first.outputs.release }}"}
  notes: {description: n, value: "\${{ steps.first.outputs.notes }}"}
  seen: {description: s, value: "\${{ steps.second.outputs.seen }}"}
runs:
  using: composite
  steps:
    - id: first
      shell: bash
      env: {RELEASE: "\${{ inputs.release }}"}
      run: |
        echo "release=$RELEASE" >> "$GITHUB_OUTPUT"
        printf 'notes<<EOF_1\\nline one\\nline two\\nEOF_1\\n' >> "$GITHUB_OUTPUT"
        echo "FROM_FIRST=hello" >> "$GITHUB_ENV"
        mkdir -p "$RUNNER_TEMP/bin" && printf '#!/bin/sh\\necho tool-ran\\n' > "$RUNNER_TEMP/bin/rb-tool" && chmod +x "$RUNNER_TEMP/bin/rb-tool"
        echo "$RUNNER_TEMP/bin" >> "$GITHUB_PATH"
        echo "### deployed $RELEASE" >> "$GITHUB_STEP_SUMMARY"
    - id: second
      shell: bash
      env: {FROM_CONTEXT: "\${{ env.FROM_FIRST }}-\${{ inputs.app }}"}
      run: |
        echo "seen=$FROM_FIRST/$FROM_CONTEXT/$(rb-tool)" >> "$GITHUB_OUTPUT"
        echo "| a | b |" >> "$GITHUB_STEP_SUMMARY"
    - if: failure()
      shell: bash
      run: echo "never" && exit 1
`, {with: {}, github: {sha: `abc123`}});
  assert.equal(result.status, `success`, result.log.join(`\n`));
  assert.deepEqual(result.outputs, {release: `r-abc123`, notes: `line one\nline two`, seen: `hello/hello-/tool-ran`});
  assert.deepEqual(result.steps.map((step) => [step.id, step.outcome]), [[`first`, `success`], [`second`, `success`], [`__2`, `skipped`]]);
  assert.equal(result.summary, `### deployed r-abc123\n| a | b |\n`);
  assert.deepEqual(result.env, {FROM_FIRST: `hello`});
  assert.equal(result.annotations.length, 0, `required inputs are not enforced by the runner`);
});

test(`a failing step fails the action with the exit code, skips success() steps and runs failure()/always() ones`, async (t) => {
  const result = await run(t, `
name: sample
description: sample
outputs:
  status: {description: s, value: "\${{ steps.cleanup.outputs.saw }}"}
runs:
  using: composite
  steps:
    - id: tolerated
      shell: bash
      continue-on-error: true
      run: exit 4
    - id: fails
      shell: bash
      run: |
        echo "::error title=rollbridge,file=app.js,line=3::Deploy failed%0Afix: run it again"
        false | true
        false | cat
        echo "not reached"
    - shell: bash
      run: echo "skipped"
    - id: cleanup
      if: \${{ failure() }}
      shell: bash
      run: echo "saw=\${{ steps.fails.outcome }}/\${{ steps.tolerated.outcome }}/\${{ steps.tolerated.conclusion }}" >> "$GITHUB_OUTPUT"
    - id: last
      if: always()
      shell: bash
      run: echo done
`);
  assert.equal(result.status, `failure`);
  assert.deepEqual(result.steps.map((step) => [step.id, step.outcome, step.conclusion, step.exitCode]), [
    [`tolerated`, `failure`, `success`, 4], [`fails`, `failure`, `failure`, 1], [`__2`, `skipped`, `skipped`, null],
    [`cleanup`, `success`, `success`, 0], [`last`, `success`, `success`, 0],
  ]);
  assert.equal(result.outputs.status, `failure/failure/success`);
  assert.deepEqual(result.annotations.filter((annotation) => annotation.level === `error`).map((annotation) => annotation.message), [
    `Process completed with exit code 4.`, `Deploy failed\nfix: run it again`, `Process completed with exit code 1.`,
  ]);
  assert.deepEqual(result.annotations[1]?.properties, {title: `rollbridge`, file: `app.js`, line: `3`});
  assert.ok(!result.log.includes(`not reached`), `pipefail: \`false | cat\` ends the script`);
});

test(`::add-mask:: hides a value (each of its lines) in later output, annotations and the summary`, async (t) => {
  const result = await run(t, `
name: sample
description: sample
runs:
  using: composite
  steps:
    - shell: bash
      env: {KEY: "\${{ inputs.key }}"}
      run: |
        echo "before $KEY"
        while IFS= read -r line; do echo "::add-mask::$line"; done <<< "$KEY"
        echo "after $KEY"
        echo "one line: s3cr3t-line-two"
        echo "::warning::leaked s3cr3t-line-one"
        echo "summary s3cr3t-line-one" >> "$GITHUB_STEP_SUMMARY"
        echo "::stop-commands::pause-token-1234"
        echo "::error::not an annotation"
        echo "::pause-token-1234::"
        echo "::notice::an annotation again"
inputs:
  key: {description: k}
`, {with: {key: `s3cr3t-line-one\ns3cr3t-line-two`}});
  assert.equal(result.status, `success`, result.log.join(`\n`));
  const log = result.log.join(`\n`);
  assert.match(log, /before s3cr3t-line-one/, `a mask applies from the line after ::add-mask:: on`);
  assert.match(log, /after \*\*\*/);
  assert.match(log, /one line: \*\*\*/);
  assert.doesNotMatch(log.slice(log.indexOf(`after ***`)), /s3cr3t/);
  assert.equal(result.summary, `summary ***\n`);
  assert.deepEqual(result.annotations.map((annotation) => [annotation.level, annotation.message]), [[`warning`, `leaked ***`], [`notice`, `an annotation again`]]);
  assert.match(log, /::error::not an annotation/);
});

test(`a malformed GITHUB_OUTPUT or GITHUB_ENV fails the step with the runner's messages`, async (t) => {
  const result = await run(t, `
name: sample
description: sample
runs:
  using: composite
  steps:
    - id: unterminated
      shell: bash
      continue-on-error: true
      run: printf 'log<<EOF\\nsomething\\n' >> "$GITHUB_OUTPUT"
    - id: no-equals
      shell: bash
      run: |
        echo "ok=1" >> "$GITHUB_OUTPUT"
        echo "just words" >> "$GITHUB_ENV"
`);
  assert.equal(result.status, `failure`);
  assert.deepEqual(result.annotations.map((annotation) => annotation.message), [
    `Unable to process file command 'output' successfully.`, `Invalid value. Matching delimiter not found 'EOF'`,
    `Unable to process file command 'env' successfully.`, `Invalid format 'just words'`,
  ]);
  assert.deepEqual(result.steps[1]?.outputs, {ok: `1`}, `the other file commands still apply`);
});

test(`unexpected inputs are a warning; expressions are substituted into run: before bash sees them`, async (t) => {
  const result = await run(t, `
name: sample
description: sample
inputs:
  title: {description: t}
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "title is \${{ inputs.title }} and \${{ format('{0}}}', 'x') }}"
`, {with: {title: `$(echo injected)`, bogus: `1`}});
  assert.equal(result.status, `success`);
  assert.deepEqual(result.annotations.map((annotation) => annotation.message), [`Unexpected input(s) 'bogus', valid inputs are ['title']`]);
  assert.ok(result.log.includes(`title is injected and x}`), result.log.join(`\n`));
});

test(`env-file parsing, templates and conditions follow the runner's rules`, () => {
  assert.deepEqual(parseKeyValueFile(`a=1\n\nb=x=y\nc<<END\nl1\n\nl3\nEND\nd<<END\nEND\n`), [[`a`, `1`], [`b`, `x=y`], [`c`, `l1\n\nl3`], [`d`, ``]]);
  assert.deepEqual(parseKeyValueFile(`k<<=\nv\n=\n`), [[`k`, `v`]], `the first of = and << decides the form`);
  assert.deepEqual(parseKeyValueFile(`k<<EOF\nv\nEOF`), [[`k`, `v`]], `the delimiter line itself needs no newline`);
  assert.throws(() => parseKeyValueFile(`k<<EOF\nv`), /EOF marker missing new line/);
  assert.throws(() => parseKeyValueFile(`<<EOF\nEOF\n`), /Name must not be empty and delimiter must not be empty/);
  const contexts = {inputs: {'dry-run': `true`, 'release-id': ``}, steps: {}, github: {event_name: `pull_request`}};
  assert.equal(evaluateTemplate(`\${{ inputs.dry-run == 'true' }}`, contexts).coerceString(), `true`);
  assert.equal(evaluateTemplate(`id: \${{ inputs.release-id || 'default' }}.`, contexts).coerceString(), `id: default.`);
  assert.throws(() => evaluateTemplate(`\${{ inputs.x`, contexts), /The expression is not closed/);
  const status = (value: boolean) => [{name: `success`, minArgs: 0, maxArgs: 0, call: () => evaluateTemplate(`\${{ ${value} }}`, {})}, {name: `always`, minArgs: 0, maxArgs: 0, call: () => evaluateTemplate(`\${{ true }}`, {})}];
  assert.equal(evaluateCondition(`github.event_name == 'pull_request'`, contexts, status(false)), false, `no status function: success() && (…)`);
  assert.equal(evaluateCondition(`always() && github.event_name == 'pull_request'`, contexts, status(false)), true);
  assert.equal(evaluateCondition(undefined, contexts, status(true)), true);
});
