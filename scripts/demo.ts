// `npm run demo`: deploys the bundled example app (docs/examples/hello-app) twice through a real daemon
// and shows traffic moving from the first release to the second under load, with no failed request.
// Everything lives in a temp directory and is stopped at the end.
import {execFile} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {promisify} from 'node:util';

const execFileAsync = promisify(execFile);
const repo = path.resolve(import.meta.dirname, `..`);
const main = path.join(repo, `src`, `main.ts`);
const exampleApp = path.join(repo, `docs`, `examples`, `hello-app`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), `rb-demo-`));
const configPath = path.join(work, `rollbridge.json`);

async function rollbridge(...args: string[]): Promise<string> {
  const {stdout} = await execFileAsync(process.execPath, [main, ...args, `--config`, configPath], {cwd: work});
  return stdout;
}

function prepareRelease(name: string): string {
  const dir = path.join(work, `releases`, name);
  fs.cpSync(exampleApp, dir, {recursive: true});
  return dir;
}

function get(port: number, agent: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get({host: `127.0.0.1`, port, path: `/`, agent}, (response) => {
      let body = ``;
      response.setEncoding(`utf8`);
      response.on(`data`, (chunk: string) => (body += chunk));
      response.on(`end`, () => (response.statusCode === 200 ? resolve(body.trim()) : reject(new Error(`HTTP ${response.statusCode}`))));
    });
    request.on(`error`, reject);
  });
}

async function main_(): Promise<number> {
  fs.writeFileSync(configPath, JSON.stringify({
    application: `hello-demo`,
    control: {path: path.join(work, `control.sock`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 5_000},
    processes: [{id: `web`, command: `"${process.execPath}" server.js`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 25}}],
  }, null, 2));
  const v1 = prepareRelease(`v1`);
  const v2 = prepareRelease(`v2`);

  console.log(`» rollbridge ensure-daemon   (config ${configPath})`);
  const daemonStatus = JSON.parse(await rollbridge(`ensure-daemon`, `--json`, `--daemon-log-path`, path.join(work, `daemon.log`), `--daemon-pid-path`, path.join(work, `daemon.pid`))) as {proxy: {port: number}};
  const port = daemonStatus.proxy.port;
  console.log(`  daemon up; stable proxy port 127.0.0.1:${port}`);

  console.log(`» rollbridge deploy --release-path ${v1} --release-id v1`);
  const first = JSON.parse(await rollbridge(`deploy`, `--release-path`, v1, `--release-id`, `v1`, `--json`)) as {activeReleaseId: string; durationMs: number};
  console.log(`  active release ${first.activeReleaseId} after ${first.durationMs} ms`);
  const agent = new http.Agent({keepAlive: true, maxSockets: 8});
  console.log(`  curl http://127.0.0.1:${port}/ → ${await get(port, agent)}`);

  console.log(`» rollbridge deploy --release-path ${v2} --release-id v2   (while 8 keep-alive clients send requests)`);
  const counts = new Map<string, number>();
  let failures = 0;
  let running = true;
  const client = async () => {
    while (running) {
      try {
        const body = await get(port, agent);
        const release = /release (\S+)/.exec(body)?.[1] ?? body;
        counts.set(release, (counts.get(release) ?? 0) + 1);
      } catch {
        failures += 1;
      }
    }
  };
  const clients = Array.from({length: 8}, client);
  const stopLoad = setTimeout(() => (running = false), 10_000); // bound the load loop in time
  await new Promise((resolve) => setTimeout(resolve, 300));
  const second = JSON.parse(await rollbridge(`deploy`, `--release-path`, v2, `--release-id`, `v2`, `--json`)) as {activeReleaseId: string; previousReleaseId: string; durationMs: number};
  await new Promise((resolve) => setTimeout(resolve, 300));
  running = false;
  clearTimeout(stopLoad);
  await Promise.all(clients);
  agent.destroy();
  console.log(`  switched ${second.previousReleaseId} → ${second.activeReleaseId} in ${second.durationMs} ms`);
  console.log(`  responses by release: ${[...counts].map(([release, count]) => `${release}=${count}`).join(`, `)}; failed requests: ${failures}`);

  console.log(`» rollbridge status`);
  const status = JSON.parse(await rollbridge(`status`, `--json`)) as {releases: Array<{releaseId: string; state: string}>};
  for (const release of status.releases) console.log(`  release ${release.releaseId}: ${release.state}`);
  console.log(`» rollbridge shutdown`);
  await rollbridge(`shutdown`, `--json`);
  const ok = failures === 0 && counts.has(`v1`) && counts.has(`v2`);
  console.log(ok ? `demo passed: traffic moved from v1 to v2 with 0 failed requests` : `demo FAILED`);
  return ok ? 0 : 1;
}

try {
  process.exitCode = await main_();
} catch (error) {
  console.error(error);
  const log = path.join(work, `daemon.log`);
  if (fs.existsSync(log)) console.error(`daemon log:\n${fs.readFileSync(log, `utf8`).split(`\n`).slice(-20).join(`\n`)}`);
  await rollbridge(`shutdown`).catch(() => undefined);
  process.exitCode = 1;
} finally {
  fs.rmSync(work, {recursive: true, force: true});
}
