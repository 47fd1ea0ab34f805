import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {createTempDir} from '../helpers/temp-dir.ts';
import {REPO_ROOT, runCli} from '../helpers/run-cli.ts';
import {httpGet} from '../helpers/http.ts';
import {isPidAlive, killQuietly} from '../helpers/processes.ts';

// The release an upstream user would ship for the README topology: plain Node scripts.
const RELEASE_FILES: Record<string, string> = {
  'web.js': `const http = require('node:http');
const port = Number(process.argv[process.argv.indexOf('--port') + 1]);
const server = http.createServer((req, res) => res.end(req.url === '/ping' ? 'pong' : process.env.ROLLBRIDGE_RELEASE_ID + ' ' + process.env.BEACON_URL));
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => { server.close(() => process.exit(0)); server.closeIdleConnections(); });`,
  'worker.js': `process.on('SIGTSTP', () => {});
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1000);`,
  'beacon.js': `const http = require('node:http');
const port = Number(process.argv[process.argv.indexOf('--port') + 1]);
http.createServer((req, res) => res.end('beacon')).listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));`,
  'jobs-main.js': `process.on('SIGINT', () => process.exit(0));
setInterval(() => {}, 1000);`,
  'package.json': `{"type": "commonjs"}`,
};

test(`the rollbridge 0.1 README config (rollbridge.js, export default) validates and deploys twice unchanged`, async (t) => {
  let dir = ``;
  let daemonPid = 0;
  // Registered before the temp dir so the daemon is shut down while its config still exists.
  t.after(async () => {
    if (dir) await runCli([`shutdown`, `--config`, path.join(dir, `rollbridge.js`)]);
    if (daemonPid && isPidAlive(daemonPid)) killQuietly(daemonPid, `SIGTERM`);
  });
  dir = createTempDir(t);
  fs.copyFileSync(path.join(REPO_ROOT, `test`, `fixtures`, `configs`, `upstream-readme`, `rollbridge.js`), path.join(dir, `rollbridge.js`));
  const release = (name: string) => {
    const releaseDir = path.join(dir, `releases`, name);
    fs.mkdirSync(releaseDir, {recursive: true});
    for (const [file, content] of Object.entries(RELEASE_FILES)) fs.writeFileSync(path.join(releaseDir, file), content);
    return path.join(`releases`, name);
  };

  const validate = await runCli([`validate`], {cwd: dir});
  assert.equal(validate.code, 0, validate.stderr);
  assert.match(validate.stdout, /is valid: 4 processes, proxy on 127\.0\.0\.1:8182/);

  const first = await runCli([`deploy`, `--release-path`, release(`1`), `--revision`, `aaa111`, `--ensure-daemon`, `--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)], {cwd: dir});
  assert.equal(first.code, 0, first.stderr + (fs.existsSync(path.join(dir, `daemon.log`)) ? fs.readFileSync(path.join(dir, `daemon.log`), `utf8`) : ``));
  daemonPid = Number(fs.readFileSync(path.join(dir, `daemon.pid`), `utf8`));
  assert.equal((first.json() as {activeReleaseId: string}).activeReleaseId, `aaa111`);
  assert.equal((await httpGet(8182, `/`)).body, `aaa111 http://127.0.0.1:4100`);

  const second = await runCli([`deploy`, `--release-path`, release(`2`), `--revision`, `bbb222`], {cwd: dir});
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(second.json(), {...(second.json() as object), activeReleaseId: `bbb222`, previousReleaseId: `aaa111`});
  assert.equal((await httpGet(8182, `/`)).body, `bbb222 http://127.0.0.1:4100`);

  const status = (await runCli([`status`], {cwd: dir})).json() as {
    releases: Array<{releaseId: string; processes: Array<{id: string}>}>;
    services: Array<{id: string; port: number}>;
    singletons: Array<{id: string}>;
  };
  const active = status.releases.find((entry) => entry.releaseId === `bbb222`);
  assert.deepEqual(active?.processes.map((process) => process.id), [`background-jobs-worker#0`, `background-jobs-worker#1`, `web`]);
  assert.deepEqual(status.services.map((service) => [service.id, service.port]), [[`beacon`, 4100]]);
  assert.deepEqual(status.singletons.map((singleton) => singleton.id), [`background-jobs-main`]);
});
