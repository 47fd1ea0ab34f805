import fs from 'node:fs';
import path from 'node:path';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import type {LogRecord, LogSink} from '../log/logger.ts';
import {APPEND_FLAGS, UnsafePathError, openPrivateFile} from '../util/private-file.ts';

export type HistoryEvent = {at: string; message: string; level: string; data: Record<string, unknown>};

const OMITTED_KEYS = new Set([`time`, `level`, `msg`]);

/** The in-memory event history served by `events`: the newest `limit` log records, oldest first. */
export class EventHistory {
  readonly #limit: number;
  readonly #events: HistoryEvent[] = [];
  readonly #listeners = new Set<(event: HistoryEvent) => void>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  get sink(): LogSink {
    return (record) => this.record(record);
  }

  record(record: LogRecord): void {
    const event = toHistoryEvent(record);
    this.#events.push(event);
    if (this.#events.length > this.#limit) this.#events.splice(0, this.#events.length - this.#limit);
    for (const listener of this.#listeners) listener(event);
  }

  /** The most recent `limit` events (all when limit is missing or not positive), oldest first. */
  recent(limit?: number): HistoryEvent[] {
    if (limit === undefined || !Number.isInteger(limit) || limit <= 0) return [...this.#events];
    return this.#events.slice(-limit);
  }

  subscribe(listener: (event: HistoryEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export function toHistoryEvent(record: LogRecord): HistoryEvent {
  const data: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    if (!OMITTED_KEYS.has(key)) data[key] = value;
  }
  return {at: record.time, message: record.msg, level: record.level, data};
}

/**
 * `eventsPath`: every event appended as one JSON line (the `events --json` shape), file mode 0600.
 * Opened once at start; a write error is reported on the daemon's stderr, never thrown into the caller,
 * and a line is written whole or not at all.
 */
export function createEventsFileSink(eventsPath: string): LogSink {
  let fd: number;
  try {
    fd = openPrivateFile(eventsPath, APPEND_FLAGS, path.dirname(eventsPath));
  } catch (error) {
    if (error instanceof UnsafePathError) {
      throw new RollbridgeError(ErrorCode.FILE_UNSAFE, `Refusing eventsPath ${eventsPath}: ${error.reason}`, {
        fix: `Set eventsPath to a file in a directory only the daemon's user can write, or remove what is at ${eventsPath}`,
        details: {key: `eventsPath`, path: eventsPath},
      });
    }
    throw new RollbridgeError(ErrorCode.EVENTS_FILE_UNWRITABLE, `Cannot open eventsPath ${eventsPath}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {
      fix: `Create the directory of eventsPath, make it writable by the daemon's user, or unset eventsPath`,
      details: {eventsPath},
      cause: error,
    });
  }
  let failed = false;
  return (record) => {
    const line = Buffer.from(`${JSON.stringify(toHistoryEvent(record))}\n`);
    // A write can end part-way (a full disk takes the bytes that fit): the file is cut back to where the
    // line began, so it never holds a torn line that the next event would be glued to.
    let size: number | undefined;
    try {
      size = fs.fstatSync(fd).size;
      const written = fs.writeSync(fd, line);
      if (written < line.length) throw Object.assign(new Error(`short write (${written} of ${line.length} bytes)`), {code: `ENOSPC`});
      if (failed) process.stderr.write(`rollbridge: writing ${eventsPath} works again\n`);
      failed = false;
    } catch (error) {
      if (size !== undefined) {
        try {
          fs.ftruncateSync(fd, size);
        } catch {
          // Nothing more to do: the next successful write reports through stderr.
        }
      }
      if (!failed) process.stderr.write(`rollbridge: writing ${eventsPath} failed: ${String(error)}\n`);
      failed = true;
    }
  };
}
