import type {Logger} from '../log/logger.ts';
import type {ProxyServer} from '../proxy/proxy-server.ts';
import type {PortAllocator} from '../supervisor/port-allocator.ts';
import type {ActiveRelease} from './active-release.ts';
import type {FailedDeploys} from './failed-deploys.ts';
import type {ProcessRoster} from './process-roster.ts';
import type {StateSwitchHold} from '../state/state-file.ts';

/** What the deploy steps share: the parts the Deployer facade owns, handed to each step. */
export type DeployContext = {
  readonly proxy: ProxyServer;
  readonly ports: PortAllocator;
  /** Bound to `component: deploy`. */
  readonly log: Logger;
  readonly roster: ProcessRoster;
  /** Deploys that failed before their switch, with their processes' output (`logs --release`). */
  readonly failedDeploys: FailedDeploys;
  readonly active: ActiveRelease;
  /** Tells the daemon the state changed (the state file is written soon after). */
  readonly changed: () => void;
  /**
   * Write-ahead: resolves once the state file durably records the state as it is now; rejects with
   * ERR_STATE_WRITE_FAILED. Called before a spawn, after a switch, before a reply.
   */
  readonly commit: () => Promise<void>;
  /** The hold-on-switch in progress (recorded in the state file), or null. */
  readonly switchHold: {current: StateSwitchHold | null};
};
