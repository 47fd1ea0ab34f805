import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as t from 'typanion';
import {
  DEFAULT_CLIENT_IDLE_TIMEOUT_MS,
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_HOOK_TIMEOUT_MS,
  DEFAULT_LOG_FILES,
  DEFAULT_LOG_MAX_BYTES,
  DEFAULT_WATCH_MAX_5XX_PERCENT,
  DEFAULT_WATCH_MIN_REQUESTS,
  DEFAULT_WATCH_WINDOW_MS,
  DEFAULT_FORCE_STOP_TIMEOUT_MS,
  DEFAULT_HEALTH_INTERVAL_MS,
  DEFAULT_HEALTH_PATH,
  DEFAULT_HEALTH_PROBE_TIMEOUT_MS,
  DEFAULT_HEALTH_SUCCESS_THRESHOLD,
  DEFAULT_HEALTH_TIMEOUT_MS,
  DEFAULT_LIVENESS_FAILURE_THRESHOLD,
  DEFAULT_LIVENESS_INTERVAL_MS,
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_MEMORY_CHECK_INTERVAL_MS,
  DEFAULT_OUTPUT_LINES,
  DEFAULT_PROXY_HOST,
  DEFAULT_PROXY_PORT,
  DEFAULT_RELEASE_KEEP,
  DEFAULT_RELEASE_MAX_AGE_MS,
  DEFAULT_REQUEST_HEAD_TIMEOUT_MS,
  DEFAULT_RESTART_DELAY_MS,
  DEFAULT_STOP_SIGNAL,
  DEFAULT_TRUST_FORWARDED,
  DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS,
  DEFAULT_CLIENT_BODY_TIMEOUT_MS,
  DEFAULT_CLIENT_SEND_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_METRICS_HOST,
  DEFAULT_MAX_HELD_REQUESTS,
  DEFAULT_HOLD_TIMEOUT_MS,
  DEFAULT_CANARY_MIN_REQUESTS,
  DEFAULT_CANARY_MAX_5XX_INCREASE_PERCENT,
  DEFAULT_CANARY_MAX_P95_RATIO,
  DEFAULT_CANARY_MIN_P95_INCREASE_MS,
  DEFAULT_UPSTREAM_RESPONSE_TIMEOUT_MS,
  DEFAULT_WS_CLOSE_JITTER_MS,
} from './defaults.ts';
import {getDefaultControlPath, getDefaultLogDir} from './paths.ts';
import {suggest} from './suggest.ts';
import type {Config, ConfigIssue, ConfigNotice, ConfigWarning, DeployStrategy, HealthConfig, HealthType, LivenessConfig, PortRange, ProcessConfig, ProcessPolicy, ProxyConfig, SwitchMode} from './types.ts';

export type ConfigValidationResult = {config: Config | null; issues: ConfigIssue[]; warnings: ConfigWarning[]; notices: ConfigNotice[]};

export const PROCESS_POLICIES: readonly ProcessPolicy[] = [`proxied`, `companion`, `singleton`, `service`];
export const HEALTH_TYPES: readonly HealthType[] = [`http`, `tcp`, `command`, `notify`];
export const DEPLOY_STRATEGIES: readonly DeployStrategy[] = [`persistent`, `handoff`];
export const SWITCH_MODES: readonly SwitchMode[] = [`overlap`, `hold`];

/** Largest delay Node timers honour; a bigger one fires after 1 ms (TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2_147_483_647;
const MAX_PORT = 65_535;
const WILDCARD_HOSTS = new Set([`0.0.0.0`, `::`, `::0`, `0:0:0:0:0:0:0:0`]);

/** Typanion's state, extended with our structured sinks (typanion copies unknown state fields to nested states). */
type SchemaState = t.ValidationState & {issues?: ConfigIssue[]; warnings?: ConfigWarning[]; notices?: ConfigNotice[]};
type Validator<T> = t.StrictValidator<unknown, T>;
type ShapeOf<S> = {[K in keyof S]: t.InferType<S[K]>};

// ---------------------------------------------------------------------------------------------
// Building blocks: every failure becomes one ConfigIssue with the key path, the value and a fix.
// ---------------------------------------------------------------------------------------------

function keyPathOf(state: t.ValidationState | undefined): string {
  const p = state?.p ?? ``;
  return p.startsWith(`.`) ? p.slice(1) : p;
}

function labelOf(keyPath: string): string {
  return keyPath === `` ? `the config` : keyPath;
}

function joinKey(parent: string, key: string): string {
  if (!/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent === `` ? key : `${parent}.${key}`;
}

function fail(state: SchemaState | undefined, message: string, fix: string): false {
  state?.issues?.push({path: keyPathOf(state), message, fix});
  return false;
}

function printable(value: unknown): string {
  if (value === undefined) return `undefined`;
  if (typeof value === `function`) return `a function`;
  if (typeof value === `bigint`) return `${value}n`;
  if (typeof value === `symbol`) return value.toString();
  if (typeof value === `number` && !Number.isFinite(value)) return String(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === `object` && value !== null && !Array.isArray(value);
}

function expectation(state: SchemaState | undefined, expected: string, value: unknown): false {
  const keyPath = labelOf(keyPathOf(state));
  return fail(state, `Expected ${keyPath} to be ${expected}, got ${printable(value)}`, `Set ${keyPath} to ${expected}`);
}

function leaf<T>(expected: string, test: (value: unknown) => boolean): Validator<T> {
  return t.makeValidator<unknown, T>({
    test: (value, state): value is T => test(value) || expectation(state, expected, value),
  });
}

/** Absent (or null) is fine: the default applies. */
function optional<T>(validator: Validator<T>): Validator<T | undefined | null> {
  return t.makeValidator<unknown, T | undefined | null>({
    test: (value, state): value is T | undefined | null => value === undefined || value === null || validator(value, state),
  });
}

function required<T>(validator: Validator<T>, fix: (keyPath: string) => string): Validator<T> {
  return t.makeValidator<unknown, T>({
    test: (value, state): value is T => {
      if (value !== undefined) return validator(value, state);
      const keyPath = keyPathOf(state);
      return fail(state, `Missing required key "${keyPath}"`, fix(keyPath));
    },
  });
}

/**
 * Keys that configs written for rollbridge 0.1.x after 0.1.21 may hold (upstream-0.1.21.md §9). They load
 * unchanged and are ignored, with one notice (not a warning on every command): what they did is built in,
 * or has no equivalent here.
 */
const LATER_UPSTREAM_KEYS: ReadonlyArray<{pattern: RegExp; why: string}> = [
  {pattern: /^ownerRecovery$/, why: `the daemon re-adopts its processes after a crash by itself (statePath), no guardian process is needed`},
  {pattern: /^processes\[\d+\]\.lifecycle\.activateCommand$/, why: `release-scoped handoff coordinators are not supported; the handoff service starts as a normal process`},
];

/** Unknown keys are warnings with a did-you-mean, never issues: a typo must not stop a deploy. */
function warnUnknownKeys(known: readonly string[]): Validator<Record<string, unknown>> {
  return t.makeValidator<unknown, Record<string, unknown>>({
    test: (extra, state): extra is Record<string, unknown> => {
      const parent = keyPathOf(state);
      for (const key of Object.keys(extra as object)) {
        const keyPath = joinKey(parent, key);
        const later = LATER_UPSTREAM_KEYS.find(({pattern}) => pattern.test(keyPath));
        if (later !== undefined) {
          (state as SchemaState | undefined)?.notices?.push({path: keyPath, message: `"${keyPath}" comes from a later rollbridge 0.1.x and is ignored: ${later.why}`, fix: `Remove ${keyPath} from the config once no rollbridge 0.1 reads it`});
          continue;
        }
        const suggestion = suggest(key, known);
        const fix = suggestion === undefined
          ? `Remove the key: ${parent === `` ? `the top level` : parent} only knows ${known.join(`, `)}`
          : `Did you mean "${joinKey(parent, suggestion)}"? Remove the key if it is not a typo.`;
        (state as SchemaState | undefined)?.warnings?.push({path: keyPath, message: `Unknown key "${keyPath}"`, fix});
      }
      return true;
    },
  });
}

function objectOf<S extends Record<string, t.AnyStrictValidator>>(shape: S, example: string): Validator<ShapeOf<S>> {
  const inner = t.isObject(shape, {extra: warnUnknownKeys(Object.keys(shape))});
  return t.makeValidator<unknown, ShapeOf<S>>({
    test: (value, state): value is ShapeOf<S> => {
      if (isPlainObject(value)) return inner(value, state);
      const keyPath = labelOf(keyPathOf(state));
      return fail(state, `Expected ${keyPath} to be an object, got ${printable(value)}`, `Set ${keyPath} to an object such as ${example}`);
    },
  });
}

function arrayOf<T>(item: Validator<T>, expected: string, options: {nonEmpty?: boolean} = {}): Validator<T[]> {
  const inner = t.isArray(item);
  return t.makeValidator<unknown, T[]>({
    test: (value, state): value is T[] => {
      if (!Array.isArray(value) || (options.nonEmpty === true && value.length === 0)) return expectation(state, expected, value);
      return inner(value, state);
    },
  });
}

const isFiniteNumber = (value: unknown): value is number => typeof value === `number` && Number.isFinite(value);

const nonEmptyString = leaf<string>(`a non-empty string`, (value) => typeof value === `string` && value !== ``);
const aString = leaf<string>(`a string`, (value) => typeof value === `string`);
const aBoolean = leaf<boolean>(`true or false`, (value) => typeof value === `boolean`);
const positiveInteger = leaf<number>(`a positive integer`, (value) => Number.isSafeInteger(value) && (value as number) > 0);
const nonNegativeInteger = leaf<number>(`a non-negative integer`, (value) => Number.isSafeInteger(value) && (value as number) >= 0);
const nonNegativeNumber = leaf<number>(`a non-negative number`, (value) => isFiniteNumber(value) && value >= 0);
const timerMs = leaf<number>(`a number of milliseconds from 0 to ${MAX_TIMER_MS}`, (value) => isFiniteNumber(value) && value >= 0 && value <= MAX_TIMER_MS);
const positiveTimerMs = leaf<number>(`a number of milliseconds from 1 to ${MAX_TIMER_MS}`, (value) => isFiniteNumber(value) && value > 0 && value <= MAX_TIMER_MS);
const portNumber = leaf<number>(`an integer port from 0 to ${MAX_PORT}`, (value) => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_PORT);
const urlPath = leaf<string>(`a URL path starting with "/"`, (value) => typeof value === `string` && value.startsWith(`/`));
const ratioAtLeastOne = leaf<number>(`a number greater than or equal to 1`, (value) => isFiniteNumber(value) && value >= 1);
const backoffFactor = leaf<number>(`a number greater than or equal to 1`, (value) => isFiniteNumber(value) && value >= 1);
const gracefulStop = leaf<number | `indefinite`>(`a number of milliseconds from 0 to ${MAX_TIMER_MS}, or "indefinite"`, (value) => value === `indefinite` || (isFiniteNumber(value) && value >= 0 && value <= MAX_TIMER_MS));
const userOrGroup = leaf<string | number>(`a non-negative integer id or a name`, (value) => (Number.isSafeInteger(value) && (value as number) >= 0) || (typeof value === `string` && value.trim() !== ``));
const trustedPeer = leaf<string>(`"loopback" or an IP address`, (value) => value === `loopback` || (typeof value === `string` && net.isIP(value) !== 0));
/** `metrics.listen`: a port, or host:port with an IP address (IPv6 in brackets) or `localhost`; never port 0. */
const listenAddress = leaf<number | string>(`a port from 1 to ${MAX_PORT} or "host:port" with an IP address or localhost, such as 9464 or "127.0.0.1:9464"`, (value) => parseListenAddress(value) !== undefined);
const fileMode = leaf<number | string>(`an octal file mode from 0 to 0o777, such as 0o660 or "660"`, (value) => parseFileMode(value) !== undefined);

function oneOf<T extends string>(values: readonly T[]): Validator<T> {
  return leaf<T>(`one of: ${values.join(`, `)}`, (value) => (values as readonly unknown[]).includes(value));
}

const signalName = t.makeValidator<unknown, NodeJS.Signals>({
  test: (value, state): value is NodeJS.Signals => {
    if (typeof value === `string` && Object.hasOwn(os.constants.signals, value)) return true;
    const keyPath = keyPathOf(state);
    return fail(state, `Expected ${keyPath} to be a signal name, got ${printable(value)}`, `Set ${keyPath} to a signal name such as "SIGTERM", "SIGINT", "SIGQUIT" or "SIGUSR2"`);
  },
});

const stringValues = t.makeValidator<unknown, Record<string, string>>({
  test: (value, state): value is Record<string, string> => {
    if (!isPlainObject(value)) return expectation(state, `an object of string values, such as {NODE_ENV: "production"}`, value);
    let valid = true;
    for (const [key, entry] of Object.entries(value)) {
      if (typeof entry === `string`) continue;
      const keyPath = joinKey(keyPathOf(state), key);
      valid = fail({...state, p: `.${keyPath}`}, `Expected ${keyPath} to be a string, got ${printable(entry)}`, `Quote the value of ${keyPath} (environment values are strings), e.g. ${JSON.stringify(String(entry))}`) && valid;
    }
    return valid;
  },
});

const portRange = objectOf({from: required(portNumber, (p) => `Add ${p}, the first port of the range`), to: optional(portNumber)}, `{from: 4000, to: 4009}`);

const portSpec = t.makeValidator<unknown, number | {from: number; to?: number | null | undefined}>({
  test: (value, state): value is number => {
    if (typeof value === `number`) return portNumber(value, state);
    if (!isPlainObject(value)) return expectation(state, `a port (integer from 0 to ${MAX_PORT}) or a {from, to} range`, value);
    if (!portRange(value, state)) return false;
    const {from, to} = value as {from: number; to?: number | null};
    if (to === undefined || to === null || to >= from) return true;
    const keyPath = keyPathOf(state);
    return fail(state, `Port range ${keyPath} is reversed: from ${from} is above to ${to}`, `Set ${keyPath}.to to a port greater than or equal to ${keyPath}.from (${from})`);
  },
});

// ---------------------------------------------------------------------------------------------
// The known keys. One line per field: adding a config field starts here (unknown keys warn).
// ---------------------------------------------------------------------------------------------

const livenessShape = {
  intervalMs: optional(positiveTimerMs),
  probeTimeoutMs: optional(positiveTimerMs),
  failureThreshold: optional(positiveInteger),
};
const livenessObject = objectOf(livenessShape, `{intervalMs: 5000, failureThreshold: 3}`);

const healthShape = {
  type: optional(oneOf(HEALTH_TYPES)),
  path: optional(urlPath),
  command: optional(nonEmptyString),
  timeoutMs: optional(timerMs),
  intervalMs: optional(timerMs),
  startDelayMs: optional(timerMs),
  probeTimeoutMs: optional(positiveTimerMs),
  successThreshold: optional(positiveInteger),
  liveness: optional(livenessObject),
};

const lifecycleShape = {
  quietCommand: optional(aString),
  drainCommand: optional(aString),
  stopCommand: optional(aString),
  drainTimeoutMs: optional(timerMs),
};

const restartShape = {
  maxRestarts: optional(nonNegativeInteger),
  windowMs: optional(nonNegativeNumber),
  backoffFactor: optional(backoffFactor),
  maxDelayMs: optional(timerMs),
};

const memoryShape = {
  limitBytes: required(positiveInteger, (p) => `Add ${p}, the resident memory in bytes above which the process is restarted`),
  warnBytes: optional(nonNegativeInteger),
  checkIntervalMs: optional(positiveTimerMs),
};

const accessLogObject = objectOf({
  path: required(nonEmptyString, (p) => `Add ${p}, the file the access log is written to`),
  includeQuery: optional(aBoolean),
}, `{path: "/var/log/app/access.log", includeQuery: false}`);

const healthObject = objectOf(healthShape, `{path: "/ping", timeoutMs: 30000}`);
const healthSpec = t.makeValidator<unknown, false | ShapeOf<typeof healthShape>>({
  test: (value, state): value is false | ShapeOf<typeof healthShape> => {
    if (value === false) return true;
    if (isPlainObject(value)) return healthObject(value, state);
    const keyPath = keyPathOf(state);
    return fail(state, `Expected ${keyPath} to be an object or false, got ${printable(value)}`, `Set ${keyPath} to an object such as {path: "/ping"}, or to false to disable the health check`);
  },
});

const readinessShape = {
  http: optional(urlPath),
  tcp: optional(aBoolean),
  command: optional(nonEmptyString),
  timeoutMs: optional(timerMs),
  intervalMs: optional(timerMs),
  probeTimeoutMs: optional(positiveTimerMs),
  successThreshold: optional(positiveInteger),
  liveness: optional(livenessObject),
};

const processShape = {
  id: required(nonEmptyString, (p) => `Add ${p}, a unique name for the process such as "web"`),
  command: required(nonEmptyString, (p) => `Add ${p}, the shell command that starts the process`),
  policy: optional(oneOf(PROCESS_POLICIES)),
  deployStrategy: optional(oneOf(DEPLOY_STRATEGIES)),
  switch: optional(oneOf(SWITCH_MODES)),
  holdTimeoutMs: optional(positiveTimerMs),
  cwd: optional(nonEmptyString),
  env: optional(stringValues),
  port: optional(portSpec),
  health: optional(healthSpec),
  stopSignal: optional(signalName),
  nonBlockingDrain: optional(aBoolean),
  lifecycle: optional(objectOf(lifecycleShape, `{drainCommand: "kill -TSTP $ROLLBRIDGE_PID", drainTimeoutMs: 30000}`)),
  gracefulStopMs: optional(gracefulStop),
  restartDelayMs: optional(timerMs),
  restart: optional(objectOf(restartShape, `{maxRestarts: 5, windowMs: 60000}`)),
  memory: optional(objectOf(memoryShape, `{limitBytes: 536870912}`)),
  replicas: optional(positiveInteger),
  outputLines: optional(positiveInteger),
  readiness: optional(objectOf(readinessShape, `{http: "/ready"} or {tcp: true} or {command: "pg_isready"}`)),
  dependsOn: optional(arrayOf(nonEmptyString, `an array of process ids`)),
};

const controlShape = {
  path: optional(nonEmptyString),
  mode: optional(fileMode),
  owner: optional(userOrGroup),
  group: optional(userOrGroup),
};

const proxyShape = {
  host: optional(nonEmptyString),
  port: optional(portNumber),
  upstreamHost: optional(nonEmptyString),
  healthPath: optional(urlPath),
  healthTimeoutMs: optional(timerMs),
  drainTimeoutMs: optional(timerMs),
  forceStopTimeoutMs: optional(timerMs),
  trustForwarded: optional(arrayOf(trustedPeer, `an array of "loopback" or IP addresses`)),
  maxHeaderBytes: optional(positiveInteger),
  requestHeadTimeoutMs: optional(timerMs),
  clientIdleTimeoutMs: optional(timerMs),
  upstreamResponseTimeoutMs: optional(timerMs),
  upstreamIdleTimeoutMs: optional(timerMs),
  clientBodyTimeoutMs: optional(timerMs),
  clientSendTimeoutMs: optional(timerMs),
  maxConnections: optional(positiveInteger),
  maxHeldRequests: optional(positiveInteger),
  wsCloseJitterMs: optional(timerMs),
  accessLog: optional(t.makeValidator<unknown, string | {path: string; includeQuery?: boolean | null | undefined}>({
    test: (value, state): value is string => {
      if (typeof value === `string`) return nonEmptyString(value, state);
      if (isPlainObject(value)) return accessLogObject(value, state);
      return expectation(state, `a file path or an object such as {path: "/var/log/app/access.log", includeQuery: false}`, value);
    },
  })),
};

const metricsShape = {
  listen: optional(listenAddress),
};

const releaseRetentionShape = {
  keep: optional(nonNegativeInteger),
  maxAgeMs: optional(nonNegativeNumber),
};

const legacyProcessShape = {
  name: optional(nonEmptyString),
  includes: required(arrayOf(nonEmptyString, `a non-empty array of command-line substrings`, {nonEmpty: true}), (p) => `Add ${p}, the command-line substrings that identify the legacy process, e.g. ["puma", "/srv/app"]`),
};

const legacyTakeoverShape = {
  screens: optional(arrayOf(nonEmptyString, `an array of screen session names`)),
  processes: optional(arrayOf(objectOf(legacyProcessShape, `{name: "puma", includes: ["puma"]}`), `an array of {name, includes} matchers`)),
  forceStopTimeoutMs: optional(timerMs),
  user: optional(userOrGroup),
};

const hooksShape = {
  beforeSwitch: optional(aString),
  afterSwitch: optional(aString),
  timeoutMs: optional(positiveTimerMs),
};

const watchShape = {
  windowMs: optional(timerMs),
  max5xxPercent: optional(nonNegativeNumber),
  minRequests: optional(nonNegativeInteger),
};

const canaryShape = {
  minRequests: optional(positiveInteger),
  max5xxIncreasePercent: optional(nonNegativeNumber),
  maxP95Ratio: optional(ratioAtLeastOne),
  minP95IncreaseMs: optional(nonNegativeNumber),
};

const logsShape = {
  dir: optional(nonEmptyString),
  maxBytes: optional(positiveInteger),
  files: optional(nonNegativeInteger),
};

const configShape = {
  application: optional(nonEmptyString),
  control: optional(objectOf(controlShape, `{path: "/run/rollbridge/app.sock"}`)),
  proxy: required(objectOf(proxyShape, `{host: "127.0.0.1", port: 8182}`), (p) => `Add ${p}: {} (an empty object listens on ${DEFAULT_PROXY_HOST}:${DEFAULT_PROXY_PORT})`),
  processes: required(arrayOf(objectOf(processShape, `{id: "web", command: "node server.js", policy: "proxied", port: 3000}`), `an array of processes`), (p) => `Add ${p}: [...] listing the app's processes, with exactly one policy: "proxied" process`),
  releaseRetention: optional(objectOf(releaseRetentionShape, `{keep: 10}`)),
  statePath: optional(nonEmptyString),
  eventsPath: optional(nonEmptyString),
  legacyTakeover: optional(objectOf(legacyTakeoverShape, `{screens: ["app"]}`)),
  hooks: optional(objectOf(hooksShape, `{beforeSwitch: "npm run migrate", timeoutMs: 300000}`)),
  watch: optional(objectOf(watchShape, `{windowMs: 30000, max5xxPercent: 10}`)),
  canary: optional(objectOf(canaryShape, `{minRequests: 50, max5xxIncreasePercent: 1}`)),
  logs: optional(objectOf(logsShape, `{dir: "/var/log/app", maxBytes: 10485760, files: 3}`)),
  metrics: optional(objectOf(metricsShape, `{listen: "127.0.0.1:9464"}`)),
};

const isRawConfig = objectOf(configShape, `{proxy: {}, processes: [...]}`);

type RawConfig = ShapeOf<typeof configShape>;
type RawProcess = ShapeOf<typeof processShape>;
type RawProxy = ShapeOf<typeof proxyShape>;

// ---------------------------------------------------------------------------------------------
// Validation entry point
// ---------------------------------------------------------------------------------------------

/**
 * Validates a raw config (what the config module exported) and applies every default.
 * Collects every issue at once; `config` is null when there is any. Unknown keys are warnings.
 */
export function validateConfig(raw: unknown, options: {configPath: string}): ConfigValidationResult {
  const issues: ConfigIssue[] = [];
  const warnings: ConfigWarning[] = [];
  const notices: ConfigNotice[] = [];
  // Typanion reports its own failures (e.g. `__proto__` keys) as strings here; ours are structured.
  const errors: string[] = [];
  const valid = isRawConfig(raw, {errors, issues, warnings, notices} as SchemaState);
  for (const error of errors) issues.push(fromTypanionError(error));
  if (isPlainObject(raw)) checkCrossFieldRules(raw, issues, warnings);
  notices.sort((left, right) => left.path.localeCompare(right.path));
  if (!valid || issues.length > 0) return {config: null, issues, warnings, notices};
  return {config: normalizeConfig(raw as RawConfig, options.configPath), issues, warnings, notices};
}

function fromTypanionError(error: string): ConfigIssue {
  const separator = error.indexOf(`: `);
  const keyPath = keyPathOf({p: separator === -1 ? `` : error.slice(0, separator)});
  const reason = separator === -1 ? error : error.slice(separator + 2);
  return {path: keyPath, message: `Invalid ${labelOf(keyPath)}: ${reason}`, fix: `Remove or rename ${labelOf(keyPath)}`};
}

/** Parses control.mode: an integer 0..0o777, or 1-4 octal digits with an optional `0o` prefix. */
export function parseFileMode(value: unknown): number | undefined {
  if (typeof value === `number`) return Number.isInteger(value) && value >= 0 && value <= 0o777 ? value : undefined;
  if (typeof value !== `string`) return undefined;
  const match = /^(?:0o)?([0-7]{1,4})$/i.exec(value);
  if (match === null) return undefined;
  const mode = Number.parseInt(match[1]!, 8);
  return mode <= 0o777 ? mode : undefined;
}

export function isWildcardHost(host: string): boolean {
  return WILDCARD_HOSTS.has(host);
}

// ---------------------------------------------------------------------------------------------
// Cross-field rules (they run on the raw value, and skip fields whose type is already wrong)
// ---------------------------------------------------------------------------------------------

function checkCrossFieldRules(raw: Record<string, unknown>, issues: ConfigIssue[], warnings: ConfigWarning[]): void {
  if (Array.isArray(raw[`processes`])) checkProcesses(raw[`processes`], issues, warnings);
  const legacy = raw[`legacyTakeover`];
  if (isPlainObject(legacy)) {
    const screens = Array.isArray(legacy[`screens`]) ? legacy[`screens`].length : 0;
    const matchers = Array.isArray(legacy[`processes`]) ? legacy[`processes`].length : 0;
    if (screens === 0 && matchers === 0) {
      issues.push({
        path: `legacyTakeover`,
        message: `No screen or process matcher in legacyTakeover`,
        fix: `Add legacyTakeover.screens (screen session names) or legacyTakeover.processes ([{includes: ["..."]}]), or remove legacyTakeover`,
      });
    }
  }
}

function checkProcesses(processes: unknown[], issues: ConfigIssue[], warnings: ConfigWarning[]): void {
  const firstIndexById = new Map<string, number>();
  const proxied: Array<{index: number; label: string}> = [];

  processes.forEach((entry, index) => {
    if (!isPlainObject(entry)) return;
    const at = `processes[${index}]`;
    const id = typeof entry[`id`] === `string` && entry[`id`] !== `` ? entry[`id`] : undefined;
    const label = id === undefined ? `Process ${at}` : `Process "${id}"`;
    const policy = entry[`policy`] === undefined || entry[`policy`] === null
      ? `companion`
      : (PROCESS_POLICIES as readonly unknown[]).includes(entry[`policy`]) ? entry[`policy`] as ProcessPolicy : undefined;
    const port = normalizePortValue(entry[`port`]);
    const hasPort = entry[`port`] !== undefined && entry[`port`] !== null;

    if (id !== undefined) {
      if (id.includes(`#`)) {
        issues.push({path: `${at}.id`, message: `Process id "${id}" contains "#"`, fix: `Rename ${at}.id without "#" (rollbridge names replicas "<id>#<n>")`});
      }
      const first = firstIndexById.get(id);
      if (first === undefined) {
        firstIndexById.set(id, index);
      } else {
        issues.push({path: `${at}.id`, message: `Duplicate process id "${id}" in processes[${first}] and ${at}`, fix: `Rename ${at}.id to an id no other process uses`});
      }
    }

    if (policy === `proxied`) {
      proxied.push({index, label: id ?? at});
      if (!hasPort) {
        issues.push({path: `${at}.port`, message: `Proxied process ${id === undefined ? at : `"${id}"`} has no port`, fix: `Set ${at}.port to the port the process listens on (e.g. 3000, or {from: 3000, to: 3009})`});
      }
    }

    if (entry[`switch`] === `hold` && policy !== `proxied`) {
      issues.push({path: `${at}.switch`, message: `${label} sets switch "hold" but its policy is "${policy ?? `companion`}"; only the proxied process is switched`, fix: `Remove ${at}.switch, or set it on the process with policy "proxied"`});
    }
    if (entry[`holdTimeoutMs`] !== undefined && entry[`switch`] !== `hold`) {
      issues.push({path: `${at}.holdTimeoutMs`, message: `${label} sets holdTimeoutMs but not switch "hold"`, fix: `Set ${at}.switch to "hold", or remove ${at}.holdTimeoutMs`});
    }

    if (entry[`deployStrategy`] === `handoff`) {
      if (policy !== undefined && policy !== `service`) {
        issues.push({path: `${at}.deployStrategy`, message: `${label} sets deployStrategy "handoff" but its policy is "${policy}"; only a service can hand off`, fix: `Set ${at}.policy to "service", or remove ${at}.deployStrategy`});
      } else if (policy === `service`) {
        if (!hasPort) {
          issues.push({path: `${at}.port`, message: `Handoff service ${id === undefined ? at : `"${id}"`} has no port range`, fix: `Set ${at}.port to a range of at least two ports, e.g. {from: 4100, to: 4101}`});
        } else if (port !== undefined && port.from !== 0 && port.to <= port.from) {
          // 0 = an OS-assigned port per instance, which never collides.
          issues.push({path: `${at}.port`, message: `Handoff service ${id === undefined ? at : `"${id}"`} uses the single port ${port.from}; old and new service must run side by side`, fix: `Set ${at}.port to a range of at least two ports, e.g. {from: ${port.from}, to: ${Math.min(port.from + 1, MAX_PORT)}}`});
        }
      }
    }

    if (entry[`nonBlockingDrain`] === true && policy !== undefined && policy !== `companion`) {
      issues.push({path: `${at}.nonBlockingDrain`, message: `${label} sets nonBlockingDrain but its policy is "${policy}"; only companions drain without blocking`, fix: `Remove ${at}.nonBlockingDrain, or set ${at}.policy to "companion"`});
    }

    const replicas = entry[`replicas`];
    if (Number.isSafeInteger(replicas) && (replicas as number) > 1 && policy !== undefined && policy !== `proxied` && (policy !== `companion` || hasPort)) {
      const why = policy === `companion` ? `it has a port` : `its policy is "${policy}"`;
      issues.push({path: `${at}.replicas`, message: `${label} sets replicas ${replicas as number} but ${why}; only the proxied process and companions without a port run replicas`, fix: `Set ${at}.replicas to 1, or make it a companion without ${at}.port`});
    }
    if (Number.isSafeInteger(replicas) && (replicas as number) > 1 && policy === `proxied` && hasPort) {
      // Every replica needs its own port, and a deploy or rolling restart runs old and new side by side.
      const range = normalizePortValue(entry[`port`]);
      const size = range && range.from !== 0 && range.to !== 0 ? range.to - range.from + 1 : Infinity;
      if (size < (replicas as number) * 2) {
        issues.push({path: `${at}.port`, message: `${label} runs ${replicas as number} replicas but ${at}.port holds only ${size} port(s); a deploy needs ${(replicas as number) * 2} (old and new replicas side by side)`, fix: `Widen ${at}.port to at least ${(replicas as number) * 2} ports, or use {from: 0, to: 0} for OS-assigned ports`});
      }
    }

    const lifecycle = isPlainObject(entry[`lifecycle`]) ? entry[`lifecycle`] : {};
    const stopSignal = entry[`stopSignal`];
    if (typeof lifecycle[`stopCommand`] === `string` && lifecycle[`stopCommand`] !== `` && typeof stopSignal === `string` && stopSignal !== DEFAULT_STOP_SIGNAL) {
      issues.push({path: `${at}.stopSignal`, message: `${label} sets both lifecycle.stopCommand and stopSignal "${stopSignal}"; the stop command replaces the signal`, fix: `Remove ${at}.stopSignal, or remove ${at}.lifecycle.stopCommand`});
    }
    const drainTimeoutMs = lifecycle[`drainTimeoutMs`];
    if (typeof lifecycle[`drainCommand`] === `string` && lifecycle[`drainCommand`] !== `` && (drainTimeoutMs === undefined || drainTimeoutMs === null || drainTimeoutMs === 0)) {
      issues.push({path: `${at}.lifecycle.drainTimeoutMs`, message: `${label} sets lifecycle.drainCommand but lifecycle.drainTimeoutMs is ${printable(drainTimeoutMs ?? 0)}`, fix: `Set ${at}.lifecycle.drainTimeoutMs to how long the drain may take in milliseconds, e.g. 30000`});
    }

    const memory = entry[`memory`];
    if (isPlainObject(memory) && Number.isSafeInteger(memory[`limitBytes`]) && Number.isSafeInteger(memory[`warnBytes`])) {
      const limitBytes = memory[`limitBytes`] as number;
      const warnBytes = memory[`warnBytes`] as number;
      if (warnBytes > 0 && warnBytes >= limitBytes) {
        warnings.push({path: `${at}.memory.warnBytes`, message: `${label} memory.warnBytes ${warnBytes} is not below memory.limitBytes ${limitBytes}, so the warning never comes before the restart`, fix: `Set ${at}.memory.warnBytes below ${limitBytes}, or remove it`});
      }
    }
  });

  checkReadinessAndDependencies(processes, firstIndexById, issues);
  checkHealthTypes(processes, issues);

  if (proxied.length !== 1) {
    const found = proxied.length === 0 ? `found none` : `found ${proxied.length} (${proxied.map((entry) => entry.label).join(`, `)})`;
    const fix = proxied.length === 0
      ? `Set policy: "proxied" on the process that serves HTTP (one entry of processes)`
      : `Keep policy: "proxied" on one process and set ${proxied.slice(1).map((entry) => `processes[${entry.index}].policy`).join(`, `)} to "companion", "singleton" or "service"`;
    issues.push({path: `processes`, message: `Config must define exactly one proxied process, ${found}`, fix});
  }
}

/** `health.type` and the keys it needs: `command` names its command, liveness needs a check it can repeat. */
function checkHealthTypes(processes: unknown[], issues: ConfigIssue[]): void {
  processes.forEach((entry, index) => {
    if (!isPlainObject(entry) || !isPlainObject(entry[`health`])) return;
    const at = `processes[${index}].health`;
    const health = entry[`health`];
    const type = health[`type`] ?? `http`;
    if (type === `command` && health[`command`] == null) {
      issues.push({path: `${at}.command`, message: `Health check ${at} has type "command" but no ${at}.command`, fix: `Set ${at}.command to a shell command that exits 0 when the process is healthy, e.g. "curl -fsS http://127.0.0.1:$ROLLBRIDGE_PORT/ping"`});
    }
    if (health[`command`] != null && type !== `command`) {
      issues.push({path: `${at}.command`, message: `Health check key ${at}.command is set but ${at}.type is "${String(type)}", so the command would never run`, fix: `Set ${at}.type to "command", or remove ${at}.command`});
    }
    if (type === `notify` && health[`liveness`] != null) {
      issues.push({path: `${at}.liveness`, message: `Liveness check ${at}.liveness needs a check it can repeat, but ${at}.type "notify" only reports readiness once`, fix: `Use ${at}.type "http", "tcp" or "command" with ${at}.liveness, or remove ${at}.liveness`});
    }
    if (health[`path`] != null && type !== `http`) {
      issues.push({path: `${at}.path`, message: `Health check key ${at}.path is set but ${at}.type is "${String(type)}", so the path would never be probed`, fix: `Set ${at}.type to "http", or remove ${at}.path`});
    }
  });
}

// When each policy starts: a process may only depend on processes that start before it.
const START_STAGE: Record<ProcessPolicy, number> = {service: 0, companion: 1, proxied: 2, singleton: 3};

function checkReadinessAndDependencies(processes: unknown[], indexById: Map<string, number>, issues: ConfigIssue[]): void {
  const policyOf = (entry: Record<string, unknown>): ProcessPolicy | undefined => entry[`policy`] == null
    ? `companion`
    : (PROCESS_POLICIES as readonly unknown[]).includes(entry[`policy`]) ? entry[`policy`] as ProcessPolicy : undefined;
  const stageOf = (entry: Record<string, unknown>): number | undefined => {
    const policy = policyOf(entry);
    if (policy === undefined) return undefined;
    return policy === `service` && entry[`deployStrategy`] === `handoff` ? 0.5 : START_STAGE[policy];
  };
  processes.forEach((entry, index) => {
    if (!isPlainObject(entry)) return;
    const at = `processes[${index}]`;
    const readiness = entry[`readiness`];
    if (isPlainObject(readiness)) {
      const kinds = [`http`, `tcp`, `command`].filter((kind) => readiness[kind] != null && readiness[kind] !== false);
      if (kinds.length !== 1) {
        issues.push({path: `${at}.readiness`, message: `Readiness check ${at}.readiness must name exactly one check (http, tcp or command), found ${kinds.length === 0 ? `none` : kinds.join(` and `)}`, fix: `Set one of ${at}.readiness.http ("/ready"), ${at}.readiness.tcp (true) or ${at}.readiness.command ("pg_isready")`});
      }
      if ((kinds.includes(`http`) || kinds.includes(`tcp`)) && (entry[`port`] == null)) {
        issues.push({path: `${at}.readiness`, message: `Readiness check ${at}.readiness.${kinds[0]} probes the process's port, but ${at} has no port`, fix: `Set ${at}.port, or use ${at}.readiness.command`});
      }
      if (policyOf(entry) === `proxied`) {
        issues.push({path: `${at}.readiness`, message: `The proxied process ${at} uses ${at}.health, not readiness`, fix: `Move the check to ${at}.health ({path: "/ready"}) and remove ${at}.readiness`});
      }
    }
    const dependsOn = entry[`dependsOn`];
    if (!Array.isArray(dependsOn)) return;
    const stage = stageOf(entry);
    for (const dependency of dependsOn) {
      if (typeof dependency !== `string`) continue;
      const target = indexById.get(dependency);
      if (target === undefined) {
        issues.push({path: `${at}.dependsOn`, message: `Dependency "${dependency}" in ${at}.dependsOn is not a process id`, fix: `Use one of: ${[...indexById.keys()].join(`, `)}`});
        continue;
      }
      if (target === index) {
        issues.push({path: `${at}.dependsOn`, message: `Process ${at} depends on itself`, fix: `Remove "${dependency}" from ${at}.dependsOn`});
        continue;
      }
      const targetEntry = processes[target] as Record<string, unknown>;
      const targetStage = stageOf(targetEntry);
      if (stage !== undefined && targetStage !== undefined && targetStage > stage) {
        issues.push({path: `${at}.dependsOn`, message: `Process ${at} (${policyOf(entry)}) depends on "${dependency}" (${policyOf(targetEntry)}), which starts after it: services start first, then handoff services, companions, the proxied process, and singletons after the switch`, fix: `Remove "${dependency}" from ${at}.dependsOn, or change one of the policies`});
      }
    }
  });
  // Cycles (within a stage; across stages the rule above already refuses them).
  const edges = new Map<string, string[]>();
  processes.forEach((entry) => {
    if (isPlainObject(entry) && typeof entry[`id`] === `string` && Array.isArray(entry[`dependsOn`])) {
      edges.set(entry[`id`], (entry[`dependsOn`] as unknown[]).filter((value): value is string => typeof value === `string`));
    }
  });
  const state = new Map<string, `visiting` | `done`>();
  const visit = (id: string, trail: string[]): string[] | null => {
    if (state.get(id) === `done`) return null;
    if (state.get(id) === `visiting`) return [...trail.slice(trail.indexOf(id)), id];
    state.set(id, `visiting`);
    for (const next of edges.get(id) ?? []) {
      const cycle = visit(next, [...trail, id]);
      if (cycle) return cycle;
    }
    state.set(id, `done`);
    return null;
  };
  for (const id of edges.keys()) {
    const cycle = visit(id, []);
    if (cycle) {
      issues.push({path: `processes[${indexById.get(id) ?? 0}].dependsOn`, message: `Dependencies form a cycle: ${cycle.join(` → `)}`, fix: `Remove one of these dependencies so the processes can start in order`});
      break;
    }
  }
}

function normalizePortValue(value: unknown): PortRange | undefined {
  if (typeof value === `number` && Number.isInteger(value)) return {from: value, to: value};
  if (!isPlainObject(value) || !Number.isInteger(value[`from`])) return undefined;
  const from = value[`from`] as number;
  const to = Number.isInteger(value[`to`]) ? value[`to`] as number : from;
  return {from, to};
}

// ---------------------------------------------------------------------------------------------
// Normalization: a valid raw config with every default applied
// ---------------------------------------------------------------------------------------------

function normalizeConfig(raw: RawConfig, configPath: string): Config {
  const configDir = path.dirname(configPath);
  const application = raw.application ?? (path.basename(configDir) || `app`);
  const proxy = normalizeProxy(raw.proxy);
  const control = orEmpty(raw.control);
  const retention = orEmpty(raw.releaseRetention);
  const legacy = raw.legacyTakeover ?? undefined;
  const hooks = orEmpty(raw.hooks);
  const watch = orEmpty(raw.watch);
  const canary = orEmpty(raw.canary);
  const logs = orEmpty(raw.logs);
  const metrics = orEmpty(raw.metrics);
  const accessLog = raw.proxy.accessLog ?? undefined;
  if (accessLog !== undefined) {
    const entry = typeof accessLog === `string` ? {path: accessLog} : accessLog;
    proxy.accessLog = {path: path.resolve(configDir, entry.path), includeQuery: entry.includeQuery ?? false};
  }
  return {
    configPath,
    application,
    control: {
      path: control.path == null ? getDefaultControlPath(application) : path.resolve(configDir, control.path),
      mode: control.mode == null ? undefined : parseFileMode(control.mode),
      owner: normalizeId(control.owner),
      group: normalizeId(control.group),
    },
    proxy,
    releaseRetention: {keep: retention.keep ?? DEFAULT_RELEASE_KEEP, maxAgeMs: retention.maxAgeMs ?? DEFAULT_RELEASE_MAX_AGE_MS},
    statePath: raw.statePath == null ? undefined : path.resolve(configDir, raw.statePath),
    eventsPath: raw.eventsPath == null ? undefined : path.resolve(configDir, raw.eventsPath),
    legacyTakeover: legacy == null ? undefined : {
      screens: [...(legacy.screens ?? [])],
      processes: (legacy.processes ?? []).map((matcher, index) => ({name: matcher.name ?? `legacy process ${index + 1}`, includes: [...matcher.includes]})),
      forceStopTimeoutMs: legacy.forceStopTimeoutMs ?? proxy.forceStopTimeoutMs,
      ...(legacy.user == null ? {} : {user: normalizeId(legacy.user)}),
    },
    hooks: {
      beforeSwitch: hooks.beforeSwitch || undefined,
      afterSwitch: hooks.afterSwitch || undefined,
      timeoutMs: hooks.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS,
    },
    watch: {
      windowMs: watch.windowMs ?? DEFAULT_WATCH_WINDOW_MS,
      max5xxPercent: watch.max5xxPercent ?? DEFAULT_WATCH_MAX_5XX_PERCENT,
      minRequests: watch.minRequests ?? DEFAULT_WATCH_MIN_REQUESTS,
    },
    canary: {
      minRequests: canary.minRequests ?? DEFAULT_CANARY_MIN_REQUESTS,
      max5xxIncreasePercent: canary.max5xxIncreasePercent ?? DEFAULT_CANARY_MAX_5XX_INCREASE_PERCENT,
      maxP95Ratio: canary.maxP95Ratio ?? DEFAULT_CANARY_MAX_P95_RATIO,
      minP95IncreaseMs: canary.minP95IncreaseMs ?? DEFAULT_CANARY_MIN_P95_INCREASE_MS,
    },
    logs: {
      dir: logs.dir == null ? getDefaultLogDir(application) : path.resolve(configDir, logs.dir),
      maxBytes: logs.maxBytes ?? DEFAULT_LOG_MAX_BYTES,
      files: logs.files ?? DEFAULT_LOG_FILES,
    },
    metrics: {listen: metrics.listen == null ? undefined : parseListenAddress(metrics.listen)},
    processes: raw.processes.map((entry) => normalizeProcess(entry, proxy)),
  };
}

function normalizeProxy(raw: RawProxy): ProxyConfig {
  const host = raw.host ?? DEFAULT_PROXY_HOST;
  return {
    host,
    port: raw.port ?? DEFAULT_PROXY_PORT,
    upstreamHost: raw.upstreamHost ?? (isWildcardHost(host) ? `127.0.0.1` : host),
    healthPath: raw.healthPath ?? DEFAULT_HEALTH_PATH,
    healthTimeoutMs: raw.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS,
    drainTimeoutMs: raw.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    forceStopTimeoutMs: raw.forceStopTimeoutMs ?? DEFAULT_FORCE_STOP_TIMEOUT_MS,
    trustForwarded: [...(raw.trustForwarded ?? DEFAULT_TRUST_FORWARDED)],
    maxHeaderBytes: raw.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
    requestHeadTimeoutMs: raw.requestHeadTimeoutMs ?? DEFAULT_REQUEST_HEAD_TIMEOUT_MS,
    clientIdleTimeoutMs: raw.clientIdleTimeoutMs ?? DEFAULT_CLIENT_IDLE_TIMEOUT_MS,
    upstreamResponseTimeoutMs: raw.upstreamResponseTimeoutMs ?? DEFAULT_UPSTREAM_RESPONSE_TIMEOUT_MS,
    upstreamIdleTimeoutMs: raw.upstreamIdleTimeoutMs ?? DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS,
    clientBodyTimeoutMs: raw.clientBodyTimeoutMs ?? DEFAULT_CLIENT_BODY_TIMEOUT_MS,
    clientSendTimeoutMs: raw.clientSendTimeoutMs ?? DEFAULT_CLIENT_SEND_TIMEOUT_MS,
    maxConnections: raw.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    maxHeldRequests: raw.maxHeldRequests ?? DEFAULT_MAX_HELD_REQUESTS,
    wsCloseJitterMs: raw.wsCloseJitterMs ?? DEFAULT_WS_CLOSE_JITTER_MS,
    accessLog: undefined,
  };
}

/**
 * `metrics.listen` → host and port: `9464` / `"9464"` bind 127.0.0.1; `"host:port"` takes an IPv4
 * address, `[IPv6]` or `localhost`. Undefined when invalid (port 0 too: a scraper needs a fixed port).
 */
export function parseListenAddress(value: unknown): {host: string; port: number} | undefined {
  const portOf = (text: string): number | undefined => (/^[1-9]\d{0,4}$/.test(text) && Number(text) <= MAX_PORT ? Number(text) : undefined);
  if (typeof value === `number`) return Number.isInteger(value) && value >= 1 && value <= MAX_PORT ? {host: DEFAULT_METRICS_HOST, port: value} : undefined;
  if (typeof value !== `string`) return undefined;
  const colon = value.lastIndexOf(`:`);
  if (colon === -1) {
    const port = portOf(value);
    return port === undefined ? undefined : {host: DEFAULT_METRICS_HOST, port};
  }
  const port = portOf(value.slice(colon + 1));
  let host = value.slice(0, colon);
  if (host.startsWith(`[`) && host.endsWith(`]`)) {
    host = host.slice(1, -1);
    if (net.isIPv6(host)) return port === undefined ? undefined : {host, port};
    return undefined;
  }
  if (port === undefined || !(net.isIPv4(host) || host === `localhost`)) return undefined;
  return {host, port};
}

function normalizeProcess(raw: RawProcess, proxy: ProxyConfig): ProcessConfig {
  const lifecycle = orEmpty(raw.lifecycle);
  const restart = orEmpty(raw.restart);
  return {
    id: raw.id,
    command: raw.command,
    policy: raw.policy ?? `companion`,
    deployStrategy: raw.deployStrategy ?? `persistent`,
    switch: raw.switch ?? `overlap`,
    holdTimeoutMs: raw.holdTimeoutMs ?? DEFAULT_HOLD_TIMEOUT_MS,
    cwd: raw.cwd ?? undefined,
    env: {...(raw.env ?? {})},
    port: normalizePortValue(raw.port),
    health: normalizeHealth(raw.health, proxy),
    stopSignal: raw.stopSignal ?? DEFAULT_STOP_SIGNAL,
    nonBlockingDrain: raw.nonBlockingDrain ?? false,
    lifecycle: {
      // An empty hook is skipped, exactly like an absent one.
      quietCommand: lifecycle.quietCommand || undefined,
      drainCommand: lifecycle.drainCommand || undefined,
      stopCommand: lifecycle.stopCommand || undefined,
      drainTimeoutMs: lifecycle.drainTimeoutMs ?? 0,
    },
    gracefulStopMs: raw.gracefulStopMs ?? proxy.forceStopTimeoutMs,
    restartDelayMs: raw.restartDelayMs ?? DEFAULT_RESTART_DELAY_MS,
    restart: {
      maxRestarts: restart.maxRestarts ?? undefined,
      windowMs: restart.windowMs ?? 0,
      backoffFactor: restart.backoffFactor ?? 1,
      maxDelayMs: restart.maxDelayMs ?? 0,
    },
    memory: raw.memory == null ? undefined : {
      limitBytes: raw.memory.limitBytes,
      warnBytes: raw.memory.warnBytes ?? 0,
      checkIntervalMs: raw.memory.checkIntervalMs ?? DEFAULT_MEMORY_CHECK_INTERVAL_MS,
    },
    replicas: raw.replicas ?? 1,
    outputLines: raw.outputLines ?? DEFAULT_OUTPUT_LINES,
    readiness: raw.readiness == null ? null : {
      kind: raw.readiness.http != null ? `http` : raw.readiness.tcp ? `tcp` : `command`,
      path: raw.readiness.http ?? undefined,
      command: raw.readiness.command ?? undefined,
      timeoutMs: raw.readiness.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS,
      intervalMs: raw.readiness.intervalMs ?? DEFAULT_HEALTH_INTERVAL_MS,
      probeTimeoutMs: raw.readiness.probeTimeoutMs ?? DEFAULT_HEALTH_PROBE_TIMEOUT_MS,
      successThreshold: raw.readiness.successThreshold ?? DEFAULT_HEALTH_SUCCESS_THRESHOLD,
      liveness: normalizeLiveness(raw.readiness.liveness, raw.readiness.probeTimeoutMs),
    },
    dependsOn: [...(raw.dependsOn ?? [])],
  };
}

function normalizeHealth(raw: RawProcess[`health`], proxy: ProxyConfig): HealthConfig | null {
  if (raw === false || raw === null) return null;
  const health = orEmpty(raw);
  return {
    type: health.type ?? `http`,
    path: health.path ?? proxy.healthPath,
    command: health.command ?? undefined,
    timeoutMs: health.timeoutMs ?? proxy.healthTimeoutMs,
    intervalMs: health.intervalMs ?? DEFAULT_HEALTH_INTERVAL_MS,
    startDelayMs: health.startDelayMs ?? 0,
    probeTimeoutMs: health.probeTimeoutMs ?? DEFAULT_HEALTH_PROBE_TIMEOUT_MS,
    successThreshold: health.successThreshold ?? DEFAULT_HEALTH_SUCCESS_THRESHOLD,
    liveness: normalizeLiveness(health.liveness, health.probeTimeoutMs),
  };
}

function normalizeLiveness(raw: ShapeOf<typeof livenessShape> | null | undefined, probeTimeoutMs: number | null | undefined): LivenessConfig | null {
  if (raw == null) return null;
  return {
    intervalMs: raw.intervalMs ?? DEFAULT_LIVENESS_INTERVAL_MS,
    probeTimeoutMs: raw.probeTimeoutMs ?? probeTimeoutMs ?? DEFAULT_HEALTH_PROBE_TIMEOUT_MS,
    failureThreshold: raw.failureThreshold ?? DEFAULT_LIVENESS_FAILURE_THRESHOLD,
  };
}

function orEmpty<T extends object>(value: T | null | undefined): Partial<T> {
  return value ?? {};
}

function normalizeId(value: string | number | null | undefined): string | number | undefined {
  if (value == null) return undefined;
  if (typeof value === `string` && /^\d+$/.test(value)) return Number(value);
  return value;
}
