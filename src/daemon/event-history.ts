import type {LogRecord, LogSink} from '../log/logger.ts';

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
    const data: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(record)) {
      if (!OMITTED_KEYS.has(key)) data[key] = value;
    }
    const event: HistoryEvent = {at: record.time, message: record.msg, level: record.level, data};
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
