import type {ManagedProcess} from '../supervisor/managed-process.ts';
import type {DaemonState, StateProcess} from '../state/state-file.ts';
import type {DeployContext} from './deploy-context.ts';
import {retireRelease} from './draining.ts';
import {planRelease} from './plan.ts';
import {Release} from './release.ts';
import {waitUntilHealthy} from './startup-checks.ts';

/** What re-adoption did, by instance id (shown in `status.recovery`). */
export type RestoreReport = {
  /** Found running (same pid and start time) and supervised again. */
  adopted: string[];
  /** Not running any more (or never recorded): started again. */
  started: string[];
  /** Survivors of a draining or half-started release: stopped. */
  stopped: string[];
  /** Recorded, but gone when the daemon came back. */
  missing: string[];
  /** Web processes whose health check failed after re-adoption. */
  unhealthy: string[];
};

/**
 * Re-adoption after a daemon restart: the still-running processes the state lists are supervised
 * again (by polling), the active release's web process is health-checked and routed to, services
 * and singletons are never started twice. Dead processes of the active release start again, like a
 * crash restart. Releases that were draining (or still starting) have their survivors stopped.
 * Runs before the control socket accepts commands, so nothing interleaves.
 */
export async function restoreState(context: DeployContext, state: DaemonState, isAlive: (process: StateProcess) => boolean): Promise<RestoreReport> {
  const {roster, ports, proxy, log} = context;
  const report: RestoreReport = {adopted: [], started: [], stopped: [], missing: [], unhealthy: []};
  const config = context.active.config;
  const plan = planRelease(config);
  const definition = (processId: string) => config.processes.find((process) => process.id === processId);
  const adoptOrStart = async (managed: ManagedProcess, recorded: StateProcess | undefined, label: string): Promise<boolean> => {
    if (recorded && isAlive(recorded)) {
      managed.adopt(recorded);
      report.adopted.push(label);
      return true;
    }
    if (recorded) report.missing.push(label);
    await managed.start(`crash`);
    report.started.push(label);
    return false;
  };
  let active: Release | null = null;
  const retiring: Release[] = [];
  for (const saved of state.releases) {
    const release = new Release({releaseId: saved.releaseId, releasePath: saved.releasePath, revision: saved.revision, config});
    release.createdAt = new Date(saved.createdAt);
    if (saved.activatedAt) release.activatedAt = new Date(saved.activatedAt);
    if (saved.drainStartedAt) release.drainStartedAt = new Date(saved.drainStartedAt);
    if (saved.stoppedAt) release.stoppedAt = new Date(saved.stoppedAt);
    release.ports = {...saved.ports};
    release.instancePorts = {...saved.instancePorts};
    roster.releases.push(release);
    const isActive = saved.state === `active` && saved.releaseId === state.activeReleaseId && active === null;
    if (!isActive && saved.processes.length === 0) {
      release.state = saved.state === `failed` ? `failed` : `stopped`;
      release.stoppedAt ??= new Date();
      continue;
    }
    for (const port of [...Object.values(release.ports), ...Object.values(release.instancePorts)]) ports.lease(release.key, port);
    if (!isActive) {
      // Draining (its connections died with the previous daemon) or half-started: stop what survived.
      release.state = `draining`;
      for (const recorded of saved.processes) {
        const process = definition(recorded.processId);
        if (!process || !isAlive(recorded)) continue;
        const managed = roster.create(release, process, recorded.id, 0, 1, () => false);
        release.processes.push(managed);
        managed.adopt(recorded);
        report.stopped.push(`${recorded.id} (release ${release.releaseId})`);
      }
      retiring.push(release);
      continue;
    }
    active = release;
    release.state = `active`;
    for (const instance of plan.instances) {
      const recorded = saved.processes.find((entry) => entry.id === instance.instanceId);
      const managed = roster.create(release, instance.process, instance.instanceId, instance.replicaIndex, instance.replicaCount, () => release.isLive);
      release.processes.push(managed);
      const adopted = await adoptOrStart(managed, recorded, instance.instanceId);
      if (instance.process.policy !== `proxied`) continue;
      const port = release.instancePorts[instance.instanceId] ?? release.ports[instance.process.id];
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
  }
  // Services and singletons: adopted when alive, never started twice.
  const owner = (releaseId: string) => roster.releases.findLast((release) => release.releaseId === releaseId) ?? active;
  for (const {process} of plan.services) {
    const recorded = state.services.find((entry) => entry.id === process.id);
    const release = recorded ? owner(recorded.releaseId) : active;
    if (!release || (!recorded && !active)) continue;
    const managed = roster.create(release, process, process.id, 0, 1, () => !roster.stopping);
    const port = recorded?.port ?? release.ports[process.id];
    if (port !== undefined) ports.lease(`service:${process.id}`, port);
    roster.services.set(process.id, {process: managed, release, port});
    await adoptOrStart(managed, recorded, process.id);
  }
  for (const {process} of plan.singletons) {
    const recorded = state.singletons.find((entry) => entry.id === process.id);
    const release = recorded ? owner(recorded.releaseId) : active;
    if (!release || !active) continue;
    const managed = roster.create(release, process, process.id, 0, 1, () => roster.singletons.get(process.id)?.release?.isLive === true);
    roster.singletons.set(process.id, {process: managed, release, port: release.ports[process.id]});
    await adoptOrStart(managed, recorded, process.id);
  }
  if (active) context.active.switchTo(active);
  for (const release of retiring) retireRelease(context, release, config);
  log.info(`state restored`, {activeReleaseId: active?.releaseId ?? null, adopted: report.adopted.length, started: report.started.length, stopped: report.stopped.length, unhealthy: report.unhealthy.length});
  return report;
}
