import {formatHostPort} from './forwarded-headers.ts';
import type {RequestSeries} from './request-metrics.ts';
import {UpstreamPool} from './upstream-pool.ts';
import type {UpstreamConnection} from './upstream-pool.ts';

export type TargetState = `serving` | `draining` | `closed`;

export type DrainResult = {
  timedOut: boolean;
  durationMs: number;
  /** In-flight work when the deadline hit (zeros when the drain completed). */
  remaining: {http: number; websocket: number};
};

/** An open upgraded connection the target can close at the drain deadline. */
export type WebSocketPair = {
  /** Sends a 1001 (Going Away) close frame to both ends between frames, then closes. */
  closeGoingAway(): void;
  destroy(): void;
};

/** After the last 1001 is sent, how long drain() waits for the sockets to close. */
const WS_CLOSE_GRACE_MS = 1_500;

/**
 * One upstream address the proxy sends to (the web process of a release): its keep-alive pool,
 * in-flight accounting and drain.
 */
export class Target {
  readonly releaseId: string;
  readonly processId: string;
  readonly host: string;
  readonly port: number;
  /** The request counters of this target's release and process (null when metrics are off). */
  readonly series: RequestSeries | null;
  readonly #pool: UpstreamPool;
  readonly #websockets = new Set<WebSocketPair>();
  #state: TargetState = `serving`;
  #http = 0;
  #requests = 0;
  #responses5xx = 0;
  #errors = 0;
  #drain: Promise<DrainResult> | null = null;
  #onIdle: (() => void) | null = null;
  #onWebSocketClosed: (() => void) | null = null;

  constructor(options: {releaseId: string; processId: string; host: string; port: number; series?: RequestSeries | null}) {
    this.releaseId = options.releaseId;
    this.processId = options.processId;
    this.host = options.host;
    this.port = options.port;
    this.series = options.series ?? null;
    this.#pool = new UpstreamPool(options.host, options.port);
  }

  get state(): TargetState {
    return this.#state;
  }

  get connections(): {http: number; websocket: number} {
    return {http: this.#http, websocket: this.#websockets.size};
  }

  get stats(): {requests: number; responses5xx: number; errors: number} {
    return {requests: this.#requests, responses5xx: this.#responses5xx, errors: this.#errors};
  }

  /** Idle and total upstream connections (pooled + busy). */
  get pool(): {idle: number; total: number} {
    return this.#pool.size;
  }

  get url(): string {
    return `http://${formatHostPort(this.host, this.port)}`;
  }

  /** @internal A request is about to be sent: counted in-flight until endRequest(). */
  beginRequest(): void {
    this.#http++;
    this.#requests++;
  }

  /** @internal */
  endRequest(): void {
    this.#http--;
    if (this.#onIdle !== null && this.#http === 0 && this.#websockets.size === 0) this.#onIdle();
  }

  /** @internal */
  recordStatus(status: number): void {
    if (status >= 500) this.#responses5xx++;
  }

  /** @internal Connect failure, reset or timeout attributed to this target. */
  recordError(): void {
    this.#errors++;
  }

  /** @internal A pooled connection idle for less than `maxIdleMs` (and `idleTimeoutMs`), else a new one. */
  acquire(maxIdleMs: number, idleTimeoutMs: number): UpstreamConnection {
    return this.#pool.acquire(maxIdleMs, idleTimeoutMs);
  }

  /** @internal A new connection (for the keep-alive race retry). */
  connect(): UpstreamConnection {
    return this.#pool.connect();
  }

  /** @internal */
  release(connection: UpstreamConnection, reusable: boolean): void {
    this.#pool.release(connection, reusable && this.#state === `serving`);
  }

  /** @internal */
  sweep(now: number, idleTimeoutMs: number): void {
    this.#pool.sweep(now, idleTimeoutMs);
  }

  /** @internal An upgrade got its 101: moves one in-flight request to the websocket count. */
  addWebSocket(pair: WebSocketPair): void {
    this.#websockets.add(pair);
    this.endRequest();
  }

  /** @internal */
  removeWebSocket(pair: WebSocketPair): void {
    if (!this.#websockets.delete(pair)) return;
    if (this.#onWebSocketClosed !== null) this.#onWebSocketClosed();
    else if (this.#onIdle !== null && this.#http === 0 && this.#websockets.size === 0) this.#onIdle();
  }

  /**
   * Stops reuse of pooled connections at once (closes the idle ones) and is never picked again.
   * Resolves when in-flight HTTP + WebSockets reach 0, or at timeoutMs: then closes every remaining
   * WebSocket with 1001 (Going Away), spread uniformly over wsCloseJitterMs (closeWebSockets), and
   * resolves once they are closed (or after a short grace).
   */
  drain(options: {timeoutMs: number; wsCloseJitterMs: number}): Promise<DrainResult> {
    if (this.#drain !== null) return this.#drain;
    if (this.#state === `serving`) this.#state = `draining`;
    this.#pool.closeIdle();
    const startedAt = performance.now();
    this.#drain = new Promise<DrainResult>((resolve) => {
      const finish = (timedOut: boolean, remaining: {http: number; websocket: number}): void => {
        this.#onIdle = null;
        resolve({timedOut, durationMs: Math.round(performance.now() - startedAt), remaining});
      };
      if (this.#http === 0 && this.#websockets.size === 0) {
        finish(false, {http: 0, websocket: 0});
        return;
      }
      const deadline = setTimeout(() => {
        this.#onIdle = null;
        const remaining = {http: this.#http, websocket: this.#websockets.size};
        void this.closeWebSockets({wsCloseJitterMs: options.wsCloseJitterMs}).then(() => finish(true, remaining));
      }, options.timeoutMs);
      this.#onIdle = () => {
        clearTimeout(deadline);
        finish(false, {http: 0, websocket: 0});
      };
    });
    return this.#drain;
  }

  /**
   * Closes every open WebSocket with 1001 (Going Away), spread uniformly over wsCloseJitterMs so clients
   * do not all reconnect in the same instant; resolves once they are closed, or a short grace after the
   * last close frame. The drain deadline and the daemon handover (`ProxyServer.retire`) both use it.
   */
  closeWebSockets(options: {wsCloseJitterMs: number}): Promise<void> {
    const pairs = [...this.#websockets];
    if (pairs.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      const finish = (): void => {
        for (const timer of timers) clearTimeout(timer);
        this.#onWebSocketClosed = null;
        resolve();
      };
      timers.push(setTimeout(finish, options.wsCloseJitterMs + WS_CLOSE_GRACE_MS));
      this.#onWebSocketClosed = () => {
        if (this.#websockets.size === 0) finish();
      };
      const spacingMs = options.wsCloseJitterMs / pairs.length;
      pairs.forEach((pair, index) => {
        const delayMs = Math.round(index * spacingMs);
        if (delayMs === 0) pair.closeGoingAway();
        else timers.push(setTimeout(() => pair.closeGoingAway(), delayMs));
      });
    });
  }

  /** Destroys whatever is left on this target: pooled and busy connections, WebSockets. */
  close(): void {
    this.#state = `closed`;
    this.#pool.destroyAll();
    for (const pair of [...this.#websockets]) pair.destroy();
  }
}
