// Runs wrk (Debian package) against 127.0.0.1 and parses its summary.
import {execFile} from 'node:child_process';

export type WrkResult = {
  requestsPerSec: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  /** Socket errors (connect, read, write, timeout) plus non-2xx/3xx responses. */
  errors: number;
  errorDetail: string;
};

export type WrkOptions = {port: number; durationS: number; connections?: number; threads?: number; path?: string};

export function runWrk(options: WrkOptions): Promise<WrkResult> {
  const args = [`-t${options.threads ?? 2}`, `-c${options.connections ?? 50}`, `-d${options.durationS}s`, `--latency`, `http://127.0.0.1:${options.port}${options.path ?? `/`}`];
  return new Promise((resolve, reject) => {
    execFile(`wrk`, args, {encoding: `utf8`, timeout: (options.durationS + 30) * 1000}, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`wrk ${args.join(` `)} failed: ${error.message} ${stderr}`));
        return;
      }
      resolve(parseWrk(stdout));
    });
  });
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in/.exec(out);
  const p50 = /\s50%\s+(\S+)/.exec(out);
  const p99 = /\s99%\s+(\S+)/.exec(out);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const errors = (socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0) + Number(non2xx?.[1] ?? 0);
  return {
    requestsPerSec: Number(rps?.[1] ?? Number.NaN),
    requests: Number(total?.[1] ?? Number.NaN),
    p50Ms: toMs(p50?.[1] ?? ``),
    p99Ms: toMs(p99?.[1] ?? ``),
    errors,
    errorDetail: [socketErrors?.[0], non2xx?.[0]].filter(Boolean).join(`; `),
  };
}

function toMs(value: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim());
  if (!match) return Number.NaN;
  const n = Number(match[1]);
  return match[2] === `us` ? n / 1000 : match[2] === `s` ? n * 1000 : match[2] === `m` ? n * 60_000 : n;
}
