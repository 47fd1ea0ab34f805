import type {MemoryConfig} from '../config/types.ts';
import type {Logger} from '../log/logger.ts';
import {readProcessGroupMemory} from '../system/proc.ts';
import type {ManagedProcess} from './managed-process.ts';

/**
 * Samples the RSS of a process's whole group every `checkIntervalMs` (first sample after one interval),
 * feeds it to the process's status, warns once above `warnBytes` (again after it dropped below), and
 * calls `onLimit` above `limitBytes`. No new sample is taken while `onLimit` runs.
 */
export class MemoryWatchdog {
  readonly #process: ManagedProcess;
  readonly #memory: MemoryConfig;
  readonly #log: Logger;
  readonly #onLimit: (rssBytes: number) => Promise<void>;
  #timer: NodeJS.Timeout | undefined;
  #warned = false;
  #handling = false;

  constructor(options: {process: ManagedProcess; memory: MemoryConfig; log: Logger; onLimit: (rssBytes: number) => Promise<void>}) {
    this.#process = options.process;
    this.#memory = options.memory;
    this.#log = options.log;
    this.#onLimit = options.onLimit;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.#check(), this.#memory.checkIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    const pgid = this.#process.pgid;
    if (this.#handling || this.#process.state !== `running` || pgid === undefined) return;
    const sample = readProcessGroupMemory(pgid);
    if (!sample) return;
    this.#process.recordMemory({rssBytes: sample.rssBytes, children: sample.members});
    const {limitBytes, warnBytes} = this.#memory;
    if (sample.rssBytes > limitBytes) {
      this.#log.warn(`memory limit exceeded`, {id: this.#process.id, rssBytes: sample.rssBytes, limitBytes});
      this.#handling = true;
      this.#onLimit(sample.rssBytes)
        .catch((error: unknown) => this.#log.error(`memory restart failed`, {id: this.#process.id, err: error}))
        .finally(() => {
          this.#handling = false;
          this.#warned = false;
        });
      return;
    }
    if (warnBytes > 0 && sample.rssBytes > warnBytes) {
      if (!this.#warned) this.#log.warn(`memory warning`, {id: this.#process.id, rssBytes: sample.rssBytes, warnBytes});
      this.#warned = true;
    } else {
      this.#warned = false;
    }
  }
}
