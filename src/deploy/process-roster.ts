import type {Config, ProcessConfig} from '../config/types.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import type {Logger} from '../log/logger.ts';
import {ManagedProcess} from '../supervisor/managed-process.ts';
import type {ProcessSpec} from '../supervisor/managed-process.ts';
import {MemoryWatchdog} from '../supervisor/memory-watchdog.ts';
import type {PortAllocator} from '../supervisor/port-allocator.ts';
import {buildProcessLogSpec} from '../supervisor/process-log.ts';
import type {DaemonState, StateProcess, StateRelease} from '../state/state-file.ts';
import {buildInstanceSpec} from './instance-spec.ts';
import type {Release} from './release.ts';

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
  readonly #ports: PortAllocator;
  readonly #log: Logger;
  readonly #baseEnv: Record<string, string | undefined>;
  #onMemoryLimit: (release: Release, managed: ManagedProcess, shouldRestart: () => boolean) => Promise<void> = async () => undefined;

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

  /** The rendered spec of one instance of `process` in `release` (templates, env, log files). */
  spec(release: Release, process: ProcessConfig, instanceId: string, replicaIndex: number, replicaCount: number): ProcessSpec {
    const logSpec = buildProcessLogSpec({logs: release.config.logs, releaseId: release.releaseId, instanceId, process});
    return {...buildInstanceSpec({
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
    }), ...logSpec};
  }

  create(release: Release, process: ProcessConfig, instanceId: string, replicaIndex: number, replicaCount: number, shouldRestart: () => boolean): ManagedProcess {
    return this.createFromSpec(release, process, this.spec(release, process, instanceId, replicaIndex, replicaCount), shouldRestart);
  }

  createFromSpec(release: Release, process: ProcessConfig, spec: ProcessSpec, shouldRestart: () => boolean): ManagedProcess {
    const log = this.#log.child({component: `supervisor`, releaseId: release.releaseId, processId: spec.id});
    const managed = new ManagedProcess(spec, {log, shouldRestart: () => !this.frozen && shouldRestart()});
    if (process.memory) {
      const watchdog = new MemoryWatchdog({process: managed, memory: process.memory, log, onLimit: () => this.#onMemoryLimit(release, managed, shouldRestart)});
      this.#watchdogs.set(managed, watchdog);
      watchdog.start();
    }
    return managed;
  }

  /** Stops a process that will not run again (its release or slot is gone) and ends its memory watchdog. */
  stopForGood(managed: ManagedProcess): Promise<void> {
    this.#watchdogs.get(managed)?.stop();
    this.#watchdogs.delete(managed);
    return managed.stop();
  }

  /** Lets go of every process without stopping it (a successor daemon supervises them). */
  detachAll(): void {
    for (const watchdog of this.#watchdogs.values()) watchdog.stop();
    this.#watchdogs.clear();
    for (const process of this.allProcesses()) process.detach();
  }

  releasePorts(release: Release): void {
    this.#ports.releaseOwner(release.key);
    for (const owner of release.portOwners.splice(0)) this.#ports.releaseOwner(owner);
  }

  allProcesses(): ManagedProcess[] {
    return [...this.releases.flatMap((release) => release.processes), ...[...this.services.values(), ...this.singletons.values()].map((entry) => entry.process)];
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

  /** What the state file records: releases, services and singletons, each process by pid + start time. No commands, env or output. */
  snapshot(active: Release | null, config: Config): Pick<DaemonState, `activeReleaseId` | `releases` | `services` | `singletons`> {
    const policyOf = (managed: ManagedProcess) => config.processes.find((process) => process.id === managed.spec.processId)?.policy;
    const processEntry = (managed: ManagedProcess, releaseId: string, policy: string): StateProcess[] => {
      const pid = managed.pid;
      const pgid = managed.pgid;
      const startTime = managed.startTime;
      if (managed.state !== `running` || pid === undefined || pgid === undefined || startTime === undefined) return [];
      const status = managed.status();
      return [{id: managed.id, processId: managed.spec.processId, policy, releaseId, pid, pgid, startTime, startedAt: status.startedAt ?? new Date().toISOString(), ...(managed.spec.port !== undefined ? {port: managed.spec.port} : {}), restarts: status.restarts}];
    };
    const releases: StateRelease[] = this.releases.map((release) => ({
      releaseId: release.releaseId,
      releasePath: release.releasePath,
      revision: release.revision,
      state: release.state,
      createdAt: release.createdAt.toISOString(),
      ...(release.activatedAt ? {activatedAt: release.activatedAt.toISOString()} : {}),
      ...(release.drainStartedAt ? {drainStartedAt: release.drainStartedAt.toISOString()} : {}),
      ...(release.stoppedAt ? {stoppedAt: release.stoppedAt.toISOString()} : {}),
      ports: {...release.ports},
      instancePorts: {...release.instancePorts},
      processes: release.processes.flatMap((managed) => processEntry(managed, release.releaseId, policyOf(managed) ?? `companion`)),
    }));
    return {
      activeReleaseId: active?.releaseId ?? null,
      releases,
      services: [...this.services.values()].flatMap((entry) => processEntry(entry.process, entry.release?.releaseId ?? ``, `service`)),
      singletons: [...this.singletons.values()].flatMap((entry) => processEntry(entry.process, entry.release?.releaseId ?? ``, `singleton`)),
    };
  }
}
