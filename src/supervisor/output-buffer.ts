export type OutputStream = `stdout` | `stderr`;

export type OutputLine = {
  /** ISO-8601 time the line was completed. */
  at: string;
  stream: OutputStream;
  line: string;
};

/**
 * The last `capacity` lines a process wrote. Chunks are split on `\n` (a trailing `\r` is removed);
 * a line cut by a chunk boundary is held per stream until its end arrives or `flush()` is called.
 * Empty lines are dropped.
 */
export class OutputBuffer {
  readonly #lines: OutputLine[] = [];
  readonly #partial: Record<OutputStream, string> = {stdout: ``, stderr: ``};
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
    const parts = (this.#partial[stream] + chunk).split(`\n`);
    this.#partial[stream] = parts.pop() ?? ``;
    for (const part of parts) this.#push(stream, part);
  }

  /** Stores the partial lines still held (at process exit). */
  flush(): void {
    for (const stream of [`stdout`, `stderr`] as const) {
      const rest = this.#partial[stream];
      this.#partial[stream] = ``;
      this.#push(stream, rest);
    }
  }

  lines(): OutputLine[] {
    return this.#lines.map((line) => ({...line}));
  }

  #push(stream: OutputStream, raw: string): void {
    const line = raw.endsWith(`\r`) ? raw.slice(0, -1) : raw;
    if (line === ``) return;
    this.#lines.push({at: new Date().toISOString(), stream, line});
    this.#trim();
  }

  #trim(): void {
    if (this.#lines.length > this.#capacity) this.#lines.splice(0, this.#lines.length - this.#capacity);
  }
}
