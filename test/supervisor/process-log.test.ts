import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {once} from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {fileURLToPath} from 'node:url';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {Logger} from '../../src/log/logger.ts';
import type {LogRecord} from '../../src/log/logger.ts';
import {LogFileReader, ProcessLog, closeLogFds, getProcessLogPaths, readTailLines, removeReleaseLogs} from '../../src/supervisor/process-log.ts';
import type {ProcessLogOptions} from '../../src/supervisor/process-log.ts';
import {isPidAlive, killQuietly} from '../helpers/processes.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';

const APP = fileURLToPath(new URL(`../fixtures/apps/logs-app.cjs`, import.meta.url));

type Harness = {processLog: ProcessLog; dir: string; stdoutPath: string; stderrPath: string; records: LogRecord[]};

function createLog(t: TestContext, overrides: Partial<ProcessLogOptions> = {}): Harness {
  const dir = createTempDir(t, `rb-pl-`);
  const paths = getProcessLogPaths(path.join(dir, `logs`), `r1`, `web`);
  const records: LogRecord[] = [];
  const processLog = new ProcessLog({
    stdoutPath: paths.stdout,
    stderrPath: paths.stderr,
    maxBytes: 1024 * 1024,
    files: 3,
    lines: 50,
    log: new Logger({level: `debug`, sinks: [(record) => records.push(record)]}),
    ...overrides,
  });
  t.after(() => processLog.unfollow());
  return {processLog, dir, stdoutPath: paths.stdout, stderrPath: paths.stderr, records};
}

function lines(processLog: ProcessLog): string[] {
  return processLog.recentOutput().map((entry) => entry.line);
}

/** `count` lines of `width` bytes each (newline included), numbered from `from`. */
function batch(from: number, count: number, width = 100): string {
  let text = ``;
  for (let index = from; index < from + count; index++) text += `${`line ${index} `.padEnd(width - 1, `.`)}\n`;
  return text;
}

test(`lines a child writes to the log descriptors reach the ring tagged with their stream`, async (t) => {
  const {processLog, dir, stdoutPath, stderrPath} = createLog(t);
  const fds = processLog.open();
  const ready = path.join(dir, `ready`);
  const child = spawn(process.execPath, [APP, `--ready`, ready], {detached: true, stdio: [`ignore`, fds.stdout, fds.stderr]});
  await once(child, `spawn`);
  closeLogFds(fds);
  t.after(() => killQuietly(child.pid as number));
  processLog.follow();
  const pid = Number(await waitFor(() => fs.existsSync(ready) && fs.readFileSync(ready, `utf8`)));
  await waitFor(() => lines(processLog).length === 2, {what: `the start-up lines in the ring`});
  process.kill(pid, `SIGUSR2`);
  await waitFor(() => lines(processLog).length === 4, {what: `the poke lines in the ring`});
  const output = processLog.recentOutput();
  assert.deepEqual(output.filter((entry) => entry.stream === `stdout`).map((entry) => entry.line), [`started`, `poked 1`]);
  assert.deepEqual(output.filter((entry) => entry.stream === `stderr`).map((entry) => entry.line), [`warming up`, `poked 1 on stderr`]);
  for (const entry of output) assert.ok(!Number.isNaN(Date.parse(entry.at)));
  assert.equal(fs.readFileSync(stdoutPath, `utf8`), `started\npoked 1\n`);
  assert.equal(fs.readFileSync(stderrPath, `utf8`), `warming up\npoked 1 on stderr\n`);
  assert.equal(fs.statSync(stdoutPath).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.dirname(stdoutPath)).mode & 0o777, 0o700);
});

test(`output already in the files when they are opened is not taken into the ring, and flush completes the last line`, async (t) => {
  const {processLog, stdoutPath} = createLog(t);
  fs.mkdirSync(path.dirname(stdoutPath), {recursive: true});
  fs.writeFileSync(stdoutPath, `from an earlier run\n`);
  const fds = processLog.open();
  const child = spawn(process.execPath, [`-e`, `process.stdout.write('done\\nno newline')`], {stdio: [`ignore`, fds.stdout, fds.stderr]});
  closeLogFds(fds);
  await once(child, `exit`);
  processLog.flush();
  assert.deepEqual(lines(processLog), [`done`, `no newline`]);
});

test(`rotation keeps the configured number of copies and bounds the file size`, async (t) => {
  const {processLog, stdoutPath} = createLog(t, {maxBytes: 1_000, files: 2, lines: 100});
  closeLogFds(processLog.open());
  processLog.follow();
  for (let round = 0; round < 3; round++) {
    fs.appendFileSync(stdoutPath, batch(round * 15, 15));
    await waitFor(() => fs.statSync(stdoutPath).size === 0 && fs.existsSync(`${stdoutPath}.1`) && fs.readFileSync(`${stdoutPath}.1`, `utf8`) === batch(round * 15, 15), {what: `rotation ${round + 1}`});
  }
  assert.equal(fs.readFileSync(`${stdoutPath}.2`, `utf8`), batch(15, 15));
  assert.equal(fs.existsSync(`${stdoutPath}.3`), false);
  fs.appendFileSync(stdoutPath, batch(45, 2));
  await waitFor(() => lines(processLog).length === 47, {what: `every line in the ring`});
  assert.deepEqual(lines(processLog), batch(0, 47).trimEnd().split(`\n`));
});

test(`with files: 0 an oversized file is truncated without a copy`, async (t) => {
  const {processLog, stdoutPath} = createLog(t, {maxBytes: 500, files: 0});
  closeLogFds(processLog.open());
  processLog.follow();
  fs.appendFileSync(stdoutPath, batch(0, 10));
  await waitFor(() => fs.statSync(stdoutPath).size === 0, {what: `the truncation`});
  assert.equal(fs.existsSync(`${stdoutPath}.1`), false);
  assert.equal(lines(processLog).length, 10);
});

test(`a file truncated by someone else is followed again from its start`, async (t) => {
  const {processLog, stdoutPath} = createLog(t);
  closeLogFds(processLog.open());
  processLog.follow();
  fs.appendFileSync(stdoutPath, `first line\n`);
  await waitFor(() => lines(processLog).includes(`first line`));
  fs.truncateSync(stdoutPath, 0);
  fs.appendFileSync(stdoutPath, `next\n`);
  await waitFor(() => lines(processLog).includes(`next`), {what: `the line written after the truncation`});
  assert.deepEqual(lines(processLog), [`first line`, `next`]);
});

test(`primeFromFile loads the tail of existing files stamped with their mtime, then follows from the end`, async (t) => {
  const {processLog, stdoutPath, stderrPath} = createLog(t, {lines: 4});
  fs.mkdirSync(path.dirname(stdoutPath), {recursive: true});
  fs.writeFileSync(stdoutPath, `out 1\nout 2\nout 3\nout 4\nout 5\n`);
  fs.writeFileSync(stderrPath, `err 1\n`);
  const mtime = new Date(`2026-01-02T03:04:05.000Z`);
  fs.utimesSync(stdoutPath, mtime, mtime);
  fs.utimesSync(stderrPath, new Date(mtime.getTime() - 1_000), new Date(mtime.getTime() - 1_000));
  processLog.primeFromFile();
  assert.equal(processLog.isFollowing, true);
  assert.deepEqual(processLog.recentOutput(), [
    {at: `2026-01-02T03:04:05.000Z`, stream: `stdout`, line: `out 2`},
    {at: `2026-01-02T03:04:05.000Z`, stream: `stdout`, line: `out 3`},
    {at: `2026-01-02T03:04:05.000Z`, stream: `stdout`, line: `out 4`},
    {at: `2026-01-02T03:04:05.000Z`, stream: `stdout`, line: `out 5`},
  ]);
  fs.appendFileSync(stdoutPath, `out 6\n`);
  await waitFor(() => lines(processLog).includes(`out 6`), {what: `the new line`});
  assert.deepEqual(lines(processLog), [`out 3`, `out 4`, `out 5`, `out 6`]);
});

test(`readTailLines reads the last lines of a file bigger than its read window, and none of a missing file`, (t) => {
  const dir = createTempDir(t, `rb-pl-`);
  const file = path.join(dir, `big.log`);
  // 40 000 lines of 100 bytes: 4 MB, far more than the widest window (1 MiB).
  fs.writeFileSync(file, batch(0, 40_000));
  assert.deepEqual(readTailLines(file, 3), batch(39_997, 3).trimEnd().split(`\n`));
  const many = readTailLines(file, 1_000_000);
  assert.ok(many.length > 600 && many.length < 40_000, `read ${many.length} lines`);
  assert.equal(many.at(-1), batch(39_999, 1).trimEnd());
  assert.match(many[0] ?? ``, /^line \d+ \.+$/);
  fs.writeFileSync(file, `a\r\n\nb`);
  assert.deepEqual(readTailLines(file, 10), [`a`, `b`]);
  assert.deepEqual(readTailLines(path.join(dir, `missing.log`), 10), []);
});

test(`LogFileReader decodes a multi-byte character split across two reads`, (t) => {
  const dir = createTempDir(t, `rb-pl-`);
  const file = path.join(dir, `utf8.log`);
  const bytes = Buffer.from(`é\n`);
  fs.writeFileSync(file, bytes.subarray(0, 1));
  const reader = new LogFileReader(file);
  assert.equal(reader.readNew(), ``);
  fs.appendFileSync(file, bytes.subarray(1));
  assert.equal(reader.readNew(), `é\n`);
  assert.equal(reader.offset, bytes.length);
});

test(`open fails with ERR_PROCESS_LOG_UNWRITABLE naming the file when its directory cannot be created`, (t) => {
  const dir = createTempDir(t, `rb-pl-`);
  const blocker = path.join(dir, `not-a-dir`);
  fs.writeFileSync(blocker, ``);
  const processLog = new ProcessLog({stdoutPath: path.join(blocker, `r1`, `web.stdout.log`), stderrPath: path.join(blocker, `r1`, `web.stderr.log`), maxBytes: 1_000, files: 1, lines: 10, log: new Logger()});
  assert.throws(() => processLog.open(), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_PROCESS_LOG_UNWRITABLE`);
    assert.match(error.message, /not-a-dir\/r1\/web\.stdout\.log: ENOTDIR/);
    assert.match(error.fix ?? ``, /logs\.dir/);
    return true;
  });
});

test(`log paths keep instance ids as file names, make other names safe, and removeReleaseLogs deletes one release's files`, (t) => {
  const dir = createTempDir(t, `rb-pl-`);
  assert.deepEqual(getProcessLogPaths(dir, `r1`, `worker#0`), {stdout: path.join(dir, `r1`, `worker#0.stdout.log`), stderr: path.join(dir, `r1`, `worker#0.stderr.log`)});
  assert.equal(getProcessLogPaths(dir, `..`, `a/../b`).stdout, path.join(dir, `_`, `a_.._b.stdout.log`));
  for (const releaseId of [`r1`, `r2`]) {
    const {stdout} = getProcessLogPaths(dir, releaseId, `web`);
    fs.mkdirSync(path.dirname(stdout), {recursive: true});
    fs.writeFileSync(stdout, `x\n`);
  }
  removeReleaseLogs(dir, `r1`);
  removeReleaseLogs(dir, `never-existed`);
  assert.deepEqual(fs.readdirSync(dir), [`r2`]);
});

test(`a child keeps running and writing after the reader stops following`, async (t) => {
  const {processLog, dir, stdoutPath} = createLog(t);
  const fds = processLog.open();
  const ready = path.join(dir, `ready`);
  const child = spawn(process.execPath, [APP, `--ready`, ready, `--tick-ms`, `5`], {detached: true, stdio: [`ignore`, fds.stdout, fds.stderr]});
  await once(child, `spawn`);
  closeLogFds(fds);
  t.after(() => killQuietly(child.pid as number));
  processLog.follow();
  await waitFor(() => lines(processLog).includes(`tick 1`));
  processLog.unfollow();
  const size = fs.statSync(stdoutPath).size;
  await waitFor(() => fs.statSync(stdoutPath).size > size + 100, {what: `the file to grow`});
  assert.equal(isPidAlive(child.pid as number), true);
});
