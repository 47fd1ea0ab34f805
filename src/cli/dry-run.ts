import type {Config} from '../config/types.ts';
import type {StatusResult} from '../control/protocol.ts';
import type {RunningSnapshot} from '../deploy/dry-run.ts';
import {isStateProcessAlive, readStateFile, statePathOf} from '../state/state-file.ts';

export type LocalPlanSource = {
  /** What the plan assumed runs now. */
  running: RunningSnapshot;
  /** The state file that was read (null when there is none). */
  statePath: string | null;
  /** Processes of that state file that still run: a daemon started now re-adopts them. */
  adoptable: number;
};

/**
 * `deploy --dry-run` with no daemon: what runs now is what a daemon started now would re-adopt from the
 * state file (the processes it lists that still run), or nothing. Reads only; starts nothing.
 */
export function snapshotFromStateFile(config: Config): LocalPlanSource {
  const statePath = statePathOf(config);
  const state = readStateFile(statePath);
  const empty: RunningSnapshot = {active: null, services: new Map(), singletons: new Map()};
  if (state === null) return {running: empty, statePath: null, adoptable: 0};
  const alive = <P extends {pid: number; startTime: number}>(process: P) => isStateProcessAlive(process, state.bootId);
  const activeRelease = state.releases.find((release) => release.releaseId === state.activeReleaseId);
  const activeProcesses = activeRelease?.processes.filter(alive) ?? [];
  const services = state.services.filter(alive);
  const singletons = state.singletons.filter(alive);
  return {
    running: {
      active: activeRelease && activeProcesses.length > 0
        ? {releaseId: activeRelease.releaseId, connections: {http: 0, websocket: 0}, processes: activeProcesses.map((process) => process.id)}
        : null,
      services: new Map(services.map((process) => [process.id, {running: true, pid: process.pid, port: process.port ?? null}])),
      singletons: new Map(singletons.map((process) => [process.id, {pid: process.pid}])),
    },
    statePath,
    adoptable: activeProcesses.length + services.length + singletons.length,
  };
}

/** What runs now according to a daemon's status document (a rollbridge 0.1 daemon, which cannot dry-run). */
export function snapshotFromStatus(status: StatusResult): RunningSnapshot {
  const active = status.releases?.find((release) => release.releaseId === status.activeReleaseId);
  return {
    active: active
      ? {releaseId: active.releaseId, connections: active.connections ?? {http: 0, websocket: 0}, processes: (active.processes ?? []).map((process) => process.id)}
      : null,
    services: new Map((status.services ?? []).map((service) => [service.id, {
      running: service.process.state === `running`,
      pid: service.process.pid ?? null,
      port: service.port ?? active?.ports?.[service.id] ?? null,
    }])),
    singletons: new Map((status.singletons ?? []).map((singleton) => [singleton.id, {pid: singleton.process.pid ?? null}])),
  };
}
