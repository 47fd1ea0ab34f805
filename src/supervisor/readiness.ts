import net from 'node:net';
import {execa} from 'execa';
import type {HealthConfig, ReadinessConfig} from '../config/types.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {abortableDelay} from '../util/abortable-delay.ts';
import {probeHttp} from './health-check.ts';

export type ReadinessTarget = {
  /** The instance id, for messages. */
  processId: string;
  host: string;
  port: number | undefined;
  cwd: string;
  env: Record<string, string>;
};

export type CheckResult = {ok: true} | {ok: false; error: string};

/** One repeatable check: what readiness, the tcp/command health checks and liveness probe. */
export type ProbeCheck = {kind: `http` | `tcp` | `command`; path: string | undefined; command: string | undefined};

/** The repeatable check of a health config; null for `notify` (the process reports readiness, nothing is probed). */
export function healthProbeCheck(health: HealthConfig): ProbeCheck | null {
  return health.type === `notify` ? null : {kind: health.type, path: health.path, command: health.command};
}

type WaitSettings = Pick<ReadinessConfig, `timeoutMs` | `intervalMs` | `probeTimeoutMs` | `successThreshold`>;

/**
 * Probes a process's readiness check (http, tcp or command) until `successThreshold` consecutive
 * passes, or throws ERR_READINESS_FAILED at `timeoutMs` with the last failure. Waits between probes
 * grow from 10 ms to `intervalMs` like the health check's. `purpose: "health"` (the tcp and command
 * health checks of the proxied process) throws ERR_HEALTH_CHECK_FAILED instead.
 */
export async function waitForReady(readiness: ProbeCheck & WaitSettings, target: ReadinessTarget, options: {configKey: string; signal?: AbortSignal | undefined; logsCommand?: string; purpose?: `readiness` | `health`}): Promise<{attempts: number; durationMs: number}> {
  const startedAt = Date.now();
  const deadline = startedAt + readiness.timeoutMs;
  let attempts = 0;
  let passes = 0;
  let lastFailure = `no attempts`;
  const describe = describeReadinessCheck(readiness, target);
  while (Date.now() < deadline) {
    options.signal?.throwIfAborted();
    attempts += 1;
    const probeTimeoutMs = Math.max(1, Math.min(readiness.probeTimeoutMs, deadline - Date.now()));
    const result = await probeCheck(readiness, target, probeTimeoutMs, options.signal);
    if (result.ok) {
      passes += 1;
      if (passes >= readiness.successThreshold) return {attempts, durationMs: Date.now() - startedAt};
    } else {
      passes = 0;
      // A probe cut short by the overall deadline says less than the failure before it (as health-check.ts).
      const clamped = probeTimeoutMs < readiness.probeTimeoutMs && attempts > 1;
      if (!clamped || !/ timed out after /.test(result.error)) lastFailure = result.error;
    }
    const waitMs = Math.min(readiness.intervalMs, Math.max(10, (Date.now() - startedAt) / 5));
    if (Date.now() + waitMs >= deadline) break;
    await abortableDelay(waitMs, options.signal);
  }
  const health = options.purpose === `health`;
  throw new RollbridgeError(health ? ErrorCode.HEALTH_CHECK_FAILED : ErrorCode.READINESS_FAILED, `Process "${target.processId}" did not become ${health ? `healthy` : `ready`} (${describe}) within ${readiness.timeoutMs} ms after ${attempts} ${attempts === 1 ? `attempt` : `attempts`}: ${lastFailure}`, {
    fix: `Make the check pass, or correct ${options.configKey} (raise ${options.configKey}.timeoutMs for a slow start); "${options.logsCommand ?? `rollbridge logs --process ${target.processId}`}" shows its output`,
    details: {processId: target.processId, check: describe, attempts, lastFailure},
  });
}

/** What the check probes, for messages and progress lines: `GET http://127.0.0.1:4001/ready`, `TCP 127.0.0.1:4001`, `command "…"`. */
export function describeReadinessCheck(readiness: ProbeCheck, target: Pick<ReadinessTarget, `host` | `port`>): string {
  if (readiness.kind === `http`) return `GET http://${formatHost(target.host)}:${target.port}${readiness.path}`;
  if (readiness.kind === `tcp`) return `TCP ${formatHost(target.host)}:${target.port}`;
  return `command ${JSON.stringify(readiness.command)}`;
}

/** One probe of `readiness` against `target`, never longer than `timeoutMs`; aborting `signal` rejects with its reason. */
export async function probeCheck(readiness: ProbeCheck, target: ReadinessTarget, timeoutMs: number, signal?: AbortSignal): Promise<CheckResult> {
  if (readiness.kind === `http`) {
    const result = await probeHttp(`http://${formatHost(target.host)}:${target.port}${readiness.path ?? `/`}`, timeoutMs, signal);
    return result.ok ? {ok: true} : {ok: false, error: result.error};
  }
  if (readiness.kind === `tcp`) return probeTcp(target.host, target.port ?? 0, timeoutMs);
  // killDescendants: the check runs in its own process group and a timeout or an abort signals the
  // whole group, so what the command started in the background is stopped with it.
  const result = await execa(`/bin/sh`, [`-c`, readiness.command ?? `false`], {cwd: target.cwd, env: target.env, extendEnv: false, reject: false, timeout: timeoutMs, killDescendants: true, stdin: `ignore`, all: true, ...(signal ? {cancelSignal: signal} : {})});
  if (result.exitCode === 0) return {ok: true};
  const output = typeof result.all === `string` ? result.all.trim().split(`\n`).at(-1) : undefined;
  return {ok: false, error: result.timedOut ? `command timed out after ${timeoutMs} ms` : `command exited with ${result.exitCode ?? result.signal}${output ? `: ${output}` : ``}`};
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const socket = net.connect({host, port});
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ok: false, error: `connect timed out after ${timeoutMs} ms`});
    }, timeoutMs);
    socket.once(`connect`, () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ok: true});
    });
    socket.once(`error`, (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ok: false, error: `connect ${error.code ?? error.message} ${host}:${port}`});
    });
  });
}

function formatHost(host: string): string {
  return host.includes(`:`) && !host.startsWith(`[`) ? `[${host}]` : host;
}
