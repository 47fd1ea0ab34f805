import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {startDaemon, webConfig} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {fillUp, mountSmallDisk} from '../helpers/small-disk.ts';

test(`issue-9: a deploy on a full logs.dir fails with ENOSPC, the path and its free space; the events file never holds a torn line`, async (t) => {
  const disk = mountSmallDisk(t, `1m`);
  if (disk === null) return;
  const {dir, full} = disk;
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
