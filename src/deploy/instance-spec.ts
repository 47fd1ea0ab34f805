import {buildTemplateContext} from '../config/template.ts';
import type {Config, ProcessConfig} from '../config/types.ts';
import type {ProcessSpec} from '../supervisor/managed-process.ts';
import {buildProcessEnv, renderProcessDefinition} from './process-env.ts';

export type InstanceContext = {
  config: Config;
  process: ProcessConfig;
  instanceId: string;
  releaseId: string;
  releasePath: string;
  revision: string;
  replicaIndex: number;
  replicaCount: number;
  ports: Record<string, number>;
  /** This instance's own port when it differs from `ports[process.id]` (proxied replicas). */
  port?: number | undefined;
  /** The daemon's environment: the base layer of every child environment and `{{env.X}}`. */
  baseEnv: Record<string, string | undefined>;
};

/** Renders a process definition for one instance into what the supervisor runs (templates, env, cwd). */
export function buildInstanceSpec(context: InstanceContext): ProcessSpec {
  const {config, process} = context;
  const port = context.port ?? context.ports[process.id];
  const templateContext = buildTemplateContext({
    application: config.application,
    releaseId: context.releaseId,
    releasePath: context.releasePath,
    revision: context.revision,
    processId: process.id,
    replicaIndex: context.replicaIndex,
    replicaCount: context.replicaCount,
    port,
    ports: context.ports,
    proxy: {host: config.proxy.host, port: config.proxy.port, upstreamHost: config.proxy.upstreamHost},
    env: context.baseEnv,
  });
  const rendered = renderProcessDefinition(process, templateContext, {releasePath: context.releasePath, processIndex: config.processes.indexOf(process)});
  const env = buildProcessEnv({
    baseEnv: context.baseEnv,
    application: config.application,
    processId: process.id,
    releaseId: context.releaseId,
    releasePath: context.releasePath,
    revision: context.revision,
    replicaIndex: context.replicaIndex,
    replicaCount: context.replicaCount,
    port,
    ports: context.ports,
    processEnv: rendered.env,
  });
  return {
    id: context.instanceId,
    processId: process.id,
    command: rendered.command,
    cwd: rendered.cwd,
    env,
    port,
    stopSignal: process.stopSignal,
    gracefulStopMs: process.gracefulStopMs,
    lifecycle: process.lifecycle,
    restart: process.restart,
    restartDelayMs: process.restartDelayMs,
    outputLines: process.outputLines,
  };
}

/** `http://host:port/path`, with IPv6 literals bracketed. */
export function formatHttpUrl(host: string, port: number, path: string): string {
  const hostPart = host.includes(`:`) && !host.startsWith(`[`) ? `[${host}]` : host;
  return `http://${hostPart}:${port}${path.startsWith(`/`) ? path : `/${path}`}`;
}
