import fs from 'node:fs';
import path from 'node:path';

/** Debian's arm64 cross runtime (libc6-arm64-cross, libstdc++6-arm64-cross): the loader and libraries qemu needs. */
export const ARM64_SYSROOT = `/usr/aarch64-linux-gnu`;

/** What runs a linux-arm64 executable on an x64 host: qemu-user with Debian's arm64 sysroot. */
export type Arm64Runner = {command: string; args: string[]};

/**
 * `qemu-aarch64-static -L /usr/aarch64-linux-gnu` when qemu-user-static and the arm64 libc + libstdc++
 * are installed, else null with what is missing. An explicit runner, not binfmt_misc: it works in a
 * container where binfmt cannot be registered, and never runs the binary natively by mistake.
 */
export function findArm64Runner(pathEnv: string = process.env.PATH ?? ``): Arm64Runner | {missing: string} {
  const qemu = [`qemu-aarch64-static`, `qemu-aarch64`]
    .flatMap((name) => [...pathEnv.split(`:`).filter(Boolean), `/usr/bin`].map((dir) => path.join(dir, name)))
    .find((candidate) => isExecutable(candidate));
  if (qemu === undefined) return {missing: `qemu-aarch64-static (Debian package qemu-user-static)`};
  if (!fs.existsSync(path.join(ARM64_SYSROOT, `lib`, `ld-linux-aarch64.so.1`))) return {missing: `${ARM64_SYSROOT}/lib/ld-linux-aarch64.so.1 (Debian package libc6-arm64-cross)`};
  if (!fs.existsSync(path.join(ARM64_SYSROOT, `lib`, `libstdc++.so.6`))) return {missing: `${ARM64_SYSROOT}/lib/libstdc++.so.6 (Debian package libstdc++6-arm64-cross)`};
  return {command: qemu, args: [`-L`, ARM64_SYSROOT]};
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
