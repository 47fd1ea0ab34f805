// A real full disk for tests: a small tmpfs mounted in the test's own temporary directory (root only),
// unmounted before that directory is removed, and a writer that fills it up.
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type {TestContext} from 'node:test';
import {requireCommands} from './system-packages.ts';
import {beforeRemoving, createTempDir} from './temp-dir.ts';

/**
 * Mounts a tmpfs of `size` (`256k`, `1m`) at `<dir>/full` in a new temporary `dir` and returns both, or
 * null (the test is skipped, saying why).
 */
export function mountSmallDisk(t: TestContext, size: string): {dir: string; full: string} | null {
  if (process.getuid?.() !== 0) {
    t.skip(`mounting a small tmpfs (a real full disk) needs root`);
    return null;
  }
  if (!requireCommands(t, [{command: `mount`, pkg: `mount`}, {command: `umount`, pkg: `mount`}])) return null;
  const dir = createTempDir(t);
  const full = path.join(dir, `full`);
  fs.mkdirSync(full);
  execFileSync(`mount`, [`-t`, `tmpfs`, `-o`, `size=${size},mode=0700`, `rollbridge-test`, full]);
  beforeRemoving(dir, () => execFileSync(`umount`, [`-l`, full]));
  return {dir, full};
}

/** Writes into `file` until the filesystem refuses with ENOSPC (big chunks, then single bytes). */
export function fillUp(file: string): void {
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
