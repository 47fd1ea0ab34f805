import {setTimeout as delay} from 'node:timers/promises';
import type {Logger} from '../log/logger.ts';
import {isZombieState, readProcStat} from '../system/proc.ts';
import type {LegacyPlan, LegacyProcess} from './discover.ts';
import {quitScreenSession} from './screen.ts';

export type StopLegacyOptions = {
  /** How long processes get after SIGTERM before SIGKILL (`legacyTakeover.forceStopTimeoutMs`). */
  timeoutMs: number;
  log: Logger;
  /** Called once, when the first stop action (screen quit or SIGTERM) has been issued: the port gap starts there. */
  onSignalled?: () => void;
};

export type StopLegacyResult = {
  /** Ended after the screen quit or SIGTERM (or were already gone, or their pid now belongs to another process). */
  stopped: LegacyProcess[];
  /** Needed SIGKILL. */
  killed: LegacyProcess[];
  /** Still running after SIGKILL, or could not be signalled (EPERM). */
  survivors: LegacyProcess[];
};

const POLL_INTERVAL_MS = 20;
const KILL_CONFIRM_MS = 2_000;

type Liveness = `alive` | `gone` | `reused`;

/**
 * Quits the plan's screen sessions (as their owner), then SIGTERMs every discovered process still
 * running, polls until they are gone or `timeoutMs` passed, SIGKILLs what is left and confirms. A process
 * is only signalled while its pid still has the start time seen at discovery, so a recycled pid is never hit.
 * Screen's quit alone is not enough: setsid and nohup escapees survive it.
 */
export async function stopLegacyProcesses(plan: LegacyPlan, options: StopLegacyOptions): Promise<StopLegacyResult> {
  const {log} = options;
  const startedAt = Date.now();
  let signalled = false;
  const markSignalled = () => {
    if (signalled) return;
    signalled = true;
    options.onSignalled?.();
  };

  for (const session of plan.screens) {
    if (session.state.startsWith(`Dead`)) continue;
    // The quit hangs up the session's windows, which may already close the legacy app's port.
    markSignalled();
    const result = await quitScreenSession(session, plan.user);
    if (result.ok) log.info(`Legacy screen session quit`, {sessionId: session.id});
    else log.warn(`Legacy screen session quit failed`, {sessionId: session.id, output: result.output});
  }

  const stopped: LegacyProcess[] = [];
  const survivors: LegacyProcess[] = [];
  const terminated = signalEach(plan.processes, `SIGTERM`, {stopped, survivors, log, onSignal: markSignalled});
  const afterTerm = await waitUntilGone(terminated, options.timeoutMs);
  stopped.push(...terminated.filter((target) => !afterTerm.includes(target)));

  const killed: LegacyProcess[] = [];
  if (afterTerm.length > 0) {
    for (const target of afterTerm) log.warn(`Legacy process ignored SIGTERM; killing it`, {pid: target.pid, args: target.args, timeoutMs: options.timeoutMs});
    const sentKill = signalEach(afterTerm, `SIGKILL`, {stopped, survivors, log});
    const afterKill = await waitUntilGone(sentKill, KILL_CONFIRM_MS);
    killed.push(...sentKill.filter((target) => !afterKill.includes(target)));
    survivors.push(...afterKill);
  }

  log.info(`Legacy processes stopped`, {stopped: stopped.length, killed: killed.length, survivors: survivors.length, durationMs: Date.now() - startedAt});
  return {stopped, killed, survivors};
}

/** Signals each process that is still the one discovered; returns those signalled, sorting the rest into stopped/survivors. */
function signalEach(
  processes: LegacyProcess[],
  signal: NodeJS.Signals,
  sinks: {stopped: LegacyProcess[]; survivors: LegacyProcess[]; log: Logger; onSignal?: () => void},
): LegacyProcess[] {
  const signalled: LegacyProcess[] = [];
  for (const target of processes) {
    const liveness = checkLiveness(target);
    if (liveness !== `alive`) {
      if (liveness === `reused`) sinks.log.warn(`Legacy process pid was reused; left alone`, {pid: target.pid, args: target.args});
      sinks.stopped.push(target);
      continue;
    }
    try {
      process.kill(target.pid, signal);
      sinks.onSignal?.();
      signalled.push(target);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === `ESRCH`) {
        sinks.stopped.push(target);
      } else {
        sinks.log.warn(`Legacy process could not be signalled`, {pid: target.pid, args: target.args, signal, code});
        sinks.survivors.push(target);
      }
    }
  }
  return signalled;
}

/** Polls until none of `processes` runs or `timeoutMs` passed; returns those still running. */
export async function waitUntilGone(processes: LegacyProcess[], timeoutMs: number): Promise<LegacyProcess[]> {
  const deadline = Date.now() + timeoutMs;
  let running = processes.filter((target) => checkLiveness(target) === `alive`);
  while (running.length > 0 && Date.now() < deadline) {
    await delay(Math.min(POLL_INTERVAL_MS, Math.max(1, deadline - Date.now())));
    running = running.filter((target) => checkLiveness(target) === `alive`);
  }
  return running;
}

/** Zombies count as gone: they run nothing and hold no port. */
function checkLiveness(target: LegacyProcess): Liveness {
  const stat = readProcStat(target.pid);
  if (stat === null || isZombieState(stat.state)) return `gone`;
  return stat.startTime === target.startTime ? `alive` : `reused`;
}
