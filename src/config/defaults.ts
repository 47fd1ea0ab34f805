/** Defaults shared by the config schema, CLI flags and test builders. Upstream-compatible where upstream has one. */
export const DEFAULT_PROXY_HOST = `127.0.0.1`;
export const DEFAULT_PROXY_PORT = 8182;
export const DEFAULT_HEALTH_PATH = `/ping`;
export const DEFAULT_HEALTH_TIMEOUT_MS = 30_000;
export const DEFAULT_HEALTH_INTERVAL_MS = 250;
/** Per-probe timeout: a hung health endpoint can never stall a deploy (upstream had none). */
export const DEFAULT_HEALTH_PROBE_TIMEOUT_MS = 2_000;
export const DEFAULT_HEALTH_SUCCESS_THRESHOLD = 1;
/** Liveness checks (off unless `health.liveness`/`readiness.liveness` is set): one probe every 5 s, replaced after 3 failures in a row. */
export const DEFAULT_LIVENESS_INTERVAL_MS = 5_000;
export const DEFAULT_LIVENESS_FAILURE_THRESHOLD = 3;
export const DEFAULT_DRAIN_TIMEOUT_MS = 60_000;
export const DEFAULT_FORCE_STOP_TIMEOUT_MS = 10_000;
/** WebSockets still open at the drain deadline are closed with 1001 spread over this window. */
export const DEFAULT_WS_CLOSE_JITTER_MS = 1_000;
export const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
/** Time a client has to send a complete request head (408 after). */
export const DEFAULT_REQUEST_HEAD_TIMEOUT_MS = 30_000;
/** Idle keep-alive client connections are closed after this long. */
export const DEFAULT_CLIENT_IDLE_TIMEOUT_MS = 65_000;
/** Time the app has to send response headers once the request is sent (504 after); 0 disables. */
export const DEFAULT_UPSTREAM_RESPONSE_TIMEOUT_MS = 300_000;
/** Pooled idle connections to the app are dropped after this long (below Node's 5 s server keep-alive). */
export const DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS = 4_000;
/** A client that sends no request body bytes for this long gets 408 (nginx's client_body_timeout). */
export const DEFAULT_CLIENT_BODY_TIMEOUT_MS = 60_000;
/** A client that reads none of its response for this long is disconnected (nginx's send_timeout). */
export const DEFAULT_CLIENT_SEND_TIMEOUT_MS = 60_000;
/** Client connections open at once (also lowered to fit the open-file limit); one more gets 503. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;
/** `metrics.listen` given as a bare port binds this address (loopback: metrics are not for the world). */
export const DEFAULT_METRICS_HOST = `127.0.0.1`;
/** Requests held at once while the proxy is paused (`pause`, hold-on-switch); one more is answered 503. */
export const DEFAULT_MAX_HELD_REQUESTS = 1_000;
/** `rollbridge pause` without --timeout: held requests are answered 503 after this long. */
export const DEFAULT_PAUSE_TIMEOUT_MS = 30_000;
/** `rollbridge maintenance on` without --retry-after: the Retry-After header, in seconds. */
export const DEFAULT_MAINTENANCE_RETRY_AFTER_SECONDS = 60;
export const DEFAULT_TRUST_FORWARDED = [`loopback`] as const;
export const DEFAULT_RESTART_DELAY_MS = 1_000;
export const DEFAULT_OUTPUT_LINES = 50;
/** A process log file above this size is rotated. */
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
/** Rotated copies kept per process log file. */
export const DEFAULT_LOG_FILES = 3;
export const DEFAULT_STOP_SIGNAL = `SIGTERM`;
export const DEFAULT_RELEASE_KEEP = 10;
export const DEFAULT_RELEASE_MAX_AGE_MS = 0;
export const DEFAULT_MEMORY_CHECK_INTERVAL_MS = 5_000;
export const DEFAULT_EVENT_HISTORY = 1_000;
/** Largest control message accepted on the socket, in bytes (one NDJSON line). */
export const DEFAULT_CONTROL_MAX_MESSAGE_BYTES = 1024 * 1024;
export const DEFAULT_DAEMON_START_TIMEOUT_MS = 10_000;
export const DEFAULT_STATE_PERSIST_INTERVAL_MS = 5_000;
export const CONFIG_FILE_NAMES = [`rollbridge.js`, `rollbridge.mjs`, `rollbridge.cjs`, `rollbridge.json`] as const;
/** Longest run of hooks.beforeSwitch / hooks.afterSwitch before it is killed. */
export const DEFAULT_HOOK_TIMEOUT_MS = 600_000;
/** Output lines of a hook kept in its event. */
export const HOOK_OUTPUT_LINES = 20;
export const DEFAULT_WATCH_WINDOW_MS = 0;
/** `switch: "hold"`: requests are held at most this long before the deploy rolls back to the previous release. */
export const DEFAULT_HOLD_TIMEOUT_MS = 30_000;
/** deploy --canary without --canary-window. */
export const DEFAULT_CANARY_WINDOW_MS = 60_000;
export const DEFAULT_CANARY_MIN_REQUESTS = 20;
export const DEFAULT_CANARY_MAX_5XX_INCREASE_PERCENT = 1;
export const DEFAULT_CANARY_MAX_P95_RATIO = 1.5;
export const DEFAULT_CANARY_MIN_P95_INCREASE_MS = 50;
export const DEFAULT_WATCH_MAX_5XX_PERCENT = 10;
export const DEFAULT_WATCH_MIN_REQUESTS = 20;
