import type net from 'node:net';
import type {Target, WebSocketPair} from './target.ts';
import type {UpstreamConnection, UpstreamOwner} from './upstream-pool.ts';
import {randomBytes} from '../util/random-bytes.ts';

/** After a 1001 close frame, how long the peers get to close before both sockets are destroyed. */
const CLOSE_GRACE_MS = 1_000;
const GOING_AWAY = 1001;

/**
 * Follows WebSocket frame boundaries in one direction without copying payloads (2-byte header,
 * extended length, mask key), so a close frame can be injected between frames.
 */
export class FrameTracker {
  readonly #header = Buffer.alloc(14);
  #headerHave = 0;
  #headerNeed = 2;
  #payloadLeft = 0;

  get atBoundary(): boolean {
    return this.#payloadLeft === 0 && this.#headerHave === 0;
  }

  /**
   * Advances over buffer[start..]. With stopAtBoundary, returns the offset just after the first
   * frame that ends in the buffer (or buffer.length); otherwise buffer.length.
   */
  advance(buffer: Buffer, start: number, stopAtBoundary: boolean): number {
    const end = buffer.length;
    let i = start;
    while (i < end) {
      if (this.#payloadLeft > 0) {
        const n = end - i < this.#payloadLeft ? end - i : this.#payloadLeft;
        this.#payloadLeft -= n;
        i += n;
        if (this.#payloadLeft === 0 && stopAtBoundary) return i;
        continue;
      }
      const header = this.#header;
      header[this.#headerHave++] = buffer[i++]!;
      if (this.#headerHave === 2) {
        const length7 = header[1]! & 0x7f;
        this.#headerNeed = 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + (header[1]! & 0x80 ? 4 : 0);
      }
      if (this.#headerHave >= 2 && this.#headerHave === this.#headerNeed) {
        const length7 = header[1]! & 0x7f;
        const length = length7 === 126
          ? header.readUInt16BE(2)
          : length7 === 127 ? header.readUInt32BE(2) * 2 ** 32 + header.readUInt32BE(6) : length7;
        this.#headerHave = 0;
        this.#headerNeed = 2;
        this.#payloadLeft = length;
        if (length === 0 && stopAtBoundary) return i;
      }
    }
    return i;
  }
}

/** A close frame with status 1001; masked when sent to the app (client-to-server frames must be). */
export function createCloseFrame(masked: boolean): Buffer {
  if (!masked) return Buffer.from([0x88, 0x02, GOING_AWAY >> 8, GOING_AWAY & 0xff]);
  const mask = randomBytes(4);
  return Buffer.from([0x88, 0x82, mask[0]!, mask[1]!, mask[2]!, mask[3]!, (GOING_AWAY >> 8) ^ mask[0]!, (GOING_AWAY & 0xff) ^ mask[1]!]);
}

/**
 * An upgraded client/app socket pair after a 101: raw bytes both ways with backpressure, counted
 * as one websocket on its target until either side closes.
 */
export class WebSocketRelay implements UpstreamOwner, WebSocketPair {
  readonly #client: net.Socket;
  readonly #upstream: UpstreamConnection;
  readonly #target: Target;
  readonly #toApp: FrameTracker | null;
  readonly #toClient: FrameTracker | null;
  #closing = false;
  #closedToApp = false;
  #closedToClient = false;
  #finished = false;
  #grace: NodeJS.Timeout | null = null;

  constructor(client: net.Socket, upstream: UpstreamConnection, target: Target, websocket: boolean) {
    this.#client = client;
    this.#upstream = upstream;
    this.#target = target;
    this.#toApp = websocket ? new FrameTracker() : null;
    this.#toClient = websocket ? new FrameTracker() : null;
    upstream.owner = this;
    target.addWebSocket(this);
    if (client.isPaused()) client.resume();
    if (upstream.socket.isPaused()) upstream.socket.resume();
  }

  /** The app's bytes that followed the 101 head in the same chunk (already written to the client). */
  trackToClient(buffer: Buffer, start: number): void {
    this.#toClient?.advance(buffer, start, false);
  }

  fromClient(chunk: Buffer): void {
    if (this.#closedToApp) return;
    const tracker = this.#toApp;
    if (this.#closing && tracker !== null) {
      const boundary = tracker.atBoundary ? 0 : tracker.advance(chunk, 0, true);
      if (boundary < chunk.length || tracker.atBoundary) {
        if (boundary > 0) this.#upstream.socket.write(chunk.subarray(0, boundary));
        this.#sendCloseToApp();
        return;
      }
    } else if (tracker !== null) {
      tracker.advance(chunk, 0, false);
    }
    if (!this.#upstream.socket.write(chunk)) this.#client.pause();
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.#closedToClient) return;
    const tracker = this.#toClient;
    if (this.#closing && tracker !== null) {
      const boundary = tracker.atBoundary ? 0 : tracker.advance(chunk, 0, true);
      if (boundary < chunk.length || tracker.atBoundary) {
        if (boundary > 0) this.#client.write(chunk.subarray(0, boundary));
        this.#sendCloseToClient();
        return;
      }
    } else if (tracker !== null) {
      tracker.advance(chunk, 0, false);
    }
    if (!this.#client.write(chunk)) this.#upstream.socket.pause();
  }

  onClientDrain(): void {
    if (this.#upstream.socket.isPaused()) this.#upstream.socket.resume();
  }

  onUpstreamDrain(): void {
    if (this.#client.isPaused()) this.#client.resume();
  }

  onClientEnd(): void {
    this.#upstream.socket.end();
  }

  onUpstreamGone(_error: Error | undefined): void {
    if (this.#client.writable) this.#client.destroySoon();
    else this.#client.destroy();
    this.#finish();
  }

  onClientClose(): void {
    this.#upstream.destroy();
    this.#finish();
  }

  closeGoingAway(): void {
    if (this.#finished || this.#closing) return;
    this.#closing = true;
    if (this.#toApp === null || this.#toClient === null) {
      this.destroy();
      return;
    }
    if (this.#toApp.atBoundary) this.#sendCloseToApp();
    if (this.#toClient.atBoundary) this.#sendCloseToClient();
    this.#grace = setTimeout(() => this.destroy(), CLOSE_GRACE_MS);
  }

  destroy(): void {
    this.#client.destroy();
    this.#upstream.destroy();
    this.#finish();
  }

  // Each close frame goes out as soon as its direction is between frames; the TCP connections end
  // once both have gone, so a client can still finish the frame it was sending when the app's
  // direction reached a boundary first.
  #sendCloseToApp(): void {
    this.#closedToApp = true;
    this.#upstream.socket.write(createCloseFrame(true));
    if (this.#client.isPaused()) this.#client.resume();
    this.#endIfClosed();
  }

  #sendCloseToClient(): void {
    this.#closedToClient = true;
    this.#client.write(createCloseFrame(false));
    if (this.#upstream.socket.isPaused()) this.#upstream.socket.resume();
    this.#endIfClosed();
  }

  #endIfClosed(): void {
    if (!this.#closedToApp || !this.#closedToClient) return;
    this.#upstream.socket.end();
    this.#client.end();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#grace !== null) clearTimeout(this.#grace);
    this.#target.removeWebSocket(this);
  }
}
