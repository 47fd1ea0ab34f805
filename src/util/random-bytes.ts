import fs from 'node:fs';

/*
 * Random bytes for the daemon's keys and ids, read from the kernel's CSPRNG (/dev/urandom, what OpenSSL
 * itself seeds from) instead of node:crypto. Loading node:crypto (its modules and OpenSSL's set-up) adds
 * 2.3 MB to the idle daemon's RSS, and the daemon needs no other part of it at run time
 * (docs/benchmarks.md, memory notes). Where /dev/urandom cannot be read (a chroot without /dev, say),
 * node:crypto is the fallback.
 */

/** Bytes drawn from /dev/urandom at a time: small draws (ids, masks) are served from them, each byte once. */
const POOL_SIZE = 512;

let urandomFd: number | null = null;
let pool: Buffer = Buffer.alloc(0);
let poolOffset = 0;

/** `size` random bytes (a fresh Buffer the caller owns). */
export function randomBytes(size: number): Buffer {
  if (size > POOL_SIZE) return readUrandom(size);
  if (poolOffset + size > pool.length) {
    pool = readUrandom(POOL_SIZE);
    poolOffset = 0;
  }
  const bytes = Buffer.from(pool.subarray(poolOffset, poolOffset + size));
  // Handed out once: the pool's copy is wiped.
  pool.fill(0, poolOffset, poolOffset + size);
  poolOffset += size;
  return bytes;
}

function readUrandom(size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  try {
    urandomFd ??= fs.openSync(`/dev/urandom`, `r`);
    let filled = 0;
    while (filled < size) {
      const read = fs.readSync(urandomFd, bytes, filled, size - filled, null);
      if (read === 0) throw new Error(`/dev/urandom ended`);
      filled += read;
    }
    return bytes;
  } catch {
    return process.getBuiltinModule(`node:crypto`).randomBytes(size);
  }
}
