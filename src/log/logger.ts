import {toWireError} from '../errors/rollbridge-error.ts';
import {isoTime} from '../util/iso-time.ts';

export type LogLevel = `debug` | `info` | `warn` | `error`;
export type LogFields = Record<string, unknown>;
export type LogRecord = {time: string; level: LogLevel; msg: string} & LogFields;
export type LogSink = (record: LogRecord) => void;

const LEVEL_ORDER: Record<LogLevel, number> = {debug: 10, info: 20, warn: 30, error: 40};

/**
 * JSON-lines logger: one object per line, `msg` constant, context in fields.
 * Sinks receive every record at or above the level (the daemon adds the event history as a sink).
 */
export class Logger {
  readonly #bindings: LogFields;
  readonly #shared: {level: LogLevel; sinks: LogSink[]};

  constructor(options: {level?: LogLevel; sinks?: LogSink[]; bindings?: LogFields; shared?: {level: LogLevel; sinks: LogSink[]}} = {}) {
    this.#bindings = options.bindings ?? {};
    this.#shared = options.shared ?? {level: options.level ?? `info`, sinks: options.sinks ?? []};
  }

  child(bindings: LogFields): Logger {
    return new Logger({bindings: {...this.#bindings, ...bindings}, shared: this.#shared});
  }

  addSink(sink: LogSink): void {
    this.#shared.sinks.push(sink);
  }

  debug(msg: string, fields?: LogFields): void { this.#write(`debug`, msg, fields); }
  info(msg: string, fields?: LogFields): void { this.#write(`info`, msg, fields); }
  warn(msg: string, fields?: LogFields): void { this.#write(`warn`, msg, fields); }
  error(msg: string, fields?: LogFields): void { this.#write(`error`, msg, fields); }

  #write(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (LEVEL_ORDER[level] < LEVEL_ORDER[this.#shared.level]) return;
    const record: LogRecord = {time: isoTime(), level, msg, ...this.#bindings};
    if (fields) {
      for (const [key, value] of Object.entries(fields)) {
        record[key] = key === `err` && value !== undefined ? toWireError(value) : value;
      }
    }
    for (const sink of this.#shared.sinks) sink(record);
  }
}

/** A sink that writes one JSON line per record to a stream (the daemon's stdout). */
/**
 * Writes each record as a JSON line. A stream that fails (EPIPE: whoever read the daemon's stdout is
 * gone) is written to no more: without this, each write error would be logged, written, and fail again.
 */
export function createStreamSink(stream: {write(chunk: string): unknown; on?(event: `error`, listener: (error: Error) => void): unknown}): LogSink {
  let broken = false;
  stream.on?.(`error`, () => {
    broken = true;
  });
  return (record) => {
    if (broken) return;
    try {
      stream.write(`${JSON.stringify(record)}\n`);
    } catch {
      broken = true;
    }
  };
}

/** A logger that drops everything (tests and library callers that do not care). */
export function createSilentLogger(): Logger {
  return new Logger({level: `error`, sinks: []});
}
