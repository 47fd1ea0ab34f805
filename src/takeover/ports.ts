import {listListeningSocketInodes, listProcessIds, listSocketInodes, listUnixListeningSocketInodes, readCommandLine, readRealUid} from '../system/proc.ts';
import {findUserName} from '../system/users.ts';

/**
 * Pids holding a TCP socket that listens on `port` (IPv4 or IPv6, any address). Only processes whose
 * file descriptors we may read are seen: run as root or as the owner to see another user's listeners.
 */
export function findListeningPids(port: number): number[] {
  return findSocketHolders(new Set(listListeningSocketInodes(port)));
}

/** Pids holding a Unix socket that listens at `socketPath` (a control socket). */
export function findUnixListeningPids(socketPath: string): number[] {
  return findSocketHolders(new Set(listUnixListeningSocketInodes(socketPath)));
}

function findSocketHolders(inodes: ReadonlySet<number>): number[] {
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const pid of listProcessIds()) {
    if (listSocketInodes(pid).some((inode) => inodes.has(inode))) pids.push(pid);
  }
  return pids;
}

/** A process listening on the proxy port, and whether it is one of the plan's legacy processes. */
export type PortHolder = {pid: number; args: string; legacy: boolean};

/** Who listens on `port` now, marked against the plan (a legacy holder is fine: the takeover frees the port). */
export function findPortHolders(port: number, legacyPids: ReadonlySet<number>): PortHolder[] {
  return findListeningPids(port).map((pid) => ({pid, args: readCommandLine(pid) ?? `?`, legacy: legacyPids.has(pid)}));
}

/** A process listening on a port and the user it runs as (`doctor` names who holds the proxy port). */
export type PortListener = {pid: number; args: string; uid: number | null; user: string | null};

export function findPortListeners(port: number): PortListener[] {
  return findListeningPids(port).map((pid) => {
    const uid = readRealUid(pid);
    return {pid, args: readCommandLine(pid) ?? `?`, uid, user: uid === null ? null : findUserName(uid)};
  });
}
