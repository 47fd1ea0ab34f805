import http from 'node:http';
import type net from 'node:net';
import {FrameReader, connectWebSocket, encodeFrame} from '../../src/verify/verify-app.ts';
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

  static async connect(port: number, path = `/`): Promise<TestWebSocket> {
    const {socket, rest} = await connectWebSocket(port, {path});
    const ws = new TestWebSocket(socket);
    if (rest.length > 0) ws.#reader.push(rest);
    return ws;
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
