import type {Config} from '../config/types.ts';
import type {DeployContext} from './deploy-context.ts';
import {pruneReleases} from './release-history.ts';
import type {Release} from './release.ts';

/**
 * Retires a release after the switch (in the background): its processes get their `quietCommand` at
 * once while its targets drain for at most `proxy.drainTimeoutMs`, then its processes stop —
 * `nonBlockingDrain` ones at once, handoff services last — its ports are freed and the history is
 * pruned. `release.retirement` settles then.
 */
export function retireRelease(context: DeployContext, release: Release, config: Config): void {
  const {roster, log} = context;
  // A crash loop is judged now: the stop below starts nothing again, but the mark must stay.
  release.failure ??= release.failureReason;
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
    const dependents = release.processes.filter((process) => !nonBlocking.includes(process) && !handoff.includes(process));
    const early = Promise.allSettled(nonBlocking.map((process) => roster.stopForGood(process)));
    // The release stops taking new work now, not after the drain of its web process: workers get their
    // quietCommand at the switch (their stop below waits for it instead of running it again).
    for (const process of dependents) void process.quiet();
    const drains = await Promise.all(release.targets.map((target) => target.drain({timeoutMs: config.proxy.drainTimeoutMs, wsCloseJitterMs: config.proxy.wsCloseJitterMs})));
    const timedOut = drains.some((drain) => drain.timedOut);
    await Promise.allSettled(dependents.map((process) => roster.stopForGood(process)));
    await early;
    await Promise.allSettled(handoff.map((process) => roster.stopForGood(process)));
    for (const target of release.targets) target.close();
    roster.releasePorts(release);
    if (release.state === `draining`) {
      release.state = `stopped`;
      release.stoppedAt = new Date();
    }
    log.info(`release drained`, {releaseId: release.releaseId, timedOut});
    pruneReleases(roster, context.active.config);
    context.changed();
  })().catch((error: unknown) => {
    log.error(`release drain failed`, {releaseId: release.releaseId, err: error});
  });
}

/** Stops every process of a release now (a draining one stops waiting for its drain). */
export async function stopRelease(context: DeployContext, release: Release, finalState: `stopped` | `failed` = `stopped`): Promise<void> {
  if (release.state === `stopped`) return;
  const wasDraining = release.state === `draining`;
  release.state = finalState;
  // Web processes replaced by `restart` that still drain are stopped too (they are recorded until then).
  await Promise.allSettled([...release.processes, ...release.replaced].map((process) => context.roster.stopForGood(process)));
  for (const target of release.targets) target.close();
  if (wasDraining) await release.retirement;
  context.roster.releasePorts(release);
  release.stoppedAt = new Date();
  context.log.info(`release stopped`, {releaseId: release.releaseId});
}
