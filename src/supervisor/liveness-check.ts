import type {LivenessConfig} from '../config/types.ts';
import type {LivenessStatusView} from '../control/protocol.ts';
import type {Logger} from '../log/logger.ts';
import type {ManagedProcess} from './managed-process.ts';
import {describeReadinessCheck, probeCheck} from './readiness.ts';
import type {CheckResult, ProbeCheck, ReadinessTarget} from './readiness.ts';
import {isoTime} from '../util/iso-time.ts';

/** Why a process is replaced: the failed check, the last probe's error and the process's last output lines. */
export type LivenessFailure = {check: string; failures: number; lastError: string; output: string[]};

/**
 * Probes a running process every `intervalMs` (first probe one interval after it starts) while
 * `isWatched()` says so (the proxied process only once its release is active: a starting release is
 * judged by its health check), feeds the outcome to the process's status, and calls `onFailed` after
 * `failureThreshold` failures in a row. No probe runs while `onFailed` does (the replacement waits
 * in the deploy queue), and the count starts over after it. Probes never overlap.
 */
export class LivenessCheck {
  readonly #process: ManagedProcess;
  readonly #check: ProbeCheck;
  readonly #liveness: LivenessConfig;
  readonly #target: () => ReadinessTarget;
  readonly #isWatched: () => boolean;
  readonly #log: Logger;
  readonly #onFailed: (failure: LivenessFailure) => Promise<void>;
  #timer: NodeJS.Timeout | undefined;
  #controller = new AbortController();
  #stopped = true;
  #failures = 0;

  constructor(options: {process: ManagedProcess; check: ProbeCheck; liveness: LivenessConfig; target: () => ReadinessTarget; isWatched: () => boolean; log: Logger; onFailed: (failure: LivenessFailure) => Promise<void>}) {
    this.#process = options.process;
    this.#check = options.check;
    this.#liveness = options.liveness;
    this.#target = options.target;
    this.#isWatched = options.isWatched;
    this.#log = options.log;
    this.#onFailed = options.onFailed;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#controller = new AbortController();
    // Status shows the check (pending) from the start, with the instance's liveness restarts.
    this.#failures = 0;
    this.#record(`pending`);
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#controller.abort();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#tick(), this.#liveness.intervalMs);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    if (this.#process.state !== `running` || !this.#isWatched()) {
      // A restart or a new release starts the count over.
      if (this.#failures > 0 || this.#process.status().liveness?.state !== `pending`) this.#record(`pending`);
      this.#failures = 0;
      this.#schedule();
      return;
    }
    const target = this.#target();
    const pid = this.#process.pid;
    let result: CheckResult;
    try {
      result = await probeCheck(this.#check, target, this.#liveness.probeTimeoutMs, this.#controller.signal);
    } catch {
      return; // stopped while probing
    }
    // The process was restarted or stopped while the probe ran: the result says nothing about the new one.
    if (this.#stopped || this.#process.pid !== pid || this.#process.state !== `running`) {
      this.#schedule();
      return;
    }
    if (result.ok) {
      this.#failures = 0;
      this.#record(`passing`);
      this.#schedule();
      return;
    }
    this.#failures += 1;
    this.#record(`failing`, result.error);
    if (this.#failures < this.#liveness.failureThreshold) {
      this.#log.warn(`liveness check failed`, {id: this.#process.id, pid, failures: this.#failures, failureThreshold: this.#liveness.failureThreshold, error: result.error});
      this.#schedule();
      return;
    }
    const failure: LivenessFailure = {
      check: describeReadinessCheck(this.#check, target),
      failures: this.#failures,
      lastError: result.error,
      output: this.#process.recentOutput().slice(-10).map((line) => line.line),
    };
    this.#log.warn(`liveness failed`, {id: this.#process.id, pid, ...failure, failureThreshold: this.#liveness.failureThreshold});
    try {
      await this.#onFailed(failure);
    } catch (error) {
      this.#log.error(`liveness replacement failed`, {id: this.#process.id, pid, err: error});
    }
    this.#failures = 0;
    if (!this.#stopped) this.#record(`pending`);
    this.#schedule();
  }

  #record(state: LivenessStatusView[`state`], lastError?: string): void {
    this.#process.recordLiveness({
      state,
      consecutiveFailures: this.#failures,
      failureThreshold: this.#liveness.failureThreshold,
      ...(state === `pending` ? {} : {lastCheckedAt: isoTime()}),
      ...(lastError !== undefined ? {lastError} : {}),
    });
  }
}
