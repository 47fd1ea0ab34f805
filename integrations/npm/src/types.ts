// The public types of the `rollbridge` npm package. Self-contained (the package ships no rollbridge
// sources): the fields of the control contract's results (src/control/protocol.ts) that the package
// documents, each result open to more keys. test/integrations/npm/contract-types.test.ts checks at
// compile time that every result the contract allows fits these types.

import type {RunOptions} from './run-binary.ts';

export type {RunOptions};

/** `--config`: every command takes it. */
export type ConfigOptions = RunOptions & {
  /** Path of the config file. @default rollbridge.js, then rollbridge.json, in `cwd` */
  config?: string;
};

/** What the CLI adds to every successful `--json` answer. */
export type Success = {
  status: `success`;
  /** Whether the command changed anything (false for a dry run or a deploy of the active release). */
  changed?: boolean;
};

// ── the control contract's results (src/control/protocol.ts) ────────────────────────────────────

/** `deploy`, `rollback`: src/control/protocol.ts isDeployResult. */
export type ContractDeployResult = {
  /** Null only when nothing is active, e.g. after a dry run on an empty daemon. */
  activeReleaseId: string | null;
  previousReleaseId: string | null;
  releaseId: string;
  durationMs: number;
  /** False for a dry run and for a deploy skipped by `skipIfActive`. */
  changed?: boolean | undefined;
  /** True when `skipIfActive` found the release already active: nothing was done. */
  skipped?: boolean | undefined;
  phases?: Array<Record<string, unknown>> | undefined;
  /** Results of hooks.beforeSwitch / hooks.afterSwitch when they ran. */
  hooks?: Array<Record<string, unknown>> | undefined;
  /** Only for `dryRun`: what the deploy would do. */
  plan?: Record<string, unknown> | undefined;
} & {[key: string]: unknown};

/** `status`: src/control/protocol.ts isStatusResult (extra keys are part of the shape). */
export type ContractStatusResult = {
  application: string;
  activeReleaseId?: string | null | undefined;
  proxy?: ({host: string; port: number} & {[key: string]: unknown}) | undefined;
  releases?: Array<{releaseId: string} & {[key: string]: unknown}> | undefined;
} & {[key: string]: unknown};

/** `restart`: src/control/protocol.ts isRestartResult. */
export type ContractRestartResult = {
  restarted: string[];
  /** Only for `dryRun`: see RestartPlan. */
  plan?: Record<string, unknown> | undefined;
  /** hooks.beforeSwitch's result when `beforeSwitch` ran it. */
  hooks?: Array<Record<string, unknown>> | undefined;
} & {[key: string]: unknown};

/** What `restart({dryRun: true})` returns in `plan`: src/control/protocol.ts RestartPlanView. */
export type RestartPlan = {
  processes: Array<{id: string; processId: string; policy: string; pid: number | null; how: `replace` | `restart`; check: `health` | `readiness` | null}>;
  hooks: {beforeSwitch: string | null};
  cooldownMs: number;
};

/** One entry of the daemon's event history: src/control/protocol.ts isEvent. */
export type ContractEvent = {
  at: string;
  message: string;
  level?: `debug` | `info` | `warn` | `error` | undefined;
  data: {[key: string]: unknown};
} & {[key: string]: unknown};

/** `legacy-takeover`: src/control/protocol.ts isTakeoverResult. */
export type ContractTakeoverResult = {
  activeReleaseId: string;
  /** From the first stop action on the legacy processes until the proxy port accepted connections again. */
  portGapMs: number;
  legacy: {
    stopped: number;
    killed: number;
    survivors?: Array<{pid: number; args: string} & {[key: string]: unknown}> | undefined;
  } & {[key: string]: unknown};
  durationMs: number;
  phases?: Array<Record<string, unknown>> | undefined;
} & {[key: string]: unknown};

// ── results as the API returns them ──────────────────────────────────────────────────────────────

export type DeployResult = Success & ContractDeployResult;
export type RollbackResult = Success & ContractDeployResult;
export type StatusResult = ContractStatusResult;
export type RestartResult = Success & ContractRestartResult & {
  plan?: RestartPlan | undefined;
  /** `checkUrl`'s answer. */
  check?: {url: string; status: number} | undefined;
};
export type LegacyTakeoverResult = Success & ContractTakeoverResult;
export type RollbridgeEvent = ContractEvent;

/** `validate`: the report (also for an invalid config, which is not thrown). */
export type ValidateResult = {
  valid: boolean;
  path: string | null;
  config: {application: string; processes: number; proxy: {host: string; port: number}} | null;
  issues: Array<{path: string; message: string; fix: string}>;
  warnings: Array<{path: string; message: string; fix: string}>;
};

/** One line of `deploy --json --stream`: a phase as it happens, then the result. */
export type DeployProgress =
  | ({type: `phase`; phase: string} & {[key: string]: unknown})
  | ({type: `result`} & DeployResult);

// ── options: the camelCase of each command's flags ───────────────────────────────────────────────

export type DeployOptions = ConfigOptions & {
  /** Directory of the prepared release (relative to `cwd`). */
  releasePath: string;
  releaseId?: string;
  revision?: string;
  /** Start a detached daemon first when none is running. */
  ensureDaemon?: boolean;
  /** Do nothing when this release id is already active with the same path and revision (`changed: false`). */
  skipIfActive?: boolean;
  /** Queue behind a running deploy (false fails at once with ERR_DAEMON_BUSY). @default true */
  wait?: boolean;
  /** Switch without waiting for the health check (emergencies only; logged). */
  skipHealthCheck?: boolean;
  /** Do not run hooks.beforeSwitch (e.g. migrations already applied; logged). */
  skipBeforeSwitch?: boolean;
  /** Watch window after the switch, e.g. `30s` (default: watch.windowMs). */
  watch?: string;
  /** Return the plan, change nothing. */
  dryRun?: boolean;
  daemonLogPath?: string;
  daemonPidPath?: string;
  daemonStartTimeoutMs?: number;
};

export type RollbackOptions = ConfigOptions & {
  /** Retained release to activate (default: the one active before the current one). */
  releaseId?: string;
  wait?: boolean;
};

export type RestartOptions = ConfigOptions & {
  /** Base id or instance id (`worker#1`) to restart. */
  process?: string;
  policy?: `companion` | `singleton` | `service` | `proxied`;
  /** Substrings of instance ids: the union of their matches is restarted. */
  names?: string[];
  wait?: boolean;
  /** Pause between restarted processes, e.g. `5s`. */
  cooldown?: string;
  /** URL that must answer 2xx after the restarts. */
  checkUrl?: string;
  checkTimeout?: string;
  /** Every process, the proxied one included (replaced without downtime): a rolling restart. */
  all?: boolean;
  /** Do not wait for readiness and health checks after each restart (emergencies only; logged). */
  skipHealthCheck?: boolean;
  /** Run hooks.beforeSwitch (e.g. migrations) against the active release first. */
  beforeSwitch?: boolean;
  /** Return the plan, restart nothing. */
  dryRun?: boolean;
};

export type StatusOptions = ConfigOptions;
export type ValidateOptions = ConfigOptions;

export type EventsOptions = ConfigOptions & {
  /** Start with the most recent N recorded events, then follow. */
  limit?: number;
};

export type LegacyTakeoverOptions = ConfigOptions & {
  releasePath: string;
  releaseId?: string;
  revision?: string;
  dryRun?: boolean;
  daemonLogPath?: string;
  daemonPidPath?: string;
  daemonStartTimeoutMs?: number;
};
