import {isZombieState, readEnvironmentVariable, readProcessTable} from '../system/proc.ts';
import type {ProcessEntry} from '../system/proc.ts';
import type {LegacyUser} from './legacy-user.ts';
import {listScreenSessions} from './screen.ts';
import type {ScreenSession} from './screen.ts';

/** One discovered legacy process. `pid` + `startTime` identify it: a pid with another start time is someone else. */
export type LegacyProcess = {
  pid: number;
  startTime: number;
  pgid: number;
  ppid: number;
  args: string;
  /** State letter at discovery; `Z` (zombie) is listed but not running. */
  state: string;
  /** Why it was taken: `screen PID.NAME`, `matcher <name>` or `descendant of <pid>`. */
  source: string;
};

/** What a takeover or predeploy-cleanup stops. Plain data: it crosses the control socket as is. */
export type LegacyPlan = {
  user: LegacyUser;
  screens: ScreenSession[];
  processes: LegacyProcess[];
  warnings: string[];
};

export type DiscoverOptions = {
  /** Screen session names; a session matches when its name equals one exactly. */
  screens: string[];
  /** A process matches when its command line contains every string of `includes`. */
  matchers: Array<{name: string; includes: string[]}>;
  /** Only processes with this real uid are taken. */
  uid: number;
  /** The name of that user (screen runs as it). */
  user: string;
  /** Never taken, nor their descendants (besides this process and its ancestors, always protected). */
  protectPids?: number[];
};

/**
 * Finds the legacy processes: the SCREEN servers of the configured sessions, every process whose
 * environment carries `STY=<PID>.<NAME>` of one of them (this catches setsid/nohup escapees reparented to
 * init), processes matched by a matcher, and all their descendants. Only the configured user's processes,
 * never this process, its ancestors or `protectPids`.
 */
export async function discoverLegacyProcesses(options: DiscoverOptions): Promise<LegacyPlan> {
  const user: LegacyUser = {name: options.user, uid: options.uid};
  const warnings: string[] = [];
  let sessions: ScreenSession[] = [];
  if (options.screens.length > 0) {
    const listing = await listScreenSessions(user);
    if (listing.warning !== null) warnings.push(listing.warning);
    sessions = listing.sessions.filter((session) => options.screens.includes(session.name));
  }

  const table = readProcessTable();
  const byPid = new Map(table.map((entry) => [entry.pid, entry]));
  const protectedPids = collectProtectedPids(byPid, options.protectPids ?? []);

  sessions = sessions.filter((session) => {
    if (!protectedPids.has(session.pid)) return true;
    warnings.push(`Screen session ${session.id} runs this rollbridge process; it was left alone (run rollbridge outside the legacy session)`);
    return false;
  });
  for (const name of new Set(options.screens)) {
    const same = sessions.filter((session) => session.name === name);
    if (same.length > 1) warnings.push(`${same.length} screen sessions are named "${name}" (${same.map((session) => session.id).join(`, `)}); all of them are taken over`);
  }

  const found = new Map<number, LegacyProcess>();
  const take = (entry: ProcessEntry, source: string) => {
    if (!found.has(entry.pid)) found.set(entry.pid, toLegacyProcess(entry, source));
  };
  const isCandidate = (entry: ProcessEntry) => entry.uid === options.uid && !protectedPids.has(entry.pid);

  const sessionIds = new Set(sessions.map((session) => session.id));
  for (const session of sessions) {
    const server = byPid.get(session.pid);
    if (server !== undefined && isCandidate(server)) take(server, `screen ${session.id}`);
  }
  if (sessionIds.size > 0) {
    for (const entry of table) {
      if (!isCandidate(entry) || found.has(entry.pid)) continue;
      const sty = readEnvironmentVariable(entry.pid, `STY`);
      if (sty !== null && sessionIds.has(sty)) take(entry, `screen ${sty}`);
    }
  }
  for (const matcher of options.matchers) {
    for (const entry of table) {
      if (protectedPids.has(entry.pid) || !matcher.includes.every((part) => entry.args.includes(part))) continue;
      if (entry.uid !== options.uid) {
        warnings.push(`Process ${entry.pid} (${entry.args}) matches matcher "${matcher.name}" but belongs to uid ${entry.uid}, not ${options.uid} (${options.user}); it was left alone`);
        continue;
      }
      take(entry, `matcher ${matcher.name}`);
    }
  }

  addDescendants(table, found, protectedPids, options, warnings);
  return {user, screens: sessions, processes: [...found.values()], warnings};
}

/** Discovered processes that still run something (zombies excluded). */
export function listRunningProcesses(plan: LegacyPlan): LegacyProcess[] {
  return plan.processes.filter((process) => !isZombieState(process.state));
}

/** Adds every descendant (by ppid) of the processes in `found` that belongs to `options.uid`; others become warnings. */
export function addDescendants(table: ProcessEntry[], found: Map<number, LegacyProcess>, protectedPids: Set<number>, options: Pick<DiscoverOptions, `uid` | `user`>, warnings: string[]): void {
  const childrenByParent = new Map<number, ProcessEntry[]>();
  for (const entry of table) {
    const siblings = childrenByParent.get(entry.ppid);
    if (siblings) siblings.push(entry);
    else childrenByParent.set(entry.ppid, [entry]);
  }
  const queue = [...found.keys()];
  for (let parent = queue.shift(); parent !== undefined; parent = queue.shift()) {
    for (const child of childrenByParent.get(parent) ?? []) {
      if (found.has(child.pid) || protectedPids.has(child.pid)) continue;
      if (child.uid !== options.uid) {
        warnings.push(`Process ${child.pid} (${child.args}) is a child of legacy process ${parent} but belongs to uid ${child.uid}, not ${options.uid} (${options.user}); it was left alone`);
        continue;
      }
      found.set(child.pid, toLegacyProcess(child, `descendant of ${parent}`));
      queue.push(child.pid);
    }
  }
}

/** This process, its ancestors (so the deploy script that runs us is never matched) and the given pids. */
function collectProtectedPids(byPid: Map<number, ProcessEntry>, extra: number[]): Set<number> {
  const ancestors = new Set<number>();
  for (let pid: number | undefined = process.pid; pid !== undefined && pid > 0 && !ancestors.has(pid);) {
    ancestors.add(pid);
    pid = byPid.get(pid)?.ppid;
  }
  return new Set([...ancestors, ...extra]);
}

export function toLegacyProcess(entry: ProcessEntry, source: string): LegacyProcess {
  return {pid: entry.pid, startTime: entry.startTime, pgid: entry.pgid, ppid: entry.ppid, args: entry.args, state: entry.state, source};
}
