/**
 * The normalized configuration: what `loadConfig` returns after validation and defaults.
 * Field names and defaults follow upstream rollbridge 0.1.21 (docs/config.md).
 */
export type ProcessPolicy = `proxied` | `companion` | `singleton` | `service`;
export type DeployStrategy = `persistent` | `handoff`;
/** How a deploy replaces the proxied process: `overlap` (start the new one beside the old, then switch) or `hold` (pause, stop the old, start the new, switch, resume). */
export type SwitchMode = `overlap` | `hold`;

export type PortRange = {from: number; to: number};

/** How the proxied process is judged healthy: an HTTP GET of `path`, a TCP connect to its port, a shell command, or sd_notify's READY=1. */
export type HealthType = `http` | `tcp` | `command` | `notify`;

/** Periodic checks of a running process of the active release (off unless configured). */
export type LivenessConfig = {
  intervalMs: number;
  /** Timeout of one probe. */
  probeTimeoutMs: number;
  /** Consecutive failed probes after which the process is replaced (proxied) or restarted. */
  failureThreshold: number;
};

export type HealthConfig = {
  type: HealthType;
  /** http: the path probed. */
  path: string;
  /** command: a shell command run in the process's directory and environment; exit 0 means healthy. */
  command: string | undefined;
  timeoutMs: number;
  intervalMs: number;
  startDelayMs: number;
  /** Timeout of one probe. */
  probeTimeoutMs: number;
  /** Consecutive passing probes needed. */
  successThreshold: number;
  /** null = no liveness checks after the switch. */
  liveness: LivenessConfig | null;
};

export type LifecycleConfig = {
  quietCommand: string | undefined;
  drainCommand: string | undefined;
  stopCommand: string | undefined;
  drainTimeoutMs: number;
};

export type RestartConfig = {
  /** undefined = unlimited; 0 disables automatic restarts. */
  maxRestarts: number | undefined;
  windowMs: number;
  backoffFactor: number;
  maxDelayMs: number;
};

export type MemoryConfig = {limitBytes: number; warnBytes: number; checkIntervalMs: number};

/** When a (non-web) process counts as ready: one of http/tcp/command, probed after it starts. */
export type ReadinessConfig = {
  kind: `http` | `tcp` | `command`;
  /** http: the path probed on the process's own port. */
  path: string | undefined;
  /** command: a shell command; exit 0 means ready. */
  command: string | undefined;
  timeoutMs: number;
  intervalMs: number;
  probeTimeoutMs: number;
  successThreshold: number;
  /** null = no liveness checks while it runs. */
  liveness: LivenessConfig | null;
};

export type ProcessConfig = {
  id: string;
  command: string;
  policy: ProcessPolicy;
  deployStrategy: DeployStrategy;
  /** Proxied only: `hold` never runs the new web process beside the previous one (product §5.11). */
  switch: SwitchMode;
  /** With `switch: "hold"`: longest time requests are held before the deploy rolls back to the previous release. */
  holdTimeoutMs: number;
  /** Templated; relative values resolve against the release path. undefined = release path. */
  cwd: string | undefined;
  env: Record<string, string>;
  port: PortRange | undefined;
  /** null = no health check. */
  health: HealthConfig | null;
  stopSignal: NodeJS.Signals;
  nonBlockingDrain: boolean;
  lifecycle: LifecycleConfig;
  gracefulStopMs: number | `indefinite`;
  restartDelayMs: number;
  restart: RestartConfig;
  memory: MemoryConfig | undefined;
  replicas: number;
  outputLines: number;
  /** null = ready as soon as it is spawned. */
  readiness: ReadinessConfig | null;
  /** Ids of processes that must be ready before this one starts. */
  dependsOn: string[];
};

export type ControlConfig = {
  path: string;
  mode: number | undefined;
  owner: string | number | undefined;
  group: string | number | undefined;
};

export type ProxyConfig = {
  host: string;
  port: number;
  upstreamHost: string;
  healthPath: string;
  healthTimeoutMs: number;
  drainTimeoutMs: number;
  forceStopTimeoutMs: number;
  /** Peers whose X-Forwarded-Proto/-Host are kept: `loopback` or IP addresses. */
  trustForwarded: string[];
  maxHeaderBytes: number;
  requestHeadTimeoutMs: number;
  clientIdleTimeoutMs: number;
  upstreamResponseTimeoutMs: number;
  upstreamIdleTimeoutMs: number;
  clientBodyTimeoutMs: number;
  clientSendTimeoutMs: number;
  maxConnections: number;
  /** Requests held at once while the proxy is paused; one more is answered 503. */
  maxHeldRequests: number;
  wsCloseJitterMs: number;
  /** One JSON line per request (and X-Request-ID on every request); undefined = off. */
  accessLog: AccessLogConfig | undefined;
};

/** `proxy.accessLog`: rotated with `logs.maxBytes` / `logs.files`, like the process logs. */
export type AccessLogConfig = {
  /** Absolute. */
  path: string;
  /** Keep the query string in `path` (it often carries tokens). @default false */
  includeQuery: boolean;
};

/** `metrics`: the Prometheus endpoint. */
export type MetricsConfig = {
  /** Where /metrics is served; undefined = off. */
  listen: {host: string; port: number} | undefined;
};

export type LegacyTakeoverConfig = {
  screens: string[];
  processes: Array<{name: string; includes: string[]}>;
  forceStopTimeoutMs: number;
  /** Owner of the legacy processes (name or uid); only its processes are taken. Unset: the user running rollbridge. */
  user?: string | number | undefined;
};

/** Commands around the switch, run in the release's environment (product §5.5). */
export type HooksConfig = {
  /** After the new release is healthy, before traffic moves (e.g. migrations). Failure aborts the deploy. */
  beforeSwitch: string | undefined;
  /** After the switch. Failure is reported, the deploy stands. */
  afterSwitch: string | undefined;
  timeoutMs: number;
};

/** After a switch, keep the previous release warm and switch back on trouble (product §5.4). */
export type WatchConfig = {
  /** 0 = no watch window (the previous release drains right after the switch). */
  windowMs: number;
  /** Share of responses (5xx or proxy errors) above which the new release is rolled back. */
  max5xxPercent: number;
  /** Fewest requests in the window before the 5xx share is judged. */
  minRequests: number;
};

/** Per-process log files (product §5.8): `<dir>/<releaseId>/<id>.stdout.log` and `.stderr.log`. */
export type LogsConfig = {
  /** Absolute. A change applies to processes started afterwards. */
  dir: string;
  /** A file larger than this is rotated (copy, then truncate). */
  maxBytes: number;
  /** Rotated copies kept per file (`.1` … `.<files>`); 0 truncates without a copy. */
  files: number;
};

/** How `deploy --canary` judges the canary (docs/operations.md "Canary deploys"). */
export type CanaryConfig = {
  /** Fewest requests the canary must receive in its window; fewer → rolled back. */
  minRequests: number;
  /** Canary 5xx share may exceed the stable one by at most this many percentage points. */
  max5xxIncreasePercent: number;
  /** Canary p95 above stable p95 × this (and by more than minP95IncreaseMs) → rolled back. */
  maxP95Ratio: number;
  minP95IncreaseMs: number;
};

export type Config = {
  /** Absolute path of the file this config was loaded from. */
  configPath: string;
  application: string;
  control: ControlConfig;
  proxy: ProxyConfig;
  releaseRetention: {keep: number; maxAgeMs: number};
  statePath: string | undefined;
  /** Append-only JSONL file that receives every event (mode 0600). */
  eventsPath: string | undefined;
  legacyTakeover: LegacyTakeoverConfig | undefined;
  hooks: HooksConfig;
  watch: WatchConfig;
  canary: CanaryConfig;
  logs: LogsConfig;
  metrics: MetricsConfig;
  processes: ProcessConfig[];
};

export type ConfigIssue = {
  /** Dotted path of the offending key, e.g. `processes[1].port`. */
  path: string;
  message: string;
  fix: string;
};

export type ConfigWarning = ConfigIssue;
/** A key of a later rollbridge 0.1.x: accepted and ignored, reported once (deploy, daemon start, validate). */
export type ConfigNotice = ConfigIssue;
