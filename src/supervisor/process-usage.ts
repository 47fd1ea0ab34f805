import {CLOCK_TICKS_PER_SECOND, readProcessGroupsUsage} from '../system/proc.ts';

/** What a running process uses (status `rssBytes`, `cpuPercent`, `cpuWindowMs`). */
export type ProcessUsage = {
  /** RSS of its whole process group. */
  rssBytes: number;
  /** CPU time of the group's live members over `cpuWindowMs`, in percent of one core (200 = two cores busy). */
  cpuPercent: number;
  /** Since the previous sample of the same process when it is at least MIN_WINDOW_MS old, else since the process started. */
  cpuWindowMs: number;
};

/** A window shorter than this is too coarse for 10 ms ticks: the lifetime average is used instead. */
const MIN_WINDOW_MS = 500;

type Sample = {pgid: number; startTime: number; cpuTicks: number; at: number};

/** The parts of a ManagedProcess the sampler reads. */
export type SampledProcess = {
  readonly state: string;
  readonly pgid: number | undefined;
  /** Clock ticks after boot (/proc): tells a restarted process from the one sampled before. */
  readonly startTime: number | undefined;
  /** Ms since the epoch. */
  readonly startedAt: number | undefined;
};

/**
 * Samples RSS and CPU of managed processes when asked (each `status`), in one pass over /proc. CPU use
 * needs two readings: it is measured since the previous call for the same process (so `watch rollbridge
 * status` shows the current load), and averaged over the process's life on the first call. One sample
 * per process, dropped with it; no timer.
 */
export class ProcessUsageSampler {
  readonly #previous = new WeakMap<SampledProcess, Sample>();

  sample<P extends SampledProcess>(processes: readonly P[], now = Date.now()): Map<P, ProcessUsage> {
    const running = processes.filter((managed) => managed.state === `running` && managed.pgid !== undefined);
    const groups = readProcessGroupsUsage(new Set(running.map((managed) => managed.pgid as number)));
    const usage = new Map<P, ProcessUsage>();
    for (const managed of running) {
      const pgid = managed.pgid as number;
      const group = groups.get(pgid);
      const startTime = managed.startTime;
      if (group === undefined || startTime === undefined) continue;
      const previous = this.#previous.get(managed);
      const same = previous !== undefined && previous.pgid === pgid && previous.startTime === startTime && group.cpuTicks >= previous.cpuTicks;
      const comparable = same && now - previous.at >= MIN_WINDOW_MS;
      const windowMs = comparable ? now - previous.at : Math.max(1, now - (managed.startedAt ?? now));
      const ticks = comparable ? group.cpuTicks - previous.cpuTicks : group.cpuTicks;
      usage.set(managed, {rssBytes: group.rssBytes, cpuPercent: Math.round(ticks * 1_000 / CLOCK_TICKS_PER_SECOND / windowMs * 1_000) / 10, cpuWindowMs: windowMs});
      // A window too short to measure keeps the older sample, so the next call still has one to compare with.
      if (!same || comparable) this.#previous.set(managed, {pgid, startTime, cpuTicks: group.cpuTicks, at: now});
    }
    return usage;
  }
}
