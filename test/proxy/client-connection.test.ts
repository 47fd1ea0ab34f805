import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import {test} from 'node:test';
import {waitFor} from '../helpers/wait-for.ts';
import {addTarget, countOf, rawClient, request, startApp, startProxy} from './harness.ts';

test(`relays chunked request and response bodies with trailers`, async (t) => {
  const proxy = await startProxy(t);
  let trailers: NodeJS.Dict<string> = {};
  const app = await startApp(t, `echo`, (req, res) => {
    const chunks: Buffer[] = [];
    req.on(`data`, (chunk: Buffer) => chunks.push(chunk));
    req.on(`end`, () => {
      trailers = req.trailers;
      res.writeHead(200, {'Trailer': `X-Sum`});
      res.write(`got:`);
      res.write(Buffer.concat(chunks));
      res.addTrailers({'X-Sum': `done`});
      res.end();
    });
  });
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  const client = rawClient(t, proxy.address.port);
  client.socket.write(`POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Check\r\n\r\n5;ext=1\r\nhello\r\n`);
  client.socket.write(`6\r\n world\r\n0\r\nX-Check: yes\r\n\r\n`);
  const text = await client.readUntil((s) => s.includes(`\r\n0\r\nx-sum: done\r\n\r\n`) || s.includes(`\r\n0\r\nX-Sum: done\r\n\r\n`));
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(text, /got:/);
  assert.match(text, /hello world/);
  assert.equal(trailers[`x-check`], `yes`);
  // The connection stays usable after a chunked exchange.
  client.socket.write(`GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
  await client.readUntil((s) => countOf(s, `HTTP/1.1 200 OK`) === 2 && s.endsWith(`got:`) === false && /got:\r\n0\r\n\r\n$/.test(s) === false && countOf(s, `\r\n0\r\n`) >= 2);
});

test(`streams large bodies both ways with backpressure and intact bytes`, async (t) => {
  const proxy = await startProxy(t);
  const size = 16 * 1024 * 1024;
  const payload = crypto.randomBytes(size);
  const digest = crypto.createHash(`sha256`).update(payload).digest(`hex`);
  const app = await startApp(t, `big`, (req, res) => {
    if (req.method === `POST`) {
      const hash = crypto.createHash(`sha256`);
      let bytes = 0;
      req.on(`data`, (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      req.on(`end`, () => res.end(`${bytes}:${hash.digest(`hex`)}`));
      return;
    }
    res.writeHead(200, {'Content-Length': size});
    res.end(payload);
  });
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  const upload = await request(proxy.address.port, {method: `POST`, body: payload});
  assert.equal(upload.body, `${size}:${digest}`);

  const downloaded = await new Promise<string>((resolve, reject) => {
    http.get({host: `127.0.0.1`, port: proxy.address.port, path: `/`, agent: false}, (res) => {
      const hash = crypto.createHash(`sha256`);
      res.pause(); // a slow reader: the proxy must stop reading from the app, not buffer 16 MiB
      setImmediate(() => {
        res.on(`data`, (chunk: Buffer) => hash.update(chunk));
        res.on(`end`, () => resolve(hash.digest(`hex`)));
        res.resume();
      });
    }).on(`error`, reject);
  });
  assert.equal(downloaded, digest);
});

test(`frames HEAD, 204 and 304 responses without a body on a keep-alive connection`, async (t) => {
  const proxy = await startProxy(t);
  const app = await startApp(t, `frames`, (req, res) => {
    if (req.url === `/204`) {
      res.writeHead(204).end();
    } else if (req.url === `/304`) {
      res.writeHead(304, {ETag: `"x"`}).end();
    } else {
      res.writeHead(200, {'Content-Length': 5}).end(req.method === `HEAD` ? undefined : `hello`);
    }
  });
  const target = addTarget(proxy, app, `r1`);
  proxy.setActiveTargets([target]);
  const client = rawClient(t, proxy.address.port);
  client.socket.write(`HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n`);
  const text = await client.readUntil((s) => s.endsWith(`hello`));
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((match) => match[1]);
  assert.deepEqual(statuses, [`200`, `204`, `304`, `200`]);
  assert.equal(app.connections, 1);
  assert.equal(target.stats.requests, 4);
});

test(`answers pipelined requests in order, one at a time`, async (t) => {
  const proxy = await startProxy(t);
  let inFlight = 0;
  let maxInFlight = 0;
  const app = await startApp(t, `pipe`, (req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    setImmediate(() => {
      inFlight--;
      res.end(`<${req.url}>`);
    });
  });
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  const client = rawClient(t, proxy.address.port);
  client.socket.write([1, 2, 3, 4, 5].map((n) => `GET /${n} HTTP/1.1\r\nHost: x\r\n\r\n`).join(``));
  const text = await client.readUntil((s) => s.includes(`</5>`));
  assert.deepEqual([...text.matchAll(/<\/(\d)>/g)].map((match) => match[1]), [`1`, `2`, `3`, `4`, `5`]);
  assert.equal(maxInFlight, 1);
});

test(`relays 100 Continue before the final response`, async (t) => {
  const proxy = await startProxy(t);
  const app = await startApp(t, `continue`, (req, res) => {
    let body = ``;
    req.on(`data`, (chunk: Buffer) => (body += chunk.toString()));
    req.on(`end`, () => res.end(`received ${body}`));
  });
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  const client = rawClient(t, proxy.address.port);
  client.socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n`);
  await client.readUntil((s) => s.startsWith(`HTTP/1.1 100 Continue\r\n\r\n`));
  client.socket.write(`data`);
  const text = await client.readUntil((s) => s.endsWith(`received data`));
  assert.match(text, /HTTP\/1\.1 200 OK/);
});

test(`keeps the client connection open when the app answers with Connection: close`, async (t) => {
  const proxy = await startProxy(t);
  const app = await startApp(t, `closing`, (_req, res) => {
    res.setHeader(`Connection`, `close`);
    res.end(`bye`);
  });
  const target = addTarget(proxy, app, `r1`);
  proxy.setActiveTargets([target]);
  const agent = new http.Agent({keepAlive: true, maxSockets: 1});
  t.after(() => agent.destroy());
  const first = await request(proxy.address.port, {agent});
  const second = await request(proxy.address.port, {agent});
  assert.equal(first.body, `bye`);
  assert.equal(first.headers.connection, undefined);
  assert.equal(second.body, `bye`);
  assert.equal(app.connections, 2);
  assert.equal(target.pool.idle, 0);
});

test(`relays a close-delimited response and closes the client connection after it`, async (t) => {
  const proxy = await startProxy(t);
  const app = await startApp(t, `stream`, (_req, res) => {
    res.useChunkedEncodingByDefault = false;
    res.shouldKeepAlive = false;
    res.write(`part1-`);
    res.end(`part2`);
  });
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  const client = rawClient(t, proxy.address.port);
  client.socket.write(`GET / HTTP/1.1\r\nHost: x\r\n\r\n`);
  await client.readUntil((s) => s.endsWith(`part1-part2`));
  await waitFor(() => client.socket.readableEnded);
});

test(`cleans up the app connection when the client aborts mid-request and mid-response`, async (t) => {
  const proxy = await startProxy(t);
  let requestAborted = false;
  const app = await startApp(t, `abort`, (req, res) => {
    if (req.method === `POST`) {
      req.on(`close`, () => (requestAborted = !req.complete));
      req.resume();
      return;
    }
    res.writeHead(200, {'Content-Length': 1_000_000});
    res.write(`x`.repeat(1000));
  });
  const target = addTarget(proxy, app, `r1`);
  proxy.setActiveTargets([target]);
  const client = rawClient(t, proxy.address.port);
  client.socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial`);
  await waitFor(() => target.connections.http === 1);
  client.socket.end();
  await waitFor(() => requestAborted && target.connections.http === 0 && target.pool.total === 0);

  const second = rawClient(t, proxy.address.port);
  second.socket.write(`GET / HTTP/1.1\r\nHost: x\r\n\r\n`);
  await second.readUntil((s) => s.includes(`xxxx`));
  second.socket.destroy();
  await waitFor(() => target.connections.http === 0 && target.pool.total === 0);
});

test(`aborts the app request when the client closes its side while waiting for the response`, async (t) => {
  const proxy = await startProxy(t);
  let appSawClose = false;
  const app = await startApp(t, `slow`, (req) => {
    req.socket.on(`close`, () => (appSawClose = true));
  });
  const target = addTarget(proxy, app, `r1`);
  proxy.setActiveTargets([target]);
  const client = rawClient(t, proxy.address.port);
  client.socket.write(`GET / HTTP/1.1\r\nHost: x\r\n\r\n`);
  await waitFor(() => target.connections.http === 1);
  client.socket.end();
  await waitFor(() => appSawClose && target.connections.http === 0 && target.pool.total === 0);
});

test(`publishes completed requests on the rollbridge:proxy:request diagnostics channel`, async (t) => {
  const {requestChannel} = await import(`../../src/proxy/client-connection.ts`);
  const proxy = await startProxy(t);
  const app = await startApp(t, `blue`);
  proxy.setActiveTargets([addTarget(proxy, app, `r7`)]);
  const events: unknown[] = [];
  const listener = (event: unknown): void => void events.push(event);
  requestChannel.subscribe(listener);
  t.after(() => requestChannel.unsubscribe(listener));
  await request(proxy.address.port);
  assert.equal(events.length, 1);
  assert.partialDeepStrictEqual(events[0], {method: `GET`, statusCode: 200, releaseId: `r7`, processId: `web`, retried: false});
});

test(`ignores empty lines between pipelined requests`, async (t) => {
  const proxy = await startProxy(t);
  const app = await startApp(t, `blue`);
  proxy.setActiveTargets([addTarget(proxy, app, `r1`)]);
  const client = rawClient(t, proxy.address.port);
  client.socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok\r\n`);
  client.socket.write(`\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n`);
  const text = await client.readUntil((s) => countOf(s, `blue`) === 2);
  assert.equal(countOf(text, `HTTP/1.1 200 OK`), 2);
});
