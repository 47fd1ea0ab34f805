import {spawn} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {daemonExecutable, daemonLaunchEnv} from '../config/daemon-env.ts';
import {ControlClient} from '../control/client.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError, errorMessage} from '../errors/rollbridge-error.ts';
import {FrameReader, connectWebSocket, encodeFrame} from './verify-app.ts';

export type VerifyOptions = {
  /** How to run this program again: the binary, or node + main.ts. */
  /** How to run this rollbridge again (the CLI's `selfCommand`). */
  self: {file: string; args: string[]; standalone: boolean};
  env: Record<string, string | undefined>;
  connections: number;
  websockets: number;
  drainTimeoutMs: number;
  onProgress?: (line: string) => void;
};

export type VerifyReport = {
  ok: boolean;
  requests: number;
  failedRequests: number;
  failures: Record<string, number>;
  deploys: Array<{releaseId: string; durationMs: number}>;
  websockets: {opened: number; survivedSwitch: number; closedWith1001: number; lost: number};
  proxyPort: number;
  durationMs: number;
};

/**
 * The self-test an operator runs on a new host: starts a daemon with the built-in app as the release,
 * deploys it three times (the last two under keep-alive HTTP load with WebSockets open), and counts
 * every failed request and every WebSocket that was not kept until the drain deadline.
 */
export async function runVerify(options: VerifyOptions): Promise<VerifyReport> {
  const startedAt = performance.now();
  const progress = options.onProgress ?? (() => undefined);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rb-verify-`));
  const socketPath = path.join(dir, `control.sock`);
  const configPath = path.join(dir, `rollbridge.json`);
  const selfCommand = [options.self.file, ...options.self.args].map(shellQuote).join(` `);
  fs.writeFileSync(configPath, JSON.stringify({
    application: `rollbridge-verify`,
    control: {path: socketPath},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: options.drainTimeoutMs, wsCloseJitterMs: Math.min(500, options.drainTimeoutMs), forceStopTimeoutMs: 5_000},
    processes: [{id: `web`, command: `exec ${selfCommand} __verify-app`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 10, timeoutMs: 10_000}}],
  }, null, 2));
  for (let index = 1; index <= 3; index++) fs.mkdirSync(path.join(dir, `release-${index}`));

  const logFd = fs.openSync(path.join(dir, `daemon.log`), `a`);
  // Started as ensure-daemon starts a daemon: its V8 flags and malloc settings (config/daemon-env.ts).
  const executable = daemonExecutable(options.self);
  const daemon = spawn(executable.file, [...executable.args, `daemon`, `--config`, configPath], {cwd: dir, env: daemonLaunchEnv(options.env) as NodeJS.ProcessEnv, stdio: [`ignore`, logFd, logFd]});
  fs.closeSync(logFd);
  const daemonExited = new Promise<void>((resolve) => daemon.once(`exit`, () => resolve()));
  const call = async <T>(command: `status` | `deploy` | `shutdown`, params: Record<string, unknown>): Promise<T> => {
    const client = await ControlClient.connect(socketPath);
    try {
      return await client.call(command, params as never) as T;
    } finally {
      client.close();
    }
  };
  const agent = new http.Agent({keepAlive: true, maxSockets: options.connections});
  const sockets: VerifySocket[] = [];
  try {
    let status: {proxy: {port: number}} | undefined;
    const deadline = Date.now() + 15_000;
    while (!status) {
      if (daemon.exitCode !== null) throw daemonFailure(dir, `exited with code ${daemon.exitCode}`);
      if (Date.now() > deadline) throw daemonFailure(dir, `did not answer within 15 s`);
      status = await call<{proxy: {port: number}}>(`status`, {}).catch(() => undefined);
      if (!status) await delay(20);
    }
    const port = status.proxy.port;
    progress(`daemon started; proxy on 127.0.0.1:${port}`);
    const deploys: VerifyReport[`deploys`] = [];
    const deploy = async (index: number) => {
      const releaseId = `verify-${index}`;
      const result = await call<{durationMs: number}>(`deploy`, {releasePath: path.join(dir, `release-${index}`), releaseId});
      deploys.push({releaseId, durationMs: result.durationMs});
      progress(`deployed ${releaseId} in ${result.durationMs} ms`);
    };
    await deploy(1);

    let running = true;
    let requests = 0;
    const failures: Record<string, number> = {};
    const fail = (kind: string) => (failures[kind] = (failures[kind] ?? 0) + 1);
    const clients = Array.from({length: options.connections}, async () => {
      while (running) {
        const result = await get(port, agent);
        requests += 1;
        if (result !== 200) fail(typeof result === `number` ? `HTTP ${result}` : result);
      }
    });
    for (let index = 0; index < options.websockets; index++) sockets.push(await VerifySocket.open(port));
    const firstPrefix = `verify-1`;
    for (const socket of sockets) socket.expectPrefix = firstPrefix;
    const stopLoad = setTimeout(() => (running = false), 60_000);
    await delay(200);
    await deploy(2);
    // Every WebSocket opened before the switch must still answer from its own release.
    const survived = (await Promise.all(sockets.map((socket) => socket.ping(`after-switch`)))).filter(Boolean).length;
    progress(`${survived}/${sockets.length} WebSockets still answered by ${firstPrefix} after the switch`);
    await deploy(3);
    await delay(200);
    running = false;
    clearTimeout(stopLoad);
    await Promise.all(clients);
    // The drain deadline closes the remaining WebSockets of verify-1 with 1001.
    await Promise.race([Promise.all(sockets.map((socket) => socket.closed)), delay(options.drainTimeoutMs + 5_000)]);
    const closedWith1001 = sockets.filter((socket) => socket.closeCode === 1001).length;
    const lost = sockets.filter((socket) => socket.closeCode !== 1001 || socket.failed).length;
    const failedRequests = Object.values(failures).reduce((sum, count) => sum + count, 0);
    progress(`${requests} requests, ${failedRequests} failed; ${closedWith1001}/${sockets.length} WebSockets closed with 1001 at the drain deadline`);
    return {
      ok: failedRequests === 0 && lost === 0 && survived === sockets.length,
      requests,
      failedRequests,
      failures,
      deploys,
      websockets: {opened: sockets.length, survivedSwitch: survived, closedWith1001, lost},
      proxyPort: port,
      durationMs: Math.round(performance.now() - startedAt),
    };
  } finally {
    agent.destroy();
    for (const socket of sockets) socket.destroy();
    await call(`shutdown`, {}).catch(() => undefined);
    const forced = setTimeout(() => daemon.kill(`SIGKILL`), 10_000);
    if (daemon.exitCode === null) daemon.kill(`SIGTERM`);
    await daemonExited;
    clearTimeout(forced);
    fs.rmSync(dir, {recursive: true, force: true});
  }
}

function daemonFailure(dir: string, what: string): RollbridgeError {
  let log = ``;
  try {
    log = fs.readFileSync(path.join(dir, `daemon.log`), `utf8`).trim().split(`\n`).slice(-5).join(`\n`);
  } catch {
    // no log
  }
  return new RollbridgeError(ErrorCode.DAEMON_START_TIMEOUT, `The verify daemon ${what}${log ? `:\n${log}` : ``}`, {
    fix: `Run "rollbridge daemon --config <file>" in the foreground to see why it cannot start`,
  });
}

function get(port: number, agent: http.Agent): Promise<number | string> {
  return new Promise((resolve) => {
    const request = http.get({host: `127.0.0.1`, port, path: `/`, agent}, (response) => {
      response.resume();
      response.on(`end`, () => resolve(response.statusCode ?? 0));
      response.on(`error`, (error: NodeJS.ErrnoException) => resolve(error.code ?? errorMessage(error)));
    });
    request.on(`error`, (error: NodeJS.ErrnoException) => resolve(error.code ?? errorMessage(error)));
  });
}

function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:=-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

class VerifySocket {
  expectPrefix = ``;
  closeCode: number | null = null;
  failed = false;
  /** Settles when a close frame arrives or the connection ends. */
  readonly closed: Promise<void>;
  readonly #socket: net.Socket;
  readonly #waiting: Array<(message: string) => void> = [];

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    let settle: () => void = () => undefined;
    this.closed = new Promise((resolve) => (settle = resolve));
    socket.once(`close`, () => settle());
    const reader = new FrameReader((opcode, payload) => {
      if (opcode === 0x1) this.#waiting.shift()?.(payload.toString());
      if (opcode === 0x8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        socket.end(encodeFrame(0x8, payload.subarray(0, 2), true));
        settle();
      }
    });
    socket.on(`data`, (chunk: Buffer) => reader.push(chunk));
    socket.on(`error`, () => (this.failed = true));
  }

  static async open(port: number): Promise<VerifySocket> {
    const {socket, rest} = await connectWebSocket(port);
    const verifySocket = new VerifySocket(socket);
    if (rest.length > 0) socket.emit(`data`, rest);
    return verifySocket;
  }

  /** Sends a text frame; true when the reply comes from the expected release within 5 s. */
  async ping(text: string): Promise<boolean> {
    const reply = new Promise<string>((resolve) => this.#waiting.push(resolve));
    this.#socket.write(encodeFrame(0x1, Buffer.from(text), true));
    const result = await Promise.race([reply, delay(5_000).then(() => null)]);
    const ok = result === `${this.expectPrefix}:${text}`;
    if (!ok) this.failed = true;
    return ok;
  }

  destroy(): void {
    this.#socket.destroy();
  }
}
