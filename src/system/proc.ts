import fs from 'node:fs';

/** The fields of `/proc/<pid>/stat` rollbridge uses. */
export type ProcStat = {
  pid: number;
  ppid: number;
  pgrp: number;
  session: number;
  /** One letter: R, S, D, Z, X, T… */
  state: string;
  /** Clock ticks after boot (field 22); with the pid it identifies a process across pid reuse. */
  startTime: number;
  /** CPU time in user and kernel mode, in clock ticks (fields 14 and 15). */
  cpuTicks: number;
  comm: string;
};

/**
 * Clock ticks per second of /proc's times (USER_HZ): 100 on every Linux architecture Node runs on;
 * the kernel converts to it whatever its internal HZ is.
 */
export const CLOCK_TICKS_PER_SECOND = 100;

const PROC_ROOT = `/proc`;

export function readProcStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = fs.readFileSync(`${PROC_ROOT}/${pid}/stat`, `utf8`);
  } catch {
    return null;
  }
  return parseProcStat(text);
}

/** Parses one stat line. comm may hold spaces and parentheses, so fields are read after the LAST ')'. */
export function parseProcStat(text: string): ProcStat | null {
  const open = text.indexOf(`(`);
  const close = text.lastIndexOf(`)`);
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  // Fields after comm start at field 3 (state); index 0 here is field 3.
  const fields = text.slice(close + 2).trim().split(` `);
  const state = fields[0];
  const ppid = Number(fields[1]);
  const pgrp = Number(fields[2]);
  const session = Number(fields[3]);
  const startTime = Number(fields[19]);
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  if (state === undefined || !Number.isInteger(pid) || !Number.isFinite(ppid) || !Number.isFinite(pgrp) || !Number.isFinite(startTime)) return null;
  return {pid, ppid, pgrp, session, state, startTime, cpuTicks: Number.isFinite(cpuTicks) ? cpuTicks : 0, comm: text.slice(open + 1, close)};
}

/** Live members of a process group (see isLiveProcess: a zombie whose other threads still exit counts). */
export function listProcessGroupMembers(pgid: number): number[] {
  return readAllStats().filter((stat) => stat.pgrp === pgid && isLiveProcess(stat)).map((stat) => stat.pid);
}

/**
 * True while any member of the group is alive; zombies do not count, but a process whose main thread
 * is a zombie while its other threads are still exiting does (see isLiveProcess).
 */
export function isProcessGroupAlive(pgid: number): boolean {
  if (!fs.existsSync(`${PROC_ROOT}/self/stat`)) return isGroupSignalable(pgid);
  for (const pid of listPids()) {
    const stat = readProcStat(pid);
    if (stat !== null && stat.pgrp === pgid && isLiveProcess(stat)) return true;
  }
  return false;
}

/**
 * True until every thread of the process has exited. `/proc/<pid>/stat` shows the main thread only:
 * it turns `Z` as soon as the main thread exits, while the other threads (Node's workers after
 * process.exit(), a thread outliving its main thread) may still run and still hold the process's
 * descriptors: its locks, its listening socket. Those are released only when the last thread exits,
 * so a zombie main thread is looked behind, in `/proc/<pid>/task`.
 */
export function isLiveProcess(stat: ProcStat): boolean {
  if (isLiveState(stat.state)) return true;
  if (stat.state !== `Z`) return false;
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`${PROC_ROOT}/${stat.pid}/task`);
  } catch {
    return false;
  }
  return tasks.some((tid) => {
    const task = Number(tid) === stat.pid ? null : readTaskStat(stat.pid, tid);
    return task !== null && isLiveState(task.state);
  });
}

/**
 * True once the process's main thread has exited (a zombie, or gone from /proc): the process is on its way
 * out, though its other threads may still be closing (isLiveProcess counts those as alive).
 */
export function hasMainThreadExited(pid: number): boolean {
  const stat = readProcStat(pid);
  return stat === null || stat.state === `Z` || stat.state === `X`;
}

export function readProcessStartTime(pid: number): number | null {
  return readProcStat(pid)?.startTime ?? null;
}

/** Resident set size from VmRSS in `/proc/<pid>/status`; null when the process is gone or has none (kernel threads, zombies). */
export function readRssBytes(pid: number): number | null {
  let text: string;
  try {
    text = fs.readFileSync(`${PROC_ROOT}/${pid}/status`, `utf8`);
  } catch {
    return null;
  }
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(text);
  return match?.[1] === undefined ? null : Number(match[1]) * 1024;
}

/** Sum of the RSS of the group's live members; null when the group has none. */
export function readProcessGroupRss(pgid: number): number | null {
  let total: number | null = null;
  for (const pid of listProcessGroupMembers(pgid)) {
    const rss = readRssBytes(pid);
    if (rss !== null) total = (total ?? 0) + rss;
  }
  return total;
}

export type GroupMemory = {rssBytes: number; members: Array<{pid: number; command: string; rssBytes: number}>};

/** RSS of every live member of a process group, with each member's command (`comm`); null when none is left. */
export function readProcessGroupMemory(pgid: number): GroupMemory | null {
  const members: GroupMemory[`members`] = [];
  let rssBytes = 0;
  for (const stat of readAllStats()) {
    if (stat.pgrp !== pgid || !isLiveState(stat.state)) continue;
    const rss = readRssBytes(stat.pid);
    if (rss === null) continue;
    members.push({pid: stat.pid, command: stat.comm, rssBytes: rss});
    rssBytes += rss;
  }
  return members.length === 0 ? null : {rssBytes, members};
}

/** The resources a process group uses right now: the RSS and the CPU time of its live members. */
export type GroupUsage = {rssBytes: number; cpuTicks: number};

/**
 * RSS and CPU ticks of several process groups from one pass over /proc (a stat read per process, a
 * status read per member); a group with no live member is left out.
 */
export function readProcessGroupsUsage(pgids: ReadonlySet<number>): Map<number, GroupUsage> {
  const usage = new Map<number, GroupUsage>();
  if (pgids.size === 0) return usage;
  for (const stat of readAllStats()) {
    if (!pgids.has(stat.pgrp) || !isLiveState(stat.state)) continue;
    const rss = readRssBytes(stat.pid);
    if (rss === null) continue;
    const group = usage.get(stat.pgrp) ?? {rssBytes: 0, cpuTicks: 0};
    group.rssBytes += rss;
    group.cpuTicks += stat.cpuTicks;
    usage.set(stat.pgrp, group);
  }
  return usage;
}

/** Every live descendant of `pid` (children, grandchildren, …), found by walking ppid links. */
export function listDescendants(pid: number): number[] {
  const childrenByParent = new Map<number, number[]>();
  for (const stat of readAllStats()) {
    if (!isLiveState(stat.state)) continue;
    const siblings = childrenByParent.get(stat.ppid);
    if (siblings) siblings.push(stat.pid);
    else childrenByParent.set(stat.ppid, [stat.pid]);
  }
  const descendants: number[] = [];
  const queue = [pid];
  const seen = new Set<number>([pid]);
  for (let parent = queue.shift(); parent !== undefined; parent = queue.shift()) {
    for (const child of childrenByParent.get(parent) ?? []) {
      if (seen.has(child)) continue;
      seen.add(child);
      descendants.push(child);
      queue.push(child);
    }
  }
  return descendants;
}

function readTaskStat(pid: number, tid: string): ProcStat | null {
  try {
    return parseProcStat(fs.readFileSync(`${PROC_ROOT}/${pid}/task/${tid}/stat`, `utf8`));
  } catch {
    return null;
  }
}

function isLiveState(state: string): boolean {
  return state !== `Z` && state !== `X`;
}

function listPids(): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(PROC_ROOT);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of entries) {
    const code = entry.charCodeAt(0);
    if (code >= 48 && code <= 57) pids.push(Number(entry));
  }
  return pids;
}

function readAllStats(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const pid of listPids()) {
    const stat = readProcStat(pid);
    if (stat !== null) stats.push(stat);
  }
  return stats;
}

// Without /proc (not Linux) a signal 0 is the best we have; it counts zombies as alive.
function isGroupSignalable(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === `EPERM`;
  }
}

/** The kernel's range for outgoing connections' local ports (`net.ipv4.ip_local_port_range`); null off Linux. */
export function readEphemeralPortRange(): {from: number; to: number} | null {
  try {
    const [from, to] = fs.readFileSync(`${PROC_ROOT}/sys/net/ipv4/ip_local_port_range`, `utf8`).trim().split(/\s+/).map(Number);
    return from !== undefined && to !== undefined && Number.isInteger(from) && Number.isInteger(to) ? {from, to} : null;
  } catch {
    return null;
  }
}

/** One row of a /proc snapshot (readProcessTable). */
export type ProcessEntry = {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** Real uid (first field of `Uid:` in `/proc/<pid>/status`). */
  uid: number;
  /** Clock ticks after boot; with the pid it identifies a process across pid reuse. */
  startTime: number;
  /** One letter from `/proc/<pid>/stat`: R, S, D, Z, X, T… */
  state: string;
  /** The command line joined by spaces; `[comm]` when it is empty (kernel threads, zombies). */
  args: string;
};

/**
 * A snapshot of every process /proc shows. Processes that vanish while being read are left out;
 * a process whose status or cmdline cannot be read keeps uid -1 / `[comm]`.
 */
export function readProcessTable(): ProcessEntry[] {
  const entries: ProcessEntry[] = [];
  for (const pid of listPids()) {
    const stat = readProcStat(pid);
    if (stat === null) continue;
    entries.push({
      pid,
      ppid: stat.ppid,
      pgid: stat.pgrp,
      sid: stat.session,
      uid: readRealUid(pid) ?? -1,
      startTime: stat.startTime,
      state: stat.state,
      args: readCommandLine(pid) ?? `[${stat.comm}]`,
    });
  }
  return entries;
}

/** The real uid of a process; null when it is gone or unreadable. */
export function readRealUid(pid: number): number | null {
  let text: string;
  try {
    text = fs.readFileSync(`${PROC_ROOT}/${pid}/status`, `utf8`);
  } catch {
    return null;
  }
  const match = /^Uid:\s+(\d+)/m.exec(text);
  return match?.[1] === undefined ? null : Number(match[1]);
}

/** `/proc/<pid>/cmdline` with NULs as spaces; null when it is gone, unreadable or empty. */
export function readCommandLine(pid: number): string | null {
  let text: string;
  try {
    text = fs.readFileSync(`${PROC_ROOT}/${pid}/cmdline`, `utf8`);
  } catch {
    return null;
  }
  const args = text.replace(/\0+$/, ``).replaceAll(`\0`, ` `);
  return args === `` ? null : args;
}

/** One variable of a process's initial environment (`/proc/<pid>/environ`); null when unset, gone or unreadable (EACCES). */
export function readEnvironmentVariable(pid: number, name: string): string | null {
  let text: string;
  try {
    text = fs.readFileSync(`${PROC_ROOT}/${pid}/environ`, `utf8`);
  } catch {
    return null;
  }
  const prefix = `${name}=`;
  for (const entry of text.split(`\0`)) {
    if (entry.startsWith(prefix)) return entry.slice(prefix.length);
  }
  return null;
}

/** True for zombies and dead entries: they hold a pid but run nothing. */
export function isZombieState(state: string): boolean {
  return !isLiveState(state);
}

/** Inodes of the sockets a process holds open (`socket:[<inode>]` links in `/proc/<pid>/fd`); empty when unreadable. */
export function listSocketInodes(pid: number): number[] {
  let fds: string[];
  try {
    fds = fs.readdirSync(`${PROC_ROOT}/${pid}/fd`);
  } catch {
    return [];
  }
  const inodes: number[] = [];
  for (const fd of fds) {
    let target: string;
    try {
      target = fs.readlinkSync(`${PROC_ROOT}/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match?.[1] !== undefined) inodes.push(Number(match[1]));
  }
  return inodes;
}

/** Every pid /proc lists right now. */
export function listProcessIds(): number[] {
  return listPids();
}

/**
 * Inodes of the TCP sockets listening on `port` (any address, IPv4 and IPv6), from `/proc/net/tcp{,6}`.
 * Sockets of other network namespaces are not visible here.
 */
export function listListeningSocketInodes(port: number): number[] {
  const inodes: number[] = [];
  for (const file of [`${PROC_ROOT}/net/tcp`, `${PROC_ROOT}/net/tcp6`]) {
    let text: string;
    try {
      text = fs.readFileSync(file, `utf8`);
    } catch {
      continue;
    }
    for (const line of text.split(`\n`).slice(1)) {
      const fields = line.trim().split(/\s+/);
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const local = fields[1];
      const state = fields[3];
      const inode = fields[9];
      if (local === undefined || state !== `0A` || inode === undefined) continue;
      const localPort = Number.parseInt(local.slice(local.lastIndexOf(`:`) + 1), 16);
      if (localPort === port && inode !== `0`) inodes.push(Number(inode));
    }
  }
  return inodes;
}

/** The soft RLIMIT_NOFILE of this process (from /proc/self/limits), or undefined when unknown or unlimited. */
export function readOpenFileLimit(): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`${PROC_ROOT}/self/limits`, `utf8`);
  } catch {
    return undefined;
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  const limit = Number(soft);
  return Number.isSafeInteger(limit) && limit > 0 ? limit : undefined;
}

/** A live process found by a variable of its initial environment (see findProcessesByEnvironment). */
export type EnvironmentCarrier = {pid: number; pgid: number; startTime: number};

/**
 * Every live process whose initial environment sets `name` to one of `values`, by value. Children
 * inherit the environment, so a group leader and its descendants all show up; zombies are left out.
 * Reads `/proc/<pid>/environ` of each process (unreadable ones are skipped).
 */
export function findProcessesByEnvironment(name: string, values: ReadonlySet<string>): Map<string, EnvironmentCarrier[]> {
  const found = new Map<string, EnvironmentCarrier[]>();
  if (values.size === 0) return found;
  for (const pid of listPids()) {
    if (pid === process.pid) continue;
    const value = readEnvironmentVariable(pid, name);
    if (value === null || !values.has(value)) continue;
    const stat = readProcStat(pid);
    if (stat === null || !isLiveState(stat.state)) continue;
    const carriers = found.get(value) ?? [];
    carriers.push({pid, pgid: stat.pgrp, startTime: stat.startTime});
    found.set(value, carriers);
  }
  return found;
}

/**
 * Inodes of the Unix stream sockets listening at `socketPath` (from `/proc/net/unix`: state 01 with the
 * accept flag). A path that was unlinked and bound again lists both; the caller tells them apart by holder.
 */
export function listUnixListeningSocketInodes(socketPath: string): number[] {
  let text: string;
  try {
    text = fs.readFileSync(`${PROC_ROOT}/net/unix`, `utf8`);
  } catch {
    return [];
  }
  const inodes: number[] = [];
  for (const line of text.split(`\n`).slice(1)) {
    // Num RefCount Protocol Flags Type St Inode Path
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8 || fields.slice(7).join(` `) !== socketPath) continue;
    const flags = Number.parseInt(fields[3] ?? `0`, 16);
    if (fields[5] === `01` && (flags & 0x10000) !== 0) inodes.push(Number(fields[6]));
  }
  return inodes;
}
