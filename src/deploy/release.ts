import fs from 'node:fs';
import type {Config} from '../config/types.ts';
import type {ReleaseStatusView} from '../control/protocol.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError, errorMessage} from '../errors/rollbridge-error.ts';
import type {Target} from '../proxy/target.ts';
import type {ManagedProcess} from '../supervisor/managed-process.ts';
import type {ProcessUsage} from '../supervisor/process-usage.ts';
import {isoTime} from '../util/iso-time.ts';

export type ReleaseState = `starting` | `active` | `draining` | `stopped` | `failed`;

let sequence = 0;

/** One deployed release: its processes, its proxy targets and its ports. */
export class Release {
  /** Internal identity: release ids may repeat (redeploy of the same revision), keys never do. */
  readonly key: string;
  readonly releaseId: string;
  readonly releasePath: string;
  readonly revision: string;
  createdAt = new Date();
  state: ReleaseState = `starting`;
  config: Config;
  activatedAt: Date | undefined;
  drainStartedAt: Date | undefined;
  stoppedAt: Date | undefined;
  ports: Record<string, number> = {};
  /** Ports of proxied replicas by instance id (`web#1`); single instances use `ports`. */
  instancePorts: Record<string, number> = {};
  processes: ManagedProcess[] = [];
  /** Web processes replaced by `restart` (or a memory restart) while they drain; recorded until stopped. */
  replaced: ManagedProcess[] = [];
  targets: Target[] = [];
  /** Port-lease owners beyond `key` (ports of replaced proxied instances), released with the release. */
  portOwners: string[] = [];
  /**
   * Why the release must never be rolled back to: its watch window switched back, a singleton could
   * not start, or a process of it crash-looped (restart limit reached). Kept in the state file.
   */
  failure: string | undefined;
  /** Set while the release drains; resolves when its processes are stopped. */
  retirement: Promise<void> | undefined;

  constructor(options: {releaseId: string; releasePath: string; revision: string; config: Config}) {
    sequence += 1;
    this.key = `${options.releaseId}~${sequence}`;
    this.releaseId = options.releaseId;
    this.releasePath = options.releasePath;
    this.revision = options.revision;
    this.config = options.config;
  }

  get isLive(): boolean {
    return this.state === `starting` || this.state === `active`;
  }

  /** The reason it failed (`failure`, or a process of it in a crash loop right now); undefined when healthy. */
  get failureReason(): string | undefined {
    if (this.failure !== undefined) return this.failure;
    const looping = this.processes.find((process) => process.restartLimitReached);
    return looping ? `process ${looping.id} crash-looped (restart limit reached)` : undefined;
  }

  get connections(): {http: number; websocket: number} {
    let http = 0;
    let websocket = 0;
    for (const target of this.targets) {
      http += target.connections.http;
      websocket += target.connections.websocket;
    }
    return {http, websocket};
  }

  /** `usage`: RSS and CPU of its running processes (ProcessUsageSampler), shown per process. */
  status(usage?: ReadonlyMap<ManagedProcess, ProcessUsage>): ReleaseStatusView {
    const connections = this.connections;
    return {
      releaseId: this.releaseId,
      releasePath: this.releasePath,
      revision: this.revision,
      state: this.state,
      createdAt: isoTime(this.createdAt),
      ...(this.activatedAt ? {activatedAt: isoTime(this.activatedAt)} : {}),
      ...(this.drainStartedAt ? {drainStartedAt: isoTime(this.drainStartedAt)} : {}),
      ...(this.stoppedAt ? {stoppedAt: isoTime(this.stoppedAt)} : {}),
      ...(this.failure !== undefined ? {failure: this.failure} : {}),
      connectionCount: connections.http + connections.websocket,
      connections,
      ports: {...this.ports},
      processes: this.processes.map((process) => process.status(usage?.get(process))),
    };
  }
}

/** Release id when none is given: `--revision`, else the UTC time with non-digits stripped (17 digits). */
export function generateReleaseId(now = new Date()): string {
  return isoTime(now).replace(/\D/g, ``).slice(0, 17);
}

export function validateReleasePath(releasePath: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(releasePath);
  } catch (error) {
    throw new RollbridgeError(ErrorCode.RELEASE_PATH_INVALID, `Release path ${releasePath} is not accessible: ${(error as NodeJS.ErrnoException).code ?? errorMessage(error)}`, {
      fix: `Pass the directory of a prepared release to --release-path`,
      details: {releasePath},
    });
  }
  if (!stat.isDirectory()) {
    throw new RollbridgeError(ErrorCode.RELEASE_PATH_INVALID, `Release path ${releasePath} is not a directory`, {
      fix: `Pass the directory of a prepared release to --release-path`,
      details: {releasePath},
    });
  }
}
