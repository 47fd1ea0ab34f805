// A minimal RFC 6455 client over a raw TCP socket (text frames, masked), recording how and when the
// server closed it. Used by the load client and by the WebSocket part.
import crypto from 'node:crypto';
import net from 'node:net';
import {FrameReader, encodeFrame} from '../../src/verify/verify-app.ts';

export class BenchWebSocket {
  readonly socket: net.Socket;
  /** Code of the server's close frame; 1006 when the connection ended without one. */
  closeCode: number | null = null;
  /** Epoch ms at which the close frame (or the end of the connection) arrived. */
  closedAt: number | null = null;
  onMessage: ((text: string) => void) | null = null;
  onClose: (() => void) | null = null;
  readonly #reader = new FrameReader((opcode, payload) => this.#onFrame(opcode, payload));

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on(`data`, (chunk: Buffer) => this.#onData(chunk));
    socket.on(`error`, () => undefined);
    socket.once(`close`, () => this.#markClosed(1006));
  }

  get isOpen(): boolean {
    return this.closeCode === null && !this.socket.destroyed;
  }

  static connect(port: number, options: {path?: string; timeoutMs?: number} = {}): Promise<BenchWebSocket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, `127.0.0.1`);
      const key = crypto.randomBytes(16).toString(`base64`);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(Object.assign(new Error(`WebSocket upgrade timed out`), {code: `UPGRADE_TIMEOUT`}));
      }, options.timeoutMs ?? 10_000);
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      socket.once(`error`, fail);
      socket.once(`connect`, () => socket.write(`GET ${options.path ?? `/`} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf(`\r\n\r\n`);
        if (end === -1) return;
        socket.off(`data`, onData);
        socket.off(`error`, fail);
        clearTimeout(timer);
        const statusLine = head.subarray(0, end).toString().split(`\r\n`)[0] ?? ``;
        if (!statusLine.includes(` 101 `)) {
          socket.destroy();
          reject(Object.assign(new Error(`WebSocket upgrade refused: ${statusLine}`), {code: `UPGRADE_REFUSED ${statusLine.split(` `)[1] ?? ``}`.trim()}));
          return;
        }
        const ws = new BenchWebSocket(socket);
        const rest = head.subarray(end + 4);
        if (rest.length > 0) ws.#onData(rest);
        resolve(ws);
      };
      socket.on(`data`, onData);
    });
  }

  send(text: string): void {
    this.#sendFrame(0x1, Buffer.from(text));
  }

  /** Sends `text` and resolves with the next message (rejects on close or after `timeoutMs`). */
  roundTrip(text: string, timeoutMs = 5_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const previousMessage = this.onMessage;
      const previousClose = this.onClose;
      const finish = () => {
        clearTimeout(timer);
        this.onMessage = previousMessage;
        this.onClose = previousClose;
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`No WebSocket reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.onMessage = (message) => {
        finish();
        resolve(message);
      };
      this.onClose = () => {
        finish();
        reject(new Error(`WebSocket closed (code ${this.closeCode}) before a reply`));
      };
      this.send(text);
    });
  }

  /** A normal close (1000) from our side. */
  close(): void {
    if (!this.socket.destroyed) {
      this.#sendFrame(0x8, Buffer.from([0x03, 0xe8]));
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1_000).unref();
    }
  }

  #sendFrame(opcode: number, payload: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(encodeFrame(opcode, payload, true));
  }

  #markClosed(code: number): void {
    if (this.closeCode !== null) return;
    this.closeCode = code;
    this.closedAt = Date.now();
    this.onClose?.();
  }

  #onData(chunk: Buffer): void {
    this.#reader.push(chunk);
  }

  #onFrame(opcode: number, payload: Buffer): void {
    if (opcode === 0x1) {
      this.onMessage?.(payload.toString());
    } else if (opcode === 0x8) {
      this.#markClosed(payload.length >= 2 ? payload.readUInt16BE(0) : 1005);
      this.#sendFrame(0x8, Buffer.from(payload.subarray(0, 2)));
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1_000).unref();
    } else if (opcode === 0x9) {
      this.#sendFrame(0xa, Buffer.from(payload));
    }
  }
}
