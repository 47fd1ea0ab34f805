import fs from 'node:fs';
import path from 'node:path';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {readProcStat} from '../system/proc.ts';
import {fsAsync} from '../util/fs-async.ts';
import {CREATE_NEW_FLAGS, READ_FLAGS, currentUid, describeUnsafeDirectory, describeUnsafeFile} from '../util/private-file.ts';

/**
 * The daemon's persisted state (product §5.8): enough to find and re-adopt every managed process
 * after a daemon crash, and nothing secret — no commands, env values or output. Every process is
 * identified by pid AND its start time from /proc, plus the boot id, so a recycled pid (or a pid
 * from before a reboot) is never taken for ours.
 */
export type StateProcess = {
  /** Instance id: `web`, `worker#1`. */
  id: string;
  /** Base id from the config. */
  processId: string;
  policy: string;
  /** Release the process was started for. */
  releaseId: string;
  pid: number;
  pgid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot. */
  startTime: number;
  startedAt: string;
  port?: number;
  restarts: number;
  /** The process's key (`ROLLBRIDGE_PROCESS_KEY` in its environment): finds it when the pid was never written. */
  key?: string;
  /** A replaced web process (`restart --process web`) still draining: stopped, never re-adopted, after a crash. */
  draining?: boolean;
};

/**
 * A process recorded before it is spawned (write-ahead), or one whose pid is not known right now
 * (between a crash and its restart, or a stopping group whose leader exited). A restarted daemon
 * finds it by its key in `/proc/<pid>/environ`.
 */
export type StatePendingProcess = {
  id: string;
  processId: string;
  policy: string;
  releaseId: string;
  key: string;
};

/** The environment variable that carries a process's key; every process the daemon starts has it. */
export const PROCESS_KEY_ENV = `ROLLBRIDGE_PROCESS_KEY`;

export type StateRelease = {
  releaseId: string;
  releasePath: string;
  revision: string;
  state: string;
  createdAt: string;
  activatedAt?: string;
  drainStartedAt?: string;
  stoppedAt?: string;
  /** Why rollback never chooses this release. */
  failure?: string;
  ports: Record<string, number>;
  instancePorts: Record<string, number>;
  processes: StateProcess[];
  /** Processes of this release without a known pid (see StatePendingProcess). */
  pending?: StatePendingProcess[];
};

/**
 * A deploy that failed before its switch (FailedDeploys): why, and where its processes' output is. The
 * output itself stays out of the state; a restarted daemon reads the last `lines` lines of each process
 * back from its log files. Optional and additive: older daemons and rollbridge 0.1 ignore it.
 */
export type StateFailedDeploy = {
  releaseId: string;
  failedAt: string;
  /** `ERR_PROCESS_EXITED: Process "web" of release r2 exited (code 3) before it became healthy` */
  failure: string;
  /** logs.dir of the deploy: `<logsDir>/<releaseId>` is removed when the entry is dropped. */
  logsDir: string;
  /** `lines`: how many recent lines the daemon kept of it. */
  processes: Array<{id: string; lines: number; logPaths?: {stdout: string; stderr: string}}>;
};

/** Pause and maintenance (`rollbridge pause`, `maintenance on`): a restarted daemon takes them up again. */
export type StateTraffic = {
  pause: {since: string; deadline: string | null; expired: boolean} | null;
  maintenance: {since: string; message: string; retryAfterSeconds: number} | null;
};

/** A deploy's hold-on-switch in progress: the new release's web process must not run beside the previous one. */
export type StateSwitchHold = {
  releaseId: string;
  previousReleaseId: string;
  startedAt: string;
};

export type DaemonState = {
  format: 1;
  application: string;
  writtenAt: string;
  bootId: string | null;
  daemon: {pid: number; startTime: number | null; version: string};
  proxy: {host: string; port: number};
  activeReleaseId: string | null;
  releases: StateRelease[];
  services: StateProcess[];
  singletons: StateProcess[];
  /** Services and singletons without a known pid (see StatePendingProcess). */
  pending?: StatePendingProcess[];
  /** The failed deploys `logs --release` shows, oldest first; absent when there are none. */
  failedDeploys?: StateFailedDeploy[];
  /** Present while a deploy holds requests for a `switch: "hold"` process (restore stops that release's survivors first). */
  switchHold?: StateSwitchHold;
  /** Absent: traffic flows (files written before 0.2 have none). */
  traffic?: StateTraffic;
};

/**
 * Where the state lives: `statePath`, else beside the control socket (`<socket without .sock>.state.json`),
 * so every daemon — one per control socket — has its own state file and crash safety is on by default.
 */
export function statePathOf(config: {statePath: string | undefined; control: {path: string}}): string {
  if (config.statePath !== undefined) return config.statePath;
  const socket = config.control.path;
  return `${socket.endsWith(`.sock`) ? socket.slice(0, -`.sock`.length) : socket}.state.json`;
}

let tempCounter = 0;

/**
 * Writes `state` atomically: a temp file beside the target (mode 0600, written and fsynced), renamed
 * over the target, then the directory fsynced so the rename itself survives a power loss. A reader
 * (or a daemon killed at any instant) sees the old file or the new one, never a torn one.
 */
export async function writeStateFile(statePath: string, state: DaemonState): Promise<void> {
  tempCounter += 1;
  const temp = `${statePath}.${process.pid}.${tempCounter}.tmp`;
  const text = `${JSON.stringify(state, null, 2)}\n`;
  try {
    // A new file only, never through a symlink someone planted at the temp name.
    await fsAsync.rm(temp, {force: true});
    const fd = await fsAsync.open(temp, CREATE_NEW_FLAGS, 0o600);
    try {
      await fsAsync.writeFile(fd, text, `utf8`);
      await fsAsync.fsync(fd);
    } finally {
      await fsAsync.close(fd);
    }
    await fsAsync.rename(temp, statePath);
    await syncDirectory(path.dirname(statePath));
  } catch (error) {
    await fsAsync.rm(temp, {force: true}).catch(() => undefined);
    throw new RollbridgeError(ErrorCode.STATE_WRITE_FAILED, `Writing the state file ${statePath} failed: ${(error as Error).message}`, {
      fix: `Make the directory of statePath (${path.dirname(statePath)}) exist and writable by the daemon's user, or change statePath in the config`,
      details: {statePath, code: (error as NodeJS.ErrnoException).code},
      cause: error,
    });
  }
}

async function syncDirectory(directory: string): Promise<void> {
  const fd = await fsAsync.open(directory, `r`);
  try {
    await fsAsync.fsync(fd);
  } catch (error) {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
    if ((error as NodeJS.ErrnoException).code !== `EINVAL`) throw error;
  } finally {
    await fsAsync.close(fd);
  }
}

/** Removes temp files that writers killed mid-write left beside the state file. */
export function removeStaleTempFiles(statePath: string): number {
  const directory = path.dirname(statePath);
  const prefix = `${path.basename(statePath)}.`;
  let removed = 0;
  let names: string[];
  try {
    names = fs.readdirSync(directory);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith(`.tmp`)) continue;
    const pid = Number(name.slice(prefix.length).split(`.`)[0]);
    if (pid === process.pid || (Number.isInteger(pid) && pid > 0 && readProcStat(pid) !== null)) continue;
    try {
      fs.rmSync(path.join(directory, name), {force: true});
      removed += 1;
    } catch {
      // Someone else's file: leave it.
    }
  }
  return removed;
}

/**
 * Reads the state file: null when there is none. A file that is not a state document (hand-edited,
 * another tool's) is an ERR_STATE_UNREADABLE error naming the path; the atomic writer never leaves one.
 */
export function readStateFile(statePath: string): DaemonState | null {
  // The state names processes a root daemon will signal: a file someone else could write (or a
  // symlink to one) must never be trusted.
  const unsafeDir = describeUnsafeDirectory(path.dirname(statePath));
  if (unsafeDir !== null) throw unsafeState(statePath, unsafeDir);
  let text: string;
  let fd: number;
  try {
    fd = fs.openSync(statePath, READ_FLAGS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === `ENOENT`) return null;
    if ((code === `ELOOP` || code === `EACCES`) && fs.lstatSync(statePath, {throwIfNoEntry: false})?.isSymbolicLink()) throw unsafeState(statePath, `it is a symbolic link`);
    throw unreadable(statePath, (error as Error).message, error);
  }
  try {
    const problem = describeUnsafeFile(fs.fstatSync(fd));
    if (problem !== null) throw unsafeState(statePath, problem);
    text = fs.readFileSync(fd, `utf8`);
  } catch (error) {
    if (error instanceof RollbridgeError) throw error;
    throw unreadable(statePath, (error as Error).message, error);
  } finally {
    fs.closeSync(fd);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw unreadable(statePath, `not JSON (${(error as Error).message})`, error);
  }
  const problem = checkState(parsed);
  if (problem !== null) throw unreadable(statePath, problem);
  return parsed as DaemonState;
}

function unsafeState(statePath: string, reason: string): RollbridgeError {
  const uid = currentUid();
  return new RollbridgeError(ErrorCode.STATE_FILE_UNSAFE, `Refusing the state file ${statePath}: ${reason}`, {
    fix: `Check who wrote ${statePath} and remove it, or set statePath to a file in a directory only the daemon's user (uid ${uid}) can write`,
    details: {statePath, uid},
  });
}

function unreadable(statePath: string, reason: string, cause?: unknown): RollbridgeError {
  return new RollbridgeError(ErrorCode.STATE_UNREADABLE, `The state file ${statePath} cannot be used: ${reason}`, {
    fix: `Move ${statePath} aside (processes it listed may still run: check with "ps -ef"), or point statePath at another file`,
    details: {statePath},
    ...(cause === undefined ? {} : {cause}),
  });
}

function checkState(value: unknown): string | null {
  if (typeof value !== `object` || value === null) return `not an object`;
  const state = value as Record<string, unknown>;
  if (state.format !== 1) return `unknown format ${JSON.stringify(state.format)} (expected 1)`;
  for (const key of [`releases`, `services`, `singletons`]) {
    if (!Array.isArray(state[key])) return `"${key}" is not an array`;
  }
  if (state.switchHold !== undefined) {
    const hold = state.switchHold as Partial<StateSwitchHold> | null;
    if (typeof hold !== `object` || hold === null || typeof hold.releaseId !== `string` || typeof hold.previousReleaseId !== `string` || typeof hold.startedAt !== `string`) return `"switchHold" is not {releaseId, previousReleaseId, startedAt}`;
  }
  if (state.traffic !== undefined && !isStateTraffic(state.traffic)) return `"traffic" is not {pause, maintenance} as this version writes it`;
  const processes: unknown[] = [...state.services as unknown[], ...state.singletons as unknown[]];
  const pending: unknown[] = [];
  if (state.pending !== undefined) {
    if (!Array.isArray(state.pending)) return `"pending" is not an array`;
    pending.push(...state.pending);
  }
  for (const release of state.releases as unknown[]) {
    if (typeof release !== `object` || release === null || !Array.isArray((release as StateRelease).processes)) return `a release without a processes array`;
    if (typeof (release as StateRelease).releaseId !== `string`) return `a release without a releaseId`;
    processes.push(...(release as StateRelease).processes);
    const releasePending = (release as StateRelease).pending;
    if (releasePending !== undefined) {
      if (!Array.isArray(releasePending)) return `"pending" of release ${(release as StateRelease).releaseId} is not an array`;
      pending.push(...releasePending);
    }
  }
  for (const entry of pending) {
    const recorded = entry as Partial<StatePendingProcess> | null;
    if (typeof recorded !== `object` || recorded === null || typeof recorded.id !== `string` || typeof recorded.key !== `string` || typeof recorded.releaseId !== `string` || typeof recorded.processId !== `string`) {
      return `a pending process entry without id, processId, releaseId and key`;
    }
  }
  if (state.failedDeploys !== undefined) {
    if (!Array.isArray(state.failedDeploys)) return `"failedDeploys" is not an array`;
    for (const entry of state.failedDeploys as unknown[]) {
      if (!isFailedDeploy(entry)) return `a failedDeploys entry without releaseId, failedAt, failure, an absolute logsDir and processes [{id, lines, logPaths?}]`;
    }
  }
  for (const entry of processes) {
    const process = entry as Partial<StateProcess> | null;
    if (typeof process !== `object` || process === null || typeof process.id !== `string` || !Number.isInteger(process.pid) || !Number.isInteger(process.pgid) || !Number.isInteger(process.startTime)) {
      return `a process entry without id, pid, pgid and startTime`;
    }
  }
  return null;
}

function isFailedDeploy(value: unknown): boolean {
  if (typeof value !== `object` || value === null) return false;
  const entry = value as Partial<StateFailedDeploy>;
  if (typeof entry.releaseId !== `string` || typeof entry.failure !== `string` || typeof entry.failedAt !== `string` || Number.isNaN(Date.parse(entry.failedAt))) return false;
  if (typeof entry.logsDir !== `string` || !path.isAbsolute(entry.logsDir) || !Array.isArray(entry.processes)) return false;
  return entry.processes.every((process: unknown) => {
    if (typeof process !== `object` || process === null) return false;
    const {id, lines, logPaths} = process as {id?: unknown; lines?: unknown; logPaths?: {stdout?: unknown; stderr?: unknown}};
    if (typeof id !== `string` || !Number.isInteger(lines) || (lines as number) < 0) return false;
    return logPaths === undefined || (typeof logPaths === `object` && logPaths !== null && typeof logPaths.stdout === `string` && path.isAbsolute(logPaths.stdout) && typeof logPaths.stderr === `string` && path.isAbsolute(logPaths.stderr));
  });
}

function isStateTraffic(value: unknown): value is StateTraffic {
  if (typeof value !== `object` || value === null) return false;
  const {pause, maintenance} = value as Record<string, unknown>;
  if (pause !== null) {
    if (typeof pause !== `object` || pause === undefined) return false;
    const {since, deadline, expired} = pause as Record<string, unknown>;
    if (typeof since !== `string` || (deadline !== null && typeof deadline !== `string`) || typeof expired !== `boolean`) return false;
  }
  if (maintenance !== null) {
    if (typeof maintenance !== `object` || maintenance === undefined) return false;
    const {since, message, retryAfterSeconds} = maintenance as Record<string, unknown>;
    if (typeof since !== `string` || typeof message !== `string` || !Number.isInteger(retryAfterSeconds)) return false;
  }
  return true;
}

/** True when the state holds a pause or maintenance (kept in the file even with no process left). */
export function hasTrafficState(state: DaemonState): boolean {
  return state.traffic !== undefined && (state.traffic.pause !== null || state.traffic.maintenance !== null);
}

/** Every process the state lists with a pid (releases, services, singletons), each once. */
export function listStateProcesses(state: DaemonState): StateProcess[] {
  return [...state.releases.flatMap((release) => release.processes), ...state.services, ...state.singletons];
}

/** Every process the state lists without a pid (found by key), each once. */
export function listPendingProcesses(state: DaemonState): StatePendingProcess[] {
  return [...state.releases.flatMap((release) => release.pending ?? []), ...state.pending ?? []];
}

let bootId: string | null | undefined;

/** /proc/sys/kernel/random/boot_id: differs after a reboot, when no pid in the state can be ours. */
export function readBootId(): string | null {
  if (bootId !== undefined) return bootId;
  try {
    bootId = fs.readFileSync(`/proc/sys/kernel/random/boot_id`, `utf8`).trim();
  } catch {
    bootId = null;
  }
  return bootId;
}

/**
 * True when the process the state recorded still runs: same pid, same start time, same boot, and not
 * a zombie (a zombie has finished; only its exit status waits to be collected).
 */
export function isStateProcessAlive(process: Pick<StateProcess, `pid` | `startTime`>, stateBootId: string | null): boolean {
  if (stateBootId !== null && readBootId() !== null && stateBootId !== readBootId()) return false;
  const stat = readProcStat(process.pid);
  return stat !== null && stat.startTime === process.startTime && stat.state !== `Z` && stat.state !== `X`;
}
