import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {once} from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {withBuildLock} from '../../bundle/build-lock.ts';
import {killQuietly} from '../helpers/processes.ts';
import {createTempDir} from '../helpers/temp-dir.ts';

test(`holds the lock file with this pid while the build runs and removes it afterwards`, async (t) => {
  const lockPath = path.join(createTempDir(t), `out`, `.build.lock`);

  const seen = await withBuildLock(lockPath, async () => fs.readFileSync(lockPath, `utf8`));

  assert.equal(seen, String(process.pid));
  assert.equal(fs.existsSync(lockPath), false);
});

test(`removes the lock when the build throws`, async (t) => {
  const lockPath = path.join(createTempDir(t), `.build.lock`);

  await assert.rejects(withBuildLock(lockPath, async () => { throw new Error(`boom`); }), /boom/);

  assert.equal(fs.existsSync(lockPath), false);
});

test(`takes over a lock left by a process that no longer exists`, async (t) => {
  const lockPath = path.join(createTempDir(t), `.build.lock`);
  const gone = spawn(process.execPath, [`-e`, ``]);
  await once(gone, `exit`);
  fs.writeFileSync(lockPath, String(gone.pid));

  const ran = await withBuildLock(lockPath, async () => true, {onWait: () => assert.fail(`must not wait for a dead pid`)});

  assert.equal(ran, true);
});

test(`waits while a live process holds the lock and runs once it is released`, async (t) => {
  const lockPath = path.join(createTempDir(t), `.build.lock`);
  const holder = spawn(process.execPath, [`-e`, `setInterval(() => {}, 1000)`], {stdio: `ignore`});
  t.after(() => killQuietly(holder.pid!));
  fs.writeFileSync(lockPath, String(holder.pid));
  let waitedFor: number | null = null;

  const result = withBuildLock(lockPath, async () => fs.readFileSync(lockPath, `utf8`), {
    pollMs: 10,
    onWait: pid => {
      waitedFor = pid;
      fs.rmSync(lockPath);
    },
  });

  assert.equal(await result, String(process.pid));
  assert.equal(waitedFor, holder.pid);
});

test(`fails with the holder's pid when the lock is held past the timeout`, async (t) => {
  const lockPath = path.join(createTempDir(t), `.build.lock`);
  const holder = spawn(process.execPath, [`-e`, `setInterval(() => {}, 1000)`], {stdio: `ignore`});
  t.after(() => killQuietly(holder.pid!));
  fs.writeFileSync(lockPath, String(holder.pid));

  await assert.rejects(
    withBuildLock(lockPath, async () => assert.fail(`must not run`), {timeoutMs: 0, pollMs: 10}),
    (error: Error & {fix?: string}) => error.name === `BuildFailure` && error.message.includes(`pid ${holder.pid}`) && (error.fix ?? ``).includes(lockPath),
  );
  assert.equal(fs.readFileSync(lockPath, `utf8`), String(holder.pid), `another build's lock is left alone`);
});
