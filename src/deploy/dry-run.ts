import type {Config, HealthConfig, ProcessConfig} from '../config/types.ts';
import type {DeployPlanView} from '../control/protocol.ts';
import {formatHttpUrl} from './instance-spec.ts';
import {planRelease} from './plan.ts';
import type {ProcessRoster} from './process-roster.ts';
import type {Release} from './release.ts';

/** What runs now, as a dry run sees it: the live daemon's view, or the state file's when no daemon runs (the CLI). */
export type RunningSnapshot = {
  active: {releaseId: string; connections: {http: number; websocket: number}; processes: string[]} | null;
  services: ReadonlyMap<string, {running: boolean; pid: number | null; port: number | null}>;
  singletons: ReadonlyMap<string, {pid: number | null}>;
};

/**
 * `deploy --dry-run`, pure: what a deploy of `config` would start, keep, replace and drain given what
 * runs now — the processes it starts and keeps, the singletons it replaces, the hooks, and what drains.
 */
export function describeDeployPlan(options: {config: Config; releaseId: string; releasePath: string; skipHealthCheck: boolean; skipBeforeSwitch: boolean; running: RunningSnapshot}): DeployPlanView {
  const {config, running} = options;
  const plan = planRelease(config);
  const describePort = (process: ProcessConfig): number | string | null => {
    if (!process.port) return null;
    const service = running.services.get(process.id);
    if (process.policy === `service` && process.deployStrategy !== `handoff` && service !== undefined && service.port !== null) return service.port;
    if (process.port.from === 0 || process.port.to === 0) return `ephemeral`;
    return process.port.from === process.port.to ? process.port.from : `${process.port.from}-${process.port.to}`;
  };
  const keep: DeployPlanView[`keep`] = [];
  const start: DeployPlanView[`start`] = [];
  for (const {process} of plan.services) {
    const existing = running.services.get(process.id);
    if (existing?.running) keep.push({processId: process.id, policy: `service`, pid: existing.pid, port: existing.port});
    else start.push({processId: process.id, policy: `service`, port: describePort(process), healthCheck: null});
  }
  for (const instance of plan.instances) {
    const health = instance.process.policy === `proxied` && instance.process.health && !options.skipHealthCheck
      ? describeHealthCheck(instance.process.health, config.proxy.upstreamHost)
      : null;
    start.push({processId: instance.instanceId, policy: instance.process.policy, port: describePort(instance.process), healthCheck: health});
  }
  return {
    releaseId: options.releaseId,
    releasePath: options.releasePath,
    start,
    keep,
    singletons: plan.singletons.map(({process}) => ({processId: process.id, replaces: running.singletons.get(process.id)?.pid ?? null})),
    hooks: {beforeSwitch: options.skipBeforeSwitch ? null : (config.hooks.beforeSwitch ?? null), afterSwitch: config.hooks.afterSwitch ?? null},
    drain: running.active ? {releaseId: running.active.releaseId, timeoutMs: config.proxy.drainTimeoutMs, connections: running.active.connections, processes: running.active.processes} : null,
  };
}

/** What the daemon runs now, for describeDeployPlan. */
export function snapshotOf(roster: ProcessRoster, active: Release | null): RunningSnapshot {
  return {
    active: active ? {releaseId: active.releaseId, connections: active.connections, processes: active.processes.map((process) => process.id)} : null,
    services: new Map([...roster.services].map(([id, entry]) => [id, {running: entry.process.state === `running`, pid: entry.process.pid ?? null, port: entry.port ?? null}])),
    singletons: new Map([...roster.singletons].map(([id, entry]) => [id, {pid: entry.process.pid ?? null}])),
  };
}

/** The health check as the plan prints it: the URL for http, else `tcp <host>:<port>`, `command "…"` or `notify READY=1`. */
function describeHealthCheck(health: HealthConfig, host: string): string {
  if (health.type === `http`) return formatHttpUrl(host, 0, health.path).replace(`:0/`, `:<port>/`);
  if (health.type === `tcp`) return `tcp ${formatHttpUrl(host, 0, `/`).replace(/^http:\/\//, ``).replace(`:0/`, `:<port>`)}`;
  if (health.type === `command`) return `command ${JSON.stringify(health.command)}`;
  return `notify READY=1`;
}
