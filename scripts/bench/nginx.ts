// Our own nginx instance for side-by-side throughput: 1 worker, an upstream with keepalive 64, config,
// pid file, logs and temp paths in a temp dir; listening on 127.0.0.1; stopped by its master's pid. The
// upstream block can be replaced (retryingUpstreamConfig: retries on connection errors, for takeovers).
import {spawnSync} from 'node:child_process';
import type {ChildProcess} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {readChildPids, readCpuMs} from './process-usage.ts';
import {spawnTracked, stopChild} from './tracked-children.ts';

export type NginxInstance = {
  port: number;
  version: string;
  masterPid: number;
  /** CPU time of the master and its workers, in ms. */
  cpuMs(): number;
  stop(): Promise<void>;
};

export function findNginx(): string | null {
  for (const candidate of [`/usr/sbin/nginx`, `/usr/local/sbin/nginx`, `/usr/bin/nginx`]) {
    if (fs.existsSync(candidate)) return candidate;
  }
  return null;
}

/** A free TCP port on 127.0.0.1 (bound on port 0, then released). */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once(`error`, reject);
    server.listen(0, `127.0.0.1`, () => {
      const {port} = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The `upstream app` block and the `location /` directives of the generated config. */
export type NginxProxyConfig = {upstream: string; location: string};

/**
 * An upstream that retries a refused or reset connection on the same app: the one server listed
 * `servers` times with `max_fails=0` (never marked down), plus `backups` backup entries, and every
 * error, timeout and non-idempotent request passed to the next entry without a try limit.
 */
export function retryingUpstreamConfig(upstreamPort: number, options: {servers: number; backups?: number; connectTimeoutMs?: number}): NginxProxyConfig {
  const entry = `server 127.0.0.1:${upstreamPort} max_fails=0`;
  const servers = [
    ...Array.from({length: options.servers}, () => `    ${entry};`),
    ...Array.from({length: options.backups ?? 0}, () => `    ${entry} backup;`),
  ];
  return {
    upstream: `${servers.join(`\n`)}\n    keepalive 64;`,
    location: [
      `proxy_next_upstream error timeout non_idempotent;`,
      `proxy_next_upstream_tries 0;`,
      `proxy_next_upstream_timeout 0;`,
      `proxy_connect_timeout ${options.connectTimeoutMs ?? 200}ms;`,
    ].map((line) => `      ${line}`).join(`\n`),
  };
}

export async function startNginx(options: {dir: string; upstreamPort: number; proxy?: NginxProxyConfig}): Promise<NginxInstance> {
  const nginx = findNginx();
  if (!nginx) throw new Error(`nginx is not installed: run \`apt-get install -y nginx\``);
  const version = spawnSync(nginx, [`-v`], {encoding: `utf8`}).stderr.trim().replace(/^nginx version: /, ``);
  const dir = options.dir;
  fs.mkdirSync(path.join(dir, `tmp`), {recursive: true});
  const port = await findFreePort();
  const conf = path.join(dir, `nginx.conf`);
  fs.writeFileSync(conf, `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  upstream app {
${options.proxy?.upstream ?? `    server 127.0.0.1:${options.upstreamPort};\n    keepalive 64;`}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
${options.proxy?.location ?? ``}
    }
  }
}
`);
  const child: ChildProcess = spawnTracked(nginx, [`-p`, dir, `-c`, conf, `-e`, path.join(dir, `error.log`)], {cwd: dir, stdio: [`ignore`, `ignore`, `pipe`]});
  let stderr = ``;
  child.stderr!.setEncoding(`utf8`).on(`data`, (chunk: string) => (stderr += chunk));
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`nginx did not listen on 127.0.0.1:${port}: ${stderr.trim()} ${readFile(path.join(dir, `error.log`))}`);
    }
    await delay(20);
  }
  const masterPid = child.pid!;
  return {
    port,
    version,
    masterPid,
    cpuMs: () => [masterPid, ...readChildPids(masterPid)].reduce((sum, pid) => sum + (readCpuMs(pid) || 0), 0),
    stop: async () => {
      const workers = readChildPids(masterPid);
      await stopChild(child);
      for (const pid of workers) {
        try {
          process.kill(pid, `SIGKILL`); // a worker only outlives its master if the master was killed
        } catch {
          // already gone
        }
      }
    },
  };
}

/** True when something accepts a TCP connection on 127.0.0.1:port. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, `127.0.0.1`);
    socket.once(`connect`, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once(`error`, () => resolve(false));
  });
}

function readFile(file: string): string {
  try {
    return fs.readFileSync(file, `utf8`).trim();
  } catch {
    return ``;
  }
}
