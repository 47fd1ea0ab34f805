import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import test from 'node:test';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {startDaemon, webConfig, WEB_APP} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {loadSwitch} from '../helpers/load-switch.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {waitFor} from '../helpers/wait-for.ts';

type ReleaseView = {releaseId: string; ports: Record<string, number>; processes: Array<{id: string; pid: number; state: string; lastStartReason?: string}>};

function activeRelease(status: Record<string, unknown>): ReleaseView {
  return (status.releases as ReleaseView[]).find((release) => release.releaseId === status.activeReleaseId) as ReleaseView;
}

test(`restart --process web replaces the web process without a failed request under keep-alive load`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {env: {APP_SHUTDOWN: `immediate`}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const before = activeRelease(await daemon.call(`status`));
  const oldPid = Number((await httpGet(daemon.proxyPort, `/pid`)).body);
  assert.equal(oldPid, before.processes[0]?.pid);

  const agent = new http.Agent({keepAlive: true, maxSockets: 8});
  t.after(() => agent.destroy());
  const load = loadSwitch(t);
  let failures = 0;
  const pids = new Set<number>();
  const clients = Array.from({length: 8}, async () => {
    while (load.on()) {
      try {
        const result = await httpGet(daemon.proxyPort, `/pid`, {agent});
        if (result.status === 200) pids.add(Number(result.body));
        else failures += 1;
      } catch {
        failures += 1;
      }
    }
  });
  const result = await daemon.call(`restart`, {processId: `web`});
  assert.deepEqual(result.restarted, [`web`]);
  const after = activeRelease(await daemon.call(`status`));
  const newPid = after.processes[0]?.pid as number;
  await waitFor(() => pids.has(newPid), {what: `responses from the new web process`});
  load.stop();
  await Promise.all(clients);
  assert.equal(failures, 0);
  assert.notEqual(newPid, oldPid);
  assert.equal(isPidAlive(oldPid), false, `the old web process was stopped after its drain`);
  assert.notEqual(after.ports.web, before.ports.web, `the new process got a fresh port`);
  assert.equal(after.processes[0]?.lastStartReason, `manual`);
  await daemon.record((record) => record.msg === `process replaced` && record.previousPid === oldPid, `process replaced`);
});

test(`a replacement web process that fails its health check leaves the old one serving`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {
    command: `if [ -f "${path.join(dir, `broken`)}" ]; then APP_HEALTH=fail; export APP_HEALTH; fi; exec "${process.execPath}" "${WEB_APP}"`,
    health: {path: `/ping`, intervalMs: 20, timeoutMs: 3_000},
  }));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const oldPid = activeRelease(await daemon.call(`status`)).processes[0]?.pid as number;
  const fs = await import('node:fs');
  fs.writeFileSync(path.join(daemon.dir, `broken`), ``);
  await assert.rejects(daemon.call(`restart`, {processId: `web`}), (error: unknown) => isRollbridgeError(error) && error.code === `ERR_HEALTH_CHECK_FAILED`);
  assert.equal(Number((await httpGet(daemon.proxyPort, `/pid`)).body), oldPid);
  assert.deepEqual(activeRelease(await daemon.call(`status`)).processes.map((process) => [process.pid, process.state]), [[oldPid, `running`]]);
});

test(`restart --policy picks one policy; without selectors it leaves the web process alone and revives a failed companion`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {processes: [
    {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20}},
    {id: `worker`, command: `exec sleep 300`, policy: `companion`, replicas: 2, restart: {maxRestarts: 0}},
    {id: `cache`, command: `exec sleep 300`, policy: `service`},
  ]}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const killed = activeRelease(await daemon.call(`status`)).processes.find((process) => process.id === `worker#0`) as {pid: number};
  process.kill(killed.pid, `SIGKILL`);
  await waitFor(async () => activeRelease(await daemon.call(`status`)).processes.find((process) => process.id === `worker#0`)?.state === `failed`, {what: `worker#0 to be failed (maxRestarts 0)`});
  const servicePid = ((await daemon.call(`status`)).services as Array<{process: {pid: number}}>)[0]?.process.pid;
  const byPolicy = await daemon.call(`restart`, {policy: `service`});
  assert.deepEqual(byPolicy.restarted, [`cache`]);
  assert.notEqual(((await daemon.call(`status`)).services as Array<{process: {pid: number}}>)[0]?.process.pid, servicePid);
  const before = activeRelease(await daemon.call(`status`));
  const webPid = before.processes.find((process) => process.id === `web`)?.pid;
  const result = await daemon.call(`restart`, {});
  assert.deepEqual(result.restarted, [`cache`, `worker#0`, `worker#1`], `in start order: services, then companions`);
  const after = activeRelease(await daemon.call(`status`));
  assert.equal(after.processes.find((process) => process.id === `web`)?.pid, webPid);
  assert.equal(after.processes.find((process) => process.id === `worker#0`)?.state, `running`, `the failed worker was revived`);
  for (const id of [`worker#0`, `worker#1`]) {
    assert.notEqual(after.processes.find((process) => process.id === id)?.pid, before.processes.find((process) => process.id === id)?.pid);
  }
  const single = await daemon.call(`restart`, {processId: `worker#1`});
  assert.deepEqual(single.restarted, [`worker#1`]);
  // restart --process cache --process worker#0: the union, in start order.
  const several = await daemon.call(`restart`, {processIds: [`worker#0`, `cache`]});
  assert.deepEqual(several.restarted, [`cache`, `worker#0`]);
  const pidsBefore = activeRelease(await daemon.call(`status`)).processes.map((process) => process.pid);
  await assert.rejects(daemon.call(`restart`, {processIds: [`cache`, `wrker`]}), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_PROCESS_NOT_FOUND`);
    assert.match(error.message, /"wrker".*nothing was restarted/);
    return true;
  });
  assert.deepEqual(activeRelease(await daemon.call(`status`)).processes.map((process) => process.pid), pidsBefore, `a typo in one --process restarts nothing`);
  await assert.rejects(daemon.call(`restart`, {processId: `wrker`}), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_PROCESS_NOT_FOUND`);
    assert.deepEqual(error.details.valid, [`web`, `worker#0`, `worker#1`, `cache`]);
    return true;
  });
});

test(`restart NAMES restarts the union of substring matches and refuses a name that matches nothing`, async (t) => {
  const {runCli} = await import('../helpers/run-cli.ts');
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {processes: [
    {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20}},
    {id: `worker`, command: `exec sleep 300`, policy: `companion`, replicas: 2},
    {id: `mailer`, command: `exec sleep 300`, policy: `companion`},
    {id: `cron`, command: `exec sleep 300`, policy: `singleton`},
  ]}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const pids = async () => {
    const status = await daemon.call(`status`);
    const entries = activeRelease(status).processes.map((process) => [process.id, process.pid] as const);
    for (const singleton of status.singletons as Array<{id: string; process: {pid: number}}>) entries.push([singleton.id, singleton.process.pid]);
    return new Map(entries);
  };
  const before = await pids();
  const typo = await runCli([`restart`, `work`, `crno`, `--json`], {cwd: daemon.dir});
  assert.equal(typo.code, 1);
  const error = (typo.json() as {error: {code: string; message: string; details: {valid: string[]}}}).error;
  assert.equal(error.code, `ERR_PROCESS_NOT_FOUND`);
  assert.match(error.message, /"crno"/);
  assert.deepEqual(await pids(), before, `nothing restarted when one name matches nothing`);

  const result = await runCli([`restart`, `work`, `cro`, `--cooldown`, `50ms`, `--check-url`, `http://127.0.0.1:${daemon.proxyPort}/ping`, `--json`], {cwd: daemon.dir});
  assert.equal(result.code, 0, result.stderr + result.stdout);
  const body = result.json() as {restarted: string[]; check: {status: number}};
  assert.deepEqual(body.restarted.sort(), [`cron`, `worker#0`, `worker#1`]);
  assert.equal(body.check.status, 200);
  const after = await pids();
  for (const id of [`worker#0`, `worker#1`, `cron`]) assert.notEqual(after.get(id), before.get(id), id);
  for (const id of [`web`, `mailer`]) assert.equal(after.get(id), before.get(id), id);

  const http503 = http.createServer((_request, response) => {
    response.writeHead(503);
    response.end();
  });
  await new Promise<void>((resolve) => http503.listen(0, `127.0.0.1`, resolve));
  t.after(() => http503.close());
  const failedCheck = await runCli([`restart`, `mailer`, `--check-url`, `http://127.0.0.1:${(http503.address() as {port: number}).port}/`, `--check-timeout`, `2s`, `--json`], {cwd: daemon.dir});
  assert.equal(failedCheck.code, 1);
  const checkError = (failedCheck.json() as {error: {code: string; message: string}}).error;
  assert.equal(checkError.code, `ERR_HEALTH_CHECK_FAILED`);
  assert.match(checkError.message, /did not answer 2xx within 2000 ms after the restart: HTTP 503/);
});

test(`a handoff service runs one instance per release, stops after its release's dependents, and can be restarted`, async (t) => {
  const fs = await import('node:fs');
  const {REPO_ROOT} = await import('../helpers/run-cli.ts');
  const recorder = `exec "${process.execPath}" "${path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `recorder.cjs`)}"`;
  let recordFile = ``;
  const daemon = await startDaemon(t, (dir) => {
    recordFile = path.join(dir, `record.log`);
    return webConfig(dir, {processes: [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20}},
      {id: `coordinator`, command: recorder, policy: `service`, deployStrategy: `handoff`, port: {from: 0, to: 0}, env: {RECORD_FILE: recordFile}},
      {id: `worker`, command: recorder, policy: `companion`, env: {RECORD_FILE: recordFile}, dependsOn: [`coordinator`]},
    ]});
  });
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`});
  const lines = () => fs.readFileSync(recordFile, `utf8`).trim().split(`\n`).map((line) => line.split(` `));
  await waitFor(() => lines().filter(([what]) => what === `stop`).length === 2, {what: `v1's worker and coordinator to stop`});
  const stops = lines().filter(([what]) => what === `stop`).map(([, name]) => name);
  assert.deepEqual(stops, [`worker`, `coordinator`], `the old handoff service stops after the release's dependents`);
  const status = activeRelease(await daemon.call(`status`));
  const coordinator = status.processes.find((process) => process.id === `coordinator`);
  assert.ok(coordinator);
  const result = await daemon.call(`restart`, {processId: `coordinator`});
  assert.deepEqual(result.restarted, [`coordinator`]);
  const after = activeRelease(await daemon.call(`status`)).processes.find((process) => process.id === `coordinator`);
  assert.notEqual(after?.pid, coordinator.pid);
  assert.equal(after?.state, `running`);
});

test(`a persistent service starts before the release and restarts with the latest deploy's definition`, async (t) => {
  const fs = await import('node:fs');
  let file = ``;
  const daemon = await startDaemon(t, (dir) => {
    file = path.join(dir, `service.log`);
    return webConfig(dir, {processes: [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20}},
      {id: `beacon`, command: `echo "$BUILT_BY" >> "${file}"; exec sleep 300`, policy: `service`, env: {BUILT_BY: `{{releaseId}}`}, restartDelayMs: 10},
    ]});
  });
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`});
  const service = () => (async () => ((await daemon.call(`status`)).services as Array<{process: {pid: number; restarts: number; state: string}}>)[0])();
  const first = await service();
  await waitFor(() => fs.existsSync(file) && fs.readFileSync(file, `utf8`) === `v1\n`, {what: `the service's first start line`});
  process.kill(first?.process.pid as number, `SIGKILL`);
  await waitFor(async () => (await service())?.process.restarts === 1 && fs.readFileSync(file, `utf8`) === `v1\nv2\n`, {what: `the crash restart with v2's definition`});
});

/** web + two companions listed out of order (worker dependsOn queue) + a beforeSwitch hook writing a marker. */
function rollingConfig(dir: string, hook = `echo "$ROLLBRIDGE_RELEASE_ID" >> "${path.join(dir, `migrations.log`)}"`): Record<string, unknown> {
  return webConfig(dir, {
    hooks: {beforeSwitch: hook},
    processes: [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20}},
      {id: `worker`, command: `exec sleep 300`, policy: `companion`, dependsOn: [`queue`], readiness: {command: `test ! -e "${path.join(dir, `worker-broken`)}"`, timeoutMs: 500}},
      {id: `queue`, command: `exec sleep 300`, policy: `companion`},
    ],
  });
}

function pids(release: ReleaseView): Record<string, number> {
  return Object.fromEntries(release.processes.map((process) => [process.id, process.pid]));
}

test(`restart --all restarts every process in dependsOn order, the web one replaced without a failed request; --dry-run only reports the plan`, async (t) => {
  const fs = await import('node:fs');
  const daemon = await startDaemon(t, (dir) => rollingConfig(dir));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  fs.rmSync(path.join(daemon.dir, `migrations.log`));
  const before = pids(activeRelease(await daemon.call(`status`)));

  const dry = await daemon.call(`restart`, {all: true, beforeSwitch: true, dryRun: true});
  assert.deepEqual(dry.restarted, []);
  assert.deepEqual(dry.plan, {
    processes: [
      {id: `queue`, processId: `queue`, policy: `companion`, pid: before.queue, how: `restart`, check: null},
      {id: `worker`, processId: `worker`, policy: `companion`, pid: before.worker, how: `restart`, check: `readiness`},
      {id: `web`, processId: `web`, policy: `proxied`, pid: before.web, how: `replace`, check: `health`},
    ],
    hooks: {beforeSwitch: `echo "$ROLLBRIDGE_RELEASE_ID" >> "${path.join(daemon.dir, `migrations.log`)}"`},
    cooldownMs: 0,
  });
  assert.deepEqual(pids(activeRelease(await daemon.call(`status`))), before, `the dry run changed nothing`);
  assert.equal(fs.existsSync(path.join(daemon.dir, `migrations.log`)), false, `the dry run ran no hook`);

  const agent = new http.Agent({keepAlive: true});
  t.after(() => agent.destroy());
  let stop = false;
  let failures = 0;
  let requests = 0;
  const load = (async () => {
    const deadline = Date.now() + 30_000;
    while (!stop && Date.now() < deadline) {
      const response = await httpGet(daemon.proxyPort, `/`, {agent}).catch(() => null);
      requests += 1;
      if (response?.status !== 200) failures += 1;
    }
  })();
  const result = await daemon.call(`restart`, {all: true, beforeSwitch: true});
  stop = true;
  await load;
  assert.deepEqual(result.restarted, [`queue`, `worker`, `web`]);
  assert.deepEqual((result.hooks as Array<{hook: string; ok: boolean}>).map((hook) => [hook.hook, hook.ok]), [[`beforeSwitch`, true]]);
  assert.equal(fs.readFileSync(path.join(daemon.dir, `migrations.log`), `utf8`), `v1\n`);
  assert.equal(failures, 0, `${failures} of ${requests} requests failed during the rolling restart`);
  const after = pids(activeRelease(await daemon.call(`status`)));
  for (const id of [`queue`, `worker`, `web`]) assert.notEqual(after[id], before[id], `${id} was restarted`);
  const requested = daemon.records.filter((record) => record.msg === `process restart requested`).map((record) => record.processId);
  assert.deepEqual(requested, [`queue`, `worker`, `web`]);
});

test(`the first failed check stops a restart there: the error names what was and was not restarted; a failed beforeSwitch restarts nothing`, async (t) => {
  const fs = await import('node:fs');
  const daemon = await startDaemon(t, (dir) => rollingConfig(dir));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const before = pids(activeRelease(await daemon.call(`status`)));
  fs.writeFileSync(path.join(daemon.dir, `worker-broken`), ``);
  await assert.rejects(daemon.call(`restart`, {all: true}), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_READINESS_FAILED`);
    assert.match(error.message, /^Restart stopped at worker: .* \(restarted before it: queue; not restarted: web\)$/);
    assert.deepEqual([error.details.failed, error.details.restarted, error.details.notRestarted], [`worker`, [`queue`], [`web`]]);
    return true;
  });
  assert.equal(pids(activeRelease(await daemon.call(`status`))).web, before.web, `the web process was not reached`);

  const forced = await daemon.call(`restart`, {processId: `worker`, skipHealthCheck: true});
  assert.deepEqual(forced.restarted, [`worker`]);
  await daemon.record((record) => record.msg === `health checks skipped for restart`, `the skipped checks`);
  fs.rmSync(path.join(daemon.dir, `worker-broken`));

  fs.writeFileSync(daemon.configPath, JSON.stringify(rollingConfig(daemon.dir, `echo migration failed; exit 3`)));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`, skipBeforeSwitch: true});
  await daemon.record((record) => record.msg === `hook skipped` && record.releaseId === `v2`, `the skipped beforeSwitch of v2`);
  const v2 = pids(activeRelease(await daemon.call(`status`)));
  await assert.rejects(daemon.call(`restart`, {all: true, beforeSwitch: true}), (error: unknown) => isRollbridgeError(error) && error.code === `ERR_HOOK_FAILED`);
  assert.deepEqual(pids(activeRelease(await daemon.call(`status`))), v2, `nothing was restarted`);
});
