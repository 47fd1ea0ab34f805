import fs from 'node:fs';
import type {FSWatcher} from 'node:fs';
import path from 'node:path';
import {StringDecoder} from 'node:string_decoder';
import type {LogsConfig, ProcessConfig} from '../config/types.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {shiftRotatedFiles} from '../log/log-rotation.ts';
import type {Logger} from '../log/logger.ts';
import {APPEND_FLAGS, UnsafePathError, openPrivateFile} from '../util/private-file.ts';
import {OutputBuffer} from './output-buffer.ts';
import type {OutputLine, OutputStream} from './output-buffer.ts';
import {isoTime} from '../util/iso-time.ts';

export type ProcessLogPaths = {stdout: string; stderr: string};
export type ProcessLogFds = {stdout: number; stderr: number};

export type ProcessLogOptions = {
  stdoutPath: string;
  stderrPath: string;
  /** A file larger than this is rotated at the next poll. */
  maxBytes: number;
  /** Rotated copies kept (`<file>.1` … `<file>.<files>`); 0 only truncates. */
  files: number;
  /** Size of the recent-output ring. */
  lines: number;
  log: Logger;
};

/** Backstop for fs.watch, which misses events on some filesystems (NFS, overlay). */
const POLL_INTERVAL_MS = 250;
const READ_CHUNK_BYTES = 64 * 1024;
/** A follower further behind than this skips to the last part: the ring keeps only the last lines anyway. */
const MAX_CATCH_UP_BYTES = 1024 * 1024;
const TAIL_WINDOW_BYTES = 64 * 1024;
/** readTailLines widens its window up to TAIL_WINDOW_BYTES × this factor, never more. */
const TAIL_WINDOW_FACTOR = 16;
const STREAMS: readonly OutputStream[] = [`stdout`, `stderr`];

/**
 * The output of one managed process, written by the child straight into two files (no pipes, so the
 * child outlives a daemon crash without SIGPIPE) and followed by the daemon into a recent-output ring.
 *
 * Rotation is copytruncate, because the child keeps its O_APPEND descriptor: a file above `maxBytes`
 * is copied to `<file>.1` (older copies shift up, at most `files` are kept) and then truncated to 0.
 * Lines the child writes between the copy and the truncation (microseconds) are lost.
 */
export class ProcessLog {
  readonly paths: ProcessLogPaths;
  readonly #log: Logger;
  readonly #output: OutputBuffer;
  readonly #readers: Record<OutputStream, LogFileReader>;
  #maxBytes: number;
  #files: number;
  #primed: OutputLine[] = [];
  #timer: NodeJS.Timeout | undefined;
  #watchers: FSWatcher[] = [];
  #readScheduled = false;
  #rotationFailed = false;

  constructor(options: ProcessLogOptions) {
    this.paths = {stdout: options.stdoutPath, stderr: options.stderrPath};
    this.#maxBytes = options.maxBytes;
    this.#files = options.files;
    this.#log = options.log;
    this.#output = new OutputBuffer(options.lines);
    this.#readers = {stdout: new LogFileReader(options.stdoutPath), stderr: new LogFileReader(options.stderrPath)};
  }

  get isFollowing(): boolean {
    return this.#timer !== undefined;
  }

  /** Live config reload: new limits apply at the next poll. */
  updateLimits(limits: {maxBytes: number; files: number; lines: number}): void {
    this.#maxBytes = limits.maxBytes;
    this.#files = limits.files;
    this.#output.capacity = limits.lines;
  }

  /**
   * Creates the directory (0700) and opens both files for appending (0600); returns the descriptors
   * to pass as the child's stdio (`['ignore', fds.stdout, fds.stderr]`). Output already in the files
   * belongs to earlier runs and is not followed. The caller closes the descriptors with `closeLogFds`
   * once the child has spawned (or failed to). Throws ERR_PROCESS_LOG_UNWRITABLE.
   */
  open(): ProcessLogFds {
    const opened: number[] = [];
    let current = this.paths.stdout;
    try {
      for (const file of [this.paths.stdout, this.paths.stderr]) {
        current = file;
        fs.mkdirSync(path.dirname(file), {recursive: true, mode: 0o700});
        opened.push(openPrivateFile(file, APPEND_FLAGS, path.dirname(file)));
      }
    } catch (error) {
      closeLogFds(opened);
      if (error instanceof UnsafePathError) {
        throw new RollbridgeError(ErrorCode.FILE_UNSAFE, `Refusing the process log ${current}: ${error.reason}`, {
          fix: `Set logs.dir to a directory only the daemon's user can write, or remove what is at ${current}`,
          details: {key: `logs.dir`, path: current},
        });
      }
      const code = (error as NodeJS.ErrnoException).code;
      throw new RollbridgeError(ErrorCode.PROCESS_LOG_UNWRITABLE, `Cannot open the process log ${current}: ${code ?? String(error)}`, {
        fix: `Make ${path.dirname(current)} writable by the daemon's user, or set logs.dir in the config to a writable directory`,
        details: {path: current, code},
        cause: error,
      });
    }
    for (const stream of STREAMS) this.#readers[stream].seekToEnd();
    return {stdout: opened[0] as number, stderr: opened[1] as number};
  }

  /**
   * Appends whole lines written on the process's behalf (a lifecycle hook's output, each line prefixed
   * with the hook's name by the caller) to its log file; the follower takes them into the ring. One
   * O_APPEND write, so they never split a line of the process's own. Failures are logged, not thrown.
   */
  appendLines(stream: OutputStream, lines: readonly string[]): void {
    if (lines.length === 0) return;
    const file = this.paths[stream];
    let fd: number | undefined;
    try {
      fd = openPrivateFile(file, APPEND_FLAGS, path.dirname(file));
      fs.writeSync(fd, `${lines.join(`\n`)}\n`);
    } catch (error) {
      this.#log.warn(`process log append failed`, {path: file, err: error});
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
    if (this.#timer !== undefined) this.#scheduleRead();
  }

  /** Starts reading what the process writes into the ring (fs.watch, plus a poll as a backstop). */
  follow(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#poll(), POLL_INTERVAL_MS);
    this.#timer.unref();
    for (const file of [this.paths.stdout, this.paths.stderr]) {
      try {
        const watcher = fs.watch(file, {persistent: false}, () => this.#scheduleRead());
        // A watcher that fails (file removed with its release) leaves the poll in charge.
        watcher.on(`error`, () => watcher.close());
        this.#watchers.push(watcher);
      } catch {
        // No fs.watch here (missing file, exhausted inotify watches): polling alone.
      }
    }
  }

  unfollow(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers = [];
  }

  /** Reads what is left in the files and completes the unterminated last lines (at process exit). */
  flush(): void {
    for (const stream of STREAMS) this.#read(stream);
    this.#output.flush();
  }

  /**
   * For a process adopted after a daemon restart: loads the last lines of its files into the ring
   * (stamped with the file's mtime), then follows from the end.
   */
  primeFromFile(): void {
    this.#primed = readBackLines(this.paths, this.#output.capacity);
    for (const stream of STREAMS) this.#readers[stream].seekToEnd();
    this.follow();
  }

  recentOutput(): OutputLine[] {
    const live = this.#output.lines();
    const room = this.#output.capacity - live.length;
    return room > 0 ? [...this.#primed.slice(-room).map((line) => ({...line})), ...live] : live;
  }

  #scheduleRead(): void {
    if (this.#readScheduled) return;
    this.#readScheduled = true;
    setImmediate(() => {
      this.#readScheduled = false;
      if (this.#timer !== undefined) for (const stream of STREAMS) this.#read(stream);
    });
  }

  #poll(): void {
    for (const stream of STREAMS) {
      this.#read(stream);
      this.#rotateIfNeeded(stream);
    }
  }

  #read(stream: OutputStream): void {
    const text = this.#readers[stream].readNew();
    if (text !== ``) this.#output.write(stream, text);
  }

  #rotateIfNeeded(stream: OutputStream): void {
    const file = this.paths[stream];
    const reader = this.#readers[stream];
    try {
      if (fs.statSync(file).size <= this.#maxBytes) return;
      if (this.#files > 0) {
        shiftRotatedFiles(file, this.#files);
        fs.copyFileSync(file, `${file}.1`);
        // The copy holds what was written since the last read: take it into the ring before truncating.
        const rest = reader.readNew(`${file}.1`);
        if (rest !== ``) this.#output.write(stream, rest);
      }
      fs.truncateSync(file, 0);
      reader.reset(0);
      this.#rotationFailed = false;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === `ENOENT`) return;
      // Logged once per failure streak; the poll keeps retrying.
      if (!this.#rotationFailed) this.#log.warn(`process log rotation failed`, {path: file, err: error});
      this.#rotationFailed = true;
    }
  }
}

/**
 * Reads the text appended to a log file since the last call, decoding UTF-8 across reads. A file
 * that shrank (rotated or truncated) is read again from its start; a missing file reads as empty.
 */
export class LogFileReader {
  readonly path: string;
  #offset = 0;
  #decoder = new StringDecoder(`utf8`);

  constructor(file: string) {
    this.path = file;
  }

  get offset(): number {
    return this.#offset;
  }

  /** Skips everything written so far. */
  seekToEnd(): void {
    let size = 0;
    try {
      size = fs.statSync(this.path).size;
    } catch {
      // Missing: it starts empty.
    }
    this.reset(size);
  }

  reset(offset: number): void {
    this.#offset = offset;
    this.#decoder = new StringDecoder(`utf8`);
  }

  /** The new text (`source` defaults to the followed file; the rotation reads its fresh copy through it). */
  readNew(source = this.path): string {
    let fd: number;
    try {
      fd = fs.openSync(source, `r`);
    } catch {
      return ``;
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < this.#offset) this.reset(0);
      let skipPartialLine = false;
      if (size - this.#offset > MAX_CATCH_UP_BYTES) {
        this.reset(size - MAX_CATCH_UP_BYTES);
        skipPartialLine = true;
      }
      let text = ``;
      const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, Math.max(1, size - this.#offset)));
      while (this.#offset < size) {
        const read = fs.readSync(fd, buffer, 0, Math.min(buffer.length, size - this.#offset), this.#offset);
        if (read === 0) break;
        this.#offset += read;
        text += this.#decoder.write(buffer.subarray(0, read));
      }
      return skipPartialLine ? text.slice(text.indexOf(`\n`) + 1) : text;
    } catch {
      return ``;
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Closes descriptors returned by `ProcessLog.open` (the child holds its own copies once spawned). */
export function closeLogFds(fds: ProcessLogFds | number[]): void {
  for (const fd of Array.isArray(fds) ? fds : [fds.stdout, fds.stderr]) {
    try {
      fs.closeSync(fd);
    } catch {
      // Already closed.
    }
  }
}

/**
 * The last `lines` non-empty lines of a file, read from its end: at most 64 KiB at first, widened up
 * to 1 MiB while too few lines were found, never the whole of a big file. A missing file has none.
 */
export function readTailLines(file: string, lines: number): string[] {
  if (lines <= 0) return [];
  let fd: number;
  try {
    fd = fs.openSync(file, `r`);
  } catch {
    return [];
  }
  try {
    const size = fs.fstatSync(fd).size;
    let windowBytes = TAIL_WINDOW_BYTES;
    while (true) {
      const start = Math.max(0, size - windowBytes);
      const buffer = Buffer.alloc(size - start);
      const read = fs.readSync(fd, buffer, 0, buffer.length, start);
      const parts = buffer.subarray(0, read).toString(`utf8`).split(`\n`);
      // A window that starts mid-file starts mid-line.
      if (start > 0) parts.shift();
      const found = parts.map((part) => (part.endsWith(`\r`) ? part.slice(0, -1) : part)).filter((part) => part !== ``);
      if (found.length >= lines || start === 0 || windowBytes >= TAIL_WINDOW_BYTES * TAIL_WINDOW_FACTOR) return found.slice(-lines);
      windowBytes *= 4;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The last `lines` lines of a process's two log files, in time order, each stamped with its file's
 * modification time (the files keep no times): what a restarted daemon shows of output it did not see.
 */
export function readBackLines(paths: ProcessLogPaths, lines: number): OutputLine[] {
  const found: OutputLine[] = [];
  for (const stream of STREAMS) {
    const file = paths[stream];
    let at: string;
    try {
      at = isoTime(fs.statSync(file).mtime);
    } catch {
      continue;
    }
    for (const line of readTailLines(file, lines)) found.push({at, stream, line});
  }
  // ISO times sort as strings; not localeCompare, whose ICU collation data costs the daemon ~3 MB of RSS.
  found.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  return found.slice(-lines);
}

/** Directory of persistent services' logs: they outlive the release that started them. Never a release id. */
export const SERVICES_LOG_SCOPE = `_services`;

/**
 * The log fields of a process spec: `<logs.dir>/<releaseId>/<instanceId>.{stdout,stderr}.log`, or
 * `<logs.dir>/_services/…` for a persistent service (it keeps running after its release is pruned).
 */
export function buildProcessLogSpec(options: {logs: LogsConfig; releaseId: string; instanceId: string; process: Pick<ProcessConfig, `policy` | `deployStrategy`>}): {logPaths: ProcessLogPaths; logMaxBytes: number; logFiles: number} {
  const {logs, process} = options;
  const scope = process.policy === `service` && process.deployStrategy !== `handoff` ? SERVICES_LOG_SCOPE : options.releaseId;
  return {logPaths: getProcessLogPaths(logs.dir, scope, options.instanceId), logMaxBytes: logs.maxBytes, logFiles: logs.files};
}

/** `<dir>/<scope>/<instanceId>.stdout.log` and `.stderr.log`; names are made safe as file names. */
export function getProcessLogPaths(dir: string, scope: string, instanceId: string): ProcessLogPaths {
  const base = path.join(dir, toFileName(scope), toFileName(instanceId));
  return {stdout: `${base}.stdout.log`, stderr: `${base}.stderr.log`};
}

/** Deletes the log directory of a release forgotten by retention; a missing one is fine. */
export function removeReleaseLogs(dir: string, releaseId: string): void {
  fs.rmSync(path.join(dir, toFileName(releaseId)), {recursive: true, force: true});
}

// `worker#0` stays as it is; separators, `..` and control characters do not.
function toFileName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._#@+=-]+/g, `_`);
  return safe === `` || safe === `.` || safe === `..` ? `_` : safe;
}

// What a deploy must be able to write into logs.dir before it starts anything.
const SPACE_PROBE_BYTES = 64 * 1024;

/** Free bytes for unprivileged writers on the filesystem holding `dir` (null when unknown). */
export function freeBytesAt(dir: string): number | null {
  try {
    const stats = fs.statfsSync(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return null;
  }
}

/**
 * Proves that logs.dir takes writes before a deploy starts a process whose output goes there: writes
 * 64 KiB into a new private file and removes it. A full filesystem fails here with
 * ERR_PROCESS_LOG_NO_SPACE (ENOSPC, the path and its free space) instead of as an app that exits
 * with no output. Other errors are left to the process log's own open.
 */
export function assertLogSpace(dir: string): void {
  let probe: string | undefined;
  let fd: number | undefined;
  try {
    fs.mkdirSync(dir, {recursive: true, mode: 0o700});
    probe = path.join(dir, `.rollbridge-space-${process.pid}-${Date.now()}`);
    fd = fs.openSync(probe, `wx`, 0o600);
    const chunk = Buffer.alloc(SPACE_PROBE_BYTES);
    let written = 0;
    while (written < chunk.length) written += fs.writeSync(fd, chunk, written);
    fs.fsyncSync(fd);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === `ENOSPC` || code === `EDQUOT`) {
      const free = freeBytesAt(dir);
      throw new RollbridgeError(ErrorCode.PROCESS_LOG_NO_SPACE, `No space left on the filesystem of logs.dir ${dir} (${code}): ${free === null ? `unknown` : free} bytes free, a deploy needs ${SPACE_PROBE_BYTES}`, {
        fix: `Free space on the filesystem holding ${dir} (\`df -h ${dir}\`), or set logs.dir to a directory on another filesystem; the running release keeps serving`,
        details: {key: `logs.dir`, path: dir, code, freeBytes: free},
        cause: error,
      });
    }
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
    if (probe !== undefined) fs.rmSync(probe, {force: true});
  }
}
