import type {Config} from '../config/types.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {removeReleaseLogs} from '../supervisor/process-log.ts';
import type {ProcessRoster} from './process-roster.ts';
import type {Release} from './release.ts';

/** The retained release with this id: a live one first (ids repeat after a redeploy), else the newest. */
export function findRelease(releases: readonly Release[], releaseId: string): Release | undefined {
  for (let index = releases.length - 1; index >= 0; index--) {
    const release = releases[index];
    if (release?.releaseId === releaseId && release.state !== `stopped`) return release;
  }
  return releases.findLast((release) => release.releaseId === releaseId);
}

/**
 * The release `rollback` goes to: the one named, else the most recently activated other release that
 * never failed. A failed release (its watch window switched back, a singleton could not start, a
 * process crash-looped) is never chosen: ERR_ROLLBACK_RELEASE_FAILED when named,
 * ERR_ROLLBACK_NO_HEALTHY_RELEASE when only failed ones are left.
 */
export function pickRollbackTarget(releases: readonly Release[], active: Release | null, releaseId: string | undefined): Release {
  if (releaseId !== undefined) {
    const candidates = releases.filter((release) => release.releaseId === releaseId);
    if (candidates.length === 0) {
      throw new RollbridgeError(ErrorCode.RELEASE_NOT_FOUND, `No retained release "${releaseId}" to roll back to`, {
        fix: `Run "rollbridge status" to list retained releases; raise releaseRetention.keep to retain more`,
        details: {releaseId},
      });
    }
    if (candidates.some((release) => release === active)) {
      throw new RollbridgeError(ErrorCode.RELEASE_ALREADY_ACTIVE, `Release "${releaseId}" is already active`, {fix: `Pass the id of another retained release to --release-id`});
    }
    const healthy = candidates.filter((release) => !isFailed(release));
    const named = healthy[healthy.length - 1];
    if (!named) {
      const reason = failureOf(candidates[candidates.length - 1] as Release);
      throw new RollbridgeError(ErrorCode.ROLLBACK_RELEASE_FAILED, `Release "${releaseId}" failed (${reason}); rollback never goes to a failed release`, {
        fix: `Pass another release to --release-id (\`rollbridge status\` lists them with their failure), or deploy ${releaseId} again with "rollbridge deploy --release-path ${(candidates[0] as Release).releasePath}" once it is fixed`,
        details: {releaseId, failure: reason},
      });
    }
    return named;
  }
  const others = releases
    .filter((release) => release !== active && release.activatedAt !== undefined && release.releaseId !== active?.releaseId)
    .sort((a, b) => (b.activatedAt?.getTime() ?? 0) - (a.activatedAt?.getTime() ?? 0));
  const previous = others.find((release) => !isFailed(release));
  if (previous) return previous;
  if (others.length > 0) {
    const failed = others.map((release) => ({releaseId: release.releaseId, failure: failureOf(release)}));
    throw new RollbridgeError(ErrorCode.ROLLBACK_NO_HEALTHY_RELEASE, `No healthy retained release to roll back to: ${failed.map((entry) => `${entry.releaseId} (${entry.failure})`).join(`, `)}; ${active ? `${active.releaseId} keeps serving` : `nothing is active`}`, {
      fix: `Deploy the release you want with "rollbridge deploy --release-path <path>", or raise releaseRetention.keep to retain more releases`,
      details: {activeReleaseId: active?.releaseId ?? null, failed},
    });
  }
  throw new RollbridgeError(ErrorCode.NO_PREVIOUS_RELEASE, `No previous release to roll back to`, {
    fix: `Deploy the release you want with "rollbridge deploy --release-path <path>"`,
  });
}

function isFailed(release: Release): boolean {
  return release.state === `failed` || release.failureReason !== undefined;
}

function failureOf(release: Release): string {
  return release.failureReason ?? `its start failed`;
}

/** Forgets stopped releases beyond `releaseRetention` (never the active or draining ones) and removes their logs. */
export function pruneReleases(roster: ProcessRoster, config: Config): void {
  const releases = roster.releases;
  const {keep, maxAgeMs} = config.releaseRetention;
  const stopped = releases
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
  for (let index = releases.length - 1; index >= 0; index--) {
    const release = releases[index];
    if (release && drop.has(release)) releases.splice(index, 1);
  }
  for (const release of drop) if (!releases.some((kept) => kept.releaseId === release.releaseId)) removeReleaseLogs(release.config.logs.dir, release.releaseId);
}
