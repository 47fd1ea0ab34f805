import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type {TestContext} from 'node:test';

// Work to do before a temp dir is removed (stopping daemons that write into it), by dir.
const beforeRemoval = new Map<string, Array<() => unknown>>();

/**
 * A short temp directory (unix socket paths are limited to ~107 bytes), removed after the test —
 * after whatever was registered for it with `beforeRemoving` (node:test runs `after` hooks in the
 * order they were added, so a hook added later would otherwise run after the removal).
 */
export function createTempDir(t: TestContext | {after(fn: () => unknown): void}, prefix = `rb-`): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  beforeRemoval.set(dir, []);
  t.after(async () => {
    for (const fn of (beforeRemoval.get(dir) ?? []).reverse()) await fn();
    beforeRemoval.delete(dir);
    fs.rmSync(dir, {recursive: true, force: true, maxRetries: 5, retryDelay: 50});
  });
  return dir;
}

/**
 * Runs `fn` at the end of the test, before `dir` (made by createTempDir) is removed; the last
 * registered runs first. Returns false when `dir` is not one of ours (then register it yourself).
 */
export function beforeRemoving(dir: string, fn: () => unknown): boolean {
  const list = beforeRemoval.get(dir);
  if (!list) return false;
  list.push(fn);
  return true;
}
