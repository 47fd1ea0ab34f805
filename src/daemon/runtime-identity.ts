import {createHash} from 'node:crypto';
import fs from 'node:fs';

/** Which build a daemon runs, for `status.daemonRuntime`: the file that started it and its SHA-256. */
export type RuntimeIdentity = {
  /** The standalone binary, or the entry script when run from the sources (rollbridge 0.1's `path`). */
  path: string;
  /** SHA-256 (hex) of that file as it was when the daemon started (rollbridge 0.1's `digest`). */
  digest: string;
};

/**
 * Hashes the daemon's own executable once, at start. Scripts written for rollbridge 0.1 compare
 * `daemonRuntime.digest` and `.path`, so neither may be null once the daemon answers: `status` waits for
 * this (about 0.2 s for the 110 MB binary) instead of the daemon's start-up. A file that cannot be read
 * (deleted under a running daemon) is identified by its version instead.
 */
export async function computeRuntimeIdentity(options: {version: string; commit: string}): Promise<RuntimeIdentity> {
  const entry = process.argv[1];
  const path = entry !== undefined && /\.[cm]?[jt]s$/.test(entry) ? entry : process.execPath;
  const hash = createHash(`sha256`);
  try {
    // One buffer reused for every read: a stream's fresh 1 MiB chunk per read (110 of them for the binary)
    // left ~15 MB of freed malloc arenas in the idle daemon's RSS.
    const buffer = Buffer.allocUnsafeSlow(1 << 20);
    const file = await fs.promises.open(path, `r`);
    try {
      for (;;) {
        const {bytesRead} = await file.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
      }
    } finally {
      await file.close();
    }
    return {path, digest: hash.digest(`hex`)};
  } catch {
    return {path, digest: createHash(`sha256`).update(`rollbridge ${options.version}+${options.commit}`).digest(`hex`)};
  }
}
