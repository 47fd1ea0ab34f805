import fs from 'node:fs';
import path from 'node:path';
import {ControlServer, probeControlSocket} from '../control/server.ts';
import {DEFAULT_CONTROL_MAX_MESSAGE_BYTES, DEFAULT_EVENT_HISTORY, DEFAULT_MAINTENANCE_RETRY_AFTER_SECONDS, DEFAULT_PAUSE_TIMEOUT_MS} from '../config/defaults.ts';
import type {Config} from '../config/types.ts';
import {Deployer, proxyRuntimeOptions} from '../deploy/deployer.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError, isRollbridgeError} from '../errors/rollbridge-error.ts';
import {BufferedLogFile} from '../log/buffered-log-file.ts';
import {Logger, createStreamSink} from '../log/logger.ts';
import {AccessLog} from '../proxy/access-log.ts';
import {ProxyServer} from '../proxy/proxy-server.ts';
import {RequestMetrics} from '../proxy/request-metrics.ts';
import {PortAllocator} from '../supervisor/port-allocator.ts';
import {resolveGroupId, resolveUserId} from '../system/users.ts';
import {readOpenFileLimit, readProcStat} from '../system/proc.ts';
import type {RestoreReport} from '../deploy/deployer.ts';
import {EventHistory, createEventsFileSink} from './event-history.ts';
import {isStateProcessAlive, readBootId, readStateFile, removeStaleTempFiles, statePathOf} from '../state/state-file.ts';
import type {DaemonState} from '../state/state-file.ts';
import {StateKeeper} from './state-keeper.ts';
import {receiveListeningSocket, reportReady} from './replace.ts';
import {removeToken, writeToken} from '../control/replace-token.ts';
import {createHandlers} from './handlers.ts';
import {UnsafePathError, describeUnsafeDirectory} from '../util/private-file.ts';
import {DaemonMetrics} from './daemon-metrics.ts';
import {MetricsServer} from './metrics-server.ts';
import {computeRuntimeIdentity} from './runtime-identity.ts';
import type {RuntimeIdentity} from './runtime-identity.ts';
import type {ParamsOf, ResultOf, StatusResult} from '../control/protocol.ts';
import {DEFAULT_MAINTENANCE_MESSAGE} from '../proxy/traffic-gate.ts';
import {isoTime} from '../util/iso-time.ts';

export type DaemonOptions = {
  config: Config;
  /** The daemon's environment: base of every child environment and of `{{env.X}}`. */
  env: Record<string, string | undefined>;
  stdout: {write(chunk: string): unknown};
  version: {version: string; commit: string; node: string};
  /** Start without binding the proxy port (legacy takeover: a legacy app still holds it). */
  proxyDeferred?: boolean;
  /**
   * Bind the control socket here instead of control.path (the upgrade from a 0.1 daemon that holds
   * control.path); a takeover moves it to control.path once the 0.1 daemon has let go.
   */
  controlPath?: string;
  /**
   * Boot-time release (`daemon --release-path`, 0.1's bootstrap from systemd): deployed after the proxy
   * binds and before the control socket opens, so no deploy can overlap it.
   */
  bootstrap?: BootstrapRequest | undefined;
  /** Started by a running daemon that hands over (ensure-daemon --replace): take its listening socket and control path. */
  successor?: boolean;
};

export type BootstrapRequest = {releasePath: string; releaseId?: string | undefined; revision?: string | undefined};

/** The boot-time release (status `bootstrap`): what ran and how it ended. It describes the boot, even after later deploys. */
export type BootstrapStatus = {
  releaseId: string;
  releasePath: string;
  revision: string;
  /** `deployed`: started before the control socket opened; `already-active`: the release re-adopted from the state file was this one. */
  outcome: `deployed` | `already-active`;
  startedAt: string;
  durationMs: number;
};

/** What the daemon found in the state file at start-up (status `recovery`). */
export type RecoveryStatus = {
  statePath: string;
  previousDaemonPid: number | null;
  stateWrittenAt: string | null;
  restoredAt: string;
  durationMs: number;
  error?: string;
} & Partial<RestoreReport>;

/**
 * The composition root: event history → proxy → deployer (supervisor + deploy path) → control socket.
 * `shutdown()` reverses it and runs once.
 */
export class Daemon {
  readonly log: Logger;
  readonly history: EventHistory;
  readonly deployer: Deployer;
  readonly proxy: ProxyServer;
  /** `metrics.listen`: the series, and the server that exposes them (null when off). */
  readonly metrics: DaemonMetrics | null;
  #metricsServer: MetricsServer | null = null;
  readonly #accessLogFile: BufferedLogFile | null;
  readonly startedAt = new Date();
  readonly #options: DaemonOptions;
  #control: ControlServer | undefined;
  #shutdown: Promise<void> | undefined;
  #stopping = false;
  readonly #stopped = Promise.withResolvers<void>();
  readonly #stoppingSignal = Promise.withResolvers<void>();
  readonly state: StateKeeper;
  /** Hashed from the start; `status` waits for it, so daemonRuntime.digest is never null (runtime-identity.ts). */
  readonly #runtime: Promise<RuntimeIdentity>;
  recovery: RecoveryStatus | null = null;
  bootstrap: BootstrapStatus | null = null;
  /** Proves the right to ask for a handover (see replace.ts); written beside the control socket. */
  token = ``;
  handedOver = false;

  private constructor(options: DaemonOptions, parts: {log: Logger; history: EventHistory; proxy: ProxyServer; deployer: Deployer; metrics: DaemonMetrics | null; accessLogFile: BufferedLogFile | null}) {
    this.#options = options;
    this.log = parts.log;
    this.history = parts.history;
    this.proxy = parts.proxy;
    this.deployer = parts.deployer;
    this.metrics = parts.metrics;
    this.#accessLogFile = parts.accessLogFile;
    this.state = new StateKeeper({path: statePathOf(options.config), build: () => this.#stateDocument(), log: parts.log});
    this.#runtime = computeRuntimeIdentity(options.version);
  }

  #stateDocument(): DaemonState {
    const config = this.config;
    return {
      format: 1,
      application: config.application,
      writtenAt: isoTime(),
      bootId: readBootId(),
      daemon: {pid: process.pid, startTime: readProcStat(process.pid)?.startTime ?? null, version: this.#options.version.version},
      proxy: {host: config.proxy.host, port: config.proxy.port},
      ...this.deployer.snapshot(),
      traffic: this.proxy.gate.snapshot(),
    };
  }

  /**
   * Re-adoption (product §5.8): processes a previous daemon left running are supervised again before
   * the proxy listens, so the first request already reaches the surviving web process.
   */
  async #restore(log: Logger): Promise<void> {
    const statePath = this.state.path;
    const startedAt = performance.now();
    removeStaleTempFiles(statePath);
    let state: DaemonState | null;
    try {
      state = readStateFile(statePath);
    } catch (error) {
      // A state file someone else could have written names processes to signal: never start on it.
      if (isRollbridgeError(error) && error.code === ErrorCode.STATE_FILE_UNSAFE) throw error;
      log.error(`state file unreadable; nothing re-adopted`, {statePath, err: error});
      this.recovery = {statePath, previousDaemonPid: null, stateWrittenAt: null, restoredAt: isoTime(), durationMs: 0, error: (error as Error).message};
      return;
    }
    if (state === null) return;
    if (state.application !== this.config.application) {
      log.warn(`state file belongs to another application; ignored`, {statePath, application: state.application});
      return;
    }
    if (state.traffic !== undefined) {
      this.proxy.gate.restore(state.traffic);
      const traffic = this.proxy.gate.status;
      if (traffic.mode !== `open`) log.warn(`traffic state restored`, {mode: traffic.mode, pause: traffic.pause, maintenance: traffic.maintenance});
    }
    const bootId = state.bootId;
    const report = await this.deployer.restore(state, (recorded) => isStateProcessAlive(recorded, bootId));
    this.recovery = {
      statePath,
      previousDaemonPid: state.daemon.pid,
      stateWrittenAt: state.writtenAt,
      restoredAt: isoTime(),
      durationMs: Math.round(performance.now() - startedAt),
      ...report,
    };
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const {config} = options;
    checkFileLocations(config);
    const history = new EventHistory(DEFAULT_EVENT_HISTORY);
    const log = new Logger({sinks: [createStreamSink(options.stdout), history.sink]});
    if (config.eventsPath) log.addSink(createEventsFileSink(config.eventsPath));
    const daemonLog = log.child({component: `daemon`});

    // A successor first takes the predecessor's listening socket (nothing else is safe before it).
    const listeningSocket = options.successor ? await receiveListeningSocket() : undefined;
    // Refuse early (before binding the proxy port) when another daemon owns the control socket.
    const controlPath = options.controlPath ?? config.control.path;
    const probe = options.successor ? {state: `absent` as const} : await probeControlSocket(controlPath);
    if (probe.state === `daemon`) {
      const activeReleaseId = typeof probe.status.activeReleaseId === `string` ? probe.status.activeReleaseId : `none`;
      throw new RollbridgeError(ErrorCode.DAEMON_RUNNING, `A rollbridge daemon for application "${String(probe.status.application)}" is already running on ${controlPath} (active release: ${activeReleaseId})`, {
        fix: `Run "rollbridge status" to inspect it or "rollbridge shutdown" to stop it, or set a different control.path`,
        details: {path: controlPath},
      });
    }

    const requests = config.metrics.listen === undefined ? null : new RequestMetrics();
    const accessLogFile = config.proxy.accessLog === undefined ? null : openAccessLog(config, log.child({component: `proxy`}));
    const accessLog = accessLogFile === null ? null : new AccessLog(accessLogFile, {includeQuery: config.proxy.accessLog!.includeQuery});
    const proxy = ProxyServer.create({host: config.proxy.host, port: config.proxy.port, log: log.child({component: `proxy`}), openFileLimit: readOpenFileLimit(), metrics: requests, accessLog, ...proxyRuntimeOptions(config)});
    const ports = new PortAllocator({host: config.proxy.upstreamHost});
    const deployer = new Deployer({config, proxy, ports, log, baseEnv: options.env});
    const metrics = requests === null ? null : new DaemonMetrics({requests, proxy, deployer, accessLog: accessLogFile, version: options.version.version});
    if (metrics !== null) {
      // Before re-adoption, so restarts it causes are counted.
      log.addSink(metrics.sink);
      deployer.onOutcome((outcome) => metrics.recordOutcome(outcome));
    }
    const daemon = new Daemon(options, {log: daemonLog, history, proxy, deployer, metrics, accessLogFile});
    // Bound before anything is started or adopted: a port in use stops the daemon with nothing to undo.
    // A successor binds it once its predecessor has let go (the predecessor closes it when it retires).
    try {
      if (metrics !== null && !options.successor) daemon.#metricsServer = await daemon.#startMetricsServer(metrics, daemonLog);
      await daemon.#restore(daemonLog);
      if (listeningSocket) await proxy.listen(listeningSocket);
      else if (!options.proxyDeferred) await proxy.listen();
      if (options.bootstrap !== undefined) {
        try {
          await daemon.#bootstrap(options.bootstrap, daemonLog);
        } catch (error) {
          await proxy.close();
          throw error;
        }
      }
      try {
        daemon.#control = await ControlServer.start({
          path: controlPath,
          mode: config.control.mode,
          owner: config.control.owner === undefined ? undefined : resolveUserId(config.control.owner),
          group: config.control.group === undefined ? undefined : resolveGroupId(config.control.group),
          application: config.application,
          maxMessageBytes: DEFAULT_CONTROL_MAX_MESSAGE_BYTES,
          handlers: createHandlers(daemon),
          log: log.child({component: `control`}),
          replaceExisting: options.successor === true,
        });
      } catch (error) {
        await proxy.close();
        throw error;
      }
    } catch (error) {
      // Nothing is left bound or open by a daemon that did not start.
      await daemon.#metricsServer?.close();
      await accessLogFile?.close();
      throw error;
    }
    daemon.state.start();
    if (metrics !== null && options.successor) daemon.#bindMetricsWhenFree(metrics, daemonLog);
    deployer.onChange(() => void daemon.state.persist());
    if (accessLogFile !== null) deployer.onChange(() => accessLogFile.updateLimits(daemon.config.logs));
    // Bounded memory over any number of deploys, scraped or not.
    if (metrics !== null) deployer.onChange(() => metrics.forgetPrunedReleases());
    deployer.useStateWriter(() => daemon.state.commit());
    daemon.token = writeToken(controlPath);
    if (options.successor) reportReady();
    daemon.#schedulePruning();
    daemonLog.info(`daemon started`, {pid: process.pid, application: config.application, version: options.version.version});
    return daemon;
  }

  get config(): Config {
    return this.deployer.config;
  }

  async #startMetricsServer(metrics: DaemonMetrics, log: Logger): Promise<MetricsServer> {
    const listen = this.config.metrics.listen!;
    return MetricsServer.start({host: listen.host, port: listen.port, render: () => metrics.render(), log});
  }

  /** A successor: the predecessor still holds metrics.listen until it retires; bind as soon as it is free. */
  #bindMetricsWhenFree(metrics: DaemonMetrics, log: Logger): void {
    const deadline = Date.now() + METRICS_HANDOVER_WAIT_MS;
    const attempt = (): void => {
      if (this.#stopping) return;
      this.#startMetricsServer(metrics, log).then((server) => {
        if (this.#stopping) void server.close();
        else this.#metricsServer = server;
      }, (error: unknown) => {
        if ((error as RollbridgeError).details?.errno === `EADDRINUSE` && Date.now() < deadline) setTimeout(attempt, 100).unref();
        else log.error(`metrics endpoint not started`, {err: error});
      });
    };
    attempt();
  }

  /**
   * The boot-time deploy (0.1's `daemon --release-path` bootstrap). A release re-adopted from the state
   * file that is this very release is kept (a daemon restarted by systemd does not restart the app). A
   * failed deploy has stopped what it started; the error ends the daemon (exit 1). SIGINT/SIGTERM meanwhile
   * let the deploy settle, then stop everything and end the daemon with DAEMON_SHUTTING_DOWN (exit 0).
   */
  async #bootstrap(request: BootstrapRequest, log: Logger): Promise<void> {
    const startedAt = new Date();
    const clock = performance.now();
    const active = this.deployer.activeRelease;
    const report = (releaseId: string, revision: string, outcome: BootstrapStatus[`outcome`]) => {
      this.bootstrap = {releaseId, releasePath: request.releasePath, revision, outcome, startedAt: isoTime(startedAt), durationMs: Math.round(performance.now() - clock)};
      log.info(`bootstrap release active`, {...this.bootstrap});
    };
    if (active !== null && active.releasePath === request.releasePath && (request.releaseId ?? active.releaseId) === active.releaseId && (request.revision ?? active.revision) === active.revision) {
      report(active.releaseId, active.revision, `already-active`);
      return;
    }
    let interrupted: NodeJS.Signals | null = null;
    const onSignal = (signal: NodeJS.Signals) => {
      interrupted = signal;
      log.info(`signal received during the boot-time deploy; stopping once it settles`, {signal});
    };
    process.on(`SIGINT`, onSignal);
    process.on(`SIGTERM`, onSignal);
    let result: Awaited<ReturnType<Deployer[`deploy`]>> | undefined;
    let failure: unknown;
    try {
      log.info(`bootstrap starting`, {releasePath: request.releasePath, releaseId: request.releaseId ?? null, revision: request.revision ?? null});
      result = await this.deployer.deploy({releasePath: request.releasePath, releaseId: request.releaseId, revision: request.revision});
    } catch (error) {
      failure = error;
    } finally {
      process.off(`SIGINT`, onSignal);
      process.off(`SIGTERM`, onSignal);
    }
    if (interrupted !== null) {
      await this.deployer.shutdown().catch((error: unknown) => log.error(`shutdown after the interrupted bootstrap failed`, {err: error}));
      throw new RollbridgeError(ErrorCode.DAEMON_SHUTTING_DOWN, `The daemon was stopped by ${String(interrupted)} during the boot-time deploy of ${request.releasePath}`, {
        fix: `Start it again when it should serve (systemctl start …)`,
        details: {signal: interrupted},
      });
    }
    if (result === undefined) {
      log.error(`bootstrap activation failed`, {releasePath: request.releasePath, releaseId: request.releaseId ?? null, status: `error`, err: failure});
      throw failure;
    }
    const release = this.deployer.activeRelease;
    report(result.releaseId, release?.revision ?? request.revision ?? result.releaseId, `deployed`);
  }

  /** Where the control socket is bound: control.path, or a temporary path until publishControlSocket(). */
  get controlPath(): string {
    return this.#control?.path ?? this.config.control.path;
  }

  /**
   * Moves the control socket (and the replacement token) from the temporary path it was bound at to
   * control.path, replacing whatever is left there (a 0.1 daemon's socket file). No-op when it is there already.
   */
  async publishControlSocket(): Promise<void> {
    const control = this.#control;
    const target = this.config.control.path;
    if (control === undefined || control.path === target) return;
    const from = control.path;
    await control.relocate(target);
    removeToken(from, this.token);
    this.token = writeToken(target);
    this.log.info(`control socket moved`, {from, path: target});
  }

  /** `releaseRetention.maxAgeMs` applies between deploys too (upstream pruned only after a drain or stop). */
  #schedulePruning(): void {
    const tick = () => {
      if (this.#stopping) return;
      this.deployer.pruneReleases();
      const maxAgeMs = this.config.releaseRetention.maxAgeMs;
      const nextMs = maxAgeMs > 0 ? Math.max(100, Math.min(60_000, Math.ceil(maxAgeMs / 2))) : 60_000;
      setTimeout(tick, nextMs).unref();
    };
    tick();
  }

  get isStopping(): boolean {
    return this.#stopping;
  }

  /** Resolves as soon as a shutdown begins (streams such as `events --follow` end then). */
  get stopping(): Promise<void> {
    return this.#stoppingSignal.promise;
  }

  /** Settles once a shutdown (signal or `shutdown` command) has finished. */
  get stopped(): Promise<void> {
    return this.#stopped.promise;
  }

  /** The status document (upstream §4.20 field names, plus daemon and deploy additions). */
  async status(): Promise<StatusResult> {
    const runtime = await this.#runtime;
    const config = this.config;
    const deployer = this.deployer.status();
    const address = this.proxy.address;
    return {
      activeReleaseId: deployer.activeReleaseId,
      application: config.application,
      ...(this.bootstrap === null ? {} : {bootstrap: this.bootstrap}),
      control: {
        path: this.controlPath,
        ...(config.control.mode !== undefined ? {mode: config.control.mode} : {}),
        ...(config.control.owner !== undefined ? {owner: config.control.owner} : {}),
        ...(config.control.group !== undefined ? {group: config.control.group} : {}),
      },
      daemon: {
        pid: process.pid,
        startedAt: isoTime(this.startedAt),
        uptimeMs: Date.now() - this.startedAt.getTime(),
        configPath: config.configPath,
        deploying: deployer.deploying,
        stopping: this.#stopping,
        memory: daemonMemory(),
      },
      daemonRuntime: {...this.#options.version, format: 1, executable: process.execPath, digest: runtime.digest, path: runtime.path, sha256: runtime.digest},
      orphans: [],
      proxy: this.proxy.listening
        ? {host: address.host, port: address.port, upstreamHost: config.proxy.upstreamHost, listening: true}
        : {host: config.proxy.host, port: config.proxy.port, upstreamHost: config.proxy.upstreamHost, listening: false},
      statePath: this.state.path,
      recovery: this.recovery,
      releases: deployer.releases,
      services: deployer.services,
      singletons: deployer.singletons,
      traffic: this.proxy.gate.status,
    };
  }

  /** `rollbridge pause`: held from now on; answered once the state file records it. */
  async pause(params: ParamsOf<`pause`>): Promise<ResultOf<`pause`>> {
    const timeoutMs = params.timeoutMs ?? DEFAULT_PAUSE_TIMEOUT_MS;
    const {changed} = this.proxy.gate.pause(timeoutMs);
    await this.state.commit();
    this.log.info(`traffic paused`, {timeoutMs, changed});
    return {changed, traffic: this.proxy.gate.status};
  }

  /** `rollbridge resume`: the held requests go on. */
  async resume(): Promise<ResultOf<`resume`>> {
    const released = this.proxy.gate.status.held;
    const {changed} = this.proxy.gate.resume();
    await this.state.commit();
    this.log.info(`traffic resumed`, {changed, released: changed ? released : 0});
    return {changed, released: changed ? released : 0, traffic: this.proxy.gate.status};
  }

  /** `rollbridge maintenance on|off`. */
  async maintenance(params: ParamsOf<`maintenance`>): Promise<ResultOf<`maintenance`>> {
    const {changed} = this.proxy.gate.setMaintenance(params.enabled
      ? {message: params.message ?? DEFAULT_MAINTENANCE_MESSAGE, retryAfterSeconds: params.retryAfterSeconds ?? DEFAULT_MAINTENANCE_RETRY_AFTER_SECONDS}
      : null);
    await this.state.commit();
    this.log.info(params.enabled ? `maintenance on` : `maintenance off`, {changed});
    return {changed, traffic: this.proxy.gate.status};
  }

  /**
   * After a handover (replace.ts): the successor serves the proxy port and the control socket and
   * supervises the processes; this daemon closes its control connections (except the one that
   * asked, which gets its reply), retires its client connections and stops, leaving processes,
   * state file and socket path to the successor.
   */
  retireAfterHandover(retire: () => Promise<void>, keep: unknown): void {
    if (this.#shutdown) return;
    this.handedOver = true;
    this.#shutdown = (async () => {
      this.#stopping = true;
      this.#stoppingSignal.resolve();
      // The successor binds metrics.listen as soon as it is free.
      await this.#metricsServer?.close();
      await this.#control?.close({keep});
      await retire();
      await this.#accessLogFile?.close();
      this.log.info(`daemon stopped after handover`, {});
    })();
    this.#shutdown.then(() => this.#stopped.resolve(), (error: unknown) => this.#stopped.reject(error));
  }

  /**
   * Stops accepting control commands, stops every managed process (graceful), closes the proxy.
   * Idempotent: every caller shares one promise. `keep` is the control connection that asked.
   */
  shutdown(options: {keep?: unknown} = {}): Promise<void> {
    this.#shutdown ??= (async () => {
      this.#stopping = true;
      this.#stoppingSignal.resolve();
      this.log.info(`daemon stopping`, {});
      const errors: string[] = [];
      try {
        await this.#control?.close({keep: options.keep});
      } catch (error) {
        errors.push(`control socket close failed: ${(error as Error).message}`);
      }
      try {
        await this.deployer.shutdown();
      } catch (error) {
        errors.push((error as Error).message);
      }
      try {
        await this.proxy.close();
      } catch (error) {
        errors.push(`proxy close failed: ${(error as Error).message}`);
      }
      await this.#metricsServer?.close();
      await this.#accessLogFile?.close();
      try {
        await this.state.finish();
      } catch (error) {
        errors.push(`state file: ${(error as Error).message}`);
      }
      removeToken(this.controlPath, this.token);
      this.log.info(`daemon stopped`, {errors: errors.length});
      if (errors.length > 0) {
        throw new RollbridgeError(ErrorCode.PROCESS_STOP_FAILED, `Shutdown finished with errors: ${errors.join(`; `)}`, {
          fix: `Run "rollbridge recover" to list leftover processes`,
        });
      }
    })();
    this.#shutdown.then(() => this.#stopped.resolve(), (error: unknown) => this.#stopped.reject(error));
    return this.#shutdown;
  }
}

/** How long a successor daemon retries binding metrics.listen while its predecessor still holds it. */
const METRICS_HANDOVER_WAIT_MS = 30_000;

/** Opens proxy.accessLog (rotated with logs.maxBytes / logs.files); throws ERR_FILE_UNSAFE or ERR_ACCESS_LOG_UNWRITABLE. */
function openAccessLog(config: Config, log: Logger): BufferedLogFile {
  const file = config.proxy.accessLog!.path;
  try {
    return new BufferedLogFile({path: file, maxBytes: config.logs.maxBytes, files: config.logs.files, log});
  } catch (error) {
    if (error instanceof UnsafePathError) {
      throw new RollbridgeError(ErrorCode.FILE_UNSAFE, `Refusing proxy.accessLog ${file}: ${error.reason}`, {
        fix: `Set proxy.accessLog to a file in a directory only the daemon's user can write, or remove what is at ${file}`,
        details: {key: `proxy.accessLog`, path: file},
      });
    }
    const code = (error as NodeJS.ErrnoException).code;
    throw new RollbridgeError(ErrorCode.ACCESS_LOG_UNWRITABLE, `Cannot open proxy.accessLog ${file}: ${code ?? String(error)}`, {
      fix: `Make the directory of proxy.accessLog writable by the daemon's user, set proxy.accessLog to a writable path, or remove it from the config`,
      details: {key: `proxy.accessLog`, path: file, code},
      cause: error,
    });
  }
}

/**
 * Refuses to start when statePath or logs.dir lies in a directory others may write (without the sticky
 * bit): anyone could replace the state file between two writes, or a log file (the rule the control
 * socket's directory already follows). eventsPath is checked when it is opened.
 */
function checkFileLocations(config: Config): void {
  const statePath = statePathOf(config);
  const stateProblem = describeUnsafeDirectory(path.dirname(statePath));
  if (stateProblem !== null) {
    throw new RollbridgeError(ErrorCode.STATE_FILE_UNSAFE, `Refusing the state file ${statePath}: ${stateProblem}`, {
      fix: `Set statePath to a file in a directory only the daemon's user can write, or run "chmod o-w,g-w ${path.dirname(statePath)}"`,
      details: {statePath},
    });
  }
  const logsDir = config.logs.dir;
  const logsProblem = describeUnsafeDirectory(logsDir) ?? (fs.existsSync(logsDir) ? null : describeUnsafeDirectory(path.dirname(logsDir)));
  if (logsProblem !== null) {
    throw new RollbridgeError(ErrorCode.FILE_UNSAFE, `Refusing logs.dir ${logsDir}: ${logsProblem}`, {
      fix: `Set logs.dir to a directory only the daemon's user can write`,
      details: {key: `logs.dir`, path: logsDir},
    });
  }
}

/** The daemon's own memory in bytes (status `daemon.memory`; the memory benchmarks read it). */
function daemonMemory(): {rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number} {
  const {rss, heapTotal, heapUsed, external, arrayBuffers} = process.memoryUsage();
  return {rss, heapTotal, heapUsed, external, arrayBuffers};
}
