// Daemon configs for the benchmark parts: the apps are fixtures referenced by absolute path and run by
// this Node (24), on ports the OS assigns; the proxy listens on an ephemeral 127.0.0.1 port.
import path from 'node:path';
import {REPO_ROOT} from './rollbridge-cli.ts';

export const HELLO_APP = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `proxy-hello.js`);
export const WEB_APP = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `web-app.cjs`);

/** The tiny keep-alive app (fixed 12-byte body) behind the proxy, for throughput and memory. */
export function helloConfig(application: string): Record<string, unknown> {
  return {
    application,
    proxy: {host: `127.0.0.1`, port: 0},
    processes: [{id: `web`, command: `"${process.execPath}" "${HELLO_APP}" {{port}}`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 25}}],
  };
}

/**
 * The realistic web app (answers its release id, WebSocket echo prefixed by the release id).
 * `health` overrides the health settings (the defaults of the product when `{}`).
 */
export function webConfig(application: string, options: {env?: Record<string, string>; proxy?: Record<string, unknown>; health?: Record<string, unknown>; keep?: number} = {}): Record<string, unknown> {
  return {
    application,
    proxy: {host: `127.0.0.1`, port: 0, ...options.proxy},
    releaseRetention: {keep: options.keep ?? 2},
    processes: [{
      id: `web`,
      command: `"${process.execPath}" "${WEB_APP}"`,
      policy: `proxied`,
      port: {from: 0, to: 0},
      env: options.env ?? {},
      health: {path: `/ping`, ...(options.health ?? {intervalMs: 25})},
    }],
  };
}
