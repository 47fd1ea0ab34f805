// Reads CPU time and resident memory of a process from /proc (Linux only).
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';

let ticksPerSecond: number | undefined;

function getTicksPerSecond(): number {
  ticksPerSecond ??= Number(execFileSync(`getconf`, [`CLK_TCK`], {encoding: `utf8`}).trim()) || 100;
  return ticksPerSecond;
}

/** utime + stime of `pid` in milliseconds (fields 14 and 15 of /proc/<pid>/stat), or NaN when it is gone. */
export function readCpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, `utf8`);
    const fields = stat.slice(stat.lastIndexOf(`)`) + 2).split(` `);
    return ((Number(fields[11]) + Number(fields[12])) / getTicksPerSecond()) * 1000;
  } catch {
    return Number.NaN;
  }
}

/** VmRSS of `pid` in bytes, or NaN when it is gone. */
export function readRssBytes(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, `utf8`);
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Resident memory of `pid` split by kind (bytes, from /proc/<pid>/smaps_rollup), or null when it is gone. */
export type RssBreakdown = {rss: number; anonymous: number; fileBacked: number};

export function readRssBreakdown(pid: number): RssBreakdown | null {
  try {
    const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, `utf8`);
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, `m`).exec(rollup)?.[1] ?? Number.NaN) * 1024;
    const rss = field(`Rss`);
    const anonymous = field(`Anonymous`);
    return {rss, anonymous, fileBacked: rss - anonymous};
  } catch {
    return null;
  }
}

/**
 * Where the resident memory of `pid` is, from /proc/<pid>/smaps (bytes), or null when it is gone:
 * - `codePages`: file-backed pages of the process's own executable (the binary's code and read-only
 *   data that ran or was read; clean, shared by every process of the same file);
 * - `otherFiles`: file-backed pages of anything else mapped (glibc, libstdc++, locale data);
 * - `mallocMain`: glibc's main arena (`[heap]`, grown with brk);
 * - `mallocThreads`: glibc's per-thread arenas (anonymous mappings aligned to their 64 MiB reservation,
 *   what a thread other than the main one, e.g. a libuv or V8 worker, mallocs from), and how many;
 * - `otherAnonymous`: every other anonymous page: V8's heap, JIT code and compiler zones, thread stacks.
 */
export type MemoryMap = {
  rss: number;
  anonymous: number;
  codePages: number;
  otherFiles: number;
  mallocMain: number;
  mallocThreads: number;
  threadArenas: number;
  otherAnonymous: number;
  threads: number;
};

/** glibc's HEAP_MAX_SIZE on 64-bit: each thread arena is reserved (and aligned) at this size. */
const THREAD_ARENA_BYTES = 64n * 1024n * 1024n;

export function readMemoryMap(pid: number): MemoryMap | null {
  let smaps: string;
  let executable: string;
  let threads: number;
  try {
    smaps = fs.readFileSync(`/proc/${pid}/smaps`, `utf8`);
    executable = fs.readlinkSync(`/proc/${pid}/exe`);
    threads = fs.readdirSync(`/proc/${pid}/task`).length;
  } catch {
    return null;
  }
  type Mapping = {start: bigint; end: bigint; perms: string; name: string; rss: number; anonymous: number};
  const mappings: Mapping[] = [];
  for (const line of smaps.split(`\n`)) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      mappings.push({start: BigInt(`0x${header[1]}`), end: BigInt(`0x${header[2]}`), perms: header[3]!, name: header[4]!, rss: 0, anonymous: 0});
      continue;
    }
    const field = /^(Rss|Anonymous):\s+(\d+) kB/.exec(line);
    const mapping = mappings.at(-1);
    if (!field || !mapping) continue;
    if (field[1] === `Rss`) mapping.rss = Number(field[2]) * 1024;
    else mapping.anonymous = Number(field[2]) * 1024;
  }
  const map: MemoryMap = {rss: 0, anonymous: 0, codePages: 0, otherFiles: 0, mallocMain: 0, mallocThreads: 0, threadArenas: 0, otherAnonymous: 0, threads};
  for (const [index, mapping] of mappings.entries()) {
    map.rss += mapping.rss;
    map.anonymous += mapping.anonymous;
    const filePages = mapping.rss - mapping.anonymous;
    if (mapping.name === executable) map.codePages += filePages;
    else map.otherFiles += filePages;
    if (mapping.name === `[heap]`) {
      map.mallocMain += mapping.anonymous;
    } else if (mapping.name === `` && isThreadArena(mapping, mappings[index + 1])) {
      map.mallocThreads += mapping.anonymous;
      map.threadArenas++;
    } else {
      map.otherAnonymous += mapping.anonymous;
    }
  }
  return map;
}

/** A thread arena: read-write, at a 64 MiB boundary, the rest of its 64 MiB reserved without access. */
function isThreadArena(mapping: {start: bigint; end: bigint; perms: string}, next: {start: bigint; end: bigint; perms: string} | undefined): boolean {
  if (!mapping.perms.startsWith(`rw`) || mapping.start % THREAD_ARENA_BYTES !== 0n) return false;
  if (mapping.end - mapping.start === THREAD_ARENA_BYTES) return true;
  return next !== undefined && next.start === mapping.end && next.perms.startsWith(`---`) && next.end - mapping.start === THREAD_ARENA_BYTES;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, `utf8`);
    return stat.slice(stat.lastIndexOf(`)`) + 2, stat.lastIndexOf(`)`) + 3) !== `Z`;
  } catch {
    return false;
  }
}

/** Direct children of `pid` (from /proc/<pid>/task/<pid>/children). */
export function readChildPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, `utf8`).trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export type RssSampler = {
  /** Stops sampling; returns every sample in bytes. */
  stop(): number[];
  peak(): number;
};

/** Samples VmRSS of `pid` every `intervalMs` (100 ms by default) until stopped. */
export function sampleRss(pid: number, intervalMs = 100): RssSampler {
  const samples: number[] = [];
  const take = () => {
    const rss = readRssBytes(pid);
    if (Number.isFinite(rss)) samples.push(rss);
  };
  take();
  const timer = setInterval(take, intervalMs);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      take();
      return samples;
    },
    peak: () => samples.reduce((max, value) => Math.max(max, value), 0),
  };
}
