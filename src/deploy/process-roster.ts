import type {Config, ProcessConfig} from '../config/types.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import type {Logger} from '../log/logger.ts';
import {ManagedProcess} from '../supervisor/managed-process.ts';
import type {ProcessSpec} from '../supervisor/managed-process.ts';
import {LivenessCheck} from '../supervisor/liveness-check.ts';
import type {LivenessFailure} from '../supervisor/liveness-check.ts';
import {MemoryWatchdog} from '../supervisor/memory-watchdog.ts';
import type {PortAllocator} from '../supervisor/port-allocator.ts';
import {buildProcessLogSpec} from '../supervisor/process-log.ts';
import {getNotifySocketDir} from '../config/paths.ts';
import path from 'node:path';
import {healthProbeCheck} from '../supervisor/readiness.ts';
import {PROCESS_KEY_ENV} from '../state/state-file.ts';
import type {DaemonState, StatePendingProcess, StateProcess, StateRelease} from '../state/state-file.ts';
import {buildInstanceSpec} from './instance-spec.ts';
import type {Release} from './release.ts';
import {isoTime} from '../util/iso-time.ts';
import {randomBytes} from '../util/random-bytes.ts';

/** A daemon-wide service or a singleton, with the release whose definitions built it. */
export type DaemonProcess = {process: ManagedProcess; release: Release | null; port: number | undefined};

/**
 * Every process the daemon supervises, by where it belongs: the retained releases (with their
 * processes), the daemon-wide services and the singletons. Every managed process is created here
 * (so each one with `memory` gets its watchdog) and stopped for good here.
 */
export class ProcessRoster {
  readonly releases: Release[] = [];
  readonly services = new Map<string, DaemonProcess>();
  readonly singletons = new Map<string, DaemonProcess>();
  /** Set once the daemon stops: nothing starts any more. */
  stopping = false;
  /** Set while a successor daemon takes over: no deploys, no restarts (it re-adopts what runs now). */
  frozen = false;
  readonly #watchdogs = new Map<ManagedProcess, MemoryWatchdog>();
  readonly #livenessChecks = new Map<ManagedProcess, LivenessCheck>();
  /** Stopped for good: recorded only while something of them may still run. */
  readonly #retired = new WeakSet<ManagedProcess>();
  readonly #ports: PortAllocator;
  readonly #log: Logger;
  readonly #baseEnv: Record<string, string | undefined>;
  #onMemoryLimit: (release: Release, managed: ManagedProcess, shouldRestart: () => boolean) => Promise<void> = async () => undefined;
  #onLivenessFailed: (release: Release, managed: ManagedProcess, failure: LivenessFailure, shouldRestart: () => boolean) => Promise<void> = async () => undefined;

  constructor(options: {ports: PortAllocator; log: Logger; baseEnv: Record<string, string | undefined>}) {
    this.#ports = options.ports;
    this.#log = options.log;
    this.#baseEnv = options.baseEnv;
  }

  /** Throws ERR_DAEMON_SHUTTING_DOWN while the daemon hands over or stops: nothing new may start. */
  assertRunning(): void {
    if (this.frozen) {
      throw new RollbridgeError(ErrorCode.DAEMON_SHUTTING_DOWN, `The rollbridge daemon is handing over to a new daemon`, {
        fix: `Retry in a few seconds: the new daemon answers on the same control socket`,
      });
    }
    if (this.stopping) {
      throw new RollbridgeError(ErrorCode.DAEMON_SHUTTING_DOWN, `The rollbridge daemon is shutting down`, {
        fix: `Wait for it to exit, then start a new one with "rollbridge ensure-daemon"`,
      });
    }
  }

  get baseEnv(): Record<string, string | undefined> {
    return this.#baseEnv;
  }

  /** What a memory watchdog does when its process passes its limit (restarts.ts). */
  onMemoryLimit(handler: (release: Release, managed: ManagedProcess, shouldRestart: () => boolean) => Promise<void>): void {
    this.#onMemoryLimit = handler;
  }

  /** What a liveness check does when its process failed it `failureThreshold` times in a row (restarts.ts). */
  onLivenessFailed(handler: (release: Release, managed: ManagedProcess, failure: LivenessFailure, shouldRestart: () => boolean) => Promise<void>): void {
    this.#onLivenessFailed = handler;
  }

  /**
   * The rendered spec of one instance of `process` in `release` (templates, env, log files). `key`
   * (a new one by default) goes into its environment as ROLLBRIDGE_PROCESS_KEY: the state file
   * records it before the spawn, so a restarted daemon finds the process even if its pid was never written.
   */
  spec(release: Release, process: ProcessConfig, instanceId: string, replicaIndex: number, replicaCount: number, key: string = newProcessKey()): ProcessSpec {
    const logSpec = buildProcessLogSpec({logs: release.config.logs, releaseId: release.releaseId, instanceId, process});
    return withProcessKey({...buildInstanceSpec({
      port: release.instancePorts[instanceId],
      config: release.config,
      process,
      instanceId,
      releaseId: release.releaseId,
      releasePath: release.releasePath,
      revision: release.revision,
      replicaIndex,
      replicaCount,
      ports: release.ports,
      baseEnv: this.#baseEnv,
    }), ...logSpec}, key);
  }

  /** `key`: the recorded key of a process re-adopted or restarted after a daemon restart. */
  create(release: Release, process: ProcessConfig, instanceId: string, replicaIndex: number, replicaCount: number, shouldRestart: () => boolean, key?: string): ManagedProcess {
    return this.createFromSpec(release, process, this.spec(release, process, instanceId, replicaIndex, replicaCount, key), shouldRestart);
  }

  /** A spec without a process key gets a new one. */
  createFromSpec(release: Release, process: ProcessConfig, rendered: ProcessSpec, shouldRestart: () => boolean): ManagedProcess {
    const keyed = rendered.env[PROCESS_KEY_ENV] === undefined ? withProcessKey(rendered, newProcessKey()) : rendered;
    const spec = process.policy === `proxied` && process.health?.type === `notify` ? withNotifySocket(keyed, release.config.application) : keyed;
    const log = this.#log.child({component: `supervisor`, releaseId: release.releaseId, processId: spec.id});
    const managed = new ManagedProcess(spec, {log, shouldRestart: () => !this.frozen && shouldRestart()});
    if (process.memory) {
      const watchdog = new MemoryWatchdog({process: managed, memory: process.memory, log, onLimit: () => this.#onMemoryLimit(release, managed, shouldRestart)});
      this.#watchdogs.set(managed, watchdog);
      watchdog.start();
    }
    this.#startLivenessCheck(release, process, managed, shouldRestart, log);
    return managed;
  }

  /** Stops a process that will not run again (its release or slot is gone) and ends its memory watchdog. */
  stopForGood(managed: ManagedProcess): Promise<void> {
    this.#retired.add(managed);
    this.#watchdogs.get(managed)?.stop();
    this.#watchdogs.delete(managed);
    this.#livenessChecks.get(managed)?.stop();
    this.#livenessChecks.delete(managed);
    return managed.stop();
  }

  /** Lets go of every process without stopping it (a successor daemon supervises them). */
  detachAll(): void {
    for (const watchdog of this.#watchdogs.values()) watchdog.stop();
    this.#watchdogs.clear();
    for (const check of this.#livenessChecks.values()) check.stop();
    this.#livenessChecks.clear();
    for (const process of this.allProcesses()) process.detach();
  }

  /**
   * `health.liveness` (the proxied process) or `readiness.liveness` (any other): probed while the
   * process runs, a release's processes only while it is the active one (after the switch).
   */
  #startLivenessCheck(release: Release, process: ProcessConfig, managed: ManagedProcess, shouldRestart: () => boolean, log: Logger): void {
    const proxied = process.policy === `proxied`;
    const liveness = proxied ? process.health?.liveness : process.readiness?.liveness;
    const check = proxied ? (process.health ? healthProbeCheck(process.health) : null) : process.readiness;
    if (!liveness || !check) return;
    const livenessCheck = new LivenessCheck({
      process: managed,
      check: {kind: check.kind, path: check.path, command: check.command},
      liveness,
      target: () => ({processId: managed.id, host: release.config.proxy.upstreamHost, port: managed.spec.port, cwd: managed.spec.cwd, env: managed.spec.env}),
      // The proxied process only once the proxy sends to it (a replacement is judged by its health check until then).
      isWatched: () => !this.frozen && !this.stopping && shouldRestart() && (release.processes.includes(managed)
        ? release.state === `active` && (!proxied || release.targets.some((target) => target.port === managed.spec.port))
        : this.isDaemonWide(managed)),
      log,
      onFailed: (failure) => this.#onLivenessFailed(release, managed, failure, shouldRestart),
    });
    this.#livenessChecks.set(managed, livenessCheck);
    livenessCheck.start();
  }

  /** The key in the process's environment (see spec). */
  keyOf(managed: ManagedProcess): string {
    return managed.spec.env[PROCESS_KEY_ENV] ?? ``;
  }

  releasePorts(release: Release): void {
    this.#ports.releaseOwner(release.key);
    for (const owner of release.portOwners.splice(0)) this.#ports.releaseOwner(owner);
  }

  allProcesses(): ManagedProcess[] {
    return [...this.releases.flatMap((release) => release.processes), ...[...this.services.values(), ...this.singletons.values()].map((entry) => entry.process)];
  }

  /** True for a daemon-wide service or a singleton (not one release's process). */
  isDaemonWide(managed: ManagedProcess): boolean {
    for (const entry of [...this.services.values(), ...this.singletons.values()]) if (entry.process === managed) return true;
    return false;
  }

  /** The release whose definitions built a service or singleton (for readiness after a restart). */
  ownerOf(managed: ManagedProcess): Release | null {
    for (const entry of [...this.services.values(), ...this.singletons.values()]) if (entry.process === managed) return entry.release;
    return null;
  }

  /** The running instances of one definition: the service, the singleton, or the active release's instances. */
  instancesOf(process: ProcessConfig, active: Release | null): ManagedProcess[] {
    if (process.policy === `service` && process.deployStrategy !== `handoff`) {
      const entry = this.services.get(process.id);
      return entry ? [entry.process] : [];
    }
    if (process.policy === `singleton`) {
      const entry = this.singletons.get(process.id);
      return entry ? [entry.process] : [];
    }
    return active ? active.processes.filter((managed) => managed.spec.processId === process.id) : [];
  }

  allInstanceIds(config: Config, active: Release | null): string[] {
    return config.processes.flatMap((process) => this.instancesOf(process, active).map((managed) => managed.id));
  }

  /** Every managed process with a label saying where it belongs (for `logs`). */
  processSources(): Array<{id: string; source: string; process: ManagedProcess}> {
    const sources: Array<{id: string; source: string; process: ManagedProcess}> = [];
    for (const release of this.releases) {
      for (const process of release.processes) sources.push({id: process.id, source: `release ${release.releaseId} (${release.state})`, process});
    }
    for (const [id, entry] of this.services) sources.push({id, source: `service`, process: entry.process});
    for (const [id, entry] of this.singletons) sources.push({id, source: `singleton`, process: entry.process});
    return sources;
  }

  /**
   * What the state file records: releases, services and singletons, each process by pid + start time
   * while one is known, else by its key alone (`pending`: not spawned yet, between a crash and its
   * restart, or a stopping group whose leader is gone). A process leaves the record only once it is
   * stopped for good and gone. No commands, env values or output.
   */
  snapshot(active: Release | null, config: Config): Pick<DaemonState, `activeReleaseId` | `releases` | `services` | `singletons` | `pending`> {
    const policyOf = (managed: ManagedProcess) => config.processes.find((process) => process.id === managed.spec.processId)?.policy;
    const record = (managed: ManagedProcess, releaseId: string, policy: string, into: {processes: StateProcess[]; pending: StatePendingProcess[]}, draining = false): void => {
      if (managed.state === `stopped` && this.#retired.has(managed)) return;
      const key = this.keyOf(managed);
      const pid = managed.pid;
      const pgid = managed.pgid;
      const startTime = pid === undefined ? undefined : managed.startTime;
      if (pid === undefined || pgid === undefined || startTime === undefined || managed.state === `failed` || managed.state === `stopped`) {
        into.pending.push({id: managed.id, processId: managed.spec.processId, policy, releaseId, key});
        return;
      }
      const status = managed.status();
      into.processes.push({
        id: managed.id, processId: managed.spec.processId, policy, releaseId, pid, pgid, startTime,
        startedAt: status.startedAt ?? isoTime(),
        ...(managed.spec.port !== undefined ? {port: managed.spec.port} : {}),
        restarts: status.restarts, key, ...(draining ? {draining: true} : {}),
      });
    };
    const releases: StateRelease[] = this.releases.map((release) => {
      const into = {processes: [] as StateProcess[], pending: [] as StatePendingProcess[]};
      for (const managed of release.processes) record(managed, release.releaseId, policyOf(managed) ?? `companion`, into);
      for (const managed of release.replaced) record(managed, release.releaseId, policyOf(managed) ?? `proxied`, into, true);
      return {
        releaseId: release.releaseId,
        releasePath: release.releasePath,
        revision: release.revision,
        state: release.state,
        createdAt: isoTime(release.createdAt),
        ...(release.activatedAt ? {activatedAt: isoTime(release.activatedAt)} : {}),
        ...(release.drainStartedAt ? {drainStartedAt: isoTime(release.drainStartedAt)} : {}),
        ...(release.stoppedAt ? {stoppedAt: isoTime(release.stoppedAt)} : {}),
        ...(release.failureReason !== undefined ? {failure: release.failureReason} : {}),
        ports: {...release.ports},
        instancePorts: {...release.instancePorts},
        processes: into.processes,
        ...(into.pending.length > 0 ? {pending: into.pending} : {}),
      };
    });
    const services = {processes: [] as StateProcess[], pending: [] as StatePendingProcess[]};
    for (const entry of this.services.values()) record(entry.process, entry.release?.releaseId ?? ``, `service`, services);
    const singletons = {processes: [] as StateProcess[], pending: services.pending};
    for (const entry of this.singletons.values()) record(entry.process, entry.release?.releaseId ?? ``, `singleton`, singletons);
    return {
      activeReleaseId: active?.releaseId ?? null,
      releases,
      services: services.processes,
      singletons: singletons.processes,
      ...(services.pending.length > 0 ? {pending: services.pending} : {}),
    };
  }
}

/** A new process key: random, so keys never repeat across daemons. */
export function newProcessKey(): string {
  return randomBytes(9).toString(`base64url`);
}

/** health.type "notify": NOTIFY_SOCKET in the environment, one socket per process key (bound at each start). */
function withNotifySocket(spec: ProcessSpec, application: string): ProcessSpec {
  const socketPath = path.join(getNotifySocketDir(application), `${spec.env[PROCESS_KEY_ENV]}.sock`);
  return {...spec, notifySocketPath: socketPath, env: {...spec.env, NOTIFY_SOCKET: socketPath}};
}

function withProcessKey(spec: ProcessSpec, key: string): ProcessSpec {
  return {...spec, env: {...spec.env, [PROCESS_KEY_ENV]: key}};
}
