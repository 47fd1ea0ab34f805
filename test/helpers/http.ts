import http from 'node:http';
import net from 'node:net';
import crypto from 'node:crypto';
import {FrameReader, encodeFrame} from '../../src/verify/verify-app.ts';
import {waitFor} from './wait-for.ts';

export type HttpResult = {status: number; body: string; headers: http.IncomingHttpHeaders};

/** One request on a fresh connection (no keep-alive reuse between calls unless an agent is given). */
export function httpGet(port: number, path = `/`, options: {agent?: http.Agent; headers?: Record<string, string>; method?: string; body?: string} = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const request = http.request({host: `127.0.0.1`, port, path, method: options.method ?? `GET`, agent: options.agent ?? false, headers: options.headers}, (response) => {
      let body = ``;
      response.setEncoding(`utf8`);
      response.on(`data`, (chunk: string) => (body += chunk));
      response.on(`end`, () => resolve({status: response.statusCode ?? 0, body, headers: response.headers}));
      response.on(`error`, reject);
    });
    request.on(`error`, reject);
    request.end(options.body);
  });
}

/** A minimal WebSocket client over a raw socket (RFC 6455 text frames, masked), built on verify's frame codec. */
export class TestWebSocket {
  readonly socket: net.Socket;
  readonly messages: string[] = [];
  closeCode: number | null = null;
  readonly closed: Promise<void>;
  readonly #reader: FrameReader;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once(`close`, () => resolve()));
    this.#reader = new FrameReader((opcode, payload) => {
      if (opcode === 0x1) this.messages.push(payload.toString());
      if (opcode === 0x8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        socket.end();
      }
    });
    socket.on(`data`, (chunk: Buffer) => this.#reader.push(chunk));
    socket.on(`error`, () => undefined);
  }

  static connect(port: number, path = `/`): Promise<TestWebSocket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, `127.0.0.1`);
      const key = crypto.randomBytes(16).toString(`base64`);
      socket.once(`error`, reject);
      socket.once(`connect`, () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf(`\r\n\r\n`);
        if (end === -1) return;
        socket.off(`data`, onData);
        socket.off(`error`, reject);
        const status = head.subarray(0, end).toString().split(`\r\n`)[0] ?? ``;
        if (!status.includes(` 101 `)) {
          socket.destroy();
          reject(new Error(`WebSocket upgrade refused: ${status}`));
          return;
        }
        const ws = new TestWebSocket(socket);
        const rest = head.subarray(end + 4);
        if (rest.length > 0) ws.#reader.push(rest);
        resolve(ws);
      };
      socket.on(`data`, onData);
    });
  }

  send(text: string): void {
    this.socket.write(encodeFrame(0x1, Buffer.from(text), true));
  }

  /** Sends `text` and resolves with the next message. */
  async roundTrip(text: string, timeoutMs = 5_000): Promise<string> {
    const count = this.messages.length;
    this.send(text);
    return waitFor(() => {
      if (this.closeCode !== null || this.socket.destroyed) throw new Error(`WebSocket closed before a reply (close code ${this.closeCode})`);
      return this.messages[count];
    }, {timeoutMs, intervalMs: 5, what: `a WebSocket reply`});
  }

  close(): void {
    this.socket.destroy();
  }
}
