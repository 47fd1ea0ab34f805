import assert from 'node:assert/strict';
import http from 'node:http';
import test from 'node:test';
import {startDaemon, webConfig, WEB_APP} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {loadSwitch} from '../helpers/load-switch.ts';
import {waitFor} from '../helpers/wait-for.ts';

type ProcessView = {id: string; pid: number; state: string; rssBytes?: number; children: Array<{pid: number; command: string; rssBytes: number}>; memoryRestarts: number; lastStartReason?: string};
type ReleaseView = {releaseId: string; processes: ProcessView[]};

const MB = 1024 * 1024;

test(`a companion over memory.limitBytes is restarted with reason memory`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {processes: [
    {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20}},
    {id: `hog`, command: `exec "${process.execPath}" -e "globalThis.b = Buffer.alloc(150 * 1024 * 1024, 1); setInterval(() => {}, 1000)"`, policy: `companion`,
      memory: {limitBytes: 120 * MB, warnBytes: 20 * MB, checkIntervalMs: 100}},
  ]}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const hog = await waitFor(async () => {
    const releases = (await daemon.call(`status`)).releases as ReleaseView[];
    const process = releases[0]?.processes.find((entry) => entry.id === `hog`);
    return process && process.memoryRestarts >= 1 && process.state === `running` ? process : null;
  }, {what: `a memory restart of the hog`, timeoutMs: 15_000});
  assert.equal(hog.lastStartReason, `memory`);
  const exceeded = await daemon.record((record) => record.msg === `memory limit exceeded`, `memory limit exceeded`);
  assert.ok(Number(exceeded.rssBytes) > 120 * MB);
  assert.equal(exceeded.limitBytes, 120 * MB);
});

test(`status reports the RSS of the whole process group of a watched process`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {memory: {limitBytes: 2048 * MB, checkIntervalMs: 20}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const web = await waitFor(async () => {
    const process = ((await daemon.call(`status`)).releases as ReleaseView[])[0]?.processes[0];
    return process?.rssBytes ? process : null;
  }, {what: `a memory sample in status`});
  assert.ok((web.rssBytes ?? 0) > 10 * MB);
  assert.deepEqual(web.children.map((child) => child.pid), [web.pid]);
  assert.ok(web.children[0]?.command, `each member is listed with its command name`);
});

test(`the proxied process over its memory limit is replaced without a failed request under load`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {
    env: {APP_HOG_BYTES: String(150 * MB), APP_SHUTDOWN: `immediate`},
    memory: {limitBytes: 120 * MB, checkIntervalMs: 100},
  }));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const leaking = (await httpGet(daemon.proxyPort, `/hog`)).body.trim().split(` `)[0];

  const agent = new http.Agent({keepAlive: true, maxSockets: 8});
  t.after(() => agent.destroy());
  const load = loadSwitch(t);
  let failures = 0;
  let lastBody = ``;
  const clients = Array.from({length: 8}, async () => {
    while (load.on()) {
      try {
        const result = await httpGet(daemon.proxyPort, `/pid`, {agent});
        if (result.status === 200) lastBody = result.body.trim().split(` `)[0] ?? ``;
        else failures += 1;
      } catch {
        failures += 1;
      }
    }
  });
  await waitFor(() => lastBody !== `` && lastBody !== leaking, {what: `the replacement web process to serve`, timeoutMs: 15_000});
  load.stop();
  await Promise.all(clients);
  assert.equal(failures, 0);
  const web = ((await daemon.call(`status`)).releases as ReleaseView[])[0]?.processes[0];
  assert.equal(web?.lastStartReason, `memory`);
  await daemon.record((record) => record.msg === `process replaced` && record.reason === `memory`, `process replaced`);
});
