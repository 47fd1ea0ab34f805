import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {MAIN} from '../helpers/run-cli.ts';
import {waitFor} from '../helpers/wait-for.ts';

test(`events --follow --json streams new events as NDJSON until the daemon stops`, async (t) => {
  const daemon = await startDaemon(t, (dir) => webConfig(dir));
  const follower = spawn(process.execPath, [MAIN, `events`, `--follow`, `--json`, `--limit`, `1`], {cwd: daemon.dir, stdio: [`ignore`, `pipe`, `pipe`]});
  const exited = new Promise<number | null>((resolve) => follower.once(`exit`, (code) => resolve(code)));
  t.after(() => {
    if (follower.exitCode === null) follower.kill();
  });
  let stdout = ``;
  follower.stdout.on(`data`, (chunk: Buffer) => (stdout += chunk.toString()));
  const lines = () => stdout.split(`\n`).filter(Boolean).map((line) => JSON.parse(line) as {message: string; at: string; data: Record<string, unknown>});
  await waitFor(() => lines().length >= 1, {what: `the most recent event`});
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  await waitFor(() => lines().some((event) => event.message === `traffic switched`), {what: `the deploy's events on the stream`});
  const switched = lines().find((event) => event.message === `traffic switched`);
  assert.equal(switched?.data.releaseId, `v1`);
  await daemon.call(`shutdown`);
  assert.equal(await exited, 0);
});

test(`eventsPath receives every event as a JSON line in a file only the daemon's user can read`, async (t) => {
  let eventsPath = ``;
  const daemon = await startDaemon(t, (dir) => {
    eventsPath = path.join(dir, `events.jsonl`);
    return webConfig(dir, {eventsPath: `events.jsonl`});
  });
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});
  const events = () => fs.readFileSync(eventsPath, `utf8`).trim().split(`\n`).map((line) => JSON.parse(line) as {message: string; data: Record<string, unknown>});
  await waitFor(() => events().some((event) => event.message === `traffic switched`), {what: `traffic switched in eventsPath`});
  assert.equal(fs.statSync(eventsPath).mode & 0o777, 0o600);
  assert.ok(events().some((event) => event.message === `process started` && event.data.command === undefined), `commands never reach the events file`);
});
