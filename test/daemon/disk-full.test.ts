import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {requireCommands} from '../helpers/system-packages.ts';
import {beforeRemoving, createTempDir} from '../helpers/temp-dir.ts';

/** Writes into `file` until the filesystem refuses with ENOSPC (big chunks, then single bytes). */
function fillUp(file: string): void {
  const fd = fs.openSync(file, `w`);
  try {
    for (const size of [64 * 1024, 1]) {
      const chunk = Buffer.alloc(size, 120);
      try {
        while (true) fs.writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== `ENOSPC`) throw error;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

test(`issue-9: a deploy on a full logs.dir fails with ENOSPC, the path and its free space; the events file never holds a torn line`, async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip(`mounting a small tmpfs (a real full disk) needs root`);
    return;
  }
  if (!requireCommands(t, [{command: `mount`, pkg: `mount`}, {command: `umount`, pkg: `mount`}])) return;
  const dir = createTempDir(t);
  const full = path.join(dir, `full`);
  fs.mkdirSync(full);
  execFileSync(`mount`, [`-t`, `tmpfs`, `-o`, `size=1m,mode=0700`, `rollbridge-test`, full]);
  beforeRemoving(dir, () => execFileSync(`umount`, [`-l`, full]));
  const eventsPath = path.join(full, `events.jsonl`);
  const daemon = await startDaemon(t, (root) => webConfig(root, {logs: {dir: path.join(full, `logs`)}, eventsPath}), {dir});
  await daemon.call(`deploy`, {releasePath: daemon.release(`v1`), releaseId: `v1`});

  const filler = path.join(full, `filler`);
  fillUp(filler);
  await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`}), (error: unknown) => {
    assert.ok(isRollbridgeError(error), String(error));
    assert.equal(error.code, `ERR_PROCESS_LOG_NO_SPACE`, error.message);
    assert.match(error.message, new RegExp(`logs\\.dir ${path.join(full, `logs`).replaceAll(`/`, `\\/`)} \\(ENOSPC\\): \\d+ bytes free`));
    assert.equal(error.details.path, path.join(full, `logs`));
    assert.equal(typeof error.details.freeBytes, `number`);
    assert.match(error.fix ?? ``, /df -h/);
    return true;
  });
  // More events while the disk stays full: each is written whole or not at all.
  for (let attempt = 0; attempt < 5; attempt++) await assert.rejects(daemon.call(`deploy`, {releasePath: daemon.release(`v2`), releaseId: `v2`}));
  assert.equal((await daemon.call(`status`)).activeReleaseId, `v1`);
  assert.equal((await httpGet(daemon.proxyPort, `/`)).body, `v1\n`, `the running release keeps serving`);

  fs.rmSync(filler);
  await daemon.call(`deploy`, {releasePath: daemon.release(`v3`), releaseId: `v3`});
  const lines = fs.readFileSync(eventsPath, `utf8`).split(`\n`);
  assert.equal(lines.pop(), ``, `the file ends with a whole line`);
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `a torn line in the events file: ${line.slice(0, 120)}`);
  assert.ok(lines.some((line) => (JSON.parse(line) as {message: string; data: {releaseId?: string}}).message === `traffic switched` && line.includes(`"v3"`)), `events are written again once there is space`);
});
