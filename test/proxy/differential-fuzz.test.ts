/**
 * Differential fuzz of the proxy against llhttp (node:http's parser): mutated requests go both through
 * the real proxy to a strict node:http app and straight to a second strict node:http server. Every
 * request the app receives must be one llhttp also reads from the client's own bytes, in the same
 * order, with the same method, target, headers and body; anything else the proxy must have refused.
 * A desync (smuggling, a header the two read differently) shows as an extra or different request.
 *
 * Seeded and time-bounded: ROLLBRIDGE_FUZZ_SEED (default 0x5eed) and ROLLBRIDGE_FUZZ_MS (default 4000)
 * reproduce a run; a failure prints the seed, the case number and its bytes.
 */
import assert from 'node:assert/strict';
import {once} from 'node:events';
import http from 'node:http';
import net from 'node:net';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {waitFor} from '../helpers/wait-for.ts';
import {startProxy} from './harness.ts';

const SEED = Number(process.env.ROLLBRIDGE_FUZZ_SEED ?? 0x5eed);
const BUDGET_MS = Number(process.env.ROLLBRIDGE_FUZZ_MS ?? 4_000);
const MAX_CASES = 5_000;
/** Cases run in parallel lanes: each waits ~100 ms for the proxy's idle timeout to close its connection. */
const LANES = 8;

/** Headers the proxy owns or rewrites by design (hop-by-hop, forwarded, framing in its clean form). */
const REWRITTEN = new Set([`host`, `content-length`, `transfer-encoding`, `connection`, `keep-alive`, `proxy-connection`, `upgrade`, `x-forwarded-for`, `x-forwarded-proto`, `x-forwarded-host`, `x-forwarded-port`]);

const CORPUS = [
  `GET /a?b=1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n`,
  `POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello`,
  `POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n3;q="a b"\r\nabc\r\n0\r\nT: v\r\n\r\n`,
  `GET http://h:81/abs?q HTTP/1.1\r\nHost: other\r\n\r\n`,
  `GET /ten HTTP/1.0\r\nConnection: keep-alive\r\nX-A: 1\r\n\r\n`,
  `GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi`,
  `PUT /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc`,
  `OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n`,
  `DELETE /d%20x HTTP/1.1\r\nHost: [::1]:8080\r\nCookie: a=b; c=d\r\n\r\n`,
];

const PIECES = [
  `\r`, `\n`, `\r\n`, `\x00`, ` `, `\t`, `:`, `;`, `,`, `\x0b`, `\x0c`, `\xa0`, `\x80`, `"`, `\\`, `0`, `1`, `f`, `a`, `=`, `-`, `/`, `?`, `#`, `%`, `@`,
  `chunked`, `Transfer-Encoding: chunked\r\n`, `Content-Length: 3\r\n`, `Content-Length: 0\r\n`, `Host: x\r\n`, `\r\n\r\n`,
  `GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n`, `0\r\n\r\n`, ` chunked`, `HTTP/1.1`, `\r\n `,
];

/** mulberry32: small, seedable, reproducible. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let r = Math.imul(state ^ (state >>> 15), 1 | state);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(input: string, random: () => number): string {
  let text = input;
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const at = (): number => Math.floor(random() * (text.length + 1));
  const count = 1 + Math.floor(random() * 3);
  for (let i = 0; i < count; i++) {
    const position = at();
    switch (Math.floor(random() * 6)) {
      case 0:
      case 1:
        text = text.slice(0, position) + pick(PIECES) + text.slice(position);
        break;
      case 2:
        text = text.slice(0, position) + text.slice(position + 1 + Math.floor(random() * 3));
        break;
      case 3:
        text = text.slice(0, position) + pick(PIECES) + text.slice(position + 1);
        break;
      case 4: {
        const lines = text.split(`\r\n`);
        const index = Math.floor(random() * lines.length);
        lines.splice(index, 0, lines[index]!);
        text = lines.join(`\r\n`);
        break;
      }
      default: {
        const c = text.charAt(position);
        const flipped = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
        text = text.slice(0, position) + flipped + text.slice(position + 1);
      }
    }
  }
  return text;
}

type Parsed = {method: string; url: string; host: string | undefined; headers: string[]; body: string};

type Recorder = {port: number; requests: Array<Parsed | null>; errors: string[]; open: number; pending: number};

/** A strict node:http server recording each complete request in order, normalised for comparison. */
async function startRecorder(t: TestContext): Promise<Recorder> {
  const recorder: Recorder = {port: 0, requests: [], errors: [], open: 0, pending: 0};
  const server = http.createServer({keepAliveTimeout: 5_000}, (req, res) => {
    let body = ``;
    const slot = recorder.requests.length;
    recorder.requests.push(null); // keeps arrival order; stays null if the body never completes
    recorder.pending++;
    let settled = false;
    const settle = (): void => {
      if (!settled) recorder.pending--;
      settled = true;
    };
    req.setEncoding(`latin1`);
    req.on(`data`, (chunk: string) => (body += chunk));
    req.on(`error`, () => undefined);
    req.on(`end`, () => {
      recorder.requests[slot] = normalize(req, body);
      settle();
      res.end();
    });
    req.on(`close`, settle);
  });
  server.on(`connection`, (socket: net.Socket) => {
    recorder.open++;
    socket.on(`close`, () => recorder.open--);
  });
  server.on(`clientError`, (error: NodeJS.ErrnoException, socket: net.Socket) => {
    // A connection that ends mid-message is truncation, not a parse difference.
    if (error.code !== `ECONNRESET` && error.code !== `HPE_INVALID_EOF_STATE`) recorder.errors.push(error.code ?? error.message);
    socket.destroy();
  });
  server.listen(0, `127.0.0.1`);
  await once(server, `listening`);
  recorder.port = (server.address() as net.AddressInfo).port;
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return recorder;
}

function normalize(req: http.IncomingMessage, body: string): Parsed {
  let url = req.url ?? ``;
  let host = req.headers.host;
  const absolute = /^https?:\/\/([^/?]*)(.*)$/i.exec(url);
  if (absolute !== null) {
    host = absolute[1];
    url = absolute[2] === `` || absolute[2]!.startsWith(`?`) ? `/${absolute[2]}` : absolute[2]!;
  }
  const headers: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    if (!REWRITTEN.has(name)) headers.push(`${name}: ${req.rawHeaders[i + 1]}`);
  }
  return {method: req.method ?? ``, url, host, headers, body};
}

/**
 * Writes `bytes` and resolves when the peer closes. `halfClose` ends our side at once (the direct
 * server still answers what it parsed); the proxy instead gets no FIN, which would abort the request in
 * flight, and closes by itself after its short idle, head and body timeouts.
 */
function send(port: number, bytes: string, halfClose: boolean): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, `127.0.0.1`);
    socket.on(`error`, () => undefined);
    socket.on(`data`, () => undefined);
    socket.on(`close`, () => resolve());
    if (halfClose) socket.end(Buffer.from(bytes, `latin1`));
    else socket.write(Buffer.from(bytes, `latin1`));
  });
}

type LaneResult = {cases: number; forwarded: number};

/** One independent lane: its own proxy, app and direct server, its own random stream (SEED + lane). */
async function runLane(t: TestContext, lane: number, deadline: number): Promise<LaneResult> {
  const proxy = await startProxy(t, {upstreamIdleTimeoutMs: 1, clientIdleTimeoutMs: 100, requestHeadTimeoutMs: 100, clientBodyTimeoutMs: 100});
  const app = await startRecorder(t);
  const direct = await startRecorder(t);
  proxy.setActiveTargets([proxy.createTarget({releaseId: `r1`, processId: `web`, host: `127.0.0.1`, port: app.port})]);
  const random = createRandom(SEED + lane);
  let forwarded = 0;
  let cases = 0;
  for (; cases < MAX_CASES && Date.now() < deadline; cases++) {
    const bytes = mutate(CORPUS[Math.floor(random() * CORPUS.length)]!, random);
    app.requests.length = 0;
    app.errors.length = 0;
    direct.requests.length = 0;
    direct.errors.length = 0;
    await Promise.all([send(proxy.address.port, bytes, false), send(direct.port, bytes, true)]);
    await waitFor(() => app.open === 0 && direct.open === 0 && app.pending === 0 && direct.pending === 0, {what: `lane ${lane} case ${cases} to settle`});
    // A request cut short (the client closed, the proxy refused the rest) is truncation, never a difference.
    const viaProxy = app.requests.filter((r) => r !== null);
    const straight = direct.requests.filter((r) => r !== null);
    const context = `ROLLBRIDGE_FUZZ_SEED=${SEED}, lane ${lane}, case ${cases}: ${JSON.stringify(bytes)}\nvia proxy: ${JSON.stringify(viaProxy)}\ndirect: ${JSON.stringify(straight)}`;
    assert.ok(viaProxy.length <= straight.length, `the app saw more requests than the client sent; ${context}`);
    assert.deepEqual(viaProxy, straight.slice(0, viaProxy.length), `the app read a request differently; ${context}`);
    // The app may refuse what llhttp refuses from the client's own bytes at the same point (an
    // unknown method, say), never anything else: that would be bytes the proxy changed the meaning of.
    if (app.errors.length > 0) {
      assert.equal(viaProxy.length, straight.length, `the app's parser refused a request llhttp reads from the client's bytes; ${context}\napp error: ${app.errors.join()}`);
      assert.deepEqual(app.errors, direct.errors, `the app's parser refused differently; ${context}`);
    }
    forwarded += viaProxy.length;
  }
  return {cases, forwarded};
}

test(`differential fuzz: every request the app receives is one llhttp reads from the client's bytes, else the proxy refused it`, async (t) => {
  const startedAt = Date.now();
  const lanes = await Promise.all(Array.from({length: LANES}, (_, lane) => runLane(t, lane, startedAt + BUDGET_MS)));
  const cases = lanes.reduce((sum, lane) => sum + lane.cases, 0);
  const forwarded = lanes.reduce((sum, lane) => sum + lane.forwarded, 0);
  t.diagnostic(`seed ${SEED}: ${cases} cases in ${Date.now() - startedAt} ms over ${LANES} lanes, ${forwarded} requests forwarded`);
  assert.ok(cases >= 100, `too few cases ran (${cases}) to mean anything`);
  assert.ok(forwarded > 0, `no mutated request got through: the fuzz exercised nothing`);
});
