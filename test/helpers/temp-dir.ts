import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type {TestContext} from 'node:test';

/** A short temp directory (unix socket paths are limited to ~107 bytes), removed after the test. */
export function createTempDir(t: TestContext | {after(fn: () => unknown): void}, prefix = `rb-`): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, {recursive: true, force: true}));
  return dir;
}
