/** Builders for proxy tests: a proxy with short test defaults, real upstream apps on port 0, raw clients. */
import crypto from 'node:crypto';
import {once} from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type {TestContext} from 'node:test';
import {createSilentLogger} from '../../src/log/logger.ts';
import {ProxyServer} from '../../src/proxy/proxy-server.ts';
import type {ProxyOptions} from '../../src/proxy/proxy-server.ts';
import type {Target} from '../../src/proxy/target.ts';

type After = Pick<TestContext, `after`>;

export async function startProxy(t: After, overrides: Partial<ProxyOptions> = {}): Promise<ProxyServer> {
  const proxy = await ProxyServer.start({
    host: `127.0.0.1`, port: 0, trustForwarded: [`loopback`], maxHeaderBytes: 16 * 1024,
    requestHeadTimeoutMs: 5_000, clientIdleTimeoutMs: 10_000, upstreamResponseTimeoutMs: 10_000,
    upstreamIdleTimeoutMs: 4_000, clientBodyTimeoutMs: 10_000, clientSendTimeoutMs: 10_000, maxConnections: 1_000,
    log: createSilentLogger(), ...overrides,
  });
  t.after(() => proxy.close());
  return proxy;
}

export type TestApp = {
  server: http.Server;
  port: number;
  /** TCP connections the app accepted so far. */
  connections: number;
  /** Close codes the app received from WebSocket clients. */
  wsCloseCodes: number[];
  /** Text messages the app received from WebSocket clients, and raw bytes received after upgrades. */
  wsMessages: string[];
  wsBytes: number;
  wsSockets: Set<net.Socket>;
};

/** A real http.Server on port 0 (default handler: 200 `<name>`), with a WebSocket echo on upgrade. */
export async function startApp(t: After, name: string, handler?: http.RequestListener, options: http.ServerOptions = {}): Promise<TestApp> {
  const server = http.createServer(options, handler ?? ((_req, res) => {
    res.setHeader(`Content-Type`, `text/plain`);
    res.end(name);
  }));
  const app: TestApp = {server, port: 0, connections: 0, wsCloseCodes: [], wsMessages: [], wsBytes: 0, wsSockets: new Set()};
  server.on(`connection`, () => app.connections++);
  server.on(`upgrade`, (req, socket: net.Socket, head) => acceptWebSocket(app, name, req, socket, head));
  server.listen(0, `127.0.0.1`);
  await once(server, `listening`);
  app.port = (server.address() as net.AddressInfo).port;
  t.after(() => {
    for (const socket of app.wsSockets) socket.destroy();
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return app;
}

function acceptWebSocket(app: TestApp, name: string, req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
  const key = String(req.headers[`sec-websocket-key`]);
  const accept = crypto.createHash(`sha1`).update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC11D65`).digest(`base64`);
  app.wsSockets.add(socket);
  socket.on(`close`, () => app.wsSockets.delete(socket));
  socket.on(`error`, () => undefined);
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  socket.write(encodeFrame(1, Buffer.from(`hello from ${name}`), false));
  let buffer = head;
  const onData = (chunk: Buffer): void => {
    app.wsBytes += chunk.length;
    buffer = Buffer.concat([buffer, chunk]);
    while (true) {
      const frame = decodeFrame(buffer);
      if (frame === null) return;
      buffer = buffer.subarray(frame.size);
      if (frame.opcode === 8) {
        app.wsCloseCodes.push(frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005);
        socket.end(encodeFrame(8, frame.payload.subarray(0, 2), false));
        return;
      }
      if (frame.opcode === 1) app.wsMessages.push(frame.payload.toString());
      if (frame.opcode === 1) socket.write(encodeFrame(1, Buffer.from(`${name}: ${frame.payload.toString()}`), false));
    }
  };
  socket.on(`data`, onData);
  if (head.length > 0) onData(Buffer.alloc(0));
}

export function encodeFrame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const length = payload.length;
  const header = length < 126 ? Buffer.from([0x80 | opcode, length]) : length < 65536
    ? Buffer.from([0x80 | opcode, 126, length >> 8, length & 0xff])
    : Buffer.concat([Buffer.from([0x80 | opcode, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(length)); return b; })()]);
  if (!masked) return Buffer.concat([header, payload]);
  header[1]! |= 0x80;
  const mask = crypto.randomBytes(4);
  const body = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([header, mask, body]);
}

export function decodeFrame(buffer: Buffer): {opcode: number; payload: Buffer; size: number} | null {
  if (buffer.length < 2) return null;
  const masked = (buffer[1]! & 0x80) !== 0;
  let length = buffer[1]! & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buffer.length < 4) return null;
    length = buffer.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buffer.length < 10) return null;
    length = Number(buffer.readBigUInt64BE(2));
    offset = 10;
  }
  const maskOffset = offset;
  if (masked) offset += 4;
  if (buffer.length < offset + length) return null;
  let payload = Buffer.from(buffer.subarray(offset, offset + length));
  if (masked) payload = Buffer.from(payload.map((byte, i) => byte ^ buffer[maskOffset + (i % 4)]!));
  return {opcode: buffer[0]! & 0x0f, payload, size: offset + length};
}

export function addTarget(proxy: ProxyServer, app: TestApp, releaseId: string): Target {
  return proxy.createTarget({releaseId, processId: `web`, host: `127.0.0.1`, port: app.port});
}

export type Response = {status: number; headers: http.IncomingHttpHeaders; body: string};

/** One request through an http.Agent (keep-alive if the agent keeps alive). */
export function request(port: number, options: {path?: string; method?: string; agent?: http.Agent | false; headers?: http.OutgoingHttpHeaders; body?: string | Buffer} = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request({host: `127.0.0.1`, port, path: options.path ?? `/`, method: options.method ?? `GET`, agent: options.agent ?? false, headers: options.headers}, (res) => {
      const chunks: Buffer[] = [];
      res.on(`data`, (chunk: Buffer) => chunks.push(chunk));
      res.on(`end`, () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString()}));
      res.on(`error`, reject);
    });
    req.on(`error`, reject);
    req.end(options.body);
  });
}

/** Writes raw bytes on a fresh connection and resolves with everything read until the proxy closes it. */
export function rawExchange(port: number, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, `127.0.0.1`);
    const chunks: Buffer[] = [];
    socket.on(`data`, (chunk: Buffer) => chunks.push(chunk));
    socket.on(`error`, reject);
    socket.on(`close`, () => resolve(Buffer.concat(chunks).toString(`latin1`)));
    socket.write(bytes);
  });
}

/** A raw client connection for keep-alive and pipelining tests: read until `count` responses have arrived. */
export function rawClient(t: After, port: number): {socket: net.Socket; readUntil(predicate: (text: string) => boolean): Promise<string>} {
  const socket = net.connect(port, `127.0.0.1`);
  t.after(() => socket.destroy());
  let text = ``;
  const waiters: Array<() => void> = [];
  socket.on(`data`, (chunk: Buffer) => {
    text += chunk.toString(`latin1`);
    for (const waiter of waiters.splice(0)) waiter();
  });
  socket.on(`close`, () => {
    for (const waiter of waiters.splice(0)) waiter();
  });
  socket.on(`error`, () => undefined);
  return {
    socket,
    readUntil(predicate) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (predicate(text)) resolve(text);
          else if (socket.destroyed || socket.readableEnded) reject(new Error(`Connection closed; read so far: ${JSON.stringify(text)}`));
          else waiters.push(check);
        };
        check();
      });
    },
  };
}

export function countOf(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

/** A raw WebSocket client (RFC 6455 text frames, masked) that records the close code it receives. */
export type RawWebSocket = {
  socket: net.Socket;
  messages: string[];
  /** The close code received so far (null before a close frame). */
  readonly closeCode: number | null;
  /** Resolves when the TCP connection closes, with the close code received (null if none) and the time. */
  closed: Promise<{code: number | null; at: number}>;
  send(text: string): void;
  close(code: number): void;
};

export function connectWebSocket(t: After, port: number, path = `/`): Promise<RawWebSocket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, `127.0.0.1`);
    t.after(() => socket.destroy());
    const key = crypto.randomBytes(16).toString(`base64`);
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    let code: number | null = null;
    const ws: RawWebSocket = {
      socket,
      messages: [],
      get closeCode() {
        return code;
      },
      closed: new Promise((resolveClosed) => socket.once(`close`, () => resolveClosed({code, at: performance.now()}))),
      send: (text) => socket.write(encodeFrame(1, Buffer.from(text), true)),
      close: (closeCode) => {
        const payload = Buffer.alloc(2);
        payload.writeUInt16BE(closeCode);
        socket.write(encodeFrame(8, payload, true));
      },
    };
    socket.on(`error`, (error) => (upgraded ? undefined : reject(error)));
    socket.on(`data`, (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf(`\r\n\r\n`);
        if (end === -1) return;
        const status = buffer.subarray(0, end).toString(`latin1`).split(`\r\n`)[0]!;
        if (!status.includes(` 101 `)) {
          reject(new Error(`Upgrade refused: ${status}`));
          socket.destroy();
          return;
        }
        upgraded = true;
        buffer = buffer.subarray(end + 4);
        resolve(ws);
      }
      while (true) {
        const frame = decodeFrame(buffer);
        if (frame === null) return;
        buffer = buffer.subarray(frame.size);
        if (frame.opcode === 8) code = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005;
        else ws.messages.push(frame.payload.toString());
      }
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
}
