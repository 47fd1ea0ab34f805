import type {Config} from '../config/types.ts';
import type {ProxyServer} from '../proxy/proxy-server.ts';
import type {Release} from './release.ts';

/**
 * The active release: the release new requests and upgrades go to, and the config that came with it.
 * `switchTo` is the only code that changes where traffic goes; deploy, rollback, restart (a replaced
 * web process), the watch window (its fallback and its switch back), stop, restore and legacy
 * takeover all call it.
 */
export class ActiveRelease {
  readonly #proxy: ProxyServer;
  #release: Release | null = null;
  #config: Config;

  constructor(options: {proxy: ProxyServer; config: Config}) {
    this.#proxy = options.proxy;
    this.#config = options.config;
  }

  get release(): Release | null {
    return this.#release;
  }

  /** The config of the last switch (the daemon's config before the first one). */
  get config(): Config {
    return this.#config;
  }

  /**
   * Routes new traffic to `release` (null: to nothing) and makes it the active release. Switching to
   * the active release again re-reads its targets (a replaced process) and its `fallback`; during a
   * watch window `fallback` is the previous release, which gets requests the new one cannot take.
   * `canary` (deploy --canary) sends that share of the clients to the canary release while `release`
   * stays the active one; the next switch ends the split.
   */
  switchTo(release: Release | null, options: {fallback?: Release | null | undefined; canary?: {release: Release; percent: number} | undefined} = {}): void {
    if (release !== null && release !== this.#release) {
      release.state = `active`;
      release.activatedAt ??= new Date();
      if (release.config !== this.#config) {
        this.#config = release.config;
        this.#proxy.updateOptions(proxyRuntimeOptions(release.config));
      }
    }
    this.#release = release;
    if (release === null) this.#proxy.setActiveTargets([]);
    else if (options.canary) this.#proxy.setActiveTargets(release.targets, {canary: {releaseId: options.canary.release.releaseId, percent: options.canary.percent, targets: options.canary.release.targets}});
    else if (options.fallback) this.#proxy.setActiveTargets(release.targets, {fallback: options.fallback.targets});
    else this.#proxy.setActiveTargets(release.targets);
  }
}

/** The proxy options a config sets that apply without a restart. */
export function proxyRuntimeOptions(config: Config) {
  return {
    trustForwarded: config.proxy.trustForwarded,
    maxHeaderBytes: config.proxy.maxHeaderBytes,
    requestHeadTimeoutMs: config.proxy.requestHeadTimeoutMs,
    clientIdleTimeoutMs: config.proxy.clientIdleTimeoutMs,
    upstreamResponseTimeoutMs: config.proxy.upstreamResponseTimeoutMs,
    upstreamIdleTimeoutMs: config.proxy.upstreamIdleTimeoutMs,
    clientBodyTimeoutMs: config.proxy.clientBodyTimeoutMs,
    clientSendTimeoutMs: config.proxy.clientSendTimeoutMs,
    maxConnections: config.proxy.maxConnections,
    maxHeldRequests: config.proxy.maxHeldRequests,
  };
}
