import {UsageError} from 'clipanion';
import fs from 'node:fs';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {ControlClient} from '../control/client.ts';
import {getDefaultDaemonLogPath, getDefaultDaemonPidPath, getRuntimeDir, getUid} from '../config/paths.ts';
import type {Config} from '../config/types.ts';
import {daemonExecutable, daemonLaunchEnv} from '../config/daemon-env.ts';
import {DEFAULT_DAEMON_START_TIMEOUT_MS} from '../config/defaults.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError, errorMessage, isRollbridgeError} from '../errors/rollbridge-error.ts';
import type {ProgressEvent} from '../control/protocol.ts';
import type {CliContext} from './context.ts';
import {formatDuration} from './render.ts';
import {getVersionInfo} from './version.ts';
import {formatMode, readOwner, userLabel} from './socket-access.ts';
import {findUserName} from '../system/users.ts';
import {APPEND_FLAGS, REPLACE_FLAGS, UnsafePathError, ensurePrivateDirectory, openPrivateFile} from '../util/private-file.ts';

export type EnsureDaemonOptions = {
  logPath?: string | undefined;
  pidPath?: string | undefined;
  startTimeoutMs?: number | undefined;
  /** Extra arguments for a daemon this call starts (legacy-takeover passes `--proxy-deferred`). */
  daemonArgs?: string[] | undefined;
  /** Where the daemon is asked and started (`--control-path`); default control.path. */
  controlPath?: string | undefined;
  /**
   * Told when the wait for a daemon this call started begins (`waiting` with wait `daemon`) and when
   * it ends (`daemon-listening`, with the wait's duration); nothing when a daemon already answered.
   */
  onProgress?: ((event: ProgressEvent) => void) | undefined;
};

/**
 * Returns the status of the daemon on `control.path`, starting a detached one first when none answers.
 * The daemon runs with the config's directory as its cwd (never a release directory that may be deleted)
 * and the absolute config path. Concurrent starters converge: the loser's daemon refuses to bind.
 */
export async function ensureDaemon(config: Config, context: CliContext, options: EnsureDaemonOptions = {}): Promise<{started: boolean; pid: number | null; status: Record<string, unknown>}> {
  const controlPath = options.controlPath ?? config.control.path;
  const existing = await tryStatus(controlPath);
  if (existing) return {started: false, pid: null, status: existing};

  const logPath = path.resolve(context.cwd, options.logPath ?? getDefaultDaemonLogPath(config.application));
  const pidPath = path.resolve(context.cwd, options.pidPath ?? getDefaultDaemonPidPath(config.application));
  const logFd = openDaemonFile(logPath, APPEND_FLAGS, `--daemon-log-path`);
  try {
    // Refused before a daemon is spawned, not after: a pid path this user cannot write.
    checkWritable(pidPath, `--daemon-pid-path`);
  } catch (error) {
    fs.closeSync(logFd);
    throw error;
  }
  const {spawn} = await import('node:child_process');
  let child;
  try {
    const executable = daemonExecutable(context.selfCommand);
    child = spawn(executable.file, [...executable.args, `daemon`, `--config`, config.configPath, ...(options.controlPath === undefined ? [] : [`--control-path`, options.controlPath]), ...(options.daemonArgs ?? [])], {
      cwd: path.dirname(config.configPath),
      // With the daemon's malloc settings (config/daemon-env.ts), which its processes do not inherit.
      env: daemonLaunchEnv(context.env) as NodeJS.ProcessEnv,
      detached: true,
      stdio: [`ignore`, logFd, logFd],
    });
  } finally {
    fs.closeSync(logFd);
  }
  const exited = new Promise<number | null>((resolve) => child.once(`exit`, (code) => resolve(code)));
  child.once(`error`, () => undefined);
  child.unref();
  if (child.pid !== undefined) writePidFile(pidPath, child.pid);

  const timeoutMs = options.startTimeoutMs ?? DEFAULT_DAEMON_START_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const waitStartedAt = performance.now();
  options.onProgress?.({phase: `waiting`, releaseId: null, wait: `daemon`, pid: child.pid ?? null, timeoutMs: Math.ceil(timeoutMs), detail: `the daemon${child.pid === undefined ? `` : ` (pid ${child.pid})`} to listen on ${controlPath} (timeout ${formatDuration(timeoutMs)})`});
  const listening = (status: Record<string, unknown>): void => {
    const pid = (status.daemon as {pid?: unknown} | undefined)?.pid;
    options.onProgress?.({phase: `daemon-listening`, releaseId: null, pid: typeof pid === `number` ? pid : null, durationMs: Math.round(performance.now() - waitStartedAt), detail: controlPath});
  };
  let lastError = `no answer yet`;
  let childExitCode: number | null | undefined;
  void exited.then((code) => {
    childExitCode = code;
  });
  while (Date.now() < deadline) {
    try {
      const status = await statusOf(controlPath);
      listening(status);
      return {started: true, pid: child.pid ?? null, status};
    } catch (error) {
      lastError = errorMessage(error);
    }
    if (childExitCode !== undefined) {
      // Our daemon exited: maybe a concurrent starter won the race, so look once more before failing.
      const winner = await tryStatus(controlPath);
      if (winner) {
        listening(winner);
        return {started: false, pid: null, status: winner};
      }
      throw new RollbridgeError(ErrorCode.DAEMON_START_TIMEOUT, `The rollbridge daemon exited with code ${childExitCode} during start-up: ${lastLogLine(logPath) ?? lastError}`, {
        fix: `Read ${logPath} for the reason, or run "rollbridge daemon --config ${config.configPath}" in the foreground to see it`,
        details: {logPath, exitCode: childExitCode},
      });
    }
    await delay(25);
  }
  throw new RollbridgeError(ErrorCode.DAEMON_START_TIMEOUT, `The rollbridge daemon did not become ready within ${timeoutMs} ms. Last error: ${lastError}`, {
    fix: `Read ${logPath}, or raise --daemon-start-timeout-ms`,
    details: {logPath, timeoutMs},
  });
}

/**
 * `ensure-daemon --replace` (product §8): a running daemon hands over to a new one of this build —
 * listening socket, processes and control socket — without refusing or losing a request; with no
 * daemon running, one is started as by ensureDaemon. Only the daemon's user (or root) can read the
 * token the request must carry.
 */
export async function replaceDaemon(config: Config, context: CliContext, options: EnsureDaemonOptions = {}): Promise<{replaced: boolean; previousPid: number | null; pid: number | null; durationMs: number | null; status: Record<string, unknown>}> {
  const existing = await tryStatus(config.control.path);
  if (!existing) {
    const started = await ensureDaemon(config, context, options);
    return {replaced: false, previousPid: null, pid: started.pid, durationMs: null, status: started.status};
  }
  // Loaded on demand: node:crypto is only needed here (and keeps `--version` fast).
  const {readToken} = await import('../control/replace-token.ts');
  const token = readToken(config.control.path);
  const logPath = path.resolve(context.cwd, options.logPath ?? getDefaultDaemonLogPath(config.application));
  fs.closeSync(openDaemonFile(logPath, APPEND_FLAGS, `--daemon-log-path`)); // checked here; the daemon appends to it
  const client = await ControlClient.connect(config.control.path);
  let result: {previousPid: number; pid: number; durationMs: number};
  try {
    result = await client.call(`replace`, {token, executable: daemonExecutable(context.selfCommand), logPath});
  } finally {
    client.close();
  }
  const pidPath = path.resolve(context.cwd, options.pidPath ?? getDefaultDaemonPidPath(config.application));
  writePidFile(pidPath, result.pid);
  return {replaced: true, previousPid: result.previousPid, pid: result.pid, durationMs: result.durationMs, status: await statusOf(config.control.path)};
}

/**
 * Opens the daemon log or pid file: the private runtime directory is created 0700 (and refused when
 * someone else made it), any other directory must not be writable by others, and the file itself is
 * opened without following a symlink and refused when another user owns or may write it.
 */
function openDaemonFile(file: string, flags: number, flag: string): number {
  const dir = path.dirname(file);
  try {
    if (dir === getRuntimeDir()) ensurePrivateDirectory(dir);
    else fs.mkdirSync(dir, {recursive: true});
    return openPrivateFile(file, flags, dir);
  } catch (error) {
    throw toDaemonFileError(error, file, flag);
  }
}

function toDaemonFileError(error: unknown, file: string, flag: string): unknown {
  if (error instanceof UnsafePathError) {
    return new RollbridgeError(ErrorCode.FILE_UNSAFE, `Refusing ${error.path}: ${error.reason}`, {
      fix: `Remove ${error.path} if you did not create it, or pass ${flag} a file in a directory only you can write`,
      details: {key: flag, path: error.path},
    });
  }
  return unwritable(file, flag, error);
}

/**
 * A daemon file this user cannot create or open (EACCES, EROFS, a path through a file…): who owns the
 * nearest existing part of the path and which flag picks another place. Anything else stays a bug.
 */
function unwritable(file: string, flag: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === undefined || ![`EACCES`, `EPERM`, `EROFS`, `ENOTDIR`, `EISDIR`, `ENOENT`, `ENOSPC`, `EDQUOT`].includes(code)) return error;
  let existing = file;
  while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  const owner = readOwner(existing);
  const uid = getUid();
  const ownedBy = owner === null ? `` : `; ${existing === file ? existing : `${existing}, the nearest existing part of the path,`} belongs to ${userLabel(owner.uid, owner.user)}, group ${owner.group ?? `gid ${owner.gid}`}, mode ${formatMode(owner.mode)}`;
  return new RollbridgeError(ErrorCode.DAEMON_FILE_UNWRITABLE, `Cannot write the daemon's ${flag === `--daemon-pid-path` ? `pid` : `log`} file ${file} (${code}) as ${userLabel(uid, findUserName(uid))}${ownedBy}`, {
    fix: `Pass ${flag} a file in a directory ${findUserName(uid) ?? `this user`} may write, or leave ${flag} out for the default in your runtime directory${owner !== null && owner.uid !== uid ? `, or run the command as ${owner.uid === 0 ? `root (sudo)` : owner.user ?? `uid ${owner.uid}`}` : ``}`,
    details: {key: flag, path: file, errno: code, ...(owner === null ? {} : {owner: {path: owner.path, uid: owner.uid, user: owner.user, gid: owner.gid, group: owner.group, mode: formatMode(owner.mode)}})},
    cause: error,
  });
}

/** Whether the pid file could be created or replaced here, without touching an existing one. */
function checkWritable(file: string, flag: string): void {
  try {
    const dir = path.dirname(file);
    if (dir === getRuntimeDir()) ensurePrivateDirectory(dir);
    else fs.mkdirSync(dir, {recursive: true});
    fs.accessSync(fs.existsSync(file) ? file : dir, fs.constants.W_OK);
  } catch (error) {
    throw toDaemonFileError(error, file, flag);
  }
}

function writePidFile(pidPath: string, pid: number): void {
  const fd = openDaemonFile(pidPath, REPLACE_FLAGS, `--daemon-pid-path`);
  try {
    fs.writeSync(fd, `${pid}\n`);
  } finally {
    fs.closeSync(fd);
  }
}

/** True when the status comes from a daemon of another build than this CLI (version or commit differ). */
export function isOtherBuild(status: Record<string, unknown>): boolean {
  const runtime = status.daemonRuntime as {version?: string; commit?: string} | undefined;
  const ours = getVersionInfo();
  return runtime !== undefined && (runtime.version !== ours.version || runtime.commit !== ours.commit);
}

/** The status of the daemon on `controlPath`. */
export async function statusOf(controlPath: string): Promise<Record<string, unknown>> {
  const client = await ControlClient.connect(controlPath);
  try {
    return await client.call(`status`, {}) as Record<string, unknown>;
  } finally {
    client.close();
  }
}

async function tryStatus(controlPath: string): Promise<Record<string, unknown> | null> {
  try {
    return await statusOf(controlPath);
  } catch (error) {
    if (isRollbridgeError(error) && error.code === ErrorCode.DAEMON_UNREACHABLE) return null;
    throw error;
  }
}

function lastLogLine(logPath: string): string | null {
  try {
    const lines = fs.readFileSync(logPath, `utf8`).trim().split(`\n`);
    const rendered = lines.findLast((line) => line.startsWith(`error ERR_`));
    if (rendered) return rendered.slice(`error `.length);
    const last = lines.at(-1);
    if (!last) return null;
    try {
      const record = JSON.parse(last) as {msg?: string; err?: {message?: string}};
      return record.err?.message ?? record.msg ?? last;
    } catch {
      return last;
    }
  } catch {
    return null;
  }
}

/** `--daemon-start-timeout-ms`: a positive number of ms, else a usage error (exit 2). */
export function parseStartTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Number(value);
  if (!Number.isFinite(ms) || ms < 1) {
    throw new UsageError(`--daemon-start-timeout-ms must be a positive number (got "${value}")`);
  }
  return ms;
}
