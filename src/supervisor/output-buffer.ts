import {isoTime} from '../util/iso-time.ts';

export type OutputStream = `stdout` | `stderr`;

export type OutputLine = {
  /** ISO-8601 time the line was completed. */
  at: string;
  stream: OutputStream;
  line: string;
};

/**
 * Characters of one line kept in memory; the rest of a longer line is counted, not kept (the log files
 * hold it whole). Without it, one line with no newline (a minified bundle, a progress bar, a binary dump)
 * grew the daemon without bound, and every retained release kept its longest lines.
 */
export const MAX_LINE_CHARS = 8 * 1024;

/**
 * The last `capacity` lines a process wrote. Chunks are split on `\n` (a trailing `\r` is removed);
 * a line cut by a chunk boundary is held per stream until its end arrives or `flush()` is called.
 * Empty lines are dropped. A line longer than MAX_LINE_CHARS keeps its start and ends with
 * `… [N more characters]`.
 */
export class OutputBuffer {
  readonly #lines: OutputLine[] = [];
  readonly #partial: Record<OutputStream, string> = {stdout: ``, stderr: ``};
  /** Characters of the partial line dropped past MAX_LINE_CHARS, per stream. */
  readonly #dropped: Record<OutputStream, number> = {stdout: 0, stderr: 0};
  #capacity: number;

  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
  }

  get capacity(): number {
    return this.#capacity;
  }

  set capacity(capacity: number) {
    this.#capacity = Math.max(1, capacity);
    this.#trim();
  }

  write(stream: OutputStream, chunk: string): void {
    const parts = chunk.split(`\n`);
    const rest = parts.pop() ?? ``;
    for (const part of parts) {
      this.#append(stream, part);
      this.#push(stream, this.#partial[stream], this.#dropped[stream]);
      this.#partial[stream] = ``;
      this.#dropped[stream] = 0;
    }
    this.#append(stream, rest);
  }

  /** Stores the partial lines still held (at process exit). */
  flush(): void {
    for (const stream of [`stdout`, `stderr`] as const) {
      const rest = this.#partial[stream];
      const dropped = this.#dropped[stream];
      this.#partial[stream] = ``;
      this.#dropped[stream] = 0;
      this.#push(stream, rest, dropped);
    }
  }

  lines(): OutputLine[] {
    return this.#lines.map((line) => ({...line}));
  }

  /** Adds `text` to the stream's partial line, keeping at most MAX_LINE_CHARS (+1 for a final `\r`). */
  #append(stream: OutputStream, text: string): void {
    const partial = this.#partial[stream];
    const room = MAX_LINE_CHARS + 1 - partial.length;
    if (text.length <= room) {
      this.#partial[stream] = partial + text;
      return;
    }
    // Sliced strings keep their parent alive: copy the kept start so the chunk can be collected.
    this.#partial[stream] = partial + [...text.slice(0, Math.max(0, room))].join(``);
    this.#dropped[stream] += text.length - Math.max(0, room);
  }

  #push(stream: OutputStream, raw: string, dropped: number): void {
    let line = raw.endsWith(`\r`) && dropped === 0 ? raw.slice(0, -1) : raw;
    if (line === ``) return;
    if (line.length > MAX_LINE_CHARS) {
      dropped += line.length - MAX_LINE_CHARS;
      line = line.slice(0, MAX_LINE_CHARS);
    }
    if (dropped > 0) line = `${line}… [${dropped} more characters]`;
    this.#lines.push({at: isoTime(), stream, line});
    this.#trim();
  }

  #trim(): void {
    if (this.#lines.length > this.#capacity) this.#lines.splice(0, this.#lines.length - this.#capacity);
  }
}
