import type {RequestHead} from './http-head.ts';
import {isoTime} from '../util/iso-time.ts';

/** Where access log lines go (a BufferedLogFile: batched, rotated, dropping rather than blocking). */
export type AccessLogSink = {write(line: string): void};

/** One request as the access log records it. */
export type AccessLogEntry = {
  method: string;
  /** The request-target as the client sent it (origin-form). */
  target: string;
  /** 0 when no response head reached the client. */
  status: number;
  /** Bytes sent to the client (head and body). */
  bytes: number;
  durationMs: number;
  releaseId: string | null;
  processId: string | null;
  clientIp: string;
  requestId: string;
  retried: boolean;
};

/** For 0–999 µs past a whole millisecond: "", ".001" … ".999" without trailing zeros (what `${x}` prints for a 3-decimal x). */
const FRACTIONS = Array.from({length: 1000}, (_, micros) => (micros === 0 ? `` : `.${String(micros).padStart(3, `0`)}`.replace(/0+$/, ``)));

/**
 * A duration in milliseconds rounded to the microsecond, printed as `${Math.round(ms * 1000) / 1000}`
 * would print it but from two integers: a double's shortest decimal form costs more than the rest
 * of the line.
 */
export function formatDurationMs(ms: number): string {
  const micros = Math.round(ms * 1000);
  if (!(micros >= 0 && micros <= Number.MAX_SAFE_INTEGER)) return String(micros / 1000);
  const whole = Math.floor(micros / 1000);
  return `${whole}${FRACTIONS[micros - whole * 1000]!}`;
}

/**
 * `value` as a JSON string: quoted as it is when it holds only printable ASCII other than `"` and `\`
 * (every request-target the proxy accepts), else JSON.stringify's escaping.
 */
export function jsonString(value: string): string {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 32 || c > 126 || c === 34 || c === 92) return JSON.stringify(value);
  }
  return `"${value}"`;
}

/**
 * `proxy.accessLog`: one JSON line per request. The query string is left out unless `includeQuery`
 * (it often carries tokens and personal data).
 */
export class AccessLog {
  readonly #sink: AccessLogSink;
  readonly #includeQuery: boolean;
  /** Requests ending in the same millisecond share one formatted time. */
  #timeMs = 0;
  #time = ``;
  /** The last release and process seen, escaped once (they change only with a deploy). */
  #releaseId: string | null = null;
  #releaseJson = `null`;
  #processId: string | null = null;
  #processJson = `null`;

  constructor(sink: AccessLogSink, options: {includeQuery: boolean}) {
    this.#sink = sink;
    this.#includeQuery = options.includeQuery;
  }

  record(entry: AccessLogEntry): void {
    let target = entry.target;
    if (!this.#includeQuery) {
      const query = target.indexOf(`?`);
      if (query !== -1) target = target.slice(0, query);
    }
    const now = Date.now();
    if (now !== this.#timeMs) {
      this.#timeMs = now;
      this.#time = isoTime(now);
    }
    if (entry.releaseId !== this.#releaseId) {
      this.#releaseId = entry.releaseId;
      this.#releaseJson = JSON.stringify(entry.releaseId);
    }
    if (entry.processId !== this.#processId) {
      this.#processId = entry.processId;
      this.#processJson = JSON.stringify(entry.processId);
    }
    // Built by hand (one line per request is the hot path of the access log): method and request id are
    // token characters and the address an IP, so only the path and the ids from the config need escaping.
    this.#sink.write(`{"time":"${this.#time}","method":"${entry.method}","path":${jsonString(target)},"status":${entry.status},"bytes":${entry.bytes},"durationMs":${formatDurationMs(entry.durationMs)},"releaseId":${this.#releaseJson},"processId":${this.#processJson},"clientIp":"${entry.clientIp}","requestId":"${entry.requestId}","retried":${entry.retried}}\n`);
  }
}

/** The request-target of a head in origin-form (an absolute-form target as rewritten for the app). */
export function requestTargetOf(head: RequestHead): string {
  const line = head.requestLine ?? head.text;
  const start = line.indexOf(` `) + 1;
  return line.slice(start, line.indexOf(` `, start));
}
