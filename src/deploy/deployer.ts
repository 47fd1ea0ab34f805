import fs from 'node:fs';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {loadConfig} from '../config/load.ts';
import {diffLiveReload} from '../config/live-reload.ts';
import type {Config, ProcessConfig} from '../config/types.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError, errorMessage, isRollbridgeError} from '../errors/rollbridge-error.ts';
import type {Logger} from '../log/logger.ts';
import type {ProxyServer} from '../proxy/proxy-server.ts';
import {probeHttp, waitForHealthy} from '../supervisor/health-check.ts';
import {ManagedProcess} from '../supervisor/managed-process.ts';
import type {ProcessSpec} from '../supervisor/managed-process.ts';
import {MemoryWatchdog} from '../supervisor/memory-watchdog.ts';
import {buildProcessLogSpec, removeReleaseLogs} from '../supervisor/process-log.ts';
import type {PortAllocator} from '../supervisor/port-allocator.ts';
import {waitForReady} from '../supervisor/readiness.ts';
import {SerialQueue} from '../util/serial-queue.ts';
import {hookFailure, runHook} from './hook-runner.ts';
import type {HookName, HookResult} from './hook-runner.ts';
import {buildInstanceSpec, formatHttpUrl} from './instance-spec.ts';
import {processPortEnvName} from './process-env.ts';
import {planRelease} from './plan.ts';
import type {ReleasePlan} from './plan.ts';
import {Release, generateReleaseId} from './release.ts';
import type {ReleaseStatus} from './release.ts';
import type {DeployPlanView} from '../control/protocol.ts';
import type {DaemonState, StateProcess, StateRelease} from '../state/state-file.ts';

export type DeployRequest = {
  releasePath: string;
  releaseId?: string | undefined;
  revision?: string | undefined;
  /** Queue behind a running deploy (default) or fail fast with ERR_DAEMON_BUSY. */
  wait?: boolean | undefined;
  skipHealthCheck?: boolean | undefined;
  /** Print the plan and change nothing. */
  dryRun?: boolean | undefined;
  /** Watch window in ms; overrides `watch.windowMs`. */
  watchMs?: number | undefined;
  /**
   * In-process only (never from the control socket): runs when the new release is healthy, right
   * before the switch; a throw aborts the deploy like a failed beforeSwitch hook. Legacy takeover
   * stops the legacy app and binds the proxy port here.
   */
  beforeSwitchAction?: ((release: Release, phase: (name: string, extra?: Record<string, unknown>) => void) => Promise<void>) | undefined;
};

export type DeployPhase = {phase: string; releaseId: string; durationMs: number; detail?: string};
export type ProgressListener = (event: DeployPhase & Record<string, unknown>) => void;

export type DeployResult = {
  /** Null only for a dry run on a daemon with nothing active. */
  activeReleaseId: string | null;
  previousReleaseId: string | null;
  releaseId: string;
  durationMs: number;
  phases: DeployPhase[];
  hooks?: HookResult[];
  plan?: DeployPlanView;
};


type DaemonProcess = {process: ManagedProcess; release: Release | null; port: number | undefined};

/**
 * Owns releases, daemon-wide services and singletons, and runs deploys, rollbacks, stops and restarts
 * one at a time. Joins the supervisor and the proxy (which never import each other).
 */
export class Deployer {
  #config: Config;
  readonly #proxy: ProxyServer;
  readonly #ports: PortAllocator;
  readonly #log: Logger;
  readonly #baseEnv: Record<string, string | undefined>;
  readonly #queue = new SerialQueue();
  readonly #releases: Release[] = [];
  readonly #services = new Map<string, DaemonProcess>();
  readonly #singletons = new Map<string, DaemonProcess>();
  readonly #watchdogs = new Map<ManagedProcess, MemoryWatchdog>();
  #active: Release | null = null;
  #stopping = false;
  readonly #changeListeners = new Set<() => void>();
  /** Set while a successor daemon takes over: no deploys, no restarts (it re-adopts what runs now). */
  #frozen = false;
  #deploying: string | null = null;

  constructor(options: {config: Config; proxy: ProxyServer; ports: PortAllocator; log: Logger; baseEnv: Record<string, string | undefined>}) {
    this.#config = options.config;
    this.#proxy = options.proxy;
    this.#ports = options.ports;
    this.#log = options.log.child({component: `deploy`});
    this.#baseEnv = options.baseEnv;
  }

  get config(): Config {
    return this.#config;
  }

  /** Called after every deploy, rollback, stop, restart and retirement (the state file is written then). */
  onChange(listener: () => void): void {
    this.#changeListeners.add(listener);
  }

  #changed(): void {
    for (const listener of this.#changeListeners) listener();
  }

  get activeRelease(): Release | null {
    return this.#active;
  }

  get releases(): readonly Release[] {
    return this.#releases;
  }

  // ---- commands -------------------------------------------------------------------------------

  deploy(request: DeployRequest, onProgress?: ProgressListener): Promise<DeployResult> {
    if (request.dryRun) return this.#dryRun(request);
    return this.#serialized(request.wait, `deploy`, () => this.#deploy(request, onProgress, `deploy`));
  }

  rollback(request: {releaseId?: string | undefined; wait?: boolean | undefined}, onProgress?: ProgressListener): Promise<DeployResult> {
    return this.#serialized(request.wait, `rollback`, async () => {
      const target = this.#pickRollbackTarget(request.releaseId);
      if (target.state !== `stopped` && target.state !== `failed`) {
        // Still draining: stop it now so its id can be reused without orphaning its processes.
        await this.#stopRelease(target);
      }
      this.#log.info(`rollback starting`, {releaseId: target.releaseId, releasePath: target.releasePath});
      return this.#deploy({releasePath: target.releasePath, releaseId: target.releaseId, revision: target.revision}, onProgress, `rollback`);
    });
  }

  stop(request: {releaseId?: string | undefined}): Promise<void> {
    return this.#serialized(true, `stop`, async () => {
      const release = request.releaseId === undefined ? this.#active : this.#findRelease(request.releaseId);
      if (!release) {
        throw new RollbridgeError(ErrorCode.RELEASE_NOT_FOUND, `Release not found: ${request.releaseId ?? `active`}`, {
          fix: `Run "rollbridge status" to list the retained releases and pass one of their ids with --release-id`,
          details: {releaseId: request.releaseId ?? null},
        });
      }
      if (release === this.#active) {
        this.#proxy.setActiveTargets([]);
        this.#active = null;
      }
      await this.#stopRelease(release);
      this.#prune();
    });
  }

  restart(request: {processId?: string | undefined; policy?: string | undefined; names?: string[] | undefined; cooldownMs?: number | undefined; wait?: boolean | undefined}): Promise<{restarted: string[]}> {
    return this.#serialized(request.wait, `restart`, async () => {
      // The proxied process is only restarted when named (by --process or --policy proxied): it is then
      // replaced without downtime (start, health check, switch, drain), never stopped in place.
      const names = request.names ?? [];
      const proxiedNamed = (process: ProcessConfig) => process.policy === `proxied` && (request.policy === `proxied` || request.processId !== undefined || names.length > 0);
      const nameMatches = (managed: ManagedProcess) => names.length === 0 || names.some((name) => managed.id.includes(name));
      // Typo safety: every name must match something, or nothing is restarted.
      const unmatched = names.filter((name) => !this.#allInstanceIds().some((id) => id.includes(name)));
      if (unmatched.length > 0) {
        const valid = this.#allInstanceIds();
        throw new RollbridgeError(ErrorCode.PROCESS_NOT_FOUND, `No managed process matches ${unmatched.map((name) => `"${name}"`).join(`, `)}; nothing was restarted`, {
          fix: `Use parts of these ids: ${valid.join(`, `) || `(none running)`}`,
          details: {names: unmatched, valid},
        });
      }
      const targets: ManagedProcess[] = [];
      for (const process of this.#config.processes) {
        if (process.policy === `proxied` && !proxiedNamed(process)) continue;
        if (request.policy !== undefined && process.policy !== request.policy) continue;
        for (const managed of this.#instancesOf(process)) {
          if (!nameMatches(managed)) continue;
          if (request.processId === undefined || request.processId === process.id || request.processId === managed.id) targets.push(managed);
        }
      }
      if (request.processId !== undefined && targets.length === 0) {
        const valid = this.#allInstanceIds();
        throw new RollbridgeError(ErrorCode.PROCESS_NOT_FOUND, `No managed process with id "${request.processId}" to restart`, {
          fix: `Pass one of: ${valid.join(`, `) || `(none running)`} to --process`,
          details: {processId: request.processId, valid},
        });
      }
      const restarted: string[] = [];
      for (const managed of targets) {
        if (restarted.length > 0 && request.cooldownMs) await delay(request.cooldownMs);
        this.#log.info(`process restart requested`, {processId: managed.id});
        const release = this.#active;
        if (release && release.processes.includes(managed) && this.#policyOf(managed) === `proxied`) {
          await this.#replaceProxied(release, managed);
        } else {
          await managed.stop();
          await managed.start(`manual`);
          const definition = this.#config.processes.find((process) => process.id === managed.spec.processId);
          const owner = release && release.processes.includes(managed) ? release : this.#ownerOf(managed);
          if (definition && owner) await this.#waitReady(owner, definition, managed);
        }
        restarted.push(managed.id);
      }
      return {restarted};
    });
  }

  /**
   * Zero-downtime replacement of a proxied instance of the active release: a new process on a fresh
   * port, health-checked, then the switch to its target, then the drain and stop of the old one.
   * A failure before the switch stops the new process and leaves the old one serving.
   */
  async #replaceProxied(release: Release, old: ManagedProcess, reason: `manual` | `memory` = `manual`): Promise<ManagedProcess> {
    const configIndex = release.config.processes.findIndex((process) => process.id === old.spec.processId);
    const process = release.config.processes[configIndex];
    const oldIndex = release.processes.indexOf(old);
    const oldTarget = release.targets.find((target) => target.processId === old.id);
    if (!process || !process.port || oldIndex === -1 || !oldTarget) throw new Error(`Assertion failed: ${old.id} is not a proxied instance of release ${release.releaseId}`);
    const owner = `${release.key}:${old.id}:${Date.now()}`;
    const port = await this.#ports.allocate({owner, processId: process.id, range: process.port, configKey: `processes[${configIndex}].port`});
    const replicaIndex = old.id.includes(`#`) ? Number(old.id.slice(old.id.indexOf(`#`) + 1)) : 0;
    const ports = replicaIndex === 0 ? {...release.ports, [process.id]: port} : release.ports;
    const spec = {...buildInstanceSpec({
      config: release.config, process, instanceId: old.id, releaseId: release.releaseId, releasePath: release.releasePath,
      revision: release.revision, replicaIndex, replicaCount: Math.max(1, process.replicas), ports, port, baseEnv: this.#baseEnv,
    }), ...buildProcessLogSpec({logs: release.config.logs, releaseId: release.releaseId, instanceId: old.id, process})};
    const fresh: ManagedProcess = this.#newProcess(release, process, spec, () => release.isLive && release.processes.includes(fresh));
    try {
      await fresh.start(reason);
      if (process.health) await this.#waitHealthy(release, fresh, process, port, configIndex);
    } catch (error) {
      await this.#stopForGood(fresh);
      this.#ports.releaseOwner(owner);
      throw error;
    }
    const target = this.#proxy.createTarget({releaseId: release.releaseId, processId: old.id, host: release.config.proxy.upstreamHost, port});
    release.processes.splice(oldIndex, 1, fresh);
    release.targets.splice(release.targets.indexOf(oldTarget), 1, target);
    if (replicaIndex === 0) release.ports[process.id] = port;
    if (old.id in release.instancePorts) release.instancePorts[old.id] = port;
    release.portOwners.push(owner);
    if (release === this.#active) this.#proxy.setActiveTargets(release.targets);
    this.#log.info(`process replaced`, {releaseId: release.releaseId, processId: old.id, previousPid: old.pid, pid: fresh.pid, port, reason});
    const drain = await oldTarget.drain({timeoutMs: release.config.proxy.drainTimeoutMs, wsCloseJitterMs: release.config.proxy.wsCloseJitterMs});
    await this.#stopForGood(old);
    oldTarget.close();
    this.#log.info(`process drained`, {releaseId: release.releaseId, processId: old.id, pid: old.pid, timedOut: drain.timedOut});
    return fresh;
  }

  #releasePorts(release: Release): void {
    this.#ports.releaseOwner(release.key);
    for (const owner of release.portOwners.splice(0)) this.#ports.releaseOwner(owner);
  }

  /** The release whose definitions built a service or singleton (for readiness after a restart). */
  #ownerOf(managed: ManagedProcess): Release | null {
    for (const entry of [...this.#services.values(), ...this.#singletons.values()]) if (entry.process === managed) return entry.release;
    return null;
  }

  #policyOf(managed: ManagedProcess): string | undefined {
    return this.#config.processes.find((process) => process.id === managed.spec.processId)?.policy;
  }

  status(): DeployerStatus {
    return {
      activeReleaseId: this.#active?.releaseId ?? null,
      deploying: this.#deploying,
      releases: this.#releases.map((release) => release.status()),
      services: [...this.#services.entries()].map(([id, entry]) => ({id, port: entry.port, process: entry.process.status() as unknown as Record<string, unknown>})),
      singletons: [...this.#singletons.entries()].map(([id, entry]) => ({id, releaseId: entry.release?.releaseId ?? null, process: entry.process.status() as unknown as Record<string, unknown>})),
    };
  }

  /** Every managed process with a label saying where it belongs (for `logs`). */
  processSources(): Array<{id: string; source: string; process: ManagedProcess}> {
    const sources: Array<{id: string; source: string; process: ManagedProcess}> = [];
    for (const release of this.#releases) {
      for (const process of release.processes) sources.push({id: process.id, source: `release ${release.releaseId} (${release.state})`, process});
    }
    for (const [id, entry] of this.#services) sources.push({id, source: `service`, process: entry.process});
    for (const [id, entry] of this.#singletons) sources.push({id, source: `singleton`, process: entry.process});
    return sources;
  }

  /** Stops everything this deployer manages (graceful stops, in parallel). Idempotent. */
  async shutdown(): Promise<void> {
    this.#stopping = true;
    this.#proxy.setActiveTargets([]);
    const stops: Array<Promise<void>> = [];
    for (const release of this.#releases) stops.push(this.#stopRelease(release));
    for (const entry of this.#services.values()) stops.push(this.#stopForGood(entry.process));
    for (const entry of this.#singletons.values()) stops.push(this.#stopForGood(entry.process));
    const results = await Promise.allSettled(stops);
    const failures = results.filter((result) => result.status === `rejected`);
    if (failures.length > 0) {
      throw new RollbridgeError(ErrorCode.PROCESS_STOP_FAILED, `Shutdown failed to stop ${failures.length} managed process group(s): ${failures.map((failure) => errorMessage((failure as PromiseRejectedResult).reason)).join(`; `)}`, {
        fix: `Run "rollbridge recover" to list leftover processes, then stop them`,
      });
    }
  }

  // ---- crash safety (product §5.8) ---------------------------------------------------------------

  /**
   * Daemon replacement, step 1: waits for the running deploy and for draining releases, then refuses
   * new work and stops restarting processes, so the state a successor reads stays true.
   */
  async freeze(): Promise<void> {
    await this.#queue.run(async () => {
      this.#assertNotStopping();
      await Promise.all(this.#releases.map((release) => release.retirement));
      this.#frozen = true;
    });
  }

  /** The successor failed: carry on supervising (a process that died meanwhile is restarted now). */
  unfreeze(): void {
    this.#frozen = false;
    for (const process of this.#allProcesses()) if (process.state === `failed`) void process.start(`crash`).catch((error: unknown) => this.#log.error(`process restart failed`, {id: process.id, err: error}));
  }

  /** Daemon replacement, last step: lets go of every process without stopping it (the successor supervises them). */
  abandon(): void {
    this.#stopping = true;
    for (const watchdog of this.#watchdogs.values()) watchdog.stop();
    this.#watchdogs.clear();
    for (const process of this.#allProcesses()) process.detach();
  }

  #allProcesses(): ManagedProcess[] {
    return [...this.#releases.flatMap((release) => release.processes), ...[...this.#services.values(), ...this.#singletons.values()].map((entry) => entry.process)];
  }

  /** What the state file records: releases, services and singletons, each process by pid + start time. No commands, env or output. */
  snapshot(): Pick<DaemonState, `activeReleaseId` | `releases` | `services` | `singletons`> {
    const processEntry = (managed: ManagedProcess, releaseId: string, policy: string): StateProcess[] => {
      const pid = managed.pid;
      const pgid = managed.pgid;
      const startTime = managed.startTime;
      if (managed.state !== `running` || pid === undefined || pgid === undefined || startTime === undefined) return [];
      const status = managed.status();
      return [{id: managed.id, processId: managed.spec.processId, policy, releaseId, pid, pgid, startTime, startedAt: status.startedAt ?? new Date().toISOString(), ...(managed.spec.port !== undefined ? {port: managed.spec.port} : {}), restarts: status.restarts}];
    };
    const releases: StateRelease[] = this.#releases.map((release) => ({
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
      processes: release.processes.flatMap((managed) => processEntry(managed, release.releaseId, this.#policyOf(managed) ?? `companion`)),
    }));
    return {
      activeReleaseId: this.#active?.releaseId ?? null,
      releases,
      services: [...this.#services.values()].flatMap((entry) => processEntry(entry.process, entry.release?.releaseId ?? ``, `service`)),
      singletons: [...this.#singletons.values()].flatMap((entry) => processEntry(entry.process, entry.release?.releaseId ?? ``, `singleton`)),
    };
  }

  /**
   * Re-adoption after a daemon restart: the still-running processes the state lists are supervised
   * again (by polling), the active release's web process is health-checked and routed to, services
   * and singletons are never started twice. Dead processes of the active release start again, like a
   * crash restart. Releases that were draining (or still starting) have their survivors stopped.
   * Runs before the control socket accepts commands, so nothing interleaves.
   */
  async restore(state: DaemonState, isAlive: (process: StateProcess) => boolean): Promise<RestoreReport> {
    const report: RestoreReport = {adopted: [], started: [], stopped: [], missing: [], unhealthy: []};
    const config = this.#config;
    const plan = planRelease(config);
    const definition = (processId: string) => config.processes.find((process) => process.id === processId);
    const adoptOrStart = async (managed: ManagedProcess, recorded: StateProcess | undefined, label: string): Promise<boolean> => {
      if (recorded && isAlive(recorded)) {
        managed.adopt(recorded);
        report.adopted.push(label);
        return true;
      }
      if (recorded) report.missing.push(label);
      await managed.start(`crash`);
      report.started.push(label);
      return false;
    };
    let active: Release | null = null;
    const retiring: Release[] = [];
    for (const saved of state.releases) {
      const release = new Release({releaseId: saved.releaseId, releasePath: saved.releasePath, revision: saved.revision, config});
      release.createdAt = new Date(saved.createdAt);
      if (saved.activatedAt) release.activatedAt = new Date(saved.activatedAt);
      if (saved.drainStartedAt) release.drainStartedAt = new Date(saved.drainStartedAt);
      if (saved.stoppedAt) release.stoppedAt = new Date(saved.stoppedAt);
      release.ports = {...saved.ports};
      release.instancePorts = {...saved.instancePorts};
      this.#releases.push(release);
      const isActive = saved.state === `active` && saved.releaseId === state.activeReleaseId && active === null;
      if (!isActive && saved.processes.length === 0) {
        release.state = saved.state === `failed` ? `failed` : `stopped`;
        release.stoppedAt ??= new Date();
        continue;
      }
      for (const port of [...Object.values(release.ports), ...Object.values(release.instancePorts)]) this.#ports.lease(release.key, port);
      if (!isActive) {
        // Draining (its connections died with the previous daemon) or half-started: stop what survived.
        release.state = `draining`;
        for (const recorded of saved.processes) {
          const process = definition(recorded.processId);
          if (!process || !isAlive(recorded)) continue;
          const managed = this.#createProcess(release, process, recorded.id, 0, 1, () => false);
          release.processes.push(managed);
          managed.adopt(recorded);
          report.stopped.push(`${recorded.id} (release ${release.releaseId})`);
        }
        retiring.push(release);
        continue;
      }
      active = release;
      release.state = `active`;
      for (const instance of plan.instances) {
        const recorded = saved.processes.find((entry) => entry.id === instance.instanceId);
        const managed = this.#createProcess(release, instance.process, instance.instanceId, instance.replicaIndex, instance.replicaCount, () => release.isLive);
        release.processes.push(managed);
        const adopted = await adoptOrStart(managed, recorded, instance.instanceId);
        if (instance.process.policy !== `proxied`) continue;
        const port = release.instancePorts[instance.instanceId] ?? release.ports[instance.process.id];
        if (port === undefined) continue;
        if (instance.process.health) {
          try {
            await this.#waitHealthy(release, managed, adopted ? {...instance.process, health: {...instance.process.health, startDelayMs: 0}} : instance.process, port, instance.configIndex);
          } catch (error) {
            report.unhealthy.push(instance.instanceId);
            this.#log.error(`re-adopted process unhealthy`, {releaseId: release.releaseId, processId: instance.instanceId, err: error});
          }
        }
        release.targets.push(this.#proxy.createTarget({releaseId: release.releaseId, processId: instance.instanceId, host: config.proxy.upstreamHost, port}));
      }
    }
    // Services and singletons: adopted when alive, never started twice.
    const owner = (releaseId: string) => this.#releases.findLast((release) => release.releaseId === releaseId) ?? active;
    for (const {process} of plan.services) {
      const recorded = state.services.find((entry) => entry.id === process.id);
      const release = recorded ? owner(recorded.releaseId) : active;
      if (!release || (!recorded && !active)) continue;
      const managed = this.#createProcess(release, process, process.id, 0, 1, () => !this.#stopping);
      const port = recorded?.port ?? release.ports[process.id];
      if (port !== undefined) this.#ports.lease(`service:${process.id}`, port);
      this.#services.set(process.id, {process: managed, release, port});
      await adoptOrStart(managed, recorded, process.id);
    }
    for (const {process} of plan.singletons) {
      const recorded = state.singletons.find((entry) => entry.id === process.id);
      const release = recorded ? owner(recorded.releaseId) : active;
      if (!release || !active) continue;
      const managed = this.#createProcess(release, process, process.id, 0, 1, () => this.#singletons.get(process.id)?.release?.isLive === true);
      this.#singletons.set(process.id, {process: managed, release, port: release.ports[process.id]});
      await adoptOrStart(managed, recorded, process.id);
    }
    if (active) {
      this.#active = active;
      this.#proxy.setActiveTargets(active.targets);
    }
    for (const release of retiring) this.#retire(release, config);
    this.#log.info(`state restored`, {activeReleaseId: active?.releaseId ?? null, adopted: report.adopted.length, started: report.started.length, stopped: report.stopped.length, unhealthy: report.unhealthy.length});
    return report;
  }

  // ---- deploy path ----------------------------------------------------------------------------

  async #serialized<T>(wait: boolean | undefined, what: string, task: () => Promise<T>): Promise<T> {
    this.#assertNotStopping();
    if (wait === false && this.#queue.isBusy) {
      throw new RollbridgeError(ErrorCode.DAEMON_BUSY, `Another deploy, rollback or restart is in progress (${this.#deploying ?? `queued work`}); "${what}" was not started`, {
        fix: `Retry when it has finished, or drop --no-wait to queue behind it`,
      });
    }
    return this.#queue.run(async () => {
      this.#assertNotStopping();
      try {
        return await task();
      } finally {
        this.#changed();
      }
    });
  }

  #assertNotStopping(): void {
    if (this.#frozen) {
      throw new RollbridgeError(ErrorCode.DAEMON_SHUTTING_DOWN, `The rollbridge daemon is handing over to a new daemon`, {
        fix: `Retry in a few seconds: the new daemon answers on the same control socket`,
      });
    }
    if (this.#stopping) {
      throw new RollbridgeError(ErrorCode.DAEMON_SHUTTING_DOWN, `The rollbridge daemon is shutting down`, {
        fix: `Wait for it to exit, then start a new one with "rollbridge ensure-daemon"`,
      });
    }
  }

  async #deploy(request: DeployRequest, onProgress: ProgressListener | undefined, kind: `deploy` | `rollback`): Promise<DeployResult> {
    const startedAt = performance.now();
    const phases: DeployPhase[] = [];
    let phaseStartedAt = startedAt;
    const releasePath = path.resolve(request.releasePath);
    const releaseId = request.releaseId ?? request.revision ?? generateReleaseId();
    const revision = request.revision ?? releaseId;
    const phase = (name: string, extra: Record<string, unknown> = {}) => {
      const now = performance.now();
      const entry: DeployPhase = {phase: name, releaseId, durationMs: Math.round(now - phaseStartedAt)};
      phaseStartedAt = now;
      phases.push(entry);
      onProgress?.({...entry, ...extra});
    };
    this.#deploying = `${kind} ${releaseId}`;
    try {
      const config = await this.#reloadConfig();
      validateReleasePath(releasePath);
      const previous = this.#active;
      const release = new Release({releaseId, releasePath, revision, config});
      this.#log.info(`deploy starting`, {releaseId, releasePath, ...(request.revision !== undefined ? {revision: request.revision} : {})});
      const plan = planRelease(config);
      const startedServices: string[] = [];
      const hooks: HookResult[] = [];
      try {
        await this.#allocatePorts(release, plan);
        await this.#startServices(release, plan, startedServices);
        await this.#startReleaseProcesses(release, plan, phase, request.skipHealthCheck === true);
        if (config.hooks.beforeSwitch) {
          const result = await this.#runHook(`beforeSwitch`, config.hooks.beforeSwitch, release);
          hooks.push(result);
          if (!result.ok) throw hookFailure(result, releaseId);
          phase(`beforeSwitch`, {exitCode: result.exitCode});
        }
        if (request.beforeSwitchAction) await request.beforeSwitchAction(release, phase);
      } catch (error) {
        await this.#abortRelease(release, startedServices, error);
        throw error;
      }
      // The switch: from here on new requests and upgrades go to the new release.
      this.#config = config;
      this.#proxy.updateOptions(proxyRuntimeOptions(config));
      this.#releases.push(release);
      release.state = `active`;
      release.activatedAt = new Date();
      this.#active = release;
      this.#proxy.setActiveTargets(release.targets);
      this.#log.info(`traffic switched`, {previousReleaseId: previous?.releaseId ?? null, releaseId});
      phase(`switched`, {previousReleaseId: previous?.releaseId ?? null});
      this.#refreshServices(release);
      let singletons: string[] = [];
      try {
        singletons = await this.#replaceSingletons(release, plan, previous);
      } catch (error) {
        await this.#switchBack(release, previous, error);
        throw error;
      }
      const watchMs = request.watchMs ?? config.watch.windowMs;
      if (previous && watchMs > 0) {
        this.#proxy.setActiveTargets(release.targets, {fallback: previous.targets});
        phase(`watching`, {detail: `previous release ${previous.releaseId} stays warm for ${watchMs} ms`});
        const problem = await this.#watch(release, watchMs, config);
        if (problem !== null) {
          const error = new RollbridgeError(ErrorCode.WATCH_ROLLED_BACK, `Release ${releaseId} was rolled back to ${previous.releaseId} during its watch window: ${problem}`, {
            fix: `Check "rollbridge logs --process web" and "rollbridge events" for the new release; fix it and deploy again`,
            details: {releaseId, previousReleaseId: previous.releaseId, reason: problem, watchMs},
          });
          this.#log.warn(`watch failed; switched back`, {releaseId, previousReleaseId: previous.releaseId, reason: problem});
          await this.#switchBack(release, previous, error, singletons);
          throw error;
        }
        this.#proxy.setActiveTargets(release.targets);
        phase(`watched`);
      }
      if (previous) {
        this.#retire(previous, config);
        phase(`draining`, {previousReleaseId: previous.releaseId, detail: `continues in the background for up to ${config.proxy.drainTimeoutMs} ms`});
      }
      if (config.hooks.afterSwitch) {
        // The switch stands whatever happens here: the result and the events report a failure.
        const result = await this.#runHook(`afterSwitch`, config.hooks.afterSwitch, release);
        hooks.push(result);
        phase(`afterSwitch`, {exitCode: result.exitCode, ok: result.ok});
      }
      return {
        activeReleaseId: release.releaseId,
        previousReleaseId: previous?.releaseId ?? null,
        releaseId,
        durationMs: Math.round(performance.now() - startedAt),
        phases,
        ...(hooks.length > 0 ? {hooks} : {}),
      };
    } catch (error) {
      this.#log.warn(`deploy failed`, {releaseId, err: error});
      throw error;
    } finally {
      this.#deploying = null;
    }
  }

  async #runHook(hook: HookName, command: string, release: Release): Promise<HookResult> {
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.#baseEnv)) if (value !== undefined) env[name] = value;
    Object.assign(env, {
      ROLLBRIDGE_APPLICATION: release.config.application,
      ROLLBRIDGE_RELEASE_ID: release.releaseId,
      ROLLBRIDGE_RELEASE_PATH: release.releasePath,
      ROLLBRIDGE_REVISION: release.revision,
      ROLLBRIDGE_HOOK: hook,
      ROLLBRIDGE_PREVIOUS_RELEASE_ID: this.#active && this.#active !== release ? this.#active.releaseId : (this.#releases.findLast((r) => r !== release && r.activatedAt)?.releaseId ?? ``),
    });
    for (const [processId, port] of Object.entries(release.ports)) env[processPortEnvName(processId)] = String(port);
    const result = await runHook({hook, command, cwd: release.releasePath, env, timeoutMs: release.config.hooks.timeoutMs});
    const fields = {hook, releaseId: release.releaseId, ok: result.ok, exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut, durationMs: result.durationMs, output: result.output};
    if (result.ok) this.#log.info(`hook finished`, fields);
    else this.#log.warn(`hook failed`, fields);
    return result;
  }

  /** `deploy --dry-run`: the plan from the reloaded config and the current state; starts and stops nothing. */
  async #dryRun(request: DeployRequest): Promise<DeployResult> {
    const startedAt = performance.now();
    const config = await this.#reloadConfig();
    const releasePath = path.resolve(request.releasePath);
    validateReleasePath(releasePath);
    const releaseId = request.releaseId ?? request.revision ?? generateReleaseId();
    const plan = planRelease(config);
    const describePort = (process: ProcessConfig): number | string | null => {
      if (!process.port) return null;
      const service = this.#services.get(process.id);
      if (process.policy === `service` && process.deployStrategy !== `handoff` && service?.port !== undefined) return service.port;
      if (process.port.from === 0 || process.port.to === 0) return `ephemeral`;
      return process.port.from === process.port.to ? process.port.from : `${process.port.from}-${process.port.to}`;
    };
    const keep: DeployPlanView[`keep`] = [];
    const start: DeployPlanView[`start`] = [];
    for (const {process} of plan.services) {
      const existing = this.#services.get(process.id);
      if (existing && existing.process.state === `running`) keep.push({processId: process.id, policy: `service`, pid: existing.process.pid ?? null, port: existing.port ?? null});
      else start.push({processId: process.id, policy: `service`, port: describePort(process), healthCheck: null});
    }
    for (const instance of plan.instances) {
      const health = instance.process.policy === `proxied` && instance.process.health && !request.skipHealthCheck
        ? formatHttpUrl(config.proxy.upstreamHost, 0, instance.process.health.path).replace(`:0/`, `:<port>/`)
        : null;
      start.push({processId: instance.instanceId, policy: instance.process.policy, port: describePort(instance.process), healthCheck: health});
    }
    const previous = this.#active;
    const view: DeployPlanView = {
      releaseId,
      releasePath,
      start,
      keep,
      singletons: plan.singletons.map(({process}) => ({processId: process.id, replaces: this.#singletons.get(process.id)?.process.pid ?? null})),
      hooks: {beforeSwitch: config.hooks.beforeSwitch ?? null, afterSwitch: config.hooks.afterSwitch ?? null},
      drain: previous ? {releaseId: previous.releaseId, timeoutMs: config.proxy.drainTimeoutMs, connections: previous.connections, processes: previous.processes.map((process) => process.id)} : null,
    };
    return {
      activeReleaseId: previous?.releaseId ?? null,
      previousReleaseId: previous?.releaseId ?? null,
      releaseId,
      durationMs: Math.round(performance.now() - startedAt),
      phases: [],
      plan: view,
    };
  }

  async #reloadConfig(): Promise<Config> {
    const {config} = await loadConfig({cwd: path.dirname(this.#config.configPath), configPath: this.#config.configPath});
    const changed = diffLiveReload(this.#config, config);
    if (changed.length > 0) {
      throw new RollbridgeError(ErrorCode.CONFIG_LIVE_RELOAD, `Config changes to ${changed.join(`, `)} cannot be applied live`, {
        fix: `Revert those fields in ${this.#config.configPath}, or restart the daemon ("rollbridge shutdown", then deploy with --ensure-daemon) to apply them`,
        details: {fields: changed},
      });
    }
    return config;
  }

  async #allocatePorts(release: Release, plan: ReleasePlan): Promise<void> {
    for (const {process, configKey} of plan.portRequests) {
      if (process.port === undefined) continue;
      const service = process.policy === `service` && process.deployStrategy !== `handoff` ? this.#services.get(process.id) : undefined;
      if (service?.port !== undefined) {
        release.ports[process.id] = service.port;
        continue;
      }
      release.ports[process.id] = await this.#ports.allocate({owner: release.key, processId: process.id, range: process.port, configKey});
      // Proxied replicas each listen on their own port; `ports.<id>` (templates) is the first one's.
      if (process.policy === `proxied` && process.replicas > 1) {
        release.instancePorts[`${process.id}#0`] = release.ports[process.id] as number;
        for (let index = 1; index < process.replicas; index++) {
          release.instancePorts[`${process.id}#${index}`] = await this.#ports.allocate({owner: release.key, processId: `${process.id}#${index}`, range: process.port, configKey});
        }
      }
    }
  }

  async #startServices(release: Release, plan: ReleasePlan, started: string[]): Promise<void> {
    for (const {process} of plan.services) {
      const existing = this.#services.get(process.id);
      if (existing && (existing.process.state === `running` || existing.process.state === `starting` || existing.process.state === `stopping`)) continue;
      const port = release.ports[process.id];
      if (existing) {
        // A stopped or failed service is revived by the next deploy (upstream left it down).
        existing.process.updateSpec(this.#spec(release, process, process.id, 0, 1));
        await existing.process.start(`deploy`);
        await this.#waitReady(release, process, existing.process);
        continue;
      }
      const managed = this.#createProcess(release, process, process.id, 0, 1, () => !this.#stopping);
      if (port !== undefined) this.#ports.lease(`service:${process.id}`, port);
      this.#services.set(process.id, {process: managed, release, port});
      started.push(process.id);
      await managed.start(`deploy`);
      await this.#waitReady(release, process, managed);
    }
  }

  /** A process with `readiness` must pass it before anything after it starts (dependsOn order). */
  async #waitReady(release: Release, process: ProcessConfig, managed: ManagedProcess): Promise<void> {
    if (!process.readiness) return;
    const configIndex = release.config.processes.indexOf(process);
    await waitForReady(process.readiness, {
      processId: managed.id,
      host: release.config.proxy.upstreamHost,
      port: managed.spec.port,
      cwd: managed.spec.cwd,
      env: managed.spec.env,
    }, {configKey: `processes[${configIndex}].readiness`});
    this.#log.info(`process ready`, {releaseId: release.releaseId, processId: managed.id});
  }

  async #startReleaseProcesses(release: Release, plan: ReleasePlan, phase: (name: string, extra?: Record<string, unknown>) => void, skipHealthCheck: boolean): Promise<void> {
    for (const instance of plan.instances) {
      this.#assertNotStopping();
      const managed = this.#createProcess(release, instance.process, instance.instanceId, instance.replicaIndex, instance.replicaCount, () => release.isLive);
      release.processes.push(managed);
      await managed.start(`deploy`);
      if (instance.process.policy !== `proxied`) {
        await this.#waitReady(release, instance.process, managed);
        continue;
      }
      const port = release.instancePorts[instance.instanceId] ?? release.ports[instance.process.id];
      if (port === undefined) continue;
      phase(`started`, {processId: instance.instanceId, pid: managed.pid, port});
      if (instance.process.health && !skipHealthCheck) {
        await this.#waitHealthy(release, managed, instance.process, port, instance.configIndex);
        phase(`healthy`, {processId: instance.instanceId});
      } else if (skipHealthCheck) {
        this.#log.warn(`health check skipped`, {releaseId: release.releaseId, processId: instance.instanceId});
      }
      release.targets.push(this.#proxy.createTarget({releaseId: release.releaseId, processId: instance.instanceId, host: release.config.proxy.upstreamHost, port}));
    }
  }

  async #waitHealthy(release: Release, managed: ManagedProcess, process: ProcessConfig, port: number, configIndex: number): Promise<void> {
    const health = process.health;
    if (!health) return;
    const controller = new AbortController();
    const exited = managed.waitForExit().then((exit) => {
      const output = managed.recentOutput().slice(-10).map((line) => line.line);
      const error = new RollbridgeError(ErrorCode.PROCESS_EXITED, `Process "${managed.id}" of release ${release.releaseId} exited (${exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`}) before it became healthy`, {
        fix: `Check the output below; run the command from processes[${configIndex}].command in ${release.releasePath} by hand to reproduce`,
        details: {processId: managed.id, releaseId: release.releaseId, exitCode: exit.code, exitSignal: exit.signal, output},
      });
      controller.abort(error);
      throw error;
    });
    exited.catch(() => undefined);
    try {
      await waitForHealthy({
        url: formatHttpUrl(release.config.proxy.upstreamHost, port, health.path),
        timeoutMs: health.timeoutMs,
        intervalMs: health.intervalMs,
        startDelayMs: health.startDelayMs,
        probeTimeoutMs: health.probeTimeoutMs,
        successThreshold: health.successThreshold,
        signal: controller.signal,
        configKey: `processes[${configIndex}].health`,
      });
    } catch (error) {
      if (controller.signal.aborted && isRollbridgeError(controller.signal.reason)) throw controller.signal.reason;
      if (isRollbridgeError(error)) {
        throw new RollbridgeError(error.code, error.message, {fix: error.fix, details: {...error.details, output: managed.recentOutput().slice(-10).map((line) => line.line)}, cause: error});
      }
      throw error;
    } finally {
      controller.abort();
    }
  }

  async #abortRelease(release: Release, startedServices: string[], error: unknown): Promise<void> {
    release.state = `failed`;
    this.#log.warn(`release startup failed`, {releaseId: release.releaseId, phase: `before cleanup`, err: error});
    await Promise.allSettled(release.processes.map((process) => this.#stopForGood(process)));
    for (const target of release.targets) target.close();
    for (const id of startedServices) {
      const entry = this.#services.get(id);
      if (!entry) continue;
      await this.#stopForGood(entry.process).catch(() => undefined);
      this.#services.delete(id);
      this.#ports.releaseOwner(`service:${id}`);
    }
    this.#releasePorts(release);
    for (const process of release.processes) {
      const status = process.status() as unknown as Record<string, unknown>;
      this.#log.info(`release startup process status`, {releaseId: release.releaseId, processId: process.id, phase: `after cleanup`, state: status.state, exitCode: status.exitCode, exitSignal: status.exitSignal, pid: status.pid});
    }
  }

  #refreshServices(release: Release): void {
    for (const [id, entry] of this.#services) {
      const process = release.config.processes.find((p) => p.id === id);
      if (!process) continue;
      entry.process.updateSpec(this.#spec(release, process, id, 0, 1));
      entry.release = release;
    }
  }

  /** Replaces singletons one at a time; on failure puts the replaced ones back and throws. Returns the ids it replaced. */
  async #replaceSingletons(release: Release, plan: ReleasePlan, previous: Release | null): Promise<string[]> {
    const replaced: string[] = [];
    for (const {process} of plan.singletons) {
      const old = this.#singletons.get(process.id);
      if (old) await this.#stopForGood(old.process);
      const managed = this.#createProcess(release, process, process.id, 0, 1, () => this.#singletons.get(process.id)?.release?.isLive === true);
      this.#singletons.set(process.id, {process: managed, release, port: release.ports[process.id]});
      replaced.push(process.id);
      try {
        await managed.start(`deploy`);
        await this.#waitReady(release, process, managed);
      } catch (error) {
        await this.#restoreSingletons(replaced, previous);
        throw new RollbridgeError(ErrorCode.SINGLETON_START_FAILED, `Singleton "${process.id}" of release ${release.releaseId} could not start: ${errorMessage(error)}`, {
          fix: `Check processes[${release.config.processes.indexOf(process)}].command and cwd; the previous release keeps serving`,
          details: {processId: process.id, releaseId: release.releaseId},
          cause: error,
        });
      }
    }
    return replaced;
  }

  /** Stops the given singletons and starts the previous release's ones again (never two at once). */
  async #restoreSingletons(ids: string[], previous: Release | null): Promise<void> {
    for (const id of ids) {
      const current = this.#singletons.get(id);
      if (current) await this.#stopForGood(current.process).catch(() => undefined);
      const definition = previous?.config.processes.find((process) => process.id === id && process.policy === `singleton`);
      if (!previous || !definition) {
        this.#singletons.delete(id);
        continue;
      }
      const restored = this.#createProcess(previous, definition, id, 0, 1, () => this.#singletons.get(id)?.release?.isLive === true);
      this.#singletons.set(id, {process: restored, release: previous, port: previous.ports[id]});
      await restored.start(`deploy`).catch((error: unknown) => this.#log.error(`singleton restore failed`, {processId: id, err: error}));
    }
  }

  /** After the switch something failed: route back to the still-running previous release and stop the new one. */
  async #switchBack(release: Release, previous: Release | null, error: unknown, singletons: string[] = []): Promise<void> {
    this.#log.warn(`switching back`, {releaseId: release.releaseId, previousReleaseId: previous?.releaseId ?? null, err: error});
    if (previous) {
      this.#proxy.setActiveTargets(previous.targets);
      this.#active = previous;
      this.#config = previous.config;
      this.#refreshServices(previous);
    } else {
      this.#proxy.setActiveTargets([]);
      this.#active = null;
    }
    release.state = `failed`;
    await this.#restoreSingletons(singletons, previous);
    await this.#stopRelease(release, `failed`);
  }

  /**
   * The watch window (product §5.4): the previous release stays warm (and is the proxy's fallback)
   * while the new one is watched; resolves null when the window passed, else the reason to switch back.
   */
  async #watch(release: Release, windowMs: number, config: Config): Promise<string | null> {
    const webProcesses = release.processes.filter((managed) => this.#policyOf(managed) === `proxied`);
    const web = config.processes.find((process) => process.policy === `proxied`);
    const baseline = release.targets.map((target) => ({...target.stats}));
    const controller = new AbortController();
    const exits = webProcesses.map((managed) => managed.waitForExit().then((exit) => `web process ${managed.id} exited (${exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`})`));
    const probes = (async (): Promise<string | never> => {
      let failures = 0;
      const intervalMs = Math.min(web?.health?.intervalMs ?? 500, 500);
      while (!controller.signal.aborted) {
        await delay(intervalMs, undefined, {signal: controller.signal}).catch(() => undefined);
        if (controller.signal.aborted) break;
        let requests = 0;
        let bad = 0;
        release.targets.forEach((target, index) => {
          requests += target.stats.requests - (baseline[index]?.requests ?? 0);
          bad += target.stats.responses5xx + target.stats.errors - (baseline[index]?.responses5xx ?? 0) - (baseline[index]?.errors ?? 0);
        });
        if (requests >= config.watch.minRequests && requests > 0 && (bad / requests) * 100 > config.watch.max5xxPercent) {
          return `${bad} of ${requests} responses were 5xx or errors (${((bad / requests) * 100).toFixed(1)}% > watch.max5xxPercent ${config.watch.max5xxPercent}%)`;
        }
        if (web?.health) {
          for (const target of release.targets) {
            const result = await probeHttp(formatHttpUrl(target.host, target.port, web.health.path), web.health.probeTimeoutMs).catch(() => ({ok: false as const, error: `probe aborted`}));
            if (result.ok) failures = 0;
            else if (++failures >= 2) return `health check of ${formatHttpUrl(target.host, target.port, web.health.path)} failed twice: ${result.error}`;
          }
        }
      }
      return new Promise<never>(() => undefined);
    })();
    try {
      return await Promise.race([...exits, probes, delay(windowMs, null, {signal: controller.signal})]);
    } finally {
      controller.abort();
    }
  }

  #retire(release: Release, config: Config): void {
    release.state = `draining`;
    release.drainStartedAt = new Date();
    // The retiring release stops with the stop settings of the new config (upstream §4.4).
    for (const process of release.processes) {
      const definition = config.processes.find((p) => p.id === process.spec.processId);
      if (definition) process.updateSpec({...process.spec, stopSignal: definition.stopSignal, gracefulStopMs: definition.gracefulStopMs, lifecycle: definition.lifecycle});
    }
    release.retirement = (async () => {
      const byPolicy = (policy: string) => release.processes.filter((process) => release.config.processes.find((p) => p.id === process.spec.processId)?.policy === policy);
      const nonBlocking = release.processes.filter((process) => config.processes.find((p) => p.id === process.spec.processId)?.nonBlockingDrain === true);
      const handoff = byPolicy(`service`);
      const early = Promise.allSettled(nonBlocking.map((process) => this.#stopForGood(process)));
      const drains = await Promise.all(release.targets.map((target) => target.drain({timeoutMs: config.proxy.drainTimeoutMs, wsCloseJitterMs: config.proxy.wsCloseJitterMs})));
      const timedOut = drains.some((drain) => drain.timedOut);
      const dependents = release.processes.filter((process) => !nonBlocking.includes(process) && !handoff.includes(process));
      await Promise.allSettled(dependents.map((process) => this.#stopForGood(process)));
      await early;
      await Promise.allSettled(handoff.map((process) => this.#stopForGood(process)));
      for (const target of release.targets) target.close();
      this.#releasePorts(release);
      if (release.state === `draining`) {
        release.state = `stopped`;
        release.stoppedAt = new Date();
      }
      this.#log.info(`release drained`, {releaseId: release.releaseId, timedOut});
      this.#prune();
      this.#changed();
    })().catch((error: unknown) => {
      this.#log.error(`release drain failed`, {releaseId: release.releaseId, err: error});
    });
  }

  async #stopRelease(release: Release, finalState: `stopped` | `failed` = `stopped`): Promise<void> {
    if (release.state === `stopped`) return;
    const wasDraining = release.state === `draining`;
    release.state = finalState;
    await Promise.allSettled(release.processes.map((process) => this.#stopForGood(process)));
    for (const target of release.targets) target.close();
    if (wasDraining) await release.retirement;
    this.#releasePorts(release);
    release.stoppedAt = new Date();
    this.#log.info(`release stopped`, {releaseId: release.releaseId});
  }

  /** Forgets stopped releases beyond `releaseRetention`; the daemon also calls this on a timer for `maxAgeMs`. */
  pruneReleases(): void {
    this.#prune();
  }

  /** Forgets stopped releases beyond `releaseRetention` (never the active or draining ones). */
  #prune(): void {
    const {keep, maxAgeMs} = this.#config.releaseRetention;
    const stopped = this.#releases
      .map((release, index) => ({release, index}))
      .filter(({release}) => release.state === `stopped` || release.state === `failed`)
      .sort((a, b) => (b.release.stoppedAt?.getTime() ?? 0) - (a.release.stoppedAt?.getTime() ?? 0) || b.index - a.index);
    const now = Date.now();
    const drop = new Set<Release>();
    stopped.forEach(({release}, rank) => {
      if (rank >= keep) drop.add(release);
      if (maxAgeMs > 0 && release.stoppedAt && now - release.stoppedAt.getTime() > maxAgeMs) drop.add(release);
    });
    if (drop.size === 0) return;
    for (let index = this.#releases.length - 1; index >= 0; index--) {
      const release = this.#releases[index];
      if (release && drop.has(release)) this.#releases.splice(index, 1);
    }
    for (const release of drop) if (!this.#releases.some((kept) => kept.releaseId === release.releaseId)) removeReleaseLogs(release.config.logs.dir, release.releaseId);
  }

  #pickRollbackTarget(releaseId: string | undefined): Release {
    if (releaseId !== undefined) {
      const candidates = this.#releases.filter((release) => release.releaseId === releaseId);
      if (candidates.length === 0) {
        throw new RollbridgeError(ErrorCode.RELEASE_NOT_FOUND, `No retained release "${releaseId}" to roll back to`, {
          fix: `Run "rollbridge status" to list retained releases; raise releaseRetention.keep to retain more`,
          details: {releaseId},
        });
      }
      if (candidates.some((release) => release === this.#active)) {
        throw new RollbridgeError(ErrorCode.RELEASE_ALREADY_ACTIVE, `Release "${releaseId}" is already active`, {fix: `Pass the id of another retained release to --release-id`});
      }
      return candidates[candidates.length - 1] as Release;
    }
    const previous = this.#releases
      .filter((release) => release !== this.#active && release.activatedAt !== undefined && release.releaseId !== this.#active?.releaseId)
      .sort((a, b) => (b.activatedAt?.getTime() ?? 0) - (a.activatedAt?.getTime() ?? 0))[0];
    if (!previous) {
      throw new RollbridgeError(ErrorCode.NO_PREVIOUS_RELEASE, `No previous release to roll back to`, {
        fix: `Deploy the release you want with "rollbridge deploy --release-path <path>"`,
      });
    }
    return previous;
  }

  #findRelease(releaseId: string): Release | undefined {
    for (let index = this.#releases.length - 1; index >= 0; index--) {
      const release = this.#releases[index];
      if (release?.releaseId === releaseId && release.state !== `stopped`) return release;
    }
    return this.#releases.findLast((release) => release.releaseId === releaseId);
  }

  #instancesOf(process: ProcessConfig): ManagedProcess[] {
    if (process.policy === `service` && process.deployStrategy !== `handoff`) {
      const entry = this.#services.get(process.id);
      return entry ? [entry.process] : [];
    }
    if (process.policy === `singleton`) {
      const entry = this.#singletons.get(process.id);
      return entry ? [entry.process] : [];
    }
    return this.#active ? this.#active.processes.filter((managed) => managed.spec.processId === process.id) : [];
  }

  #allInstanceIds(): string[] {
    return this.#config.processes.flatMap((process) => this.#instancesOf(process).map((managed) => managed.id));
  }

  #spec(release: Release, process: ProcessConfig, instanceId: string, replicaIndex: number, replicaCount: number): ProcessSpec {
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

  #createProcess(release: Release, process: ProcessConfig, instanceId: string, replicaIndex: number, replicaCount: number, shouldRestart: () => boolean): ManagedProcess {
    return this.#newProcess(release, process, this.#spec(release, process, instanceId, replicaIndex, replicaCount), shouldRestart);
  }

  /** Every managed process is made here, so each one with `memory` gets its watchdog. */
  #newProcess(release: Release, process: ProcessConfig, spec: ProcessSpec, shouldRestart: () => boolean): ManagedProcess {
    const log = this.#log.child({component: `supervisor`, releaseId: release.releaseId, processId: spec.id});
    const managed = new ManagedProcess(spec, {log, shouldRestart: () => !this.#frozen && shouldRestart()});
    if (process.memory) {
      const watchdog = new MemoryWatchdog({process: managed, memory: process.memory, log, onLimit: () => this.#restartForMemory(release, managed, shouldRestart)});
      this.#watchdogs.set(managed, watchdog);
      watchdog.start();
    }
    return managed;
  }

  /** Over its memory limit: the proxied process of the active release is replaced without downtime, others restart. */
  async #restartForMemory(release: Release, managed: ManagedProcess, shouldRestart: () => boolean): Promise<void> {
    // A release still starting is judged by its health check; a restart now would only fail the deploy obscurely.
    if (this.#stopping || this.#frozen || release.state === `starting`) return;
    if (release === this.#active && release.processes.includes(managed) && this.#policyOf(managed) === `proxied`) {
      await this.#queue.run(async () => {
        if (release === this.#active && release.processes.includes(managed)) await this.#replaceProxied(release, managed, `memory`);
      });
      return;
    }
    await managed.stop();
    if (shouldRestart() && !this.#stopping) await managed.start(`memory`);
  }

  /** Stops a process that will not run again (its release or slot is gone) and ends its memory watchdog. */
  #stopForGood(managed: ManagedProcess): Promise<void> {
    this.#watchdogs.get(managed)?.stop();
    this.#watchdogs.delete(managed);
    return managed.stop();
  }
}

/** What re-adoption did, by instance id (shown in `status.recovery`). */
export type RestoreReport = {
  /** Found running (same pid and start time) and supervised again. */
  adopted: string[];
  /** Not running any more (or never recorded): started again. */
  started: string[];
  /** Survivors of a draining or half-started release: stopped. */
  stopped: string[];
  /** Recorded, but gone when the daemon came back. */
  missing: string[];
  /** Web processes whose health check failed after re-adoption. */
  unhealthy: string[];
};

export type DeployerStatus = {
  activeReleaseId: string | null;
  deploying: string | null;
  releases: ReleaseStatus[];
  services: Array<{id: string; port: number | undefined; process: Record<string, unknown>}>;
  singletons: Array<{id: string; releaseId: string | null; process: Record<string, unknown>}>;
};

export function proxyRuntimeOptions(config: Config) {
  return {
    trustForwarded: config.proxy.trustForwarded,
    maxHeaderBytes: config.proxy.maxHeaderBytes,
    requestHeadTimeoutMs: config.proxy.requestHeadTimeoutMs,
    clientIdleTimeoutMs: config.proxy.clientIdleTimeoutMs,
    upstreamResponseTimeoutMs: config.proxy.upstreamResponseTimeoutMs,
    upstreamIdleTimeoutMs: config.proxy.upstreamIdleTimeoutMs,
  };
}

function validateReleasePath(releasePath: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(releasePath);
  } catch (error) {
    throw new RollbridgeError(ErrorCode.RELEASE_PATH_INVALID, `Release path ${releasePath} is not accessible: ${(error as NodeJS.ErrnoException).code ?? errorMessage(error)}`, {
      fix: `Pass the directory of a prepared release to --release-path`,
      details: {releasePath},
    });
  }
  if (!stat.isDirectory()) {
    throw new RollbridgeError(ErrorCode.RELEASE_PATH_INVALID, `Release path ${releasePath} is not a directory`, {
      fix: `Pass the directory of a prepared release to --release-path`,
      details: {releasePath},
    });
  }
}
