import type {LogSource} from '../control/protocol.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import type {ManagedProcess} from '../supervisor/managed-process.ts';
import type {FailedDeploy, FailedDeploys} from './failed-deploys.ts';
import {baseProcessId} from './plan.ts';
import type {ProcessRoster} from './process-roster.ts';
import {Release} from './release.ts';

/** Which output `logs` shows (the control request's params). */
export type LogSelection = {
  /** Only this release's processes: a retained release or a failed deploy. */
  releaseId?: string | undefined;
  /** A base id (every replica) or an instance id. */
  processId?: string | undefined;
  /** Every retained release and failed deploy, not only the current ones. */
  all?: boolean | undefined;
};

type Where = {roster: ProcessRoster; active: Release | null; failedDeploys: FailedDeploys};

/**
 * The processes whose recent output `logs` shows, each labelled with where it belongs:
 * - `releaseId`: that release's processes (every retained release with the id, and failed deploys of it);
 *   ERR_RELEASE_NOT_FOUND naming the retained ids when there is none;
 * - `all`: every retained release, every failed deploy kept, the services and the singletons;
 * - by default: the active release, a release being deployed, the latest failed deploy when it failed
 *   after the active release was deployed, the services and the singletons.
 */
export function selectLogSources(where: Where, selection: LogSelection): LogSource[] {
  const {roster, active, failedDeploys} = where;
  let releases: readonly Release[];
  let failed: readonly FailedDeploy[];
  let daemonWide = true;
  if (selection.releaseId !== undefined) {
    releases = roster.releases.filter((release) => release.releaseId === selection.releaseId);
    failed = failedDeploys.find(selection.releaseId);
    daemonWide = false;
    if (releases.length === 0 && failed.length === 0) throw releaseNotFound(selection.releaseId, roster.releases, failedDeploys.entries);
  } else if (selection.all === true) {
    releases = roster.releases;
    failed = failedDeploys.entries;
  } else {
    const latest = latestFailure(roster.releases, failedDeploys, active);
    releases = roster.releases.filter((release) => release === active || release.state === `starting` || release === latest);
    failed = latest !== undefined && !(latest instanceof Release) ? [latest] : [];
  }
  const sources: LogSource[] = [];
  const add = (id: string, source: string, logs: LogSource[`logs`], logPaths: LogSource[`logPaths`], extra: {releaseId?: string; failure?: string} = {}): void => {
    if (selection.processId !== undefined && id !== selection.processId && baseProcessId(id) !== selection.processId) return;
    sources.push({id, source, ...extra, logs, ...(logPaths ? {logPaths: {...logPaths}} : {})});
  };
  const fromProcess = (managed: ManagedProcess, source: string, extra?: {releaseId?: string; failure?: string}) => add(managed.id, source, managed.recentOutput(), managed.processLog?.paths, extra);
  for (const release of releases) {
    const failure = release.failureReason;
    for (const managed of release.processes) fromProcess(managed, `release ${release.releaseId} (${release.state})`, {releaseId: release.releaseId, ...(failure === undefined ? {} : {failure})});
  }
  for (const entry of failed) {
    for (const process of entry.processes) add(process.id, `release ${entry.releaseId} (failed)`, process.output.map((line) => ({...line})), process.logPaths, {releaseId: entry.releaseId, failure: entry.failure});
  }
  if (daemonWide) {
    for (const [, entry] of roster.services) fromProcess(entry.process, `service`);
    for (const [, entry] of roster.singletons) fromProcess(entry.process, `singleton`);
  }
  return sources;
}

/**
 * The latest failed deploy when it failed after the active release's deploy began (any with nothing
 * active): one aborted before its switch, or a release switched back to its predecessor (watch window,
 * singleton failure), which stays retained as `failed`.
 */
function latestFailure(releases: readonly Release[], failedDeploys: FailedDeploys, active: Release | null): FailedDeploy | Release | undefined {
  const since = active?.createdAt.getTime() ?? 0;
  const aborted = failedDeploys.latest();
  const switchedBack = releases.filter((release) => release !== active && release.failure !== undefined).at(-1);
  const abortedAt = aborted?.failedAt.getTime() ?? -1;
  const switchedBackAt = switchedBack === undefined ? -1 : (switchedBack.stoppedAt ?? switchedBack.createdAt).getTime();
  if (aborted !== undefined && abortedAt >= since && abortedAt >= switchedBackAt) return aborted;
  if (switchedBack !== undefined && switchedBackAt >= since) return switchedBack;
  return undefined;
}

function releaseNotFound(releaseId: string, releases: readonly Release[], failed: readonly FailedDeploy[]): RollbridgeError {
  const retained = [
    ...releases.map((release) => `${release.releaseId} (${release.state})`),
    ...failed.map((entry) => `${entry.releaseId} (failed deploy)`),
  ];
  return new RollbridgeError(ErrorCode.RELEASE_NOT_FOUND, `No retained release "${releaseId}" to show the output of; retained: ${retained.length === 0 ? `none` : retained.join(`, `)}`, {
    fix: retained.length === 0
      ? `Deploy a release first; "rollbridge logs" without --release shows the services and singletons`
      : `Pass one of the retained ids to --release ("rollbridge status --all" lists the releases); raise releaseRetention.keep to retain more. Older output is in the files under logs.dir`,
    details: {releaseId, retained: [...releases.map((release) => release.releaseId), ...failed.map((entry) => entry.releaseId)]},
  });
}
