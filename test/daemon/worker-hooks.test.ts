import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import test from 'node:test';
import {REPO_ROOT} from '../helpers/run-cli.ts';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {waitFor} from '../helpers/wait-for.ts';

const JOB_WORKER = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `job-worker.cjs`);
// `node` by name, as an operator writes it: a simple command, which the daemon execs.
const PATH = `${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`;

type AppEvent = {event: string; releaseId: string; pid: number; ppid: number; at: number};
type ProcessView = {id: string; pid: number; state: string};
type ReleaseView = {releaseId: string; processes: ProcessView[]};

function readEvents(file: string): AppEvent[] {
  return fs.existsSync(file) ? fs.readFileSync(file, `utf8`).split(`\n`).filter(Boolean).map((line) => JSON.parse(line) as AppEvent) : [];
}

function processOf(status: Record<string, unknown>, releaseId: string, id: string): ProcessView | undefined {
  return (status.releases as ReleaseView[]).find((release) => release.releaseId === releaseId)?.processes.find((process) => process.id === id);
}

test(`the documented quietCommand "kill -TSTP $ROLLBRIDGE_PID" reaches a worker run as a simple command, at the switch, while the web process still drains`, async (t) => {
  const daemon = await startDaemon(t, (dir) => {
    const events = path.join(dir, `events.jsonl`);
    const config = webConfig(dir, {proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 30_000, forceStopTimeoutMs: 2_000}}, {env: {APP_EVENTS_FILE: events}});
    (config.processes as unknown[]).push({
      id: `worker`,
      command: `node "${JOB_WORKER}"`,
      env: {PATH, APP_EVENTS_FILE: events},
      lifecycle: {quietCommand: `kill -TSTP $ROLLBRIDGE_PID`},
    });
    return config;
  });
  const eventsFile = path.join(daemon.dir, `events.jsonl`);
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const worker = processOf(await daemon.call(`status`), `v1`, `worker`);
  assert.ok(worker);
  // The pid rollbridge reports (and hands to hooks as ROLLBRIDGE_PID) is the app's, not a `sh -c` in front of it.
  const started = await waitFor(() => readEvents(eventsFile).find((event) => event.event === `start` && event.releaseId === `v1`), {what: `the v1 worker to record its start`});
  assert.equal(started.pid, worker.pid, `the reported pid is the worker's`);
  assert.equal(started.ppid, daemon.child.pid, `the worker is the daemon's child, no shell in between`);

  // A request in flight on v1 keeps its web process draining after the switch.
  const agent = new http.Agent({keepAlive: false});
  t.after(() => agent.destroy());
  const slow = http.get({host: `127.0.0.1`, port: daemon.proxyPort, path: `/slow?ms=60000`, agent});
  slow.on(`error`, () => undefined);
  await waitFor(async () => ((await daemon.call(`status`)).releases as Array<{releaseId: string; connections: {http: number}}>).find((release) => release.releaseId === `v1`)?.connections.http === 1, {what: `the slow request to reach v1`});

  await daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`});
  const quiet = await waitFor(() => readEvents(eventsFile).find((event) => event.event === `quiet` && event.releaseId === `v1`), {what: `the v1 worker to receive SIGTSTP while v1 drains`});
  assert.equal(quiet.pid, worker.pid);
  assert.equal(readEvents(eventsFile).some((event) => event.event === `sigterm` && event.releaseId === `v1`), false, `nothing of v1 is stopped while its web process drains`);

  // The client gives up: the drain ends and v1 stops, the worker after its quiet command.
  slow.destroy();
  const stopped = await waitFor(() => {
    const events = readEvents(eventsFile).filter((event) => event.releaseId === `v1` && event.event === `sigterm`);
    return events.length === 2 ? events : null;
  }, {what: `both v1 processes to get SIGTERM`});
  for (const event of stopped) assert.ok(quiet.at <= event.at, `the quiet command ran (at ${quiet.at}) before v1's ${event.pid === worker.pid ? `worker` : `web process`} was stopped (at ${event.at})`);
  assert.equal(readEvents(eventsFile).filter((event) => event.event === `quiet` && event.releaseId === `v1`).length, 1, `the stop does not run the quiet command again`);
});

test(`a failing lifecycle hook's output is in the process's logs (prefixed with the hook's name) and in its event`, async (t) => {
  const daemon = await startDaemon(t, (dir) => {
    const config = webConfig(dir);
    (config.processes as unknown[]).push({
      id: `worker`,
      command: `node "${JOB_WORKER}"`,
      env: {PATH, APP_EVENTS_FILE: path.join(dir, `events.jsonl`)},
      lifecycle: {quietCommand: `echo "pausing $ROLLBRIDGE_PID"; echo "queue.pause: connection refused" >&2; exit 2`},
    });
    return config;
  });
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const worker = processOf(await daemon.call(`status`), `v1`, `worker`);
  assert.ok(worker);
  await daemon.call(`restart`, {processId: `worker`});

  const event = await daemon.record((record) => record.msg === `quiet command exited non-zero`, `the failed quiet command`);
  assert.equal(event.id, `worker`);
  assert.equal(event.code, 2);
  assert.deepEqual(event.output, [`pausing ${worker.pid}`, `queue.pause: connection refused`]);

  const lines = await waitFor(async () => {
    const {sources} = await daemon.call(`logs`, {processId: `worker`}) as {sources: Array<{id: string; logs: Array<{stream: string; line: string}>}>};
    const logged = sources.flatMap((source) => source.logs).filter((entry) => entry.line.startsWith(`[quiet command]`));
    return logged.length === 2 ? logged : null;
  }, {what: `the hook's output in the worker's logs`});
  assert.deepEqual(lines.map((entry) => [entry.stream, entry.line]).sort(), [
    [`stderr`, `[quiet command] queue.pause: connection refused`],
    [`stdout`, `[quiet command] pausing ${worker.pid}`],
  ]);
  const logFile = path.join(daemon.dir, `logs`, `v1`, `worker.stdout.log`);
  assert.match(fs.readFileSync(logFile, `utf8`), new RegExp(`^\\[quiet command\\] pausing ${worker.pid}$`, `m`));
});
