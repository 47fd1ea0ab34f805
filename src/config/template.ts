import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {suggest} from './suggest.ts';
import type {Config, ConfigIssue, ProcessConfig} from './types.ts';

/** The values `{{ key }}` placeholders in command, cwd and env values can name. */
export type TemplateContext = {
  application: string;
  releaseId: string;
  releasePath: string;
  /** Defaults to the release id. */
  revision: string;
  /** The base process id, never `id#n`. */
  processId: string;
  replicaIndex: number;
  replicaCount: number;
  /** This process's allocated port; undefined for a process without one. */
  port: number | undefined;
  ports: Record<string, number>;
  /** `proxy.port` is the configured port, not the bound one (upstream-compatible). */
  proxy: {host: string; port: number; upstreamHost: string};
  /** Environment `{{env.NAME}}` reads (the daemon's). */
  env: Record<string, string | undefined>;
};

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;

export function buildTemplateContext(values: TemplateContext): TemplateContext {
  return {
    application: values.application,
    releaseId: values.releaseId,
    releasePath: values.releasePath,
    revision: values.revision,
    processId: values.processId,
    replicaIndex: values.replicaIndex,
    replicaCount: values.replicaCount,
    port: values.port,
    ports: {...values.ports},
    proxy: {host: values.proxy.host, port: values.proxy.port, upstreamHost: values.proxy.upstreamHost},
    env: {...values.env},
  };
}

/**
 * Replaces every `{{ key }}` (dotted keys look up nested values) in `text`. A missing, null or
 * object value throws ERR_TEMPLATE_MISSING_VALUE naming `where` (e.g. `processes[0].command`).
 */
export function renderTemplate(text: string, context: TemplateContext, where: string): string {
  return text.replace(PLACEHOLDER, (_placeholder, key: string) => resolvePlaceholder(key, context, where));
}

/**
 * The ERR_TEMPLATE_MISSING_VALUE errors rendering `text` would throw, one per placeholder (renderTemplate
 * stops at the first). `skipEnv` leaves `{{env.NAME}}` alone: `validate` cannot know the daemon's environment.
 */
export function findTemplateErrors(text: string, context: TemplateContext, where: string, options: {skipEnv?: boolean} = {}): RollbridgeError[] {
  const errors: RollbridgeError[] = [];
  for (const [, key] of text.matchAll(PLACEHOLDER)) {
    if (key === undefined || (options.skipEnv === true && key.startsWith(`env.`))) continue;
    try {
      resolvePlaceholder(key, context, where);
    } catch (error) {
      errors.push(error as RollbridgeError);
    }
  }
  return errors;
}

/**
 * The template context a process of `config` gets in a release, with each process's port at the low end of
 * its range and replica 0 (what `doctor --release-path` and `validate` render with).
 */
export function buildConfigTemplateContext(config: Config, process: ProcessConfig, release: {releaseId: string; releasePath: string; revision: string; env: Record<string, string | undefined>}): TemplateContext {
  const ports: Record<string, number> = {};
  for (const definition of config.processes) {
    if (definition.port !== undefined) ports[definition.id] = definition.port.from;
  }
  return buildTemplateContext({
    application: config.application,
    releaseId: release.releaseId,
    releasePath: release.releasePath,
    revision: release.revision,
    processId: process.id,
    replicaIndex: 0,
    replicaCount: process.replicas,
    port: ports[process.id],
    ports,
    proxy: {host: config.proxy.host, port: config.proxy.port, upstreamHost: config.proxy.upstreamHost},
    env: release.env,
  });
}

/**
 * `validate`'s template check: every placeholder in a process's command, cwd and env values that no release
 * could fill (a typo such as `{{prot}}`, `{{port}}` on a process without a port), as config issues.
 */
export function listTemplateIssues(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  config.processes.forEach((process, index) => {
    const context = buildConfigTemplateContext(config, process, {releaseId: `<releaseId>`, releasePath: `<releasePath>`, revision: `<revision>`, env: {}});
    const at = `processes[${index}]`;
    const fields: Array<[string, string | undefined]> = [[`${at}.command`, process.command], [`${at}.cwd`, process.cwd], ...Object.entries(process.env).map(([name, value]): [string, string] => [`${at}.env.${name}`, value])];
    for (const [where, text] of fields) {
      if (text === undefined) continue;
      for (const error of findTemplateErrors(text, context, where, {skipEnv: true})) issues.push({path: where, message: error.message, fix: error.fix ?? ``});
    }
  });
  return issues;
}

function resolvePlaceholder(key: string, context: TemplateContext, where: string): string {
  const value = lookup(context, key);
  if (value === undefined || value === null) {
    throw new RollbridgeError(ErrorCode.TEMPLATE_MISSING_VALUE, `Missing template value for {{${key}}} in ${where}`, {
      fix: missingValueFix(key, context, where),
      details: {key, where},
    });
  }
  if (typeof value === `object`) {
    throw new RollbridgeError(ErrorCode.TEMPLATE_MISSING_VALUE, `Template value for {{${key}}} in ${where} is an object, not text`, {
      fix: `Name one of its fields in ${where} instead: ${availableKeys(context).filter((name) => name.startsWith(`${key}.`)).join(`, `) || `${key}.<name>`}`,
      details: {key, where},
    });
  }
  return String(value);
}

function lookup(context: TemplateContext, key: string): unknown {
  let value: unknown = context;
  for (const part of key.split(`.`)) {
    if (typeof value !== `object` || value === null || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function missingValueFix(key: string, context: TemplateContext, where: string): string {
  const keys = availableKeys(context).join(`, `);
  if (key.startsWith(`env.`)) {
    return `Set ${key.slice(4)} in the environment the rollbridge daemon starts with, or use another key in ${where}: ${keys}`;
  }
  if (key === `port`) {
    return `Give this process a port (processes[].port) or remove {{port}} from ${where}; available keys: ${keys}`;
  }
  const closest = suggest(key, availableKeys(context));
  return `${closest === undefined ? `` : `Did you mean {{${closest}}}? `}Use one of the available keys in ${where}: ${keys}`;
}

/** Every key a placeholder can name; environment variables are summarised as `env.<NAME>`. */
function availableKeys(context: TemplateContext): string[] {
  const keys: string[] = [];
  for (const [key, value] of Object.entries(context)) {
    if (key === `env`) {
      keys.push(`env.<NAME>`);
    } else if (typeof value === `object` && value !== null) {
      for (const [child, childValue] of Object.entries(value)) {
        if (childValue !== undefined && childValue !== null) keys.push(`${key}.${child}`);
      }
    } else if (value !== undefined && value !== null) {
      keys.push(key);
    }
  }
  return keys;
}
