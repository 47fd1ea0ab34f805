import {setTimeout as delay} from 'node:timers/promises';
import type {ProcessConfig} from '../config/types.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {buildProcessLogSpec} from '../supervisor/process-log.ts';
import type {ManagedProcess} from '../supervisor/managed-process.ts';
import type {SerialQueue} from '../util/serial-queue.ts';
import type {DeployContext} from './deploy-context.ts';
import {buildInstanceSpec} from './instance-spec.ts';
import type {Release} from './release.ts';
import {waitUntilHealthy, waitUntilReady} from './startup-checks.ts';

export type RestartRequest = {processId?: string | undefined; policy?: string | undefined; names?: string[] | undefined; cooldownMs?: number | undefined; wait?: boolean | undefined};

/**
 * `restart`: the named processes (or every one the filters match) one after another. The proxied
 * process is only restarted when named (by --process or --policy proxied): it is then replaced
 * without downtime (start, health check, switch, drain), never stopped in place.
 */
export async function restartProcesses(context: DeployContext, request: RestartRequest): Promise<{restarted: string[]}> {
  const {roster, active, log} = context;
  const config = active.config;
  const policyOf = (managed: ManagedProcess) => config.processes.find((process) => process.id === managed.spec.processId)?.policy;
  const names = request.names ?? [];
  const proxiedNamed = (process: ProcessConfig) => process.policy === `proxied` && (request.policy === `proxied` || request.processId !== undefined || names.length > 0);
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
  for (const process of config.processes) {
    if (process.policy === `proxied` && !proxiedNamed(process)) continue;
    if (request.policy !== undefined && process.policy !== request.policy) continue;
    for (const managed of roster.instancesOf(process, active.release)) {
      if (!nameMatches(managed)) continue;
      if (request.processId === undefined || request.processId === process.id || request.processId === managed.id) targets.push(managed);
    }
  }
  if (request.processId !== undefined && targets.length === 0) {
    const valid = validIds();
    throw new RollbridgeError(ErrorCode.PROCESS_NOT_FOUND, `No managed process with id "${request.processId}" to restart`, {
      fix: `Pass one of: ${valid.join(`, `) || `(none running)`} to --process`,
      details: {processId: request.processId, valid},
    });
  }
  const restarted: string[] = [];
  for (const managed of targets) {
    if (restarted.length > 0 && request.cooldownMs) await delay(request.cooldownMs);
    log.info(`process restart requested`, {processId: managed.id});
    const release = active.release;
    if (release && release.processes.includes(managed) && policyOf(managed) === `proxied`) {
      await replaceProxied(context, release, managed);
    } else {
      await managed.stop();
      await managed.start(`manual`);
      const definition = config.processes.find((process) => process.id === managed.spec.processId);
      const owner = release && release.processes.includes(managed) ? release : roster.ownerOf(managed);
      if (definition && owner) await waitUntilReady(owner, definition, managed, log);
    }
    restarted.push(managed.id);
  }
  return {restarted};
}

/**
 * Zero-downtime replacement of a proxied instance of the active release: a new process on a fresh
 * port, health-checked, then the switch to its target, then the drain and stop of the old one.
 * A failure before the switch stops the new process and leaves the old one serving.
 */
export async function replaceProxied(context: DeployContext, release: Release, old: ManagedProcess, reason: `manual` | `memory` = `manual`): Promise<ManagedProcess> {
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
  // Beside the old one until the switch, and recorded before it runs.
  release.processes.push(fresh);
  try {
    await context.commit();
    await fresh.start(reason);
    if (process.health) await waitUntilHealthy(release, fresh, process, port, configIndex);
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
  log.info(`process replaced`, {releaseId: release.releaseId, processId: old.id, previousPid: old.pid, pid: fresh.pid, port, reason});
  context.changed();
  const drain = await oldTarget.drain({timeoutMs: release.config.proxy.drainTimeoutMs, wsCloseJitterMs: release.config.proxy.wsCloseJitterMs});
  await roster.stopForGood(old);
  oldTarget.close();
  release.replaced.splice(release.replaced.indexOf(old), 1);
  context.changed();
  log.info(`process drained`, {releaseId: release.releaseId, processId: old.id, pid: old.pid, timedOut: drain.timedOut});
  return fresh;
}

/** Over its memory limit: the proxied process of the active release is replaced without downtime, others restart. */
export async function restartForMemory(context: DeployContext, queue: SerialQueue, release: Release, managed: ManagedProcess, shouldRestart: () => boolean): Promise<void> {
  const {roster, active} = context;
  // A release still starting is judged by its health check; a restart now would only fail the deploy obscurely.
  if (roster.stopping || roster.frozen || release.state === `starting`) return;
  const policy = active.config.processes.find((process) => process.id === managed.spec.processId)?.policy;
  if (release === active.release && release.processes.includes(managed) && policy === `proxied`) {
    await queue.run(async () => {
      if (release === active.release && release.processes.includes(managed)) await replaceProxied(context, release, managed, `memory`);
    });
    return;
  }
  await managed.stop();
  if (shouldRestart() && !roster.stopping) await managed.start(`memory`);
}
