import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {test} from 'node:test';
import {ControlClient} from '../../src/control/client.ts';
import {webConfig} from '../helpers/daemon.ts';
import {TestWebSocket, httpGet} from '../helpers/http.ts';
import {loadSwitch} from '../helpers/load-switch.ts';
import {freePort} from '../helpers/ports.ts';
import {isPidAlive, killQuietly} from '../helpers/processes.ts';
import {runCli} from '../helpers/run-cli.ts';
import {beforeRemoving, createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';

type Status = {daemon: {pid: number}; activeReleaseId: string; recovery: {adopted: string[]} | null; releases: Array<{state: string; processes: Array<{id: string; pid: number; adopted?: boolean}>}>};

async function status(socketPath: string): Promise<Status> {
  const client = await ControlClient.connect(socketPath);
  try {
    return await client.call(`status`, {}) as unknown as Status;
  } finally {
    client.close();
  }
}

test(`ensure-daemon --replace under keep-alive load hands over to a new daemon: no request lost, the web process keeps its pid`, async (t) => {
  const dir = createTempDir(t);
  const port = await freePort();
  const configPath = path.join(dir, `rollbridge.json`);
  const socketPath = path.join(dir, `control.sock`);
  fs.writeFileSync(configPath, JSON.stringify(webConfig(dir, {application: `replace-test`, proxy: {host: `127.0.0.1`, port, drainTimeoutMs: 2_000}})));
  const launch = [`--config`, configPath, `--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)];
  const pids = new Set<number>();
  beforeRemoving(dir, async () => {
    await runCli([`shutdown`, `--config`, configPath], {cwd: dir});
    for (const pid of pids) await waitFor(() => !isPidAlive(pid), {what: `daemon ${pid} to exit`}).catch(() => killQuietly(pid));
  });
  const started = await runCli([`ensure-daemon`, ...launch, `--json`], {cwd: dir});
  assert.equal(started.code, 0, started.stderr);
  const first = await status(socketPath);
  pids.add(first.daemon.pid);
  fs.mkdirSync(path.join(dir, `r1`));
  const deployed = await runCli([`deploy`, `--config`, configPath, `--release-path`, path.join(dir, `r1`), `--release-id`, `r1`, `--json`], {cwd: dir});
  assert.equal(deployed.code, 0, deployed.stderr);
  const webPid = Number((await httpGet(port, `/pid`)).body.trim());

  // 8 keep-alive connections send requests back to back through the replacement.
  const agent = new http.Agent({keepAlive: true, maxSockets: 8});
  t.after(() => agent.destroy());
  let ok = 0;
  const failures: string[] = [];
  const loadOn = loadSwitch(t);
  const worker = async () => {
    while (loadOn.on()) {
      try {
        const response = await httpGet(port, `/pid`, {agent});
        if (response.status === 200 && response.body.trim() === String(webPid)) ok += 1;
        else failures.push(`${response.status} ${response.body.trim()}`);
      } catch (error) {
        failures.push((error as NodeJS.ErrnoException).code ?? String(error));
      }
    }
  };
  const load = Promise.all(Array.from({length: 8}, worker));
  await waitFor(() => ok > 200, {what: `load to flow`});
  const replaced = await runCli([`ensure-daemon`, `--replace`, ...launch, `--json`], {cwd: dir});
  const okAtReplace = ok;
  await waitFor(() => ok > okAtReplace + 200, {what: `load to flow through the new daemon`});
  loadOn.stop();
  await load;
  assert.equal(replaced.code, 0, `${replaced.stdout}\n${replaced.stderr}\n${fs.readFileSync(path.join(dir, `daemon.log`), `utf8`)}`);
  const result = replaced.json() as {replaced: boolean; previousPid: number; pid: number};
  pids.add(result.pid);
  assert.equal(result.replaced, true);
  assert.equal(result.previousPid, first.daemon.pid);
  assert.notEqual(result.pid, first.daemon.pid);
  assert.deepEqual(failures, [], `no request failed (${ok} answered)`);

  const second = await status(socketPath);
  assert.equal(second.daemon.pid, result.pid, `the control socket now leads to the new daemon`);
  assert.deepEqual(second.recovery?.adopted, [`web`]);
  const web = second.releases.find((release) => release.state === `active`)?.processes[0];
  assert.deepEqual([web?.pid, web?.adopted], [webPid, true]);
  await waitFor(() => !isPidAlive(first.daemon.pid), {what: `the old daemon to exit`});
  assert.equal(isPidAlive(webPid), true, `the web process outlived the old daemon`);

  // The new daemon is in charge: a deploy replaces the adopted web process.
  fs.mkdirSync(path.join(dir, `r2`));
  const next = await runCli([`deploy`, `--config`, configPath, `--release-path`, path.join(dir, `r2`), `--release-id`, `r2`, `--json`], {cwd: dir});
  assert.equal(next.code, 0, next.stderr);
  assert.equal((await httpGet(port, `/`)).body, `r2\n`);
  await waitFor(() => !isPidAlive(webPid), {what: `the adopted web process to be stopped by the new daemon`});
});

test(`ensure-daemon --replace closes the old daemon's WebSockets with 1001, spread over proxy.wsCloseJitterMs, and new ones reach the new daemon`, async (t) => {
  const dir = createTempDir(t);
  const port = await freePort();
  const configPath = path.join(dir, `rollbridge.json`);
  const jitterMs = 1_200;
  fs.writeFileSync(configPath, JSON.stringify(webConfig(dir, {application: `replace-ws`, proxy: {host: `127.0.0.1`, port, drainTimeoutMs: 300, wsCloseJitterMs: jitterMs}})));
  const launch = [`--config`, configPath, `--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)];
  const pids = new Set<number>();
  beforeRemoving(dir, async () => {
    await runCli([`shutdown`, `--config`, configPath], {cwd: dir});
    for (const pid of pids) await waitFor(() => !isPidAlive(pid), {what: `daemon ${pid} to exit`}).catch(() => killQuietly(pid));
  });
  assert.equal((await runCli([`ensure-daemon`, ...launch], {cwd: dir})).code, 0);
  const first = await status(path.join(dir, `control.sock`));
  pids.add(first.daemon.pid);
  fs.mkdirSync(path.join(dir, `r1`));
  assert.equal((await runCli([`deploy`, `--config`, configPath, `--release-path`, path.join(dir, `r1`), `--release-id`, `r1`], {cwd: dir})).code, 0);

  const sockets = await Promise.all(Array.from({length: 4}, () => TestWebSocket.connect(port)));
  t.after(() => sockets.forEach((ws) => ws.close()));
  for (const ws of sockets) assert.equal(await ws.roundTrip(`hello`), `r1:hello`);
  const closedAt: number[] = [];
  for (const ws of sockets) void ws.closed.then(() => closedAt.push(performance.now()));

  const replaced = await runCli([`ensure-daemon`, `--replace`, ...launch, `--json`], {cwd: dir});
  assert.equal(replaced.code, 0, replaced.stderr);
  pids.add((replaced.json() as {pid: number}).pid);
  await Promise.all(sockets.map((ws) => ws.closed));
  assert.deepEqual(sockets.map((ws) => ws.closeCode), [1001, 1001, 1001, 1001], `Going Away, not an abnormal 1006`);
  // Four closes spread over the window are ~jitterMs × 3/4 apart end to end; all at once would be ~0.
  const spreadMs = Math.max(...closedAt) - Math.min(...closedAt);
  assert.ok(spreadMs >= jitterMs / 3, `the closes are spread over the window (first to last: ${Math.round(spreadMs)} ms)`);

  const fresh = await TestWebSocket.connect(port);
  t.after(() => fresh.close());
  assert.equal(await fresh.roundTrip(`again`), `r1:again`);
  await waitFor(() => !isPidAlive(first.daemon.pid), {what: `the old daemon to exit`});
});

test(`a replacement request with a wrong token is refused and the daemon carries on`, async (t) => {
  const dir = createTempDir(t);
  const configPath = path.join(dir, `rollbridge.json`);
  const socketPath = path.join(dir, `control.sock`);
  fs.writeFileSync(configPath, JSON.stringify(webConfig(dir, {application: `replace-refused`})));
  const started = await runCli([`ensure-daemon`, `--config`, configPath, `--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)], {cwd: dir});
  assert.equal(started.code, 0, started.stderr);
  const before = await status(socketPath);
  beforeRemoving(dir, async () => {
    await runCli([`shutdown`, `--config`, configPath], {cwd: dir});
    await waitFor(() => !isPidAlive(before.daemon.pid), {what: `the daemon to exit`}).catch(() => killQuietly(before.daemon.pid));
  });
  assert.equal(fs.statSync(`${socketPath}.token`).mode & 0o777, 0o600);
  const client = await ControlClient.connect(socketPath);
  await assert.rejects(client.call(`replace`, {token: `0`.repeat(64), executable: {file: process.execPath, args: []}}), (error: Error & {code?: string}) => error.code === `ERR_DAEMON_REPLACE_REFUSED`);
  client.close();
  assert.equal((await status(socketPath)).daemon.pid, before.daemon.pid);
});

test(`issue-9: ensure-daemon --replace refuses a topology change as deploy does, names the fields and leaves every process where it was`, async (t) => {
  const dir = createTempDir(t);
  const configPath = path.join(dir, `rollbridge.json`);
  const socketPath = path.join(dir, `control.sock`);
  const withWorkers = (replicas: number) => webConfig(dir, {application: `replace-topology`, processes: [
    ...(webConfig(dir).processes as unknown[]),
    {id: `worker`, command: `exec sleep 300`, policy: `companion`, replicas},
  ]});
  fs.writeFileSync(configPath, JSON.stringify(withWorkers(2)));
  const launch = [`--config`, configPath, `--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)];
  const started = await runCli([`ensure-daemon`, ...launch], {cwd: dir});
  assert.equal(started.code, 0, started.stderr);
  const before = await status(socketPath);
  beforeRemoving(dir, async () => {
    await runCli([`shutdown`, `--config`, configPath], {cwd: dir});
    await waitFor(() => !isPidAlive(before.daemon.pid), {what: `the daemon to exit`}).catch(() => killQuietly(before.daemon.pid));
  });
  const deployed = await runCli([`deploy`, `--config`, configPath, `--release-path`, dir, `--release-id`, `v1`], {cwd: dir});
  assert.equal(deployed.code, 0, deployed.stderr);
  const pids = (await status(socketPath)).releases.find((release) => release.state === `active`)?.processes.map((process) => process.pid).sort();
  fs.writeFileSync(configPath, JSON.stringify(withWorkers(3)));

  const replaced = await runCli([`ensure-daemon`, `--replace`, ...launch, `--json`], {cwd: dir});
  assert.equal(replaced.code, 1);
  const {error} = JSON.parse(replaced.stdout) as {error: {code: string; details: {fields: string[]}; fix: string}};
  assert.equal(error.code, `ERR_CONFIG_LIVE_RELOAD`);
  assert.deepEqual(error.details.fields, [`processes.worker.replicas`]);
  assert.match(error.fix, /rollbridge shutdown/);
  const after = await status(socketPath);
  assert.equal(after.daemon.pid, before.daemon.pid, `the running daemon carries on`);
  assert.deepEqual(after.releases.find((release) => release.state === `active`)?.processes.map((process) => process.pid).sort(), pids);
  const deployRefused = await runCli([`deploy`, `--config`, configPath, `--release-path`, dir, `--release-id`, `v2`, `--json`], {cwd: dir});
  assert.equal((JSON.parse(deployRefused.stdout) as {error: {code: string}}).error.code, `ERR_CONFIG_LIVE_RELOAD`, `the same rule as deploy`);
});
