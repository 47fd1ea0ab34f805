import http from 'node:http';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import type {Logger} from '../log/logger.ts';
import {formatHostPort} from '../proxy/forwarded-headers.ts';
import {PROMETHEUS_CONTENT_TYPE} from './prometheus-text.ts';

/** A scrape that takes longer than this (a stuck client) is cut. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * `metrics.listen`: a small HTTP server of its own (never on the proxy port) answering GET/HEAD
 * /metrics with the text exposition format; anything else is 404 or 405.
 */
export class MetricsServer {
  readonly #server: http.Server;
  readonly #address: {host: string; port: number};

  private constructor(server: http.Server, address: {host: string; port: number}) {
    this.#server = server;
    this.#address = address;
  }

  /** Binds host:port; rejects with ERR_METRICS_LISTEN_FAILED (port in use, address not local, permission). */
  static async start(options: {host: string; port: number; render: () => string; log: Logger}): Promise<MetricsServer> {
    const {host, port, render, log} = options;
    const server = http.createServer({requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS}, (request, response) => {
      const path = (request.url ?? ``).split(`?`, 1)[0];
      if (path !== `/metrics`) {
        response.writeHead(404, {'content-type': `text/plain; charset=utf-8`}).end(`Not found: metrics are served at /metrics\n`);
        return;
      }
      if (request.method !== `GET` && request.method !== `HEAD`) {
        response.writeHead(405, {allow: `GET, HEAD`, 'content-type': `text/plain; charset=utf-8`}).end(`Method not allowed\n`);
        return;
      }
      let body: string;
      try {
        body = render();
      } catch (error) {
        log.error(`metrics rendering failed`, {err: error});
        response.writeHead(500, {'content-type': `text/plain; charset=utf-8`}).end(`Metrics rendering failed\n`);
        return;
      }
      response.writeHead(200, {'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body)});
      response.end(request.method === `HEAD` ? undefined : body);
    });
    await new Promise<void>((resolve, reject) => {
      server.once(`error`, (error: NodeJS.ErrnoException) => {
        reject(new RollbridgeError(ErrorCode.METRICS_LISTEN_FAILED, `The metrics endpoint could not listen on ${formatHostPort(host, port)}: ${error.code ?? error.message}`, {
          fix: error.code === `EADDRINUSE`
            ? `Set metrics.listen to a free port, or stop whatever holds ${port} (\`ss -ltnp 'sport = :${port}'\` names it)`
            : `Set metrics.listen to a port (1-65535) on an address of this host, such as "127.0.0.1:9464"`,
          details: {key: `metrics.listen`, host, port, errno: error.code},
          cause: error,
        }));
      });
      server.listen({host, port}, () => resolve());
    });
    server.on(`error`, (error) => log.error(`metrics server error`, {err: error}));
    log.info(`metrics listening`, {host, port, path: `/metrics`});
    return new MetricsServer(server, {host, port});
  }

  get address(): {host: string; port: number} {
    return {...this.#address};
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
