// The packed npm packages installed with real pnpm (the pinned devDependency) and npm, running the
// real binary against a real daemon (itself the built binary).
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {after, test} from 'node:test';
import {getBinaryPath} from '../../e2e/binary-path.ts';
import {startDaemon, webConfig} from '../../helpers/daemon.ts';
import {httpGet} from '../../helpers/http.ts';
import {createTempDir} from '../../helpers/temp-dir.ts';
import {waitFor} from '../../helpers/wait-for.ts';
import {IGNORED_BUILDS_PATTERN, REPO_BIN, createProject, runCommand} from './npm-project.ts';
import type {NpmProject} from './npm-project.ts';

const PNPM = path.join(REPO_BIN, `pnpm`);

// One pnpm project for the pnpm tests (an install copies two ~110 MB binaries): installed by the
// first test that needs it, removed after the file. Tests only add scripts or set the environment.
let shared: Promise<NpmProject> | null = null;
const sharedAfter: Array<() => unknown> = [];
after(async () => {
  for (const fn of sharedAfter.reverse()) await fn();
});
function pnpmProject(): Promise<NpmProject> {
  shared ??= createProject({after: (fn) => sharedAfter.push(fn)}, {manager: `pnpm`});
  return shared;
}

function addScripts(project: NpmProject, scripts: Record<string, string>): void {
  const file = path.join(project.dir, `package.json`);
  const manifest = JSON.parse(fs.readFileSync(file, `utf8`)) as {scripts: Record<string, string>};
  fs.writeFileSync(file, JSON.stringify({...manifest, scripts: {...manifest.scripts, ...scripts}}, null, 2));
}

test(`pnpm installs the packages without build scripts and \`pnpm exec rollbridge --version\` runs the binary`, async () => {
  const project = await pnpmProject();
  const output = project.install.stdout + project.install.stderr;
  assert.doesNotMatch(output, IGNORED_BUILDS_PATTERN, output);
  const modules = JSON.parse(fs.readFileSync(path.join(project.dir, `node_modules`, `.modules.yaml`), `utf8`)) as {ignoredBuilds?: string[]; pendingBuilds?: string[]};
  assert.deepEqual(modules.ignoredBuilds ?? [], []);
  assert.deepEqual(modules.pendingBuilds ?? [], []);

  const version = await runCommand(PNPM, [`exec`, `rollbridge`, `--version`], {cwd: project.dir, env: project.env});
  assert.equal(version.code, 0, version.stderr);
  const expected = await runCommand(getBinaryPath(), [`--version`], {cwd: project.dir});
  assert.equal(version.stdout, expected.stdout);
  assert.match(version.stdout, /^rollbridge \d+\.\d+\.\d+ /);
});

test(`the ignored-builds check catches a dependency with a postinstall (the check above can fail)`, async (t) => {
  const dir = createTempDir(t, `rb-npm-`);
  const probe = path.join(dir, `probe`);
  fs.mkdirSync(probe);
  fs.writeFileSync(path.join(probe, `package.json`), JSON.stringify({name: `probe`, version: `1.0.0`, scripts: {postinstall: `echo built > built.txt`}}));
  const app = path.join(dir, `app`);
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, `package.json`), JSON.stringify({name: `app`, version: `1.0.0`, private: true, dependencies: {probe: `file:${probe}`}}));
  const env = {...process.env, PATH: `${REPO_BIN}:${process.env.PATH ?? ``}`, HOME: dir, npm_config_store_dir: path.join(dir, `.pnpm-store`)};
  const install = await runCommand(PNPM, [`install`, `--reporter`, `append-only`], {cwd: app, env});
  assert.match(install.stdout + install.stderr, IGNORED_BUILDS_PATTERN);
  assert.equal(fs.existsSync(path.join(app, `node_modules`, `probe`, `built.txt`)), false, `pnpm ran the probe's postinstall`);
});

test(`a pnpm run script deploys through the package against a real daemon, and exit codes pass through`, async (t) => {
  const binary = getBinaryPath();
  const daemon = await startDaemon(t, (dir) => webConfig(dir), {executable: binary});
  const release = daemon.release(`r1`);
  const project = await pnpmProject();
  addScripts(project, {'deploy': `rollbridge deploy --config ${daemon.configPath} --release-id r1 --json --release-path`});
  // pnpm passes the arguments after the script name on to the command, as the orchestrator's users ran it.
  const deployed = await runCommand(PNPM, [`run`, `--silent`, `deploy`, release], {cwd: project.dir, env: project.env});
  assert.equal(deployed.code, 0, deployed.stderr + daemon.stderr());
  const result = JSON.parse(deployed.stdout) as {status: string; activeReleaseId: string};
  assert.equal(result.status, `success`);
  assert.equal(result.activeReleaseId, `r1`);
  assert.equal((await httpGet(daemon.proxyPort)).body, `r1\n`);

  const again = await runCommand(PNPM, [`run`, `--silent`, `deploy`, path.join(daemon.dir, `releases`, `missing`)], {cwd: project.dir, env: project.env});
  assert.equal(again.code, 1);
  assert.equal((JSON.parse(again.stdout) as {error: {code: string}}).error.code, `ERR_RELEASE_PATH_INVALID`);
  const usage = await runCommand(PNPM, [`exec`, `rollbridge`, `deploy`, `--no-such-flag`], {cwd: project.dir, env: project.env});
  assert.equal(usage.code, 2, usage.stderr);
  assert.equal((await httpGet(daemon.proxyPort)).body, `r1\n`, `the failed deploys left r1 serving`);
});

test(`ROLLBRIDGE_BIN wins over the platform package; arguments, exit code and a signal death pass through`, async () => {
  const project = await pnpmProject();
  const fake = path.join(project.dir, `fake-rollbridge.sh`);
  fs.writeFileSync(fake, `#!/bin/sh\nprintf '%s\\n' "$@"\nif [ "$1" = die ]; then kill -TERM $$; fi\nexit 42\n`, {mode: 0o755});
  const env = {...project.env, ROLLBRIDGE_BIN: fake};
  const ran = await runCommand(PNPM, [`exec`, `rollbridge`, `a b`, `--c`], {cwd: project.dir, env});
  assert.equal(ran.code, 42);
  assert.equal(ran.stdout, `a b\n--c\n`);
  const died = await runCommand(path.join(project.dir, `node_modules`, `.bin`, `rollbridge`), [`die`], {cwd: project.dir, env});
  assert.equal(died.code, 128 + 15, `SIGTERM is signal 15: the shell convention 128 + n`);

  const missing = await runCommand(PNPM, [`exec`, `rollbridge`, `--version`], {cwd: project.dir, env: {...project.env, ROLLBRIDGE_BIN: path.join(project.dir, `nope`)}});
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /ERR_NPM_BINARY_NOT_FOUND: ROLLBRIDGE_BIN is ".*nope", which is not an executable file/);
});

test(`a signal sent to the rollbridge command reaches the binary, and its death exits 128 + n`, async (t) => {
  const binary = getBinaryPath();
  const daemon = await startDaemon(t, (dir) => webConfig(dir), {executable: binary});
  const project = await pnpmProject();
  const shim = path.join(project.dir, `node_modules`, `.bin`, `rollbridge`);
  const follow = (signalTarget: `shim` | `binary`, signal: NodeJS.Signals) => new Promise<number | null>((resolve, reject) => {
    const child = spawn(shim, [`events`, `--follow`, `--json`, `--config`, daemon.configPath], {cwd: project.dir, env: project.env, stdio: [`ignore`, `pipe`, `pipe`]});
    child.once(`error`, reject);
    child.once(`exit`, (code) => resolve(code));
    // pnpm's shell shim runs a few commands, then execs node: wait for the binary among its children.
    void waitFor(() => childrenOf(child.pid!).find((pid) => /node_modules\/@rollbridge\/linux-x64\/rollbridge$/.test(readExe(pid))), {what: `the rollbridge binary under the shim`}).then((pid) => {
      process.kill(signalTarget === `shim` ? child.pid! : pid, signal);
    }, reject);
  });
  assert.equal(await follow(`binary`, `SIGKILL`), 128 + 9);
  assert.equal(await follow(`shim`, `SIGTERM`), 128 + 15, `the shim forwarded SIGTERM and reported the binary's death`);
});

test(`npm installs the same packages, skips the arm64 one on x64, and without any binary the command exits 127`, {skip: process.arch !== `x64` && `the check of the skipped arm64 package assumes an x64 machine`}, async (t) => {
  const project = await createProject(t, {manager: `npm`});
  assert.equal(fs.existsSync(path.join(project.dir, `node_modules`, `@rollbridge`, `linux-x64`, `rollbridge`)), true);
  assert.equal(fs.existsSync(path.join(project.dir, `node_modules`, `@rollbridge`, `linux-arm64`)), false, `npm installed the arm64 package on x64`);
  const version = await runCommand(`npm`, [`exec`, `--`, `rollbridge`, `--version`], {cwd: project.dir, env: project.env});
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, /^rollbridge \d+\.\d+\.\d+ /);

  fs.rmSync(path.join(project.dir, `node_modules`, `@rollbridge`), {recursive: true});
  const missing = await runCommand(path.join(project.dir, `node_modules`, `.bin`, `rollbridge`), [`status`, `--json`], {cwd: project.dir, env: project.env});
  assert.equal(missing.code, 127);
  const error = (JSON.parse(missing.stdout) as {error: {code: string; message: string; fix: string}}).error;
  assert.equal(error.code, `ERR_NPM_BINARY_NOT_FOUND`);
  assert.match(error.message, /@rollbridge\/linux-x64 is not installed and ROLLBRIDGE_BIN is not set/);
  assert.match(error.fix, /ROLLBRIDGE_BIN/);
});

function readExe(pid: number): string {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return ``;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, `utf8`).trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
