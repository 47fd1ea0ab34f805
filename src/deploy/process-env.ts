import path from 'node:path';
import {renderTemplate} from '../config/template.ts';
import type {TemplateContext} from '../config/template.ts';
import type {ProcessConfig} from '../config/types.ts';

export type ProcessEnvOptions = {
  /** The daemon's environment: the lowest layer. undefined values are dropped. */
  baseEnv: Record<string, string | undefined>;
  application: string;
  processId: string;
  releaseId: string;
  releasePath: string;
  revision: string;
  replicaIndex: number;
  replicaCount: number;
  /** This process's port; ROLLBRIDGE_PORT is set only when there is one. */
  port: number | undefined;
  /** Every port of the release, by process id: each becomes ROLLBRIDGE_<ID>_PORT. */
  ports: Record<string, number>;
  /** The process's own `env`, already rendered: the top layer. */
  processEnv: Record<string, string>;
};

export type RenderedProcessDefinition = {command: string; cwd: string; env: Record<string, string>};

/** A child's environment: daemon env, then ROLLBRIDGE_* variables, then the process's own env (each overriding the one before). */
export function buildProcessEnv(options: ProcessEnvOptions): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.baseEnv)) {
    if (value !== undefined) env[name] = value;
  }
  env[`ROLLBRIDGE_APPLICATION`] = options.application;
  env[`ROLLBRIDGE_PROCESS_ID`] = options.processId;
  env[`ROLLBRIDGE_RELEASE_ID`] = options.releaseId;
  env[`ROLLBRIDGE_RELEASE_PATH`] = options.releasePath;
  env[`ROLLBRIDGE_REVISION`] = options.revision;
  env[`ROLLBRIDGE_REPLICA_INDEX`] = String(options.replicaIndex);
  env[`ROLLBRIDGE_REPLICA_COUNT`] = String(options.replicaCount);
  if (options.port !== undefined) env[`ROLLBRIDGE_PORT`] = String(options.port);
  for (const [processId, port] of Object.entries(options.ports)) {
    env[processPortEnvName(processId)] = String(port);
  }
  return {...env, ...options.processEnv};
}

/** `background-jobs-main` → `ROLLBRIDGE_BACKGROUND_JOBS_MAIN_PORT`: uppercased, each run of non-alphanumerics becomes `_`. */
export function processPortEnvName(processId: string): string {
  return `ROLLBRIDGE_${processId.toUpperCase().replace(/[^A-Z0-9]+/g, `_`)}_PORT`;
}

/**
 * Renders the templated fields of a process definition. `cwd` is absolute: unset means the release
 * path, a relative one resolves against the release path (upstream resolved it against the daemon's cwd).
 */
export function renderProcessDefinition(process: ProcessConfig, context: TemplateContext, options: {releasePath: string; processIndex?: number}): RenderedProcessDefinition {
  const at = options.processIndex === undefined ? `processes[id=${process.id}]` : `processes[${options.processIndex}]`;
  const command = renderTemplate(process.command, context, `${at}.command`);
  const cwd = process.cwd === undefined
    ? path.resolve(options.releasePath)
    : path.resolve(options.releasePath, renderTemplate(process.cwd, context, `${at}.cwd`));
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    env[name] = renderTemplate(value, context, `${at}.env.${name}`);
  }
  return {command, cwd, env};
}
