import assert from 'node:assert/strict';
import http from 'node:http';
import test from 'node:test';
import type {TestContext} from 'node:test';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {loadSwitch} from '../helpers/load-switch.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {waitFor} from '../helpers/wait-for.ts';

type ProcessView = {id: string; pid: number; port: number; state: string};
type ReleaseView = {releaseId: string; processes: ProcessView[]};

function webs(status: Record<string, unknown>): ProcessView[] {
  const release = (status.releases as ReleaseView[]).find((entry) => entry.releaseId === status.activeReleaseId);
  return (release?.processes ?? []).filter((process) => process.id.startsWith(`web`));
}

/** Keep-alive load that records which pid answered; returns a stop function with the tallies. */
function load(t: TestContext, port: number, agent: http.Agent) {
  const load = loadSwitch(t);
  let failures = 0;
  const pids = new Map<number, number>();
  const clients = Array.from({length: 8}, async () => {
    while (load.on()) {
      try {
        const result = await httpGet(port, `/pid`, {agent});
        if (result.status === 200) pids.set(Number(result.body), (pids.get(Number(result.body)) ?? 0) + 1);
        else failures += 1;
      } catch {
        failures += 1;
      }
    }
  });
  return {
    pids,
    stop: async () => {
      load.stop();
      await Promise.all(clients);
      return failures;
    },
  };
}

test(`proxied replicas each get a port, share the traffic and are replaced one at a time without a failed request`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {replicas: 3, env: {APP_SHUTDOWN: `immediate`}}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const before = webs(await daemon.call(`status`));
  assert.deepEqual(before.map((process) => process.id), [`web#0`, `web#1`, `web#2`]);
  assert.equal(new Set(before.map((process) => process.port)).size, 3, `one port per replica`);

  const agent = new http.Agent({keepAlive: true, maxSockets: 8});
  t.after(() => agent.destroy());
  const traffic = load(t, daemon.proxyPort, agent);
  await waitFor(() => before.every((process) => (traffic.pids.get(process.pid) ?? 0) > 5), {what: `every replica to serve`});
  const result = await daemon.call(`restart`, {processId: `web`});
  assert.deepEqual(result.restarted, [`web#0`, `web#1`, `web#2`]);
  const after = webs(await daemon.call(`status`));
  await waitFor(() => after.every((process) => (traffic.pids.get(process.pid) ?? 0) > 0), {what: `every new replica to serve`});
  assert.equal(await traffic.stop(), 0);
  for (const process of before) assert.equal(isPidAlive(process.pid), false, `old ${process.id} stopped`);
  assert.deepEqual(after.map((process) => process.id), [`web#0`, `web#1`, `web#2`]);
});

test(`a replica that dies is skipped: its requests go to the other replicas`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {}, {replicas: 2, restartDelayMs: 60_000}));
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const [first, second] = webs(await daemon.call(`status`));
  assert.ok(first && second);
  const agent = new http.Agent({keepAlive: true, maxSockets: 8});
  t.after(() => agent.destroy());
  const traffic = load(t, daemon.proxyPort, agent);
  await waitFor(() => (traffic.pids.get(first.pid) ?? 0) > 5, {what: `traffic on the first replica`});
  process.kill(first.pid, `SIGKILL`);
  const servedBySecond = (traffic.pids.get(second.pid) ?? 0) + 200;
  await waitFor(() => (traffic.pids.get(second.pid) ?? 0) >= servedBySecond, {what: `200 more requests on the surviving replica`});
  assert.equal(await traffic.stop(), 0);
});

test(`a rolling restart overlaps the drains: the next replica is replaced while the previous one still drains, and no request fails`, async (t) => {
  const {default: fs} = await import('node:fs');
  const {default: path} = await import('node:path');
  const {TestWebSocket} = await import('../helpers/http.ts');
  const daemon = await startDaemon(t, (dir) => webConfig(dir, {proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 3_000, wsCloseJitterMs: 100, forceStopTimeoutMs: 2_000}}, {replicas: 2, env: {APP_EVENTS_FILE: path.join(dir, `events.jsonl`)}}));
  const eventsFile = path.join(daemon.dir, `events.jsonl`);
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const before = webs(await daemon.call(`status`));
  // With no other traffic the proxy alternates: one WebSocket on each replica keeps its drain going to the deadline.
  const sockets = [await TestWebSocket.connect(daemon.proxyPort), await TestWebSocket.connect(daemon.proxyPort)];
  t.after(() => sockets.forEach((ws) => ws.close()));
  for (const ws of sockets) await ws.roundTrip(`hi`);

  const agent = new http.Agent({keepAlive: true, maxSockets: 8});
  t.after(() => agent.destroy());
  const traffic = load(t, daemon.proxyPort, agent);
  const result = await daemon.call(`restart`, {processId: `web`});
  assert.deepEqual(result.restarted, [`web#0`, `web#1`]);
  const after = webs(await daemon.call(`status`));
  await waitFor(() => after.every((process) => (traffic.pids.get(process.pid) ?? 0) > 0), {what: `every new replica to serve`});
  assert.equal(await traffic.stop(), 0);

  type AppEvent = {event: string; pid: number; at: number};
  const events = fs.readFileSync(eventsFile, `utf8`).split(`\n`).filter(Boolean).map((line) => JSON.parse(line) as AppEvent);
  const at = (event: string, pid: number | undefined) => events.find((entry) => entry.event === event && entry.pid === pid)?.at;
  const [old0, old1] = before;
  const [new0, new1] = after;
  assert.ok(old0 && old1 && new0 && new1);
  const old0Stopped = at(`sigterm`, old0.pid);
  const new1Listening = at(`listening`, new1.pid);
  assert.ok(old0Stopped !== undefined && new1Listening !== undefined, JSON.stringify(events));
  assert.ok(new1Listening < old0Stopped, `web#1's replacement listened (at ${new1Listening}) while the old web#0 still drained (stopped at ${old0Stopped})`);
  assert.deepEqual(sockets.map((ws) => ws.closeCode), [1001, 1001], `the drains ended at their deadline with 1001`);
  for (const process of before) assert.equal(isPidAlive(process.pid), false, `old ${process.id} stopped when the restart returned`);
});
