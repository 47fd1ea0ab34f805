import crypto from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import {connect as netConnect} from 'node:net';

/**
 * The built-in app `rollbridge verify` deploys: HTTP (`/ping`, `/` → release id) and a WebSocket echo
 * that prefixes replies with the release id. It runs as `rollbridge __verify-app` (the binary itself),
 * so a host needs nothing else. On SIGTERM it stops gracefully.
 */
export function runVerifyApp(env: Record<string, string | undefined>): Promise<void> {
  const port = Number(env.ROLLBRIDGE_PORT);
  const releaseId = env.ROLLBRIDGE_RELEASE_ID ?? `unknown`;
  const sockets = new Set<net.Socket>();
  const server = http.createServer((request, response) => {
    response.setHeader(`content-type`, `text/plain`);
    response.end(request.url === `/ping` ? `pong\n` : `${releaseId}\n`);
  });
  server.on(`upgrade`, (request: http.IncomingMessage, socket: net.Socket) => {
    const key = request.headers[`sec-websocket-key`];
    if (typeof key !== `string`) {
      socket.end(`HTTP/1.1 400 Bad Request\r\n\r\n`);
      return;
    }
    const accept = crypto.createHash(`sha1`).update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC11B5B`).digest(`base64`);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    sockets.add(socket);
    socket.on(`close`, () => sockets.delete(socket));
    socket.on(`error`, () => socket.destroy());
    const reader = new FrameReader((opcode, payload) => {
      if (opcode === 0x8) socket.end(encodeFrame(0x8, payload.subarray(0, 2), false));
      else if (opcode === 0x1) socket.write(encodeFrame(0x1, Buffer.from(`${releaseId}:${payload.toString()}`), false));
      else if (opcode === 0x9) socket.write(encodeFrame(0xa, payload, false));
    });
    socket.on(`data`, (chunk: Buffer) => reader.push(chunk));
  });
  return new Promise((resolve) => {
    process.once(`SIGTERM`, () => {
      server.close(() => resolve());
      server.closeIdleConnections();
      for (const socket of sockets) socket.end(encodeFrame(0x8, Buffer.from([0x03, 0xe9]), false));
    });
    server.listen(port, `127.0.0.1`);
  });
}

/** Encodes one WebSocket frame (FIN set); client frames must be masked. */
export function encodeFrame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const length = payload.length;
  const maskBit = masked ? 0x80 : 0;
  let header: Buffer;
  if (length < 126) {
    header = Buffer.from([0x80 | opcode, maskBit | length]);
  } else if (length < 65_536) {
    header = Buffer.from([0x80 | opcode, maskBit | 126, length >> 8, length & 0xff]);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  if (!masked) return Buffer.concat([header, payload]);
  const mask = crypto.randomBytes(4);
  const body = Buffer.alloc(length);
  for (let index = 0; index < length; index++) body[index] = (payload[index] ?? 0) ^ (mask[index % 4] ?? 0);
  return Buffer.concat([header, mask, body]);
}

/** Splits a byte stream into WebSocket frames (payloads unmasked). */
export class FrameReader {
  #buffer: Buffer = Buffer.alloc(0);
  readonly #onFrame: (opcode: number, payload: Buffer) => void;

  constructor(onFrame: (opcode: number, payload: Buffer) => void) {
    this.#onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= 2) {
      const second = this.#buffer[1] ?? 0;
      let length = second & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.#buffer.length < 4) return;
        length = this.#buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.#buffer.length < 10) return;
        length = Number(this.#buffer.readBigUInt64BE(2));
        offset = 10;
      }
      const masked = (second & 0x80) !== 0;
      const total = offset + (masked ? 4 : 0) + length;
      if (this.#buffer.length < total) return;
      const payload = Buffer.from(this.#buffer.subarray(total - length, total));
      if (masked) {
        const mask = this.#buffer.subarray(offset, offset + 4);
        for (let index = 0; index < payload.length; index++) payload[index] = (payload[index] ?? 0) ^ (mask[index % 4] ?? 0);
      }
      const opcode = (this.#buffer[0] ?? 0) & 0x0f;
      this.#buffer = this.#buffer.subarray(total);
      this.#onFrame(opcode, payload);
    }
  }
}

export type WebSocketUpgradeError = Error & {code: string};

/**
 * Opens a WebSocket (client side): TCP connect to 127.0.0.1:port, the upgrade request, and the 101
 * answer. Resolves with the socket and any bytes that arrived after the head (the first frames).
 * Rejects with code `UPGRADE_REFUSED <status>` or `UPGRADE_TIMEOUT`, or the connection error.
 */
export function connectWebSocket(port: number, options: {path?: string; timeoutMs?: number} = {}): Promise<{socket: net.Socket; rest: Buffer}> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, `127.0.0.1`);
    const key = crypto.randomBytes(16).toString(`base64`);
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(Object.assign(new Error(`WebSocket upgrade timed out`), {code: `UPGRADE_TIMEOUT`})), options.timeoutMs ?? 10_000);
    socket.once(`error`, fail);
    socket.once(`connect`, () => socket.write(`GET ${options.path ?? `/`} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf(`\r\n\r\n`);
      if (end === -1) return;
      socket.off(`data`, onData);
      socket.off(`error`, fail);
      const statusLine = head.subarray(0, end).toString().split(`\r\n`)[0] ?? ``;
      if (!statusLine.includes(` 101 `)) {
        fail(Object.assign(new Error(`WebSocket upgrade refused: ${statusLine}`), {code: `UPGRADE_REFUSED ${statusLine.split(` `)[1] ?? ``}`.trim()}));
        return;
      }
      clearTimeout(timer);
      resolve({socket, rest: head.subarray(end + 4)});
    };
    socket.on(`data`, onData);
  });
}
