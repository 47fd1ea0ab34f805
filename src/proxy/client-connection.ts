import diagnosticsChannel from 'node:diagnostics_channel';
import type net from 'node:net';
import {requestTargetOf} from './access-log.ts';
import type {AccessLog} from './access-log.ts';
import {BodyFramer, Framing} from './body-framing.ts';
import {readAcceptedIntoSharedBuffer} from './shared-read.ts';
import {errorResponse} from './error-response.ts';
import type {ProxyErrorStatus} from './error-response.ts';
import {buildUpstreamHead, resolvePeer, resolveRequestId} from './forwarded-headers.ts';
import type {Peer} from './forwarded-headers.ts';
import {WebSocketRelay} from './forward-websocket.ts';
import {HEAD_TERMINATOR, isRequestKeepAlive, mergeRanges, parseRequestHead, parseResponseHead, rebuildHead} from './http-head.ts';
import type {RequestHead} from './http-head.ts';
import {METHOD_CLASSES, STATUS_ABORTED, STATUS_PROXY_ERROR, methodClassOf, statusClassOf} from './request-metrics.ts';
import type {RequestMetrics} from './request-metrics.ts';
import type {Target} from './target.ts';
import {GATE_OPEN, GATE_REFUSE} from './traffic-gate.ts';
import type {HeldRequest, TrafficGate} from './traffic-gate.ts';
import type {UpstreamConnection, UpstreamOwner} from './upstream-pool.ts';

/** The live-reloadable limits every connection reads at use time. */
export type ProxySettings = {
  trustForwarded: string[];
  maxHeaderBytes: number;
  requestHeadTimeoutMs: number;
  clientIdleTimeoutMs: number;
  upstreamResponseTimeoutMs: number;
  upstreamIdleTimeoutMs: number;
  clientBodyTimeoutMs: number;
  clientSendTimeoutMs: number;
};

/** What a client connection needs from the server that accepted it. */
export type ConnectionHost = {
  readonly settings: ProxySettings;
  /** Pause, maintenance and the switch hold: checked once per request. */
  readonly gate: TrafficGate;
  /** The active target for this request (a canary split may pick the canary and set `client.canaryCookie`). */
  pickTarget(head: RequestHead, client: RoutedClient): Target | null;
  /** Another serving target for a request that failed on `failed` before any response byte (replicas, or the fallback release of a watch window). */
  pickFallback(failed: Target): Target | null;
  forget(connection: ClientConnection): void;
  reportFailure(error: unknown): void;
  /** Per-request counters (`metrics.listen`), null when off. */
  readonly metrics: RequestMetrics | null;
  /** `proxy.accessLog`, null when off (request ids are added only with it). */
  readonly accessLog: AccessLog | null;
};

/** What routing may read from, and note on, the connection a request came from. */
export type RoutedClient = {
  readonly peer: Peer;
  /** A Set-Cookie line (CRLF-terminated) to add to this request's response (canary stickiness), or null. */
  canaryCookie: string | null;
};

export type RequestEvent = {
  method: string;
  statusCode: number;
  releaseId: string;
  processId: string;
  retried: boolean;
  durationMs: number;
};

/** Published once per completed request when someone subscribes (zero cost otherwise). */
export const requestChannel = diagnosticsChannel.channel(`rollbridge:proxy:request`);

const METHOD_UNKNOWN = METHOD_CLASSES.length - 1;

const ST_HEAD = 0;
const ST_BODY = 1;
const ST_WAIT = 2;
const ST_WEBSOCKET = 3;
const ST_CLOSED = 4;
/** The request's head is parsed and parked by the traffic gate (paused); the socket reads nothing more. */
const ST_HELD = 5;

const T_NONE = 0;
const T_IDLE = 1;
const T_HEAD = 2;
const T_RESPONSE = 3;
const T_LINGER = 4;
const T_BODY = 5;
const T_SEND = 6;

/** RFC 9110 §9.2.2: the methods a proxy may send again after a connection failed (RFC 9112 §9.3.1). */
const IDEMPOTENT = new Set([`GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT`, `DELETE`]);
/** Request bytes (head + body) kept to send again: a refused connection (any method), the keep-alive race (idempotent only). */
const MAX_REPLAY_BYTES = 64 * 1024;
const MAX_RESPONSE_HEAD_BYTES = 128 * 1024;
/** Bytes a client may send ahead of its request's end before reading stops (a Readable's default highWaterMark). */
const PIPELINE_READ_AHEAD_BYTES = 64 * 1024;
/**
 * Reads joined to #pending (each one a copy of all of it) before reading stops too: a client trickling
 * a byte per read cannot make the proxy copy up to 64 KiB per byte it sends.
 */
const PIPELINE_READS_AHEAD = 16;
/** After answering with Connection: close, how long the client gets to read it before a hard close. */
const LINGER_MS = 2_000;
/**
 * A non-idempotent request reuses a pooled connection only if it went idle less than this long ago:
 * no app closes a keep-alive connection that quickly (Node 5 s, gunicorn 2 s, nginx 75 s), so the
 * request cannot be lost to the keep-alive race and nothing has to be replayed.
 */
const SAFE_REUSE_IDLE_MS = 1_000;

/**
 * One client TCP connection: parses request heads, routes each request at request time to an
 * active target, relays bodies untouched, and hands upgraded connections to a WebSocketRelay.
 * One request at a time; pipelined bytes wait until the response has ended.
 */
export class ClientConnection implements UpstreamOwner, HeldRequest, RoutedClient {
  readonly socket: net.Socket;
  readonly #host: ConnectionHost;
  #peer: Peer;
  /** The trustForwarded list #peer was resolved against (a live reload replaces the array). */
  #trustForwarded: string[];
  #state = ST_HEAD;
  #pending: Buffer | null = null;
  #pausedForPipeline = false;
  /** Reads come through #onRead (shared-read.ts), else 'data' events; set once by the constructor. */
  #readsShared = false;
  /** Reads joined to #pending since the client was last resumed (see PIPELINE_READS_AHEAD). */
  #readsAhead = 0;
  #pausedForBackpressure = false;
  #clientEnded = false;

  #target: Target | null = null;
  #upstream: UpstreamConnection | null = null;
  #head: RequestHead | null = null;
  #upstreamHead = ``;
  readonly #request = new BodyFramer();
  readonly #response = new BodyFramer();
  #requestDone = false;
  #responseDone = false;
  #responseHeadSeen = false;
  #responseBuffer: Buffer | null = null;
  #responseStarted = false;
  #responseWritten = false;
  #upstreamReusable = false;
  #upstreamPaused = false;
  #closeAfterResponse = false;
  /** Daemon replacement: answer with `Connection: close` so the client reconnects to the successor. */
  #retiring = false;
  #bodyBytesSent = 0;
  #replay: Buffer[] | null = null;
  #idempotent = false;
  /** Bytes of empty lines received before the current request line. */
  #emptyLineBytes = 0;
  #replayBytes = 0;
  #retried = false;
  #failedOver = false;
  #statusCode = 0;
  #startedAt = 0;
  #relay: WebSocketRelay | null = null;
  /** Metrics or the access log are on: each exchange is timed and recorded once, by #complete. */
  readonly #observing: boolean;
  /** A request is in progress and not recorded yet. */
  #exchangeOpen = false;
  #methodClass = 0;
  /** The target the exchange went to (the last one, after a retry), for #complete. */
  #served: Target | null = null;
  #bytesAtStart = 0;
  /** Bytes handed to the client socket so far (socket.bytesWritten builds an array on every read). */
  #bytesToClient = 0;
  #requestId = ``;
  canaryCookie: string | null = null;
  /** The parked request while ST_HELD (its following bytes wait in #pending). */
  #heldHead: RequestHead | null = null;
  /** performance.now() when the request was parked: its duration includes the hold. 0: not held. */
  #heldSince = 0;

  #timer: NodeJS.Timeout | null = null;
  #timerDueAt = 0;
  #deadlineKind = T_NONE;
  #deadlineAt = 0;

  constructor(socket: net.Socket, host: ConnectionHost) {
    this.socket = socket;
    this.#host = host;
    this.#trustForwarded = host.settings.trustForwarded;
    this.#peer = resolvePeer(socket.remoteAddress, this.#trustForwarded);
    this.#observing = host.metrics !== null || host.accessLog !== null;
    socket.on(`drain`, () => this.#onDrain());
    socket.on(`end`, () => this.#guard(() => this.#onEnd()));
    socket.on(`error`, () => { /* 'close' follows */ });
    socket.on(`close`, () => this.#guard(() => this.#onClose()));
    this.#arm(T_IDLE, host.settings.clientIdleTimeoutMs);
    // The server accepts paused (pauseOnConnect): reading starts here, into the shared buffer when this Node allows it.
    this.#readsShared = readAcceptedIntoSharedBuffer(socket, this.#onRead);
    if (!this.#readsShared) {
      socket.on(`data`, (chunk: Buffer) => this.#onData(chunk));
      socket.resume();
    }
  }

  /**
   * Daemon replacement: from now on every response carries `Connection: close` and ends the
   * connection, so the client's next request opens a connection the successor accepts; a connection
   * still idle after `idleGraceMs` is closed. WebSockets are left to finish (the caller's deadline).
   */
  retire(idleGraceMs: number): void {
    if (this.#retiring || this.#state === ST_WEBSOCKET || this.#state === ST_CLOSED) return;
    this.#retiring = true;
    setTimeout(() => this.#guard(() => {
      if (this.#state === ST_HEAD && this.#pending === null) this.#closeGracefully();
    }), idleGraceMs).unref();
  }

  /** The gate opened: the parked request goes on to a target now. */
  releaseHeld(): void {
    this.#guard(() => {
      if (this.#state !== ST_HELD) return;
      const head = this.#heldHead!;
      const rest = this.#pending;
      this.#heldHead = null;
      this.#pending = null;
      this.#state = ST_HEAD;
      this.#resumeClient();
      this.#startExchange(head, rest);
      this.#heldSince = 0;
      if (this.#state === ST_HEAD) this.#processPending();
    });
  }

  /** The gate refuses the parked request (maintenance, or the pause timed out): its response and a close. */
  refuseHeld(respond: (head: RequestHead) => string): void {
    this.#guard(() => {
      if (this.#state !== ST_HELD) return;
      const response = this.socket.writable ? respond(this.#heldHead!) : null;
      if (response !== null) this.socket.write(response);
      this.#endHeld(response !== null ? 503 : 0, response !== null ? Buffer.byteLength(response) : 0);
      this.#closeGracefully();
    });
  }

  get peer(): Peer {
    return this.#peer;
  }

  /** Closes the connection at once (proxy shutdown). */
  destroy(): void {
    this.socket.destroy();
  }

  // ---- client side ------------------------------------------------------------------------

  /** One read (shared-read.ts); reading stops only through socket.pause() (#pauseForPipeline, backpressure). */
  readonly #onRead = (chunk: Buffer): boolean => {
    this.#onData(chunk);
    return true;
  };

  #onData(chunk: Buffer): void {
    try {
      switch (this.#state) {
        case ST_BODY:
          this.#forwardBody(chunk, 0);
          return;
        case ST_HEAD:
          this.#pending = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
          this.#processPending();
          return;
        case ST_WAIT:
        case ST_HELD:
          this.#pending = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
          this.#pauseForPipeline();
          return;
        case ST_WEBSOCKET:
          this.#relay!.fromClient(chunk);
          return;
        default:
          return; // closing: discard what the client still sends
      }
    } catch (error) {
      this.#crash(error);
    }
  }

  #processPending(): void {
    const settings = this.#host.settings;
    while (this.#state === ST_HEAD && this.#pending !== null) {
      let buffer = this.#pending;
      if (buffer[0] === 13 || buffer[0] === 10) {
        // Empty lines (CRLF) before a request line are ignored (RFC 9112 §2.2), e.g. a CRLF after a
        // POST body; they count against the head's size and deadline, so they cannot hold a connection.
        let skip = 0;
        while (skip + 1 < buffer.length && buffer[skip] === 13 && buffer[skip + 1] === 10) skip += 2;
        this.#emptyLineBytes += skip;
        if (this.#emptyLineBytes > settings.maxHeaderBytes) {
          this.#respondAndClose(400);
          return;
        }
        if (skip < buffer.length && (buffer[skip] === 10 || (buffer[skip] === 13 && skip + 1 < buffer.length))) {
          this.#respondAndClose(400); // a bare LF or CR
          return;
        }
        if (skip === buffer.length) {
          this.#pending = null;
          break;
        }
        buffer = buffer.subarray(skip);
        this.#pending = buffer;
        if (buffer.length === 1) break; // a lone CR: wait for its LF
      }
      const end = buffer.indexOf(HEAD_TERMINATOR);
      if (end === -1) {
        if (buffer.length > settings.maxHeaderBytes) this.#respondAndClose(431);
        else this.#armHeadDeadline();
        return;
      }
      const headEnd = end + 4;
      if (headEnd > settings.maxHeaderBytes) {
        this.#respondAndClose(431);
        return;
      }
      const head = parseRequestHead(buffer, headEnd);
      if (typeof head === `number`) {
        this.#respondAndClose(head);
        return;
      }
      this.#pending = null;
      this.#emptyLineBytes = 0;
      this.#startExchange(head, headEnd < buffer.length ? buffer.subarray(headEnd) : null);
    }
    if (this.#state !== ST_HEAD) return;
    // The head deadline runs from the first byte of a request (empty lines included) and is never re-armed by more bytes.
    if (this.#pending === null && this.#emptyLineBytes === 0) this.#arm(T_IDLE, settings.clientIdleTimeoutMs);
    else this.#armHeadDeadline();
  }

  #armHeadDeadline(): void {
    if (this.#deadlineKind !== T_HEAD) this.#arm(T_HEAD, this.#host.settings.requestHeadTimeoutMs);
  }

  #startExchange(head: RequestHead, rest: Buffer | null): void {
    this.#deadlineKind = T_NONE;
    const keepAlive = isRequestKeepAlive(head);
    const framing = head.chunked ? Framing.CHUNKED : head.contentLength > 0 ? Framing.LENGTH : Framing.NONE;
    if (this.#host.gate.state !== GATE_OPEN) {
      this.#gate(head, rest, !head.upgrade && framing === Framing.NONE && keepAlive);
      return;
    }
    if (this.#trustForwarded !== this.#host.settings.trustForwarded) {
      this.#trustForwarded = this.#host.settings.trustForwarded;
      this.#peer = resolvePeer(this.socket.remoteAddress, this.#trustForwarded);
    }
    this.canaryCookie = null;
    const target = this.#host.pickTarget(head, this);
    if (target === null) {
      if (!head.upgrade && framing === Framing.NONE && keepAlive) {
        const response = errorResponse(503, false);
        this.#bytesToClient += response.length;
        this.socket.write(response);
        if (this.#observing) this.#recordRejected(head, 503, response.length);
        this.#pending = rest;
      } else {
        this.#respondAndClose(503, head);
      }
      return;
    }
    this.#head = head;
    this.#request.reset(framing, head.contentLength);
    this.#requestDone = framing === Framing.NONE;
    this.#responseDone = false;
    this.#responseHeadSeen = false;
    this.#responseBuffer = null;
    this.#responseStarted = false;
    this.#responseWritten = false;
    this.#upstreamReusable = false;
    this.#closeAfterResponse = !keepAlive;
    this.#bodyBytesSent = 0;
    this.#idempotent = IDEMPOTENT.has(head.method);
    this.#replay = framing !== Framing.NONE ? [] : null;
    this.#replayBytes = 0;
    this.#retried = false;
    this.#failedOver = false;
    this.#statusCode = 0;
    // 0: neither metrics nor a subscriber when the request began, so it is not published (its duration is unknown).
    // A request the gate held began when it was parked.
    this.#startedAt = this.#observing || requestChannel.hasSubscribers ? (this.#heldSince || performance.now()) : 0;
    let addRequestId: string | null = null;
    if (this.#observing) {
      this.#exchangeOpen = true;
      this.#methodClass = methodClassOf(head.method);
      if (this.#host.accessLog !== null) {
        this.#bytesAtStart = this.#bytesToClient;
        const requestId = resolveRequestId(head);
        this.#requestId = requestId;
        if (requestId !== head.requestId) addRequestId = requestId;
      }
    }
    this.#upstreamHead = buildUpstreamHead(head, this.#peer, addRequestId);
    this.#state = this.#requestDone ? ST_WAIT : ST_BODY;

    // A request that must never be replayed goes only on a fresh connection or one that answered a
    // moment ago, which the app cannot have timed out (the keep-alive race).
    const idleTimeoutMs = this.#host.settings.upstreamIdleTimeoutMs;
    const connection = target.acquire(this.#idempotent ? idleTimeoutMs : SAFE_REUSE_IDLE_MS, idleTimeoutMs);
    this.#attach(target, connection);
    const socket = connection.socket;
    if (rest === null) {
      socket.write(this.#upstreamHead, `latin1`);
    } else if (this.#requestDone) {
      socket.write(this.#upstreamHead, `latin1`);
      this.#pending = rest;
      this.#pauseForPipeline();
    } else {
      socket.cork();
      socket.write(this.#upstreamHead, `latin1`);
      this.#forwardBody(rest, 0);
      socket.uncork();
    }
    if (this.#requestDone) this.#armResponseTimeout();
    else if (this.#state === ST_BODY) this.#arm(T_BODY, this.#host.settings.clientBodyTimeoutMs);
  }

  /** Paused: the request is parked (or refused when proxy.maxHeldRequests are held); refused: the gate's 503. */
  #gate(head: RequestHead, rest: Buffer | null, canKeepAlive: boolean): void {
    const gate = this.#host.gate;
    if (gate.state === GATE_REFUSE || !gate.admit(this)) {
      // Maintenance or an expired pause (keep-alive when the request allows it), else the queue is full (close).
      const refused = gate.state === GATE_REFUSE;
      const response = refused ? gate.refusal(head, !canKeepAlive) : gate.overflowResponse();
      this.socket.write(response);
      if (this.#observing) this.#recordRejected(head, 503, Buffer.byteLength(response));
      if (refused && canKeepAlive) this.#pending = rest;
      else this.#closeGracefully();
      return;
    }
    this.#state = ST_HELD;
    this.#heldHead = head;
    this.#heldSince = performance.now();
    this.#pending = rest;
    this.#pauseForPipeline();
  }

  #attach(target: Target, connection: UpstreamConnection): void {
    this.#target = target;
    this.#upstream = connection;
    this.#served = target;
    connection.owner = this;
    target.beginRequest();
  }

  #forwardBody(chunk: Buffer, start: number): void {
    const framer = this.#request;
    const n = framer.consume(chunk, start);
    if (framer.failed) {
      this.#failExchange(400);
      return;
    }
    if (n > 0) {
      if (this.#deadlineKind === T_BODY) this.#arm(T_BODY, this.#host.settings.clientBodyTimeoutMs);
      const part = start === 0 && n === chunk.length ? chunk : chunk.subarray(start, start + n);
      this.#bodyBytesSent += n;
      if (this.#replay !== null) {
        this.#replayBytes += n;
        if (this.#replayBytes + this.#upstreamHead.length <= MAX_REPLAY_BYTES) this.#replay.push(part);
        else this.#replay = null;
      }
      if (!this.#upstream!.socket.write(part) && !this.#pausedForBackpressure) {
        this.#pausedForBackpressure = true;
        this.socket.pause();
      }
    }
    if (!framer.done) return;
    this.#requestDone = true;
    if (start + n < chunk.length) {
      this.#pending = chunk.subarray(start + n);
      this.#pauseForPipeline();
    }
    if (this.#deadlineKind === T_BODY) this.#deadlineKind = T_NONE;
    if (this.#responseDone) {
      this.#finishExchange();
    } else {
      this.#state = ST_WAIT;
      if (!this.#responseHeadSeen) this.#armResponseTimeout();
    }
  }

  #onDrain(): void {
    if (this.#state === ST_WEBSOCKET) {
      this.#relay!.onClientDrain();
    } else if (this.#upstreamPaused) {
      this.#upstreamPaused = false;
      if (this.#deadlineKind === T_SEND) this.#deadlineKind = T_NONE;
      this.#upstream?.socket.resume();
    }
  }

  #onEnd(): void {
    this.#clientEnded = true;
    switch (this.#state) {
      case ST_HEAD:
        this.#closeGracefully();
        return;
      case ST_BODY:
      case ST_WAIT:
      case ST_HELD:
        // Like nginx: a client that closes its side while its request is in flight gave up on it.
        this.#abort();
        return;
      case ST_WEBSOCKET:
        this.#relay!.onClientEnd();
        return;
      default:
        return; // already closing
    }
  }

  #onClose(): void {
    if (this.#exchangeOpen) this.#complete(STATUS_ABORTED);
    else if (this.#state === ST_HELD) this.#endHeld(0, 0);
    this.#state = ST_CLOSED;
    this.#deadlineKind = T_NONE;
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#relay !== null) this.#relay.onClientClose();
    this.#releaseFailed();
    this.#host.forget(this);
  }

  /**
   * What the client sends while its request is in flight (or held) waits in #pending. Reading into the
   * shared buffer goes on meanwhile, as a paused stream's did (up to its highWaterMark), so a client that
   * leaves is noticed at once (a held request is let go); past PIPELINE_READ_AHEAD_BYTES reading stops.
   */
  #pauseForPipeline(): void {
    this.#pausedForPipeline = true;
    this.#readsAhead++;
    if (!this.#readsShared || this.#readsAhead > PIPELINE_READS_AHEAD || (this.#pending !== null && this.#pending.length >= PIPELINE_READ_AHEAD_BYTES)) this.socket.pause();
  }

  #resumeClient(): void {
    this.#readsAhead = 0;
    this.#pausedForPipeline = false;
    this.#pausedForBackpressure = false;
    this.socket.resume();
  }

  // ---- upstream side ----------------------------------------------------------------------

  /** @internal */
  onUpstreamData(chunk: Buffer): void {
    try {
      this.#responseStarted = true;
      if (!this.#responseHeadSeen) {
        this.#onResponseHeadData(chunk);
        return;
      }
      const framer = this.#response;
      const n = framer.consume(chunk, 0);
      if (n > 0) this.#writeToClient(n === chunk.length ? chunk : chunk.subarray(0, n));
      if (framer.failed) {
        this.#abort();
        return;
      }
      if (n < chunk.length) this.#upstreamReusable = false;
      if (framer.done) this.#onResponseDone();
    } catch (error) {
      this.#crash(error);
    }
  }

  #onResponseHeadData(chunk: Buffer): void {
    let buffer = this.#responseBuffer === null ? chunk : Buffer.concat([this.#responseBuffer, chunk]);
    const head = this.#head!;
    while (true) {
      const end = buffer.indexOf(HEAD_TERMINATOR);
      if (end === -1) {
        if (buffer.length > MAX_RESPONSE_HEAD_BYTES) this.#upstreamFailed(502);
        else this.#responseBuffer = buffer;
        return;
      }
      const headEnd = end + 4;
      const response = parseResponseHead(buffer, headEnd);
      if (response === null) {
        this.#upstreamFailed(502);
        return;
      }
      if (response.status === 101) {
        if (head.upgrade) this.#becomeWebSocket(buffer, headEnd);
        else this.#upstreamFailed(502);
        return;
      }
      if (response.status < 200) {
        // 1xx (100 Continue, 103 Early Hints): relay and keep waiting for the final head.
        this.#writeToClient(headEnd === buffer.length ? buffer : buffer.subarray(0, headEnd));
        if (headEnd === buffer.length) {
          this.#responseBuffer = null;
          return;
        }
        buffer = buffer.subarray(headEnd);
        continue;
      }
      this.#responseBuffer = null;
      this.#responseHeadSeen = true;
      if (this.#deadlineKind === T_RESPONSE) this.#deadlineKind = T_NONE;
      const status = response.status;
      this.#statusCode = status;
      this.#target!.recordStatus(status);
      const framing = head.method === `HEAD` || status === 204 || status === 304
        ? Framing.NONE
        : response.chunked ? Framing.CHUNKED : response.contentLength >= 0 ? Framing.LENGTH : Framing.CLOSE;
      this.#response.reset(framing, response.contentLength);
      this.#upstreamReusable = framing !== Framing.CLOSE && !head.upgrade
        && (response.minorVersion === 1 ? !response.connectionClose : response.connectionKeepAlive);
      if (framing === Framing.CLOSE || (response.minorVersion === 0 && !response.connectionKeepAlive)) this.#closeAfterResponse = true;
      this.#responseWritten = true;
      const n = this.#response.consume(buffer, headEnd);
      const retiring = this.#retiring && !head.upgrade;
      if (retiring) this.#closeAfterResponse = true;
      // The app closing its side (e.g. it is shutting down) leaves the client connection usable.
      const dropConnection = retiring || (response.connectionClose && !this.#closeAfterResponse);
      const cookie = this.canaryCookie;
      if (dropConnection || response.framingLines.length > 0 || cookie !== null) {
        const ranges = dropConnection ? mergeRanges(response.connectionLines, response.framingLines) : response.framingLines;
        const extra = `${retiring ? `${response.framingExtra}Connection: close\r\n` : response.framingExtra}${cookie ?? ``}`;
        this.socket.cork();
        this.#writeToClient(rebuildHead(buffer.toString(`latin1`, 0, headEnd), ranges, extra), true);
        if (n > 0) this.#writeToClient(buffer.subarray(headEnd, headEnd + n));
        this.socket.uncork();
      } else {
        this.#writeToClient(headEnd + n === buffer.length ? buffer : buffer.subarray(0, headEnd + n));
      }
      if (headEnd + n < buffer.length) this.#upstreamReusable = false;
      if (this.#response.failed) this.#abort();
      else if (this.#response.done) this.#onResponseDone();
      return;
    }
  }

  #writeToClient(data: Buffer | string, latin1 = false): void {
    this.#bytesToClient += data.length; // a latin1 string has one byte per character
    const ok = latin1 ? this.socket.write(data as string, `latin1`) : this.socket.write(data);
    if (!ok && !this.#upstreamPaused && this.#upstream !== null) {
      this.#upstreamPaused = true;
      this.#upstream.socket.pause();
      // A client that stops reading the response holds the app connection: it gets clientSendTimeoutMs.
      this.#arm(T_SEND, this.#host.settings.clientSendTimeoutMs);
    }
  }

  /** @internal */
  onUpstreamDrain(): void {
    if (this.#pausedForBackpressure) {
      this.#pausedForBackpressure = false;
      if (!this.#pausedForPipeline) this.socket.resume();
    }
  }

  /** @internal The app ended, errored or closed our connection. */
  onUpstreamGone(error: Error | undefined): void {
    try {
      this.#onUpstreamGone(error);
    } catch (caught) {
      this.#crash(caught);
    }
  }

  #onUpstreamGone(error: Error | undefined): void {
    if (this.#state === ST_CLOSED || this.#upstream === null) return;
    const connection = this.#upstream;
    if (this.#responseHeadSeen && this.#response.framing === Framing.CLOSE && !this.#response.done) {
      this.#response.end();
      this.#onResponseDone();
      return;
    }
    if (this.#responseDone) {
      // Complete response, but the app closed before taking the whole request body.
      this.#closeAfterResponse = true;
      this.#requestDone = true;
      this.#finishExchange();
      return;
    }
    // Only an idempotent request is sent again once any byte of it may have reached the app
    // (RFC 9112 §9.3.1): a POST that failed on a connection is answered 502, never run twice.
    const resendable = this.#bodyBytesSent === 0 || this.#replay !== null;
    const replayable = this.#idempotent && resendable;
    if (!this.#responseStarted && connection.reused && !this.#retried && replayable) {
      this.#retry();
      return;
    }
    // The target is down (connection refused: nothing reached the app) or died under an idempotent
    // request: send it once to another serving target, as nginx's proxy_next_upstream does.
    // A refused connection carried nothing, so any method may go to another target.
    const refused = !connection.reused && (error as NodeJS.ErrnoException | undefined)?.code === `ECONNREFUSED`;
    if (!this.#responseStarted && !this.#failedOver && ((refused && resendable) || replayable)) {
      const fallback = this.#host.pickFallback(this.#target!);
      if (fallback !== null) {
        this.#failedOver = true;
        this.#resend(fallback);
        return;
      }
    }
    this.#upstreamFailed(502);
  }

  /** The keep-alive race: the app closed a reused connection as we sent on it. Replay once on a new one. */
  #retry(): void {
    const target = this.#host.pickTarget(this.#head!, this);
    if (target === null) {
      this.#upstream!.destroy();
      this.#upstream = null;
      this.#target!.endRequest();
      this.#target = null;
      this.#failExchange(503);
      return;
    }
    this.#retried = true;
    this.#resend(target);
  }

  /** Sends the current request again (head and kept body bytes) on a new connection to `target`. */
  #resend(target: Target): void {
    this.#upstream!.destroy();
    this.#upstream = null;
    this.#target!.endRequest();
    this.#target = null;
    this.#responseBuffer = null;
    this.#upstreamPaused = false;
    const connection = target.connect();
    this.#attach(target, connection);
    const socket = connection.socket;
    socket.cork();
    socket.write(this.#upstreamHead, `latin1`);
    if (this.#replay !== null) {
      for (const part of this.#replay) socket.write(part);
    }
    socket.uncork();
    if (this.#pausedForBackpressure) {
      this.#pausedForBackpressure = false;
      if (!this.#pausedForPipeline) this.socket.resume();
    }
    if (this.#requestDone) this.#armResponseTimeout();
  }

  #onResponseDone(): void {
    this.#responseDone = true;
    if (this.#requestDone) this.#finishExchange();
  }

  #finishExchange(): void {
    const connection = this.#upstream!;
    const target = this.#target!;
    this.#upstream = null;
    this.#target = null;
    if (this.#upstreamPaused) {
      this.#upstreamPaused = false;
      connection.socket.resume();
    }
    target.release(connection, this.#upstreamReusable);
    target.endRequest();
    if (this.#exchangeOpen) this.#complete(statusClassOf(this.#statusCode));
    if (this.#startedAt !== 0 && requestChannel.hasSubscribers) this.#publish(target);
    this.#head = null;
    this.#replay = null;
    if (this.#closeAfterResponse || this.#clientEnded) {
      this.#closeGracefully();
      return;
    }
    this.#state = ST_HEAD;
    if (this.#pausedForPipeline || this.#pausedForBackpressure) this.#resumeClient();
    this.#processPending();
  }

  #publish(target: Target): void {
    const event: RequestEvent = {
      method: this.#head?.method ?? ``,
      statusCode: this.#statusCode,
      releaseId: target.releaseId,
      processId: target.processId,
      retried: this.#retried,
      durationMs: performance.now() - this.#startedAt,
    };
    requestChannel.publish(event);
  }

  /**
   * The one place a request is recorded (metrics, access log), once, when it ends: answered, turned
   * into a WebSocket, answered by the proxy, or cut short. Metrics cost array increments here.
   */
  #complete(statusClass: number): void {
    this.#exchangeOpen = false;
    const durationMs = performance.now() - this.#startedAt;
    const metrics = this.#host.metrics;
    const served = this.#served;
    this.#served = null;
    if (metrics !== null) (served?.series ?? metrics.unrouted).record(this.#methodClass, statusClass, durationMs);
    const accessLog = this.#host.accessLog;
    if (accessLog === null) return;
    const head = this.#head;
    accessLog.record({
      method: head?.method ?? ``,
      target: head === null ? `` : requestTargetOf(head),
      status: this.#statusCode,
      bytes: this.#bytesToClient - this.#bytesAtStart,
      durationMs,
      releaseId: served?.releaseId ?? null,
      processId: served?.processId ?? null,
      clientIp: this.#peer.ip,
      requestId: this.#requestId,
      retried: this.#retried,
    });
  }

  /**
   * A request the proxy answered before any target took it: no active release (503), a malformed or late
   * head, the traffic gate (maintenance, an expired pause, a full hold queue: 503). Status 0: none was
   * sent (a held request whose client left); `durationMs`: how long it was held.
   */
  #recordRejected(head: RequestHead | null, status: number, bytes: number, durationMs = 0): void {
    const metrics = this.#host.metrics;
    if (metrics !== null) metrics.unrouted.record(head === null ? METHOD_UNKNOWN : methodClassOf(head.method), status === 0 ? STATUS_ABORTED : STATUS_PROXY_ERROR, -1);
    const accessLog = this.#host.accessLog;
    if (accessLog === null) return;
    accessLog.record({
      method: head?.method ?? ``,
      target: head === null ? `` : requestTargetOf(head),
      status,
      bytes,
      durationMs,
      releaseId: null,
      processId: null,
      clientIp: this.#peer.ip,
      requestId: head === null ? `` : resolveRequestId(head),
      retried: false,
    });
  }

  /** The held request ends without reaching a target: answered by the gate (503) or left by its client (0). */
  #endHeld(status: number, bytes: number): void {
    const head = this.#heldHead;
    this.#heldHead = null;
    if (head !== null && this.#observing) this.#recordRejected(head, status, bytes, performance.now() - this.#heldSince);
    this.#heldSince = 0;
  }

  #becomeWebSocket(buffer: Buffer, headEnd: number): void {
    this.#deadlineKind = T_NONE;
    const connection = this.#upstream!;
    const target = this.#target!;
    this.#upstream = null;
    this.#target = null;
    this.#state = ST_WEBSOCKET;
    this.#statusCode = 101;
    this.#bytesToClient += buffer.length;
    this.socket.write(buffer);
    if (this.#exchangeOpen) this.#complete(0);
    const relay = new WebSocketRelay(this.socket, connection, target, this.#head!.websocket);
    this.#relay = relay;
    relay.trackToClient(buffer, headEnd);
    this.#pausedForPipeline = false;
    this.#pausedForBackpressure = false;
    this.#upstreamPaused = false;
    const pending = this.#pending;
    this.#pending = null;
    if (pending !== null) relay.fromClient(pending);
  }

  // ---- failures -----------------------------------------------------------------------------

  /** The target failed this request (connect error, reset, bad response, timeout). */
  #upstreamFailed(status: 502 | 504): void {
    this.#target?.recordError();
    this.#failExchange(status);
  }

  #failExchange(status: ProxyErrorStatus): void {
    this.#releaseFailed();
    if (this.#responseWritten) this.#abort();
    else this.#respondAndClose(status);
  }

  /** Destroys the in-flight upstream connection (never pooled) and ends its accounting. */
  #releaseFailed(): void {
    const connection = this.#upstream;
    const target = this.#target;
    this.#upstream = null;
    this.#target = null;
    if (connection !== null) connection.destroy();
    if (target !== null) target.endRequest();
  }

  /** `rejected`: the head of a request no target took (recorded as such). */
  #respondAndClose(status: ProxyErrorStatus, rejected: RequestHead | null = null): void {
    const response = this.socket.writable ? errorResponse(status, true) : null;
    if (response !== null) {
      this.#bytesToClient += response.length;
      this.socket.write(response);
    }
    if (this.#exchangeOpen) {
      if (response !== null) this.#statusCode = status;
      this.#complete(response !== null ? STATUS_PROXY_ERROR : STATUS_ABORTED);
    } else if (this.#observing && this.#state === ST_HEAD) {
      this.#recordRejected(rejected, status, response?.length ?? 0);
    }
    this.#closeGracefully();
  }

  /** Ends our side; what the client still sends is read and discarded until it closes or LINGER_MS. */
  #closeGracefully(): void {
    this.#state = ST_CLOSED;
    this.#pending = null;
    this.#releaseFailed();
    if (this.#clientEnded) {
      this.socket.destroySoon();
      return;
    }
    this.socket.end();
    if (this.socket.isPaused()) this.socket.resume();
    this.#arm(T_LINGER, LINGER_MS);
  }

  #abort(): void {
    if (this.#exchangeOpen) this.#complete(STATUS_ABORTED);
    else if (this.#state === ST_HELD) this.#endHeld(0, 0);
    this.#state = ST_CLOSED;
    this.#releaseFailed();
    this.socket.destroy();
  }

  #crash(error: unknown): void {
    this.#host.reportFailure(error);
    this.#abort();
  }

  #guard(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.#crash(error);
    }
  }

  // ---- deadlines ----------------------------------------------------------------------------
  // One lazy timer per connection: arming a later deadline costs no timer operation.

  #armResponseTimeout(): void {
    this.#arm(T_RESPONSE, this.#host.settings.upstreamResponseTimeoutMs);
  }

  #arm(kind: number, ms: number): void {
    if (ms <= 0) {
      this.#deadlineKind = T_NONE;
      return;
    }
    const at = Date.now() + ms;
    this.#deadlineKind = kind;
    this.#deadlineAt = at;
    if (this.#timer === null || at < this.#timerDueAt) {
      if (this.#timer !== null) clearTimeout(this.#timer);
      this.#timerDueAt = at;
      this.#timer = setTimeout(this.#onTimer, ms);
    }
  }

  readonly #onTimer = (): void => {
    this.#timer = null;
    if (this.#deadlineKind === T_NONE || this.socket.destroyed) return;
    const now = Date.now();
    if (now < this.#deadlineAt) {
      this.#timerDueAt = this.#deadlineAt;
      this.#timer = setTimeout(this.#onTimer, this.#deadlineAt - now);
      return;
    }
    const kind = this.#deadlineKind;
    this.#deadlineKind = T_NONE;
    this.#guard(() => {
      switch (kind) {
        case T_IDLE:
          this.#closeGracefully();
          break;
        case T_HEAD:
          this.#respondAndClose(408);
          break;
        case T_RESPONSE:
          if (this.#state === ST_WAIT || this.#state === ST_BODY) this.#upstreamFailed(504);
          break;
        case T_BODY:
          // The client stopped sending its body (nginx's client_body_timeout); not while the app holds us back.
          if (this.#state !== ST_BODY) break;
          if (this.#pausedForBackpressure) this.#arm(T_BODY, this.#host.settings.clientBodyTimeoutMs);
          else this.#failExchange(408);
          break;
        case T_SEND:
          // The client stopped reading the response (nginx's send_timeout): the response is cut.
          this.#abort();
          break;
        case T_LINGER:
          this.socket.destroy();
          break;
      }
    });
  };
}
