import type {Logger} from '../log/logger.ts';
import {hasTrafficState, listPendingProcesses, listStateProcesses, writeStateFile} from '../state/state-file.ts';
import type {DaemonState} from '../state/state-file.ts';
import {fsAsync} from '../util/fs-async.ts';

// Changes are looked for this often; a write happens only when something changed (or REFRESH_MS passed).
const CHECK_INTERVAL_MS = 500;
const REFRESH_MS = 60_000;

/**
 * Keeps the state file current: `persist()` after every deploy, rollback, stop or restart, a check
 * for changes (a crash restart's new pid) every 500 ms, and a periodic rewrite. Writes are
 * serialized; a failed write is logged and retried at the next check.
 */
export class StateKeeper {
  readonly #path: string;
  readonly #build: () => DaemonState;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();
  #lastContent: string | undefined;
  #lastWriteAt = 0;
  #failed = false;
  #stopped = false;

  constructor(options: {path: string; build: () => DaemonState; log: Logger}) {
    this.#path = options.path;
    this.#build = options.build;
    this.#log = options.log;
  }

  get path(): string {
    return this.#path;
  }

  start(): void {
    this.#timer = setInterval(() => void this.persist(), CHECK_INTERVAL_MS);
    this.#timer.unref();
    void this.persist();
  }

  /** Writes the current state if it changed since the last successful write; a failure is logged and retried later. */
  persist(): Promise<void> {
    if (this.#stopped) return this.#chain;
    this.#chain = this.#chain.then(() => this.#write(false));
    return this.#chain;
  }

  /** Writes the state now even if it did not change (another writer, such as a 0.1 daemon, replaced or removed the file). */
  rewrite(): Promise<void> {
    if (this.#stopped) return this.#chain;
    this.#chain = this.#chain.then(() => this.#write(true));
    return this.#chain;
  }

  /**
   * Write-ahead: resolves once the file holds the state as it is now (or later), fsynced; rejects with
   * ERR_STATE_WRITE_FAILED when that write fails, so the caller does not act on an unrecorded change.
   * After release() (a successor owns the file) it does nothing.
   */
  commit(): Promise<void> {
    if (this.#stopped) return this.#chain;
    const write = this.#chain.then(() => this.#write(false, true));
    this.#chain = write.catch(() => undefined);
    return write;
  }

  /**
   * Final write at a clean shutdown: with no process left running and no pause or maintenance the file
   * is removed (nothing to re-adopt); otherwise the survivors stay recorded for `recover`, and the
   * traffic state for the next daemon. Stops the checks.
   */
  async finish(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#stopped = true;
    await this.#chain;
    const state = this.#build();
    if (listStateProcesses(state).length === 0 && listPendingProcesses(state).length === 0 && !hasTrafficState(state)) {
      await fsAsync.rm(this.#path, {force: true});
      return;
    }
    await this.#write(true);
  }

  /** Stops writing without touching the file (a successor daemon owns it from now on). */
  async release(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#stopped = true;
    await this.#chain;
  }

  async #write(force: boolean, strict = false): Promise<void> {
    const state = this.#build();
    const content = JSON.stringify({...state, writtenAt: ``});
    const now = Date.now();
    if (!force && content === this.#lastContent && now - this.#lastWriteAt < REFRESH_MS) return;
    try {
      await writeStateFile(this.#path, state);
      this.#lastContent = content;
      this.#lastWriteAt = now;
      if (this.#failed) this.#log.info(`state persisted again`, {statePath: this.#path});
      this.#failed = false;
    } catch (error) {
      // Logged once per failure streak; the next check retries.
      if (!this.#failed) this.#log.error(`state persist failed`, {statePath: this.#path, err: error});
      this.#failed = true;
      if (strict) throw error;
    }
  }
}
