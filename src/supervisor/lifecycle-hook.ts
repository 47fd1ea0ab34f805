import {spawn} from 'node:child_process';
import type {ChildProcess} from 'node:child_process';
import type {Readable} from 'node:stream';
import {HOOK_OUTPUT_LINES} from '../config/defaults.ts';
import type {Logger} from '../log/logger.ts';
import type {OutputStream} from './output-buffer.ts';
import type {ProcessLog} from './process-log.ts';

export type LifecycleHookLabel = `quiet command` | `drain command` | `stop command`;

// After the hook exits, how long its output pipes may stay open (a background child of the hook holds
// them) before the rest is dropped.
const OUTPUT_CLOSE_GRACE_MS = 200;
// A longer line is cut in the log file and the event (the hook's own output, not the app's).
const MAX_HOOK_LINE_CHARS = 8 * 1024;

export type LifecycleHookOptions = {
  label: LifecycleHookLabel;
  command: string;
  /** Instance id of the process the hook belongs to (`worker#0`), in every event. */
  id: string;
  cwd: string;
  /** The process's environment; `ROLLBRIDGE_PID` is added. */
  env: Record<string, string>;
  /** The process group of the process (its pid when the command was exec'd). */
  pgid: number;
  timeoutMs: number;
  /** Where the hook's output goes, each line prefixed `[<label>] `; absent: only the events keep it. */
  processLog: ProcessLog | undefined;
  log: Logger;
};

/**
 * Runs a lifecycle hook (`quietCommand`, `drainCommand`, `stopCommand`) through `/bin/sh -c` in its own
 * process group, to completion or `timeoutMs` (then SIGKILL to its group). Its stdout and stderr go to
 * the process's log files as `[<label>] <line>` (so `rollbridge logs` shows them beside the app's
 * output), and a failure's event (`<label> exited non-zero`, `… exited on signal`, `… timed out`,
 * `… failed`) carries its last lines as `output`. Never rejects: every failure is logged and the stop
 * goes on (upstream §4.5).
 */
export function runLifecycleHook(options: LifecycleHookOptions): Promise<void> {
  const {label, id, log, timeoutMs} = options;
  return new Promise<void>((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const output = new HookOutput(label, options.processLog);
    const settle = (): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      resolve();
    };
    let hook: ChildProcess;
    try {
      hook = spawn(`/bin/sh`, [`-c`, options.command], {cwd: options.cwd, env: {...options.env, ROLLBRIDGE_PID: String(options.pgid)}, detached: true, stdio: [`ignore`, `pipe`, `pipe`]});
    } catch (error) {
      log.warn(`${label} failed`, {id, err: error});
      settle();
      return;
    }
    output.attach(`stdout`, hook.stdout);
    output.attach(`stderr`, hook.stderr);
    let timedOut = false;
    hook.once(`error`, (error) => {
      output.finish();
      log.warn(`${label} failed`, {id, err: error, output: output.lastLines()});
      settle();
    });
    hook.once(`spawn`, () => {
      timer = setTimeout(() => {
        timedOut = true;
        if (hook.pid !== undefined) killGroupQuietly(hook.pid);
      }, timeoutMs);
    });
    hook.once(`exit`, (code, signal) => {
      void output.closed(hook).then(() => {
        const lines = output.lastLines();
        if (timedOut) log.warn(`${label} timed out`, {id, timeoutMs, output: lines});
        else if (signal !== null) log.warn(`${label} exited on signal`, {id, signal, output: lines});
        else if (code !== 0) log.warn(`${label} exited non-zero`, {id, code, output: lines});
        settle();
      });
    });
  });
}

/** A hook's output: split into lines per stream, appended to the process log, the last ones kept. */
class HookOutput {
  readonly #prefix: string;
  readonly #processLog: ProcessLog | undefined;
  readonly #partial: Record<OutputStream, string> = {stdout: ``, stderr: ``};
  readonly #last: string[] = [];

  constructor(label: LifecycleHookLabel, processLog: ProcessLog | undefined) {
    this.#prefix = `[${label}] `;
    this.#processLog = processLog;
  }

  attach(stream: OutputStream, readable: Readable | null): void {
    readable?.setEncoding(`utf8`);
    readable?.on(`data`, (chunk: string) => {
      const parts = (this.#partial[stream] + chunk).split(`\n`);
      this.#partial[stream] = parts.pop() ?? ``;
      this.#add(stream, parts);
    });
    readable?.on(`error`, () => undefined);
  }

  /** Waits for the pipes to close (bounded), then completes the unterminated last lines. */
  async closed(hook: ChildProcess): Promise<void> {
    if (hook.stdout?.readableEnded !== true || hook.stderr?.readableEnded !== true) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, OUTPUT_CLOSE_GRACE_MS);
        hook.once(`close`, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    hook.stdout?.destroy();
    hook.stderr?.destroy();
    this.finish();
  }

  finish(): void {
    for (const stream of [`stdout`, `stderr`] as const) {
      const rest = this.#partial[stream];
      this.#partial[stream] = ``;
      this.#add(stream, [rest]);
    }
  }

  lastLines(): string[] {
    return [...this.#last];
  }

  #add(stream: OutputStream, parts: string[]): void {
    const lines = parts
      .map((part) => (part.endsWith(`\r`) ? part.slice(0, -1) : part))
      .filter((line) => line.length > 0)
      .map((line) => (line.length > MAX_HOOK_LINE_CHARS ? `${line.slice(0, MAX_HOOK_LINE_CHARS)}… [${line.length - MAX_HOOK_LINE_CHARS} more characters]` : line));
    if (lines.length === 0) return;
    this.#processLog?.appendLines(stream, lines.map((line) => this.#prefix + line));
    this.#last.push(...lines);
    if (this.#last.length > HOOK_OUTPUT_LINES) this.#last.splice(0, this.#last.length - HOOK_OUTPUT_LINES);
  }
}

/** SIGKILL to a whole group; one already gone is fine. */
export function killGroupQuietly(pgid: number): void {
  try {
    process.kill(-pgid, `SIGKILL`);
  } catch {
    // Already gone.
  }
}
