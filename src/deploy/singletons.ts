import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError, errorMessage} from '../errors/rollbridge-error.ts';
import type {DeployContext} from './deploy-context.ts';
import type {ReleasePlan} from './plan.ts';
import type {Release} from './release.ts';
import {startedPhase, waitUntilReady} from './startup-checks.ts';
import type {PhaseReporter} from './startup-checks.ts';

/**
 * Replaces singletons one at a time after the switch, never two copies at once; on failure puts the
 * replaced ones back and throws ERR_SINGLETON_START_FAILED. Returns the ids it replaced.
 */
export async function replaceSingletons(context: DeployContext, release: Release, plan: ReleasePlan, previous: Release | null, phase?: PhaseReporter): Promise<string[]> {
  const {roster} = context;
  const replaced: string[] = [];
  for (const {process} of plan.singletons) {
    const old = roster.singletons.get(process.id);
    if (old) await roster.stopForGood(old.process);
    const managed = roster.create(release, process, process.id, 0, 1, () => roster.singletons.get(process.id)?.release?.isLive === true);
    roster.singletons.set(process.id, {process: managed, release, port: release.ports[process.id]});
    replaced.push(process.id);
    try {
      // Recorded before it runs: never a second copy after a daemon crash.
      await context.commit();
      await managed.start(`deploy`);
      phase?.(`started`, startedPhase(managed, process.policy));
      await waitUntilReady(release, process, managed, context.log, phase);
    } catch (error) {
      await restoreSingletons(context, replaced, previous);
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
export async function restoreSingletons(context: DeployContext, ids: string[], previous: Release | null): Promise<void> {
  const {roster} = context;
  for (const id of ids) {
    const current = roster.singletons.get(id);
    if (current) await roster.stopForGood(current.process).catch(() => undefined);
    const definition = previous?.config.processes.find((process) => process.id === id && process.policy === `singleton`);
    if (!previous || !definition) {
      roster.singletons.delete(id);
      continue;
    }
    const restored = roster.create(previous, definition, id, 0, 1, () => roster.singletons.get(id)?.release?.isLive === true);
    roster.singletons.set(id, {process: restored, release: previous, port: previous.ports[id]});
    await context.commit().then(() => restored.start(`deploy`)).catch((error: unknown) => context.log.error(`singleton restore failed`, {processId: id, err: error}));
  }
}
