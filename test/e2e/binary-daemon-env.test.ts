// The daemon's malloc settings and V8 flags (src/config/daemon-env.ts) on the built binary: `ensure-daemon`
// and `ensure-daemon --replace` start the daemon with them (its /proc/<pid>/environ and cmdline), and neither
// the app's processes nor the hooks inherit the settings (read from /proc/<pid>/environ of each); a value the
// operator set is kept for both.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {DAEMON_ENV_ADDED, DAEMON_MALLOC_ENV, DAEMON_V8_FLAGS} from '../../src/config/daemon-env.ts';
import {REPO_ROOT} from '../helpers/run-cli.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {beforeRemoving, createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {ensureBinaryDaemon, runBinary} from './binary-run.ts';

const HELLO_APP = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `proxy-hello.js`);
const MALLOC_NAMES = Object.keys(DAEMON_MALLOC_ENV);
/** The caller's environment without any of the variables under test. */
const WITHOUT = Object.fromEntries([...MALLOC_NAMES, DAEMON_ENV_ADDED].map((name) => [name, undefined]));

function readEnviron(pid: number): Record<string, string> {
  const entries = fs.readFileSync(`/proc/${pid}/environ`, `utf8`).split(`\0`).filter(Boolean).map((entry): [string, string] => {
    const at = entry.indexOf(`=`);
    return [entry.slice(0, at), entry.slice(at + 1)];
  });
  return Object.fromEntries(entries);
}

/** The daemon's arguments up to its command (`daemon`): the binary's own, e.g. `--node-options=…`. */
function argsBeforeCommand(pid: number): string[] {
  const argv = fs.readFileSync(`/proc/${pid}/cmdline`, `utf8`).split(`\0`);
  return argv.slice(1, argv.indexOf(`daemon`));
}

/** The variables under test in `env`, by name (absent ones left out). */
function pick(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries([...MALLOC_NAMES, DAEMON_ENV_ADDED].flatMap((name) => (env[name] === undefined ? [] : [[name, env[name]]])));
}

/** A project whose web process answers through the proxy and whose afterSwitch hook writes its environment to hook-env-<release>. */
function writeProject(dir: string, application: string): void {
  fs.mkdirSync(path.join(dir, `releases`, `one`), {recursive: true});
  fs.mkdirSync(path.join(dir, `releases`, `two`), {recursive: true});
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({
    application,
    control: {path: path.join(dir, `control.sock`)},
    logs: {dir: path.join(dir, `logs`)},
    statePath: path.join(dir, `state.json`),
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 500, forceStopTimeoutMs: 2_000},
    hooks: {afterSwitch: `env > "${dir}/hook-env-$ROLLBRIDGE_RELEASE_ID"`},
    processes: [{id: `web`, command: `exec "${process.execPath}" "${HELLO_APP}" {{port}}`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 25}}],
  }, null, 2));
}

async function deploy(dir: string, release: string): Promise<number> {
  const deployed = await runBinary([`deploy`, `--release-path`, `releases/${release}`, `--release-id`, release, `--json`], dir);
  assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
  const status = JSON.parse((await runBinary([`status`, `--json`], dir)).stdout) as {activeReleaseId: string; releases: Array<{releaseId: string; processes: Array<{id: string; pid: number | null}>}>};
  assert.equal(status.activeReleaseId, release);
  const pid = status.releases.find((r) => r.releaseId === release)?.processes.find((p) => p.id === `web`)?.pid;
  assert.ok(pid, `the web process of ${release} has a pid`);
  return pid;
}

function hookEnv(dir: string, release: string): Record<string, string> {
  const lines = fs.readFileSync(path.join(dir, `hook-env-${release}`), `utf8`).split(`\n`);
  return Object.fromEntries(lines.flatMap((line) => {
    const at = line.indexOf(`=`);
    return at > 0 ? [[line.slice(0, at), line.slice(at + 1)]] : [];
  }));
}

/** Shuts down whichever daemon serves `dir` (after --replace it is no longer the one ensureBinaryDaemon started). */
function shutDownAtEnd(dir: string): void {
  beforeRemoving(dir, async () => {
    const pidFile = path.join(dir, `daemon.pid`);
    const pid = Number(fs.readFileSync(pidFile, `utf8`));
    if (!isPidAlive(pid)) return;
    await runBinary([`shutdown`], dir);
    await waitFor(() => !isPidAlive(pid), {what: `the daemon ${pid} to exit`});
  });
}

test(`ensure-daemon and --replace start the daemon with the malloc settings and its V8 flags; the app and its hooks do not inherit the settings`, async (t) => {
  const dir = createTempDir(t, `rb-denv-`);
  writeProject(dir, `daemon-env-e2e`);
  const daemonPid = await ensureBinaryDaemon(dir, WITHOUT);
  shutDownAtEnd(dir);
  const ours = {...DAEMON_MALLOC_ENV, [DAEMON_ENV_ADDED]: MALLOC_NAMES.join(`,`)};
  assert.deepEqual(pick(readEnviron(daemonPid)), ours);
  const daemonArgs = [`--node-options=${DAEMON_V8_FLAGS.join(` `)}`];
  assert.deepEqual(argsBeforeCommand(daemonPid), daemonArgs, `the binary runs the daemon with --node-options`);

  const appPid = await deploy(dir, `one`);
  assert.deepEqual(pick(readEnviron(appPid)), {}, `the app's environment has none of the daemon's malloc settings`);
  assert.equal(readEnviron(appPid).ROLLBRIDGE_RELEASE_ID, `one`, `it is the app's environment that was read`);
  assert.deepEqual(pick(hookEnv(dir, `one`)), {}, `nor has the afterSwitch hook's`);
  assert.equal(hookEnv(dir, `one`).ROLLBRIDGE_HOOK, `afterSwitch`);

  const replaced = await runBinary([`ensure-daemon`, `--replace`, `--json`, `--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)], dir, ``, WITHOUT);
  assert.equal(replaced.code, 0, replaced.stderr + replaced.stdout);
  const successorPid = (JSON.parse(replaced.stdout) as {pid: number}).pid;
  assert.notEqual(successorPid, daemonPid);
  assert.deepEqual(pick(readEnviron(successorPid)), ours, `the successor runs with the same settings`);
  assert.deepEqual(argsBeforeCommand(successorPid), daemonArgs, `and the same V8 flags`);
  const nextAppPid = await deploy(dir, `two`);
  assert.deepEqual(pick(readEnviron(nextAppPid)), {}, `a process the successor starts does not inherit them either`);
  assert.deepEqual(pick(hookEnv(dir, `two`)), {});
});

test(`a malloc variable the operator set is kept for the daemon and still reaches the app; only the others are added`, async (t) => {
  const dir = createTempDir(t, `rb-denv-`);
  writeProject(dir, `daemon-env-own-e2e`);
  const daemonPid = await ensureBinaryDaemon(dir, {...WITHOUT, MALLOC_ARENA_MAX: `4`});
  shutDownAtEnd(dir);
  const added = MALLOC_NAMES.filter((name) => name !== `MALLOC_ARENA_MAX`);
  assert.deepEqual(pick(readEnviron(daemonPid)), {...DAEMON_MALLOC_ENV, MALLOC_ARENA_MAX: `4`, [DAEMON_ENV_ADDED]: added.join(`,`)});

  const appPid = await deploy(dir, `one`);
  assert.deepEqual(pick(readEnviron(appPid)), {MALLOC_ARENA_MAX: `4`});
  assert.deepEqual(pick(hookEnv(dir, `one`)), {MALLOC_ARENA_MAX: `4`});
});
