import {formatDuration} from './render.ts';

type Terminal = {write(chunk: string): unknown; isTTY?: boolean; columns?: number};

/** How often the elapsed time on a terminal's wait line is redrawn (≤ 4 times a second). */
const REDRAW_INTERVAL_MS = 250;
/** Clears the line the cursor is on and returns to its start. */
const CLEAR_LINE = `\r\x1b[2K`;

/**
 * The phase lines of a deploy, rollback or restart as an operator reads them. A wait (`waiting`,
 * `watching`) is printed as it starts; on a terminal its line then carries a live elapsed time, redrawn
 * in place, until the next line (which ends the wait) replaces it with the plain line. Anywhere else it
 * is printed once, without control sequences, so a log shows the start line and then the line that
 * ended the wait. `end()` settles a live line before anything else is written.
 */
export class ProgressLines {
  readonly #out: Terminal;
  readonly #live: boolean;
  #wait: {text: string; startedAt: number; timer: NodeJS.Timeout} | null = null;

  constructor(out: Terminal) {
    this.#out = out;
    this.#live = out.isTTY === true;
  }

  /** Prints one phase line; `isWait` starts a live counter on it (on a terminal). */
  write(text: string, isWait: boolean): void {
    this.end();
    if (!isWait || !this.#live) {
      this.#out.write(`${text}\n`);
      return;
    }
    const wait = {text, startedAt: performance.now(), timer: setInterval(() => this.#draw(), REDRAW_INTERVAL_MS)};
    // The counter never keeps the CLI alive: the control connection does while the wait lasts.
    wait.timer.unref();
    this.#wait = wait;
    this.#draw();
  }

  /** Stops the counter and leaves the wait's plain line (the terminal then shows what a log shows). */
  end(): void {
    const wait = this.#wait;
    if (wait === null) return;
    this.#wait = null;
    clearInterval(wait.timer);
    this.#out.write(`${CLEAR_LINE}${wait.text}\n`);
  }

  #draw(): void {
    const wait = this.#wait;
    if (wait === null) return;
    const elapsed = ` … ${formatElapsed(performance.now() - wait.startedAt)}`;
    // A line wider than the terminal wraps, and `\r` would only return to its last row: shorten the text, keep the time.
    const width = this.#out.columns ?? 0;
    const room = width - elapsed.length - 1;
    const text = width > 0 && wait.text.length > room ? `${wait.text.slice(0, Math.max(0, room - 1))}…` : wait.text;
    this.#out.write(`${CLEAR_LINE}${text}${elapsed}`);
  }
}

/** `0.0s`, `12.3s`, then `1m05s`: tenths while a wait is short, so the counter visibly moves. */
function formatElapsed(ms: number): string {
  return ms < 60_000 ? `${(Math.floor(ms / 100) / 10).toFixed(1)}s` : formatDuration(ms);
}
