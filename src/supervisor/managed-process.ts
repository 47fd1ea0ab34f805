import {spawn} from 'node:child_process';
import type {ChildProcess} from 'node:child_process';
import {setTimeout as delay} from 'node:timers/promises';
import {DEFAULT_LOG_FILES, DEFAULT_LOG_MAX_BYTES} from '../config/defaults.ts';
import type {LifecycleConfig, RestartConfig} from '../config/types.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import type {Logger} from '../log/logger.ts';
import {isLiveProcess, isProcessGroupAlive, readProcStat} from '../system/proc.ts';
import {NotifySocket} from './notify-socket.ts';
import type {NotifyState} from './notify-socket.ts';
import type {OutputLine} from './output-buffer.ts';
import type {ProcessUsage} from './process-usage.ts';
import {ProcessLog, closeLogFds} from './process-log.ts';
import type {ProcessLogFds, ProcessLogPaths} from './process-log.ts';
import {planRestart} from './restart-policy.ts';
import {toShellScript} from './shell-command.ts';
import {runLifecycleHook} from './lifecycle-hook.ts';
import type {LifecycleHookLabel} from './lifecycle-hook.ts';
import type {LivenessStatusView, ProcessStatusView} from '../control/protocol.ts';
import {isoTime} from '../util/iso-time.ts';

export type ProcessState = `starting` | `running` | `stopping` | `stopped` | `failed`;
export type StartReason = `deploy` | `crash` | `manual` | `memory` | `liveness`;

export type ProcessSpec = {
  /** Instance id: `web`, `worker#0`. */
  id: string;
  /** Base id from the config: `worker`. */
  processId: string;
  /** Already rendered; run as `/bin/sh -c command`. */
  command: string;
  /** Absolute. */
  cwd: string;
  /** The complete child environment (the caller builds it). */
  env: Record<string, string>;
  port: number | undefined;
  stopSignal: NodeJS.Signals;
  /** Time between the stop signal (or stop command) and SIGKILL; `indefinite` never sends SIGKILL. */
  gracefulStopMs: number | `indefinite`;
  lifecycle: LifecycleConfig;
  restart: RestartConfig;
  restartDelayMs: number;
  /** Size of the recent-output ring. */
  outputLines: number;
  /**
   * Files the child writes its stdout/stderr to (the daemon follows them into the ring). Fixed when the
   * ManagedProcess is created: updateSpec does not move them. Without them the output is discarded.
   */
  logPaths?: ProcessLogPaths | undefined;
  /** Rotation size of each log file. @default DEFAULT_LOG_MAX_BYTES */
  logMaxBytes?: number | undefined;
  /** Rotated copies kept per log file. @default DEFAULT_LOG_FILES */
  logFiles?: number | undefined;
  /** sd_notify socket bound for each run (health.type "notify"); `env.NOTIFY_SOCKET` names the same path. */
  notifySocketPath?: string | undefined;
};

export type ProcessExit = {code: number | null; signal: NodeJS.Signals | null; /** True when stop() caused it. */ intentional: boolean};

// Hook timeout used when gracefulStopMs is `indefinite` (upstream value).
const INDEFINITE_HOOK_TIMEOUT_MS = 30_000;
const GROUP_POLL_INTERVAL_MS = 15;
const SIGKILL_WAIT_MS = 5_000;
// How often a re-adopted process (not our child, so no exit event) is checked in /proc.
const ADOPTED_POLL_INTERVAL_MS = 100;

/**
 * One supervised OS process: spawned as `/bin/sh -c` in its own process group and session, writing
 * to its log files (never pipes, so it survives a daemon crash) followed into a recent-output ring,
 * restarted after unexpected exits by the restart policy while the
 * owner still wants it, and stopped gracefully (hooks, signal or stop command, SIGKILL escalation).
 */
export class ManagedProcess {
  readonly id: string;
  #spec: ProcessSpec;
  readonly #log: Logger;
  readonly #shouldRestart: () => boolean;
  readonly #processLog: ProcessLog | undefined;
  readonly #exitListeners = new Set<(exit: ProcessExit) => void>();
  #state: ProcessState = `stopped`;
  #child: ChildProcess | undefined;
  #pid: number | undefined;
  #pgid: number | undefined;
  #childExited: Promise<void> = Promise.resolve();
  #intentional = false;
  #startPromise: Promise<void> | undefined;
  #stopPromise: Promise<void> | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #restartHistory: number[] = [];
  #restartLimitReached = false;
  #restarts = 0;
  #memoryRestarts = 0;
  #memory: {rssBytes: number; children: Array<{command: string; pid: number; rssBytes?: number}>} | undefined;
  #lastMemoryRestartAt: string | undefined;
  #liveness: Omit<LivenessStatusView, `restarts`> | undefined;
  /** The sd_notify socket of the current run (spec.notifySocketPath), open from before the spawn until the exit. */
  #notify: NotifySocket | undefined;
  #notifyState: NotifyState | undefined;
  #livenessRestarts = 0;
  #startedAt: number | undefined;
  #lastStartReason: StartReason | undefined;
  #exitCode: number | null | undefined;
  #exitSignal: NodeJS.Signals | null | undefined;
  /** Start time (/proc stat field 22) of the running process: with the pid, its identity. */
  #startTime: number | undefined;
  /** Set while the running process was re-adopted from a previous daemon (not our child: polled). */
  #adoptedPoll: NodeJS.Timeout | undefined;
  #adopted = false;
  /** The quiet command run for the current run of the process (by quiet() or the stop), once. */
  #quiet: {pgid: number; done: Promise<void>} | undefined;

  constructor(spec: ProcessSpec, options: {log: Logger; shouldRestart: () => boolean}) {
    this.id = spec.id;
    this.#spec = spec;
    this.#log = options.log;
    this.#shouldRestart = options.shouldRestart;
    this.#processLog = spec.logPaths && new ProcessLog({
      stdoutPath: spec.logPaths.stdout,
      stderrPath: spec.logPaths.stderr,
      maxBytes: spec.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES,
      files: spec.logFiles ?? DEFAULT_LOG_FILES,
      lines: spec.outputLines,
      log: options.log,
    });
  }

  get spec(): ProcessSpec {
    return this.#spec;
  }

  /** Live config reload: the new spec applies at the next start or stop. */
  updateSpec(spec: ProcessSpec): void {
    if (spec.id !== this.id) throw new Error(`Assertion failed: updateSpec changes the id of process "${this.id}" to "${spec.id}"`);
    this.#spec = spec;
    this.#processLog?.updateLimits({maxBytes: spec.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES, files: spec.logFiles ?? DEFAULT_LOG_FILES, lines: spec.outputLines});
  }

  get state(): ProcessState {
    return this.#state;
  }

  get pid(): number | undefined {
    return this.#pid;
  }

  get pgid(): number | undefined {
    return this.#pgid;
  }

  /** When the running process was started (ms since the epoch); for an adopted one, when it was recorded as started. */
  get startedAt(): number | undefined {
    return this.#startedAt;
  }

  /**
   * A process that replaces this instance (restart, memory or liveness restart) continues its counts:
   * status keeps counting the instance's restarts, memory and liveness restarts across replacements. Call before starting it.
   */
  continueCountsOf(previous: ManagedProcess): void {
    this.#restarts = previous.#restarts;
    this.#memoryRestarts = previous.#memoryRestarts;
    this.#livenessRestarts = previous.#livenessRestarts;
    this.#lastMemoryRestartAt = previous.#lastMemoryRestartAt;
  }

  /** Start time of the running process (clock ticks after boot, from /proc): with the pid, its identity. */
  get startTime(): number | undefined {
    if (this.#startTime === undefined && this.#pid !== undefined && this.#state === `running`) this.#startTime = readProcStat(this.#pid)?.startTime;
    return this.#startTime;
  }

  /** True once the process crashed more often than `restart` allows and is no longer restarted (a crash loop); a deliberate start clears it. */
  get restartLimitReached(): boolean {
    return this.#restartLimitReached;
  }

  /** True while the running process is one a previous daemon started (re-adopted after a restart of the daemon). */
  get adopted(): boolean {
    return this.#adopted;
  }

  /**
   * Supervises a process a previous daemon started (product §5.8): it is not our child, so its exit is
   * found by polling /proc for the pid with the recorded start time (a zombie or a recycled pid counts
   * as exited; the exit code is unknown). From then on it behaves like a spawned process: stop() stops
   * its group, an unexpected exit is restarted by the restart policy.
   */
  adopt(recorded: {pid: number; pgid: number; startTime: number; startedAt: string; restarts: number}, pollMs = ADOPTED_POLL_INTERVAL_MS): void {
    if (this.#state !== `stopped` && this.#state !== `failed`) throw new Error(`Assertion failed: adopt() on process "${this.id}" in state ${this.#state}`);
    this.#pid = recorded.pid;
    this.#pgid = recorded.pgid;
    this.#quiet = undefined;
    this.#startTime = recorded.startTime;
    this.#startedAt = Date.parse(recorded.startedAt) || Date.now();
    this.#restarts = recorded.restarts;
    this.#intentional = false;
    this.#adopted = true;
    this.#state = `running`;
    let resolveExited: () => void = () => undefined;
    this.#childExited = new Promise<void>((resolve) => {
      resolveExited = resolve;
    });
    const check = (): void => {
      const stat = readProcStat(recorded.pid);
      if (stat !== null && stat.startTime === recorded.startTime && isLiveProcess(stat)) return;
      clearInterval(this.#adoptedPoll);
      this.#adoptedPoll = undefined;
      this.#handleExit(undefined, null, null);
      resolveExited();
    };
    this.#adoptedPoll = setInterval(check, pollMs);
    this.#adoptedPoll.unref();
    this.#log.info(`process adopted`, {id: this.id, pid: recorded.pid});
    // Its output went on into the log files while no daemon ran: show their tail, then follow them.
    this.#processLog?.primeFromFile();
    check();
  }

  /**
   * Spawns the process; resolves once it runs. A spawn failure rejects with ERR_PROCESS_SPAWN_FAILED
   * and leaves the state `failed`. Starting a running process does nothing; starting a stopping one
   * waits for the stop first.
   */
  async start(reason: StartReason): Promise<void> {
    if (this.#stopPromise) await this.#stopPromise.catch(() => undefined);
    if (this.#startPromise) return this.#startPromise;
    if (this.#state === `running`) return;
    this.#cancelRestart();
    // A deliberate start gives the process a fresh restart budget.
    if (reason === `manual` || reason === `deploy`) {
      this.#restartHistory = [];
      this.#restartLimitReached = false;
    }
    // Without a notify socket the spawn starts synchronously, as it always did.
    const spawned = this.#spec.notifySocketPath === undefined ? this.#spawn(reason) : this.#openNotifySocket().then(() => this.#spawn(reason));
    this.#startPromise = spawned.finally(() => {
      this.#startPromise = undefined;
    });
    return this.#startPromise;
  }

  /**
   * Runs the quiet command now, when the process should stop taking new work (its release starts
   * draining), once per run of the process: the stop that follows waits for it instead of running it
   * again. Resolves when it finished or timed out; without a quietCommand, or when the process does
   * not run, at once. Never rejects.
   */
  quiet(): Promise<void> {
    if (this.#state !== `running` || this.#pgid === undefined) return Promise.resolve();
    return this.#quietOnce(this.#pgid);
  }

  /** Stops gracefully; idempotent (callers share one promise while stopping). Hook failures are logged, never thrown. */
  stop(): Promise<void> {
    this.#stopPromise ??= this.#stop().finally(() => {
      this.#stopPromise = undefined;
    });
    return this.#stopPromise;
  }

  /**
   * Stops supervising without stopping the process (another daemon took it over): no restart, no
   * polling; the process keeps running, its output keeps going to its log files.
   */
  detach(): void {
    this.#intentional = true;
    this.#cancelRestart();
    if (this.#adoptedPoll !== undefined) clearInterval(this.#adoptedPoll);
    this.#adoptedPoll = undefined;
    this.#closeNotifySocket();
    this.#child?.unref();
  }

  /** Calls `listener` at every exit of the shell wrapper; returns the unsubscribe function. */
  onExit(listener: (exit: ProcessExit) => void): () => void {
    this.#exitListeners.add(listener);
    return () => {
      this.#exitListeners.delete(listener);
    };
  }

  /**
   * Resolves once the running process sent READY=1 on its NOTIFY_SOCKET (at once if it did already);
   * aborting rejects with the signal's reason. Only for a process with spec.notifySocketPath.
   */
  waitForNotifyReady(signal?: AbortSignal): Promise<void> {
    if (!this.#notify) return Promise.reject(new Error(`Assertion failed: process "${this.id}" has no notify socket (state ${this.#state})`));
    return this.#notify.waitForReady(signal);
  }

  /** What the process said on its NOTIFY_SOCKET in its current (or last) run; undefined without one. */
  get notifyState(): NotifyState | undefined {
    return this.#notify?.state ?? this.#notifyState;
  }

  /** Resolves at the next exit of the shell wrapper. */
  waitForExit(): Promise<ProcessExit> {
    return new Promise((resolve) => {
      const unsubscribe = this.onExit((exit) => {
        unsubscribe();
        resolve(exit);
      });
    });
  }

  /** The latest memory sample of the process group (the memory watchdog feeds it); shown in status while running. */
  recordMemory(sample: {rssBytes: number; children: Array<{command: string; pid: number; rssBytes?: number}>} | undefined): void {
    this.#memory = sample;
  }

  /** The latest liveness outcome (the liveness check feeds it); shown in status. */
  recordLiveness(view: Omit<LivenessStatusView, `restarts`>): void {
    this.#liveness = view;
  }

  recentOutput(): OutputLine[] {
    return this.#processLog?.recentOutput() ?? [];
  }

  /** The log files and their follower (undefined without `logPaths`); an adopted process is primed from them. */
  get processLog(): ProcessLog | undefined {
    return this.#processLog;
  }

  /** Upstream's ProcessStatus shape (status JSON), plus `port`; undefined keys are left out of the JSON. */
  status(usage?: ProcessUsage): ProcessStatusView {
    const running = this.#state === `running`;
    return {
      id: this.id,
      command: this.#spec.command,
      cwd: this.#spec.cwd,
      state: this.#state,
      pid: this.#pid,
      port: this.#spec.port,
      startedAt: this.#startedAt === undefined ? undefined : isoTime(this.#startedAt),
      uptimeMs: running && this.#startedAt !== undefined ? Date.now() - this.#startedAt : undefined,
      lastStartReason: this.#lastStartReason,
      exitCode: this.#exitCode,
      exitSignal: this.#exitSignal,
      restarts: this.#restarts,
      memoryRestarts: this.#memoryRestarts,
      lastMemoryRestartAt: this.#lastMemoryRestartAt,
      children: running && this.#memory ? this.#memory.children : [],
      ...(running && usage ? {rssBytes: usage.rssBytes, cpuPercent: usage.cpuPercent, cpuWindowMs: usage.cpuWindowMs} : running && this.#memory ? {rssBytes: this.#memory.rssBytes} : {}),
      ...(this.#liveness ? {liveness: {...this.#liveness, restarts: this.#livenessRestarts}} : {}),
      ...(this.notifyState ? {notify: this.notifyState} : {}),
      ...(this.#adopted ? {adopted: true} : {}),
      logs: this.recentOutput(),
      ...(this.#processLog ? {logPaths: {...this.#processLog.paths}} : {}),
    };
  }

  /** A fresh NOTIFY_SOCKET for each run, bound before the spawn so the process can notify at once. */
  async #openNotifySocket(): Promise<void> {
    const socketPath = this.#spec.notifySocketPath;
    this.#closeNotifySocket();
    if (socketPath === undefined) return;
    this.#notifyState = undefined;
    this.#state = `starting`;
    try {
      this.#notify = await NotifySocket.open({socketPath, processId: this.id, log: this.#log, processGroup: () => this.#pgid});
    } catch (error) {
      this.#state = `failed`;
      throw error;
    }
  }

  #closeNotifySocket(): void {
    if (!this.#notify) return;
    this.#notifyState = this.#notify.state;
    this.#notify.close();
    this.#notify = undefined;
  }

  #spawn(reason: StartReason): Promise<void> {
    const spec = this.#spec;
    this.#intentional = false;
    this.#state = `starting`;
    return new Promise<void>((resolve, reject) => {
      const fail = (error: unknown): void => {
        this.#state = `failed`;
        this.#child = undefined;
        reject(new RollbridgeError(`ERR_PROCESS_SPAWN_FAILED`, `Process "${spec.id}" could not be started in ${spec.cwd}: ${errorText(error)}`, {
          fix: `Create ${spec.cwd} or correct processes[].cwd of process "${spec.processId}" in the config`,
          details: {id: spec.id, processId: spec.processId, cwd: spec.cwd, reason},
          cause: error,
        }));
      };
      let fds: ProcessLogFds | undefined;
      try {
        fds = this.#processLog?.open();
      } catch (error) {
        this.#state = `failed`;
        reject(error);
        return;
      }
      // The child holds its own copies of the descriptors once spawned (or failed to).
      const closeFds = (): void => {
        if (fds) closeLogFds(fds);
        fds = undefined;
      };
      let child: ChildProcess;
      try {
        child = spawn(`/bin/sh`, [`-c`, toShellScript(spec.command)], {cwd: spec.cwd, env: spec.env, detached: true, stdio: [`ignore`, fds?.stdout ?? `ignore`, fds?.stderr ?? `ignore`]});
      } catch (error) {
        closeFds();
        fail(error);
        return;
      }
      this.#child = child;
      let spawned = false;
      let resolveExited: () => void = () => undefined;
      this.#childExited = new Promise<void>((resolveExit) => {
        resolveExited = resolveExit;
      });
      child.on(`error`, (error) => {
        if (!spawned) {
          closeFds();
          fail(error);
          resolveExited();
          return;
        }
        this.#log.warn(`process signal failed`, {id: spec.id, pid: child.pid, err: error});
      });
      child.once(`spawn`, () => {
        spawned = true;
        closeFds();
        this.#processLog?.follow();
        const pid = child.pid as number;
        this.#pid = pid;
        this.#pgid = pid;
        this.#quiet = undefined;
        this.#startedAt = Date.now();
        this.#lastStartReason = reason;
        if (reason === `liveness`) this.#livenessRestarts += 1;
        if (reason === `memory`) {
          this.#memoryRestarts += 1;
          this.#lastMemoryRestartAt = isoTime(this.#startedAt);
        }
        this.#state = `running`;
        this.#log.info(`process started`, {id: spec.id, pid, reason});
        resolve();
      });
      child.once(`exit`, (code, signal) => {
        if (!spawned) return;
        this.#handleExit(child, code, signal);
        resolveExited();
      });
    });
  }

  #handleExit(child: ChildProcess | undefined, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.#child) return;
    this.#adopted = false;
    this.#startTime = undefined;
    // Everything the shell wrote is in the files by now. During stop() the follow goes on: descendants
    // may still write while the stop waits for the group.
    this.#processLog?.flush();
    if (this.#state !== `stopping`) this.#processLog?.unfollow();
    const intentional = this.#intentional;
    this.#child = undefined;
    this.#pid = undefined;
    this.#pgid = undefined;
    this.#exitCode = code;
    this.#exitSignal = signal;
    this.#closeNotifySocket();
    if (intentional) this.#log.info(`process exited`, {id: this.id, code, signal});
    else this.#log.warn(`process exited`, {id: this.id, code, signal});
    // During stop() the state stays `stopping` until the whole group is gone.
    if (this.#state !== `stopping`) this.#state = intentional ? `stopped` : `failed`;
    const exit: ProcessExit = {code, signal, intentional};
    for (const listener of [...this.#exitListeners]) {
      try {
        listener(exit);
      } catch (error) {
        // A failing listener must not cost the process its restart.
        this.#log.error(`process exit listener failed`, {id: this.id, err: error});
      }
    }
    if (!intentional) this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    if (!this.#shouldRestart()) return;
    const {restart, restartDelayMs} = this.#spec;
    const plan = planRestart({restart, restartDelayMs, history: this.#restartHistory, now: Date.now()});
    this.#restartHistory = plan.history;
    if (plan.delayMs === null) {
      this.#restartLimitReached = true;
      this.#log.error(`restart limit reached`, {id: this.id, maxRestarts: restart.maxRestarts, windowMs: restart.windowMs});
      return;
    }
    this.#log.warn(`process restart scheduled`, {id: this.id, delayMs: plan.delayMs});
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      void this.#restartAfterCrash();
    }, plan.delayMs);
    this.#restartTimer.unref();
  }

  async #restartAfterCrash(): Promise<void> {
    if (this.#intentional || this.#state !== `failed` || !this.#shouldRestart()) return;
    this.#restarts += 1;
    try {
      await this.start(`crash`);
    } catch (error) {
      // Upstream gave up here because no exit event follows a failed spawn; keep trying with the backoff.
      this.#log.error(`process restart failed`, {id: this.id, err: error});
      this.#scheduleRestart();
    }
  }

  #cancelRestart(): void {
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
  }

  async #stop(): Promise<void> {
    this.#intentional = true;
    this.#cancelRestart();
    if (this.#startPromise) await this.#startPromise.catch(() => undefined);
    const pgid = this.#pgid;
    if (this.#state !== `running` || pgid === undefined) {
      this.#state = `stopped`;
      return;
    }
    const spec = this.#spec;
    const {lifecycle} = spec;
    const exited = this.#childExited;
    const hookTimeoutMs = hookTimeoutOf(spec);
    this.#state = `stopping`;
    try {
      await this.#quietOnce(pgid);
      if (lifecycle.drainTimeoutMs > 0 && isProcessGroupAlive(pgid)) {
        if (lifecycle.drainCommand) await this.#runHook(`drain command`, lifecycle.drainCommand, lifecycle.drainTimeoutMs, pgid);
        else await waitAtMost(exited, lifecycle.drainTimeoutMs);
      }
      if (isProcessGroupAlive(pgid)) {
        if (lifecycle.stopCommand) await this.#runHook(`stop command`, lifecycle.stopCommand, hookTimeoutMs, pgid);
        else signalGroup(pgid, spec.stopSignal, spec.id);
        const limitMs = spec.gracefulStopMs === `indefinite` ? Infinity : spec.gracefulStopMs;
        if (!await waitForGroupExit(pgid, limitMs)) {
          this.#log.warn(`process stop timed out; sending SIGKILL`, {id: spec.id, pid: pgid});
          signalGroup(pgid, `SIGKILL`, spec.id);
          await waitForGroupExit(pgid, SIGKILL_WAIT_MS);
        }
      }
      await exited;
    } catch (error) {
      if (this.#child === undefined) this.#state = `stopped`;
      else this.#state = `running`;
      throw error;
    }
    this.#processLog?.flush();
    this.#processLog?.unfollow();
    this.#state = `stopped`;
  }

  #quietOnce(pgid: number): Promise<void> {
    const command = this.#spec.lifecycle.quietCommand;
    if (!command) return Promise.resolve();
    if (this.#quiet?.pgid !== pgid) this.#quiet = {pgid, done: this.#runHook(`quiet command`, command, hookTimeoutOf(this.#spec), pgid)};
    return this.#quiet.done;
  }

  /** Runs a lifecycle hook of this process (see runLifecycleHook); never rejects. */
  #runHook(label: LifecycleHookLabel, command: string, timeoutMs: number, pgid: number): Promise<void> {
    const spec = this.#spec;
    return runLifecycleHook({label, command, id: spec.id, cwd: spec.cwd, env: spec.env, pgid, timeoutMs, processLog: this.#processLog, log: this.#log});
  }
}

/** The limit of the quiet and stop commands: gracefulStopMs, or the upstream value when that is `indefinite`. */
function hookTimeoutOf(spec: ProcessSpec): number {
  return spec.gracefulStopMs === `indefinite` ? INDEFINITE_HOOK_TIMEOUT_MS : spec.gracefulStopMs;
}

/** Sends `signal` to the whole group; a group already gone (ESRCH) is fine. */
function signalGroup(pgid: number, signal: NodeJS.Signals, id: string): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === `ESRCH`) return;
    throw new RollbridgeError(`ERR_PROCESS_STOP_FAILED`, `Sending ${signal} to process group ${pgid} of process "${id}" failed: ${code ?? errorText(error)}`, {
      fix: `Run the daemon as the user that owns process group ${pgid}, or stop it by hand (kill -${signal} -- -${pgid})`,
      details: {id, pgid, signal, code},
      cause: error,
    });
  }
}

/** Polls group liveness (zombies count as gone); true once no live member is left, false at the limit. */
async function waitForGroupExit(pgid: number, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (isProcessGroupAlive(pgid)) {
    if (Date.now() >= deadline) return false;
    await delay(GROUP_POLL_INTERVAL_MS);
  }
  return true;
}

/** Waits for `promise` or `ms`, whichever comes first, without leaving a timer behind. */
async function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  const controller = new AbortController();
  const timer = delay(ms, undefined, {signal: controller.signal}).catch(() => undefined);
  await Promise.race([promise, timer]);
  controller.abort();
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
