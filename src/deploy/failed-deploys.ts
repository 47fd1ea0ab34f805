import {errorMessage, isRollbridgeError} from '../errors/rollbridge-error.ts';
import type {StateFailedDeploy} from '../state/state-file.ts';
import type {OutputLine} from '../supervisor/output-buffer.ts';
import type {ProcessLogPaths} from '../supervisor/process-log.ts';
import {readBackLines, removeReleaseLogs} from '../supervisor/process-log.ts';
import type {Release} from './release.ts';
import {isoTime} from '../util/iso-time.ts';

/** What is kept of a deploy that failed before its switch: its release is not retained, its processes' output is. */
export type FailedDeploy = {
  releaseId: string;
  failedAt: Date;
  /** `ERR_PROCESS_EXITED: Process "web" of release r2 exited (code 3) before it became healthy` */
  failure: string;
  processes: Array<{id: string; output: OutputLine[]; logPaths: ProcessLogPaths | undefined}>;
  logsDir: string;
};

/** How many are kept; `retained`: the releases the roster keeps (their ids keep their log directories). */
type Retention = {keep: number; retained: readonly Release[]};

/**
 * The latest deploys that failed before their switch, newest last: what `logs --release <id>` shows
 * for a release that never served (abortRelease drops the release itself). At most
 * `releaseRetention.keep` (at least 1) are kept, each with the recent-output ring of its processes; the
 * log directory of one forgotten goes with it unless a retained release or failed deploy has its id.
 * The state file records them without their output (`snapshot`); a restarted daemon reads the lines
 * back from the log files (`restore`).
 */
export class FailedDeploys {
  readonly #entries: FailedDeploy[] = [];

  get entries(): readonly FailedDeploy[] {
    return this.#entries;
  }

  record(release: Release, error: unknown, retention: Retention): void {
    const failure = isRollbridgeError(error) ? `${error.code}: ${error.message}` : errorMessage(error);
    this.#add({
      releaseId: release.releaseId,
      failedAt: new Date(),
      failure,
      processes: release.processes.map((managed) => ({id: managed.id, output: managed.recentOutput(), logPaths: managed.processLog?.paths})),
      logsDir: release.config.logs.dir,
    }, retention);
  }

  /** For the state file: each process's log files and how many lines of them were kept, not the lines. */
  snapshot(): StateFailedDeploy[] {
    return this.#entries.map((entry) => ({
      releaseId: entry.releaseId,
      failedAt: isoTime(entry.failedAt),
      failure: entry.failure,
      logsDir: entry.logsDir,
      processes: entry.processes.map((process) => ({id: process.id, lines: process.output.length, ...(process.logPaths ? {logPaths: {...process.logPaths}} : {})})),
    }));
  }

  /**
   * After a daemon restart: the recorded failed deploys, each process's last lines read back from its
   * log files (stamped with the files' modification time; a file gone since shows none). Retention
   * applies as at a failure, so a lowered `releaseRetention.keep` drops (and removes) the oldest.
   */
  restore(saved: readonly StateFailedDeploy[], retention: Retention): void {
    for (const entry of saved) {
      this.#add({
        releaseId: entry.releaseId,
        failedAt: new Date(entry.failedAt),
        failure: entry.failure,
        processes: entry.processes.map((process) => ({id: process.id, output: process.logPaths ? readBackLines(process.logPaths, process.lines) : [], logPaths: process.logPaths})),
        logsDir: entry.logsDir,
      }, retention);
    }
  }

  find(releaseId: string): FailedDeploy[] {
    return this.#entries.filter((entry) => entry.releaseId === releaseId);
  }

  latest(): FailedDeploy | undefined {
    return this.#entries.at(-1);
  }

  #add(entry: FailedDeploy, retention: Retention): void {
    this.#entries.push(entry);
    const dropped = this.#entries.splice(0, Math.max(0, this.#entries.length - Math.max(1, retention.keep)));
    for (const old of dropped) {
      const inUse = retention.retained.some((kept) => kept.releaseId === old.releaseId) || this.#entries.some((kept) => kept.releaseId === old.releaseId);
      if (!inUse) removeReleaseLogs(old.logsDir, old.releaseId);
    }
  }
}
