import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import {once} from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {fileURLToPath} from 'node:url';
import {Logger} from '../../src/log/logger.ts';
import type {LogRecord} from '../../src/log/logger.ts';
import {ManagedProcess} from '../../src/supervisor/managed-process.ts';
import {readProcStat} from '../../src/system/proc.ts';
import type {ProcessSpec} from '../../src/supervisor/managed-process.ts';
import {isPidAlive, killQuietly} from '../helpers/processes.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';

const NODE = process.execPath;
const APP = fileURLToPath(new URL(`../fixtures/apps/supervisor-app.js`, import.meta.url));
const MANAGED_PROCESS_MODULE = fileURLToPath(new URL(`../../src/supervisor/managed-process.ts`, import.meta.url));
const LOGGER_MODULE = fileURLToPath(new URL(`../../src/log/logger.ts`, import.meta.url));

function app(args: string): string {
  return `"${NODE}" "${APP}" ${args}`;
}

function buildSpec(cwd: string, overrides: Partial<ProcessSpec> = {}): ProcessSpec {
  return {
    id: `web`,
    processId: `web`,
    command: `exit 0`,
    cwd,
    env: {PATH: `/usr/local/bin:/usr/bin:/bin`},
    port: undefined,
    stopSignal: `SIGTERM`,
    gracefulStopMs: 5_000,
    lifecycle: {quietCommand: undefined, drainCommand: undefined, stopCommand: undefined, drainTimeoutMs: 0},
    restart: {maxRestarts: undefined, windowMs: 0, backoffFactor: 1, maxDelayMs: 0},
    restartDelayMs: 1_000,
    outputLines: 50,
    logPaths: {stdout: path.join(cwd, `logs`, `web.stdout.log`), stderr: path.join(cwd, `logs`, `web.stderr.log`)},
    ...overrides,
  };
}

type Harness = {proc: ManagedProcess; dir: string; records: LogRecord[]; logged(msg: string): LogRecord[]};

function createProcess(t: TestContext, overrides: Partial<ProcessSpec> | ((dir: string) => Partial<ProcessSpec>) = {}, options: {shouldRestart?: () => boolean} = {}): Harness {
  const dir = createTempDir(t, `rb-mp-`);
  const records: LogRecord[] = [];
  const log = new Logger({level: `debug`, sinks: [(record) => records.push(record)]});
  const spec = buildSpec(dir, typeof overrides === `function` ? overrides(dir) : overrides);
  const proc = new ManagedProcess(spec, {log, shouldRestart: options.shouldRestart ?? (() => false)});
  t.after(async () => {
    const pgid = proc.pgid;
    await proc.stop().catch(() => undefined);
    if (pgid !== undefined) killQuietly(pgid);
  });
  return {proc, dir, records, logged: (msg) => records.filter((record) => record.msg === msg)};
}

function readLines(file: string): string[] {
  return fs.existsSync(file) ? fs.readFileSync(file, `utf8`).split(`\n`).filter(Boolean) : [];
}

test(`retains and reports only the configured number of recent output lines`, async (t) => {
  const {proc} = createProcess(t, {command: app(`--print 5 --exit 0`), outputLines: 3});
  const exited = proc.waitForExit();
  await proc.start(`deploy`);
  await exited;
  assert.deepEqual(proc.recentOutput().map((entry) => entry.line), [`line 3`, `line 4`, `line 5`]);
  assert.deepEqual(proc.status().logs.map((entry) => entry.stream), [`stdout`, `stdout`, `stdout`]);
});

test(`keeps every output line, tagged by stream, when fewer than the retention limit are produced`, async (t) => {
  const {proc} = createProcess(t, {command: app(`--print 2 --stderr oops --exit 0`)});
  const exited = proc.waitForExit();
  await proc.start(`deploy`);
  await exited;
  const output = proc.recentOutput();
  assert.deepEqual(output.map((entry) => entry.line).sort(), [`line 1`, `line 2`, `oops`]);
  assert.equal(output.find((entry) => entry.line === `oops`)?.stream, `stderr`);
  for (const entry of output) assert.ok(!Number.isNaN(Date.parse(entry.at)));
});

test(`joins lines split across chunks, strips carriage returns and keeps the unterminated last line`, async (t) => {
  const {proc} = createProcess(t, {command: `exec ${app(`--partial`)}`});
  const exited = proc.waitForExit();
  await proc.start(`deploy`);
  const exit = await exited;
  assert.deepEqual(exit, {code: 3, signal: null, intentional: false});
  assert.deepEqual(proc.recentOutput().map((entry) => entry.line), [`hello`, `world`]);
  assert.equal(proc.state, `failed`);
  assert.equal(proc.status().exitCode, 3);
});

test(`reports zeroed restart and uptime fields before the process starts`, (t) => {
  const {proc} = createProcess(t, {port: 4000});
  const status = proc.status();
  assert.equal(status.state, `stopped`);
  assert.equal(status.restarts, 0);
  assert.equal(status.memoryRestarts, 0);
  assert.equal(status.uptimeMs, undefined);
  assert.equal(status.startedAt, undefined);
  assert.equal(status.pid, undefined);
  assert.equal(status.lastStartReason, undefined);
  assert.equal(status.port, 4000);
  assert.deepEqual(status.children, []);
  assert.deepEqual(status.logs, []);
  assert.equal(proc.pid, undefined);
});

test(`counts automatic restarts, marks them as crash starts and reports startedAt and uptime while running`, async (t) => {
  const {proc, dir, logged} = createProcess(t, (cwd) => ({
    command: `test -f crashed || { touch crashed; exit 1; }; exec ${app(`--ready ${path.join(cwd, `ready`)}`)}`,
    restartDelayMs: 10,
  }), {shouldRestart: () => true});
  await proc.start(`deploy`);
  const firstPid = proc.pid;
  assert.equal(proc.status().lastStartReason, `deploy`);
  await waitFor(() => fs.existsSync(path.join(dir, `ready`)), {what: `the restarted app`});
  const status = proc.status();
  assert.equal(status.state, `running`);
  assert.equal(status.restarts, 1);
  assert.equal(status.lastStartReason, `crash`);
  assert.notEqual(status.pid, firstPid);
  assert.equal(status.exitCode, 1);
  assert.ok(status.startedAt !== undefined && !Number.isNaN(Date.parse(status.startedAt)));
  assert.ok(typeof status.uptimeMs === `number` && status.uptimeMs >= 0);
  assert.equal(logged(`process started`).length, 2);
  assert.deepEqual(logged(`process started`).map((record) => record.reason), [`deploy`, `crash`]);
  assert.ok(logged(`process started`).every((record) => !(`command` in record)));
  assert.equal(logged(`process exited`)[0]?.code, 1);
  await proc.stop();
  assert.equal(proc.status().uptimeMs, undefined);
});

test(`records the manual start reason`, async (t) => {
  const {proc, dir} = createProcess(t, (cwd) => ({command: `exec ${app(`--ready ${path.join(cwd, `ready`)}`)}`}));
  await proc.start(`manual`);
  assert.equal(proc.state, `running`);
  assert.equal(proc.status().lastStartReason, `manual`);
  assert.equal(proc.pgid, proc.pid);
  await waitFor(() => fs.existsSync(path.join(dir, `ready`)));
  await proc.stop();
  assert.equal(proc.state, `stopped`);
  assert.equal(proc.pid, undefined);
});

test(`rejects with ERR_PROCESS_SPAWN_FAILED and records no start reason when the cwd is missing`, async (t) => {
  const {proc, dir} = createProcess(t, (cwd) => ({cwd: path.join(cwd, `missing`)}));
  await assert.rejects(proc.start(`deploy`), (error: {code?: string; message?: string; fix?: string}) => {
    assert.equal(error.code, `ERR_PROCESS_SPAWN_FAILED`);
    assert.match(error.message ?? ``, /ENOENT/);
    assert.match(error.fix ?? ``, new RegExp(`${path.join(dir, `missing`)}`));
    return true;
  });
  assert.equal(proc.state, `failed`);
  assert.equal(proc.status().lastStartReason, undefined);
  assert.equal(proc.pid, undefined);
});

test(`a queued automatic restart does not keep the daemon's event loop alive`, (t) => {
  const dir = createTempDir(t, `rb-mp-`);
  const script = `
    import {ManagedProcess} from ${JSON.stringify(MANAGED_PROCESS_MODULE)};
    import {Logger} from ${JSON.stringify(LOGGER_MODULE)};
    const log = new Logger({sinks: [(record) => console.log(record.msg)]});
    const proc = new ManagedProcess(${JSON.stringify(buildSpec(dir, {command: `exit 1`, restartDelayMs: 600_000}))}, {log, shouldRestart: () => true});
    const exited = proc.waitForExit();
    await proc.start('deploy');
    await exited;
  `;
  const result = spawnSync(NODE, [`--input-type=module`, `-e`, script], {encoding: `utf8`, timeout: 30_000});
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /process restart scheduled/);
});

test(`runs the quiet and drain hooks before stopping`, async (t) => {
  const {proc, dir, logged} = createProcess(t, (cwd) => ({
    command: `exec ${app(`--ready ${path.join(cwd, `ready`)} --record ${path.join(cwd, `events`)}`)}`,
    lifecycle: {
      quietCommand: `echo "quiet $ROLLBRIDGE_PID" >> events`,
      drainCommand: `echo "drain $ROLLBRIDGE_PID" >> events`,
      stopCommand: undefined,
      drainTimeoutMs: 5_000,
    },
  }));
  await proc.start(`deploy`);
  const pgid = proc.pgid;
  await waitFor(() => fs.existsSync(path.join(dir, `ready`)));
  await proc.stop();
  assert.deepEqual(readLines(path.join(dir, `events`)), [`quiet ${pgid}`, `drain ${pgid}`, `SIGTERM`]);
  assert.equal(proc.state, `stopped`);
  assert.equal(logged(`process exited`)[0]?.level, `info`);
});

test(`uses the stopCommand instead of the stop signal`, async (t) => {
  const {proc, dir} = createProcess(t, (cwd) => ({
    command: `exec ${app(`--ready ${path.join(cwd, `ready`)} --record ${path.join(cwd, `events`)}`)}`,
    lifecycle: {quietCommand: undefined, drainCommand: undefined, stopCommand: `echo stop >> events; kill -s USR2 -- -$ROLLBRIDGE_PID`, drainTimeoutMs: 0},
  }));
  await proc.start(`deploy`);
  await waitFor(() => fs.existsSync(path.join(dir, `ready`)));
  await proc.stop();
  assert.deepEqual(readLines(path.join(dir, `events`)), [`stop`, `SIGUSR2`]);
  assert.equal(proc.state, `stopped`);
});

test(`gives the stopCommand the retained process group id after the shell has exited`, async (t) => {
  const {proc, dir} = createProcess(t, (cwd) => ({
    // The shell stays in front of the app; the quiet command kills only the shell, so the app outlives it.
    command: `${app(`--ready ${path.join(cwd, `ready`)} --record ${path.join(cwd, `events`)}`)} & wait`,
    lifecycle: {
      quietCommand: `kill $ROLLBRIDGE_PID`,
      drainCommand: undefined,
      stopCommand: `echo "stop $ROLLBRIDGE_PID" >> events; kill -s USR2 -- -$ROLLBRIDGE_PID`,
      drainTimeoutMs: 5_000,
    },
  }));
  await proc.start(`deploy`);
  const pgid = proc.pgid;
  const appPid = Number(await waitFor(() => fs.existsSync(path.join(dir, `ready`)) && fs.readFileSync(path.join(dir, `ready`), `utf8`)));
  const exited = proc.waitForExit();
  await proc.stop();
  assert.equal((await exited).signal, `SIGTERM`);
  assert.deepEqual(readLines(path.join(dir, `events`)), [`stop ${pgid}`, `SIGUSR2`]);
  assert.equal(isPidAlive(appPid), false);
});

test(`logs a failing lifecycle hook and still completes the stop`, async (t) => {
  const {proc, dir, logged} = createProcess(t, (cwd) => ({
    command: `exec ${app(`--ready ${path.join(cwd, `ready`)}`)}`,
    lifecycle: {quietCommand: `exit 7`, drainCommand: `kill -9 $$`, stopCommand: undefined, drainTimeoutMs: 5_000},
  }));
  await proc.start(`deploy`);
  await waitFor(() => fs.existsSync(path.join(dir, `ready`)));
  await proc.stop();
  assert.equal(proc.state, `stopped`);
  assert.deepEqual(logged(`quiet command exited non-zero`).map((record) => [record.id, record.code]), [[`web`, 7]]);
  assert.deepEqual(logged(`drain command exited on signal`).map((record) => record.signal), [`SIGKILL`]);
});

test(`bounds a hanging lifecycle hook so the stop still completes`, async (t) => {
  const {proc, dir, logged} = createProcess(t, (cwd) => ({
    command: `exec ${app(`--ready ${path.join(cwd, `ready`)}`)}`,
    gracefulStopMs: 100,
    lifecycle: {quietCommand: `echo $$ > hook.pid; exec sleep 30`, drainCommand: undefined, stopCommand: undefined, drainTimeoutMs: 0},
  }));
  await proc.start(`deploy`);
  await waitFor(() => fs.existsSync(path.join(dir, `ready`)));
  await proc.stop();
  assert.equal(proc.state, `stopped`);
  assert.deepEqual(logged(`quiet command timed out`).map((record) => record.timeoutMs), [100]);
  const hookPid = Number(fs.readFileSync(path.join(dir, `hook.pid`), `utf8`));
  await waitFor(() => !isPidAlive(hookPid), {what: `the timed-out hook to be killed`});
});

test(`sends the configured stopSignal as the graceful stop signal`, async (t) => {
  const {proc, dir} = createProcess(t, (cwd) => ({
    command: `exec ${app(`--ready ${path.join(cwd, `ready`)} --record ${path.join(cwd, `events`)}`)}`,
    stopSignal: `SIGUSR2`,
  }));
  await proc.start(`deploy`);
  await waitFor(() => fs.existsSync(path.join(dir, `ready`)));
  const exited = proc.waitForExit();
  await proc.stop();
  assert.deepEqual(await exited, {code: 0, signal: null, intentional: true});
  assert.deepEqual(readLines(path.join(dir, `events`)), [`SIGUSR2`]);
});

test(`waits for the process without SIGKILL when gracefulStopMs is indefinite`, async (t) => {
  const {proc, dir, logged} = createProcess(t, (cwd) => ({
    command: `exec ${app(`--ready ${path.join(cwd, `ready`)} --record ${path.join(cwd, `events`)} --on-term ignore`)}`,
    gracefulStopMs: `indefinite`,
  }));
  await proc.start(`deploy`);
  const pid = proc.pid as number;
  await waitFor(() => fs.existsSync(path.join(dir, `ready`)));
  let stopped = false;
  const stopping = proc.stop().then(() => {
    stopped = true;
  });
  await waitFor(() => readLines(path.join(dir, `events`)).includes(`SIGTERM`), {what: `the app to receive SIGTERM`});
  assert.equal(stopped, false);
  assert.equal(proc.state, `stopping`);
  assert.equal(proc.stop() === proc.stop(), true);
  process.kill(pid, `SIGUSR2`);
  await stopping;
  assert.equal(proc.state, `stopped`);
  assert.deepEqual(readLines(path.join(dir, `events`)), [`SIGTERM`, `SIGUSR2`]);
  assert.equal(logged(`process stop timed out; sending SIGKILL`).length, 0);
});

test(`waits for process group descendants after the detached shell exits`, async (t) => {
  const {proc, dir} = createProcess(t, (cwd) => ({
    command: `${app(`--ready ${path.join(cwd, `ready`)} --record ${path.join(cwd, `events`)} --term-exit-delay-ms 300`)} & wait`,
  }));
  await proc.start(`deploy`);
  const appPid = Number(await waitFor(() => fs.existsSync(path.join(dir, `ready`)) && fs.readFileSync(path.join(dir, `ready`), `utf8`)));
  const exited = proc.waitForExit();
  await proc.stop();
  assert.equal((await exited).signal, `SIGTERM`);
  assert.equal(isPidAlive(appPid), false);
  assert.deepEqual(readLines(path.join(dir, `events`)), [`SIGTERM`]);
});

test(`escalates to SIGKILL when the process ignores the stop signal`, async (t) => {
  const {proc, dir, logged} = createProcess(t, (cwd) => ({
    command: `exec ${app(`--ready ${path.join(cwd, `ready`)} --on-term ignore`)}`,
    gracefulStopMs: 100,
  }));
  await proc.start(`deploy`);
  const pid = proc.pid;
  await waitFor(() => fs.existsSync(path.join(dir, `ready`)));
  const exited = proc.waitForExit();
  await proc.stop();
  assert.deepEqual(await exited, {code: null, signal: `SIGKILL`, intentional: true});
  assert.deepEqual(logged(`process stop timed out; sending SIGKILL`).map((record) => [record.id, record.pid]), [[`web`, pid]]);
  assert.equal(proc.status().exitSignal, `SIGKILL`);
});

test(`does not restart automatically when maxRestarts is 0`, async (t) => {
  const {proc, logged} = createProcess(t, {
    command: `exit 1`,
    restartDelayMs: 0,
    restart: {maxRestarts: 0, windowMs: 0, backoffFactor: 1, maxDelayMs: 0},
  }, {shouldRestart: () => true});
  const exited = proc.waitForExit();
  await proc.start(`deploy`);
  await exited;
  assert.equal(proc.state, `failed`);
  assert.equal(proc.status().restarts, 0);
  assert.deepEqual(logged(`restart limit reached`).map((record) => [record.id, record.maxRestarts, record.windowMs]), [[`web`, 0, 0]]);
  assert.equal(logged(`process restart scheduled`).length, 0);
});

test(`does not restart when the owner no longer wants the process`, async (t) => {
  const {proc, logged} = createProcess(t, {command: `exit 1`, restartDelayMs: 0}, {shouldRestart: () => false});
  const exited = proc.waitForExit();
  await proc.start(`deploy`);
  await exited;
  assert.equal(proc.state, `failed`);
  assert.equal(logged(`process restart scheduled`).length, 0);
});

test(`stops restarting once maxRestarts within the window is reached, and a manual start grants a fresh budget`, async (t) => {
  const {proc, logged} = createProcess(t, {
    command: `exit 1`,
    restartDelayMs: 5,
    restart: {maxRestarts: 2, windowMs: 60_000, backoffFactor: 1, maxDelayMs: 0},
  }, {shouldRestart: () => true});
  await proc.start(`deploy`);
  await waitFor(() => logged(`restart limit reached`).length === 1, {what: `the restart limit`});
  assert.equal(proc.status().restarts, 2);
  assert.equal(proc.state, `failed`);
  assert.equal(logged(`process exited`).length, 3);

  await proc.start(`manual`);
  await waitFor(() => logged(`restart limit reached`).length === 2, {what: `the second restart limit`});
  assert.equal(proc.status().restarts, 4);
  assert.deepEqual(logged(`process started`).map((record) => record.reason), [`deploy`, `crash`, `crash`, `manual`, `crash`, `crash`]);
});

test(`keeps retrying with the backoff when a restart cannot be spawned`, async (t) => {
  const {proc, dir, logged} = createProcess(t, (cwd) => ({
    command: `test -f ok || exit 1; exec ${app(`--ready ${path.join(cwd, `ready`)}`)}`,
    restartDelayMs: 10,
  }), {shouldRestart: () => true});
  const missing = path.join(dir, `later`);
  // Exit listeners run before the restart is scheduled: the restart then meets a missing cwd.
  const unsubscribe = proc.onExit(() => proc.updateSpec({...proc.spec, cwd: missing}));
  await proc.start(`deploy`);
  await waitFor(() => logged(`process restart failed`).length >= 2, {what: `two failed restarts`});
  assert.equal(proc.state, `failed`);
  assert.equal(logged(`process restart failed`)[0]?.err && (logged(`process restart failed`)[0]?.err as {code: string}).code, `ERR_PROCESS_SPAWN_FAILED`);
  unsubscribe();
  fs.mkdirSync(missing);
  fs.writeFileSync(path.join(missing, `ok`), ``);
  await waitFor(() => fs.existsSync(path.join(dir, `ready`)), {what: `the restart to succeed`});
  assert.equal(proc.state, `running`);
  assert.equal(proc.status().lastStartReason, `crash`);
});

test(`stopping a process that is not running marks it stopped and cancels a pending restart`, async (t) => {
  const {proc, logged} = createProcess(t, {command: `exit 1`, restartDelayMs: 60_000}, {shouldRestart: () => true});
  const exited = proc.waitForExit();
  await proc.start(`deploy`);
  await exited;
  assert.equal(logged(`process restart scheduled`).length, 1);
  await proc.stop();
  assert.equal(proc.state, `stopped`);
  await proc.stop();
  assert.equal(proc.state, `stopped`);
});

test(`still restarts the process when an exit listener throws`, async (t) => {
  const {proc, dir, logged} = createProcess(t, (cwd) => ({
    command: `test -f crashed || { touch crashed; exit 1; }; exec ${app(`--ready ${path.join(cwd, `ready`)}`)}`,
    restartDelayMs: 0,
  }), {shouldRestart: () => true});
  proc.onExit(() => {
    throw new Error(`listener bug`);
  });
  await proc.start(`deploy`);
  await waitFor(() => fs.existsSync(path.join(dir, `ready`)), {what: `the restarted app`});
  assert.equal(proc.status().restarts, 1);
  assert.equal(logged(`process exit listener failed`).length, 1);
});

const LOGS_APP = fileURLToPath(new URL(`../fixtures/apps/logs-app.cjs`, import.meta.url));

test(`writes its output to its log files, reports them in status and keeps the lines of every run`, async (t) => {
  const {proc, dir} = createProcess(t, {command: `echo "run $$"; echo "oops" >&2`});
  for (let run = 0; run < 2; run++) {
    const exited = proc.waitForExit();
    await proc.start(`manual`);
    await exited;
  }
  const {logPaths} = proc.status();
  assert.deepEqual(logPaths, {stdout: path.join(dir, `logs`, `web.stdout.log`), stderr: path.join(dir, `logs`, `web.stderr.log`)});
  assert.equal(readLines(logPaths.stdout).length, 2);
  assert.deepEqual(readLines(logPaths.stderr), [`oops`, `oops`]);
  assert.deepEqual(proc.recentOutput().filter((entry) => entry.stream === `stdout`).map((entry) => entry.line), readLines(logPaths.stdout));
});

test(`rejects with ERR_PROCESS_LOG_UNWRITABLE and stays failed when its log file cannot be opened`, async (t) => {
  const {proc, dir} = createProcess(t, (cwd) => {
    fs.writeFileSync(path.join(cwd, `blocker`), ``);
    return {logPaths: {stdout: path.join(cwd, `blocker`, `r1`, `web.stdout.log`), stderr: path.join(cwd, `blocker`, `r1`, `web.stderr.log`)}};
  });
  await assert.rejects(proc.start(`deploy`), {code: `ERR_PROCESS_LOG_UNWRITABLE`});
  assert.equal(proc.state, `failed`);
  assert.equal(proc.pid, undefined);
  assert.ok(fs.existsSync(path.join(dir, `blocker`)));
});

test(`output survives the death of the reader: the process outlives a SIGKILLed daemon and its log file keeps growing`, async (t) => {
  const dir = createTempDir(t, `rb-mp-`);
  const ready = path.join(dir, `ready`);
  const spec = buildSpec(dir, {command: `exec "${NODE}" "${LOGS_APP}" --ready "${ready}" --tick-ms 5`});
  const script = `
    import {ManagedProcess} from ${JSON.stringify(MANAGED_PROCESS_MODULE)};
    import {Logger} from ${JSON.stringify(LOGGER_MODULE)};
    const proc = new ManagedProcess(${JSON.stringify(spec)}, {log: new Logger(), shouldRestart: () => false});
    await proc.start('deploy');
    setInterval(() => {}, 1_000_000);
  `;
  const daemon = spawn(NODE, [`--input-type=module`, `-e`, script], {stdio: `ignore`});
  t.after(() => killQuietly(daemon.pid as number));
  const appPid = Number(await waitFor(() => fs.existsSync(ready) && fs.readFileSync(ready, `utf8`), {what: `the app to start`}));
  t.after(() => killQuietly(appPid));
  await waitFor(() => readLines(spec.logPaths?.stdout ?? ``).includes(`tick 1`), {what: `the first tick in the log file`});
  const exited = once(daemon, `exit`);
  daemon.kill(`SIGKILL`);
  await exited;
  const size = fs.statSync(spec.logPaths?.stdout ?? ``).size;
  await waitFor(() => fs.statSync(spec.logPaths?.stdout ?? ``).size > size + 100, {what: `the log file to grow after the daemon died`});
  assert.equal(isPidAlive(appPid), true);
});

test(`an adopted process shows the tail of its log files, then the lines it writes afterwards`, async (t) => {
  const {proc, dir} = createProcess(t, {outputLines: 3});
  const logPaths = proc.status().logPaths;
  assert.ok(logPaths);
  fs.mkdirSync(path.dirname(logPaths.stdout), {recursive: true});
  fs.writeFileSync(logPaths.stdout, `old 1\nold 2\nold 3\nold 4\n`);
  // Started by "a previous daemon": the test, writing into the same files.
  const [stdoutFd, stderrFd] = [fs.openSync(logPaths.stdout, `a`), fs.openSync(logPaths.stderr, `a`)];
  const ready = path.join(dir, `ready`);
  const child = spawn(NODE, [LOGS_APP, `--ready`, ready], {detached: true, stdio: [`ignore`, stdoutFd, stderrFd]});
  await once(child, `spawn`);
  fs.closeSync(stdoutFd);
  fs.closeSync(stderrFd);
  const pid = child.pid as number;
  t.after(() => killQuietly(pid));
  await waitFor(() => fs.existsSync(ready) && readLines(logPaths.stderr).length === 1, {what: `the app to start`});
  const startTime = readProcStat(pid)?.startTime;
  assert.ok(startTime !== undefined);
  proc.adopt({pid, pgid: pid, startTime, startedAt: new Date().toISOString(), restarts: 0});
  assert.deepEqual(proc.recentOutput().map((entry) => entry.line).sort(), [`old 4`, `started`, `warming up`]);
  process.kill(pid, `SIGUSR2`);
  await waitFor(() => proc.recentOutput().some((entry) => entry.line === `poked 1 on stderr`) && proc.recentOutput().some((entry) => entry.line === `poked 1`), {what: `the lines written after the adoption`});
  assert.equal(proc.recentOutput().length, 3);
});
