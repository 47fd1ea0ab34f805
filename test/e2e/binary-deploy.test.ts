// End-to-end on the built binary (not the sources): a PATH that holds no `node`, a working directory
// outside the repo, a real app. daemon → deploy → deploy → rollback → status → logs → events → shutdown.
import assert from 'node:assert/strict';
import {execFile, spawn} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {createTempDir} from '../helpers/temp-dir.ts';
import {httpGet} from '../helpers/http.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {getBinaryPath} from './binary-path.ts';

const WEB_APP = path.resolve(import.meta.dirname, `..`, `fixtures`, `apps`, `web-app.cjs`);

/** A bin directory with a few shell tools and no node, so nothing can fall back to a Node on PATH. */
function makeNodelessPath(dir: string): string {
  const bin = path.join(dir, `bin`);
  fs.mkdirSync(bin);
  for (const tool of [`sh`, `sleep`, `cat`, `env`, `echo`]) {
    const found = [`/usr/bin/${tool}`, `/bin/${tool}`].find((candidate) => fs.existsSync(candidate));
    if (found) fs.symlinkSync(found, path.join(bin, tool));
  }
  return bin;
}

function run(binary: string, args: string[], options: {cwd: string; env: Record<string, string>}): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    execFile(binary, args, {cwd: options.cwd, env: options.env, timeout: 60_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, stdout, stderr});
    });
  });
}

test(`the binary deploys, rolls back, reports and shuts down a real app with no node on PATH`, async (t) => {
  const binary = getBinaryPath();
  const dir = createTempDir(t, `rb-e2e-`);
  const env = {PATH: makeNodelessPath(dir), HOME: dir};
  assert.equal(fs.existsSync(path.join(env.PATH, `node`)), false);
  // The app is a Node program run by its own absolute runtime path: rollbridge itself needs no node.
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({
    application: `e2e`,
    control: {path: path.join(dir, `control.sock`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 1_000},
    processes: [
      {id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 50}},
      {id: `worker`, command: `echo "worker of {{releaseId}} up"; exec sleep 300`, policy: `companion`},
    ],
  }));
  for (const name of [`r1`, `r2`]) fs.mkdirSync(path.join(dir, `releases`, name), {recursive: true});

  const daemon = spawn(binary, [`daemon`], {cwd: dir, env, stdio: [`ignore`, `pipe`, `pipe`]});
  let daemonOutput = ``;
  daemon.stdout.on(`data`, (chunk: Buffer) => (daemonOutput += chunk.toString()));
  daemon.stderr.on(`data`, (chunk: Buffer) => (daemonOutput += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => daemon.once(`exit`, (code) => resolve(code)));
  t.after(async () => {
    if (daemon.exitCode === null) {
      daemon.kill(`SIGTERM`);
      await exited;
    }
  });
  await waitFor(() => fs.existsSync(path.join(dir, `control.sock`)), {what: `the binary daemon's socket`, timeoutMs: 15_000});

  const first = await run(binary, [`deploy`, `--release-path`, `releases/r1`, `--release-id`, `r1`], {cwd: dir, env});
  assert.equal(first.code, 0, first.stderr + daemonOutput);
  const status = JSON.parse((await run(binary, [`status`], {cwd: dir, env})).stdout) as {proxy: {port: number}; releases: Array<{releaseId: string; state: string; processes: Array<{id: string; pid: number}>}>};
  const port = status.proxy.port;
  assert.equal((await httpGet(port)).body, `r1\n`);

  const second = await run(binary, [`deploy`, `--release-path`, path.join(dir, `releases`, `r2`), `--release-id`, `r2`, `--json`], {cwd: `/`, env: {...env}});
  assert.equal(second.code, 1, `without --config and outside the config's directory there is no config`);
  assert.equal((JSON.parse(second.stdout) as {error: {code: string}}).error.code, `ERR_CONFIG_NOT_FOUND`);
  const deployed = await run(binary, [`deploy`, `--config`, path.join(dir, `rollbridge.json`), `--release-path`, path.join(dir, `releases`, `r2`), `--release-id`, `r2`], {cwd: `/`, env});
  assert.equal(deployed.code, 0, deployed.stderr);
  assert.deepEqual(JSON.parse(deployed.stdout).previousReleaseId, `r1`);
  assert.equal((await httpGet(port)).body, `r2\n`);

  const r1Web = status.releases[0]?.processes.find((process) => process.id === `web`)?.pid;
  assert.ok(r1Web);
  await waitFor(() => !isPidAlive(r1Web), {what: `r1's web process to stop after its drain`});

  const rollback = await run(binary, [`rollback`], {cwd: dir, env});
  assert.equal(rollback.code, 0, rollback.stderr);
  assert.deepEqual([JSON.parse(rollback.stdout).activeReleaseId, JSON.parse(rollback.stdout).previousReleaseId], [`r1`, `r2`]);
  assert.equal((await httpGet(port)).body, `r1\n`);

  // The rollback started r1's worker again: its first line reaches the daemon's follower asynchronously.
  const logs = await waitFor(async () => {
    const result = await run(binary, [`logs`, `--process`, `worker`], {cwd: dir, env});
    return result.code === 0 && /worker of r1 up/.test(result.stdout) ? result : null;
  }, {what: `"worker of r1 up" in logs --process worker`});
  assert.match(logs.stdout, /worker of r1 up/);
  const events = JSON.parse((await run(binary, [`events`, `--json`], {cwd: dir, env})).stdout) as Array<{message: string}>;
  assert.ok(events.some((event) => event.message === `rollback starting`));

  const shutdown = await run(binary, [`shutdown`], {cwd: dir, env});
  assert.equal(shutdown.code, 0, shutdown.stderr);
  assert.equal(await exited, 0);
  assert.equal(fs.existsSync(path.join(dir, `control.sock`)), false);
});

test(`the binary's verify self-test passes on this host`, async (t) => {
  const binary = getBinaryPath();
  const dir = createTempDir(t, `rb-e2e-`);
  const result = await run(binary, [`verify`, `--json`, `--websockets`, `5`, `--drain-timeout-ms`, `500`], {cwd: dir, env: {PATH: makeNodelessPath(dir), HOME: dir}});
  assert.equal(result.code, 0, result.stdout + result.stderr);
  const report = JSON.parse(result.stdout) as {ok: boolean; failedRequests: number; requests: number; websockets: {opened: number; closedWith1001: number}};
  assert.equal(report.ok, true);
  assert.equal(report.failedRequests, 0);
  assert.ok(report.requests > 0);
  assert.deepEqual([report.websockets.opened, report.websockets.closedWith1001], [5, 5]);
});
