import assert from 'node:assert/strict';
import test from 'node:test';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {killQuietly} from '../helpers/processes.ts';
import {runCli} from '../helpers/run-cli.ts';
import {waitFor} from '../helpers/wait-for.ts';

type CheckReport = {ok: boolean; problems: Array<{where: string; processId: string | null; releaseId?: string; expected: string; actual: string}>};
type ProcessView = {id: string; pid?: number; state: string};
type ServiceView = {id: string; process: ProcessView};
type ReleaseView = {releaseId: string; processes: ProcessView[]};

function serviceConfig(dir: string): Record<string, unknown> {
  const config = webConfig(dir);
  const idle = `"${process.execPath}" -e "setInterval(() => {}, 60000)"`;
  const beacon = {id: `beacon`, command: idle, policy: `service`, restart: {maxRestarts: 0}};
  const worker = {id: `worker`, command: idle, policy: `companion`, restart: {maxRestarts: 0}};
  return {...config, processes: [...(config.processes as unknown[]), beacon, worker]};
}

test(`status --check passes while everything runs and reports no active release after stop`, async (t) => {
  const daemon = await startDaemon(t, serviceConfig);
  const deploy = await runCli([`deploy`, `--release-path`, daemon.release(`r1`), `--release-id`, `r1`], {cwd: daemon.dir});
  assert.equal(deploy.code, 0, deploy.stderr);

  const [healthyJson, healthyHuman] = await Promise.all([runCli([`status`, `--check`, `--json`], {cwd: daemon.dir}), runCli([`status`, `--check`], {cwd: daemon.dir})]);
  assert.equal(healthyJson.code, 0, healthyJson.stdout);
  assert.deepEqual(healthyJson.json(), {ok: true, problems: []});
  assert.equal(healthyHuman.code, 0);
  assert.match(healthyHuman.stdout, /^✓ /);

  const stop = await runCli([`stop`, `--json`], {cwd: daemon.dir});
  assert.equal(stop.code, 0, stop.stderr);
  const [stoppedJson, stoppedHuman] = await Promise.all([runCli([`status`, `--check`, `--json`], {cwd: daemon.dir}), runCli([`status`, `--check`], {cwd: daemon.dir})]);
  assert.equal(stoppedJson.code, 1);
  assert.deepEqual(stoppedJson.json(), {ok: false, problems: [{where: `proxy`, processId: null, expected: `an active release`, actual: `no active release`}]},
    `the stopped release itself is not a problem`);
  assert.equal(stoppedHuman.code, 1);
  assert.equal(stoppedHuman.stdout, `✗ proxy: no active release\n`);
  assert.equal(stoppedHuman.stderr, `\n1 problem found.\n`);
});

test(`status --check lists each process of the active release and each service that is not running, and exits 1`, async (t) => {
  const daemon = await startDaemon(t, serviceConfig);
  const deploy = await runCli([`deploy`, `--release-path`, daemon.release(`r1`), `--release-id`, `r1`], {cwd: daemon.dir});
  assert.equal(deploy.code, 0, deploy.stderr);
  const status = await daemon.call(`status`);
  const beaconPid = (status.services as ServiceView[]).find((service) => service.id === `beacon`)?.process.pid;
  const workerPid = (status.releases as ReleaseView[])[0]?.processes.find((entry) => entry.id === `worker`)?.pid;
  assert.ok(beaconPid && workerPid, `the beacon service and the worker companion run`);
  killQuietly(beaconPid, `SIGKILL`);
  killQuietly(workerPid, `SIGKILL`);
  await waitFor(async () => {
    const current = await daemon.call(`status`);
    const beacon = (current.services as ServiceView[]).find((service) => service.id === `beacon`);
    const worker = (current.releases as ReleaseView[])[0]?.processes.find((entry) => entry.id === `worker`);
    return beacon?.process.state === `failed` && worker?.state === `failed`;
  }, {what: `the killed processes to be failed`});

  const [json, human] = await Promise.all([runCli([`status`, `--check`, `--json`], {cwd: daemon.dir}), runCli([`status`, `--check`], {cwd: daemon.dir})]);
  assert.equal(json.code, 1);
  assert.deepEqual((json.json() as CheckReport).problems, [
    {where: `release`, processId: `worker`, releaseId: `r1`, expected: `running`, actual: `failed`},
    {where: `service`, processId: `beacon`, expected: `running`, actual: `failed`},
  ]);
  assert.equal(human.code, 1);
  assert.equal(human.stdout, `✗ release worker: expected running, is failed\n✗ service beacon: expected running, is failed\n`);
  assert.equal(human.stderr, `\n2 problems found.\n`);
});
