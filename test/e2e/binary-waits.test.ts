// Issue 13 item 6 on the built binary: every wait is shown as it starts with what is waited for
// (readiness, health check, hook, the deploy queue, a drain), each process as it starts and becomes
// ready with its own duration, restart streams its steps, and a terminal gets a live elapsed time.
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {WEB_APP, startDaemon} from '../helpers/daemon.ts';
import type {TestDaemon} from '../helpers/daemon.ts';
import {assertMatchesSchema} from '../helpers/json-schemas.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {requireCommands} from '../helpers/system-packages.ts';
import {beforeRemoving, createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {getBinaryPath} from './binary-path.ts';

const BINARY = getBinaryPath();

type Json = Record<string, unknown>;
type Running = {output: () => string; stderr: () => string; running: () => boolean; exited: Promise<number>};

/** Runs the binary (or `file`) and collects its output as it comes, so a test can watch lines appear before it exits. */
function start(t: TestContext, args: string[], options: {cwd: string; env?: Record<string, string>; file?: string}): Running {
  const child = spawn(options.file ?? BINARY, args, {cwd: options.cwd, env: {...process.env, ROLLBRIDGE_OUTPUT: ``, ...options.env}, stdio: [`ignore`, `pipe`, `pipe`]});
  let stdout = ``;
  let stderr = ``;
  child.stdout.setEncoding(`utf8`).on(`data`, (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding(`utf8`).on(`data`, (chunk: string) => (stderr += chunk));
  const exited = new Promise<number>((resolve) => child.once(`close`, (code) => resolve(code ?? 1)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(`SIGTERM`);
      await exited;
    }
  });
  return {output: () => stdout, stderr: () => stderr, running: () => child.exitCode === null && child.signalCode === null, exited};
}

async function finish(run: Running): Promise<string> {
  const code = await run.exited;
  assert.equal(code, 0, `${run.output()}\n${run.stderr()}`);
  return run.output();
}

/** NDJSON of --json --stream: every line valid against stream-line.schema.json, the phases, then the result. */
function streamLines(output: string): Json[] {
  const lines = output.trimEnd().split(`\n`).map((line) => JSON.parse(line) as Json);
  for (const line of lines) assertMatchesSchema(`stream-line.schema.json`, line);
  assert.equal(lines.at(-1)?.type, `result`, output);
  return lines;
}

/** `phase processId wait` of each phase line, e.g. `waiting web health`. */
function steps(lines: Json[]): string[] {
  return lines.filter((line) => line.type === `phase`).map((line) => [line.phase, line.processId, line.wait].filter((part) => part !== undefined).join(` `));
}

/** Terminal output with ESC shown as `<ESC>`, so assertions can name the control sequences. */
function visible(text: string): string {
  return text.replaceAll(`\x1b`, `<ESC>`);
}

/** Asserts that `patterns` match lines of `text` in this order (other lines may come between). */
function assertLinesInOrder(text: string, patterns: RegExp[]): void {
  const lines = text.split(`\n`);
  let at = 0;
  for (const pattern of patterns) {
    const found = lines.findIndex((line, index) => index >= at && pattern.test(line));
    assert.ok(found !== -1, `${pattern} after line ${at} in:\n${text}`);
    at = found + 1;
  }
}

/**
 * A service with a TCP readiness check that boots in 1 s, a companion whose readiness command passes
 * once `<dir>/worker-ready` exists, the web process with its health check, and a beforeSwitch hook that
 * waits for `go` in the release directory: each wait can be held open by the test.
 */
async function startProject(t: TestContext): Promise<TestDaemon & {cwd: string; readyFlag: string}> {
  let readyFlag = ``;
  const daemon = await startDaemon(t, (dir) => {
    readyFlag = path.join(dir, `worker-ready`);
    return {
      application: `waits`,
      control: {path: path.join(dir, `control.sock`)},
      logs: {dir: path.join(dir, `logs`)},
      proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 1_000, forceStopTimeoutMs: 2_000},
      hooks: {beforeSwitch: `while [ ! -f go ]; do sleep 0.02; done`, timeoutMs: 60_000},
      processes: [
        {id: `cache`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `service`, port: {from: 0, to: 0}, env: {APP_BOOT_MS: `1000`}, readiness: {tcp: true, timeoutMs: 20_000}},
        {id: `worker`, command: `exec sleep 300`, policy: `companion`, readiness: {command: `test -f "${readyFlag}"`, intervalMs: 20, timeoutMs: 20_000}},
        {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 5_000}},
      ],
    };
  }, {executable: BINARY});
  fs.writeFileSync(readyFlag, ``);
  return {...daemon, cwd: daemon.dir, readyFlag};
}

function release(project: {release: (name: string) => string}, name: string, go = true): string {
  const dir = project.release(name);
  if (go) fs.writeFileSync(path.join(dir, `go`), ``);
  return dir;
}

test(`deploy shows each process starting and becoming ready, each wait as it starts, and a deploy queued behind another one`, async (t) => {
  const project = await startProject(t);
  const {cwd} = project;

  // --json --stream: every step its own line, valid against the published schema.
  release(project, `r1`);
  const first = streamLines(await finish(start(t, [`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--json`, `--stream`], {cwd})));
  assert.deepEqual(steps(first), [
    `started cache`, `waiting cache readiness`, `ready cache`,
    `started worker`, `waiting worker readiness`, `ready worker`,
    `started web`, `waiting web health`, `healthy web`,
    `waiting hook`, `beforeSwitch`, `switched`,
  ]);
  const phase = (name: string, processId?: string) => first.find((line) => line.phase === name && (processId === undefined || line.processId === processId)) as Json;
  assert.deepEqual([phase(`started`, `cache`).policy, phase(`started`, `worker`).policy, phase(`started`, `web`).policy], [`service`, `companion`, undefined], `the proxied process's line is the one rollbridge 0.1 printed`);
  assert.equal(typeof phase(`started`, `cache`).port, `number`);
  assert.match(String(phase(`waiting`, `cache`).check), /^TCP 127\.0\.0\.1:\d+$/);
  assert.match(String(phase(`waiting`, `web`).url), /^http:\/\/127\.0\.0\.1:\d+\/ping$/);
  assert.equal(phase(`waiting`, `web`).timeoutMs, 5_000);
  assert.equal(phase(`waiting`, `web`).durationMs, undefined, `a wait's duration is on the line that ends it`);
  assert.equal(first.find((line) => line.wait === `hook`)?.hook, `beforeSwitch`);
  // Web's start is web's: the service's 1 s boot is on the service's `ready` line, not on web's `started`.
  assert.ok((phase(`ready`, `cache`).durationMs as number) >= 1_000, JSON.stringify(phase(`ready`, `cache`)));
  assert.ok((phase(`started`, `web`).durationMs as number) < (phase(`ready`, `cache`).durationMs as number), JSON.stringify(first));
  const result = first.at(-1) as {phases: Json[]};
  assert.deepEqual(result.phases.map((entry) => `${String(entry.phase)} ${String(entry.processId ?? ``)}`.trim()), [`started cache`, `ready cache`, `started worker`, `ready worker`, `started web`, `healthy web`, `beforeSwitch`, `switched`], `the result keeps the phases, not the wait starts`);

  // Piped with ROLLBRIDGE_OUTPUT=human: each wait's start line, then the line that ended it; no control sequences.
  release(project, `r2`);
  const human = await finish(start(t, [`deploy`, `--release-path`, `releases/r2`, `--release-id`, `r2`], {cwd, env: {ROLLBRIDGE_OUTPUT: `human`}}));
  assert.ok(!human.includes(`\x1b`) && !human.includes(`\r`), `no terminal control sequences in a pipe:\n${human}`);
  assertLinesInOrder(human, [
    /^ {2}started worker \(companion\) pid \d+ \([^)]+\)$/,
    /^ {2}waiting for readiness of worker: command "test -f .*worker-ready.*" \(timeout 20 s\)$/,
    /^ {2}ready worker \(/,
    /^ {2}started web pid \d+ port \d+ \(/,
    /^ {2}waiting for health check of web: GET http:\/\/127\.0\.0\.1:\d+\/ping \(timeout 5 s\)$/,
    /^ {2}healthy web \(/,
    /^ {2}waiting for hooks\.beforeSwitch: while \[ ! -f go \]; do sleep 0\.02; done \(timeout 1 min\)$/,
    /^ {2}beforeSwitch \(/,
    /^ {2}switched traffic to r2 /,
    /^ {2}draining r1 /,
    /^✓ release r2 is active/,
  ]);
  assert.doesNotMatch(human, /started cache/, `the running service is kept, not started again`);

  // r3 holds the queue in its beforeSwitch hook; r4 (--stream) and r5 (text) queue behind it.
  const r3Dir = release(project, `r3`, false);
  const r3 = start(t, [`deploy`, `--release-path`, `releases/r3`, `--release-id`, `r3`], {cwd, env: {ROLLBRIDGE_OUTPUT: `human`}});
  await waitFor(() => r3.output().includes(`waiting for hooks.beforeSwitch`), {what: `r3 to wait in its hook`, timeoutMs: 20_000});
  release(project, `r4`);
  const r4 = start(t, [`deploy`, `--release-path`, `releases/r4`, `--release-id`, `r4`, `--json`, `--stream`], {cwd});
  await waitFor(() => r4.output().includes(`"wait":"queue"`), {what: `r4 to report that it is queued`, timeoutMs: 20_000});
  release(project, `r5`);
  const r5 = start(t, [`deploy`, `--release-path`, `releases/r5`, `--release-id`, `r5`], {cwd, env: {ROLLBRIDGE_OUTPUT: `human`}});
  await waitFor(() => r5.output().includes(`waiting for the deploy queue`), {what: `r5 to report that it is queued`, timeoutMs: 20_000});
  assert.ok(r4.running() && r5.running(), `both wait while r3 holds the queue`);
  assert.match(r5.output(), /^ {2}waiting for the deploy queue: behind deploy r3 \(running since \d{4}-\d\d-\d\dT[\d:.]+Z, \d+ s ago\) and 1 more queued\n$/);
  fs.writeFileSync(path.join(r3Dir, `go`), ``);

  await finish(r3);
  const queued = streamLines(await finish(r4));
  assert.deepEqual(steps(queued).slice(0, 3), [`waiting queue`, `dequeued`, `started worker`]);
  const waiting = queued[0] as {behind: {command: string; startedAt: string; queued: number}; detail: string};
  assert.equal(waiting.behind.command, `deploy r3`);
  assert.equal(waiting.behind.queued, 0);
  assert.ok(Number.isFinite(Date.parse(waiting.behind.startedAt)), waiting.behind.startedAt);
  assert.equal(typeof queued[1]?.durationMs, `number`);
  assertLinesInOrder(await finish(r5), [/^ {2}waiting for the deploy queue: behind deploy r3 /, /^ {2}left the deploy queue \(/, /^ {2}started worker /, /^✓ release r5 is active/]);
});

test(`restart streams each step as it happens: the readiness wait of a companion, and the health check, switch and drain of the web process`, async (t) => {
  const project = await startProject(t);
  const {cwd} = project;
  release(project, `r1`);
  await finish(start(t, [`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--json`], {cwd}));

  // The wait is on the terminal while the restart runs, not only at the end.
  fs.rmSync(project.readyFlag);
  const checkUrl = `http://127.0.0.1:${project.proxyPort}/ping`;
  const restart = start(t, [`restart`, `worker`, `--check-url`, checkUrl], {cwd, env: {ROLLBRIDGE_OUTPUT: `human`}});
  await waitFor(() => restart.output().includes(`waiting for readiness of worker`), {what: `the readiness wait to be shown`, timeoutMs: 20_000});
  assert.ok(restart.running(), restart.output());
  assertLinesInOrder(restart.output(), [/^ {2}restarting worker \(pid \d+\)$/, /^ {2}started worker \(companion\) pid \d+ \(/, /^ {2}waiting for readiness of worker: command /]);
  fs.writeFileSync(project.readyFlag, ``);
  // The CLI's own wait (--check-url) is shown too, before its answer.
  assertLinesInOrder(await finish(restart), [/^ {2}waiting for readiness of worker: command /, /^ {2}ready worker \(/, /^ {2}restarted worker pid \d+ \(/, /^ {2}waiting for http:\/\/127\.0\.0\.1:\d+\/ping to answer 2xx \(timeout 10\.0s\)$/, /^Restarted worker$/, /^http:\/\/127\.0\.0\.1:\d+\/ping answered HTTP 200$/]);

  const web = streamLines(await finish(start(t, [`restart`, `--process`, `web`, `--json`, `--stream`], {cwd})));
  assert.deepEqual(steps(web), [`restarting web`, `started web`, `waiting web health`, `healthy web`, `replaced web`, `waiting web drain`, `drained web`, `restarted web`]);
  const replaced = web.find((line) => line.phase === `replaced`) as Json;
  const drain = web.find((line) => line.wait === `drain`) as Json;
  assert.equal(drain.pid, replaced.previousPid, `the drain is the replaced process's`);
  assert.equal(drain.timeoutMs, 1_000);
  assert.match(String(drain.detail), /^drain of web \(pid \d+\) of release r1: \d+ http and \d+ WebSocket connections open \(up to 1 s\)$/);
  assert.equal(web.find((line) => line.phase === `drained`)?.ok, true);
});

test(`on a terminal the current wait line carries a live elapsed time, redrawn in place, and is left as a plain line when the wait ends`, async (t) => {
  if (!requireCommands(t, [{command: `script`, pkg: `bsdutils`}])) return;
  const project = await startProject(t);
  const {cwd} = project;
  release(project, `r1`);
  await finish(start(t, [`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--json`], {cwd}));

  fs.rmSync(project.readyFlag);
  // util-linux `script` runs the binary on a pseudo-terminal; -f flushes its output as it comes.
  const terminal = start(t, [`-qfec`, `'${BINARY}' restart worker`, `/dev/null`], {cwd, file: `script`});
  const counter = /\r<ESC>\[2K {2}waiting for readiness of worker: command .*? … (\d+\.\d)s/g;
  const drawn = () => new Set([...visible(terminal.output()).matchAll(counter)].map((match) => match[1]));
  await waitFor(() => drawn().size >= 3, {what: `the elapsed time to be redrawn on the wait line`, timeoutMs: 20_000});
  assert.ok(terminal.running());
  fs.writeFileSync(project.readyFlag, ``);
  const output = visible(await finish(terminal)).replace(/\r\n/g, `\n`);
  const values = [...drawn()].map(Number);
  assert.deepEqual(values, [...values].sort((a, b) => a - b), `the counter only goes up: ${values.join(`, `)}`);
  // The last draw is cleared and the plain start line left in its place, then the line that ended the wait.
  assert.match(output, /\r<ESC>\[2K {2}waiting for readiness of worker: command "[^\n…]*" \(timeout 20 s\)\n {2}ready worker \(/);
  const afterWait = output.slice(output.lastIndexOf(`<ESC>[2K`));
  assert.doesNotMatch(afterWait, / … \d/, `no counter is left behind`);
  assert.match(afterWait, /\n {2}restarted worker pid \d+ \([^)]+\)\nRestarted worker\n$/);
});

/** A project with no daemon yet: web (its /ping answers 503 while `sick` holds its pid) and a companion ready once `worker-ready` exists. */
function daemonlessProject(t: TestContext, extra: Json = {}): {cwd: string; launch: string[]} {
  const cwd = createTempDir(t, `rb-waits-`);
  fs.mkdirSync(path.join(cwd, `releases`, `r1`), {recursive: true});
  fs.writeFileSync(path.join(cwd, `rollbridge.json`), JSON.stringify({
    application: `daemon-waits`,
    control: {path: path.join(cwd, `control.sock`)},
    logs: {dir: path.join(cwd, `logs`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 300, forceStopTimeoutMs: 2_000},
    processes: [
      {id: `worker`, command: `exec sleep 300`, policy: `companion`, readiness: {command: `test -f "${path.join(cwd, `worker-ready`)}"`, intervalMs: 20, timeoutMs: 30_000}},
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, env: {APP_SICK_FILE: path.join(cwd, `sick`)}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 30_000}},
    ],
    ...extra,
  }, null, 2));
  beforeRemoving(cwd, async () => {
    const pidFile = path.join(cwd, `daemon.pid`);
    const pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, `utf8`)) : 0;
    if (pid === 0 || !isPidAlive(pid)) return;
    process.kill(pid, `SIGTERM`);
    await waitFor(() => !isPidAlive(pid), {what: `the daemon ${pid} to exit`});
  });
  return {cwd, launch: [`--daemon-log-path`, path.join(cwd, `daemon.log`), `--daemon-pid-path`, path.join(cwd, `daemon.pid`)]};
}

test(`deploy --ensure-daemon and ensure-daemon show the wait for the daemon they start: waiting (wait daemon) ended by daemon-listening, live on a terminal`, async (t) => {
  if (!requireCommands(t, [{command: `script`, pkg: `bsdutils`}])) return;
  const {cwd, launch} = daemonlessProject(t);
  fs.writeFileSync(path.join(cwd, `worker-ready`), ``);
  const socket = path.join(cwd, `control.sock`);
  const lines = streamLines(await finish(start(t, [`deploy`, `--ensure-daemon`, `--release-path`, `releases/r1`, `--release-id`, `r1`, `--json`, `--stream`, ...launch], {cwd})));
  const daemonPid = Number(fs.readFileSync(path.join(cwd, `daemon.pid`), `utf8`));
  assert.deepEqual(steps(lines).slice(0, 3), [`waiting daemon`, `daemon-listening`, `started worker`]);
  const [waiting, listening] = lines as [Json, Json];
  assert.deepEqual([waiting.pid, waiting.timeoutMs, waiting.releaseId], [daemonPid, 10_000, null]);
  assert.equal(waiting.detail, `the daemon (pid ${daemonPid}) to listen on ${socket} (timeout 10.0s)`);
  assert.deepEqual([listening.pid, listening.detail, typeof listening.durationMs], [daemonPid, socket, `number`]);
  // A daemon already running: nothing is waited for.
  assert.deepEqual(steps(streamLines(await finish(start(t, [`deploy`, `--ensure-daemon`, `--release-path`, `releases/r1`, `--release-id`, `r2`, `--json`, `--stream`, ...launch], {cwd})))).slice(0, 1), [`started worker`]);

  // The next daemon re-adopts web and health-checks it before it listens: held open while `sick` holds web's pid.
  const status = JSON.parse(await finish(start(t, [`status`, `--json`], {cwd}))) as {releases: Array<{state: string; processes: Array<{id: string; pid: number}>}>};
  const webPid = status.releases.find((release) => release.state === `active`)?.processes.find((process) => process.id === `web`)?.pid;
  assert.ok(webPid !== undefined, JSON.stringify(status));
  fs.writeFileSync(path.join(cwd, `sick`), String(webPid));
  process.kill(daemonPid, `SIGKILL`);
  await waitFor(() => !isPidAlive(daemonPid), {what: `the killed daemon to be gone`});
  const command = [BINARY, `ensure-daemon`, `--daemon-start-timeout-ms`, `30000`, ...launch].map((arg) => `'${arg}'`).join(` `);
  const terminal = start(t, [`-qfec`, command, `/dev/null`], {cwd, file: `script`});
  const counter = /\r<ESC>\[2K {2}waiting for the daemon \(pid (\d+)\) to listen on [^\n]*? … (\d+\.\d)s/g;
  const drawn = () => new Set([...visible(terminal.output()).matchAll(counter)].map((match) => match[2]));
  await waitFor(() => drawn().size >= 3, {what: `the elapsed time to be redrawn on the daemon's wait line`, timeoutMs: 25_000});
  assert.ok(terminal.running());
  fs.rmSync(path.join(cwd, `sick`));
  const output = visible(await finish(terminal)).replace(/\r\n/g, `\n`);
  const newPid = Number(fs.readFileSync(path.join(cwd, `daemon.pid`), `utf8`));
  assert.match(output, new RegExp(`\\r<ESC>\\[2K {2}waiting for the daemon \\(pid ${newPid}\\) to listen on ${socket} \\(timeout 30\\.0s\\)\\n {2}daemon listening \\(pid ${newPid}\\) \\([^)]+\\)\\nStarted the rollbridge daemon \\(pid ${newPid}\\) on ${socket}\\n$`));
});

test(`legacy-takeover shows each wait as it starts, live on a terminal: the daemon's start, then the companion's readiness`, async (t) => {
  if (!requireCommands(t, [{command: `script`, pkg: `bsdutils`}])) return;
  const {cwd, launch} = daemonlessProject(t, {legacyTakeover: {processes: [{name: `legacy`, includes: [`rb-no-such-legacy-app-${process.pid}`]}], forceStopTimeoutMs: 1_000}});
  const command = [BINARY, `legacy-takeover`, `--release-path`, `releases/r1`, `--release-id`, `r1`, ...launch].map((arg) => `'${arg}'`).join(` `);
  const terminal = start(t, [`-qfec`, command, `/dev/null`], {cwd, file: `script`});
  const counter = /\r<ESC>\[2K {2}waiting for readiness of worker: command .*? … (\d+\.\d)s/g;
  const drawn = () => new Set([...visible(terminal.output()).matchAll(counter)].map((match) => match[1]));
  await waitFor(() => drawn().size >= 3, {what: `the elapsed time to be redrawn on the readiness wait line`, timeoutMs: 25_000});
  assert.ok(terminal.running());
  fs.writeFileSync(path.join(cwd, `worker-ready`), ``);
  const output = visible(await finish(terminal)).replace(/\r\n/g, `\n`);
  assertLinesInOrder(output, [
    /<ESC>\[2K {2}waiting for the daemon \(pid \d+\) to listen on \S+ \(timeout 10\.0s\)$/,
    /^ {2}daemon listening \(pid \d+\) \(/,
    /^ {2}started worker \(companion\) pid \d+/,
    /<ESC>\[2K {2}waiting for readiness of worker: command "[^\n…]*" \(timeout 30 s\)$/,
    /^ {2}ready worker \(/,
    /^ {2}healthy web \(/,
    /^✓ release r1 is active; legacy processes: 0 stopped, 0 killed; port gap \d+ ms;/,
  ]);
  const afterWait = output.slice(output.lastIndexOf(`<ESC>[2K`));
  assert.doesNotMatch(afterWait, / … \d/, `no counter is left behind`);
});
