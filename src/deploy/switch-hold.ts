import type {ProcessConfig} from '../config/types.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError, errorMessage} from '../errors/rollbridge-error.ts';
import type {ManagedProcess} from '../supervisor/managed-process.ts';
import type {StateSwitchHold} from '../state/state-file.ts';
import {isoTime} from '../util/iso-time.ts';
import type {DeployContext} from './deploy-context.ts';
import type {Release} from './release.ts';
import {waitUntilHealthy} from './startup-checks.ts';

/**
 * Hold-on-switch (`processes[].switch: "hold"`, product §5.11), for a web process that must never run
 * beside its previous copy (an exclusive lock, SQLite, a small host): the proxy holds new requests, the
 * previous release's web process drains (in-flight requests finish) and stops, the new one starts and
 * passes its health check, traffic switches and the held requests go on. All of it within the process's
 * `holdTimeoutMs`; on a failure or when the budget runs out the new process is stopped, the previous
 * one started again and traffic resumed to it. The state file records the hold before the previous
 * process stops, so a daemon killed meanwhile restarts the previous release's web process (or keeps
 * the new one if the switch was recorded) and never comes back holding requests.
 */
export class SwitchHold {
  /** performance.now() when requests started being held. */
  readonly startedAt: number;
  readonly budgetMs: number;
  readonly #context: DeployContext;
  readonly #previous: Release;
  readonly #release: Release;
  readonly #configKey: string;
  #resume: (() => void) | null;
  #stopped: ManagedProcess[] = [];

  private constructor(context: DeployContext, previous: Release, release: Release, definition: ProcessConfig) {
    this.#context = context;
    this.#previous = previous;
    this.#release = release;
    this.budgetMs = definition.holdTimeoutMs;
    this.#configKey = `processes[${release.config.processes.indexOf(definition)}].holdTimeoutMs`;
    this.#resume = context.proxy.gate.holdForSwitch();
    this.startedAt = performance.now();
  }

  /** Records the hold (write-ahead), then holds new requests. */
  static async begin(context: DeployContext, previous: Release, release: Release, definition: ProcessConfig): Promise<SwitchHold> {
    const record: StateSwitchHold = {releaseId: release.releaseId, previousReleaseId: previous.releaseId, startedAt: isoTime()};
    context.switchHold.current = record;
    try {
      await context.commit();
    } catch (error) {
      context.switchHold.current = null;
      throw error;
    }
    const hold = new SwitchHold(context, previous, release, definition);
    context.log.info(`switch hold started`, {releaseId: release.releaseId, previousReleaseId: previous.releaseId, holdTimeoutMs: hold.budgetMs});
    return hold;
  }

  get elapsedMs(): number {
    return Math.round(performance.now() - this.startedAt);
  }

  /** Drains the previous release's web targets (at most proxy.drainTimeoutMs, within the budget), then stops its web processes. */
  async stopPrevious(): Promise<{drainMs: number; timedOut: boolean}> {
    const previous = this.#previous;
    const startedAt = performance.now();
    const timeoutMs = Math.max(0, Math.min(previous.config.proxy.drainTimeoutMs, this.#remainingMs()));
    const drains = await Promise.all(previous.targets.map((target) => target.drain({timeoutMs, wsCloseJitterMs: Math.min(previous.config.proxy.wsCloseJitterMs, timeoutMs)})));
    // Also a crashed one: its stop cancels the automatic restart that would bring it back beside the new one.
    const web = webProcessesOf(previous).filter((managed) => managed.state !== `stopped`);
    this.#stopped = web;
    await Promise.all(web.map((managed) => managed.stop()));
    this.#context.changed();
    return {drainMs: Math.round(performance.now() - startedAt), timedOut: drains.some((drain) => drain.timedOut)};
  }

  /** `work`, or ERR_SWITCH_HOLD_TIMEOUT when the budget runs out first. */
  within<T>(work: Promise<T>, what: string): Promise<T> {
    return withinBudget(work, this.#remainingMs(), () => new RollbridgeError(ErrorCode.SWITCH_HOLD_TIMEOUT, `Requests were held ${this.elapsedMs} ms for the switch to release ${this.#release.releaseId}, the limit ${this.#configKey} is ${this.budgetMs} ms (still waiting for ${what})`, {
      fix: `Raise ${this.#configKey}, or make the web process start and pass its health check faster`,
      details: {releaseId: this.#release.releaseId, previousReleaseId: this.#previous.releaseId, holdTimeoutMs: this.budgetMs, waitingFor: what},
    }));
  }

  /** The switch is recorded: held requests go on to the new release. Returns how long they were held. */
  finish(): number {
    const heldMs = this.elapsedMs;
    this.#end();
    this.#context.log.info(`switch hold ended`, {releaseId: this.#release.releaseId, heldMs});
    return heldMs;
  }

  /** Holds requests again (a failure after the hold ended sends traffic back to the stopped previous release). */
  holdAgain(): void {
    this.#resume ??= this.#context.proxy.gate.holdForSwitch();
  }

  /**
   * The new release failed (its processes are stopped already): the previous web processes start again
   * on their ports, pass their health check and get traffic back; then the held requests go on.
   * Requests are held again meanwhile if the hold had ended. Never leaves requests held.
   */
  async rollBack(cause: unknown): Promise<void> {
    const context = this.#context;
    const previous = this.#previous;
    this.holdAgain();
    context.log.warn(`switch hold rolling back`, {releaseId: this.#release.releaseId, previousReleaseId: previous.releaseId, heldMs: this.elapsedMs, error: errorMessage(cause)});
    try {
      for (const managed of this.#stopped) {
        const definition = previous.config.processes.find((process) => process.id === managed.spec.processId);
        const configIndex = definition === undefined ? -1 : previous.config.processes.indexOf(definition);
        const port = previous.instancePorts[managed.id] ?? (definition ? previous.ports[definition.id] : undefined);
        if (managed.state !== `running` && managed.state !== `starting`) await managed.start(`deploy`);
        if (definition && port !== undefined) await waitUntilHealthy(previous, managed, definition, port, configIndex);
        const old = previous.targets.find((target) => target.processId === managed.id);
        if (old && old.state !== `serving` && port !== undefined) {
          previous.targets.splice(previous.targets.indexOf(old), 1, context.proxy.createTarget({releaseId: previous.releaseId, processId: managed.id, host: previous.config.proxy.upstreamHost, port}));
          old.close();
        }
      }
      context.active.switchTo(previous);
      context.changed();
      await context.commit().catch(() => undefined);
      context.log.info(`switch hold rolled back`, {previousReleaseId: previous.releaseId, heldMs: this.elapsedMs});
    } catch (error) {
      context.log.error(`previous release did not come back after the switch hold`, {previousReleaseId: previous.releaseId, heldMs: this.elapsedMs, err: error});
    } finally {
      this.#end();
    }
  }

  #remainingMs(): number {
    return Math.max(0, this.budgetMs - (performance.now() - this.startedAt));
  }

  #end(): void {
    this.#context.switchHold.current = null;
    this.#resume?.();
    this.#resume = null;
  }
}

/**
 * `restart` (or a memory or liveness restart) of a `switch: "hold"` web process, which cannot be replaced by a copy
 * beside it: requests are held while it drains, stops, starts again on its port and passes its health
 * check, then they go on. Bounded by `holdTimeoutMs` (ERR_SWITCH_HOLD_TIMEOUT); requests are never
 * left held. A daemon killed meanwhile restarts it like any dead process of the active release.
 */
export async function restartHeld(context: DeployContext, release: Release, managed: ManagedProcess, reason: `manual` | `memory` | `liveness`, options: {skipHealthCheck?: boolean} = {}): Promise<ManagedProcess> {
  const {proxy, log} = context;
  const definition = release.config.processes.find((process) => process.id === managed.spec.processId);
  const port = release.instancePorts[managed.id] ?? (definition ? release.ports[definition.id] : undefined);
  const oldTarget = release.targets.find((target) => target.processId === managed.id);
  if (!definition || port === undefined || !oldTarget) throw new Error(`Assertion failed: ${managed.id} is not a proxied instance of release ${release.releaseId}`);
  const configIndex = release.config.processes.indexOf(definition);
  const resume = proxy.gate.holdForSwitch();
  const startedAt = performance.now();
  const remainingMs = () => Math.max(0, definition.holdTimeoutMs - (performance.now() - startedAt));
  log.info(`switch hold started`, {releaseId: release.releaseId, processId: managed.id, reason, holdTimeoutMs: definition.holdTimeoutMs});
  try {
    await oldTarget.drain({timeoutMs: Math.min(release.config.proxy.drainTimeoutMs, remainingMs()), wsCloseJitterMs: Math.min(release.config.proxy.wsCloseJitterMs, remainingMs())});
    await managed.stop();
    const target = proxy.createTarget({releaseId: release.releaseId, processId: managed.id, host: release.config.proxy.upstreamHost, port});
    release.targets.splice(release.targets.indexOf(oldTarget), 1, target);
    oldTarget.close();
    if (release === context.active.release) context.active.switchTo(release);
    await managed.start(reason);
    context.changed();
    if (definition.health && options.skipHealthCheck !== true) {
      await withinBudget(waitUntilHealthy(release, managed, definition, port, configIndex), remainingMs(), () => new RollbridgeError(ErrorCode.SWITCH_HOLD_TIMEOUT, `Requests were held ${Math.round(performance.now() - startedAt)} ms for the restart of ${managed.id}, the limit processes[${configIndex}].holdTimeoutMs is ${definition.holdTimeoutMs} ms (still waiting for its health check); requests go to it again`, {
        fix: `Raise processes[${configIndex}].holdTimeoutMs, or make the web process start and pass its health check faster; check "rollbridge logs --process ${managed.id}"`,
        details: {releaseId: release.releaseId, processId: managed.id, holdTimeoutMs: definition.holdTimeoutMs},
      }));
    }
    log.info(`switch hold ended`, {releaseId: release.releaseId, processId: managed.id, heldMs: Math.round(performance.now() - startedAt)});
    return managed;
  } catch (error) {
    log.warn(`switch hold failed`, {releaseId: release.releaseId, processId: managed.id, heldMs: Math.round(performance.now() - startedAt), err: error});
    throw error;
  } finally {
    resume();
  }
}

async function withinBudget<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  work.catch(() => undefined);
  try {
    return await Promise.race([work, new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
    })]);
  } finally {
    clearTimeout(timer);
  }
}

/** The proxied processes of a release (by its own config). */
export function webProcessesOf(release: Release): ManagedProcess[] {
  return release.processes.filter((managed) => release.config.processes.find((process) => process.id === managed.spec.processId)?.policy === `proxied`);
}
