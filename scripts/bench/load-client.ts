// The benchmark's load process (runs apart from the bench so its CPU is its own):
//
//   node scripts/bench/load-client.ts http --port <n> [--connections 64] [--max-ms 120000] [--path /]
//                                         [--post-percent 0] [--post-sizes 0,1024,65536,262144]
//     Keep-alive HTTP load (undici Pool, one request in flight per connection) until `stop` on stdin,
//     SIGTERM or --max-ms. Counts every response by status, every error by code, responses by body
//     (the fixture app answers with its release id), and completions per 100 ms. With --post-percent,
//     that share of the requests are POST /echo with a body of the next size in --post-sizes (never
//     replayed by the proxy); an echo that is not the exact body counts as a failure.
//   node scripts/bench/load-client.ts ws --port <n> --sockets <n> [--ping-ms 200] [--max-ms 60000]
//     Opens <n> WebSockets, pings each every --ping-ms (0: only on `ping-all` from stdin) and records per
//     socket the replies by release prefix, unanswered pings and how and when it was closed. Ends when
//     every socket is closed, on `stop`, or at --max-ms.
//
// Prints JSON lines on stdout: {"event":"ready"|"open"|"pinged",…} while running, then {"event":"result",…}.
import readline from 'node:readline';
import {parseArgs} from 'node:util';
import {Pool} from 'undici';
import {BenchWebSocket} from './bench-web-socket.ts';

const FAILURE_SAMPLES = 200;
const BUCKET_MS = 100;
// Pauses between two successful responses from this long on are recorded (outages, port gaps).
const OK_GAP_MS = 5;
const OK_GAP_SAMPLES = 2_000;

export type HttpLoadResult = {
  event: `result`;
  startedAt: number;
  endedAt: number;
  requests: number;
  ok: number;
  byStatus: Record<string, number>;
  byError: Record<string, number>;
  byBody: Record<string, number>;
  /** The first failures, each with its epoch time. */
  failures: Array<{at: number; kind: string; detail: string}>;
  /** Completed requests (any outcome) per 100 ms bucket: epoch ms of the bucket start → count. */
  buckets: Record<string, number>;
  /** Requests still in flight when the client stopped (not counted as failures). */
  abandonedAtStop: number;
  /** Every pause of ≥ 5 ms between two successful responses (epoch ms of the last ok before and the first ok after). */
  okGaps: Array<{from: number; to: number}>;
  /** Epoch ms of the first and the last successful response. */
  firstOkAt: number | null;
  lastOkAt: number | null;
  /** By failure kind (error code or `HTTP <status>`): how many, first and last (epoch ms), not capped like `failures`. */
  failureSpans: Record<string, {count: number; first: number; last: number}>;
};

export type SocketRecord = {
  /** Opened at (epoch ms). */
  o: number;
  /** Close code (1006: closed without a close frame), or null when still open at the end. */
  c: number | null;
  /** Closed at (epoch ms). */
  t: number | null;
  /** Replies by release prefix. */
  r: Record<string, number>;
  /** Last reply at (epoch ms) and its prefix. */
  l: number | null;
  lp: string | null;
  /** Epoch ms of the oldest ping still unanswered when the socket closed or the client stopped. */
  u: number | null;
  /** Pings sent. */
  s: number;
};

export type WsLoadResult = {
  event: `result`;
  opened: number;
  openFailures: Record<string, number>;
  sockets: SocketRecord[];
  endedAt: number;
  reason: string;
};

function emit(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Writes the last line and exits once it is flushed (stdout to a pipe is asynchronous). */
function emitAndExit(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`, () => process.exit(0));
}

function errorCode(error: unknown): string {
  const e = error as {code?: string; name?: string; message?: string; cause?: {code?: string}};
  const code = e.code ?? e.name ?? `Error`;
  return e.cause?.code && e.cause.code !== code ? `${code}/${e.cause.code}` : code;
}

function onCommand(handler: (command: string) => void): void {
  const lines = readline.createInterface({input: process.stdin});
  lines.on(`line`, (line) => handler(line.trim()));
}

async function runHttp(options: {port: number; connections: number; maxMs: number; path: string; postPercent: number; postSizes: number[]}): Promise<void> {
  const bodies = options.postSizes.map((size, index) => Buffer.alloc(size, 97 + (index % 26)));
  let sequence = 0;
  const pool = new Pool(`http://127.0.0.1:${options.port}`, {connections: options.connections, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000});
  const result: HttpLoadResult = {event: `result`, startedAt: Date.now(), endedAt: 0, requests: 0, ok: 0, byStatus: {}, byError: {}, byBody: {}, failures: [], buckets: {}, abandonedAtStop: 0, okGaps: [], firstOkAt: null, lastOkAt: null, failureSpans: {}};
  let running = true;
  let ready = false;
  let inFlight = 0;
  const fail = (kind: string, detail: string) => {
    const at = Date.now();
    if (result.failures.length < FAILURE_SAMPLES) result.failures.push({at, kind, detail});
    const span = result.failureSpans[kind] ??= {count: 0, first: at, last: at};
    span.count++;
    span.last = at;
  };
  const succeeded = () => {
    const at = Date.now();
    if (result.lastOkAt !== null && at - result.lastOkAt >= OK_GAP_MS && result.okGaps.length < OK_GAP_SAMPLES) result.okGaps.push({from: result.lastOkAt, to: at});
    result.firstOkAt ??= at;
    result.lastOkAt = at;
  };
  const loop = async () => {
    while (running) {
      inFlight++;
      try {
        const n = sequence++;
        const post = (n % 100) < options.postPercent ? bodies[n % bodies.length]! : null;
        const response = post === null
          ? await pool.request({path: options.path, method: `GET`})
          : await pool.request({path: `/echo`, method: `POST`, body: post, headers: {'content-type': `application/octet-stream`}});
        const body = await response.body.text();
        if (post !== null && response.statusCode === 200 && body.length !== post.length) {
          result.requests++;
          fail(`echo mismatch`, `sent ${post.length} bytes, got ${body.length}`);
          continue;
        }
        if (!running && Date.now() > stopDeadline) break;
        result.requests++;
        const bucket = String(Math.floor(Date.now() / BUCKET_MS) * BUCKET_MS);
        result.buckets[bucket] = (result.buckets[bucket] ?? 0) + 1;
        result.byStatus[response.statusCode] = (result.byStatus[response.statusCode] ?? 0) + 1;
        if (response.statusCode >= 200 && response.statusCode < 300) {
          result.ok++;
          succeeded();
          const key = post === null ? body.trim().slice(0, 40) : `POST /echo ${post.length} B`;
          result.byBody[key] = (result.byBody[key] ?? 0) + 1;
          if (!ready) {
            ready = true;
            emit({event: `ready`});
          }
        } else {
          fail(`HTTP ${response.statusCode}`, body.trim().slice(0, 200));
        }
      } catch (error) {
        if (!running && Date.now() > stopDeadline) break;
        result.requests++;
        const code = errorCode(error);
        result.byError[code] = (result.byError[code] ?? 0) + 1;
        fail(code, (error as Error).message);
      } finally {
        inFlight--;
      }
    }
  };
  let stopDeadline = Number.POSITIVE_INFINITY;
  const loops = Array.from({length: options.connections}, loop);
  const stopped = new Promise<void>((resolve) => {
    const stop = () => {
      running = false;
      resolve();
    };
    onCommand((command) => command === `stop` && stop());
    process.once(`SIGTERM`, stop);
    setTimeout(stop, options.maxMs).unref();
  });
  await stopped;
  result.endedAt = Date.now();
  // In-flight requests get 5 s to finish; whatever is still pending then is abandoned, not failed.
  stopDeadline = Date.now() + 5_000;
  const settle = setTimeout(() => {
    result.abandonedAtStop = inFlight;
    emitAndExit(result);
  }, 5_000);
  await Promise.all(loops);
  clearTimeout(settle);
  await pool.destroy().catch(() => undefined);
  emitAndExit(result);
}

async function runWs(options: {port: number; sockets: number; pingMs: number; maxMs: number; concurrency: number}): Promise<void> {
  const records: SocketRecord[] = [];
  const sockets: BenchWebSocket[] = [];
  const openFailures: Record<string, number> = {};
  const timers: NodeJS.Timeout[] = [];
  let finished = false;
  let closedCount = 0;
  let finish: (reason: string) => void = () => undefined;
  const done = new Promise<string>((resolve) => (finish = resolve));

  const attach = (ws: BenchWebSocket) => {
    const record: SocketRecord = {o: Date.now(), c: null, t: null, r: {}, l: null, lp: null, u: null, s: 0};
    const pending: number[] = [];
    const ping = () => {
      if (!ws.isOpen) return;
      record.s++;
      pending.push(Date.now());
      ws.send(`p${record.s}`);
    };
    ws.onMessage = (text) => {
      pending.shift();
      const prefix = text.slice(0, Math.max(0, text.indexOf(`:`)));
      record.r[prefix] = (record.r[prefix] ?? 0) + 1;
      record.l = Date.now();
      record.lp = prefix;
    };
    ws.onClose = () => {
      record.c = ws.closeCode;
      record.t = ws.closedAt;
      record.u = pending[0] ?? null;
      closedCount++;
      if (closedCount === sockets.length && opened) finish(`all closed`);
    };
    records.push(record);
    sockets.push(ws);
    if (options.pingMs > 0) {
      const start = setTimeout(() => {
        ping();
        timers.push(setInterval(ping, options.pingMs));
      }, Math.random() * options.pingMs);
      timers.push(start);
    }
    return {ping, pending};
  };
  const pingers: Array<{ping: () => void; pending: number[]}> = [];
  let opened = false;
  let next = 0;
  const opener = async () => {
    while (next < options.sockets && !finished) {
      next++;
      try {
        pingers.push(attach(await BenchWebSocket.connect(options.port)));
      } catch (error) {
        const code = errorCode(error);
        openFailures[code] = (openFailures[code] ?? 0) + 1;
      }
    }
  };
  setTimeout(() => finish(`max time`), options.maxMs).unref();
  onCommand((command) => {
    if (command === `stop`) finish(`stopped`);
    if (command === `ping-all`) void pingAll();
  });
  process.once(`SIGTERM`, () => finish(`SIGTERM`));
  const pingAll = async () => {
    const before = records.map((record) => ({...record.r}));
    const targets = pingers.filter((_, index) => sockets[index]!.isOpen);
    const startedAt = Date.now();
    for (const pinger of targets) pinger.ping();
    const deadline = startedAt + 15_000;
    while (Date.now() < deadline && pingers.some((pinger, index) => sockets[index]!.isOpen && pinger.pending.length > 0)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const byPrefix: Record<string, number> = {};
    records.forEach((record, index) => {
      for (const [prefix, count] of Object.entries(record.r)) {
        const added = count - (before[index]![prefix] ?? 0);
        if (added > 0) byPrefix[prefix] = (byPrefix[prefix] ?? 0) + added;
      }
    });
    const unanswered = pingers.filter((pinger) => pinger.pending.length > 0).length;
    emit({event: `pinged`, sent: targets.length, byPrefix, unanswered, ms: Date.now() - startedAt});
  };
  await Promise.all(Array.from({length: Math.min(options.concurrency, options.sockets)}, opener));
  opened = true;
  emit({event: `open`, opened: sockets.length, openFailures});
  if (sockets.length === 0 || closedCount === sockets.length) finish(`all closed`);
  const reason = await done;
  finished = true;
  for (const timer of timers) clearTimeout(timer);
  const endedAt = Date.now();
  records.forEach((record, index) => {
    if (record.c === null) record.u = pingers[index]?.pending[0] ?? null;
  });
  for (const ws of sockets) ws.socket.destroy();
  emitAndExit({event: `result`, opened: sockets.length, openFailures, sockets: records, endedAt, reason} satisfies WsLoadResult);
}

const {positionals, values} = parseArgs({
  allowPositionals: true,
  options: {
    port: {type: `string`},
    connections: {type: `string`, default: `64`},
    'max-ms': {type: `string`, default: `120000`},
    'post-percent': {type: `string`, default: `0`},
    'post-sizes': {type: `string`, default: `0,1024,65536,262144`},
    path: {type: `string`, default: `/`},
    sockets: {type: `string`, default: `200`},
    'ping-ms': {type: `string`, default: `200`},
    concurrency: {type: `string`, default: `100`},
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0) throw new Error(`--port must be a TCP port, got ${values.port}`);
if (positionals[0] === `http`) {
  await runHttp({port, connections: Number(values.connections), maxMs: Number(values[`max-ms`]), path: values.path, postPercent: Number(values[`post-percent`]), postSizes: values[`post-sizes`].split(`,`).map(Number)});
} else if (positionals[0] === `ws`) {
  await runWs({port, sockets: Number(values.sockets), pingMs: Number(values[`ping-ms`]), maxMs: Number(values[`max-ms`]), concurrency: Number(values.concurrency)});
} else {
  throw new Error(`Usage: load-client.ts http|ws --port <n> …`);
}
