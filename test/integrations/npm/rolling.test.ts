// The orchestrator-style scripts (`rollbridge-rolling` in package.json scripts, run with the pinned
// pnpm) against a real daemon (the built binary): each script and flag of the rolling-restart
// orchestrator its users ran as `pnpm restart:rolling …`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {test} from 'node:test';
import {toRollbridgeArgs} from '../../../integrations/npm/src/rolling-args.ts';
import {getBinaryPath} from '../../e2e/binary-path.ts';
import {WEB_APP, startDaemon, webConfig} from '../../helpers/daemon.ts';
import type {TestDaemon} from '../../helpers/daemon.ts';
import {httpGet} from '../../helpers/http.ts';
import {assertMatchesSchema} from '../../helpers/json-schemas.ts';
import {REPO_BIN, createProject, runCommand} from './npm-project.ts';
import type {NpmProject} from './npm-project.ts';

const PNPM = path.join(REPO_BIN, `pnpm`);

type ReleaseView = {releaseId: string; processes: Array<{id: string; pid: number}>};

test(`the orchestrator's flags map to one rollbridge command line, and bad combinations are usage errors`, () => {
  assert.deepEqual(toRollbridgeArgs([]).args, [`restart`, `--all`, `--before-switch`]);
  assert.deepEqual(toRollbridgeArgs([`--dry-run`]).args, [`restart`, `--all`, `--dry-run`, `--before-switch`]);
  assert.deepEqual(toRollbridgeArgs([`--service`, `sso.api`, `--force`, `--skip-migrations`]).args, [`restart`, `--process`, `sso.api`, `--skip-health-check`]);
  assert.deepEqual(toRollbridgeArgs([`--deploy`, `--deploy-path`, `/srv/r/43`, `--skip-migrations`, `-c`, `rb.json`, `--json`]).args,
    [`deploy`, `--release-path`, `/srv/r/43`, `--skip-before-switch`, `--config`, `rb.json`, `--json`]);
  assert.throws(() => toRollbridgeArgs([`--deploy`]), /--deploy needs --deploy-path <dir>/);
  assert.throws(() => toRollbridgeArgs([`--deploy-path`, `x`]), /--deploy-path needs --deploy/);
  assert.throws(() => toRollbridgeArgs([`--deploy`, `--deploy-path`, `x`, `--service`, `web`]), /cannot be combined with --deploy/);
  assert.throws(() => toRollbridgeArgs([`--servce`, `web`]), (error: Error) => error.name === `RollingUsageError` && /--servce/.test(error.message));
});

async function setUp(t: {after(fn: () => unknown): void}): Promise<{daemon: TestDaemon; project: NpmProject; run: (script: string, ...args: string[]) => Promise<{code: number | null; json: Record<string, unknown>; stderr: string}>}> {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {
    hooks: {beforeSwitch: `echo "$ROLLBRIDGE_RELEASE_ID" >> "${path.join(dir, `migrations.log`)}"`},
    processes: [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000}},
      {id: `sso.api`, command: `exec sleep 300`, policy: `companion`, dependsOn: [`queue`], readiness: {command: `test ! -e "${path.join(dir, `sso-broken`)}"`, timeoutMs: 500}},
      {id: `queue`, command: `exec sleep 300`, policy: `companion`},
    ],
  }), {executable: getBinaryPath()});
  const project = await createProject(t, {
    manager: `pnpm`,
    scripts: {
      'restart:rolling': `rollbridge-rolling --config ${daemon.configPath} --json`,
      'restart:rolling:dry': `rollbridge-rolling --config ${daemon.configPath} --json --dry-run`,
    },
  });
  const run = async (script: string, ...args: string[]) => {
    const result = await runCommand(PNPM, [`run`, `--silent`, script, ...args], {cwd: project.dir, env: project.env});
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(result.stdout) as Record<string, unknown>;
    } catch {
      throw new Error(`pnpm ${script} ${args.join(` `)} printed no JSON (exit ${result.code}): ${result.stdout}${result.stderr}${daemon.stderr()}`);
    }
    return {code: result.code, json, stderr: result.stderr};
  };
  return {daemon, project, run};
}

async function pids(daemon: TestDaemon): Promise<Record<string, number>> {
  const status = await daemon.call(`status`);
  const active = (status.releases as ReleaseView[]).find((release) => release.releaseId === status.activeReleaseId);
  return Object.fromEntries((active?.processes ?? []).map((process) => [process.id, process.pid]));
}

test(`each orchestrator script on a real daemon`, async (t) => {
  const {daemon, project, run} = await setUp(t);
  const migrations = path.join(daemon.dir, `migrations.log`);
  const deployed = await run(`restart:rolling`, `--deploy`, `--deploy-path`, daemon.release(`r1`), `--skip-migrations`);
  assert.equal(deployed.code, 0, JSON.stringify(deployed.json));
  assert.equal(deployed.json.activeReleaseId, deployed.json.releaseId);
  assert.equal((await httpGet(daemon.proxyPort)).body, `${String(deployed.json.releaseId)}\n`);
  assert.equal(fs.existsSync(migrations), false, `--skip-migrations: hooks.beforeSwitch did not run`);

  await t.test(`restart:rolling:dry prints the plan and changes nothing`, async () => {
    const before = await pids(daemon);
    const dry = await run(`restart:rolling:dry`);
    assert.equal(dry.code, 0);
    assertMatchesSchema(`restart.schema.json`, dry.json);
    assert.equal(dry.json.changed, false);
    const plan = dry.json.plan as {processes: Array<{id: string; how: string; check: string | null}>; hooks: {beforeSwitch: string | null}};
    assert.deepEqual(plan.processes.map((process) => [process.id, process.how, process.check]), [[`queue`, `restart`, null], [`sso.api`, `restart`, `readiness`], [`web`, `replace`, `health`]]);
    assert.match(plan.hooks.beforeSwitch ?? ``, /migrations\.log/);
    assert.deepEqual(await pids(daemon), before);
    assert.equal(fs.existsSync(migrations), false);
  });

  await t.test(`restart:rolling runs the migrations, then every process in dependsOn order, the web one without a failed request`, async () => {
    const before = await pids(daemon);
    const agent = new http.Agent({keepAlive: true});
    let stop = false;
    let failures = 0;
    const load = (async () => {
      const deadline = Date.now() + 60_000;
      while (!stop && Date.now() < deadline) {
        const response = await httpGet(daemon.proxyPort, `/`, {agent}).catch(() => null);
        if (response?.status !== 200) failures += 1;
      }
    })();
    const rolled = await run(`restart:rolling`);
    stop = true;
    await load;
    agent.destroy();
    assert.equal(rolled.code, 0, JSON.stringify(rolled.json));
    assertMatchesSchema(`restart.schema.json`, rolled.json);
    assert.deepEqual(rolled.json.restarted, [`queue`, `sso.api`, `web`]);
    assert.equal(failures, 0);
    assert.equal(fs.readFileSync(migrations, `utf8`), `${String(deployed.json.activeReleaseId)}\n`);
    const after = await pids(daemon);
    for (const id of [`queue`, `sso.api`, `web`]) assert.notEqual(after[id], before[id]);
  });

  await t.test(`restart:rolling --service restarts that process only`, async () => {
    const before = await pids(daemon);
    const one = await run(`restart:rolling`, `--service`, `sso.api`, `--skip-migrations`);
    assert.equal(one.code, 0, JSON.stringify(one.json));
    assert.deepEqual(one.json.restarted, [`sso.api`]);
    const after = await pids(daemon);
    assert.deepEqual([after.web, after.queue], [before.web, before.queue]);
    assert.notEqual(after[`sso.api`], before[`sso.api`]);
  });

  await t.test(`restart:rolling stops at the first failed check, and --force skips the checks (logged)`, async () => {
    fs.writeFileSync(path.join(daemon.dir, `sso-broken`), ``);
    const before = await pids(daemon);
    const failed = await run(`restart:rolling`, `--skip-migrations`);
    assert.equal(failed.code, 1);
    const error = failed.json.error as {code: string; message: string; details: {restarted: string[]; notRestarted: string[]}};
    assert.equal(error.code, `ERR_READINESS_FAILED`);
    assert.deepEqual([error.details.restarted, error.details.notRestarted], [[`queue`], [`web`]]);
    assert.equal((await pids(daemon)).web, before.web);

    const forced = await run(`restart:rolling`, `--force`, `--skip-migrations`);
    assert.equal(forced.code, 0, JSON.stringify(forced.json));
    assert.deepEqual(forced.json.restarted, [`queue`, `sso.api`, `web`]);
    await daemon.record((record) => record.msg === `health checks skipped for restart`, `--force's skipped checks`);
    fs.rmSync(path.join(daemon.dir, `sso-broken`));
  });

  await t.test(`restart:rolling --deploy --deploy-path deploys that directory, running the migrations`, async () => {
    const next = await run(`restart:rolling`, `--deploy`, `--deploy-path`, daemon.release(`r2`));
    assert.equal(next.code, 0, JSON.stringify(next.json));
    assertMatchesSchema(`deploy.schema.json`, next.json);
    assert.equal(next.json.previousReleaseId, deployed.json.activeReleaseId);
    assert.equal((await httpGet(daemon.proxyPort)).body, `${String(next.json.activeReleaseId)}\n`);
    assert.match(fs.readFileSync(migrations, `utf8`), new RegExp(`\\n${String(next.json.activeReleaseId)}\\n$`));
    const usage = await runCommand(PNPM, [`run`, `--silent`, `restart:rolling`, `--deploy`], {cwd: project.dir, env: project.env});
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--deploy needs --deploy-path <dir>/);
  });
});
