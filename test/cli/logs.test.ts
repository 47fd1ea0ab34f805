import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import type {ChildProcess} from 'node:child_process';
import {once} from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {fileURLToPath} from 'node:url';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import type {TestDaemon} from '../helpers/daemon.ts';
import {MAIN, runCli} from '../helpers/run-cli.ts';
import {waitFor} from '../helpers/wait-for.ts';

const LOGS_APP = fileURLToPath(new URL(`../fixtures/apps/logs-app.cjs`, import.meta.url));

type After = {after(fn: () => unknown): void};
type Source = {id: string; source: string; logs: Array<{at: string; stream: string; line: string}>; logPaths: {stdout: string; stderr: string}};

/** A daemon with the web app and a companion `echo` (logs-app) deployed as release `r1`, logs under its temp dir. */
async function deployWithEcho(t: After): Promise<{daemon: TestDaemon; echoPid: number}> {
  const daemon = await startDaemon(t, (dir) => {
    const config = webConfig(dir, {logs: {dir: `logs`}});
    const ready = path.join(dir, `echo.pid`);
    (config.processes as unknown[]).push({id: `echo`, policy: `companion`, command: `exec "${process.execPath}" "${LOGS_APP}" --ready "${ready}"`});
    return config;
  });
  const deploy = await runCli([`deploy`, `--release-path`, daemon.release(`r1`), `--release-id`, `r1`, `--json`], {cwd: daemon.dir});
  assert.equal(deploy.code, 0, deploy.stdout + deploy.stderr);
  const pidFile = path.join(daemon.dir, `echo.pid`);
  const echoPid = Number(await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, `utf8`), {what: `the echo app`}));
  return {daemon, echoPid};
}

/** Runs the CLI in the background, collecting stdout; killed after the test if still running. */
function startCli(t: After, args: string[], cwd: string): {child: ChildProcess; stdout: () => string; exited: Promise<[number | null, NodeJS.Signals | null]>} {
  const child = spawn(process.execPath, [MAIN, ...args], {cwd, stdio: [`ignore`, `pipe`, `pipe`]});
  let stdout = ``;
  child.stdout?.setEncoding(`utf8`).on(`data`, (chunk: string) => (stdout += chunk));
  child.stderr?.resume();
  const exited = once(child, `exit`) as Promise<[number | null, NodeJS.Signals | null]>;
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill(`SIGKILL`);
  });
  return {child, stdout: () => stdout, exited};
}

test(`logs lists each process's log files, which hold its output, and --lines limits the recent lines`, async (t) => {
  const {daemon} = await deployWithEcho(t);
  const sources = await waitFor(async () => {
    const result = await runCli([`logs`, `--process`, `echo`, `--json`], {cwd: daemon.dir});
    const parsed = result.json() as Source[];
    return parsed[0]?.logs.length === 2 ? parsed : undefined;
  }, {what: `the echo app's start-up lines`});
  const [echo] = sources;
  assert.ok(echo);
  assert.deepEqual(echo.logPaths, {stdout: path.join(daemon.dir, `logs`, `r1`, `echo.stdout.log`), stderr: path.join(daemon.dir, `logs`, `r1`, `echo.stderr.log`)});
  assert.equal(fs.readFileSync(echo.logPaths.stdout, `utf8`), `started\n`);
  assert.equal(fs.readFileSync(echo.logPaths.stderr, `utf8`), `warming up\n`);
  const limited = await runCli([`logs`, `--process`, `echo`, `--lines`, `1`], {cwd: daemon.dir});
  assert.equal(limited.code, 0);
  assert.match(limited.stdout, /^== release r1 \(active\): echo ==\n\n\S+ echo \[(stdout|stderr)\] (started|warming up)\n$/);
});

test(`logs --follow prints lines written after it started, and exits 0 on SIGINT`, async (t) => {
  const {daemon, echoPid} = await deployWithEcho(t);
  const cli = startCli(t, [`logs`, `--process`, `echo`, `--follow`], daemon.dir);
  // The header is printed once the files are positioned at their end: what the app writes next is followed.
  await waitFor(() => cli.stdout().includes(`== release r1 (active): echo ==`), {what: `the snapshot`});
  process.kill(echoPid, `SIGUSR2`);
  await waitFor(() => cli.stdout().includes(`echo [stdout] poked 1\n`) && cli.stdout().includes(`echo [stderr] poked 1 on stderr\n`), {what: `the followed lines`});
  cli.child.kill(`SIGINT`);
  assert.deepEqual(await cli.exited, [0, null]);
});

test(`logs --follow --json prints NDJSON lines, the recent ones first, and exits 0 on SIGTERM`, async (t) => {
  const {daemon, echoPid} = await deployWithEcho(t);
  await waitFor(async () => ((await runCli([`logs`, `--process`, `echo`, `--json`], {cwd: daemon.dir})).json() as Source[])[0]?.logs.length === 2, {what: `the start-up lines`});
  const cli = startCli(t, [`logs`, `--process`, `echo`, `--follow`, `--json`], daemon.dir);
  await waitFor(() => cli.stdout().split(`\n`).length > 2, {what: `the recent lines`});
  process.kill(echoPid, `SIGUSR2`);
  await waitFor(() => cli.stdout().split(`\n`).length > 4, {what: `the followed lines`});
  cli.child.kill(`SIGTERM`);
  assert.deepEqual(await cli.exited, [0, null]);
  const entries = cli.stdout().trimEnd().split(`\n`).map((line) => JSON.parse(line) as Record<string, unknown>);
  const view = (slice: Array<Record<string, unknown>>) => slice.map(({id, stream, line}) => `${String(id)} ${String(stream)} ${String(line)}`).sort();
  assert.deepEqual(view(entries.slice(0, 2)), [`echo stderr warming up`, `echo stdout started`]);
  assert.deepEqual(view(entries.slice(2)), [`echo stderr poked 1 on stderr`, `echo stdout poked 1`]);
  for (const entry of entries) assert.ok(!Number.isNaN(Date.parse(String(entry.at))));
});
