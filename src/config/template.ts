import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';

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
  return text.replace(PLACEHOLDER, (_placeholder, key: string) => {
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
  });
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
  return `Use one of the available keys in ${where}: ${keys}`;
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
