import fs from 'node:fs';
import type {DeployOutcome, Deployer} from '../deploy/deployer.ts';
import {ErrorCode} from '../errors/codes.ts';
import type {BufferedLogFile} from '../log/buffered-log-file.ts';
import type {LogRecord, LogSink} from '../log/logger.ts';
import type {ProxyServer} from '../proxy/proxy-server.ts';
import {LATENCY_BUCKETS_SECONDS, METHOD_CLASSES, STATUS_CLASSES} from '../proxy/request-metrics.ts';
import type {RequestMetrics} from '../proxy/request-metrics.ts';
import {CLOCK_TICKS_PER_SECOND, readOpenFileLimit, readProcessGroupsUsage} from '../system/proc.ts';
import {PrometheusText} from './prometheus-text.ts';

/** What the metrics read from the rest of the daemon (narrow parts, never the Daemon itself). */
export type MetricsSources = {
  requests: RequestMetrics;
  proxy: Pick<ProxyServer, `liveTargets` | `connections` | `gate`>;
  deployer: Pick<Deployer, `activeRelease` | `releases` | `processSources`>;
  accessLog: Pick<BufferedLogFile, `written` | `dropped`> | null;
  version: string;
};

type RestartReason = `crash` | `memory` | `manual` | `liveness`;
type RollbackTrigger = `command` | `watch` | `failed_switch`;

type HoldOutcome = `served` | `rolled_back` | `failed`;

/** Bounds (seconds) of the switch hold histogram: a hold is a drain, a stop, a start and a health check. */
const HOLD_BUCKETS_SECONDS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

/** The events that end a switch hold (their `heldMs`), by outcome. */
const HOLD_END_EVENTS: ReadonlyMap<string, HoldOutcome> = new Map([
  [`switch hold ended`, `served`],
  [`switch hold rolled back`, `rolled_back`],
  [`switch hold failed`, `failed`],
  [`previous release did not come back after the switch hold`, `failed`],
]);

const TRAFFIC_MODES = [`open`, `paused`, `maintenance`] as const;

const HEALTH_CHECK_CODES: ReadonlyMap<string, string> = new Map([
  [ErrorCode.HEALTH_CHECK_FAILED, `health`],
  [ErrorCode.READINESS_FAILED, `readiness`],
]);

/**
 * The daemon's Prometheus metrics (docs/metrics.md). Request counters live in the proxy
 * (request-metrics.ts); deploy outcomes come from the deployer; restarts and failed health checks are
 * counted from the daemon's events (the constant `msg` of each, the same records `events` shows), so
 * every counter has an event an operator can check it against. Gauges are read when /metrics is
 * scraped.
 */
export class DaemonMetrics {
  readonly #sources: MetricsSources;
  readonly #deploys = {succeeded: 0, failed: 0, rolled_back: 0};
  readonly #rollbacks: Record<RollbackTrigger, number> = {command: 0, watch: 0, failed_switch: 0};
  /** `process\0reason` → restarts. Bounded by the configured processes (× 4 reasons). */
  readonly #restarts = new Map<string, number>();
  readonly #healthCheckFailures = new Map<string, number>();
  /** process → failed liveness probes. Bounded by the configured processes. */
  readonly #livenessFailures = new Map<string, number>();
  readonly #canaries = {promoted: 0, rolled_back: 0};
  /** Per outcome: non-cumulative counts over HOLD_BUCKETS_SECONDS (+Inf last) and the sum in seconds. */
  readonly #holds = new Map<HoldOutcome, {buckets: Float64Array; sumSeconds: number}>();

  constructor(sources: MetricsSources) {
    this.#sources = sources;
  }

  /** A deploy or rollback ended (Deployer.onOutcome). */
  recordOutcome(outcome: DeployOutcome): void {
    if (outcome.kind === `rollback`) {
      if (outcome.outcome === `succeeded`) this.#rollbacks.command++;
      return;
    }
    this.#deploys[outcome.outcome]++;
    if (outcome.outcome === `rolled_back`) this.#rollbacks.watch++;
  }

  /** The log sink that counts events: process restarts, failed health checks, switch-backs. */
  get sink(): LogSink {
    return (record) => this.#count(record);
  }

  #count(record: LogRecord): void {
    switch (record.msg) {
      case `process started`: {
        const reason = record.reason as string;
        if (reason === `crash` || reason === `memory` || reason === `manual` || reason === `liveness`) increment(this.#restarts, `${String(record.id)}\u0000${reason satisfies RestartReason}`);
        return;
      }
      case `release startup failed`: {
        const check = HEALTH_CHECK_CODES.get(codeOf(record));
        if (check !== undefined) increment(this.#healthCheckFailures, check);
        return;
      }
      case `liveness check failed`:
      case `liveness failed`:
        // Each failed probe: those below the threshold, then the one that reaches it.
        increment(this.#livenessFailures, String(record.id));
        return;
      case `switching back`:
        // A watch-window switch-back is counted from the deploy's outcome.
        if (codeOf(record) !== ErrorCode.WATCH_ROLLED_BACK) this.#rollbacks.failed_switch++;
        return;
      case `canary promoted`:
        this.#canaries.promoted++;
        return;
      case `canary rolled back`:
        this.#canaries.rolled_back++;
        return;
    }
    const hold = HOLD_END_EVENTS.get(record.msg);
    if (hold !== undefined && typeof record.heldMs === `number`) this.#recordHold(hold, record.heldMs / 1000);
  }

  #recordHold(outcome: HoldOutcome, seconds: number): void {
    let entry = this.#holds.get(outcome);
    if (entry === undefined) {
      entry = {buckets: new Float64Array(HOLD_BUCKETS_SECONDS.length + 1), sumSeconds: 0};
      this.#holds.set(outcome, entry);
    }
    let bucket = 0;
    while (bucket < HOLD_BUCKETS_SECONDS.length && seconds > HOLD_BUCKETS_SECONDS[bucket]!) bucket++;
    entry.buckets[bucket]!++;
    entry.sumSeconds += seconds;
  }

  /** Forgets the request series of releases the deployer pruned (after every deploy, and at each scrape). */
  forgetPrunedReleases(): void {
    const {requests, deployer} = this.#sources;
    requests.retainReleases(new Set(deployer.releases.map((release) => release.releaseId)));
  }

  /** The exposition text of every series. */
  render(): string {
    const {requests, proxy, deployer} = this.#sources;
    this.forgetPrunedReleases();
    const out = new PrometheusText();

    out.family(`rollbridge_http_requests_total`, `counter`, `Requests through the proxy by release, process, method class and status class (proxy_error: answered by the proxy; aborted: no complete response)`);
    for (const series of [requests.unrouted, ...requests.series()]) {
      for (let method = 0; method < METHOD_CLASSES.length; method++) {
        for (let status = 0; status < STATUS_CLASSES.length; status++) {
          const count = series.requestCount(method, status);
          if (count > 0) out.sample(`rollbridge_http_requests_total`, {release: series.releaseId, process: series.processId, method: METHOD_CLASSES[method]!, status: STATUS_CLASSES[status]!}, count);
        }
      }
    }
    out.family(`rollbridge_http_request_duration_seconds`, `histogram`, `Time from a request's head to the end of its response, by release and process`);
    for (const series of requests.series()) {
      out.histogram(`rollbridge_http_request_duration_seconds`, {release: series.releaseId, process: series.processId}, LATENCY_BUCKETS_SECONDS, series.latencyBuckets, series.latencySumMs / 1000);
    }

    const perTarget = new Map<string, {release: string; process: string; inFlight: number; websockets: number; upstream: number}>();
    for (const target of proxy.liveTargets()) {
      const key = `${target.releaseId}\u0000${target.processId}`;
      const entry = perTarget.get(key) ?? {release: target.releaseId, process: target.processId, inFlight: 0, websockets: 0, upstream: 0};
      const connections = target.connections;
      entry.inFlight += connections.http;
      entry.websockets += connections.websocket;
      entry.upstream += target.pool.total;
      perTarget.set(key, entry);
    }
    out.family(`rollbridge_http_requests_in_flight`, `gauge`, `Requests sent to a release's process and not answered yet`);
    for (const entry of perTarget.values()) out.sample(`rollbridge_http_requests_in_flight`, {release: entry.release, process: entry.process}, entry.inFlight);
    out.family(`rollbridge_websockets_open`, `gauge`, `Open proxied WebSocket connections by release and process`);
    for (const entry of perTarget.values()) out.sample(`rollbridge_websockets_open`, {release: entry.release, process: entry.process}, entry.websockets);
    out.family(`rollbridge_upstream_connections_open`, `gauge`, `Open proxy connections to a release's process (pooled and busy)`);
    for (const entry of perTarget.values()) out.sample(`rollbridge_upstream_connections_open`, {release: entry.release, process: entry.process}, entry.upstream);
    const connections = proxy.connections;
    out.family(`rollbridge_proxy_connections_open`, `gauge`, `Open client connections to the proxy port`).sample(`rollbridge_proxy_connections_open`, null, connections.open);
    out.family(`rollbridge_proxy_connections_refused_total`, `counter`, `Client connections answered 503 at proxy.maxConnections`).sample(`rollbridge_proxy_connections_refused_total`, null, connections.refused);

    const accessLog = this.#sources.accessLog;
    if (accessLog !== null) {
      out.family(`rollbridge_access_log_lines_total`, `counter`, `Lines written to proxy.accessLog`).sample(`rollbridge_access_log_lines_total`, null, accessLog.written);
      out.family(`rollbridge_access_log_dropped_lines_total`, `counter`, `Access log lines dropped because the disk could not take them (full, failing or too slow)`).sample(`rollbridge_access_log_dropped_lines_total`, null, accessLog.dropped);
    }

    out.family(`rollbridge_deploys_total`, `counter`, `Deploys by outcome (rolled_back: switched back during the watch window)`);
    for (const [outcome, count] of Object.entries(this.#deploys)) out.sample(`rollbridge_deploys_total`, {outcome}, count);
    out.family(`rollbridge_rollbacks_total`, `counter`, `Traffic moved back to a previous release, by trigger (command: rollback; watch: watch window; failed_switch: a step after the switch failed)`);
    for (const [trigger, count] of Object.entries(this.#rollbacks)) out.sample(`rollbridge_rollbacks_total`, {trigger}, count);
    out.family(`rollbridge_process_restarts_total`, `counter`, `Restarts of managed processes by process and reason (crash, memory: over its memory limit, manual: the restart command, liveness: failed its liveness checks)`);
    for (const [key, count] of this.#restarts) {
      const [process, reason] = key.split(`\u0000`) as [string, string];
      out.sample(`rollbridge_process_restarts_total`, {process, reason}, count);
    }
    out.family(`rollbridge_health_check_failures_total`, `counter`, `Health checks (health) and readiness checks (readiness) that failed a deploy`);
    for (const check of HEALTH_CHECK_CODES.values()) out.sample(`rollbridge_health_check_failures_total`, {check}, this.#healthCheckFailures.get(check) ?? 0);
    out.family(`rollbridge_liveness_check_failures_total`, `counter`, `Failed liveness probes (health.liveness, readiness.liveness) of the active release's processes, by process`);
    for (const [process, count] of this.#livenessFailures) out.sample(`rollbridge_liveness_check_failures_total`, {process}, count);

    const traffic = proxy.gate.status;
    out.family(`rollbridge_traffic_mode`, `gauge`, `1 for the proxy's traffic mode (open; paused: rollbridge pause; maintenance: rollbridge maintenance on), 0 for the others`);
    for (const mode of TRAFFIC_MODES) out.sample(`rollbridge_traffic_mode`, {mode}, traffic.mode === mode ? 1 : 0);
    out.family(`rollbridge_traffic_pause_expired`, `gauge`, `1 while a pause has outlived its timeout (requests are answered 503 until resume)`).sample(`rollbridge_traffic_pause_expired`, null, traffic.pause?.expired === true ? 1 : 0);
    out.family(`rollbridge_traffic_switch_hold`, `gauge`, `1 while a deploy or restart holds requests for a switch: "hold" web process`).sample(`rollbridge_traffic_switch_hold`, null, traffic.switchHold ? 1 : 0);
    out.family(`rollbridge_requests_held`, `gauge`, `Requests the proxy holds right now (pause or switch hold); at proxy.maxHeldRequests one more is answered 503`).sample(`rollbridge_requests_held`, null, traffic.held);
    out.family(`rollbridge_switch_hold_duration_seconds`, `histogram`, `How long requests were held for a switch: "hold" web process, by outcome (served: they went on to the new or restarted process; rolled_back: to the previous release; failed)`);
    for (const [outcome, entry] of this.#holds) out.histogram(`rollbridge_switch_hold_duration_seconds`, {outcome}, HOLD_BUCKETS_SECONDS, entry.buckets, entry.sumSeconds);
    out.family(`rollbridge_canaries_total`, `counter`, `deploy --canary verdicts (promoted: the full switch followed; rolled_back: ERR_CANARY_REJECTED)`);
    for (const [outcome, count] of Object.entries(this.#canaries)) out.sample(`rollbridge_canaries_total`, {outcome}, count);

    const active = deployer.activeRelease;
    out.family(`rollbridge_active_release_info`, `gauge`, `The release the proxy sends new requests to (absent when none)`);
    if (active !== null) out.sample(`rollbridge_active_release_info`, {release: active.releaseId, revision: active.revision}, 1);

    this.#renderProcesses(out);
    renderDaemonProcess(out, this.#sources.version);
    return out.toString();
  }

  #renderProcesses(out: PrometheusText): void {
    const {deployer} = this.#sources;
    const releaseOf = new Map<unknown, string>();
    for (const release of deployer.releases) for (const managed of release.processes) releaseOf.set(managed, release.releaseId);
    const processes: Array<{release: string; process: string; pgid: number}> = [];
    for (const {id, process: managed} of deployer.processSources()) {
      const pgid = managed.pgid;
      if (pgid !== undefined && managed.state !== `stopped`) processes.push({release: releaseOf.get(managed) ?? ``, process: id, pgid});
    }
    const usages = readProcessGroupsUsage(new Set(processes.map((entry) => entry.pgid)));
    out.family(`rollbridge_process_resident_memory_bytes`, `gauge`, `Resident memory of a managed process (its whole process group)`);
    for (const entry of processes) {
      const usage = usages.get(entry.pgid);
      if (usage !== undefined) out.sample(`rollbridge_process_resident_memory_bytes`, {release: entry.release, process: entry.process}, usage.rssBytes);
    }
    out.family(`rollbridge_process_cpu_seconds_total`, `counter`, `CPU time (user + system) of the live members of a managed process's group`);
    for (const entry of processes) {
      const usage = usages.get(entry.pgid);
      if (usage !== undefined) out.sample(`rollbridge_process_cpu_seconds_total`, {release: entry.release, process: entry.process}, usage.cpuTicks / CLOCK_TICKS_PER_SECOND);
    }
  }
}

function renderDaemonProcess(out: PrometheusText, version: string): void {
  const cpu = process.cpuUsage();
  out.family(`process_cpu_seconds_total`, `counter`, `CPU time (user + system) of the rollbridge daemon`).sample(`process_cpu_seconds_total`, null, (cpu.user + cpu.system) / 1e6);
  out.family(`process_resident_memory_bytes`, `gauge`, `Resident memory of the rollbridge daemon`).sample(`process_resident_memory_bytes`, null, process.memoryUsage.rss());
  out.family(`process_start_time_seconds`, `gauge`, `Start of the rollbridge daemon (Unix time)`).sample(`process_start_time_seconds`, null, Math.round(Date.now() / 1000 - process.uptime()));
  const openFds = countOpenFds();
  if (openFds !== null) out.family(`process_open_fds`, `gauge`, `Open file descriptors of the rollbridge daemon`).sample(`process_open_fds`, null, openFds);
  const maxFds = readOpenFileLimit();
  if (maxFds !== undefined) out.family(`process_max_fds`, `gauge`, `Open-file limit of the rollbridge daemon`).sample(`process_max_fds`, null, maxFds);
  out.family(`rollbridge_build_info`, `gauge`, `The daemon's version and Node runtime`).sample(`rollbridge_build_info`, {version, node: process.versions.node}, 1);
}

function countOpenFds(): number | null {
  try {
    return fs.readdirSync(`/proc/self/fd`).length;
  } catch {
    return null;
  }
}

function codeOf(record: LogRecord): string {
  const err = record.err as {code?: unknown} | undefined;
  return typeof err?.code === `string` ? err.code : ``;
}

function increment(counters: Map<string, number>, key: string): void {
  counters.set(key, (counters.get(key) ?? 0) + 1);
}
