import net from 'node:net';
import path from 'node:path';
import type {TestContext} from 'node:test';
import {ControlServer} from '../../src/control/server.ts';
import type {ControlHandlers, ControlServerOptions} from '../../src/control/server.ts';
import {Logger} from '../../src/log/logger.ts';
import type {LogRecord} from '../../src/log/logger.ts';
import {createTempDir} from '../helpers/temp-dir.ts';

export const STATUS = {application: `demo`, activeReleaseId: `r1`, proxy: {host: `127.0.0.1`, port: 8182}};

const TRAFFIC = {mode: `open` as const, pause: null, maintenance: null, held: 0, maxHeld: 1_000, switchHold: false};

/** Handlers answering with fixed values; tests override the ones they exercise. */
export function createTestHandlers(overrides: Partial<ControlHandlers> = {}): ControlHandlers {
  return {
    status: async () => STATUS,
    deploy: async (params) => ({activeReleaseId: params.releaseId ?? `r2`, previousReleaseId: `r1`, releaseId: params.releaseId ?? `r2`, durationMs: 5}),
    rollback: async () => ({activeReleaseId: `r0`, previousReleaseId: `r1`, releaseId: `r0`, durationMs: 3}),
    stop: async () => ({...STATUS, activeReleaseId: null}),
    restart: async () => ({restarted: [`worker`]}),
    events: async (params) => ({events: [{at: `2026-01-01T00:00:00.000Z`, message: `Release switched`, data: {limit: params.limit ?? null}}]}),
    logs: async () => ({sources: [{id: `web`, source: `release r1 (active)`, logs: [{at: `2026-01-01T00:00:00.000Z`, stream: `stdout`, line: `hello`}]}]}),
    shutdown: async () => ({message: `shutdown`}),
    replace: async () => ({previousPid: process.pid, pid: process.pid, durationMs: 1}),
    pause: async () => ({changed: true, traffic: TRAFFIC}),
    resume: async () => ({changed: true, released: 0, traffic: TRAFFIC}),
    maintenance: async () => ({changed: true, traffic: TRAFFIC}),
    takeover: async (params) => ({activeReleaseId: params.releaseId ?? `r2`, portGapMs: 4, legacy: {stopped: params.legacy.processes.length, killed: 0}, durationMs: 7}),
    ...overrides,
  };
}

export type TestServer = {server: ControlServer; socketPath: string; dir: string; records: LogRecord[]};

/** A real ControlServer on a socket in a fresh short temp dir, closed after the test. */
export async function startControlServer(t: TestContext, options: Partial<ControlServerOptions> & {handlers?: ControlHandlers} = {}): Promise<TestServer> {
  const dir = createTempDir(t, `rbc-`);
  const records: LogRecord[] = [];
  const socketPath = options.path ?? path.join(dir, `control.sock`);
  const server = await ControlServer.start({
    application: `demo`,
    maxMessageBytes: 64 * 1024,
    handlers: createTestHandlers(),
    log: new Logger({level: `debug`, sinks: [(record) => records.push(record)]}),
    ...options,
    path: socketPath,
  });
  t.after(() => server.close());
  return {server, socketPath, dir, records};
}

/** A raw connection that collects parsed reply lines, for speaking the wire format directly. */
export class RawConnection {
  readonly socket: net.Socket;
  readonly frames: Record<string, unknown>[] = [];
  readonly closed: Promise<void>;
  #buffer = ``;
  #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding(`utf8`);
    socket.on(`error`, () => {});
    socket.on(`data`, (chunk: string) => {
      this.#buffer += chunk;
      let newline: number;
      while ((newline = this.#buffer.indexOf(`\n`)) !== -1) {
        this.frames.push(JSON.parse(this.#buffer.slice(0, newline)) as Record<string, unknown>);
        this.#buffer = this.#buffer.slice(newline + 1);
      }
      this.#notify();
    });
    this.closed = new Promise((resolve) => socket.on(`close`, () => {
      this.#notify();
      resolve();
    }));
  }

  static async open(t: TestContext, socketPath: string): Promise<RawConnection> {
    const socket = net.connect(socketPath);
    await new Promise<void>((resolve, reject) => {
      socket.once(`connect`, resolve);
      socket.once(`error`, reject);
    });
    t.after(() => socket.destroy());
    return new RawConnection(socket);
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** Resolves once `count` frames have arrived (or rejects if the connection closes first). */
  async waitForFrames(count: number): Promise<Record<string, unknown>[]> {
    while (this.frames.length < count) {
      if (this.socket.destroyed) throw new Error(`Connection closed after ${this.frames.length} of ${count} frames`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return this.frames.slice(0, count);
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}
