import net from 'node:net';
import {sharedReadOptions} from './shared-read.ts';

/** Whoever currently uses an upstream connection: an HTTP exchange or a WebSocket relay. */
export type UpstreamOwner = {
  onUpstreamData(chunk: Buffer): void;
  /** The app ended, errored or closed the connection (called once per owner). */
  onUpstreamGone(error: Error | undefined): void;
  onUpstreamDrain(): void;
};

/**
 * One TCP connection to the app. Listeners are attached once and dispatch to the current owner,
 * so handing the connection from request to request costs nothing.
 */
export class UpstreamConnection {
  readonly socket: net.Socket;
  owner: UpstreamOwner | null = null;
  /** True once it has served a request and gone back to the pool. */
  reused = false;
  idleSince = 0;
  readonly #pool: UpstreamPool;
  #error: Error | undefined;

  constructor(pool: UpstreamPool, host: string, port: number) {
    this.#pool = pool;
    this.socket = net.connect({host, port, noDelay: true, onread: sharedReadOptions((chunk) => this.#onRead(chunk))});
    this.socket.on(`drain`, () => this.owner?.onUpstreamDrain());
    this.socket.on(`end`, () => this.#gone());
    this.socket.on(`error`, (error) => {
      this.#error = error;
      this.#gone();
    });
    this.socket.on(`close`, () => {
      this.#gone();
      this.#pool.forget(this);
    });
  }

  /** One read (shared-read.ts); returns true to keep reading (pausing is the owner's, via socket.pause()). */
  #onRead(chunk: Buffer): boolean {
    const owner = this.owner;
    if (owner === null) {
      this.socket.destroy(); // an idle app connection must not speak
      return false;
    }
    owner.onUpstreamData(chunk);
    return true;
  }

  #gone(): void {
    const owner = this.owner;
    if (owner === null) {
      this.#pool.removeIdle(this);
      this.socket.destroy();
      return;
    }
    this.owner = null;
    owner.onUpstreamGone(this.#error);
  }

  /** Detaches the owner and closes the connection without notifying anyone. */
  destroy(): void {
    this.owner = null;
    this.socket.destroy();
  }
}

/** Keep-alive connections to one target: a LIFO stack so idle ones age out at the bottom. */
export class UpstreamPool {
  readonly #host: string;
  readonly #port: number;
  readonly #idle: UpstreamConnection[] = [];
  readonly #all = new Set<UpstreamConnection>();
  #closed = false;

  constructor(host: string, port: number) {
    this.#host = host;
    this.#port = port;
  }

  get size(): {idle: number; total: number} {
    return {idle: this.#idle.length, total: this.#all.size};
  }

  /**
   * The most recently used pooled connection (marked reused) if it went idle less than `maxIdleMs`
   * ago, else a new one. Older idle connections are closed now, not at the next sweep: the app may
   * be about to time them out.
   */
  acquire(maxIdleMs: number, idleTimeoutMs: number): UpstreamConnection {
    const idle = this.#idle;
    const now = Date.now();
    while (idle.length > 0) {
      const pooled = idle[idle.length - 1]!;
      const idleMs = now - pooled.idleSince;
      if (idleMs >= idleTimeoutMs) {
        this.sweep(now, idleTimeoutMs);
        break;
      }
      if (idleMs >= maxIdleMs) break; // the stack is LIFO: every one below is older
      idle.pop();
      return pooled;
    }
    return this.connect();
  }

  connect(): UpstreamConnection {
    const connection = new UpstreamConnection(this, this.#host, this.#port);
    this.#all.add(connection);
    if (this.#closed) connection.destroy();
    return connection;
  }

  /** Back to the pool when the exchange was clean, else destroyed. */
  release(connection: UpstreamConnection, reusable: boolean): void {
    connection.owner = null;
    if (!reusable || this.#closed || connection.socket.destroyed || connection.socket.readyState !== `open`) {
      connection.destroy();
      return;
    }
    connection.reused = true;
    connection.idleSince = Date.now();
    this.#idle.push(connection);
  }

  removeIdle(connection: UpstreamConnection): void {
    const index = this.#idle.indexOf(connection);
    if (index !== -1) this.#idle.splice(index, 1);
  }

  forget(connection: UpstreamConnection): void {
    this.removeIdle(connection);
    this.#all.delete(connection);
  }

  /** Drops idle connections older than idleTimeoutMs. */
  sweep(now: number, idleTimeoutMs: number): void {
    const idle = this.#idle;
    let stale = 0;
    while (stale < idle.length && now - idle[stale]!.idleSince >= idleTimeoutMs) stale++;
    if (stale === 0) return;
    for (const connection of idle.splice(0, stale)) connection.destroy();
  }

  /** Stops reuse: closes idle connections now; busy ones are destroyed when released. */
  closeIdle(): void {
    this.#closed = true;
    for (const connection of this.#idle.splice(0)) connection.destroy();
  }

  destroyAll(): void {
    this.closeIdle();
    for (const connection of [...this.#all]) {
      const owner = connection.owner;
      if (owner === null) {
        connection.destroy();
      } else {
        connection.socket.destroy();
      }
    }
  }
}
