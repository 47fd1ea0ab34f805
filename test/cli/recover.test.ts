import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {stripVTControlCharacters} from 'node:util';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {runCli} from '../helpers/run-cli.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {recorded, spawnLeftover, writeLeftoverState} from '../helpers/leftovers.ts';





/** A config beside which the default state file lives (`control.state.json`). */
function writeConfig(dir: string): string {
  const config = webConfig(dir);
  config.processes = [...config.processes as object[], {id: `clock`, command: `true`, policy: `singleton`, stopSignal: `SIGUSR2`, gracefulStopMs: 30_000}];
  const file = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

test(`recover lists leftovers in 0.1's words without stopping them; --json gives the same list`, async (t) => {
  const dir = createTempDir(t);
  writeConfig(dir);
  const statePath = path.join(dir, `control.state.json`);
  const [web, clock] = [await spawnLeftover(t, `forever`), await spawnLeftover(t, `usr2`)];
  await writeLeftoverState(statePath, {application: `test-app`, releaseId: `r7`, processes: [recorded(`web`, web, `r7`)], singletons: [recorded(`clock`, clock, `r6`)]});

  const [human, json] = await Promise.all([runCli([`recover`], {cwd: dir}), runCli([`recover`, `--json`], {cwd: dir})]);
  assert.equal(human.code, 0, human.stderr);
  assert.equal(human.stdout, [
    `Found 2 orphaned processes (run with --force to stop):`,
    `  web (pid ${web.pid}, release r7)`,
    `  clock (pid ${clock.pid}, release r6)`,
    `Each was matched by its recorded pid and start time in this boot (or by the process key in its environment), so a recycled pid is never listed; --force stops their process groups.`,
    ``,
  ].join(`\n`));
  assert.equal(json.code, 0);
  assert.deepEqual(json.json(), {
    status: `success`,
    changed: false,
    statePath,
    found: [
      {id: `web`, processId: `web`, releaseId: `r7`, pid: web.pid, pgid: web.pid, members: [web.pid]},
      {id: `clock`, processId: `clock`, releaseId: `r6`, pid: clock.pid, pgid: clock.pid, members: [clock.pid]},
    ],
    stopped: [],
    survivors: [],
  });
  assert.ok(isPidAlive(web.pid) && isPidAlive(clock.pid));
  assert.ok(fs.existsSync(statePath));
});

test(`recover --force stops the leftovers with their stopSignal and clears the state file; nothing left is reported as such`, async (t) => {
  const dir = createTempDir(t);
  writeConfig(dir);
  const statePath = path.join(dir, `control.state.json`);
  const [web, clock] = [await spawnLeftover(t, `forever`), await spawnLeftover(t, `usr2`)];
  await writeLeftoverState(statePath, {application: `test-app`, releaseId: `r7`, processes: [recorded(`web`, web, `r7`)], singletons: [recorded(`clock`, clock, `r6`)]});

  const forced = await runCli([`recover`, `--force`], {cwd: dir});
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(forced.stdout, `Stopped 2 orphaned processes:\n  web (pid ${web.pid}, release r7)\n  clock (pid ${clock.pid}, release r6)\n`);
  assert.deepEqual(await web.exit, {code: null, signal: `SIGTERM`});
  assert.deepEqual(await clock.exit, {code: 0, signal: null});
  assert.match(clock.output(), /stopped by SIGUSR2/);
  assert.equal(fs.existsSync(statePath), false);

  const [again, listed, json] = await Promise.all([
    runCli([`recover`, `--force`], {cwd: dir}),
    runCli([`recover`], {cwd: dir}),
    runCli([`recover`, `--force`, `--json`], {cwd: dir}),
  ]);
  assert.equal(again.stdout, `No orphaned processes found; cleared the state file.\n`);
  assert.equal(listed.stdout, `No orphaned processes found.\n`);
  assert.deepEqual(json.json(), {status: `success`, changed: false, statePath, found: [], stopped: [], survivors: []});
});

test(`recover --force never signals a recycled pid`, async (t) => {
  const dir = createTempDir(t);
  writeConfig(dir);
  const stranger = await spawnLeftover(t, `forever`);
  await writeLeftoverState(path.join(dir, `control.state.json`), {application: `test-app`, releaseId: `r7`, processes: [recorded(`web`, {pid: stranger.pid, startTime: stranger.startTime + 1}, `r7`)]});
  const forced = await runCli([`recover`, `--force`, `--json`], {cwd: dir});
  assert.equal(forced.code, 0, forced.stdout);
  assert.deepEqual((forced.json() as {found: unknown[]}).found, []);
  assert.ok(isPidAlive(stranger.pid));
});

test(`recover refuses with ERR_RECOVER_DAEMON_RUNNING while the daemon runs`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  const [human, json] = await Promise.all([
    runCli([`recover`, `--force`, `--config`, daemon.configPath], {cwd: daemon.dir}),
    runCli([`recover`, `--json`, `--config`, daemon.configPath], {cwd: daemon.dir}),
  ]);
  assert.equal(human.code, 1);
  assert.match(human.stderr, /^error ERR_RECOVER_DAEMON_RUNNING: A rollbridge daemon for "test-app" is running on .*control\.sock; recover is only for leftovers after a crash\n {2}fix: Run "rollbridge status"/);
  assert.equal(json.code, 1);
  const error = (json.json() as {error: {code: string; fix: string}}).error;
  assert.equal(error.code, `ERR_RECOVER_DAEMON_RUNNING`);
  assert.match(error.fix, /rollbridge shutdown/);
});

test(`recover --help shows examples`, async () => {
  const help = await runCli([`recover`, `--help`]);
  assert.equal(help.code, 0);
  assert.match(stripVTControlCharacters(help.stdout), /\$ rollbridge recover --force\n/);
});

test(`predeploy-cleanup stops the leftovers a crashed daemon left and counts them`, async (t) => {
  const dir = createTempDir(t);
  writeConfig(dir);
  const statePath = path.join(dir, `control.state.json`);
  const web = await spawnLeftover(t, `forever`);
  await writeLeftoverState(statePath, {application: `test-app`, releaseId: `r7`, processes: [recorded(`web`, web, `r7`)]});
  const cleanup = await runCli([`predeploy-cleanup`], {cwd: dir});
  assert.equal(cleanup.code, 0, cleanup.stderr);
  assert.equal(cleanup.stdout, `No active Rollbridge daemon found.\nRecovered 1 Rollbridge orphaned process.\nStopped 0 legacy processes.\n`);
  assert.deepEqual(await web.exit, {code: null, signal: `SIGTERM`});
  assert.equal(fs.existsSync(statePath), false);
});
