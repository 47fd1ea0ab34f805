import path from 'node:path';
import {loadConfig} from '../config/load.ts';
import {DEFAULT_CANARY_WINDOW_MS} from '../config/defaults.ts';
import {diffLiveReload} from '../config/live-reload.ts';
import type {Config} from '../config/types.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError, errorMessage} from '../errors/rollbridge-error.ts';
import type {DeployPlanView, ProgressEvent} from '../control/protocol.ts';
import type {ManagedProcess} from '../supervisor/managed-process.ts';
import {assertLogSpace} from '../supervisor/process-log.ts';
import type {DeployContext} from './deploy-context.ts';
import {retireRelease, stopRelease} from './draining.ts';
import {hookFailure, runHook} from './hook-runner.ts';
import type {HookName, HookResult} from './hook-runner.ts';
import {processPortEnvName} from './process-env.ts';
import {planRelease} from './plan.ts';
import type {ReleasePlan} from './plan.ts';
import {Release, generateReleaseId, validateReleasePath} from './release.ts';
import {replaceSingletons, restoreSingletons} from './singletons.ts';
import {formatMs, startedPhase, waitUntilHealthy, waitUntilListening, waitUntilReady} from './startup-checks.ts';
import type {PhaseReporter} from './startup-checks.ts';
import {watchRelease} from './watch-window.ts';
import {checkCanary, runCanary} from './canary.ts';
import type {CanaryReport} from './canary.ts';
import {SwitchHold, webProcessesOf} from './switch-hold.ts';

export type DeployRequest = {
  releasePath: string;
  releaseId?: string | undefined;
  revision?: string | undefined;
  /** Queue behind a running deploy (default) or fail fast with ERR_DAEMON_BUSY. */
  wait?: boolean | undefined;
  skipHealthCheck?: boolean | undefined;
  /** Do not run hooks.beforeSwitch (e.g. migrations already applied); logged. */
  skipBeforeSwitch?: boolean | undefined;
  /** Print the plan and change nothing. */
  dryRun?: boolean | undefined;
  /** Watch window in ms; overrides `watch.windowMs`. */
  watchMs?: number | undefined;
  /** Do nothing when this release id is already active with the same release path and revision. */
  skipIfActive?: boolean | undefined;
  /** deploy --canary: this share of the clients (1–99 %) goes to the new release for canaryWindowMs, then the verdict. */
  canaryPercent?: number | undefined;
  canaryWindowMs?: number | undefined;
  /**
   * In-process only (never from the control socket): runs right after the switch, before the
   * singletons; a throw switches back and fails the deploy. Legacy takeover stops the legacy app and
   * binds the proxy port here (the proxy does not listen before, so the switch routes nothing yet).
   */
  onSwitched?: ((release: Release, phase: PhaseReporter) => Promise<void>) | undefined;
};

export type DeployPhase = {phase: string; releaseId: string; durationMs: number; processId?: string; detail?: string};
export type ProgressListener = (event: ProgressEvent) => void;
export type {PhaseReporter} from './startup-checks.ts';

export type DeployResult = {
  /** Null only for a dry run on a daemon with nothing active. */
  activeReleaseId: string | null;
  previousReleaseId: string | null;
  releaseId: string;
  durationMs: number;
  /** False for a dry run and a skipped deploy. */
  changed: boolean;
  /** The release was already active (`skipIfActive`): nothing was done. */
  skipped?: boolean;
  phases: DeployPhase[];
  /** Where the daemon's time went, ms (see DeployTimings); absent from dry runs and skipped deploys. */
  timings?: DeployTimings;
  hooks?: HookResult[];
  plan?: DeployPlanView;
  /** deploy --canary: the figures and the verdict (always `promoted` here; a rejected canary is ERR_CANARY_REJECTED). */
  canary?: CanaryReport;
  /** `switch: "hold"`: how long requests were held (heldMs), of which draining the previous web process (drainMs). */
  switchHold?: {heldMs: number; drainMs: number; holdTimeoutMs: number};
};

/**
 * A deploy's time by step, ms: reading the config, the write-ahead state write (fsynced) before
 * anything starts, spawning the processes, their health checks, the switch and the state write
 * that makes it durable before the reply. What is not listed (ports, hooks, singletons) is the rest
 * of `durationMs`.
 */
export type DeployTimings = {configMs: number; stateWriteMs: number; spawnMs: number; healthMs: number; switchMs: number; switchStateWriteMs: number};

/**
 * One deploy (or rollback), in order: ports, daemon-wide services, the release's processes with their
 * health checks, beforeSwitch, the switch, singletons, the watch window, the retirement of the
 * previous release (draining in the background), afterSwitch. Anything failing before the switch
 * stops the new release and leaves the previous one serving; after it, switches back.
 */
export async function runDeployment(context: DeployContext, request: DeployRequest, onProgress: ProgressListener | undefined): Promise<DeployResult> {
  const {log, roster, active} = context;
  const startedAt = performance.now();
  const phases: DeployPhase[] = [];
  let phaseStartedAt = startedAt;
  const releasePath = path.resolve(request.releasePath);
  const releaseId = request.releaseId ?? request.revision ?? generateReleaseId();
  const revision = request.revision ?? releaseId;
  const timings: DeployTimings = {configMs: 0, stateWriteMs: 0, spawnMs: 0, healthMs: 0, switchMs: 0, switchStateWriteMs: 0};
  const timed = async <T>(key: keyof DeployTimings, work: () => Promise<T>): Promise<T> => {
    const since = performance.now();
    try {
      return await work();
    } finally {
      timings[key] += performance.now() - since;
    }
  };
  const phase: PhaseReporter = (name, extra = {}) => {
    // A wait starting is only streamed: the phase that ends it carries the wait's duration.
    if (name === `waiting`) return onProgress?.({phase: name, releaseId, ...extra});
    const now = performance.now();
    const entry: DeployPhase = {phase: name, releaseId, durationMs: Math.round(now - phaseStartedAt), ...(typeof extra.processId === `string` ? {processId: extra.processId} : {})};
    phaseStartedAt = now;
    phases.push(entry);
    onProgress?.({...entry, ...extra});
  };
  try {
    const config = await timed(`configMs`, () => reloadConfig(active.config));
    validateReleasePath(releasePath);
    const previous = active.release;
    const release = new Release({releaseId, releasePath, revision, config});
    log.info(`deploy starting`, {releaseId, releasePath, ...(request.revision !== undefined ? {revision: request.revision} : {})});
    const plan = planRelease(config);
    const startedServices: string[] = [];
    const hooks: HookResult[] = [];
    const canaryPercent = request.canaryPercent;
    const holdDefinition = config.processes.find((process) => process.policy === `proxied` && process.switch === `hold`);
    if (canaryPercent !== undefined) checkCanary(previous, releaseId, holdDefinition);
    // Hold-on-switch unless every previous web process is stopped for good: one running, starting, stopping or
    // crashed and waiting for its automatic restart would run (again) beside the new one.
    const holdFrom = holdDefinition && previous && webProcessesOf(previous).some((managed) => managed.state !== `stopped`) ? previous : null;
    // Set once the hold began (right before the new web process starts).
    const holding: {hold: SwitchHold | null; drainMs: number} = {hold: null, drainMs: 0};
    const holdStep: HoldStep | null = holdFrom === null || holdDefinition === undefined ? null : {
      before: async () => {
        if (holding.hold !== null) return;
        const hold = await SwitchHold.begin(context, holdFrom, release, holdDefinition);
        holding.hold = hold;
        phase(`holding`, {previousReleaseId: holdFrom.releaseId, detail: `new requests are held (at most ${hold.budgetMs} ms) while ${holdFrom.releaseId}'s web process drains and stops`});
        const stopped = await hold.stopPrevious();
        holding.drainMs = stopped.drainMs;
        phase(`previousStopped`, {previousReleaseId: holdFrom.releaseId, detail: `drained in ${stopped.drainMs} ms${stopped.timedOut ? ` (drain timed out)` : ``}`});
      },
      within: (work, what) => (holding.hold === null ? work : holding.hold.within(work, what)),
    };
    let holdFigures: DeployResult[`switchHold`];
    let canary: CanaryReport | undefined;
    // Recorded (state `starting`) before anything of it runs: a daemon killed from here on finds and
    // stops what this deploy started.
    roster.releases.push(release);
    try {
      assertLogSpace(config.logs.dir);
      await allocatePorts(context, release, plan);
      createServices(context, release, plan, startedServices);
      createReleaseProcesses(context, release, plan);
      await timed(`stateWriteMs`, () => context.commit());
      await startServices(context, release, plan, phase);
      await startReleaseProcesses(context, release, plan, phase, request.skipHealthCheck === true, timed, holdStep);
      if (config.hooks.beforeSwitch && request.skipBeforeSwitch === true) {
        log.warn(`hook skipped`, {hook: `beforeSwitch`, releaseId});
      } else if (config.hooks.beforeSwitch) {
        phase(`waiting`, waitingForHook(`beforeSwitch`, config.hooks.beforeSwitch, config.hooks.timeoutMs));
        const result = await runReleaseHook(context, `beforeSwitch`, config.hooks.beforeSwitch, release);
        hooks.push(result);
        if (!result.ok) throw hookFailure(result, releaseId);
        phase(`beforeSwitch`, {exitCode: result.exitCode});
      }
      if (canaryPercent !== undefined && previous !== null) {
        canary = await runCanary(context, release, previous, canaryPercent, request.canaryWindowMs ?? DEFAULT_CANARY_WINDOW_MS, phase);
      }
    } catch (error) {
      await abortRelease(context, release, startedServices, error);
      // The previous web process was stopped for the hold: it starts again and gets the held requests.
      await holding.hold?.rollBack(error);
      throw error;
    }
    const hold = holding.hold;
    // The switch: from here on new requests and upgrades go to the new release.
    const watchMs = request.watchMs ?? config.watch.windowMs;
    // After a hold the previous web process is stopped: it cannot stay warm for a watch window.
    const watching = previous !== null && watchMs > 0 && hold === null;
    if (hold !== null && watchMs > 0) log.warn(`watch window skipped`, {releaseId, reason: `switch: "hold" stopped the previous web process`});
    const switchStartedAt = performance.now();
    active.switchTo(release, {fallback: watching ? previous : null});
    log.info(`traffic switched`, {previousReleaseId: previous?.releaseId ?? null, releaseId});
    timings.switchMs = performance.now() - switchStartedAt;
    phase(`switched`, {previousReleaseId: previous?.releaseId ?? null});
    refreshServices(context, release);
    let singletons: string[] = [];
    try {
      // Durable before singletons are replaced, the previous release retires or the command is answered.
      await timed(`switchStateWriteMs`, () => context.commit());
      if (hold !== null) {
        const heldMs = hold.finish();
        holdFigures = {heldMs, drainMs: holding.drainMs, holdTimeoutMs: hold.budgetMs};
        phase(`resumed`, {detail: `requests were held ${heldMs} ms`, heldMs});
      }
      if (request.onSwitched) await request.onSwitched(release, phase);
      singletons = await replaceSingletons(context, release, plan, previous, phase);
    } catch (error) {
      hold?.holdAgain();
      await switchBack(context, release, previous, error);
      await hold?.rollBack(error);
      throw error;
    }
    if (previous && watching) {
      phase(`watching`, {detail: `previous release ${previous.releaseId} stays warm for ${watchMs} ms`});
      const problem = await watchRelease(release, watchMs, config);
      if (problem !== null) {
        const error = new RollbridgeError(ErrorCode.WATCH_ROLLED_BACK, `Release ${releaseId} was rolled back to ${previous.releaseId} during its watch window: ${problem}`, {
          fix: `Check "rollbridge logs --release ${releaseId}" and "rollbridge events" for the new release; fix it and deploy again`,
          details: {releaseId, previousReleaseId: previous.releaseId, reason: problem, watchMs},
        });
        log.warn(`watch failed; switched back`, {releaseId, previousReleaseId: previous.releaseId, reason: problem});
        await switchBack(context, release, previous, error, singletons);
        throw error;
      }
      active.switchTo(release);
      phase(`watched`);
    }
    if (previous) {
      retireRelease(context, previous, config);
      phase(`draining`, {previousReleaseId: previous.releaseId, detail: `continues in the background for up to ${config.proxy.drainTimeoutMs} ms`});
    }
    if (config.hooks.afterSwitch) {
      // The switch stands whatever happens here: the result and the events report a failure.
      phase(`waiting`, waitingForHook(`afterSwitch`, config.hooks.afterSwitch, config.hooks.timeoutMs));
      const result = await runReleaseHook(context, `afterSwitch`, config.hooks.afterSwitch, release);
      hooks.push(result);
      phase(`afterSwitch`, {exitCode: result.exitCode, ok: result.ok});
    }
    return {
      activeReleaseId: release.releaseId,
      previousReleaseId: previous?.releaseId ?? null,
      releaseId,
      durationMs: Math.round(performance.now() - startedAt),
      changed: true,
      phases,
      timings: roundTimings(timings),
      ...(hooks.length > 0 ? {hooks} : {}),
      ...(canary !== undefined ? {canary} : {}),
      ...(holdFigures !== undefined ? {switchHold: holdFigures} : {}),
    };
  } catch (error) {
    // `error` (the message) is rollbridge 0.1's field, which scripts read from `events`; `err` is ours.
    log.warn(`deploy failed`, {releaseId, error: errorMessage(error), err: error});
    throw error;
  }
}

/** The config file read again for a deploy; refuses changes that only a daemon restart can apply. */
export async function reloadConfig(current: Config): Promise<Config> {
  const {config} = await loadConfig({cwd: path.dirname(current.configPath), configPath: current.configPath});
  const changed = diffLiveReload(current, config);
  if (changed.length > 0) {
    throw new RollbridgeError(ErrorCode.CONFIG_LIVE_RELOAD, `Config changes to ${changed.join(`, `)} cannot be applied live`, {
      fix: `Revert those fields in ${current.configPath}, or restart the daemon ("rollbridge shutdown", then deploy with --ensure-daemon) to apply them`,
      details: {fields: changed},
    });
  }
  return config;
}

export async function runReleaseHook(context: DeployContext, hook: HookName, command: string, release: Release): Promise<HookResult> {
  const {active, roster} = context;
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(roster.baseEnv)) if (value !== undefined) env[name] = value;
  const current = active.release;
  Object.assign(env, {
    ROLLBRIDGE_APPLICATION: release.config.application,
    ROLLBRIDGE_RELEASE_ID: release.releaseId,
    ROLLBRIDGE_RELEASE_PATH: release.releasePath,
    ROLLBRIDGE_REVISION: release.revision,
    ROLLBRIDGE_HOOK: hook,
    ROLLBRIDGE_PREVIOUS_RELEASE_ID: current && current !== release ? current.releaseId : (roster.releases.findLast((r) => r !== release && r.activatedAt)?.releaseId ?? ``),
  });
  for (const [processId, port] of Object.entries(release.ports)) env[processPortEnvName(processId)] = String(port);
  const result = await runHook({hook, command, cwd: release.releasePath, env, timeoutMs: release.config.hooks.timeoutMs});
  const fields = {hook, releaseId: release.releaseId, ok: result.ok, exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut, durationMs: result.durationMs, output: result.output};
  if (result.ok) context.log.info(`hook finished`, fields);
  else context.log.warn(`hook failed`, fields);
  return result;
}

async function allocatePorts(context: DeployContext, release: Release, plan: ReleasePlan): Promise<void> {
  const {ports, roster} = context;
  for (const {process, configKey} of plan.portRequests) {
    if (process.port === undefined) continue;
    const service = process.policy === `service` && process.deployStrategy !== `handoff` ? roster.services.get(process.id) : undefined;
    if (service?.port !== undefined) {
      release.ports[process.id] = service.port;
      continue;
    }
    release.ports[process.id] = await ports.allocate({owner: release.key, processId: process.id, range: process.port, configKey});
    // Proxied replicas each listen on their own port; `ports.<id>` (templates) is the first one's.
    if (process.policy === `proxied` && process.replicas > 1) {
      release.instancePorts[`${process.id}#0`] = release.ports[process.id] as number;
      for (let index = 1; index < process.replicas; index++) {
        release.instancePorts[`${process.id}#${index}`] = await ports.allocate({owner: release.key, processId: `${process.id}#${index}`, range: process.port, configKey});
      }
    }
  }
}

/** Registers the daemon-wide services this deploy starts (not spawned yet: the state records them first). */
function createServices(context: DeployContext, release: Release, plan: ReleasePlan, started: string[]): void {
  const {roster} = context;
  for (const {process} of plan.services) {
    if (roster.services.has(process.id)) continue;
    const port = release.ports[process.id];
    const managed = roster.create(release, process, process.id, 0, 1, () => !roster.stopping);
    if (port !== undefined) context.ports.lease(`service:${process.id}`, port);
    roster.services.set(process.id, {process: managed, release, port});
    started.push(process.id);
  }
}

/** The `waiting` phase of a hook: its command and timeout. */
export function waitingForHook(hook: HookName, command: string, timeoutMs: number): Record<string, unknown> {
  return {wait: `hook`, hook, timeoutMs, detail: `hooks.${hook}: ${command} (timeout ${formatMs(timeoutMs)})`};
}

/** Starts the services that do not run, in dependsOn order; a stopped or failed one is revived (upstream left it down). */
async function startServices(context: DeployContext, release: Release, plan: ReleasePlan, phase: PhaseReporter): Promise<void> {
  const {roster, log} = context;
  for (const {process} of plan.services) {
    const entry = roster.services.get(process.id);
    if (!entry || entry.process.state === `running` || entry.process.state === `starting` || entry.process.state === `stopping`) continue;
    if (entry.release !== release) entry.process.updateSpec(roster.spec(release, process, process.id, 0, 1, roster.keyOf(entry.process)));
    await entry.process.start(`deploy`);
    phase(`started`, startedPhase(entry.process, process.policy));
    await waitUntilReady(release, process, entry.process, log, phase);
  }
}

/** Creates every process of the release (not spawned yet: the state records them first). */
function createReleaseProcesses(context: DeployContext, release: Release, plan: ReleasePlan): void {
  for (const instance of plan.instances) {
    release.processes.push(context.roster.create(release, instance.process, instance.instanceId, instance.replicaIndex, instance.replicaCount, () => release.isLive));
  }
}

type Timed = <T>(key: keyof DeployTimings, work: () => Promise<T>) => Promise<T>;

function roundTimings(timings: DeployTimings): DeployTimings {
  const rounded = {...timings};
  for (const key of Object.keys(rounded) as Array<keyof DeployTimings>) rounded[key] = Math.round(rounded[key] * 10) / 10;
  return rounded;
}

/** Hold-on-switch around the start of the proxied process: `before` holds and stops the previous one; `within` bounds each wait by the budget. */
type HoldStep = {before(): Promise<void>; within<T>(work: Promise<T>, what: string): Promise<T>};

async function startReleaseProcesses(context: DeployContext, release: Release, plan: ReleasePlan, phase: PhaseReporter, skipHealthCheck: boolean, timed: Timed, hold: HoldStep | null): Promise<void> {
  const {roster, log, proxy} = context;
  for (const [index, instance] of plan.instances.entries()) {
    roster.assertRunning();
    const managed = release.processes[index] as ManagedProcess;
    const proxied = instance.process.policy === `proxied`;
    if (proxied && hold !== null) {
      await hold.before();
      await timed(`spawnMs`, () => hold.within(managed.start(`deploy`), `the start of ${instance.instanceId}`));
    } else {
      await timed(`spawnMs`, () => managed.start(`deploy`));
    }
    if (!proxied) {
      phase(`started`, startedPhase(managed, instance.process.policy));
      await waitUntilReady(release, instance.process, managed, log, phase);
      continue;
    }
    const port = release.instancePorts[instance.instanceId] ?? release.ports[instance.process.id];
    if (port === undefined) continue;
    phase(`started`, {processId: instance.instanceId, pid: managed.pid, port});
    if (instance.process.health && !skipHealthCheck) {
      await timed(`healthMs`, () => {
        const healthy = waitUntilHealthy(release, managed, instance.process, port, instance.configIndex, phase);
        return hold === null ? healthy : hold.within(healthy, `the health check of ${instance.instanceId}`);
      });
      phase(`healthy`, {processId: instance.instanceId});
    } else {
      if (skipHealthCheck) log.warn(`health check skipped`, {releaseId: release.releaseId, processId: instance.instanceId});
      // Without a health check the switch still waits for the port: before it listens every request gets a 502.
      await waitUntilListening(release, managed, instance.process, port, instance.configIndex, phase);
      phase(`listening`, {processId: instance.instanceId});
    }
    release.targets.push(proxy.createTarget({releaseId: release.releaseId, processId: instance.instanceId, host: release.config.proxy.upstreamHost, port}));
  }
}

async function abortRelease(context: DeployContext, release: Release, startedServices: string[], error: unknown): Promise<void> {
  const {roster, log} = context;
  release.state = `failed`;
  log.warn(`release startup failed`, {releaseId: release.releaseId, phase: `before cleanup`, error: errorMessage(error), err: error});
  await Promise.allSettled(release.processes.map((process) => roster.stopForGood(process)));
  for (const target of release.targets) target.close();
  for (const id of startedServices) {
    const entry = roster.services.get(id);
    if (!entry) continue;
    await roster.stopForGood(entry.process).catch(() => undefined);
    roster.services.delete(id);
    context.ports.releaseOwner(`service:${id}`);
  }
  roster.releasePorts(release);
  for (const process of release.processes) {
    const status = process.status();
    log.info(`release startup process status`, {releaseId: release.releaseId, processId: process.id, phase: `after cleanup`, state: status.state, exitCode: status.exitCode, exitSignal: status.exitSignal, pid: status.pid});
  }
  // A release that never served is not retained (nothing of it runs any more); its output is, for `logs --release`.
  context.failedDeploys.record(release, error, {keep: release.config.releaseRetention.keep, retained: roster.releases});
  const index = roster.releases.indexOf(release);
  if (index !== -1) roster.releases.splice(index, 1);
}

/** The daemon-wide services follow the active release's definitions (spec and owner). */
export function refreshServices(context: DeployContext, release: Release): void {
  const {roster} = context;
  for (const [id, entry] of roster.services) {
    const process = release.config.processes.find((p) => p.id === id);
    if (!process) continue;
    entry.process.updateSpec(roster.spec(release, process, id, 0, 1, roster.keyOf(entry.process)));
    entry.release = release;
  }
}

/** After the switch something failed: route back to the still-running previous release and stop the new one. */
async function switchBack(context: DeployContext, release: Release, previous: Release | null, error: unknown, singletons: string[] = []): Promise<void> {
  context.log.warn(`switching back`, {releaseId: release.releaseId, previousReleaseId: previous?.releaseId ?? null, err: error});
  context.active.switchTo(previous);
  if (previous) refreshServices(context, previous);
  release.state = `failed`;
  release.failure = errorMessage(error);
  await restoreSingletons(context, singletons, previous);
  await stopRelease(context, release, `failed`);
}
