import * as t from 'typanion';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import type {WireError} from '../errors/rollbridge-error.ts';

/*
 * The control-socket wire contract, shared by the CLI (client.ts) and the daemon (server.ts).
 *
 * Framing: newline-delimited JSON, UTF-8, one object per line, both directions.
 * Request:  {"id"?: string|number, "command": "<name>", ...params}
 * Success:  {"id", "status": "success", ...result}       (result fields at the top level, like upstream)
 * Error:    {"id", "status": "error", "error": {"code", "message", "fix"?, "details"?}}
 * Progress: {"id", "status": "progress", "event": {...}}  (zero or more before the final frame)
 * A request without an id is answered with `"id": null`.
 */

/**
 * A validator built on its first call. Built when this module loaded, the ~270 validators below cost every
 * command ~2–4 ms of its start, while a command uses a few of them (`status`: its params and result).
 */
function lazy<V extends (...args: never[]) => boolean>(build: () => V): V {
  let built: V | undefined;
  return ((...args: Parameters<V>) => (built ??= build())(...args)) as V;
}

/** Release ids as they appear in paths and on the wire. */
export const RELEASE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export const PROCESS_POLICIES = [`companion`, `singleton`, `service`, `proxied`] as const;

const isReleaseId = () => t.cascade(t.isString(), [t.matchesRegExp(RELEASE_ID_PATTERN)]);

const isAbsolutePath = () => t.cascade(t.isString(), [
  t.makeValidator<string>({
    test: (value, state) => {
      if (value.startsWith(`/`)) return true;
      state?.errors?.push(`${state.p ?? `.`}: Expected an absolute path (got ${JSON.stringify(value)})`);
      return false;
    },
  }),
]);

const isPositiveInteger = () => t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(1)]);

/** Unknown keys inside results are accepted: a newer daemon may send more than this client knows. */
const LOOSE = {extra: t.isUnknown()};

// ── params ──────────────────────────────────────────────────────────────────────────────────────

export const isStatusParams = lazy(() => t.isObject({}));

export const isDeployParams = lazy(() => t.isObject({
  releasePath: isAbsolutePath(),
  releaseId: t.isOptional(isReleaseId()),
  revision: t.isOptional(t.isString()),
  /** Queue behind a running deploy (default) or fail fast with ERR_DAEMON_BUSY. @default true */
  wait: t.isOptional(t.isBoolean()),
  dryRun: t.isOptional(t.isBoolean()),
  skipHealthCheck: t.isOptional(t.isBoolean()),
  /** Do not run hooks.beforeSwitch for this deploy (logged). */
  skipBeforeSwitch: t.isOptional(t.isBoolean()),
  /** Watch window in ms (overrides watch.windowMs); 0 = none. */
  watchMs: t.isOptional(t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(0)])),
  /** Do nothing (`skipped`, `changed: false`) when this release id is already active with the same path and revision. */
  skipIfActive: t.isOptional(t.isBoolean()),
  /** Canary: this share of the clients (1–99 %) goes to the new release over canaryWindowMs, then it is promoted or rolled back (ERR_CANARY_REJECTED). */
  canaryPercent: t.isOptional(t.cascade(t.isNumber(), [t.isInteger(), t.isInInclusiveRange(1, 99)])),
  /** The canary window in ms (1 ms – 24 h). @default 60000 */
  canaryWindowMs: t.isOptional(t.cascade(t.isNumber(), [t.isInteger(), t.isInInclusiveRange(1, 86_400_000)])),
}));

export const isRollbackParams = lazy(() => t.isObject({
  releaseId: t.isOptional(isReleaseId()),
  wait: t.isOptional(t.isBoolean()),
}));

export const isStopParams = lazy(() => t.isObject({
  releaseId: t.isOptional(isReleaseId()),
}));

export const isRestartParams = lazy(() => t.isObject({
  processId: t.isOptional(t.isString()),
  /** Several base or instance ids (`restart --process a --process b`); each must match. */
  processIds: t.isOptional(t.isArray(t.isString())),
  policy: t.isOptional(t.isEnum(PROCESS_POLICIES)),
  /** Substrings of instance ids; the union of the matches is restarted; a name matching nothing fails. */
  names: t.isOptional(t.isArray(t.isString())),
  /** Pause after each restarted process before the next one. */
  cooldownMs: t.isOptional(t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(0)])),
  wait: t.isOptional(t.isBoolean()),
  /** Every process, the proxied one included (replaced without downtime). */
  all: t.isOptional(t.isBoolean()),
  /** No readiness or health check after each restart (logged). */
  skipHealthCheck: t.isOptional(t.isBoolean()),
  /** Run hooks.beforeSwitch against the active release before restarting anything. */
  beforeSwitch: t.isOptional(t.isBoolean()),
  /** Return the plan (`plan`), restart nothing. */
  dryRun: t.isOptional(t.isBoolean()),
}));

export const isEventsParams = lazy(() => t.isObject({
  limit: t.isOptional(isPositiveInteger()),
  /** Stream every new event as a progress frame `{event}` until the client disconnects or the daemon stops. */
  follow: t.isOptional(t.isBoolean()),
}));

export const isLogsParams = lazy(() => t.isObject({
  processId: t.isOptional(t.isString()),
  /** Only this release (a retained one or a failed deploy); ERR_RELEASE_NOT_FOUND when the daemon keeps none. */
  releaseId: t.isOptional(t.isString()),
  /** Every retained release and failed deploy; by default only the active release and the latest failed deploy. */
  all: t.isOptional(t.isBoolean()),
}));

export const isShutdownParams = lazy(() => t.isObject({}));

/** Longest pause timeout accepted (30 days). */
const MAX_PAUSE_TIMEOUT_MS = 30 * 24 * 3_600_000;

export const isPauseParams = lazy(() => t.isObject({
  /** Held requests are answered 503 (with Retry-After) after this long; 0 = held until `resume`. @default 30000 */
  timeoutMs: t.isOptional(t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(0), t.isAtMost(MAX_PAUSE_TIMEOUT_MS)])),
}));

export const isResumeParams = lazy(() => t.isObject({}));

export const isMaintenanceParams = lazy(() => t.cascade(t.isObject({
  enabled: t.isBoolean(),
  /** The page's text (plain, HTML-escaped, or JSON `message`): 1–1000 characters, no control characters. */
  // eslint-disable-next-line no-control-regex -- the point is to refuse control characters
  message: t.isOptional(t.cascade(t.isString(), [t.hasMinLength(1), t.hasMaxLength(1_000), t.matchesRegExp(/^[^\u0000-\u001f\u007f]*$/)])),
  /** The Retry-After header in seconds (0–86400). @default 60 */
  retryAfterSeconds: t.isOptional(t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(0), t.isAtMost(86_400)])),
}), [t.hasKeyRelationship(`enabled`, t.KeyRelationship.Forbids, [`message`, `retryAfterSeconds`], {ignore: [true]})]));

const isNonNegativeInteger = () => t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(0)]);

/** One screen session of a legacy plan (src/legacy/screen.ts ScreenSession). */
const isLegacyScreenSession = lazy(() => t.isObject({
  pid: isPositiveInteger(),
  name: t.isString(),
  /** `PID.NAME` */
  id: t.isString(),
  state: t.isString(),
}));

/** One process of a legacy plan (src/legacy/discover.ts LegacyProcess): pid + start time identify it. */
const isLegacyProcess = lazy(() => t.isObject({
  pid: isPositiveInteger(),
  startTime: isNonNegativeInteger(),
  pgid: isNonNegativeInteger(),
  ppid: isNonNegativeInteger(),
  args: t.isString(),
  state: t.isString(),
  source: t.isString(),
}));

/** What the CLI discovered and the daemon stops (src/legacy/discover.ts LegacyPlan). */
export const isLegacyPlan = lazy(() => t.isObject({
  user: t.isObject({name: t.isString(), uid: isNonNegativeInteger()}),
  screens: t.isArray(isLegacyScreenSession),
  processes: t.isArray(isLegacyProcess),
  warnings: t.isArray(t.isString()),
}));

export const isTakeoverParams = lazy(() => t.isObject({
  releasePath: isAbsolutePath(),
  releaseId: t.isOptional(isReleaseId()),
  revision: t.isOptional(t.isString()),
  legacy: isLegacyPlan,
  /** SIGTERM → SIGKILL for the legacy processes (legacyTakeover.forceStopTimeoutMs). */
  forceStopTimeoutMs: isNonNegativeInteger(),
  /**
   * The upgrade from a rollbridge 0.1 daemon (its processes are `legacy`): it is asked to shut down on
   * this socket instead of being signalled first, and the new daemon's control socket moves to control.path afterwards.
   */
  legacyDaemon: t.isOptional(t.isObject({socketPath: isAbsolutePath(), pid: t.isNullable(isPositiveInteger())})),
}));

/** Daemon replacement (product §8): only a caller that can read the daemon's token file (its user, or root) may ask. */
export const isReplaceParams = lazy(() => t.isObject({
  token: t.isString(),
  /** How to run the new daemon: the binary (or node + main.ts) of the caller's build. */
  executable: t.isObject({file: isAbsolutePath(), args: t.isArray(t.isString())}),
  logPath: t.isOptional(isAbsolutePath()),
}));

// ── results ─────────────────────────────────────────────────────────────────────────────────────

export const PROCESS_STATES = [`starting`, `running`, `stopping`, `stopped`, `failed`] as const;
export const RELEASE_STATES = [`starting`, `active`, `draining`, `stopped`, `failed`] as const;
export const START_REASONS = [`deploy`, `crash`, `manual`, `memory`, `liveness`] as const;

/** A process's liveness checks (`health.liveness`/`readiness.liveness`): present once they are configured (`pending` until the first probe). */
export const isLivenessStatus = lazy(() => t.isObject({
  /** pending: not probed yet (release not active yet, or just restarted); failing: the last probe failed. */
  state: t.isEnum([`pending`, `passing`, `failing`]),
  consecutiveFailures: t.isNumber(),
  failureThreshold: t.isNumber(),
  lastCheckedAt: t.isOptional(t.isString()),
  lastError: t.isOptional(t.isString()),
  /** Times this process was started (restarted in place, or as the replacement) because of failed liveness checks. */
  restarts: t.isNumber(),
}, LOOSE));
export type LivenessStatusView = t.InferType<typeof isLivenessStatus>;

/** One line of a process's recent output. */
export const isLogLine = lazy(() => t.isObject({
  /** ISO-8601 time the line was completed. */
  at: t.isString(),
  stream: t.isEnum([`stdout`, `stderr`]),
  line: t.isString(),
}, LOOSE));

const isLogPaths = lazy(() => t.isObject({stdout: t.isString(), stderr: t.isString()}, LOOSE));

/** One supervised process in the status document (upstream §4.20 ProcessStatus, plus `port`, `adopted`, `logPaths`). */
export const isProcessStatus = lazy(() => t.isObject({
  /** Instance id: `web`, `worker#0`. */
  id: t.isString(),
  command: t.isString(),
  cwd: t.isOptional(t.isString()),
  state: t.isEnum(PROCESS_STATES),
  pid: t.isOptional(t.isNumber()),
  port: t.isOptional(t.isNumber()),
  startedAt: t.isOptional(t.isString()),
  /** Only while running. */
  uptimeMs: t.isOptional(t.isNumber()),
  lastStartReason: t.isOptional(t.isEnum(START_REASONS)),
  exitCode: t.isOptional(t.isNullable(t.isNumber())),
  exitSignal: t.isOptional(t.isNullable(t.isString())),
  restarts: t.isNumber(),
  memoryRestarts: t.isNumber(),
  lastMemoryRestartAt: t.isOptional(t.isString()),
  children: t.isArray(t.isObject({command: t.isString(), pid: t.isNumber(), rssBytes: t.isOptional(t.isNumber())}, LOOSE)),
  /** RSS of the whole process group, while running (sampled at each status; from the memory watchdog otherwise). */
  rssBytes: t.isOptional(t.isNumber()),
  /** CPU use of the process group in percent of one core over `cpuWindowMs`, while running. */
  cpuPercent: t.isOptional(t.isNumber()),
  /** The window of `cpuPercent`: since the previous status call (at least 0.5 s before), else since the process started. */
  cpuWindowMs: t.isOptional(t.isNumber()),
  liveness: t.isOptional(isLivenessStatus),
  /** What the process said on its NOTIFY_SOCKET (health.type "notify") in its current or last run. */
  notify: t.isOptional(t.isObject({ready: t.isBoolean(), status: t.isOptional(t.isString()), mainPid: t.isOptional(t.isNumber()), stopping: t.isOptional(t.isBoolean())}, LOOSE)),
  /** True while the running process was re-adopted from a previous daemon. */
  adopted: t.isOptional(t.isBoolean()),
  logs: t.isArray(isLogLine),
  /** The files with the process's whole output (absent when it has none). */
  logPaths: t.isOptional(isLogPaths),
}, LOOSE));

const isConnections = () => t.isObject({http: t.isNumber(), websocket: t.isNumber()});

/** One retained release in the status document (upstream §4.20 ReleaseStatus). */
export const isReleaseStatus = lazy(() => t.isObject({
  releaseId: t.isString(),
  releasePath: t.isString(),
  revision: t.isString(),
  state: t.isEnum(RELEASE_STATES),
  createdAt: t.isOptional(t.isString()),
  activatedAt: t.isOptional(t.isString()),
  drainStartedAt: t.isOptional(t.isString()),
  stoppedAt: t.isOptional(t.isString()),
  /** Why rollback never chooses this release (a failed watch window, singleton or crash loop). */
  failure: t.isOptional(t.isString()),
  connectionCount: t.isOptional(t.isNumber()),
  connections: t.isOptional(isConnections()),
  /** Every process with a port, persistent services included. */
  ports: t.isOptional(t.isRecord(t.isNumber())),
  processes: t.isOptional(t.isArray(isProcessStatus)),
}, LOOSE));

/** The proxy's traffic state (`status.traffic`, and the result of pause, resume and maintenance). */
export const isTrafficStatus = lazy(() => t.isObject({
  mode: t.isEnum([`open`, `paused`, `maintenance`]),
  pause: t.isNullable(t.isObject({
    since: t.isString(),
    /** ISO time the held requests are answered 503; null: held until resume. */
    deadline: t.isNullable(t.isString()),
    /** The timeout passed: held and new requests are answered 503 until resume. */
    expired: t.isBoolean(),
  }, LOOSE)),
  maintenance: t.isNullable(t.isObject({since: t.isString(), message: t.isString(), retryAfterSeconds: t.isNumber()}, LOOSE)),
  /** Requests held now. */
  held: t.isNumber(),
  /** proxy.maxHeldRequests. */
  maxHeld: t.isNumber(),
  /** A deploy holds traffic for a `switch: "hold"` process right now. */
  switchHold: t.isBoolean(),
}, LOOSE));

/**
 * The status object (upstream §4.20 field names, plus `daemon`, `statePath`, `recovery`). Only
 * `application` is required, so the status of a rollbridge 0.1 daemon is read too; this build's
 * daemon sends every field.
 */
export const isStatusResult = lazy(() => t.isObject({
  activeReleaseId: t.isOptional(t.isNullable(t.isString())),
  application: t.isString(),
  control: t.isOptional(t.isObject({path: t.isString()}, LOOSE)),
  daemon: t.isOptional(t.isObject({
    pid: t.isNumber(),
    startedAt: t.isString(),
    uptimeMs: t.isNumber(),
    configPath: t.isString(),
    /** `deploy <id>`, `rollback <id>`, `restart`… while one runs. */
    deploying: t.isNullable(t.isString()),
    stopping: t.isBoolean(),
    /** The daemon's own process.memoryUsage() in bytes (absent from daemons before 0.2). */
    memory: t.isOptional(t.isObject({rss: t.isNumber(), heapTotal: t.isNumber(), heapUsed: t.isNumber(), external: t.isNumber(), arrayBuffers: t.isNumber()}, LOOSE)),
  }, LOOSE)),
  /** The daemon's build. `digest` and `path` are rollbridge 0.1's names (never null); `sha256` equals `digest`. */
  daemonRuntime: t.isOptional(t.isObject({
    format: t.isNumber(),
    version: t.isString(),
    commit: t.isOptional(t.isString()),
    digest: t.isOptional(t.isString()),
    path: t.isOptional(t.isString()),
    executable: t.isOptional(t.isString()),
    sha256: t.isOptional(t.isNullable(t.isString())),
  }, LOOSE)),
  orphans: t.isOptional(t.isArray(t.isRecord(t.isUnknown()))),
  proxy: t.isOptional(t.isObject({host: t.isString(), port: t.isNumber(), upstreamHost: t.isOptional(t.isString()), listening: t.isOptional(t.isBoolean())}, LOOSE)),
  statePath: t.isOptional(t.isString()),
  recovery: t.isOptional(t.isUnknown()),
  releases: t.isOptional(t.isArray(isReleaseStatus)),
  /** Persistent services (daemon-wide); `port` is their stable port. */
  services: t.isOptional(t.isArray(t.isObject({id: t.isString(), port: t.isOptional(t.isNumber()), process: isProcessStatus}, LOOSE))),
  singletons: t.isOptional(t.isArray(t.isObject({id: t.isString(), releaseId: t.isOptional(t.isNullable(t.isString())), process: isProcessStatus}, LOOSE))),
  /** Pause and maintenance (absent from daemons before 0.2). */
  traffic: t.isOptional(isTrafficStatus),
}, LOOSE));

/**
 * One phase of a deploy, rollback, restart or takeover as it happens (progress frames, `--stream` lines,
 * the result's `phases`). Which fields are set depends on the phase.
 */
export const isProgressEvent = lazy(() => t.isObject({
  /**
   * `target` (rollback), `started`, `ready`, `healthy` (or `listening`: its port accepts connections, without a health check), `beforeSwitch`, `switched`, `watching`, `watched`, `draining`,
   * `afterSwitch`, `restarting`, `replaced`, `drained`, `restarted`, `legacy-stopping`, `proxy-listening`, `legacy-stopped`;
   * `waiting` when a wait starts (see `wait`) and `dequeued` when a queued command's turn comes;
   * `daemon-listening` (the CLI's own) when a daemon it started answers.
   */
  phase: t.isString(),
  releaseId: t.isOptional(t.isNullable(t.isString())),
  /** Since the previous phase (`waiting` has none: the phase that ends the wait carries its duration). */
  durationMs: t.isOptional(t.isNumber()),
  /** With `waiting`: what is waited for, `queue`, `readiness`, `health`, `port` (no health check: the port to accept connections), `hook`, `drain`, `cooldown` or `daemon` (the CLI waits for a daemon it started) (`detail` says it in words). */
  wait: t.isOptional(t.isString()),
  /** With `waiting`: the longest the wait may take (the check's, hook's or drain's timeout). */
  timeoutMs: t.isOptional(t.isNumber()),
  /** With `started`: the process's policy (absent on the proxied process's line of a deploy). */
  policy: t.isOptional(t.isString()),
  /** With `waiting` for the `queue`: the command running now, since when, and how many more wait before this one. */
  behind: t.isOptional(t.isObject({command: t.isString(), startedAt: t.isNullable(t.isString()), queued: t.isNumber()}, LOOSE)),
  /** With `replaced`: the pid of the process it replaced. */
  previousPid: t.isOptional(t.isNullable(t.isNumber())),
  processId: t.isOptional(t.isString()),
  pid: t.isOptional(t.isNullable(t.isNumber())),
  port: t.isOptional(t.isNullable(t.isNumber())),
  previousReleaseId: t.isOptional(t.isNullable(t.isString())),
  detail: t.isOptional(t.isString()),
  exitCode: t.isOptional(t.isNullable(t.isNumber())),
  ok: t.isOptional(t.isBoolean()),
}, LOOSE));

const isPlanPort = () => t.isNullable(t.isOneOf([t.isNumber(), t.isString()]));

/** What a deploy would do (`deploy --dry-run`): computed from the config and what runs now; nothing changes. */
export const isDeployPlanView = lazy(() => t.isObject({
  releaseId: t.isString(),
  releasePath: t.isString(),
  /** In start order; `port` is the configured port or range (`"4000-4009"`, `"ephemeral"`), or the port a kept service holds. */
  start: t.isArray(t.isObject({processId: t.isString(), policy: t.isString(), port: isPlanPort(), healthCheck: t.isNullable(t.isString())})),
  /** Persistent services that keep running. */
  keep: t.isArray(t.isObject({processId: t.isString(), policy: t.isString(), pid: t.isNullable(t.isNumber()), port: t.isNullable(t.isNumber())})),
  singletons: t.isArray(t.isObject({processId: t.isString(), replaces: t.isNullable(t.isNumber())})),
  hooks: t.isObject({beforeSwitch: t.isNullable(t.isString()), afterSwitch: t.isNullable(t.isString())}),
  drain: t.isNullable(t.isObject({
    releaseId: t.isString(),
    timeoutMs: t.isNumber(),
    connections: t.isObject({http: t.isNumber(), websocket: t.isNumber()}),
    processes: t.isArray(t.isString()),
  })),
}));

export const isHookResult = lazy(() => t.isObject({
  hook: t.isString(),
  ok: t.isBoolean(),
  exitCode: t.isNullable(t.isNumber()),
  signal: t.isNullable(t.isString()),
  timedOut: t.isBoolean(),
  durationMs: t.isNumber(),
  /** The last lines of its stdout and stderr, interleaved. */
  output: t.isArray(t.isString()),
}, LOOSE));

const isCanaryFigures = lazy(() => t.isObject({
  releaseId: t.isString(),
  requests: t.isNumber(),
  /** 5xx responses plus proxy errors (502/504). */
  errors: t.isNumber(),
  errorPercent: t.isNumber(),
  p95Ms: t.isNullable(t.isNumber()),
}, LOOSE));

/** How a canary was judged (deploy result `canary`, ERR_CANARY_REJECTED `details.canary`). */
export const isCanaryReport = lazy(() => t.isObject({
  verdict: t.isEnum([`promoted`, `rolled-back`]),
  reason: t.isString(),
  percent: t.isNumber(),
  windowMs: t.isNumber(),
  durationMs: t.isNumber(),
  canary: isCanaryFigures,
  stable: isCanaryFigures,
}, LOOSE));

export const isDeployResult = lazy(() => t.isObject({
  /** Null only when nothing is active, e.g. after a dry run on an empty daemon. */
  activeReleaseId: t.isNullable(t.isString()),
  previousReleaseId: t.isNullable(t.isString()),
  releaseId: t.isString(),
  durationMs: t.isNumber(),
  /** False for a dry run and for a deploy skipped by `skipIfActive` (absent from daemons before 0.2: true). */
  changed: t.isOptional(t.isBoolean()),
  /** True when `skipIfActive` found the release already active: nothing was done. */
  skipped: t.isOptional(t.isBoolean()),
  phases: t.isOptional(t.isArray(isProgressEvent)),
  /** Where the daemon's time went, ms by step (configMs, stateWriteMs, spawnMs, healthMs, switchMs, switchStateWriteMs). */
  timings: t.isOptional(t.isRecord(t.isNumber())),
  /** Added by the CLI, not the daemon: its own start, config load, connect and request, ms. */
  cliTimings: t.isOptional(t.isRecord(t.isNumber())),
  /** Results of hooks.beforeSwitch / hooks.afterSwitch when they ran. */
  hooks: t.isOptional(t.isArray(isHookResult)),
  /** Only for `dryRun`: what the deploy would do. */
  plan: t.isOptional(isDeployPlanView),
  /** deploy --canary: the verdict (`promoted`; a rejected canary is an ERR_CANARY_REJECTED error) and the figures. */
  canary: t.isOptional(isCanaryReport),
  /** A `switch: "hold"` deploy: how long requests were held, of which draining the previous web process. */
  switchHold: t.isOptional(t.isObject({heldMs: t.isNumber(), drainMs: t.isNumber(), holdTimeoutMs: t.isNumber()}, LOOSE)),
}, LOOSE));

/** What `restart --dry-run` would do: the processes in restart order, how each is restarted and checked. */
export const isRestartPlanView = lazy(() => t.isObject({
  processes: t.isArray(t.isObject({
    id: t.isString(),
    processId: t.isString(),
    policy: t.isString(),
    pid: t.isNullable(t.isNumber()),
    how: t.isEnum([`replace`, `restart`]),
    check: t.isNullable(t.isEnum([`health`, `readiness`])),
  })),
  hooks: t.isObject({beforeSwitch: t.isNullable(t.isString())}),
  cooldownMs: t.isNumber(),
}));

export const isRestartResult = lazy(() => t.isObject({
  restarted: t.isArray(t.isString()),
  /** Only for `dryRun`: the processes in restart order, how each is restarted and checked. */
  plan: t.isOptional(isRestartPlanView),
  /** hooks.beforeSwitch's result when `beforeSwitch` ran it. */
  hooks: t.isOptional(t.isArray(isHookResult)),
}, LOOSE));

export const isEvent = lazy(() => t.isObject({
  at: t.isString(),
  message: t.isString(),
  level: t.isOptional(t.isEnum([`debug`, `info`, `warn`, `error`])),
  data: t.isRecord(t.isUnknown()),
}, LOOSE));

export const isEventsResult = lazy(() => t.isObject({
  events: t.isArray(isEvent),
}, LOOSE));

/** The recent output of one managed process (`logs`), labelled with where it belongs. */
export const isLogSource = lazy(() => t.isObject({
  id: t.isString(),
  /** `release <releaseId> (<state>)`, `service` or `singleton`. */
  source: t.isString(),
  /** The release of a release's process (absent for services and singletons). */
  releaseId: t.isOptional(t.isString()),
  /** Why that release failed (`<code>: <message>`), when it did. */
  failure: t.isOptional(t.isString()),
  logs: t.isArray(isLogLine),
  /** The files with the process's whole output (absent when it has none, or from an older daemon). */
  logPaths: t.isOptional(isLogPaths),
}, LOOSE));

export const isLogsResult = lazy(() => t.isObject({
  sources: t.isArray(isLogSource),
}, LOOSE));

export const isTakeoverResult = lazy(() => t.isObject({
  activeReleaseId: t.isString(),
  /** From the first stop action on the legacy processes until the proxy port accepted connections again. */
  portGapMs: t.isNumber(),
  legacy: t.isObject({
    stopped: isNonNegativeInteger(),
    killed: isNonNegativeInteger(),
    /** Still running after SIGKILL (or not ours to signal); the takeover went ahead. */
    survivors: t.isOptional(t.isArray(t.isObject({pid: isNonNegativeInteger(), args: t.isString()}, LOOSE))),
  }, LOOSE),
  durationMs: t.isNumber(),
  phases: t.isOptional(t.isArray(t.isRecord(t.isUnknown()))),
}, LOOSE));

export const isReplaceResult = lazy(() => t.isObject({
  previousPid: isNonNegativeInteger(),
  pid: isNonNegativeInteger(),
  durationMs: t.isNumber(),
}, LOOSE));

export const isTrafficResult = lazy(() => t.isObject({
  changed: t.isBoolean(),
  /** `resume`: held requests sent on. */
  released: t.isOptional(t.isNumber()),
  traffic: isTrafficStatus,
}, LOOSE));

export const isShutdownResult = lazy(() => t.isObject({
  message: t.isLiteral(`shutdown`),
}, LOOSE));

/** Every command: its params and result schema. The CLI command of the same name sends it. */
export const ControlCommands = {
  status: {params: isStatusParams, result: isStatusResult},
  deploy: {params: isDeployParams, result: isDeployResult},
  rollback: {params: isRollbackParams, result: isDeployResult},
  stop: {params: isStopParams, result: isStatusResult},
  restart: {params: isRestartParams, result: isRestartResult},
  events: {params: isEventsParams, result: isEventsResult},
  logs: {params: isLogsParams, result: isLogsResult},
  shutdown: {params: isShutdownParams, result: isShutdownResult},
  takeover: {params: isTakeoverParams, result: isTakeoverResult},
  replace: {params: isReplaceParams, result: isReplaceResult},
  pause: {params: isPauseParams, result: isTrafficResult},
  resume: {params: isResumeParams, result: isTrafficResult},
  maintenance: {params: isMaintenanceParams, result: isTrafficResult},
} as const;

export type DeployPlanView = t.InferType<typeof isDeployPlanView>;
export type ProgressEvent = t.InferType<typeof isProgressEvent>;

/** `events --follow` streams each event as a progress frame `{event}`. */
export const isEventsProgress = lazy(() => t.isObject({event: isEvent}, LOOSE));

/** The progress frames a command sends before its result (the others send none). */
export const ControlProgress = {
  deploy: isProgressEvent,
  rollback: isProgressEvent,
  restart: isProgressEvent,
  takeover: isProgressEvent,
  events: isEventsProgress,
} as const;

/** What a restart would do (`restart --dry-run`): the processes in restart order, how each is restarted and checked. */
export type RestartPlanView = t.InferType<typeof isRestartPlanView>;

export type ControlCommandName = keyof typeof ControlCommands;
export type ParamsOf<C extends ControlCommandName> = t.InferType<(typeof ControlCommands)[C][`params`]>;
export type ResultOf<C extends ControlCommandName> = t.InferType<(typeof ControlCommands)[C][`result`]>;
export type ProgressOf<C extends ControlCommandName> = C extends keyof typeof ControlProgress ? t.InferType<(typeof ControlProgress)[C]> : never;

export type StatusResult = ResultOf<`status`>;
export type ProcessStatusView = t.InferType<typeof isProcessStatus>;
export type ReleaseStatusView = t.InferType<typeof isReleaseStatus>;
export type LogSource = t.InferType<typeof isLogSource>;
export type LogLine = t.InferType<typeof isLogLine>;
export type DeployParams = ParamsOf<`deploy`>;
export type DeployResult = ResultOf<`deploy`>;
export type RestartParams = ParamsOf<`restart`>;
export type ControlEvent = t.InferType<typeof isEvent>;
export type TrafficStatusView = t.InferType<typeof isTrafficStatus>;

export const CONTROL_COMMAND_NAMES = Object.keys(ControlCommands) as ControlCommandName[];

export function isControlCommandName(value: unknown): value is ControlCommandName {
  return typeof value === `string` && Object.hasOwn(ControlCommands, value);
}

// ── frames ──────────────────────────────────────────────────────────────────────────────────────

export type RequestId = string | number;

export type ControlRequestFrame = {id?: RequestId; command: string} & Record<string, unknown>;

export type SuccessFrame = {id: RequestId | null; status: `success`} & Record<string, unknown>;
export type ErrorFrame = {id: RequestId | null; status: `error`; error: WireError};
export type ProgressFrame = {id: RequestId | null; status: `progress`; event: Record<string, unknown>};
export type ResponseFrame = SuccessFrame | ErrorFrame | ProgressFrame;

/** A request line, already parsed, split into its id, command and params. */
export type DecodedRequest = {id: RequestId | null; command: ControlCommandName; params: Record<string, unknown>};

export function encodeFrame(frame: ControlRequestFrame | ResponseFrame): string {
  return `${JSON.stringify(frame)}\n`;
}

export function createRequestFrame(id: RequestId, command: string, params: Record<string, unknown>): ControlRequestFrame {
  return {...params, id, command};
}

export function createSuccessFrame(id: RequestId | null, result: Record<string, unknown>): SuccessFrame {
  const {id: _id, status: _status, ...rest} = result;
  return {id, status: `success`, ...rest};
}

export function createErrorFrame(id: RequestId | null, error: WireError): ErrorFrame {
  return {id, status: `error`, error};
}

export function createProgressFrame(id: RequestId | null, event: Record<string, unknown>): ProgressFrame {
  return {id, status: `progress`, event};
}

function isRequestId(value: unknown): value is RequestId {
  return typeof value === `string` || (typeof value === `number` && Number.isFinite(value));
}

/**
 * Turns one received line into a request, or throws the RollbridgeError to send back.
 * The error carries `details.id` when the id could be read, so the reply can be correlated.
 */
export function decodeRequestLine(line: string): DecodedRequest {
  const depth = nestingDepth(line);
  if (depth > MAX_REQUEST_DEPTH) {
    throw new RollbridgeError(ErrorCode.CONTROL_INVALID_REQUEST, `Control request is nested ${depth} levels deep, more than the ${MAX_REQUEST_DEPTH} allowed`, {
      fix: `Send {"command": "<name>", ...params} with plain params (no request needs deep nesting)`,
      details: {depth, maxDepth: MAX_REQUEST_DEPTH},
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw new RollbridgeError(ErrorCode.CONTROL_INVALID_JSON, `Control request is not valid JSON: ${(error as Error).message}`, {
      fix: `Send one JSON object per line (newline-delimited JSON, UTF-8)`,
    });
  }
  if (typeof value !== `object` || value === null || Array.isArray(value)) {
    const got = value === null ? `null` : Array.isArray(value) ? `an array` : typeof value;
    throw new RollbridgeError(ErrorCode.CONTROL_INVALID_REQUEST, `Control request must be a JSON object (got ${got})`, {
      fix: `Send {"command": "<name>", ...params} as one JSON object per line`,
    });
  }
  const {id: rawId, command, ...params} = value as Record<string, unknown>;
  const id = rawId === undefined || rawId === null ? null : rawId;
  if (id !== null && !isRequestId(id)) {
    throw new RollbridgeError(ErrorCode.CONTROL_INVALID_REQUEST, `Invalid control request: .id: Expected a string or a number (got ${describe(id)})`, {
      fix: `Send a string or number "id", or none`,
    });
  }
  if (typeof command !== `string`) {
    throw new RollbridgeError(ErrorCode.CONTROL_INVALID_REQUEST, `Invalid control request: .command: Expected a string (got ${describe(command)})`, {
      fix: `Send a "command" field naming one of: ${CONTROL_COMMAND_NAMES.join(`, `)}`,
      details: {id},
    });
  }
  if (!isControlCommandName(command)) {
    throw new RollbridgeError(ErrorCode.CONTROL_UNKNOWN_COMMAND, `Unknown control command "${command}"`, {
      fix: `Use one of the known commands: ${CONTROL_COMMAND_NAMES.join(`, `)} (upgrade the daemon if the CLI is newer)`,
      details: {id, command},
    });
  }
  return {id, command, params};
}

/** No request needs more: deeper JSON is refused before it reaches recursive validators and messages. */
export const MAX_REQUEST_DEPTH = 32;

/** Deepest nesting of arrays and objects in a JSON text, strings skipped (one pass, no recursion). */
function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) { // a string: skip to its closing quote, escapes included
      for (i++; i < text.length && text.charCodeAt(i) !== 34; i++) {
        if (text.charCodeAt(i) === 92) i++;
      }
    } else if (c === 91 || c === 123) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 93 || c === 125) {
      depth--;
    }
  }
  return max;
}

/** Validates a command's params (server side, and the client before sending). Lists every issue. */
export function validateParams<C extends ControlCommandName>(command: C, params: unknown): ParamsOf<C> {
  const errors: string[] = [];
  if (!ControlCommands[command].params(params, {errors})) {
    throw new RollbridgeError(ErrorCode.CONTROL_INVALID_REQUEST, `Invalid "${command}" request: ${errors.join(`; `)}`, {
      fix: `Pass valid arguments to "rollbridge ${command}" (see "rollbridge ${command} --help")`,
      details: {command, issues: errors},
    });
  }
  return params as ParamsOf<C>;
}

/** Validates a command's result (client side). */
export function validateResult<C extends ControlCommandName>(command: C, result: unknown): ResultOf<C> {
  const errors: string[] = [];
  if (!ControlCommands[command].result(result, {errors})) {
    throw invalidResponse(`Invalid "${command}" response from the daemon: ${errors.join(`; `)}`, {command, issues: errors});
  }
  return result as ResultOf<C>;
}

/** Validates a progress event (client side); a command without progress frames accepts none. */
export function validateProgress<C extends ControlCommandName>(command: C, event: unknown): ProgressOf<C> {
  const errors: string[] = [];
  const validator = (ControlProgress as Record<string, t.StrictValidator<unknown, unknown>>)[command];
  if (validator === undefined) throw invalidResponse(`The daemon sent a progress frame for "${command}", which has none`, {command});
  if (!validator(event, {errors})) throw invalidResponse(`Invalid "${command}" progress event from the daemon: ${errors.join(`; `)}`, {command, issues: errors});
  return event as ProgressOf<C>;
}

/**
 * Turns one line received from the daemon into a frame, or throws ERR_CONTROL_INVALID_RESPONSE.
 * Upstream 0.1.21 daemons send no id and a plain string `error`; both are accepted.
 */
export function decodeResponseLine(line: string): ResponseFrame {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw invalidResponse(`The daemon sent a line that is not valid JSON: ${(error as Error).message}`, {});
  }
  if (typeof value !== `object` || value === null || Array.isArray(value)) {
    throw invalidResponse(`The daemon sent a response that is not a JSON object (got ${describe(value)})`, {});
  }
  const frame = value as Record<string, unknown>;
  const id = frame.id === undefined || frame.id === null ? null : frame.id;
  if (id !== null && !isRequestId(id)) throw invalidResponse(`The daemon sent a response with an invalid id (got ${describe(id)})`, {});
  switch (frame.status) {
    case `success`:
      return {...frame, id, status: `success`};
    case `progress`:
      if (typeof frame.event !== `object` || frame.event === null || Array.isArray(frame.event)) {
        throw invalidResponse(`The daemon sent a progress frame without an event object`, {id});
      }
      return {id, status: `progress`, event: frame.event as Record<string, unknown>};
    case `error`:
      return {id, status: `error`, error: normalizeWireError(frame.error)};
    default:
      throw invalidResponse(`The daemon sent a response with an unknown status (got ${describe(frame.status)})`, {id});
  }
}

/**
 * A rollbridge 0.1 daemon's success payload, completed to the shape validateResult expects. 0.1 replies
 * carry no request id (this project's daemon always echoes one), and its deploy and rollback results are
 * only `{activeReleaseId, previousReleaseId}`: the release id is the active one, the duration is what the
 * client measured. Other 0.1 results already fit. `legacyDaemon: true` marks the result.
 */
export function completeLegacyResult(command: ControlCommandName, result: Record<string, unknown>, elapsedMs: number): Record<string, unknown> {
  if (command !== `deploy` && command !== `rollback`) return result;
  return {releaseId: result.activeReleaseId, durationMs: Math.round(elapsedMs), ...result, legacyDaemon: true};
}

/**
 * Whether a status document comes from a rollbridge 0.1 daemon: this project's daemon always reports
 * `daemon.pid`; 0.1 has no `daemon` block.
 */
export function isLegacyDaemonStatus(status: Record<string, unknown>): boolean {
  const daemon = status.daemon as {pid?: unknown} | null | undefined;
  return typeof daemon !== `object` || daemon === null || typeof daemon.pid !== `number`;
}

/**
 * Request options a 0.1 daemon does not know and would ignore with another effect than asked: a dry run
 * would deploy, a watch window would not exist, restart names would restart everything. Returns what the
 * request asks for of them (empty: safe to send to 0.1).
 */
export function listLegacyUnsupported(command: ControlCommandName, params: Record<string, unknown>): string[] {
  const unsupported: string[] = [];
  if (command === `deploy` && params.dryRun === true) unsupported.push(`--dry-run (0.1 would deploy for real)`);
  if ((command === `deploy`) && typeof params.watchMs === `number` && params.watchMs > 0) unsupported.push(`--watch (0.1 has no watch window)`);
  if (command === `restart` && Array.isArray(params.names) && params.names.length > 0) unsupported.push(`restart NAMES (0.1 would restart every process)`);
  if (command === `restart` && Array.isArray(params.processIds) && params.processIds.length > 0) unsupported.push(`several --process (0.1 would restart every process)`);
  if (command === `deploy` && params.skipIfActive === true) unsupported.push(`--skip-if-active (0.1 would deploy the active release again)`);
  if (command === `logs` && typeof params.releaseId === `string`) unsupported.push(`logs --release (0.1 shows every process, and no failed release)`);
  if (command === `deploy` && params.canaryPercent !== undefined) unsupported.push(`--canary (0.1 would switch every client at once)`);
  return unsupported;
}

/** The result part of a success frame: everything except `id` and `status`. */
export function resultOf(frame: SuccessFrame): Record<string, unknown> {
  const {id: _id, status: _status, ...result} = frame;
  return result;
}

function normalizeWireError(error: unknown): WireError {
  if (typeof error === `string`) return {code: ErrorCode.INTERNAL, message: error, details: {legacy: true}};
  if (typeof error === `object` && error !== null) {
    const {code, message, fix, details} = error as Record<string, unknown>;
    if (typeof code === `string` && typeof message === `string`) {
      const wire: WireError = {code, message};
      if (typeof fix === `string`) wire.fix = fix;
      if (typeof details === `object` && details !== null && !Array.isArray(details)) wire.details = details as Record<string, unknown>;
      return wire;
    }
  }
  throw invalidResponse(`The daemon sent an error frame without a code and message (got ${describe(error)})`, {});
}

function invalidResponse(message: string, details: Record<string, unknown>): RollbridgeError {
  return new RollbridgeError(ErrorCode.CONTROL_INVALID_RESPONSE, message, {
    fix: `Run the same rollbridge version for the CLI and the daemon (compare "rollbridge --version" with "rollbridge status")`,
    details,
  });
}

function describe(value: unknown): string {
  if (value === undefined) return `undefined`;
  const json = JSON.stringify(value);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

// ── line framing ────────────────────────────────────────────────────────────────────────────────

export type LineDecoderOptions = {
  /** Longest accepted line, newline excluded; checked while buffering, so no more is ever held. */
  maxLineBytes: number;
  onLine(line: string): void;
  onOverflow(): void;
};

/**
 * Splits a byte stream into UTF-8 lines. Empty lines are skipped, a trailing `\r` is dropped.
 * After an overflow it stops and ignores every further chunk.
 */
export function createLineDecoder({maxLineBytes, onLine, onOverflow}: LineDecoderOptions): (chunk: Buffer) => void {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let overflowed = false;
  const overflow = () => {
    overflowed = true;
    pending = [];
    pendingBytes = 0;
    onOverflow();
  };
  return (chunk) => {
    if (overflowed) return;
    let start = 0;
    while (true) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) break;
      if (pendingBytes + newline - start > maxLineBytes) return overflow();
      const tail = chunk.subarray(start, newline);
      const bytes = pending.length === 0 ? tail : Buffer.concat([...pending, tail]);
      pending = [];
      pendingBytes = 0;
      start = newline + 1;
      const line = bytes.toString(`utf8`).replace(/\r$/, ``);
      if (line.trim() !== ``) onLine(line);
      if (overflowed) return;
    }
    if (start < chunk.length) {
      if (pendingBytes + chunk.length - start > maxLineBytes) return overflow();
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
    }
  };
}
