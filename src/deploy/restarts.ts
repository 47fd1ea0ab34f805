import {setTimeout as delay} from 'node:timers/promises';
import type {ProcessConfig} from '../config/types.ts';
import type {RestartPlanView} from '../control/protocol.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {buildProcessLogSpec} from '../supervisor/process-log.ts';
import type {LivenessFailure} from '../supervisor/liveness-check.ts';
import type {ManagedProcess} from '../supervisor/managed-process.ts';
import type {SerialQueue} from '../util/serial-queue.ts';
import type {DeployContext} from './deploy-context.ts';
import {runReleaseHook, waitingForHook} from './deployment.ts';
import {hookFailure} from './hook-runner.ts';
import type {HookResult} from './hook-runner.ts';
import type {PhaseReporter, ProgressListener} from './deployment.ts';
import {buildInstanceSpec} from './instance-spec.ts';
import {orderProcesses} from './plan.ts';
import type {Release} from './release.ts';
import {formatMs, startedPhase, waitUntilHealthy, waitUntilListening, waitUntilReady} from './startup-checks.ts';
import {restartHeld} from './switch-hold.ts';

export type RestartRequest = {
  processId?: string | undefined;
  /** Several `--process` values: the union of their matches (each must match a process). */
  processIds?: string[] | undefined;
  policy?: string | undefined;
  names?: string[] | undefined;
  cooldownMs?: number | undefined;
  wait?: boolean | undefined;
  /** Every process, the proxied one included (replaced without downtime), not only the named ones. */
  all?: boolean | undefined;
  /** Do not wait for readiness and health checks after each restart (emergencies only; logged). */
  skipHealthCheck?: boolean | undefined;
  /** Run hooks.beforeSwitch (e.g. migrations) against the active release first; its failure restarts nothing. */
  beforeSwitch?: boolean | undefined;
  /** Return the plan and restart nothing. */
  dryRun?: boolean | undefined;
};

export type RestartResult = {restarted: string[]; plan?: RestartPlanView; hooks?: HookResult[]};

/**
 * `restart`: the named processes (or every one the filters match) one after another, in `dependsOn`
 * order, each checked (readiness, or the health check of the proxied process) before the next; the
 * first failure stops it. The proxied process is only restarted when named (by --process, --policy
 * proxied or NAMES) or with `all`: it is then replaced without downtime (start, health check, switch,
 * drain), never stopped in place.
 */
export async function restartProcesses(context: DeployContext, request: RestartRequest, onProgress?: ProgressListener): Promise<RestartResult> {
  const {active, log} = context;
  const targets = selectTargets(context, request);
  if (request.dryRun) return {restarted: [], plan: describeRestart(context, targets, request)};
  const hooks: HookResult[] = [];
  const release = active.release;
  // Each step as it happens (durationMs since the previous one; `waiting` starts a wait, the next phase ends it).
  let phaseStartedAt = performance.now();
  const report: PhaseReporter = (name, extra = {}) => {
    if (onProgress === undefined) return;
    if (name === `waiting`) return onProgress({phase: name, releaseId: release?.releaseId ?? null, ...extra});
    const now = performance.now();
    onProgress({phase: name, releaseId: release?.releaseId ?? null, durationMs: Math.round(now - phaseStartedAt), ...extra});
    phaseStartedAt = now;
  };
  if (request.beforeSwitch && active.config.hooks.beforeSwitch && release) {
    report(`waiting`, waitingForHook(`beforeSwitch`, active.config.hooks.beforeSwitch, active.config.hooks.timeoutMs));
    const result = await runReleaseHook(context, `beforeSwitch`, active.config.hooks.beforeSwitch, release);
    hooks.push(result);
    if (!result.ok) throw hookFailure(result, release.releaseId);
    report(`beforeSwitch`, {exitCode: result.exitCode});
  }
  const skipHealthCheck = request.skipHealthCheck === true;
  if (skipHealthCheck) log.warn(`health checks skipped for restart`, {processes: targets.map((managed) => managed.id)});
  const restarted: string[] = [];
  // Replaced web processes drain side by side: the next replica's replacement starts while the previous
  // one drains (each switch first puts a healthy new replica in its place, so the ready replicas never
  // drop below the configured count). The restart ends once every drain has.
  const drains: Array<Promise<void>> = [];
  try {
    for (const managed of targets) {
      if (restarted.length > 0 && request.cooldownMs) {
        report(`waiting`, {wait: `cooldown`, processId: managed.id, timeoutMs: request.cooldownMs, detail: `cooldown of ${formatMs(request.cooldownMs)} before restarting ${managed.id}`});
        await delay(request.cooldownMs);
      }
      log.info(`process restart requested`, {processId: managed.id});
      const restartedAt = performance.now();
      report(`restarting`, {processId: managed.id, pid: managed.pid ?? null});
      let replacement: Replacement;
      try {
        replacement = await restartOne(context, managed, skipHealthCheck, report);
      } catch (error) {
        throw stoppedAt(error, managed.id, restarted, targets.slice(restarted.length + 1).map((next) => next.id));
      }
      restarted.push(managed.id);
      // Its duration is the whole restart of this process (stop, start, checks, drain): a replaced web
      // process is reported once its predecessor has drained, while the next one is already restarting.
      const done = (): void => {
        onProgress?.({phase: `restarted`, releaseId: release?.releaseId ?? null, processId: replacement.process.id, pid: replacement.process.pid ?? null, durationMs: Math.round(performance.now() - restartedAt)});
        phaseStartedAt = performance.now();
      };
      if (replacement.drained === null) done();
      else drains.push(replacement.drained.then(done));
    }
  } finally {
    await Promise.all(drains);
  }
  return {restarted, ...(hooks.length > 0 ? {hooks} : {})};
}

function selectTargets(context: DeployContext, request: RestartRequest): ManagedProcess[] {
  const {roster, active} = context;
  const config = active.config;
  const names = request.names ?? [];
  const processIds = [...request.processId === undefined ? [] : [request.processId], ...request.processIds ?? []];
  const proxiedNamed = (process: ProcessConfig) => process.policy === `proxied` && (request.all === true || request.policy === `proxied` || processIds.length > 0 || names.length > 0);
  const nameMatches = (managed: ManagedProcess) => names.length === 0 || names.some((name) => managed.id.includes(name));
  const validIds = () => roster.allInstanceIds(config, active.release);
  // Typo safety: every name must match something, or nothing is restarted.
  const unmatched = names.filter((name) => !validIds().some((id) => id.includes(name)));
  if (unmatched.length > 0) {
    const valid = validIds();
    throw new RollbridgeError(ErrorCode.PROCESS_NOT_FOUND, `No managed process matches ${unmatched.map((name) => `"${name}"`).join(`, `)}; nothing was restarted`, {
      fix: `Use parts of these ids: ${valid.join(`, `) || `(none running)`}`,
      details: {names: unmatched, valid},
    });
  }
  const targets: ManagedProcess[] = [];
  for (const process of orderProcesses(config)) {
    if (process.policy === `proxied` && !proxiedNamed(process)) continue;
    if (request.policy !== undefined && process.policy !== request.policy) continue;
    for (const managed of roster.instancesOf(process, active.release)) {
      if (!nameMatches(managed)) continue;
      if (processIds.length === 0 || processIds.includes(process.id) || processIds.includes(managed.id)) targets.push(managed);
    }
  }
  // Typo safety again: with several --process, one that matches nothing fails before anything restarts.
  const unknownId = processIds.find((id) => !targets.some((managed) => managed.id === id || managed.spec.processId === id));
  if (unknownId !== undefined) {
    const valid = validIds();
    throw new RollbridgeError(ErrorCode.PROCESS_NOT_FOUND, `No managed process with id "${unknownId}" to restart${processIds.length > 1 ? `; nothing was restarted` : ``}`, {
      fix: `Pass one of: ${valid.join(`, `) || `(none running)`} to --process`,
      details: {processId: unknownId, valid},
    });
  }
  return targets;
}

/**
 * Restarts one process; returns the process now running in its place (a new one for the proxied
 * process) and, for a replaced one, when its predecessor has drained and stopped.
 */
async function restartOne(context: DeployContext, managed: ManagedProcess, skipHealthCheck: boolean, report: PhaseReporter): Promise<Replacement> {
  const {roster, active, log} = context;
  const release = active.release;
  const definition = active.config.processes.find((process) => process.id === managed.spec.processId);
  if (release && release.processes.includes(managed) && definition?.policy === `proxied`) {
    // A web process that must never run twice cannot get a copy beside it: it restarts in place, requests held.
    if (definition.switch === `hold`) return {process: await restartHeld(context, release, managed, `manual`, {skipHealthCheck}), drained: null};
    return switchToReplacement(context, release, managed, `manual`, {skipHealthCheck, report});
  }
  await managed.stop();
  await managed.start(`manual`);
  report(`started`, startedPhase(managed, definition?.policy ?? `unknown`));
  const owner = release && release.processes.includes(managed) ? release : roster.ownerOf(managed);
  if (definition && owner && !skipHealthCheck) await waitUntilReady(owner, definition, managed, log, report);
  return {process: managed, drained: null};
}

function describeRestart(context: DeployContext, targets: ManagedProcess[], request: RestartRequest): RestartPlanView {
  const {active} = context;
  const skip = request.skipHealthCheck === true;
  const processes = targets.map((managed) => {
    const definition = active.config.processes.find((process) => process.id === managed.spec.processId);
    const policy = definition?.policy ?? `unknown`;
    const proxied = policy === `proxied` && active.release?.processes.includes(managed) === true;
    // A `switch: "hold"` web process restarts in place (requests held), the others are replaced.
    const replaced = proxied && definition?.switch !== `hold`;
    const check = skip ? null : proxied ? (definition?.health ? `health` as const : null) : (definition?.readiness ? `readiness` as const : null);
    return {id: managed.id, processId: managed.spec.processId, policy, pid: managed.pid ?? null, how: replaced ? `replace` as const : `restart` as const, check};
  });
  return {processes, hooks: {beforeSwitch: request.beforeSwitch ? (active.config.hooks.beforeSwitch ?? null) : null}, cooldownMs: request.cooldownMs ?? 0};
}

/** The first failure stops the restart: its error says which processes were restarted before and which were not reached. */
function stoppedAt(error: unknown, failedId: string, restarted: string[], notReached: string[]): unknown {
  if (!(error instanceof RollbridgeError)) return error;
  const done = restarted.length > 0 ? `restarted before it: ${restarted.join(`, `)}` : `nothing was restarted before it`;
  return new RollbridgeError(error.code, `Restart stopped at ${failedId}: ${error.message} (${done}; not restarted: ${notReached.join(`, `) || `none`})`, {
    ...(error.fix !== undefined ? {fix: error.fix} : {}),
    details: {...error.details, failed: failedId, restarted, notRestarted: notReached},
    cause: error,
  });
}

/**
 * A process now running in place of another, and when that other one has drained and stopped (never
 * rejects); `drained` is null for a process restarted in place (nothing drains).
 */
export type Replacement = {process: ManagedProcess; drained: Promise<void> | null};

/**
 * Zero-downtime replacement of a proxied instance of the active release: a new process on a fresh
 * port, health-checked, then the switch to its target, then the drain and stop of the old one.
 * A failure before the switch stops the new process and leaves the old one serving.
 */
export async function replaceProxied(context: DeployContext, release: Release, old: ManagedProcess, reason: `manual` | `memory` | `liveness` = `manual`, options: {skipHealthCheck?: boolean; report?: PhaseReporter; evidence?: Record<string, unknown>} = {}): Promise<ManagedProcess> {
  const replacement = await switchToReplacement(context, release, old, reason, options);
  await replacement.drained;
  return replacement.process;
}

/**
 * replaceProxied up to the switch: resolves once the new process serves in place of `old`, while the old
 * one drains (its quietCommand at once) and stops in the background (`drained`).
 */
async function switchToReplacement(context: DeployContext, release: Release, old: ManagedProcess, reason: `manual` | `memory` | `liveness`, options: {skipHealthCheck?: boolean; report?: PhaseReporter; evidence?: Record<string, unknown>}): Promise<Replacement & {drained: Promise<void>}> {
  const report = options.report ?? (() => undefined);
  const {roster, ports, proxy, log} = context;
  const configIndex = release.config.processes.findIndex((process) => process.id === old.spec.processId);
  const process = release.config.processes[configIndex];
  const oldTarget = release.targets.find((target) => target.processId === old.id);
  if (!process || !process.port || !release.processes.includes(old) || !oldTarget) throw new Error(`Assertion failed: ${old.id} is not a proxied instance of release ${release.releaseId}`);
  const owner = `${release.key}:${old.id}:${Date.now()}`;
  const port = await ports.allocate({owner, processId: process.id, range: process.port, configKey: `processes[${configIndex}].port`});
  const replicaIndex = old.id.includes(`#`) ? Number(old.id.slice(old.id.indexOf(`#`) + 1)) : 0;
  const releasePorts = replicaIndex === 0 ? {...release.ports, [process.id]: port} : release.ports;
  const spec = {...buildInstanceSpec({
    config: release.config, process, instanceId: old.id, releaseId: release.releaseId, releasePath: release.releasePath,
    revision: release.revision, replicaIndex, replicaCount: Math.max(1, process.replicas), ports: releasePorts, port, baseEnv: roster.baseEnv,
  }), ...buildProcessLogSpec({logs: release.config.logs, releaseId: release.releaseId, instanceId: old.id, process})};
  const fresh: ManagedProcess = roster.createFromSpec(release, process, spec, () => release.isLive && release.processes.includes(fresh));
  fresh.continueCountsOf(old);
  // Beside the old one until the switch, and recorded before it runs.
  release.processes.push(fresh);
  try {
    await context.commit();
    await fresh.start(reason);
    report(`started`, {processId: old.id, policy: process.policy, pid: fresh.pid ?? null, port});
    if (process.health && options.skipHealthCheck !== true) {
      await waitUntilHealthy(release, fresh, process, port, configIndex, report);
      report(`healthy`, {processId: old.id});
    } else {
      await waitUntilListening(release, fresh, process, port, configIndex, report);
      report(`listening`, {processId: old.id});
    }
  } catch (error) {
    release.processes.splice(release.processes.indexOf(fresh), 1);
    await roster.stopForGood(fresh);
    ports.releaseOwner(owner);
    throw error;
  }
  const target = proxy.createTarget({releaseId: release.releaseId, processId: old.id, host: release.config.proxy.upstreamHost, port});
  // The old process stays recorded (as draining) until it is stopped.
  release.processes.splice(release.processes.indexOf(fresh), 1);
  release.processes.splice(release.processes.indexOf(old), 1, fresh);
  release.replaced.push(old);
  release.targets.splice(release.targets.indexOf(oldTarget), 1, target);
  if (replicaIndex === 0) release.ports[process.id] = port;
  if (old.id in release.instancePorts) release.instancePorts[old.id] = port;
  release.portOwners.push(owner);
  if (release === context.active.release) context.active.switchTo(release);
  log.info(`process replaced`, {releaseId: release.releaseId, processId: old.id, previousPid: old.pid, pid: fresh.pid, port, reason, ...options.evidence});
  context.changed();
  const oldPid = old.pid ?? null;
  report(`replaced`, {processId: old.id, pid: fresh.pid ?? null, previousPid: oldPid, port});
  const open = oldTarget.connections;
  const drainTimeoutMs = release.config.proxy.drainTimeoutMs;
  report(`waiting`, {wait: `drain`, processId: old.id, pid: oldPid, timeoutMs: drainTimeoutMs, detail: `drain of ${old.id} (pid ${oldPid ?? `-`}) of release ${release.releaseId}: ${open.http} http and ${open.websocket} WebSocket connections open (up to ${formatMs(drainTimeoutMs)})`});
  const drained = (async () => {
    // It takes no new requests from now on: its quietCommand runs while its requests drain.
    void old.quiet();
    const drain = await oldTarget.drain({timeoutMs: drainTimeoutMs, wsCloseJitterMs: release.config.proxy.wsCloseJitterMs});
    await roster.stopForGood(old);
    oldTarget.close();
    const index = release.replaced.indexOf(old);
    if (index !== -1) release.replaced.splice(index, 1);
    context.changed();
    log.info(`process drained`, {releaseId: release.releaseId, processId: old.id, pid: oldPid, timedOut: drain.timedOut});
    report(`drained`, {processId: old.id, pid: oldPid, ok: !drain.timedOut, ...(drain.timedOut ? {detail: `the drain timed out; its remaining connections were closed`} : {})});
  })().catch((error: unknown) => {
    log.error(`process drain failed`, {releaseId: release.releaseId, processId: old.id, err: error});
  });
  return {process: fresh, drained};
}

/** Over its memory limit: the proxied process of the active release is replaced without downtime, others restart. */
export async function restartForMemory(context: DeployContext, queue: SerialQueue, release: Release, managed: ManagedProcess, shouldRestart: () => boolean): Promise<void> {
  const {roster, active} = context;
  // A release still starting is judged by its health check; a restart now would only fail the deploy obscurely.
  if (roster.stopping || roster.frozen || release.state === `starting`) return;
  const policy = active.config.processes.find((process) => process.id === managed.spec.processId)?.policy;
  if (release === active.release && release.processes.includes(managed) && policy === `proxied`) {
    await queue.run(async () => {
      if (release !== active.release || !release.processes.includes(managed)) return;
      const definition = release.config.processes.find((process) => process.id === managed.spec.processId);
      await (definition?.switch === `hold` ? restartHeld(context, release, managed, `memory`) : replaceProxied(context, release, managed, `memory`));
    });
    return;
  }
  await managed.stop();
  if (shouldRestart() && !roster.stopping) await managed.start(`memory`);
}

/**
 * Failed its liveness checks `failureThreshold` times in a row: the proxied process of the active
 * release is replaced without downtime, any other process restarted. Both wait their turn in the
 * deploy queue (never during a deploy, rollback or restart), and nothing happens if by then the
 * process is gone or its release is no longer the active one.
 */
export async function restartForLiveness(context: DeployContext, queue: SerialQueue, release: Release, managed: ManagedProcess, failure: LivenessFailure, shouldRestart: () => boolean): Promise<void> {
  const {roster, active, log} = context;
  await queue.run(async () => {
    if (roster.stopping || roster.frozen || managed.state !== `running` || !shouldRestart()) return;
    const inRelease = release.processes.includes(managed);
    // Replaced, draining or stopped for good while it waited: nothing to do.
    if (!inRelease && !roster.isDaemonWide(managed)) return;
    if (inRelease && (release !== active.release || release.state !== `active`)) return;
    const definition = release.config.processes.find((process) => process.id === managed.spec.processId);
    const evidence = {check: failure.check, failures: failure.failures, lastError: failure.lastError, output: failure.output};
    if (inRelease && definition?.policy === `proxied`) {
      if (definition.switch !== `hold`) {
        await replaceProxied(context, release, managed, `liveness`, {evidence});
        return;
      }
      // A web process that must never run twice cannot get a copy beside it: it restarts in place, requests held.
      const previousPid = managed.pid;
      await restartHeld(context, release, managed, `liveness`);
      log.info(`process restarted`, {releaseId: release.releaseId, processId: managed.id, previousPid, pid: managed.pid, reason: `liveness`, ...evidence});
      return;
    }
    const previousPid = managed.pid;
    await managed.stop();
    if (!shouldRestart() || roster.stopping) return;
    await managed.start(`liveness`);
    log.info(`process restarted`, {releaseId: inRelease ? release.releaseId : null, processId: managed.id, previousPid, pid: managed.pid, reason: `liveness`, ...evidence});
    const owner = inRelease ? release : roster.ownerOf(managed);
    const ownDefinition = owner?.config.processes.find((process) => process.id === managed.spec.processId);
    if (owner && ownDefinition) await waitUntilReady(owner, ownDefinition, managed, log);
  });
}
