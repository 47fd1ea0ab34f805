// Starts scripts/bench/load-client.ts as a separate Node process and exchanges JSON lines with it.
import type {ChildProcess} from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import {spawnTracked, stopChild} from './tracked-children.ts';

const LOAD_CLIENT = path.join(import.meta.dirname, `load-client.ts`);

export type LoadEvent = {event: string; [key: string]: unknown};

export class LoadProcess {
  readonly child: ChildProcess;
  readonly #events: LoadEvent[] = [];
  readonly #waiters: Array<{event: string; resolve: (value: LoadEvent) => void}> = [];
  #stderr = ``;
  readonly #exited: Promise<void>;

  private constructor(child: ChildProcess) {
    this.child = child;
    readline.createInterface({input: child.stdout!}).on(`line`, (line) => {
      let event: LoadEvent;
      try {
        event = JSON.parse(line) as LoadEvent;
      } catch {
        event = {event: `output`, line};
      }
      const waiter = this.#waiters.find((w) => w.event === event.event);
      if (waiter) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(event);
      } else {
        this.#events.push(event);
      }
    });
    child.stderr!.setEncoding(`utf8`).on(`data`, (chunk: string) => (this.#stderr += chunk));
    this.#exited = new Promise((resolve) => child.once(`exit`, () => resolve()));
  }

  /** `args` are load-client.ts arguments; `nofile` raises its open-files limit. */
  static start(args: string[], options: {nofile?: number} = {}): LoadProcess {
    const argv = [process.execPath, LOAD_CLIENT, ...args];
    const child = options.nofile
      ? spawnTracked(`bash`, [`-c`, `ulimit -n ${options.nofile} && exec "$@"`, `bash`, ...argv], {stdio: [`pipe`, `pipe`, `pipe`]})
      : spawnTracked(argv[0]!, argv.slice(1), {stdio: [`pipe`, `pipe`, `pipe`]});
    return new LoadProcess(child);
  }

  /**
   * The oldest event named `event` not returned yet (waiting for it if none arrived); rejects if the
   * process exits first or after `timeoutMs`.
   */
  waitFor<T extends LoadEvent = LoadEvent>(event: string, timeoutMs: number): Promise<T> {
    const seen = this.#events.findIndex((e) => e.event === event);
    if (seen !== -1) return Promise.resolve(this.#events.splice(seen, 1)[0] as T);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`The load client sent no "${event}" within ${timeoutMs} ms; stderr: ${this.#stderr.trim().slice(-500)}`)), timeoutMs);
      this.#waiters.push({event, resolve: (value) => {
        clearTimeout(timer);
        resolve(value as T);
      }});
      void this.#exited.then(() => setTimeout(() => {
        clearTimeout(timer);
        reject(new Error(`The load client exited (${String(this.child.exitCode ?? this.child.signalCode)}) before "${event}"; stderr: ${this.#stderr.trim().slice(-500)}`));
      }, 100));
    });
  }

  send(command: string): void {
    if (this.child.stdin?.writable) this.child.stdin.write(`${command}\n`);
  }

  /** Asks the client to stop and returns its result. */
  async finish<T extends LoadEvent>(timeoutMs = 30_000): Promise<T> {
    this.send(`stop`);
    return this.waitFor<T>(`result`, timeoutMs);
  }

  async kill(): Promise<void> {
    await stopChild(this.child, 2_000);
  }
}
