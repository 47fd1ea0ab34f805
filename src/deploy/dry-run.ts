import path from 'node:path';
import type {Config, ProcessConfig} from '../config/types.ts';
import type {DeployPlanView} from '../control/protocol.ts';
import type {DeployRequest, DeployResult} from './deployment.ts';
import {formatHttpUrl} from './instance-spec.ts';
import type {ReleasePlan} from './plan.ts';
import type {ProcessRoster} from './process-roster.ts';
import type {Release} from './release.ts';

/**
 * `deploy --dry-run`: what a deploy of `plan` would do from the current state — the processes it
 * starts and keeps, the singletons it replaces, the hooks, and what drains. Reads, never changes.
 */
export function describePlan(options: {config: Config; plan: ReleasePlan; request: DeployRequest; releaseId: string; roster: ProcessRoster; active: Release | null; startedAt: number}): DeployResult {
  const {config, plan, request, releaseId, roster, active: previous} = options;
  const describePort = (process: ProcessConfig): number | string | null => {
    if (!process.port) return null;
    const service = roster.services.get(process.id);
    if (process.policy === `service` && process.deployStrategy !== `handoff` && service?.port !== undefined) return service.port;
    if (process.port.from === 0 || process.port.to === 0) return `ephemeral`;
    return process.port.from === process.port.to ? process.port.from : `${process.port.from}-${process.port.to}`;
  };
  const keep: DeployPlanView[`keep`] = [];
  const start: DeployPlanView[`start`] = [];
  for (const {process} of plan.services) {
    const existing = roster.services.get(process.id);
    if (existing && existing.process.state === `running`) keep.push({processId: process.id, policy: `service`, pid: existing.process.pid ?? null, port: existing.port ?? null});
    else start.push({processId: process.id, policy: `service`, port: describePort(process), healthCheck: null});
  }
  for (const instance of plan.instances) {
    const health = instance.process.policy === `proxied` && instance.process.health && !request.skipHealthCheck
      ? formatHttpUrl(config.proxy.upstreamHost, 0, instance.process.health.path).replace(`:0/`, `:<port>/`)
      : null;
    start.push({processId: instance.instanceId, policy: instance.process.policy, port: describePort(instance.process), healthCheck: health});
  }
  const view: DeployPlanView = {
    releaseId,
    releasePath: path.resolve(request.releasePath),
    start,
    keep,
    singletons: plan.singletons.map(({process}) => ({processId: process.id, replaces: roster.singletons.get(process.id)?.process.pid ?? null})),
    hooks: {beforeSwitch: request.skipBeforeSwitch === true ? null : (config.hooks.beforeSwitch ?? null), afterSwitch: config.hooks.afterSwitch ?? null},
    drain: previous ? {releaseId: previous.releaseId, timeoutMs: config.proxy.drainTimeoutMs, connections: previous.connections, processes: previous.processes.map((process) => process.id)} : null,
  };
  return {
    activeReleaseId: previous?.releaseId ?? null,
    previousReleaseId: previous?.releaseId ?? null,
    releaseId,
    durationMs: Math.round(performance.now() - options.startedAt),
    phases: [],
    plan: view,
  };
}
