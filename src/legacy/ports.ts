import {listListeningSocketInodes, listProcessIds, listSocketInodes} from '../system/proc.ts';

/**
 * Pids holding a TCP socket that listens on `port` (IPv4 or IPv6, any address). Only processes whose
 * file descriptors we may read are seen: run as root or as the owner to see another user's listeners.
 */
export function findListeningPids(port: number): number[] {
  const inodes = new Set(listListeningSocketInodes(port));
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const pid of listProcessIds()) {
    if (listSocketInodes(pid).some((inode) => inodes.has(inode))) pids.push(pid);
  }
  return pids;
}
