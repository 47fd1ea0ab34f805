import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import type {ParamsOf} from '../../src/control/protocol.ts';
import {findListeningPids} from '../../src/takeover/ports.ts';
import {createTestHandlers, startControlServer} from '../control/start-control-server.ts';
import {webConfig} from '../helpers/daemon.ts';
import {freePort} from '../helpers/ports.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {runCli} from '../helpers/run-cli.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {listOwnSessions, pidsOfSession, requireScreen, startDetached, startScreenSession, uniqueName} from '../takeover/legacy-fixtures.ts';
import {readProcStat} from '../../src/system/proc.ts';

type PlanJson = {
  status: string;
  dryRun: boolean;
  plan: {
    releasePath: string;
    releaseId: string | null;
    revision: string | null;
    forceStopTimeoutMs: number;
    proxy: {host: string; port: number; heldByLegacy: boolean; listeners: Array<{pid: number; args: string; legacy: boolean}>};
    legacy: {user: {name: string; uid: number}; screens: Array<{id: string}>; processes: Array<{pid: number; source: string; args: string}>; warnings: string[]};
  };
};

/** A screen session whose app listens on the proxy port, as a legacy deployment does. */
async function legacyApp(t: TestContext): Promise<{dir: string; configPath: string; port: number; session: {id: string; pid: number}; appPid: number}> {
  const dir = createTempDir(t);
  const port = await freePort();
  const name = uniqueName();
  const configPath = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(configPath, JSON.stringify(webConfig(dir, {
    proxy: {host: `127.0.0.1`, port},
    legacyTakeover: {screens: [name], forceStopTimeoutMs: 3_000},
  })));
  const app = `exec "${process.execPath}" -e "require('net').createServer().listen(${port}, '127.0.0.1')"`;
  const session = await startScreenSession(t, name, app, {cwd: dir, processes: 1});
  const [appPid] = await waitFor(() => {
    const pids = findListeningPids(port);
    return pids.length > 0 ? pids : null;
  }, {what: `the legacy app to listen on ${port}`});
  assert.ok(appPid !== undefined);
  return {dir, configPath, port, session, appPid};
}

test(`--dry-run --json prints the sessions, processes, release and the legacy holder of the proxy port, changing nothing`, async (t) => {
  if (!requireScreen(t)) return;
  const {dir, configPath, port, session, appPid} = await legacyApp(t);
  const result = await runCli([`legacy-takeover`, `--config`, configPath, `--release-path`, `releases/42`, `--release-id`, `42`, `--revision`, `abc123`, `--dry-run`, `--json`], {cwd: dir});
  assert.equal(result.code, 0, result.stderr);
  const {status, dryRun, plan} = result.json() as PlanJson;
  assert.equal(status, `success`);
  assert.equal(dryRun, true);
  assert.equal(plan.releasePath, path.join(dir, `releases`, `42`));
  assert.equal(plan.releaseId, `42`);
  assert.equal(plan.revision, `abc123`);
  assert.equal(plan.forceStopTimeoutMs, 3_000);
  assert.deepEqual(plan.proxy, {host: `127.0.0.1`, port, heldByLegacy: true, listeners: [{pid: appPid, args: plan.proxy.listeners[0]?.args ?? ``, legacy: true}]});
  assert.deepEqual(plan.legacy.screens.map((entry) => entry.id), [session.id]);
  assert.deepEqual(plan.legacy.processes.map((entry) => [entry.pid, entry.source]).sort(), [[session.pid, `screen ${session.id}`], [appPid, `screen ${session.id}`]].sort());
  assert.equal(plan.legacy.user.uid, process.getuid?.());
  for (const pid of [session.pid, appPid, ...pidsOfSession(session.id)]) assert.equal(isPidAlive(pid), true);
  assert.ok((await listOwnSessions()).some((entry) => entry.id === session.id));
});

test(`--dry-run prints a readable plan naming each process's source and who holds the proxy port`, async (t) => {
  if (!requireScreen(t)) return;
  const {configPath, port, session, appPid} = await legacyApp(t);
  const result = await runCli([`legacy-takeover`, `--config`, configPath, `--release-path`, `/srv/app/releases/7`, `--dry-run`], {env: {ROLLBRIDGE_OUTPUT: `human`}});
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.split(`\n`);
  assert.equal(lines[0], `Legacy takeover plan; nothing was changed:`);
  assert.ok(lines.includes(`  screen   ${session.id} (Detached)`), result.stdout);
  assert.ok(lines.some((line) => new RegExp(`^\\s+${appPid}\\s+screen ${session.id.replace(`.`, `\\.`)}\\s+\\S*node -e`).test(line)), result.stdout);
  assert.ok(lines.includes(`  start    release (new id) from /srv/app/releases/7, health-checked while the legacy app serves`), result.stdout);
  assert.ok(lines.includes(`  bind     127.0.0.1:${port} (now held by legacy pid ${appPid}) and switch traffic`), result.stdout);
  assert.equal(isPidAlive(appPid), true);
});

test(`refuses with ERR_LEGACY_NOT_CONFIGURED when the config has no legacyTakeover`, async (t) => {
  const dir = createTempDir(t);
  const configPath = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(configPath, JSON.stringify(webConfig(dir)));
  const result = await runCli([`legacy-takeover`, `--config`, configPath, `--release-path`, dir, `--dry-run`]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^error ERR_LEGACY_NOT_CONFIGURED: /);
  assert.match(result.stderr, /fix: Add legacyTakeover\.screens/);
});

test(`requires --release-path`, async (t) => {
  const dir = createTempDir(t);
  const result = await runCli([`legacy-takeover`, `--config`, path.join(dir, `rollbridge.json`), `--dry-run`]);
  assert.equal(result.code, 2);
});

// The daemon's side of `takeover` is a hand-written fake at the control socket: this checks what the CLI sends and prints.
test(`sends the discovered plan to a running daemon as takeover and prints its phases and the port gap`, async (t) => {
  const marker = `sleep ${480_000 + Math.floor(Math.random() * 10_000)}`;
  const worker = startDetached(t, `exec ${marker}`);
  await waitFor(() => readProcStat(worker)?.comm === `sleep`, {what: `the exec`});
  const received: Array<ParamsOf<`takeover`>> = [];
  const {socketPath, dir} = await startControlServer(t, {handlers: createTestHandlers({
    takeover: async (params, context) => {
      received.push(params);
      context.progress({type: `phase`, phase: `healthy`, processId: `web`, durationMs: 12});
      return {activeReleaseId: `9`, portGapMs: 3, legacy: {stopped: 1, killed: 0}, durationMs: 40};
    },
  })});
  const configPath = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(configPath, JSON.stringify(webConfig(dir, {control: {path: socketPath}, legacyTakeover: {processes: [{name: `worker`, includes: [marker]}], forceStopTimeoutMs: 1_500}})));
  const result = await runCli([`legacy-takeover`, `--config`, configPath, `--release-path`, `r9`, `--release-id`, `9`], {cwd: dir, env: {ROLLBRIDGE_OUTPUT: `human`}});
  assert.equal(result.code, 0, result.stderr);
  assert.equal(received.length, 1);
  const [params] = received;
  assert.equal(params?.releasePath, path.join(dir, `r9`));
  assert.equal(params?.releaseId, `9`);
  assert.equal(params?.forceStopTimeoutMs, 1_500);
  assert.deepEqual(params?.legacy.processes.map((entry) => [entry.pid, entry.source, entry.args]), [[worker, `matcher worker`, marker]]);
  assert.match(result.stdout, /^Taking over:$/m);
  assert.match(result.stdout, /^ {2}healthy web \(12ms\)$/m);
  assert.match(result.stdout, /^✓ release 9 is active; legacy processes: 1 stopped, 0 killed; port gap 3 ms; took 40ms$/m);

  // Not a terminal and no --json: JSON, as every command prints when piped.
  const json = await runCli([`legacy-takeover`, `--config`, configPath, `--release-path`, `r9`], {cwd: dir});
  assert.equal(json.code, 0, json.stderr);
  const document = json.json() as {status: string; activeReleaseId: string; portGapMs: number; legacy: unknown; plan: {legacy: {processes: unknown[]}}};
  assert.equal(document.status, `success`);
  assert.equal(document.portGapMs, 3);
  assert.deepEqual(document.legacy, {stopped: 1, killed: 0});
  assert.equal(document.plan.legacy.processes.length, 1);
});
