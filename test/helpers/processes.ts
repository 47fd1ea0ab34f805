/** True while a pid exists and is not a zombie. */
import fs from 'node:fs';

export function isPidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, `utf8`);
    const state = stat.slice(stat.lastIndexOf(`)`) + 2, stat.lastIndexOf(`)`) + 3);
    return state !== `Z` && state !== `X`;
  } catch {
    return false;
  }
}

/** Kills a pid (and its group) we started, ignoring ESRCH. */
export function killQuietly(pid: number, signal: NodeJS.Signals = `SIGKILL`): void {
  for (const target of [-pid, pid]) {
    try { process.kill(target, signal); } catch { /* gone */ }
  }
}
