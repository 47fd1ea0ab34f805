import {errorMessage, isRollbridgeError} from '../errors/rollbridge-error.ts';
import type {OutputLine} from '../supervisor/output-buffer.ts';
import type {ProcessLogPaths} from '../supervisor/process-log.ts';
import {removeReleaseLogs} from '../supervisor/process-log.ts';
import type {Release} from './release.ts';

/** What is kept of a deploy that failed before its switch: its release is not retained, its processes' output is. */
export type FailedDeploy = {
  releaseId: string;
  failedAt: Date;
  /** `ERR_PROCESS_EXITED: Process "web" of release r2 exited (code 3) before it became healthy` */
  failure: string;
  processes: Array<{id: string; output: OutputLine[]; logPaths: ProcessLogPaths | undefined}>;
  logsDir: string;
};

/**
 * The latest deploys that failed before their switch, newest last: what `logs --release <id>` shows
 * for a release that never served (abortRelease drops the release itself). At most
 * `releaseRetention.keep` (at least 1) are kept, each with the recent-output ring of its processes; the
 * log directory of one forgotten goes with it unless a retained release or failed deploy has its id.
 * In memory only: a restarted daemon starts with none.
 */
export class FailedDeploys {
  readonly #entries: FailedDeploy[] = [];

  get entries(): readonly FailedDeploy[] {
    return this.#entries;
  }

  /** `retained`: the releases the roster keeps (their ids keep their log directories). */
  record(release: Release, error: unknown, options: {keep: number; retained: readonly Release[]}): void {
    const failure = isRollbridgeError(error) ? `${error.code}: ${error.message}` : errorMessage(error);
    this.#entries.push({
      releaseId: release.releaseId,
      failedAt: new Date(),
      failure,
      processes: release.processes.map((managed) => ({id: managed.id, output: managed.recentOutput(), logPaths: managed.processLog?.paths})),
      logsDir: release.config.logs.dir,
    });
    const dropped = this.#entries.splice(0, Math.max(0, this.#entries.length - Math.max(1, options.keep)));
    for (const entry of dropped) {
      const inUse = options.retained.some((kept) => kept.releaseId === entry.releaseId) || this.#entries.some((kept) => kept.releaseId === entry.releaseId);
      if (!inUse) removeReleaseLogs(entry.logsDir, entry.releaseId);
    }
  }

  find(releaseId: string): FailedDeploy[] {
    return this.#entries.filter((entry) => entry.releaseId === releaseId);
  }

  latest(): FailedDeploy | undefined {
    return this.#entries.at(-1);
  }
}
