import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {startDaemon, WEB_APP} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {REPO_ROOT} from '../helpers/run-cli.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {freePort} from '../helpers/ports.ts';

const RECORDER = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `recorder.cjs`);


type Entry = {what: string; name: string; pid: number; at: number};

test(`a Velocious-style topology deploys 10 times: services keep pids and ports, workers quiet before they stop, singletons never overlap`, async (t) => {
  const [beaconPort, jobsPort] = [await freePort(), await freePort()];
  let recordFile = ``;
  const daemon = await startDaemon(t, (dir) => {
    recordFile = path.join(dir, `record.log`);
    const recorder = `exec "${process.execPath}" "${RECORDER}"`;
    return {
      application: `velocious`,
      control: {path: path.join(dir, `control.sock`)},
      proxy: {port: 0, drainTimeoutMs: 2_000, forceStopTimeoutMs: 3_000},
      processes: [
        {id: `beacon`, command: recorder, policy: `service`, port: beaconPort, env: {RECORD_FILE: recordFile}},
        {id: `background-jobs-main`, command: recorder, policy: `service`, port: jobsPort, env: {RECORD_FILE: recordFile}},
        {id: `worker`, command: recorder, policy: `companion`, replicas: 4, nonBlockingDrain: true, env: {RECORD_FILE: recordFile},
          lifecycle: {quietCommand: `echo "quiet worker#$ROLLBRIDGE_REPLICA_INDEX $ROLLBRIDGE_PID $(date +%s%3N)" >> "${recordFile}"`}},
        {id: `scheduler`, command: recorder, policy: `singleton`, env: {RECORD_FILE: recordFile}},
        {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20}},
      ],
    };
  });
  const servicePids = new Map<string, number>();
  for (let index = 1; index <= 10; index++) {
    await daemon.call(`deploy`, {releasePath: daemon.release(`r${index}`), releaseId: `r${index}`});
    assert.equal((await httpGet(daemon.proxyPort)).body, `r${index}\n`);
    const status = await daemon.call(`status`);
    for (const service of status.services as Array<{id: string; port: number; process: {pid: number}}>) {
      if (!servicePids.has(service.id)) servicePids.set(service.id, service.process.pid);
      assert.equal(service.process.pid, servicePids.get(service.id), `${service.id} keeps its pid across deploys`);
      assert.equal(service.port, service.id === `beacon` ? beaconPort : jobsPort, `${service.id} keeps its port`);
    }
  }
  // Every earlier release's workers have stopped (nonBlockingDrain: at once, in the background).
  const entries = (): Entry[] => fs.readFileSync(recordFile, `utf8`).trim().split(`\n`).map((line) => {
    const [what, name, pid, at] = line.split(` `);
    return {what: what as string, name: name as string, pid: Number(pid), at: Number(at)};
  });
  await waitFor(() => entries().filter((entry) => entry.what === `stop` && entry.name.startsWith(`worker`)).length === 36, {what: `the workers of releases 1–9 to stop`});
  // A process writes its `start` line once Node has booted, a moment after its spawn: wait for the last release's.
  await waitFor(() => entries().filter((entry) => entry.what === `start` && (entry.name.startsWith(`worker`) || entry.name === `scheduler`)).length === 50, {what: `every worker and scheduler start to be recorded`});
  const log = entries();
  const byPid = new Map<number, Entry[]>();
  for (const entry of log) byPid.set(entry.pid, [...(byPid.get(entry.pid) ?? []), entry]);

  // Each stopped worker ran its quiet hook (ROLLBRIDGE_PID = its process group = its pid, via exec) before it stopped.
  for (const stop of log.filter((entry) => entry.what === `stop` && entry.name.startsWith(`worker`))) {
    const quiet = log.find((entry) => entry.what === `quiet` && entry.pid === stop.pid);
    assert.ok(quiet, `worker pid ${stop.pid} ran its quiet hook`);
    assert.ok(quiet.at <= stop.at, `the quiet hook ran before worker pid ${stop.pid} stopped`);
  }
  assert.equal(log.filter((entry) => entry.what === `start` && entry.name.startsWith(`worker`)).length, 40);

  // Singletons: ten starts, and each one started only after the previous one stopped.
  const schedulerStarts = log.filter((entry) => entry.what === `start` && entry.name === `scheduler`);
  assert.equal(schedulerStarts.length, 10);
  for (let index = 1; index < schedulerStarts.length; index++) {
    const previous = schedulerStarts[index - 1] as Entry;
    const stop = byPid.get(previous.pid)?.find((entry) => entry.what === `stop`);
    assert.ok(stop, `scheduler pid ${previous.pid} stopped`);
    assert.ok(stop.at <= (schedulerStarts[index] as Entry).at, `scheduler ${index + 1} started after scheduler ${index} stopped`);
  }
  // The services started once.
  assert.equal(log.filter((entry) => entry.what === `start` && (entry.name === `beacon` || entry.name === `background-jobs-main`)).length, 2);
});
