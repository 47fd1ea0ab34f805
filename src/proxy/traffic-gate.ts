import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {isoTime} from '../util/iso-time.ts';
import type {RequestHead} from './http-head.ts';

/** What the proxy does with a new request; connections read `TrafficGate.state` once per request. */
export const GATE_OPEN = 0;
export const GATE_HOLD = 1;
export const GATE_REFUSE = 2;

/** A request a connection parked while the gate holds traffic. */
export type HeldRequest = {
  /** Sends the request on (the gate opened). */
  releaseHeld(): void;
  /** Answers it with the complete response `respond` builds for its head, and closes the connection (maintenance, or the pause timed out). */
  refuseHeld(respond: (head: RequestHead) => string): void;
};

/** An operator's pause, as `status` reports it and the state file keeps it. */
export type PauseState = {
  since: string;
  /** ISO time the pause times out; null: it lasts until `resume`. */
  deadline: string | null;
  /** The pause outlived its timeout: held and new requests are answered 503 until `resume`. */
  expired: boolean;
};

export type MaintenanceState = {
  since: string;
  message: string;
  /** The Retry-After header, in seconds. */
  retryAfterSeconds: number;
};

/** The traffic state the state file records (survives a daemon restart); the switch hold of a deploy is not part of it. */
export type TrafficState = {
  pause: PauseState | null;
  maintenance: MaintenanceState | null;
};

export type TrafficMode = `open` | `paused` | `maintenance`;

export type TrafficStatus = TrafficState & {
  mode: TrafficMode;
  /** Requests held right now. */
  held: number;
  /** proxy.maxHeldRequests: a request beyond it is answered 503 at once. */
  maxHeld: number;
  /** True while a deploy holds traffic for a `switch: "hold"` process. */
  switchHold: boolean;
};

/** Retry-After of the 503 a held request gets when the pause times out or the queue is full. */
export const PAUSED_RETRY_AFTER_SECONDS = 5;
/** Longest maintenance message (characters). */
export const MAX_MAINTENANCE_MESSAGE_LENGTH = 1_000;
export const DEFAULT_MAINTENANCE_MESSAGE = `The service is down for maintenance.`;

/**
 * Pause, resume and maintenance at the proxy (product §5.11): while paused (by the operator or by a
 * deploy's hold-on-switch) new requests are parked — their connection stops reading — and sent on
 * when the gate opens; in maintenance, or once a pause outlived its timeout, the proxy answers 503
 * with Retry-After itself. Health checks go to the processes' own ports and never pass here.
 */
export class TrafficGate {
  /** GATE_OPEN, GATE_HOLD or GATE_REFUSE. */
  state = GATE_OPEN;
  #pause: (PauseState & {deadlineAt: number | null}) | null = null;
  #maintenance: MaintenanceState | null = null;
  #switchHolds = 0;
  readonly #held = new Set<HeldRequest>();
  #maxHeld: number;
  #timer: NodeJS.Timeout | null = null;
  /** Maintenance responses by [plain, html, json] × [keep-alive, close]. */
  #pages: string[] = [];
  readonly #onChange: () => void;

  constructor(options: {maxHeld: number; onChange?: () => void}) {
    this.#maxHeld = options.maxHeld;
    this.#onChange = options.onChange ?? (() => undefined);
  }

  set maxHeld(value: number) {
    this.#maxHeld = value;
  }

  get status(): TrafficStatus {
    return {
      mode: this.#maintenance !== null ? `maintenance` : this.#pause !== null ? `paused` : `open`,
      ...this.snapshot(),
      held: this.#held.size,
      maxHeld: this.#maxHeld,
      switchHold: this.#switchHolds > 0,
    };
  }

  /** What the state file records. */
  snapshot(): TrafficState {
    const pause = this.#pause;
    return {
      pause: pause === null ? null : {since: pause.since, deadline: pause.deadline, expired: pause.expired},
      maintenance: this.#maintenance === null ? null : {...this.#maintenance},
    };
  }

  /** A restarted daemon takes the recorded state (a pause whose deadline passed meanwhile is expired). */
  restore(state: TrafficState): void {
    if (state.pause !== null) {
      const deadlineAt = state.pause.deadline === null ? null : Date.parse(state.pause.deadline);
      this.#pause = {...state.pause, deadlineAt: deadlineAt !== null && Number.isFinite(deadlineAt) ? deadlineAt : null};
      this.#armDeadline();
    }
    if (state.maintenance !== null) this.#setMaintenance(state.maintenance);
    this.#apply();
  }

  /**
   * Holds new requests until `resume()` or `timeoutMs` (0: no timeout). Pausing again restarts the
   * timeout (an expired pause holds again). Refused with ERR_TRAFFIC_MAINTENANCE during maintenance.
   */
  pause(timeoutMs: number): {changed: boolean} {
    if (this.#maintenance !== null) {
      throw new RollbridgeError(ErrorCode.TRAFFIC_MAINTENANCE, `Maintenance is on since ${this.#maintenance.since}: requests are answered 503, there is nothing to pause`, {
        fix: `Run "rollbridge maintenance off" first, then "rollbridge pause"`,
        details: {since: this.#maintenance.since},
      });
    }
    const changed = this.#pause === null || this.#pause.expired;
    const now = Date.now();
    const deadlineAt = timeoutMs > 0 ? now + timeoutMs : null;
    this.#pause = {since: changed ? isoTime(now) : this.#pause!.since, deadline: deadlineAt === null ? null : isoTime(deadlineAt), deadlineAt, expired: false};
    this.#armDeadline();
    this.#apply();
    return {changed};
  }

  /** Ends the operator's pause: held requests go on (unless a deploy's switch hold still holds them). */
  resume(): {changed: boolean} {
    if (this.#maintenance !== null) {
      throw new RollbridgeError(ErrorCode.TRAFFIC_MAINTENANCE, `Maintenance is on since ${this.#maintenance.since}; "resume" ends a pause, not maintenance`, {
        fix: `Run "rollbridge maintenance off" to serve requests again`,
        details: {since: this.#maintenance.since},
      });
    }
    if (this.#pause === null) return {changed: false};
    this.#pause = null;
    this.#armDeadline();
    this.#apply();
    return {changed: true};
  }

  /** Maintenance on (the page's message and Retry-After) or off (null). A pause is ended by it. */
  setMaintenance(options: {message: string; retryAfterSeconds: number} | null): {changed: boolean} {
    if (options === null) {
      if (this.#maintenance === null) return {changed: false};
      this.#maintenance = null;
      this.#pages = [];
      this.#apply();
      return {changed: true};
    }
    const current = this.#maintenance;
    const changed = current === null || current.message !== options.message || current.retryAfterSeconds !== options.retryAfterSeconds || this.#pause !== null;
    this.#pause = null;
    this.#armDeadline();
    this.#setMaintenance({since: current?.since ?? isoTime(), ...options});
    this.#apply();
    return {changed};
  }

  /** A deploy's hold-on-switch: holds requests until the returned function is called (once is enough). */
  holdForSwitch(): () => void {
    this.#switchHolds++;
    this.#apply();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#switchHolds--;
      this.#apply();
    };
  }

  /** Parks a request; false when proxy.maxHeldRequests are held already (answer it with `overflowResponse`). */
  admit(request: HeldRequest): boolean {
    if (this.#held.size >= this.#maxHeld) return false;
    this.#held.add(request);
    return true;
  }

  /** The connection closed (or its request went on). */
  forget(request: HeldRequest): void {
    this.#held.delete(request);
  }

  /** The 503 for a request the gate refuses now (maintenance page, or the pause timed out). */
  refusal(head: RequestHead | null, close: boolean): string {
    if (this.#maintenance !== null) return this.#pages[pageIndex(head) * 2 + (close ? 1 : 0)]!;
    return pausedResponse(`The service is paused; retry later.`, close);
  }

  overflowResponse(): string {
    return pausedResponse(`The service is paused and holds as many requests as it may (proxy.maxHeldRequests ${this.#maxHeld}); retry later.`, true);
  }

  /** Answers every held request 503 with Retry-After (a daemon handing over: its successor holds new ones). */
  refuseAllHeld(): void {
    const held = [...this.#held];
    this.#held.clear();
    for (const request of held) request.refuseHeld(() => pausedResponse(`The service is paused; retry later.`, true));
  }

  /** Ends the timer (proxy shutdown); held requests are left to the connections' destruction. */
  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #setMaintenance(state: MaintenanceState): void {
    this.#maintenance = state;
    this.#pages = buildPages(state);
  }

  #armDeadline(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const pause = this.#pause;
    if (pause === null || pause.expired || pause.deadlineAt === null) return;
    const ms = pause.deadlineAt - Date.now();
    if (ms <= 0) {
      pause.expired = true;
      return;
    }
    // Timers hold at most ~24.8 days; a longer pause re-arms itself.
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#pause !== pause) return;
      if (Date.now() < (pause.deadlineAt ?? 0)) {
        this.#armDeadline();
        return;
      }
      pause.expired = true;
      this.#apply();
      this.#onChange();
    }, Math.min(ms, 2 ** 31 - 1));
    this.#timer.unref();
  }

  #apply(): void {
    const refuse = this.#maintenance !== null || this.#pause?.expired === true;
    const state = refuse ? GATE_REFUSE : this.#pause !== null || this.#switchHolds > 0 ? GATE_HOLD : GATE_OPEN;
    this.state = state;
    if (state === GATE_HOLD || this.#held.size === 0) return;
    const held = [...this.#held];
    this.#held.clear();
    for (const request of held) {
      if (state === GATE_OPEN) request.releaseHeld();
      else request.refuseHeld((head) => this.refusal(head, true));
    }
  }
}

/** 0 plain text, 1 HTML, 2 JSON: JSON when Accept names application/json (or +json) before text/html, HTML when it names text/html. */
function pageIndex(head: RequestHead | null): number {
  if (head === null) return 0;
  const match = /\r\naccept:[ \t]*([^\r]*)/i.exec(head.text);
  if (match === null) return 0;
  const accept = match[1]!.toLowerCase();
  const json = accept.search(/application\/(?:[\w.-]+\+)?json/);
  const html = accept.indexOf(`text/html`);
  if (json !== -1 && (html === -1 || json < html)) return 2;
  return html !== -1 ? 1 : 0;
}

function buildPages(state: MaintenanceState): string[] {
  const plain = `${state.message}\n`;
  const html = `<!doctype html>\n<html><head><meta charset="utf-8"><title>Maintenance</title></head>\n<body><h1>Down for maintenance</h1><p>${escapeHtml(state.message)}</p></body></html>\n`;
  const json = `${JSON.stringify({error: `maintenance`, message: state.message, retryAfterSeconds: state.retryAfterSeconds})}\n`;
  const pages: string[] = [];
  for (const [type, body] of [[`text/plain`, plain], [`text/html`, html], [`application/json`, json]] as const) {
    for (const close of [false, true]) pages.push(response(type, body, state.retryAfterSeconds, close));
  }
  return pages;
}

function pausedResponse(message: string, close: boolean): string {
  return response(`text/plain`, `${message}\n`, PAUSED_RETRY_AFTER_SECONDS, close);
}

function response(type: string, body: string, retryAfterSeconds: number, close: boolean): string {
  return `HTTP/1.1 503 Service Unavailable\r\nContent-Type: ${type}; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`
    + `Retry-After: ${retryAfterSeconds}\r\nCache-Control: no-store\r\nConnection: ${close ? `close` : `keep-alive`}\r\n\r\n${body}`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
