import {setTimeout as delay} from 'node:timers/promises';
import type {ProcessConfig} from '../config/types.ts';
import type {ManagedProcess} from '../supervisor/managed-process.ts';
import {PROCESS_KEY_ENV, listPendingProcesses, listStateProcesses} from '../state/state-file.ts';
import type {DaemonState, StatePendingProcess, StateProcess} from '../state/state-file.ts';
import {findProcessesByEnvironment, isProcessGroupAlive} from '../system/proc.ts';
import type {EnvironmentCarrier} from '../system/proc.ts';
import type {DeployContext} from './deploy-context.ts';
import {retireRelease} from './draining.ts';
import {planRelease} from './plan.ts';
import {Release} from './release.ts';
import {waitUntilHealthy} from './startup-checks.ts';
import {isoTime} from '../util/iso-time.ts';

/** What re-adoption did, by instance id (shown in `status.recovery`). */
export type RestoreReport = {
  /** Found running (same pid and start time, or found by its key) and supervised again. */
  adopted: string[];
  /** Not running any more (or never recorded): started again. */
  started: string[];
  /** Survivors of a draining or half-started release, replaced web processes, duplicates: stopped. */
  stopped: string[];
  /** Recorded, but gone when the daemon came back. */
  missing: string[];
  /** Web processes whose health check failed after re-adoption. */
  unhealthy: string[];
};

// A stray (a process carrying a recorded key that nothing here can supervise) gets this long after SIGTERM.
const STRAY_STOP_MS = 5_000;

type Entry = StateProcess | StatePendingProcess;

/**
 * Re-adoption after a daemon restart: every process the state records is found — by pid + start
 * time, or by its key in /proc/<pid>/environ when the pid was never written (write-ahead) — and
 * supervised again or stopped; nothing is started twice. The active release's web process is
 * health-checked and routed to; its dead processes start again like a crash restart (with their
 * recorded keys). Services and singletons are adopted when alive. Releases that were draining or
 * still starting, and replaced web processes, have their survivors stopped. Runs before the control
 * socket accepts commands, so nothing interleaves.
 */
export async function restoreState(context: DeployContext, state: DaemonState, isAlive: (process: StateProcess) => boolean): Promise<RestoreReport> {
  const {roster, ports, proxy, log} = context;
  const report: RestoreReport = {adopted: [], started: [], stopped: [], missing: [], unhealthy: []};
  const config = context.active.config;
  const plan = planRelease(config);
  const definition = (processId: string) => config.processes.find((process) => process.id === processId);
  const keys = new Set<string>();
  for (const entry of listPendingProcesses(state)) keys.add(entry.key);
  for (const entry of listStateProcesses(state)) if (entry.key !== undefined && !isAlive(entry)) keys.add(entry.key);
  const carriers = findProcessesByEnvironment(PROCESS_KEY_ENV, keys);
  const handled = new Set<string>();
  /** The live process an entry names, or null. */
  const locate = (entry: Entry): StateProcess | null => {
    if (`pid` in entry && isAlive(entry)) return entry;
    const leader = entry.key === undefined ? undefined : carriers.get(entry.key)?.find((carrier) => carrier.pid === carrier.pgid);
    if (!leader) return null;
    return {id: entry.id, processId: entry.processId, policy: entry.policy, releaseId: entry.releaseId, pid: leader.pid, pgid: leader.pgid, startTime: leader.startTime, startedAt: isoTime(), restarts: `restarts` in entry ? entry.restarts : 0, key: entry.key};
  };
  const take = (entry: Entry): StateProcess | null => {
    if (entry.key !== undefined) handled.add(entry.key);
    return locate(entry);
  };
  /** Adopts a located process only to stop it (in the background, recorded meanwhile). */
  const adoptToStop = (release: Release, process: ProcessConfig, found: StateProcess, label: string): void => {
    const managed = roster.create(release, process, found.id, 0, 1, () => false, found.key);
    managed.adopt(found);
    release.replaced.push(managed);
    report.stopped.push(label);
    void roster.stopForGood(managed).then(() => {
      release.replaced.splice(release.replaced.indexOf(managed), 1);
      context.changed();
    });
  };
  const adoptOrStart = async (managed: ManagedProcess, found: StateProcess | null, recorded: boolean, label: string): Promise<boolean> => {
    if (found) {
      managed.adopt(found);
      report.adopted.push(label);
      return true;
    }
    if (recorded) report.missing.push(label);
    await managed.start(`crash`);
    report.started.push(label);
    return false;
  };
  // A daemon killed during a deploy's switch hold: the release it had not switched to yet must not run
  // beside the one that serves (their web processes may share a lock), so its survivors stop first.
  const hold = state.switchHold;
  if (hold !== undefined && hold.releaseId !== state.activeReleaseId) {
    log.warn(`switch hold interrupted by a daemon restart`, {releaseId: hold.releaseId, previousReleaseId: hold.previousReleaseId, startedAt: hold.startedAt});
    for (const saved of state.releases) {
      if (saved.releaseId !== hold.releaseId || saved.releaseId === state.activeReleaseId) continue;
      for (const entry of [...saved.processes, ...saved.pending ?? []]) {
        const found = take(entry);
        if (!found) continue;
        await stopStray(found, log);
        if (entry.key !== undefined) carriers.delete(entry.key);
        report.stopped.push(`${found.id} (release ${saved.releaseId}, switch hold not completed)`);
      }
    }
  }
  let active: Release | null = null;
  const retiring: Release[] = [];
  for (const saved of state.releases) {
    const release = new Release({releaseId: saved.releaseId, releasePath: saved.releasePath, revision: saved.revision, config});
    release.createdAt = new Date(saved.createdAt);
    if (saved.activatedAt) release.activatedAt = new Date(saved.activatedAt);
    if (saved.drainStartedAt) release.drainStartedAt = new Date(saved.drainStartedAt);
    if (saved.stoppedAt) release.stoppedAt = new Date(saved.stoppedAt);
    if (saved.failure !== undefined) release.failure = saved.failure;
    release.ports = {...saved.ports};
    release.instancePorts = {...saved.instancePorts};
    const entries: Entry[] = [...saved.processes, ...saved.pending ?? []];
    const isActive = saved.state === `active` && saved.releaseId === state.activeReleaseId && active === null;
    if (!isActive && entries.length === 0) {
      if (saved.state === `starting`) continue; // never served: not retained
      roster.releases.push(release);
      release.state = saved.state === `failed` ? `failed` : `stopped`;
      release.stoppedAt ??= new Date();
      continue;
    }
    roster.releases.push(release);
    for (const port of [...Object.values(release.ports), ...Object.values(release.instancePorts)]) ports.lease(release.key, port);
    if (!isActive) {
      // Draining (its connections died with the previous daemon) or half-started: stop what survived.
      release.state = `draining`;
      for (const entry of entries) {
        const process = definition(entry.processId);
        const found = take(entry);
        if (!found) continue;
        if (!process) {
          await stopStray(found, log);
          report.stopped.push(`${found.id} (release ${release.releaseId}, no longer in the config)`);
          continue;
        }
        const managed = roster.create(release, process, found.id, 0, 1, () => false, found.key);
        release.processes.push(managed);
        managed.adopt(found);
        report.stopped.push(`${found.id} (release ${release.releaseId})`);
      }
      retiring.push(release);
      continue;
    }
    active = release;
    release.state = `active`;
    for (const instance of plan.instances) {
      // The first live candidate is adopted; a second live one (a replacement that was starting) is stopped.
      const candidates = entries.filter((entry) => entry.id === instance.instanceId && !(`draining` in entry && entry.draining === true));
      let found: StateProcess | null = null;
      for (const candidate of candidates) {
        const located = take(candidate);
        if (located && !found) found = located;
        else if (located) adoptToStop(release, instance.process, located, `${located.id} (duplicate, pid ${located.pid})`);
      }
      const managed = roster.create(release, instance.process, instance.instanceId, instance.replicaIndex, instance.replicaCount, () => release.isLive, found?.key ?? candidates[0]?.key);
      release.processes.push(managed);
      const adopted = await adoptOrStart(managed, found, candidates.length > 0, instance.instanceId);
      if (instance.process.policy !== `proxied`) continue;
      const port = adopted && found?.port !== undefined ? found.port : release.instancePorts[instance.instanceId] ?? release.ports[instance.process.id];
      if (port === undefined) continue;
      if (instance.process.health) {
        try {
          await waitUntilHealthy(release, managed, adopted ? {...instance.process, health: {...instance.process.health, startDelayMs: 0}} : instance.process, port, instance.configIndex);
        } catch (error) {
          report.unhealthy.push(instance.instanceId);
          log.error(`re-adopted process unhealthy`, {releaseId: release.releaseId, processId: instance.instanceId, err: error});
        }
      }
      release.targets.push(proxy.createTarget({releaseId: release.releaseId, processId: instance.instanceId, host: config.proxy.upstreamHost, port}));
    }
    // Web processes replaced by `restart` that were still draining (their clients are gone with the old
    // daemon), and instances the config no longer has (replicas scaled down, a process removed): stopped.
    const planned = new Set(plan.instances.map((instance) => instance.instanceId));
    for (const entry of entries) {
      const stale = !planned.has(entry.id);
      if (!stale && !(`draining` in entry && entry.draining === true)) continue;
      const process = definition(entry.processId);
      const found = take(entry);
      if (process && found) adoptToStop(release, process, found, `${found.id} (${stale ? `no longer in the config` : `replaced`}, pid ${found.pid})`);
      else if (found) {
        await stopStray(found, log);
        report.stopped.push(`${found.id} (no longer in the config, pid ${found.pid})`);
      }
    }
  }
  // Services and singletons: adopted when alive, never started twice.
  const owner = (releaseId: string) => roster.releases.findLast((release) => release.releaseId === releaseId) ?? active;
  const daemonWide = (policy: string, id: string): Entry[] => [
    ...(policy === `service` ? state.services : state.singletons).filter((entry) => entry.id === id),
    ...(state.pending ?? []).filter((entry) => entry.id === id && entry.policy === policy),
  ];
  for (const {process} of plan.services) {
    const candidates = daemonWide(`service`, process.id);
    let found: StateProcess | null = null;
    for (const candidate of candidates) {
      const located = take(candidate);
      if (located && !found) found = located;
      else if (located) {
        await stopStray(located, log);
        report.stopped.push(`${located.id} (duplicate service, pid ${located.pid})`);
      }
    }
    const release = found ? owner(found.releaseId) : (active ?? (candidates[0] ? owner(candidates[0].releaseId) : null));
    if (!release) {
      if (found) await stopStray(found, log);
      continue;
    }
    const managed = roster.create(release, process, process.id, 0, 1, () => !roster.stopping, found?.key ?? candidates[0]?.key);
    const port = found?.port ?? release.ports[process.id];
    if (port !== undefined) ports.lease(`service:${process.id}`, port);
    roster.services.set(process.id, {process: managed, release, port});
    await adoptOrStart(managed, found, candidates.length > 0, process.id);
  }
  for (const {process} of plan.singletons) {
    const candidates = daemonWide(`singleton`, process.id);
    let found: StateProcess | null = null;
    for (const candidate of candidates) {
      const located = take(candidate);
      // Only one may ever run: any other copy, or one whose release is not the active one, is stopped first.
      if (located && !found && active && owner(located.releaseId) === active) found = located;
      else if (located) {
        await stopStray(located, log);
        report.stopped.push(`${located.id} (singleton, pid ${located.pid})`);
      }
    }
    if (!active) continue;
    const managed = roster.create(active, process, process.id, 0, 1, () => roster.singletons.get(process.id)?.release?.isLive === true, found?.key ?? candidates[0]?.key);
    roster.singletons.set(process.id, {process: managed, release: active, port: active.ports[process.id]});
    await adoptOrStart(managed, found, candidates.length > 0, process.id);
  }
  // Services and singletons the config no longer has.
  const plannedDaemonWide = new Set([...plan.services, ...plan.singletons].map(({process}) => process.id));
  for (const entry of [...state.services, ...state.singletons, ...state.pending ?? []]) {
    if (plannedDaemonWide.has(entry.id)) continue;
    const found = take(entry);
    if (!found) continue;
    await stopStray(found, log);
    report.stopped.push(`${found.id} (no longer in the config, pid ${found.pid})`);
  }
  // Whatever still carries a recorded key and was not taken above (a process whose definition is gone,
  // children of a dead group leader) is stopped: nothing recorded is left running unsupervised.
  for (const [key, found] of carriers) {
    if (handled.has(key) && found.some((carrier) => carrier.pid === carrier.pgid)) continue;
    for (const pgid of new Set(found.map((carrier) => carrier.pgid))) {
      await stopStray({pgid}, log);
      report.stopped.push(`process group ${pgid} (key ${key})`);
    }
  }
  if (active) context.active.switchTo(active);
  for (const release of retiring) retireRelease(context, release, config);
  log.info(`state restored`, {activeReleaseId: active?.releaseId ?? null, adopted: report.adopted.length, started: report.started.length, stopped: report.stopped.length, unhealthy: report.unhealthy.length});
  return report;
}

/** SIGTERM to the group, SIGKILL after STRAY_STOP_MS; resolves when no member is left. */
async function stopStray(found: Pick<EnvironmentCarrier, `pgid`>, log: DeployContext[`log`]): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-found.pgid, name);
    } catch {
      // Gone already.
    }
  };
  signal(`SIGTERM`);
  const deadline = Date.now() + STRAY_STOP_MS;
  while (isProcessGroupAlive(found.pgid)) {
    if (Date.now() > deadline) {
      signal(`SIGKILL`);
      break;
    }
    await delay(20);
  }
  log.info(`stray process stopped`, {pgid: found.pgid});
}
