import fs from 'node:fs';
import {createRequire} from 'node:module';
import path from 'node:path';
import {pathToFileURL} from 'node:url';
import {types} from 'node:util';
import vm from 'node:vm';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError, errorMessage, isRollbridgeError} from '../errors/rollbridge-error.ts';
import {CONFIG_FILE_NAMES} from './defaults.ts';
import {validateConfig} from './schema.ts';
import {findDeployPitfalls} from './deploy-pitfalls.ts';
import type {Config, ConfigIssue, ConfigNotice, ConfigWarning} from './types.ts';

export type ConfigLocation = {cwd: string; configPath?: string | undefined};

export type ConfigFileValidation = {
  /** Absolute config path; null when no config file was found. */
  path: string | null;
  config: Config | null;
  issues: ConfigIssue[];
  warnings: ConfigWarning[];
  notices: ConfigNotice[];
};

export type ValidationReport = {stdout: string; stderr: string; exitCode: 0 | 1};

const EXPORT_FIX = `Export a config object or function (export default {...} or module.exports = {...})`;

/** A config that failed validation: `issues` holds every problem, each with a fix. */
export class ConfigError extends RollbridgeError {
  readonly issues: readonly ConfigIssue[];

  constructor(configPath: string, issues: ConfigIssue[]) {
    const lines = issues.map((issue) => `\n  - ${issue.message}`).join(``);
    super(ErrorCode.CONFIG_INVALID, `Invalid config ${configPath}: ${issues.length} ${issues.length === 1 ? `issue` : `issues`}${lines}`, {
      fix: `Run "rollbridge validate --config ${configPath}" to see every issue with its fix`,
      details: {path: configPath, issues},
    });
    this.name = `ConfigError`;
    this.issues = issues;
  }
}

/** The config file to use: `configPath` made absolute against `cwd`, else the first default name present in `cwd`. */
export function resolveConfigPath(options: ConfigLocation): string {
  if (options.configPath !== undefined && options.configPath !== ``) return path.resolve(options.cwd, options.configPath);
  for (const name of CONFIG_FILE_NAMES) {
    const candidate = path.join(options.cwd, name);
    if (isRegularFile(candidate)) return candidate;
  }
  throw new RollbridgeError(ErrorCode.CONFIG_NOT_FOUND, `No config file found in ${options.cwd}`, {
    fix: `Pass --config <path> or add rollbridge.js (or rollbridge.json) to ${options.cwd}`,
    details: {cwd: options.cwd, searched: [...CONFIG_FILE_NAMES]},
  });
}

function isRegularFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * What the config file exports, with a function export called (and awaited). The file is
 * re-evaluated on every call, so an edited config really reloads (modules it imports are not).
 */
export async function loadRawConfig(configPath: string): Promise<unknown> {
  const source = readConfigFile(configPath);
  let exported: unknown;
  try {
    exported = await evaluateConfigModule(configPath, source);
  } catch (error) {
    if (isRollbridgeError(error)) throw error;
    throw new RollbridgeError(ErrorCode.CONFIG_LOAD_FAILED, `Could not load config ${configPath}: ${describeLoadError(error)}`, {
      fix: error instanceof SyntaxError ? `Fix the syntax error in ${configPath}` : `Fix the error raised while loading ${configPath} (run "node ${configPath}" to see its stack trace)`,
      details: {path: configPath},
      cause: error,
    });
  }
  if (typeof exported === `function`) {
    try {
      exported = await (exported as () => unknown)();
    } catch (error) {
      throw new RollbridgeError(ErrorCode.CONFIG_LOAD_FAILED, `Config function exported by ${configPath} failed: ${errorMessage(error)}`, {
        fix: `Fix the error thrown by the function exported from ${configPath}`,
        details: {path: configPath},
        cause: error,
      });
    }
  }
  if (exported === undefined || exported === null) {
    throw new RollbridgeError(ErrorCode.CONFIG_LOAD_FAILED, `Config ${configPath} exports ${String(exported)} instead of a config object`, {
      fix: EXPORT_FIX,
      details: {path: configPath},
    });
  }
  return exported;
}

function readConfigFile(configPath: string): Buffer {
  try {
    return fs.readFileSync(configPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === `ENOENT`) {
      throw new RollbridgeError(ErrorCode.CONFIG_NOT_FOUND, `Config file ${configPath} does not exist`, {
        fix: `Pass --config with the path of an existing config file, or create ${configPath}`,
        details: {path: configPath},
        cause: error,
      });
    }
    throw new RollbridgeError(ErrorCode.CONFIG_LOAD_FAILED, `Could not read config ${configPath}: ${errorMessage(error)}`, {
      fix: `Make ${configPath} a readable file for the user running rollbridge`,
      details: {path: configPath},
      cause: error,
    });
  }
}

async function evaluateConfigModule(configPath: string, source: Buffer): Promise<unknown> {
  const extension = path.extname(configPath).toLowerCase();
  if (extension === `.json`) return parseJson(configPath, source);
  if (extension === `.cjs` || (extension === `.js` && isCommonJsFile(configPath, source))) return requireFresh(configPath);
  return importFresh(configPath, source);
}

function parseJson(configPath: string, source: Buffer): unknown {
  try {
    return JSON.parse(source.toString(`utf8`));
  } catch (error) {
    throw new RollbridgeError(ErrorCode.CONFIG_LOAD_FAILED, `Could not parse config ${configPath}: ${errorMessage(error)}`, {
      fix: `Fix the JSON syntax in ${configPath}`,
      details: {path: configPath},
      cause: error,
    });
  }
}

/** CommonJS through require, after dropping the cached module so an edited file is re-evaluated. */
function requireFresh(configPath: string): unknown {
  const requireFromConfig = createRequire(configPath);
  const resolved = requireFromConfig.resolve(configPath);
  delete requireFromConfig.cache[resolved];
  const exported: unknown = requireFromConfig(resolved);
  return unwrapDefault(exported, configPath);
}

/** ESM through import(); the content hash in the URL makes an edited file a new module. */
async function importFresh(configPath: string, source: Buffer): Promise<unknown> {
  // node:crypto is loaded here, not at start-up: it costs every CLI call ~9 ms otherwise.
  const {createHash} = await import('node:crypto');
  const digest = createHash(`sha256`).update(source).digest(`hex`);
  const namespace: unknown = await import(`${pathToFileURL(configPath).href}?rollbridgeConfig=${digest}`);
  return unwrapDefault(namespace, configPath);
}

function unwrapDefault(exported: unknown, configPath: string): unknown {
  const isNamespace = types.isModuleNamespaceObject(exported);
  const isTranspiled = typeof exported === `object` && exported !== null && (exported as {__esModule?: unknown}).__esModule === true;
  if (!isNamespace && !isTranspiled) return exported;
  if (!Object.hasOwn(exported as object, `default`) && !(isNamespace && `default` in (exported as object))) {
    throw new RollbridgeError(ErrorCode.CONFIG_LOAD_FAILED, `Config ${configPath} has no default export`, {
      fix: EXPORT_FIX,
      details: {path: configPath},
    });
  }
  return (exported as {default: unknown}).default;
}

/**
 * Whether Node treats a `.js` file as CommonJS: the nearest package.json's "type" decides; without
 * one, a file that only parses as a module (import/export, top-level await) is ESM, as in Node.
 */
function isCommonJsFile(configPath: string, source: Buffer): boolean {
  const type = nearestPackageType(path.dirname(configPath));
  if (type === `module`) return false;
  if (type === `commonjs`) return true;
  try {
    vm.compileFunction(source.toString(`utf8`), [`exports`, `require`, `module`, `__filename`, `__dirname`], {filename: configPath});
    return true;
  } catch {
    // Not valid CommonJS: import() either loads it as a module or reports the real syntax error.
    return false;
  }
}

function nearestPackageType(startDir: string): string | undefined {
  for (let dir = startDir; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, `package.json`);
    if (isRegularFile(manifest)) {
      try {
        const type = (JSON.parse(fs.readFileSync(manifest, `utf8`)) as {type?: unknown}).type;
        return typeof type === `string` ? type : undefined;
      } catch {
        return undefined;
      }
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

function describeLoadError(error: unknown): string {
  const message = errorMessage(error);
  if (!(error instanceof SyntaxError) || typeof error.stack !== `string`) return message;
  // V8 puts the location of a module syntax error on the first stack line: "file:///x.js:3".
  const location = /^(?:file:\/\/)?(\/[^\n]*?:\d+)\s*$/m.exec(error.stack);
  return location === null ? message : `${message} (at ${location[1]})`;
}

/** Loads, validates and normalizes the config; throws ConfigError listing every issue. */
export async function loadConfig(options: ConfigLocation): Promise<{config: Config; warnings: ConfigWarning[]; notices: ConfigNotice[]}> {
  const configPath = resolveConfigPath(options);
  const raw = await loadRawConfig(configPath);
  const {config, issues, warnings, notices} = validateConfig(raw, {configPath});
  if (config === null || issues.length > 0) throw new ConfigError(configPath, issues);
  return {config, warnings, notices};
}

/** Like loadConfig, but a missing, unloadable or invalid config is reported as issues instead of thrown. */
export async function validateConfigFile(options: ConfigLocation): Promise<ConfigFileValidation> {
  let configPath: string;
  try {
    configPath = resolveConfigPath(options);
  } catch (error) {
    if (isRollbridgeError(error)) return {path: null, config: null, issues: [issueFromError(error)], warnings: [], notices: []};
    throw error;
  }
  let raw: unknown;
  try {
    raw = await loadRawConfig(configPath);
  } catch (error) {
    if (isRollbridgeError(error)) return {path: configPath, config: null, issues: [issueFromError(error)], warnings: [], notices: []};
    throw error;
  }
  const result = validateConfig(raw, {configPath});
  if (result.config !== null) {
    const pitfalls = findDeployPitfalls(result.config);
    result.issues.push(...pitfalls.issues);
    result.warnings.push(...pitfalls.warnings);
  }
  return {path: configPath, ...result};
}

function issueFromError(error: RollbridgeError): ConfigIssue {
  return {path: ``, message: error.message, fix: error.fix ?? EXPORT_FIX};
}

/** Renders `rollbridge validate` output: human text, or one JSON document with upstream's keys. */
export function formatValidationReport(result: ConfigFileValidation, options: {json: boolean}): ValidationReport {
  const valid = result.config !== null && result.issues.length === 0;
  const exitCode = valid ? 0 : 1;
  if (options.json) {
    const summary = result.config === null ? null : {
      application: result.config.application,
      processes: result.config.processes.length,
      proxy: {host: result.config.proxy.host, port: result.config.proxy.port},
    };
    const document = {config: summary, issues: result.issues, warnings: result.warnings, notices: result.notices, path: result.path, valid};
    return {stdout: `${JSON.stringify(document, null, 2)}\n`, stderr: ``, exitCode};
  }
  const where = result.path === null ? `` : ` in ${result.path}`;
  const notices = result.notices.length === 0 ? `` : formatList(`Found ${plural(result.notices.length, `key`)} of a later rollbridge 0.1.x${where} (accepted, ignored):`, result.notices);
  const warnings = result.warnings.length === 0 ? notices : [formatList(`Found ${plural(result.warnings.length, `warning`)}${where}:`, result.warnings), notices].filter(Boolean).join(`\n`);
  if (valid && result.config !== null) {
    const {config} = result;
    const stdout = `${result.path} is valid: ${plural(config.processes.length, `process`, `processes`)}, proxy on ${config.proxy.host}:${config.proxy.port}.\n`;
    return {stdout, stderr: warnings, exitCode};
  }
  const issues = formatList(`Found ${plural(result.issues.length, `configuration issue`)}${where}:`, result.issues);
  return {stdout: ``, stderr: warnings === `` ? issues : `${issues}\n${warnings}`, exitCode};
}

function formatList(heading: string, entries: ConfigIssue[]): string {
  return `${heading}\n${entries.map((entry, index) => `\n${index + 1}. ${entry.message}\n   Fix: ${entry.fix}\n`).join(``)}`;
}

function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}
