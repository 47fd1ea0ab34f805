import fs from 'node:fs';
import path from 'node:path';
import {randomBytes} from '../util/random-bytes.ts';
import {NOTIFY_HELPER_ARM64, NOTIFY_HELPER_X64} from './notify-helper-binaries.ts';

/**
 * Node has no AF_UNIX SOCK_DGRAM sockets (dropped in 0.5; node:dgram is UDP only), and sd_notify clients
 * (libsystemd, systemd-notify, Python's and Ruby's implementations) send datagrams to NOTIFY_SOCKET: a
 * stream or seqpacket socket refuses them (EPROTOTYPE). So the daemon runs a tiny helper per notify socket,
 * a static executable without libc assembled from notify-helper/<arch>.S (about 1 KiB, generated into
 * notify-helper-binaries.ts), that binds the socket with SO_PASSCRED and relays each datagram with its
 * sender's credentials on stdout (notify-socket.ts reads and checks them). No native addon, nothing to
 * compile at install time, no interpreter on the host; it dies with the daemon (PR_SET_PDEATHSIG).
 */
const BINARIES: Partial<Record<NodeJS.Architecture, string>> = {x64: NOTIFY_HELPER_X64, arm64: NOTIFY_HELPER_ARM64};

const installed = new Map<string, string>();

/** True when this architecture has a helper (x64, arm64). */
export function hasNotifyHelper(arch: NodeJS.Architecture = process.arch): boolean {
  return BINARIES[arch] !== undefined;
}

/**
 * Writes the helper into `dir` (a private directory: 0700, the daemon's user) once per daemon and returns
 * its path: `notify-helper-<sha256 prefix>`, written to a temporary name and renamed, mode 0500, so a
 * reader never sees half a file and a file with other content is never used.
 */
export function installNotifyHelper(dir: string, arch: NodeJS.Architecture = process.arch): string {
  const base64 = BINARIES[arch];
  if (base64 === undefined) throw new Error(`Assertion failed: no notify helper for ${arch}`);
  const bytes = Buffer.from(base64, `base64`);
  // node:crypto only where a notify process runs (util/random-bytes.ts says why the daemon avoids it).
  const digest = process.getBuiltinModule(`node:crypto`).createHash(`sha256`).update(bytes).digest(`hex`).slice(0, 16);
  const target = path.join(dir, `notify-helper-${digest}`);
  const known = installed.get(target);
  if (known !== undefined && fs.existsSync(known)) return known;
  let current: Buffer | null = null;
  try {
    const stat = fs.lstatSync(target);
    if (stat.isFile() && (stat.mode & 0o022) === 0) current = fs.readFileSync(target);
  } catch {
    current = null;
  }
  if (current === null || !current.equals(bytes)) {
    const temporary = `${target}.${process.pid}.${randomBytes(4).toString(`hex`)}`;
    fs.writeFileSync(temporary, bytes, {mode: 0o500, flag: `wx`});
    fs.renameSync(temporary, target);
    // Helpers of other rollbridge versions: a running one keeps its inode, a daemon still using it writes it anew.
    for (const name of fs.readdirSync(dir)) {
      if (/^notify-helper-[0-9a-f]{16}$/.test(name) && name !== path.basename(target)) fs.rmSync(path.join(dir, name), {force: true});
    }
  }
  installed.set(target, target);
  return target;
}
