// The typed Node API of the packed package, used from a TypeScript file the way a project would: the file
// is type-checked with tsc against the installed declarations, then run by Node 24 (type stripping)
// against a real daemon (the built binary).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {getBinaryPath} from '../../e2e/binary-path.ts';
import {startDaemon, webConfig} from '../../helpers/daemon.ts';
import {httpGet} from '../../helpers/http.ts';
import {REPO_ROOT} from '../../helpers/run-cli.ts';
import {REPO_BIN, createProject, runCommand} from './npm-project.ts';

const CONSUMER = `import {deploy, deployProgress, events, isRollbridgeError, restart, RollbridgeError, status, validate} from 'rollbridge';
import type {DeployProgress, DeployResult, RestartResult, RollbridgeEvent, StatusResult, ValidateResult} from 'rollbridge';

const [config, releasePath] = process.argv.slice(2) as [string, string];
const report: Record<string, unknown> = {};

const deployed: DeployResult = await deploy({config, releasePath, releaseId: \`api1\`, revision: \`abc123\`});
report.deploy = {status: deployed.status, activeReleaseId: deployed.activeReleaseId, previousReleaseId: deployed.previousReleaseId, durationMs: typeof deployed.durationMs};

const progress: DeployProgress[] = [];
for await (const line of deployProgress({config, releasePath: releasePath + \`-2\`, releaseId: \`api2\`})) progress.push(line);
const last = progress.at(-1);
report.progress = {phases: progress.filter((line) => line.type === \`phase\`).map((line) => line.type === \`phase\` ? line.phase : \`\`), last: last?.type === \`result\` ? [last.activeReleaseId, last.previousReleaseId, last.changed] : null};
const back = await deploy({config, releasePath, releaseId: \`api1\`});
report.back = back.activeReleaseId;

const current: StatusResult = await status({config});
report.status = current.activeReleaseId;

// Replays the history, then follows: a restart made after the replay arrives as it happens.
const seen: RollbridgeEvent[] = [];
let restarted: Promise<RestartResult> | null = null;
for await (const event of events({config})) {
  seen.push(event);
  if (restarted === null && event.data.releaseId === \`api1\`) restarted = restart({config, process: \`web\`});
  if (event.message === \`process restart requested\`) break;
}
report.events = {sawApi1: seen.some((event) => event.data.releaseId === \`api1\`), last: seen.at(-1)?.message, restarted: (await restarted)?.restarted};

const controller = new AbortController();
const aborted = (async () => {
  for await (const _ of events({config, signal: controller.signal})) controller.abort(new Error(\`enough\`));
})();
report.abort = await aborted.then(() => \`resolved\`, (error: Error) => error.message);

try {
  await deploy({config, releasePath: releasePath + \`-missing\`, releaseId: \`api3\`});
  report.error = \`no error\`;
} catch (error) {
  if (!(error instanceof RollbridgeError)) throw error;
  const code: string = error.code;
  report.error = {code, message: error.message, fix: error.fix, exitCode: error.exitCode, isRollbridgeError: isRollbridgeError(error)};
}

const checked: ValidateResult = await validate({config: config + \`.missing.json\`});
report.validate = {valid: checked.valid, issues: checked.issues.length};
console.log(JSON.stringify(report));
`;

test(`the API deploys, reports status, iterates events and throws RollbridgeError with code and fix, from a type-checked TypeScript file`, async (t) => {
  const binary = getBinaryPath();
  const daemon = await startDaemon(t, (dir) => webConfig(dir), {executable: binary});
  const release = daemon.release(`api1`);
  fs.mkdirSync(`${release}-2`);
  const project = await createProject(t, {manager: `pnpm`});
  fs.writeFileSync(path.join(project.dir, `use-api.mts`), CONSUMER);
  const tsc = (file: string) => {
    fs.writeFileSync(path.join(project.dir, `tsconfig.json`), JSON.stringify({
      compilerOptions: {
        module: `nodenext`, moduleResolution: `nodenext`, target: `es2022`, strict: true, noEmit: true,
        types: [`node`], typeRoots: [path.join(REPO_ROOT, `node_modules`, `@types`)], erasableSyntaxOnly: true, verbatimModuleSyntax: true,
      },
      files: [file],
    }));
    return runCommand(process.execPath, [path.join(REPO_ROOT, `node_modules`, `typescript`, `bin`, `tsc`), `-p`, `tsconfig.json`], {cwd: project.dir, env: project.env});
  };
  const typecheck = await tsc(`use-api.mts`);
  assert.equal(typecheck.code, 0, typecheck.stdout + typecheck.stderr);
  // The check can fail: a wrong option type against the published declarations.
  fs.writeFileSync(path.join(project.dir, `wrong.mts`), `import {deploy} from 'rollbridge';\nawait deploy({releasePath: 42});\n`);
  const wrong = await tsc(`wrong.mts`);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stdout, /wrong\.mts.*Type 'number' is not assignable to type 'string'/s);

  const ran = await runCommand(path.join(REPO_BIN, `node`), [`use-api.mts`, daemon.configPath, release], {cwd: project.dir, env: project.env});
  assert.equal(ran.code, 0, ran.stdout + ran.stderr + daemon.stderr());
  const report = JSON.parse(ran.stdout) as {
    deploy: unknown; progress: {phases: string[]; last: unknown}; back: string; status: string; events: unknown; abort: string; validate: unknown;
    error: {code: string; message: string; fix: unknown; exitCode: number; isRollbridgeError: boolean};
  };
  assert.deepEqual(report.deploy, {status: `success`, activeReleaseId: `api1`, previousReleaseId: null, durationMs: `number`});
  assert.ok(report.progress.phases.includes(`switched`), report.progress.phases.join(`, `));
  assert.deepEqual(report.progress.last, [`api2`, `api1`, true]);
  assert.equal(report.back, `api1`);
  assert.equal(report.status, `api1`);
  assert.deepEqual(report.events, {sawApi1: true, last: `process restart requested`, restarted: [`web`]});
  assert.equal(report.abort, `enough`);
  assert.equal(report.error.code, `ERR_RELEASE_PATH_INVALID`);
  assert.match(report.error.message, /api1-missing/);
  assert.equal(typeof report.error.fix, `string`);
  assert.deepEqual([report.error.exitCode, report.error.isRollbridgeError], [1, true]);
  assert.deepEqual(report.validate, {valid: false, issues: 1});
  assert.equal((await httpGet(daemon.proxyPort)).body, `api1\n`);
});
