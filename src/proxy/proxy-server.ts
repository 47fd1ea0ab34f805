import net from 'node:net';
import {DEFAULT_MAX_HELD_REQUESTS} from '../config/defaults.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import type {Logger} from '../log/logger.ts';
import type {AccessLog} from './access-log.ts';
import {ClientConnection} from './client-connection.ts';
import {OVERLOADED_RESPONSE} from './error-response.ts';
import type {ConnectionHost, ProxySettings} from './client-connection.ts';
import {formatHostPort, normalizeIp} from './forwarded-headers.ts';
import type {RequestMetrics} from './request-metrics.ts';
import {Target} from './target.ts';
import {CanarySplit} from './canary-split.ts';
import type {RequestHead} from './http-head.ts';
import type {RoutedClient} from './client-connection.ts';
import {TrafficGate} from './traffic-gate.ts';

export type ProxyOptions = {
  host: string;
  /** 0 = ephemeral (read the bound port from `address`). */
  port: number;
  /** `loopback` or IP literals: peers whose X-Forwarded-Proto/-Host/-Port are kept. */
  trustForwarded: string[];
  /** A request head larger than this is answered 431. */
  maxHeaderBytes: number;
  /** A request head not complete in time is answered 408 and the connection closed. */
  requestHeadTimeoutMs: number;
  /** Idle keep-alive client connections are closed after this long. */
  clientIdleTimeoutMs: number;
  /** No response head from the app in time → 504. 0 = off. */
  upstreamResponseTimeoutMs: number;
  /** Pooled idle app connections are dropped after this long. */
  upstreamIdleTimeoutMs: number;
  /** A client that sends no request body bytes for this long is answered 408 and closed. 0 = off. */
  clientBodyTimeoutMs: number;
  /** A client that reads none of its response for this long is disconnected. 0 = off. */
  clientSendTimeoutMs: number;
  /** Client connections open at once; one more is answered 503 and closed. */
  maxConnections: number;
  /** Requests held at once while paused; one more is answered 503 with Retry-After. @default 1000 (proxy.maxHeldRequests) */
  maxHeldRequests?: number;
  /**
   * The process's open-file limit (RLIMIT_NOFILE), when known: the connection cap is lowered so that
   * clients and their app connections leave RESERVED_FDS descriptors for the control socket, health
   * checks, logs and state writes.
   */
  openFileLimit?: number | undefined;
  /** SO_REUSEPORT, so a replacement daemon can bind the same port before this one stops. */
  reusePort?: boolean;
  /** Per-request counters for /metrics (`metrics.listen`); absent: not counted. */
  metrics?: RequestMetrics | null;
  /** `proxy.accessLog`; absent: no access log and no request ids. */
  accessLog?: AccessLog | null;
  log: Logger;
};

export type ProxyOptionsUpdate = Partial<Omit<ProxyOptions, `host` | `port` | `log` | `reusePort` | `openFileLimit` | `metrics` | `accessLog`>>;

const NUMERIC_OPTIONS = [
  `maxHeaderBytes`, `requestHeadTimeoutMs`, `clientIdleTimeoutMs`, `upstreamResponseTimeoutMs`, `upstreamIdleTimeoutMs`,
  `clientBodyTimeoutMs`, `clientSendTimeoutMs`, `maxConnections`, `maxHeldRequests`,
] as const;
/** Options that must be > 0 (the others accept 0 = off). */
const POSITIVE_OPTIONS = new Set([`maxHeaderBytes`, `upstreamIdleTimeoutMs`, `maxConnections`, `maxHeldRequests`]);
/** File descriptors left free when the connection cap follows the open-file limit. */
export const RESERVED_FDS = 128;
/** How long a connection refused at the cap may take to read its 503 before it is destroyed. */
const OVERLOADED_LINGER_MS = 1_000;

function invalid(key: string, message: string): RollbridgeError {
  return new RollbridgeError(ErrorCode.PROXY_OPTIONS_INVALID, message, {
    fix: `Set proxy.${key} in the config to a valid value`,
    details: {key},
  });
}

function validateOptions(options: ProxyOptionsUpdate): void {
  for (const key of NUMERIC_OPTIONS) {
    const value = options[key];
    if (value === undefined) continue;
    if (typeof value !== `number` || !Number.isFinite(value) || value < 0 || (value === 0 && POSITIVE_OPTIONS.has(key))) {
      throw invalid(key, `Proxy option ${key} must be a ${POSITIVE_OPTIONS.has(key) ? `positive` : `non-negative`} number, received ${String(value)}`);
    }
  }
  if (options.trustForwarded !== undefined) {
    for (const entry of options.trustForwarded) {
      if (entry !== `loopback` && net.isIP(entry) === 0) {
        throw invalid(`trustForwarded`, `Proxy option trustForwarded contains "${entry}", expected "loopback" or an IP address`);
      }
    }
  }
}

/**
 * The stable HTTP/WebSocket port in front of the web process: an HTTP/1.1-aware byte relay on
 * node:net. Routes every request at request time to the active targets (round-robin).
 */
export class ProxyServer {
  readonly #server: net.Server;
  readonly #log: Logger;
  readonly #settings: ProxySettings;
  readonly #clients = new Set<ClientConnection>();
  readonly #targets = new Set<Target>();
  readonly #host: ConnectionHost;
  readonly #metrics: RequestMetrics | null;
  #active: readonly Target[] = [];
  #fallback: readonly Target[] = [];
  /** deploy --canary: a share of the clients goes to these targets instead of #active. */
  #split: CanarySplit | null = null;
  #next = 0;
  #address: {host: string; port: number} = {host: ``, port: 0};
  #sweeper: NodeJS.Timeout | null = null;
  #closing: Promise<void> | null = null;
  readonly #listenOptions: {host: string; port: number; reusePort?: boolean | undefined};
  #maxConnections: number;
  readonly #fdCap: number;
  #refused = 0;
  #refusedLoggedAt = 0;
  /** Pause, maintenance and the switch hold of a deploy. */
  readonly gate: TrafficGate;

  private constructor(options: ProxyOptions) {
    this.#listenOptions = {host: options.host, port: options.port, reusePort: options.reusePort};
    this.#log = options.log.child({component: `proxy`});
    this.#settings = {
      trustForwarded: [...options.trustForwarded],
      maxHeaderBytes: options.maxHeaderBytes,
      requestHeadTimeoutMs: options.requestHeadTimeoutMs,
      clientIdleTimeoutMs: options.clientIdleTimeoutMs,
      upstreamResponseTimeoutMs: options.upstreamResponseTimeoutMs,
      upstreamIdleTimeoutMs: options.upstreamIdleTimeoutMs,
      clientBodyTimeoutMs: options.clientBodyTimeoutMs,
      clientSendTimeoutMs: options.clientSendTimeoutMs,
    };
    this.#maxConnections = options.maxConnections;
    this.gate = new TrafficGate({maxHeld: options.maxHeldRequests ?? DEFAULT_MAX_HELD_REQUESTS, onChange: () => this.#log.warn(`pause timed out: requests are answered 503 until resume`, {})});
    this.#fdCap = options.openFileLimit === undefined ? Infinity : Math.max(1, Math.floor((options.openFileLimit - RESERVED_FDS) / 2));
    this.#metrics = options.metrics ?? null;
    this.#host = {
      settings: this.#settings,
      metrics: this.#metrics,
      accessLog: options.accessLog ?? null,
      gate: this.gate,
      pickTarget: (head, client) => (this.#split === null ? this.#pickTarget() : this.#pickSplit(head, client)),
      pickFallback: (failed) => this.#pickFallback(failed),
      forget: (connection) => {
        this.#clients.delete(connection);
        this.gate.forget(connection);
      },
      reportFailure: (error) => this.#log.error(`proxy error`, {err: error}),
    };
    this.#server = net.createServer({allowHalfOpen: true, noDelay: true, pauseOnConnect: true}, (socket) => this.#accept(socket));
    // Errors of a listen() attempt reject that attempt (and legacy takeover retries EADDRINUSE quietly).
    this.#server.on(`error`, (error) => {
      if (this.#server.listening) this.#log.error(`Proxy server error`, {err: error});
    });
  }

  /** Binds the port; rejects with ERR_PROXY_LISTEN_FAILED (port in use, permission, bad address). */
  static async start(options: ProxyOptions): Promise<ProxyServer> {
    const proxy = ProxyServer.create(options);
    await proxy.listen();
    return proxy;
  }

  /** A proxy that does not listen yet: `listen()` binds the port (after re-adoption, or once a legacy app let go of it). */
  static create(options: ProxyOptions): ProxyServer {
    validateOptions(options);
    return new ProxyServer(options);
  }

  /** The connection cap in force: proxy.maxConnections, lowered to what the open-file limit allows. */
  get connectionLimit(): number {
    return Math.min(this.#maxConnections, this.#fdCap);
  }

  get connections(): {open: number; refused: number} {
    return {open: this.#clients.size, refused: this.#refused};
  }

  #accept(socket: net.Socket): void {
    if (this.#clients.size < this.#maxConnections && this.#clients.size < this.#fdCap) {
      this.#clients.add(new ClientConnection(socket, this.#host));
      return;
    }
    // At the cap: a clear answer and a close, never a silent reset, and no file descriptor kept.
    this.#refused++;
    socket.on(`error`, () => undefined);
    socket.resume(); // what the client sent is read and dropped, so the close is a FIN, not a reset
    // Its descriptor is released as soon as the answer is handed to the kernel (which still delivers
    // it and the FIN); a flood of refused connections must not itself exhaust the descriptors.
    socket.end(OVERLOADED_RESPONSE, () => socket.destroy());
    setTimeout(() => socket.destroy(), OVERLOADED_LINGER_MS).unref();
    const now = Date.now();
    if (now - this.#refusedLoggedAt >= 10_000) {
      this.#refusedLoggedAt = now;
      this.#log.warn(`proxy at its connection limit: new connections are answered 503`, {limit: this.connectionLimit, refused: this.#refused, fix: `Raise proxy.maxConnections or the open-file limit (LimitNOFILE / ulimit -n)`});
    }
  }

  get listening(): boolean {
    return this.#server.listening;
  }

  /** The listening server, for handing to a successor daemon (child_process `send(message, server)`). */
  get server(): net.Server {
    return this.#server;
  }

  /**
   * Binds proxy.host:proxy.port, or accepts on `handle` — the listening socket another daemon passed on,
   * so both accept from one queue and no connection is refused or lost while they swap.
   */
  async listen(handle?: net.Server): Promise<void> {
    const options = this.#listenOptions;
    const server = this.#server;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        server.off(`listening`, onListening);
        reject(new RollbridgeError(ErrorCode.PROXY_LISTEN_FAILED, `Proxy could not listen on ${formatHostPort(options.host, options.port)}: ${error.code ?? error.message}`, {
          fix: error.code === `EADDRINUSE`
            ? `Set proxy.port to a free port, or stop whatever holds ${options.port} (\`rollbridge status\` shows whether a daemon already runs)`
            : `Check proxy.host and proxy.port in the config`,
          details: {host: options.host, port: options.port, errno: error.code},
          cause: error,
        }));
      };
      const onListening = (): void => {
        server.off(`error`, onError);
        resolve();
      };
      server.once(`error`, onError);
      server.once(`listening`, onListening);
      if (handle) server.listen(handle);
      else server.listen({host: options.host, port: options.port, reusePort: options.reusePort === true});
    });
    const bound = server.address() as net.AddressInfo;
    this.#address = {host: normalizeIp(bound.address), port: bound.port};
    this.#scheduleSweep();
    this.#log.info(`proxy listening`, {host: this.#address.host, port: this.#address.port, maxConnections: this.connectionLimit});
  }

  /**
   * Binds the proxy port as soon as its holder lets go (legacy takeover): retries every `retryMs`
   * (0: as soon as the event loop is free) while the port is in use, until `giveUp` settles plus `graceMs`. Resolves with the last moment the
   * port was seen taken and the moment it was bound (performance.now()), from which the gap in which
   * the port refused connections is bounded.
   */
  async listenWhenFree(options: {giveUp: Promise<unknown>; graceMs: number; retryMs: number}): Promise<{lastInUseAt: number | null; boundAt: number}> {
    let deadline = Infinity;
    void options.giveUp.finally(() => {
      deadline = performance.now() + options.graceMs;
    });
    let lastInUseAt: number | null = null;
    for (;;) {
      try {
        await this.listen();
        return {lastInUseAt, boundAt: performance.now()};
      } catch (error) {
        const code = (error as RollbridgeError).details?.errno;
        if (code !== `EADDRINUSE` || performance.now() > deadline) throw error;
        lastInUseAt = performance.now();
        // 0: retry at once after pending I/O (a timer waits at least 1 ms, longer on a busy host).
        await new Promise((resolve) => (options.retryMs > 0 ? setTimeout(resolve, options.retryMs) : setImmediate(resolve)));
      }
    }
  }

  get address(): {host: string; port: number} {
    return {...this.#address};
  }

  createTarget(options: {releaseId: string; processId: string; host: string; port: number}): Target {
    const target = new Target({...options, series: this.#metrics?.seriesFor(options.releaseId, options.processId) ?? null});
    this.#targets.add(target);
    return target;
  }

  /**
   * The switch: new requests and upgrades go to these targets (round-robin); [] → 503. Atomic.
   * `fallback` targets (a deploy's watch window keeps the previous release warm) receive a request
   * whose active target refused the connection or died before answering an idempotent request.
   */
  setActiveTargets(targets: readonly Target[], options: {fallback?: readonly Target[]; canary?: {releaseId: string; percent: number; targets: readonly Target[]}} = {}): void {
    this.#active = Object.freeze([...targets]);
    this.#fallback = Object.freeze([...(options.fallback ?? [])]);
    this.#split = options.canary === undefined ? null : new CanarySplit(options.canary);
    this.#next = 0;
  }

  /** The canary split in force (deploy --canary), or null. */
  get canary(): CanarySplit | null {
    return this.#split;
  }

  get activeTargets(): readonly Target[] {
    return this.#active;
  }

  /** Every target not closed yet (serving or draining), for the per-release gauges of /metrics. */
  *liveTargets(): IterableIterator<Target> {
    for (const target of this.#targets) if (target.state !== `closed`) yield target;
  }

  /** Live reload: every connection reads these at use time. */
  updateOptions(options: ProxyOptionsUpdate): void {
    validateOptions(options);
    for (const key of NUMERIC_OPTIONS) {
      const value = options[key];
      if (value === undefined) continue;
      if (key === `maxConnections`) this.#maxConnections = value;
      else if (key === `maxHeldRequests`) this.gate.maxHeld = value;
      else this.#settings[key] = value;
    }
    if (options.trustForwarded !== undefined) this.#settings.trustForwarded = [...options.trustForwarded];
    if (options.upstreamIdleTimeoutMs !== undefined) this.#scheduleSweep();
  }

  /**
   * Daemon replacement: stops accepting (the successor accepts on the same listening socket, so the
   * queue is not lost), then lets every client connection end after its next response; resolves when
   * none is left or at `deadlineMs`. WebSockets still open then are closed with 1001 (Going Away)
   * spread over `wsCloseJitterMs`, as at a drain deadline, so their clients reconnect (to the successor)
   * a few at a time instead of all seeing 1006 at once; whatever is left after that is destroyed.
   */
  async retire(options: {idleGraceMs: number; deadlineMs: number; wsCloseJitterMs: number}): Promise<{remaining: number}> {
    if (this.#sweeper !== null) clearInterval(this.#sweeper);
    this.#server.close();
    // Requests this daemon holds (paused) cannot reach the successor: they get 503 + Retry-After now.
    this.gate.refuseAllHeld();
    for (const client of this.#clients) client.retire(options.idleGraceMs);
    const deadline = performance.now() + options.deadlineMs;
    while (this.#clients.size > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await Promise.all([...this.#targets].map((target) => target.closeWebSockets({wsCloseJitterMs: options.wsCloseJitterMs})));
    const remaining = this.#clients.size;
    for (const client of [...this.#clients]) client.destroy();
    return {remaining};
  }

  /** Stops listening and destroys every client and upstream connection. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      if (this.#sweeper !== null) clearInterval(this.#sweeper);
      this.gate.close();
      this.#active = [];
      this.#fallback = [];
      this.#split = null;
      this.#server.close(() => resolve());
      for (const client of [...this.#clients]) client.destroy();
      for (const target of this.#targets) target.close();
      this.#log.info(`Proxy closed`, {port: this.#address.port});
    });
    return this.#closing;
  }

  #pickFallback(failed: Target): Target | null {
    for (const target of this.#active) if (target !== failed && target.state === `serving`) return target;
    for (const target of this.#fallback) if (target !== failed && target.state === `serving`) return target;
    return null;
  }

  /** A canary split: the client's side, sticky by cookie or address; a side with no serving target falls back to the other. */
  #pickSplit(head: RequestHead, client: RoutedClient): Target | null {
    const split = this.#split!;
    const {canary, setCookie} = split.assign(head, client.peer);
    client.canaryCookie = setCookie;
    return (canary ? split.pickCanary() : null) ?? this.#pickTarget() ?? split.pickCanary();
  }

  #pickTarget(): Target | null {
    const active = this.#active;
    const count = active.length;
    for (let i = 0; i < count; i++) {
      const target = active[this.#next]!;
      this.#next = this.#next + 1 === count ? 0 : this.#next + 1;
      if (target.state === `serving`) return target;
    }
    return null;
  }

  #scheduleSweep(): void {
    if (this.#sweeper !== null) clearInterval(this.#sweeper);
    const idleMs = this.#settings.upstreamIdleTimeoutMs;
    const periodMs = Math.max(10, Math.min(1_000, Math.floor(idleMs / 4)));
    this.#sweeper = setInterval(() => {
      const now = Date.now();
      for (const target of this.#targets) {
        if (target.state === `closed`) this.#targets.delete(target);
        else target.sweep(now, this.#settings.upstreamIdleTimeoutMs);
      }
    }, periodMs);
    this.#sweeper.unref();
  }
}
