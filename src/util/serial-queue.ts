/** Runs tasks one at a time, in arrival order. `isBusy` lets callers fail fast instead of queueing. */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  get isBusy(): boolean {
    return this.#pending > 0;
  }

  /** Tasks running or waiting: how many a task queued now waits behind. */
  get size(): number {
    return this.#pending;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    this.#pending += 1;
    const result = this.#tail.then(task, task);
    this.#tail = result.then(() => undefined, () => undefined).finally(() => {
      this.#pending -= 1;
    });
    return result;
  }
}
