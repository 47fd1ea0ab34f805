// A minimal RFC 6455 client over a raw TCP socket (text frames, masked), recording how and when the
// server closed it. Used by the load client and by the WebSocket part.
import type net from 'node:net';
import {FrameReader, connectWebSocket, encodeFrame} from '../../src/verify/verify-app.ts';

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

  static async connect(port: number, options: {path?: string; timeoutMs?: number} = {}): Promise<BenchWebSocket> {
    const {socket, rest} = await connectWebSocket(port, options);
    const ws = new BenchWebSocket(socket);
    if (rest.length > 0) ws.#onData(rest);
    return ws;
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
