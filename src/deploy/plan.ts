import type {Config, ProcessConfig} from '../config/types.ts';

export type PlannedInstance = {
  /** `web`, or `worker#0` for replicas. */
  instanceId: string;
  process: ProcessConfig;
  configIndex: number;
  replicaIndex: number;
  replicaCount: number;
};

export type ReleasePlan = {
  /** Daemon-wide persistent services, started once before the release (config order). */
  services: Array<{process: ProcessConfig; configIndex: number}>;
  /** Release processes in start order: handoff services, companions (replicas in index order), proxied. */
  instances: PlannedInstance[];
  /** Started after the switch, one at a time, never overlapping their predecessor. */
  singletons: Array<{process: ProcessConfig; configIndex: number}>;
  /** Processes that get a port from this release (config order), with the config key that sets it. */
  portRequests: Array<{process: ProcessConfig; configIndex: number; configKey: string}>;
};

/** Pure: what a deploy of `config` starts, in which order (upstream ordering, see docs/architecture.md). */
export function planRelease(config: Config): ReleasePlan {
  const indexed = config.processes.map((process, configIndex) => ({process, configIndex}));
  const isPersistentService = (p: ProcessConfig) => p.policy === `service` && p.deployStrategy !== `handoff`;
  const isHandoff = (p: ProcessConfig) => p.policy === `service` && p.deployStrategy === `handoff`;
  const expand = ({process, configIndex}: {process: ProcessConfig; configIndex: number}): PlannedInstance[] => {
    const replicaCount = Math.max(1, process.replicas);
    return Array.from({length: replicaCount}, (_, replicaIndex) => ({
      instanceId: replicaCount > 1 ? `${process.id}#${replicaIndex}` : process.id,
      process,
      configIndex,
      replicaIndex,
      replicaCount,
    }));
  };
  return {
    services: orderByDependencies(indexed.filter(({process}) => isPersistentService(process)), ({process}) => process),
    instances: orderByDependencies([
      ...indexed.filter(({process}) => isHandoff(process)).flatMap(expand),
      ...indexed.filter(({process}) => process.policy === `companion`).flatMap(expand),
      ...indexed.filter(({process}) => process.policy === `proxied`).flatMap(expand),
    ], (instance) => instance.process),
    singletons: indexed.filter(({process}) => process.policy === `singleton`),
    portRequests: indexed
      .filter(({process}) => process.port !== undefined)
      .map(({process, configIndex}) => ({process, configIndex, configKey: `processes[${configIndex}].port`})),
  };
}

/** Base id of an instance id (`worker#2` → `worker`). */
export function baseProcessId(instanceId: string): string {
  const hash = instanceId.indexOf(`#`);
  return hash === -1 ? instanceId : instanceId.slice(0, hash);
}

/**
 * Stable order in which every entry comes after the entries of the processes it depends on (within the
 * list; the config validation refuses cycles and dependencies on later stages).
 */
export function orderByDependencies<T>(items: T[], processOf: (item: T) => ProcessConfig): T[] {
  const ordered: T[] = [];
  const placed = new Set<T>();
  const idsIn = new Set(items.map((item) => processOf(item).id));
  const place = (item: T, trail: Set<T>) => {
    if (placed.has(item) || trail.has(item)) return;
    trail.add(item);
    for (const dependency of processOf(item).dependsOn) {
      if (!idsIn.has(dependency)) continue;
      for (const other of items) if (processOf(other).id === dependency) place(other, trail);
    }
    placed.add(item);
    ordered.push(item);
  };
  for (const item of items) place(item, new Set());
  return ordered;
}

/**
 * Pure: every process of `config` in the order a deploy starts them (persistent services, handoff
 * services, companions, the proxied process, singletons), each after the processes it `dependsOn`.
 * The order of `restart` and of a rolling restart.
 */
export function orderProcesses(config: Config): ProcessConfig[] {
  const plan = planRelease(config);
  const instanceProcesses = [...new Set(plan.instances.map((instance) => instance.process))];
  return [...plan.services.map(({process}) => process), ...instanceProcesses, ...plan.singletons.map(({process}) => process)];
}
