import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import {readBootId, writeStateFile} from '../../src/state/state-file.ts';
import type {DaemonState, StateProcess} from '../../src/state/state-file.ts';
import {readProcStat} from '../../src/system/proc.ts';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {killQuietly} from '../helpers/processes.ts';
import {runCli} from '../helpers/run-cli.ts';
import {createTempDir} from '../helpers/temp-dir.ts';

type Check = {name: string; ok: boolean; detail: string};
type DoctorReport = {checks: Check[]; ok: boolean};

function writeConfig(dir: string, config: Record<string, unknown>, name = `rollbridge.json`): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

async function doctor(args: string[], cwd: string): Promise<{code: number; report: DoctorReport}> {
  const result = await runCli([`doctor`, `--json`, ...args], {cwd});
  return {code: result.code, report: result.json() as DoctorReport};
}

function check(report: DoctorReport, name: string): Check {
  const found = report.checks.find((entry) => entry.name === name);
  assert.ok(found, `check "${name}" in ${JSON.stringify(report.checks.map((entry) => entry.name))}`);
  return found;
}

async function listen(t: {after(fn: () => unknown): void}): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen({host: `127.0.0.1`, port: 0}, resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as net.AddressInfo).port;
}

/** A real process that stays alive until the test kills it. */
async function startIdleProcess(t: {after(fn: () => unknown): void}): Promise<{pid: number; startTime: number}> {
  const child = spawn(process.execPath, [`-e`, `setInterval(() => {}, 60_000)`], {stdio: `ignore`});
  await new Promise<void>((resolve, reject) => child.once(`spawn`, resolve).once(`error`, reject));
  const pid = child.pid as number;
  const exited = new Promise((resolve) => child.once(`exit`, resolve));
  t.after(async () => {
    killQuietly(pid);
    await exited;
  });
  return {pid, startTime: readProcStat(pid)?.startTime as number};
}

test(`doctor passes for a valid config with a free socket and port, in upstream's check order`, async (t) => {
  const dir = createTempDir(t);
  writeConfig(dir, webConfig(dir));
  const [human, {code, report}] = await Promise.all([runCli([`doctor`], {cwd: dir}), doctor([], dir)]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^✓ config: .*rollbridge\.json is valid: 1 process, proxy on 127\.0\.0\.1:0\n/);
  assert.match(human.stdout, /\n✓ control socket: no daemon running; .*control\.sock is free to bind\n/);
  assert.match(human.stdout, /\n\nAll checks passed\.\n$/);
  assert.equal(code, 0);
  assert.equal(report.ok, true);
  assert.deepEqual(report.checks.map((entry) => entry.name), [`config`, `control socket`, `control socket user`, `control socket directory`, `proxy port`, `state path directory`, `orphaned processes`]);
  assert.equal(check(report, `control socket directory`).detail, `${dir} is writable`);
  assert.equal(check(report, `orphaned processes`).detail, `no state file`);
  assert.ok(report.checks.every((entry) => entry.ok));
});

test(`an invalid config gives only the failing config check and exit 1`, async (t) => {
  const dir = createTempDir(t);
  writeConfig(dir, {application: `x`, processes: [{id: `web`, policy: `proxied`}]});
  const [{code, report}, human, validate, missing] = await Promise.all([
    doctor([], dir),
    runCli([`doctor`], {cwd: dir}),
    runCli([`validate`, `--json`], {cwd: dir}),
    doctor([], createTempDir(t)),
  ]);
  const issues = (validate.json() as {issues: unknown[]}).issues.length;
  assert.ok(issues > 0);
  const detail = `${issues} ${issues === 1 ? `issue` : `issues`} — run "rollbridge validate" for details`;
  assert.equal(code, 1);
  assert.deepEqual(report, {checks: [{name: `config`, ok: false, detail}], ok: false});
  assert.equal(human.code, 1);
  assert.equal(human.stdout, `✗ config: ${detail}\n`);
  assert.equal(human.stderr, `\n1 check failed.\n`);

  assert.equal(missing.code, 1);
  assert.equal(missing.report.checks.length, 1);
  assert.match(check(missing.report, `config`).detail, /^No config file found in /);
});

test(`a proxy port held by another process fails with the errno code and names the holder: pid, command, user`, async (t) => {
  const dir = createTempDir(t);
  const port = await listen(t);
  writeConfig(dir, webConfig(dir, {proxy: {host: `127.0.0.1`, port}}));
  const {code, report} = await doctor([], dir);
  assert.equal(code, 1);
  // This test process holds the port.
  const user = os.userInfo().username;
  const holder = check(report, `proxy port`);
  assert.equal(holder.ok, false);
  assert.ok(holder.detail.startsWith(`127.0.0.1:${port} is unavailable (EADDRINUSE): held by pid ${process.pid} (${process.execPath} `), holder.detail);
  assert.ok(holder.detail.endsWith(`) of user ${user}`), holder.detail);
  assert.equal(report.checks.filter((entry) => !entry.ok).length, 1);
});

test(`a control socket path held by another listener, or by a plain file, fails the control socket check`, async (t) => {
  const dir = createTempDir(t);
  const foreignPath = path.join(dir, `foreign.sock`);
  const foreign = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => foreign.listen(foreignPath, resolve));
  t.after(() => new Promise((resolve) => foreign.close(resolve)));
  const filePath = path.join(dir, `file.sock`);
  fs.writeFileSync(filePath, ``);
  const foreignConfig = writeConfig(dir, webConfig(dir, {control: {path: foreignPath}}), `foreign.json`);
  const fileConfig = writeConfig(dir, webConfig(dir, {control: {path: filePath}}), `file.json`);
  const [listener, file] = await Promise.all([doctor([`--config`, foreignConfig], dir), doctor([`--config`, fileConfig], dir)]);
  assert.equal(listener.code, 1);
  assert.deepEqual(check(listener.report, `control socket`), {name: `control socket`, ok: false, detail: `another process is already listening on ${foreignPath}; the daemon would fail to bind it`});
  assert.equal(file.code, 1);
  assert.deepEqual(check(file.report, `control socket`), {name: `control socket`, ok: false, detail: `${filePath} exists and is not a socket; the daemon would fail to bind it`});
});

test(`the control socket directory fails when neither it nor its parent exists, and passes when the daemon can create it`, async (t) => {
  const dir = createTempDir(t);
  const missingConfig = writeConfig(dir, webConfig(dir, {control: {path: path.join(dir, `missing`, `deeper`, `c.sock`)}}), `missing.json`);
  const creatableConfig = writeConfig(dir, webConfig(dir, {control: {path: path.join(dir, `run`, `c.sock`)}}), `creatable.json`);
  const [missing, creatable] = await Promise.all([doctor([`--config`, missingConfig], dir), doctor([`--config`, creatableConfig], dir)]);
  assert.equal(missing.code, 1);
  assert.deepEqual(check(missing.report, `control socket directory`), {name: `control socket directory`, ok: false, detail: `${path.join(dir, `missing`, `deeper`)} is missing or not writable`});
  assert.equal(creatable.code, 0);
  assert.equal(check(creatable.report, `control socket directory`).detail, `${path.join(dir, `run`)} does not exist yet; the daemon creates it in ${dir}`);
  assert.equal(check(creatable.report, `state path directory`).detail, `${path.join(dir, `run`)} does not exist yet; the daemon creates it with the control socket`);
});

test(`state checks use statePath, else the state file beside the control socket; processes it records that still run are orphans`, async (t) => {
  const dir = createTempDir(t);
  const statePath = path.join(dir, `state.json`);
  const withState = writeConfig(dir, webConfig(dir, {statePath}));
  const missingStateDir = path.join(dir, `missing`);
  const otherState = path.join(missingStateDir, `state.json`);
  const [noFile, withoutStatePath, unwritable] = await Promise.all([
    doctor([], dir),
    doctor([`--config`, writeConfig(dir, webConfig(dir), `plain.json`)], dir),
    doctor([`--config`, writeConfig(dir, webConfig(dir, {statePath: otherState}), `unwritable.json`)], dir),
  ]);
  assert.equal(noFile.code, 0);
  assert.deepEqual(noFile.report.checks.slice(-2), [
    {name: `state path directory`, ok: true, detail: `${dir} is writable`},
    {name: `orphaned processes`, ok: true, detail: `no state file`},
  ]);
  assert.deepEqual(withoutStatePath.report.checks.slice(-2).map((entry) => [entry.name, entry.ok]), [[`state path directory`, true], [`orphaned processes`, true]]);
  assert.equal(unwritable.code, 1);
  assert.deepEqual(check(unwritable.report, `state path directory`), {name: `state path directory`, ok: false, detail: `${missingStateDir} is missing or not writable; state cannot be persisted`});

  const live = await startIdleProcess(t);
  const recycled = await startIdleProcess(t);
  const deadPid = 2 ** 22 + 1; // above the largest pid_max: never a live process
  const entry = (id: string, pid: number, startTime: number): StateProcess => ({id, processId: id, policy: `proxied`, releaseId: `r1`, pid, pgid: pid, startTime, startedAt: new Date().toISOString(), restarts: 0});
  const state: DaemonState = {
    format: 1, application: `test-app`, writtenAt: new Date().toISOString(), bootId: readBootId(),
    daemon: {pid: deadPid, startTime: 1, version: `test`}, proxy: {host: `127.0.0.1`, port: 1}, activeReleaseId: `r1`,
    releases: [{releaseId: `r1`, releasePath: dir, revision: `r1`, state: `active`, createdAt: new Date().toISOString(), ports: {}, instancePorts: {}, processes: [
      entry(`web`, live.pid, live.startTime),
      entry(`worker`, recycled.pid, recycled.startTime - 1),
      entry(`gone`, deadPid, 1),
    ]}],
    services: [], singletons: [],
  };
  await writeStateFile(statePath, state);
  await writeStateFile(path.join(dir, `control.state.json`), state);
  const [orphans, besideSocket] = await Promise.all([doctor([`--config`, withState], dir), doctor([`--config`, path.join(dir, `plain.json`)], dir)]);
  const expected = {
    name: `orphaned processes`,
    ok: false,
    detail: `1 orphaned process still running: web (pid ${live.pid}) — the next daemon start re-adopts them; "rollbridge recover" lists them, "rollbridge recover --force" stops them`,
  };
  assert.equal(orphans.code, 1);
  assert.deepEqual(check(orphans.report, `orphaned processes`), expected, `a recycled pid (other start time) and a dead one are not orphans`);
  assert.deepEqual(check(besideSocket.report, `orphaned processes`), expected);

  fs.writeFileSync(statePath, JSON.stringify({activeReleaseId: `r1`, orphans: [{id: `web`, pid: live.pid}], releases: [], services: [], singletons: []}));
  const unreadable = await doctor([`--config`, withState], dir);
  assert.equal(unreadable.code, 1);
  assert.deepEqual(check(unreadable.report, `orphaned processes`), {
    name: `orphaned processes`,
    ok: false,
    detail: `The state file ${statePath} cannot be used: unknown format undefined (expected 1); recorded processes cannot be checked`,
  });
});

test(`the running daemon of the same application passes the socket, port and orphan checks`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  const statePath = path.join(daemon.dir, `state.json`);
  fs.writeFileSync(statePath, `not even JSON: a running daemon's processes are never orphans`);
  const doctorConfig = writeConfig(daemon.dir, webConfig(daemon.dir, {proxy: {host: `127.0.0.1`, port: daemon.proxyPort}, statePath}), `doctor.json`);
  const {code, report} = await doctor([`--config`, doctorConfig], daemon.dir);
  assert.equal(code, 0, JSON.stringify(report));
  assert.equal(check(report, `control socket`).detail, `rollbridge daemon for "test-app" is running on ${daemon.socketPath}`);
  assert.equal(check(report, `proxy port`).detail, `127.0.0.1:${daemon.proxyPort} is already held by the running rollbridge daemon`);
  assert.equal(check(report, `orphaned processes`).detail, `a daemon is running; its managed processes are not orphans`);

  const busyPort = await listen(t);
  const otherPort = writeConfig(daemon.dir, webConfig(daemon.dir, {proxy: {host: `127.0.0.1`, port: busyPort}}), `other-port.json`);
  const otherApp = writeConfig(daemon.dir, webConfig(daemon.dir, {application: `other-app`, proxy: {host: `127.0.0.1`, port: daemon.proxyPort}}), `other-app.json`);
  const [notOwned, foreign] = await Promise.all([doctor([`--config`, otherPort], daemon.dir), doctor([`--config`, otherApp], daemon.dir)]);
  assert.equal(notOwned.code, 1);
  assert.match(check(notOwned.report, `proxy port`).detail, new RegExp(`^127\\.0\\.0\\.1:${busyPort} is unavailable \\(EADDRINUSE\\): held by pid ${process.pid} `));
  assert.equal(check(notOwned.report, `proxy port`).ok, false);
  assert.equal(foreign.code, 1);
  assert.equal(check(foreign.report, `control socket`).ok, false);
  assert.match(check(foreign.report, `control socket`).detail, /daemon for "test-app" is running on .*, not one for "other-app"$/);
  assert.equal(check(foreign.report, `proxy port`).ok, false, `a port held by another application's daemon does not pass`);
});

test(`--release-path adds the release checks: templates with representative ports, working directories`, async (t) => {
  const dir = createTempDir(t);
  const release = path.join(dir, `releases`, `42`);
  fs.mkdirSync(path.join(release, `p4100`), {recursive: true});
  fs.mkdirSync(path.join(release, `abc123`));
  const ports = writeConfig(dir, webConfig(dir, {}, {cwd: `p{{port}}`, port: {from: 4100, to: 4199}, env: {REV: `{{revision}}`}}), `ports.json`);
  const releaseIdCwd = writeConfig(dir, webConfig(dir, {}, {cwd: `{{releaseId}}`}), `release-id.json`);
  // A key validate cannot judge (the daemon's environment); a typo such as {{nope}} fails the config check already.
  const badTemplate = writeConfig(dir, webConfig(dir, {}, {command: `node app.js {{env.ROLLBRIDGE_DOCTOR_UNSET}}`}), `bad-template.json`);
  const missingPath = path.join(dir, `releases`, `43`);
  const [passing, byRevision, byBasename, templateFailure, missingRelease] = await Promise.all([
    doctor([`--config`, ports, `--release-path`, path.relative(dir, release)], dir),
    doctor([`--config`, releaseIdCwd, `--release-path`, release, `--revision`, `abc123`], dir),
    doctor([`--config`, releaseIdCwd, `--release-path`, release], dir),
    doctor([`--config`, badTemplate, `--release-path`, release], dir),
    doctor([`--config`, ports, `--release-path`, missingPath], dir),
  ]);
  assert.equal(passing.code, 0, JSON.stringify(passing.report));
  assert.deepEqual(passing.report.checks.slice(-3).map((entry) => [entry.name, entry.ok]), [[`release path`, true], [`process templates`, true], [`process working directories`, true]]);
  assert.equal(check(passing.report, `release path`).detail, `${release} is a directory`);

  assert.equal(byRevision.code, 0, `the release id falls back to --revision: cwd {{releaseId}} is abc123`);
  assert.equal(byBasename.code, 1);
  assert.equal(check(byBasename.report, `process working directories`).detail, `missing: web (${path.join(release, `42`)})`);

  assert.equal(templateFailure.code, 1);
  assert.deepEqual(check(templateFailure.report, `process templates`), {name: `process templates`, ok: false, detail: `web: Missing template value for {{env.ROLLBRIDGE_DOCTOR_UNSET}} in processes[0].command`});

  assert.equal(missingRelease.code, 1);
  assert.equal(check(missingRelease.report, `release path`).detail, `${missingPath} does not exist`);
});
