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
