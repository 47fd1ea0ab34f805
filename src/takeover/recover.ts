import fs from 'node:fs';
import {setTimeout as delay} from 'node:timers/promises';
import type {Config} from '../config/types.ts';
import {probeControlSocket} from '../control/server.ts';
import type {ProbeResult} from '../control/server.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import type {Logger} from '../log/logger.ts';
import {findProcessesByEnvironment, listProcessGroupMembers, readProcStat} from '../system/proc.ts';
import {PROCESS_KEY_ENV, isStateProcessAlive, listPendingProcesses, listStateProcesses, readBootId, readStateFile, removeStaleTempFiles, statePathOf} from '../state/state-file.ts';
import type {DaemonState, StateProcess} from '../state/state-file.ts';
import {isoTime} from '../util/iso-time.ts';

/** A process the state file recorded that still runs, or whose process group still has live members. */
export type Leftover = {
  /** Instance id: `web`, `worker#1`. */
  id: string;
  /** Base id from the config. */
  processId: string;
  releaseId: string;
  /** The recorded pid (the group leader; it may be gone while other members of its group still run). */
  pid: number;
  pgid: number;
  /** Live (non-zombie) members of the process group, the leader included while it runs. */
  members: number[];
};

export type RecoverResult = {
  statePath: string;
  found: Leftover[];
  stopped: Leftover[];
  survivors: Leftover[];
};

export type RecoverOptions = {
  config: Config;
  /** Stop the leftovers (and clear the state file when none survives); without it, only list them. */
  force: boolean;
  log: Logger;
};

type Found = {leftover: Leftover; recorded: StateProcess};

const POLL_INTERVAL_MS = 20;
const KILL_CONFIRM_MS = 2_000;

/**
 * `recover` (product §5.8): after a daemon crash, finds the processes its state file lists that still run —
 * identified by pid and start time, with the live members of their process groups — and with `force` stops
 * them the way the config says (stopSignal to the group, gracefulStopMs, then SIGKILL). Refuses while
 * anything answers on the control socket: a live daemon supervises its processes itself.
 */
export async function recoverLeftovers(options: RecoverOptions): Promise<RecoverResult> {
  const {config, force, log} = options;
  await assertNoDaemon(config.control.path);
  const statePath = statePathOf(config);
  const state = readStateFile(statePath);
  const candidates = state === null ? [] : findLeftovers(state);
  for (const {leftover} of candidates) log.info(`Leftover process found`, {statePath, ...leftover});
  const found = candidates.map((candidate) => candidate.leftover);
  if (!force) return {statePath, found, stopped: [], survivors: []};

  const outcomes = await Promise.all(candidates.map(async (candidate) => ({leftover: candidate.leftover, stopped: await stopLeftover(candidate, config, log)})));
  const stopped = outcomes.filter((outcome) => outcome.stopped).map((outcome) => outcome.leftover);
  const survivors = outcomes.filter((outcome) => !outcome.stopped).map((outcome) => outcome.leftover);
  if (survivors.length === 0) {
    fs.rmSync(statePath, {force: true});
    removeStaleTempFiles(statePath);
    log.info(`State file cleared`, {statePath, stopped: stopped.length});
  } else {
    log.warn(`State file kept: leftover processes survived`, {statePath, survivors: survivors.map((leftover) => leftover.pid)});
  }
  return {statePath, found, stopped, survivors};
}

async function assertNoDaemon(socketPath: string): Promise<void> {
  let probe: ProbeResult;
  try {
    probe = await probeControlSocket(socketPath);
  } catch (error) {
    // Conservative: what cannot be probed may be a live daemon.
    throw new RollbridgeError(ErrorCode.RECOVER_DAEMON_RUNNING, `Probing the control socket ${socketPath} failed (${(error as NodeJS.ErrnoException).code ?? String(error)}), so a daemon may still be running; recover refused`, {
      fix: `Run "rollbridge recover" as the daemon's user (or root), or run "rollbridge shutdown" first`,
      details: {path: socketPath},
      cause: error,
    });
  }
  if (probe.state === `daemon`) {
    throw new RollbridgeError(ErrorCode.RECOVER_DAEMON_RUNNING, `A rollbridge daemon for "${String(probe.status.application)}" is running on ${socketPath}; recover is only for leftovers after a crash`, {
      fix: `Run "rollbridge status" to see the processes it supervises, or "rollbridge shutdown" first`,
      details: {path: socketPath, application: probe.status.application},
    });
  }
  if (probe.state === `foreign`) {
    throw new RollbridgeError(ErrorCode.RECOVER_DAEMON_RUNNING, `A process that is not a rollbridge daemon answers on ${socketPath}; recover refused`, {
      fix: `Stop the process holding ${socketPath}, or set control.path to this application's socket`,
      details: {path: socketPath},
    });
  }
}

/** The processes of a state document that still run (by pid and start time) or left live members in their group. */
export function listLeftovers(state: DaemonState): Leftover[] {
  return findLeftovers(state).map((candidate) => candidate.leftover);
}

function findLeftovers(state: DaemonState): Found[] {
  const candidates: Found[] = [];
  const seenGroups = new Set<number>();
  const byKey = new Map<string, Pick<StateProcess, `id` | `processId` | `policy` | `releaseId`>>();
  for (const recorded of listStateProcesses(state)) {
    if (seenGroups.has(recorded.pgid)) continue;
    const leftover = findLeftover(recorded, state.bootId);
    if (leftover === null) {
      if (recorded.key !== undefined) byKey.set(recorded.key, recorded);
      continue;
    }
    seenGroups.add(recorded.pgid);
    candidates.push({leftover, recorded});
  }
  // Recorded before their pid was known (write-ahead), or restarted since: found by the key in their environment.
  for (const pending of listPendingProcesses(state)) byKey.set(pending.key, pending);
  for (const [key, carriers] of findProcessesByEnvironment(PROCESS_KEY_ENV, new Set(byKey.keys()))) {
    const entry = byKey.get(key);
    if (!entry) continue;
    for (const pgid of new Set(carriers.map((carrier) => carrier.pgid))) {
      if (seenGroups.has(pgid) || pgid <= 1) continue;
      seenGroups.add(pgid);
      const leader = carriers.find((carrier) => carrier.pid === pgid) ?? carriers.find((carrier) => carrier.pgid === pgid);
      if (!leader) continue;
      const recorded: StateProcess = {...entry, pid: leader.pid, pgid, startTime: leader.startTime, startedAt: isoTime(), restarts: 0, key};
      candidates.push({leftover: {id: entry.id, processId: entry.processId, releaseId: entry.releaseId, pid: leader.pid, pgid, members: listProcessGroupMembers(pgid)}, recorded});
    }
  }
  return candidates;
}

/** The recorded process as a leftover: its leader still runs (same start time), or its group still has members. */
function findLeftover(recorded: StateProcess, bootId: string | null): Leftover | null {
  if (recorded.pgid <= 1 || recorded.pid <= 1) return null;
  const leaderAlive = isStateProcessAlive(recorded, bootId);
  const members = leaderAlive || isGroupStillOurs(recorded, bootId) ? liveMembers(recorded) : [];
  if (!leaderAlive && members.length === 0) return null;
  return {id: recorded.id, processId: recorded.processId, releaseId: recorded.releaseId, pid: recorded.pid, pgid: recorded.pgid, members};
}

/**
 * With the leader gone, the kernel hands its pid to no new process while members of its group remain, so
 * members with that pgrp are the leader's — unless the state predates a reboot, or a new process (another
 * start time) already holds the group id.
 */
function isGroupStillOurs(recorded: StateProcess, bootId: string | null): boolean {
  const currentBootId = readBootId();
  if (bootId !== null && currentBootId !== null && bootId !== currentBootId) return false;
  const holder = readProcStat(recorded.pgid);
  return holder === null || (recorded.pgid === recorded.pid && holder.startTime === recorded.startTime);
}

/** Live members of the recorded group; a member that started before the recorded process is not its descendant. */
function liveMembers(recorded: Pick<StateProcess, `pgid` | `startTime`>): number[] {
  return listProcessGroupMembers(recorded.pgid).filter((pid) => {
    if (pid === process.pid) return false;
    const stat = readProcStat(pid);
    return stat !== null && stat.pgrp === recorded.pgid && stat.startTime >= recorded.startTime;
  });
}

/**
 * The configured stop for one leftover: its process's stopSignal to the whole group, polled until no live
 * member is left or gracefulStopMs passes, then SIGKILL and a short confirmation. True when it is gone.
 */
async function stopLeftover({leftover, recorded}: Found, config: Config, log: Logger): Promise<boolean> {
  const processConfig = config.processes.find((entry) => entry.id === leftover.processId);
  const signal = processConfig?.stopSignal ?? `SIGTERM`;
  const graceful = processConfig?.gracefulStopMs ?? config.proxy.forceStopTimeoutMs;
  const gracefulStopMs = graceful === `indefinite` ? config.proxy.forceStopTimeoutMs : graceful;
  const fields = {id: leftover.id, pid: leftover.pid, pgid: leftover.pgid};
  const failed = signalLeftover(recorded, signal);
  if (failed !== null) {
    log.warn(`Leftover process could not be signalled`, {...fields, signal, errno: failed});
    return false;
  }
  if (await waitUntilGone(recorded, gracefulStopMs)) {
    log.info(`Leftover process stopped`, {...fields, signal});
    return true;
  }
  const killFailed = signalLeftover(recorded, `SIGKILL`);
  if (killFailed !== null) {
    log.warn(`Leftover process could not be signalled`, {...fields, signal: `SIGKILL`, errno: killFailed});
    return false;
  }
  if (await waitUntilGone(recorded, KILL_CONFIRM_MS)) {
    log.info(`Leftover process killed`, {...fields, gracefulStopMs});
    return true;
  }
  log.warn(`Leftover process survived SIGKILL`, {...fields, members: liveMembers(recorded)});
  return false;
}

/**
 * Signals the group, and the recorded process itself if it left its group (setsid). Null when the signal was
 * delivered or nobody was left to receive it; the errno code otherwise.
 */
function signalLeftover(recorded: StateProcess, signal: NodeJS.Signals): string | null {
  const targets = [-recorded.pgid];
  if (isStateProcessAlive(recorded, null) && readProcStat(recorded.pid)?.pgrp !== recorded.pgid) targets.push(recorded.pid);
  for (const target of targets) {
    try {
      process.kill(target, signal);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      if (code !== `ESRCH`) return code;
    }
  }
  return null;
}

function isRunning(recorded: StateProcess): boolean {
  return liveMembers(recorded).length > 0 || isStateProcessAlive(recorded, null);
}

async function waitUntilGone(recorded: StateProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(recorded)) {
    if (Date.now() >= deadline) return false;
    await delay(POLL_INTERVAL_MS);
  }
  return true;
}
