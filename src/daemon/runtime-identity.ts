import {execFile} from 'node:child_process';
import fs from 'node:fs';
import {promisify} from 'node:util';

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
 * this (about 0.2 s for the 110 MB binary) instead of the daemon's start-up. coreutils' `sha256sum` hashes
 * it on another core, and node:crypto stays out of the daemon (util/random-bytes.ts says why); without
 * `sha256sum` the daemon hashes the file itself. A file that cannot be read (deleted under a running
 * daemon) is identified by its version instead.
 */
export async function computeRuntimeIdentity(options: {version: string; commit: string}): Promise<RuntimeIdentity> {
  const entry = process.argv[1];
  const path = entry !== undefined && /\.[cm]?[jt]s$/.test(entry) ? entry : process.execPath;
  const digest = await sha256sum(path) ?? await hashInProcess(path);
  return {path, digest: digest ?? sha256Hex(`rollbridge ${options.version}+${options.commit}`)};
}

/** The digest `sha256sum` prints (`<64 hex> *<path>`, a `\\` first when it escaped the name), or null. */
async function sha256sum(file: string): Promise<string | null> {
  try {
    const {stdout} = await promisify(execFile)(`sha256sum`, [`--binary`, `--`, file], {env: {PATH: process.env.PATH ?? `/usr/bin:/bin`, LC_ALL: `C`}, timeout: 120_000});
    return /^\\?([0-9a-f]{64}) /.exec(stdout)?.[1] ?? null;
  } catch {
    return null;
  }
}

async function hashInProcess(file: string): Promise<string | null> {
  const hash = process.getBuiltinModule(`node:crypto`).createHash(`sha256`);
  const read = promisify(fs.read);
  let fd: number;
  try {
    fd = await promisify(fs.open)(file, `r`);
  } catch {
    return null;
  }
  try {
    // One buffer reused for every read: a stream's fresh 1 MiB chunk per read (110 of them for the binary)
    // left ~15 MB of freed malloc arenas in the idle daemon's RSS.
    const buffer = Buffer.allocUnsafeSlow(1 << 20);
    for (;;) {
      const {bytesRead} = await read(fd, buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
    return hash.digest(`hex`);
  } catch {
    return null;
  } finally {
    fs.close(fd, () => undefined);
  }
}

function sha256Hex(text: string): string {
  return process.getBuiltinModule(`node:crypto`).createHash(`sha256`).update(text).digest(`hex`);
}
