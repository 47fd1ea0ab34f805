import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {createTempDir} from '../helpers/temp-dir.ts';
import {runCli} from '../helpers/run-cli.ts';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {isPidAlive, killQuietly} from '../helpers/processes.ts';

function writeConfig(dir: string, config: Record<string, unknown>): string {
  const file = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

test(`--version prints the version, the commit and the Node version`, async () => {
  const result = await runCli([`--version`]);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /^rollbridge \d+\.\d+\.\d+ \(commit \S+, node v24\.\d+\.\d+\)\n$/);
  const json = await runCli([`version`, `--json`]);
  assert.deepEqual(Object.keys(json.json() as object).sort(), [`commit`, `node`, `version`]);
});

test(`usage errors exit 2: no command, an unknown command, an unknown flag, a bad flag value`, async () => {
  assert.equal((await runCli([])).code, 2);
  const unknown = await runCli([`deploi`]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stdout + unknown.stderr, /Command not found|deploy/);
  assert.equal((await runCli([`status`, `--frobnicate`])).code, 2);
  const badLimit = await runCli([`events`, `--limit`, `zero`, `--json`]);
  assert.equal(badLimit.code, 2);
  assert.equal((badLimit.json() as {error: {code: string}}).error.code, `ERR_USAGE`);
});

test(`every command has --help with examples`, async () => {
  for (const command of [`daemon`, `ensure-daemon`, `deploy`, `rollback`, `restart`, `stop`, `shutdown`, `status`, `logs`, `events`, `validate`]) {
    const result = await runCli([command, `--help`]);
    assert.equal(result.code, 0, command);
    assert.match(result.stdout, /Examples/, `${command} --help shows examples`);
  }
});

test(`a command without a daemon fails with ERR_DAEMON_UNREACHABLE, a fix, and exit 1`, async (t) => {
  const dir = createTempDir(t);
  writeConfig(dir, webConfig(dir));
  const human = await runCli([`status`], {cwd: dir});
  assert.equal(human.code, 1);
  assert.match(human.stderr, /^error ERR_DAEMON_UNREACHABLE: /);
  assert.match(human.stderr, /\n {2}fix: .*ensure-daemon/);
  const json = await runCli([`status`, `--json`], {cwd: dir});
  assert.equal(json.code, 1);
  const error = (json.json() as {error: {code: string; message: string; fix: string}}).error;
  assert.equal(error.code, `ERR_DAEMON_UNREACHABLE`);
  assert.ok(error.fix);
});

test(`a missing config is reported with the directory searched and a fix`, async (t) => {
  const dir = createTempDir(t);
  const result = await runCli([`status`, `--json`], {cwd: dir});
  assert.equal(result.code, 1);
  const error = (result.json() as {error: {code: string; message: string}}).error;
  assert.equal(error.code, `ERR_CONFIG_NOT_FOUND`);
  assert.ok(error.message.includes(dir));
});

test(`deploy, status, logs, events and stop work through the CLI against a real daemon`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  const release = daemon.release(`cli-1`);
  const deploy = await runCli([`deploy`, `--release-path`, path.relative(daemon.dir, release), `--release-id`, `cli-1`, `--revision`, `abc123`], {cwd: daemon.dir});
  assert.equal(deploy.code, 0, deploy.stderr);
  const result = deploy.json() as Record<string, unknown>;
  assert.equal(result.status, `success`);
  assert.equal(result.activeReleaseId, `cli-1`);
  assert.equal(result.previousReleaseId, null);

  const status = (await runCli([`status`], {cwd: daemon.dir})).json() as {status: string; releases: Array<{releasePath: string; revision: string}>; proxy: {port: number}};
  assert.equal(status.status, `success`);
  assert.equal(status.releases[0]?.releasePath, release, `--release-path is made absolute by the CLI`);
  assert.equal(status.releases[0]?.revision, `abc123`);
  assert.equal(status.proxy.port, daemon.proxyPort);

  const logs = await runCli([`logs`, `--process`, `web`], {cwd: daemon.dir});
  assert.equal(logs.code, 0);
  assert.match(logs.stdout, /^== release cli-1 \(active\): web ==\n/);
  const events = await runCli([`events`, `--limit`, `50`, `--json`], {cwd: daemon.dir});
  const messages = (events.json() as Array<{message: string}>).map((event) => event.message);
  assert.ok(messages.includes(`traffic switched`));
  assert.ok(messages.length <= 50);

  const stop = await runCli([`stop`, `--json`], {cwd: daemon.dir});
  assert.equal(stop.code, 0);
  assert.equal((stop.json() as {activeReleaseId: unknown}).activeReleaseId, null);
});

test(`deploy --ensure-daemon starts a detached daemon once; ensure-daemon is idempotent`, async (t) => {
  let configPath = ``;
  let daemonPid = 0;
  // Registered before the temp dir so it runs while the config still exists.
  t.after(async () => {
    if (configPath) await runCli([`shutdown`, `--config`, configPath]);
    if (daemonPid && isPidAlive(daemonPid)) killQuietly(daemonPid, `SIGTERM`);
  });
  const dir = createTempDir(t);
  configPath = writeConfig(dir, webConfig(dir));
  const release = path.join(dir, `release`);
  fs.mkdirSync(release);
  const logPath = path.join(dir, `daemon.log`);
  const pidPath = path.join(dir, `daemon.pid`);
  const deploy = await runCli([`deploy`, `--config`, configPath, `--release-path`, release, `--ensure-daemon`, `--daemon-log-path`, logPath, `--daemon-pid-path`, pidPath], {cwd: `/`});
  assert.equal(deploy.code, 0, deploy.stderr);
  daemonPid = Number(fs.readFileSync(pidPath, `utf8`));
  assert.ok(isPidAlive(daemonPid));
  const again = await runCli([`ensure-daemon`, `--config`, configPath, `--json`, `--daemon-pid-path`, pidPath]);
  assert.equal(again.code, 0);
  assert.equal((again.json() as {activeReleaseId: string}).activeReleaseId, (deploy.json() as {activeReleaseId: string}).activeReleaseId);
  assert.equal(Number(fs.readFileSync(pidPath, `utf8`)), daemonPid, `no second daemon was started`);
  assert.match(fs.readFileSync(logPath, `utf8`), /"msg":"traffic switched"/);
});
