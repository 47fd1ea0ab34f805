import path from 'node:path';
import type {Config} from '../config/types.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError, errorMessage} from '../errors/rollbridge-error.ts';
import type {Logger} from '../log/logger.ts';
import type {ProxyServer} from '../proxy/proxy-server.ts';
import type {PortAllocator} from '../supervisor/port-allocator.ts';
import type {ManagedProcess} from '../supervisor/managed-process.ts';
import {ProcessUsageSampler} from '../supervisor/process-usage.ts';
import type {DaemonState, StateProcess} from '../state/state-file.ts';
import {SerialQueue} from '../util/serial-queue.ts';
import {ActiveRelease} from './active-release.ts';
import type {DeployContext} from './deploy-context.ts';
import {runDeployment, reloadConfig} from './deployment.ts';
import type {DeployRequest, DeployResult, ProgressListener} from './deployment.ts';
import {describeDeployPlan, snapshotOf} from './dry-run.ts';
import {stopRelease} from './draining.ts';
import {FailedDeploys} from './failed-deploys.ts';
import {selectLogSources} from './log-sources.ts';
import type {LogSelection} from './log-sources.ts';
import {ProcessRoster} from './process-roster.ts';
import {findRelease, pickRollbackTarget, pruneReleases} from './release-history.ts';
import {generateReleaseId, validateReleasePath} from './release.ts';
import type {Release} from './release.ts';
import type {LogSource, ProcessStatusView, ProgressEvent, ReleaseStatusView} from '../control/protocol.ts';
import {restartForLiveness, restartForMemory, restartProcesses} from './restarts.ts';
import type {RestartRequest, RestartResult} from './restarts.ts';
import {restoreState} from './restore.ts';
import type {RestoreReport} from './restore.ts';
import {isoTime} from '../util/iso-time.ts';

export type {DeployPhase, DeployRequest, DeployResult, ProgressListener} from './deployment.ts';
export type {RestoreReport} from './restore.ts';
export {proxyRuntimeOptions} from './active-release.ts';

/** How a deploy or rollback ended: `rolled_back` when its watch window switched traffic back. */
export type DeployOutcome = {kind: `deploy` | `rollback`; releaseId: string; outcome: `succeeded` | `failed` | `rolled_back`};

export type DeployerStatus = {
  activeReleaseId: string | null;
  deploying: string | null;
  releases: ReleaseStatusView[];
  services: Array<{id: string; port?: number; process: ProcessStatusView}>;
  singletons: Array<{id: string; releaseId: string | null; process: ProcessStatusView}>;
};

/**
 * The facade over the deploy path: runs deploys, rollbacks, stops and restarts one at a time (the
 * command queue) and answers status. The steps live beside it, one concept per file: deployment.ts
 * (the steps of a deploy), active-release.ts (the switch), watch-window.ts, draining.ts,
 * release-history.ts, restarts.ts, restore.ts, process-roster.ts, dry-run.ts.
 */
export class Deployer {
  readonly #queue = new SerialQueue();
  readonly #roster: ProcessRoster;
  readonly #active: ActiveRelease;
  readonly #context: DeployContext;
  readonly #changeListeners = new Set<() => void>();
  readonly #usage = new ProcessUsageSampler();
  readonly #outcomeListeners = new Set<(outcome: DeployOutcome) => void>();
  #stateWriter: () => Promise<void> = async () => undefined;
  #deploying: string | null = null;
  /** The deploy, rollback, stop or restart running now (what a queued one waits behind). */
  #running: {command: string; startedAt: Date} | null = null;

  constructor(options: {config: Config; proxy: ProxyServer; ports: PortAllocator; log: Logger; baseEnv: Record<string, string | undefined>}) {
    const log = options.log.child({component: `deploy`});
    this.#roster = new ProcessRoster({ports: options.ports, log, baseEnv: options.baseEnv});
    this.#active = new ActiveRelease({proxy: options.proxy, config: options.config});
    this.#context = {proxy: options.proxy, ports: options.ports, log, roster: this.#roster, failedDeploys: new FailedDeploys(), active: this.#active, changed: () => this.#changed(), commit: () => this.#stateWriter(), switchHold: {current: null}};
    this.#roster.onMemoryLimit((release, managed, shouldRestart) => restartForMemory(this.#context, this.#queue, release, managed, shouldRestart));
    this.#roster.onLivenessFailed((release, managed, failure, shouldRestart) => restartForLiveness(this.#context, this.#queue, release, managed, failure, shouldRestart));
  }

  get config(): Config {
    return this.#active.config;
  }

  /** Called after every deploy, rollback, stop, restart and retirement (the state file is written then). */
  onChange(listener: () => void): void {
    this.#changeListeners.add(listener);
  }

  /** Called when a deploy or rollback (not a dry run or a skipped deploy) has ended, with how. */
  onOutcome(listener: (outcome: DeployOutcome) => void): void {
    this.#outcomeListeners.add(listener);
  }

  /**
   * The durable state write (write-ahead): the deploy path awaits it before a spawn, after a switch
   * and before it answers. Without one (a deployer with no state file) nothing is written.
   */
  useStateWriter(commit: () => Promise<void>): void {
    this.#stateWriter = commit;
  }

  get activeRelease(): Release | null {
    return this.#active.release;
  }

  get releases(): readonly Release[] {
    return this.#roster.releases;
  }

  deploy(request: DeployRequest, onProgress?: ProgressListener): Promise<DeployResult> {
    if (request.dryRun) return this.#dryRun(request);
    return this.#serialized(request.wait, `deploy`, onProgress, async () => {
      // Decided in the queue, so a deploy running now has finished (or failed) before the comparison.
      const skipped = request.skipIfActive ? this.#skipIfActive(request) : null;
      return skipped ?? this.#tracked(`deploy`, request, (named) => runDeployment(this.#context, named, onProgress));
    });
  }

  rollback(request: {releaseId?: string | undefined; wait?: boolean | undefined}, onProgress?: ProgressListener): Promise<DeployResult> {
    return this.#serialized(request.wait, `rollback`, onProgress, async () => {
      const target = pickRollbackTarget(this.#roster.releases, this.#active.release, request.releaseId);
      // Named before anything moves.
      this.#context.log.info(`rollback starting`, {releaseId: target.releaseId, releasePath: target.releasePath, activeReleaseId: this.#active.release?.releaseId ?? null});
      onProgress?.({phase: `target`, releaseId: target.releaseId, durationMs: 0, detail: `rolling back to ${target.releaseId} (${target.releasePath})`});
      if (target.state !== `stopped` && target.state !== `failed`) {
        // Still draining: stop it now so its id can be reused without orphaning its processes.
        await stopRelease(this.#context, target);
      }
      const again = {releasePath: target.releasePath, releaseId: target.releaseId, revision: target.revision};
      return this.#tracked(`rollback`, again, (named) => runDeployment(this.#context, named, onProgress));
    });
  }

  stop(request: {releaseId?: string | undefined}): Promise<void> {
    return this.#serialized(true, `stop`, undefined, async () => {
      const release = request.releaseId === undefined ? this.#active.release : findRelease(this.#roster.releases, request.releaseId);
      if (!release) {
        throw new RollbridgeError(ErrorCode.RELEASE_NOT_FOUND, `Release not found: ${request.releaseId ?? `active`}`, {
          fix: `Run "rollbridge status" to list the retained releases and pass one of their ids with --release-id`,
          details: {releaseId: request.releaseId ?? null},
        });
      }
      if (release === this.#active.release) this.#active.switchTo(null);
      await stopRelease(this.#context, release);
      pruneReleases(this.#roster, this.#active.config);
    });
  }

  restart(request: RestartRequest, onProgress?: ProgressListener): Promise<RestartResult> {
    // A dry run only reads, like a deploy's: it neither waits for nor blocks the queue.
    if (request.dryRun) return restartProcesses(this.#context, request);
    return this.#serialized(request.wait, `restart`, onProgress, () => restartProcesses(this.#context, request, onProgress));
  }

  status(): DeployerStatus {
    const roster = this.#roster;
    const usage = this.#usage.sample(roster.allProcesses());
    return {
      activeReleaseId: this.#active.release?.releaseId ?? null,
      deploying: this.#deploying,
      releases: roster.releases.map((release) => release.status(usage)),
      services: [...roster.services.entries()].map(([id, entry]) => ({id, ...(entry.port === undefined ? {} : {port: entry.port}), process: entry.process.status(usage.get(entry.process))})),
      singletons: [...roster.singletons.entries()].map(([id, entry]) => ({id, releaseId: entry.release?.releaseId ?? null, process: entry.process.status(usage.get(entry.process))})),
    };
  }

  /** Every managed process with a label saying where it belongs (for `logs`). */
  processSources(): Array<{id: string; source: string; process: ManagedProcess}> {
    return this.#roster.processSources();
  }

  /** The recent output `logs` shows: by default the active release and the latest failed deploy; throws ERR_RELEASE_NOT_FOUND for an unknown `releaseId`. */
  logSources(selection: LogSelection): LogSource[] {
    return selectLogSources({roster: this.#roster, active: this.#active.release, failedDeploys: this.#context.failedDeploys}, selection);
  }

  /** Stops everything this deployer manages (graceful stops, in parallel). Idempotent. */
  async shutdown(): Promise<void> {
    const roster = this.#roster;
    roster.stopping = true;
    this.#active.switchTo(null);
    const stops: Array<Promise<void>> = [];
    for (const release of roster.releases) stops.push(stopRelease(this.#context, release));
    for (const entry of roster.services.values()) stops.push(roster.stopForGood(entry.process));
    for (const entry of roster.singletons.values()) stops.push(roster.stopForGood(entry.process));
    const results = await Promise.allSettled(stops);
    const failures = results.filter((result) => result.status === `rejected`);
    if (failures.length > 0) {
      throw new RollbridgeError(ErrorCode.PROCESS_STOP_FAILED, `Shutdown failed to stop ${failures.length} managed process group(s): ${failures.map((failure) => errorMessage((failure as PromiseRejectedResult).reason)).join(`; `)}`, {
        fix: `Run "rollbridge recover" to list leftover processes, then stop them`,
      });
    }
  }

  /**
   * Daemon replacement, step 1: waits for the running deploy and for draining releases, then refuses
   * new work and stops restarting processes, so the state a successor reads stays true.
   */
  async freeze(): Promise<void> {
    await this.#queue.run(async () => {
      this.#roster.assertRunning();
      await Promise.all(this.#roster.releases.map((release) => release.retirement));
      this.#roster.frozen = true;
    });
  }

  /** The successor failed: carry on supervising (a process that died meanwhile is restarted now). */
  unfreeze(): void {
    this.#roster.frozen = false;
    for (const process of this.#roster.allProcesses()) if (process.state === `failed`) void process.start(`crash`).catch((error: unknown) => this.#context.log.error(`process restart failed`, {id: process.id, err: error}));
  }

  /** Daemon replacement, last step: lets go of every process without stopping it (the successor supervises them). */
  abandon(): void {
    this.#roster.stopping = true;
    this.#roster.detachAll();
  }

  /** What the state file records (see ProcessRoster.snapshot). */
  snapshot(): Pick<DaemonState, `activeReleaseId` | `releases` | `services` | `singletons` | `pending` | `failedDeploys` | `switchHold`> {
    const failedDeploys = this.#context.failedDeploys.snapshot();
    const hold = this.#context.switchHold.current;
    return {
      ...this.#roster.snapshot(this.#active.release, this.#active.config),
      ...(failedDeploys.length > 0 ? {failedDeploys} : {}),
      ...(hold === null ? {} : {switchHold: {...hold}}),
    };
  }

  /** Re-adoption after a daemon restart (restore.ts); runs before the control socket accepts commands. */
  async restore(state: DaemonState, isAlive: (process: StateProcess) => boolean): Promise<RestoreReport> {
    const report = await restoreState(this.#context, state, isAlive);
    this.#context.failedDeploys.restore(state.failedDeploys ?? [], {keep: this.#active.config.releaseRetention.keep, retained: this.#roster.releases});
    return report;
  }

  /** Forgets stopped releases beyond `releaseRetention`; the daemon also calls this on a timer for `maxAgeMs`. */
  pruneReleases(): void {
    pruneReleases(this.#roster, this.#active.config);
  }

  #changed(): void {
    for (const listener of this.#changeListeners) listener();
  }

  async #serialized<T>(wait: boolean | undefined, what: string, onProgress: ProgressListener | undefined, task: () => Promise<T>): Promise<T> {
    this.#roster.assertRunning();
    if (wait === false && this.#queue.isBusy) {
      throw new RollbridgeError(ErrorCode.DAEMON_BUSY, `Another deploy, rollback or restart is in progress (${this.#deploying ?? `queued work`}); "${what}" was not started`, {
        fix: `Retry when it has finished, or drop --no-wait to queue behind it`,
      });
    }
    const queuedAt = this.#queue.isBusy ? performance.now() : null;
    if (queuedAt !== null) onProgress?.(this.#queuedPhase());
    return this.#queue.run(async () => {
      if (queuedAt !== null) onProgress?.({phase: `dequeued`, releaseId: null, durationMs: Math.round(performance.now() - queuedAt)});
      this.#roster.assertRunning();
      this.#running = {command: what, startedAt: new Date()};
      try {
        return await task();
      } finally {
        this.#running = null;
        this.#changed();
        // The answer waits for the state it reports to be on disk (a failure is logged by the writer).
        await this.#stateWriter().catch(() => undefined);
      }
    });
  }

  /** The `waiting` phase of a command queued behind another one: what runs now, since when, how many wait before it. */
  #queuedPhase(): ProgressEvent {
    const running = this.#running;
    const ahead = Math.max(0, this.#queue.size - 1);
    const command = this.#deploying ?? running?.command ?? `a memory restart or daemon replacement`;
    const since = running === null ? `` : ` (running since ${isoTime(running.startedAt)}, ${Math.round((Date.now() - running.startedAt.getTime()) / 1_000)} s ago)`;
    return {
      phase: `waiting`,
      releaseId: null,
      wait: `queue`,
      behind: {command, startedAt: running ? isoTime(running.startedAt) : null, queued: ahead},
      detail: `the deploy queue: behind ${command}${since}${ahead > 0 ? ` and ${ahead} more queued` : ``}`,
    };
  }

  /** Runs a deploy or rollback with its release id settled, shown as `daemon.deploying` meanwhile. */
  async #tracked<T>(kind: `deploy` | `rollback`, request: DeployRequest, task: (named: DeployRequest) => Promise<T>): Promise<T> {
    const releaseId = request.releaseId ?? request.revision ?? generateReleaseId();
    this.#deploying = `${kind} ${releaseId}`;
    let outcome: DeployOutcome[`outcome`] = `failed`;
    try {
      const result = await task({...request, releaseId});
      outcome = `succeeded`;
      return result;
    } catch (error) {
      if ((error as {code?: unknown}).code === ErrorCode.WATCH_ROLLED_BACK) outcome = `rolled_back`;
      throw error;
    } finally {
      this.#deploying = null;
      for (const listener of this.#outcomeListeners) listener({kind, releaseId, outcome});
    }
  }

  /** `deploy --dry-run`: the plan from the reloaded config and the current state; starts and stops nothing. */
  async #dryRun(request: DeployRequest): Promise<DeployResult> {
    const startedAt = performance.now();
    const config = await reloadConfig(this.#active.config);
    const releasePath = path.resolve(request.releasePath);
    validateReleasePath(releasePath);
    const releaseId = request.releaseId ?? request.revision ?? generateReleaseId();
    const previous = this.#active.release;
    const plan = describeDeployPlan({config, releaseId, releasePath, skipHealthCheck: request.skipHealthCheck === true, skipBeforeSwitch: request.skipBeforeSwitch === true, running: snapshotOf(this.#roster, previous)});
    return {
      activeReleaseId: previous?.releaseId ?? null,
      previousReleaseId: previous?.releaseId ?? null,
      releaseId,
      durationMs: Math.round(performance.now() - startedAt),
      changed: false,
      ...(request.skipIfActive && this.#isActive(releaseId, releasePath, request.revision ?? releaseId) ? {skipped: true} : {}),
      phases: [],
      plan,
    };
  }

  /** `skipIfActive`: the result of a deploy that does nothing, or null when the release is not the active one. */
  #skipIfActive(request: DeployRequest): DeployResult | null {
    const active = this.#active.release;
    const releaseId = request.releaseId ?? request.revision;
    if (active === null || releaseId === undefined || !this.#isActive(releaseId, path.resolve(request.releasePath), request.revision ?? releaseId)) return null;
    this.#context.log.info(`deploy skipped`, {releaseId, reason: `already active`});
    return {
      activeReleaseId: active.releaseId,
      previousReleaseId: this.#roster.releases.findLast((release) => release !== active && release.activatedAt !== undefined)?.releaseId ?? null,
      releaseId,
      durationMs: 0,
      changed: false,
      skipped: true,
      phases: [],
    };
  }

  #isActive(releaseId: string, releasePath: string, revision: string): boolean {
    const active = this.#active.release;
    return active !== null && active.state === `active` && active.releaseId === releaseId && active.releasePath === releasePath && active.revision === revision;
  }
}
