import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import type {HealthConfig, ProcessConfig} from '../config/types.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError, isRollbridgeError} from '../errors/rollbridge-error.ts';
import type {Logger} from '../log/logger.ts';
import {waitForHealthy} from '../supervisor/health-check.ts';
import type {ManagedProcess} from '../supervisor/managed-process.ts';
import {freeBytesAt} from '../supervisor/process-log.ts';
import {describeReadinessCheck, healthProbeCheck, waitForReady} from '../supervisor/readiness.ts';
import {DEFAULT_HEALTH_INTERVAL_MS, DEFAULT_HEALTH_PROBE_TIMEOUT_MS, DEFAULT_HEALTH_TIMEOUT_MS} from '../config/defaults.ts';

// Below this many free bytes a log filesystem counts as full.
const FULL_DISK_BYTES = 64 * 1024;
import {formatHttpUrl} from './instance-spec.ts';
import type {Release} from './release.ts';

/**
 * Reports a phase of a deploy or restart (streamed, and kept in a deploy result's `phases`). `waiting` is
 * the start of a wait (readiness, health check, hook, queue, drain, cooldown): streamed only, without a
 * duration; the next phase ends it and carries its duration.
 */
export type PhaseReporter = (name: string, extra?: Record<string, unknown>) => void;

/**
 * Waits for the health check of a web process on `port`; rejects with ERR_PROCESS_EXITED (and the
 * process's last output) when it exits first, or with the health check's error. `report` gets the
 * `waiting` phase (what is probed, the timeout) as the wait starts; the caller reports `healthy`.
 */
export async function waitUntilHealthy(release: Release, managed: ManagedProcess, process: ProcessConfig, port: number, configIndex: number, report?: PhaseReporter): Promise<void> {
  const health = process.health;
  if (!health) return;
  const check = healthProbeCheck(health);
  const url = health.type === `http` ? formatHttpUrl(release.config.proxy.upstreamHost, port, health.path) : undefined;
  const what = check === null ? `READY=1 on its NOTIFY_SOCKET` : describeReadinessCheck(check, {host: release.config.proxy.upstreamHost, port});
  report?.(`waiting`, {wait: `health`, processId: managed.id, ...(url === undefined ? {check: what} : {url}), timeoutMs: health.timeoutMs, detail: `health check of ${managed.id}: ${what} (timeout ${formatMs(health.timeoutMs)})`});
  const controller = new AbortController();
  failOnExit(release, managed, configIndex, controller);
  try {
    await runHealthCheck(release, managed, health, port, configIndex, controller.signal);
  } catch (error) {
    if (controller.signal.aborted && isRollbridgeError(controller.signal.reason)) throw controller.signal.reason;
    if (isRollbridgeError(error)) {
      throw new RollbridgeError(error.code, error.message, {fix: error.fix, details: {...error.details, processId: managed.id, output: managed.recentOutput().slice(-10).map((line) => line.line)}, cause: error});
    }
    throw error;
  } finally {
    controller.abort();
  }
}

/**
 * Waits until a web process accepts TCP connections on `port`, when its health check is skipped
 * (`--skip-health-check`) or disabled: a switch before it listens answers every request with 502.
 * Bounded by its health check's timeoutMs (DEFAULT_HEALTH_TIMEOUT_MS without one); rejects with
 * ERR_PROCESS_NOT_LISTENING, or ERR_PROCESS_EXITED when it exits first. `report` gets the `waiting`
 * phase (wait `port`); the caller reports `listening`.
 */
export async function waitUntilListening(release: Release, managed: ManagedProcess, process: ProcessConfig, port: number, configIndex: number, report?: PhaseReporter): Promise<void> {
  const timeoutMs = process.health?.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
  const host = release.config.proxy.upstreamHost;
  const address = `${host.includes(`:`) ? `[${host}]` : host}:${port}`;
  report?.(`waiting`, {wait: `port`, processId: managed.id, timeoutMs, detail: `${managed.id} to accept connections on ${address}, without a health check (timeout ${formatMs(timeoutMs)})`});
  const controller = new AbortController();
  failOnExit(release, managed, configIndex, controller);
  try {
    await waitForReady({
      kind: `tcp`, path: undefined, command: undefined, timeoutMs, successThreshold: 1,
      intervalMs: process.health?.intervalMs ?? DEFAULT_HEALTH_INTERVAL_MS,
      probeTimeoutMs: process.health?.probeTimeoutMs ?? DEFAULT_HEALTH_PROBE_TIMEOUT_MS,
    }, {processId: managed.id, host, port, cwd: managed.spec.cwd, env: managed.spec.env}, {configKey: `processes[${configIndex}].health`, signal: controller.signal});
  } catch (error) {
    if (controller.signal.aborted && isRollbridgeError(controller.signal.reason)) throw controller.signal.reason;
    if (!isRollbridgeError(error)) throw error;
    throw new RollbridgeError(ErrorCode.PROCESS_NOT_LISTENING, `Process "${managed.id}" of release ${release.releaseId} did not accept connections on ${address} within ${timeoutMs} ms (${String(error.details.lastFailure ?? error.message)}); its health check is ${process.health ? `skipped` : `disabled`}, so rollbridge waited for the port before the switch`, {
      fix: `Make processes[${configIndex}].command listen on its port (${address}: use {{port}} or ROLLBRIDGE_PORT), or raise processes[${configIndex}].health.timeoutMs for a slow start; "${logsCommand(release, managed)}" shows its output`,
      details: {processId: managed.id, releaseId: release.releaseId, port, timeoutMs, attempts: error.details.attempts, lastFailure: error.details.lastFailure, output: managed.recentOutput().slice(-10).map((line) => line.line)},
      cause: error,
    });
  } finally {
    controller.abort();
  }
}

/** Aborts `controller` with ERR_PROCESS_EXITED (and the process's last output) when the process exits first. */
function failOnExit(release: Release, managed: ManagedProcess, configIndex: number, controller: AbortController): void {
  const exited = managed.waitForExit().then((exit) => {
    const output = managed.recentOutput().slice(-10).map((line) => line.line);
    // An app that cannot write its output often just exits: say so when its log filesystem is full.
    const logDir = managed.spec.logPaths ? path.dirname(managed.spec.logPaths.stdout) : undefined;
    const free = logDir === undefined ? null : freeBytesAt(logDir);
    const full = free !== null && free < FULL_DISK_BYTES;
    // Exit 127 is the shell's "command not found": name it and the missing command.
    const notFound = exit.code === 127 ? missingCommand(output) : null;
    const how = exit.signal ? `signal ${exit.signal}` : exit.code === 127 ? `code 127: command not found${notFound ? `: ${notFound}` : ``}` : `code ${exit.code}`;
    const error = new RollbridgeError(ErrorCode.PROCESS_EXITED, `Process "${managed.id}" of release ${release.releaseId} exited (${how}) before it became healthy${full ? `; the filesystem of its log files ${logDir} is full (ENOSPC: ${free} bytes free)` : ``}`, {
      fix: full
        ? `Free space on the filesystem holding ${logDir} (\`df -h ${logDir}\`), or set logs.dir to a directory on another filesystem`
        : exit.code === 127
          ? `Install ${notFound ? `"${notFound}"` : `the command`} in the release (e.g. its virtualenv or node_modules) or give its absolute path in processes[${configIndex}].command; the process's PATH is ${managed.spec.env.PATH ?? `unset`}; "${logsCommand(release, managed)}" shows its output`
          : `Read the output above (all of it: "${logsCommand(release, managed)}"); run the command from processes[${configIndex}].command in ${release.releasePath} by hand to reproduce`,
      details: {processId: managed.id, releaseId: release.releaseId, exitCode: exit.code, exitSignal: exit.signal, output, ...(full ? {logDir, freeBytes: free} : {})},
    });
    controller.abort(error);
    throw error;
  });
  exited.catch(() => undefined);
}

/** The command that shows a process's output, also once its release failed and was stopped. */
function logsCommand(release: Release, managed: ManagedProcess): string {
  return `rollbridge logs --release ${release.releaseId} --process ${managed.id}`;
}

/** The configured check (`health.type`): http through the health checker, tcp and command through the readiness prober. */
async function runHealthCheck(release: Release, managed: ManagedProcess, health: HealthConfig, port: number, configIndex: number, signal: AbortSignal): Promise<void> {
  const configKey = `processes[${configIndex}].health`;
  if (health.type === `notify`) {
    await waitForNotifyReady(managed, health, configIndex, signal);
    return;
  }
  if (health.type === `http`) {
    await waitForHealthy({
      url: formatHttpUrl(release.config.proxy.upstreamHost, port, health.path),
      timeoutMs: health.timeoutMs,
      intervalMs: health.intervalMs,
      startDelayMs: health.startDelayMs,
      probeTimeoutMs: health.probeTimeoutMs,
      successThreshold: health.successThreshold,
      signal,
      configKey,
      logsCommand: logsCommand(release, managed),
    });
    return;
  }
  const check = healthProbeCheck(health);
  if (check === null) throw new Error(`Assertion failed: health type ${health.type} of ${managed.id} has no probe`);
  if (health.startDelayMs > 0) await delay(health.startDelayMs, undefined, {signal}).catch(() => signal.throwIfAborted());
  await waitForReady({...check, timeoutMs: health.timeoutMs, intervalMs: health.intervalMs, probeTimeoutMs: health.probeTimeoutMs, successThreshold: health.successThreshold}, {
    processId: managed.id,
    host: release.config.proxy.upstreamHost,
    port,
    cwd: managed.spec.cwd,
    env: managed.spec.env,
  }, {configKey, signal, purpose: `health`, logsCommand: logsCommand(release, managed)});
}

/**
 * health.type "notify": READY=1 on the process's NOTIFY_SOCKET within `timeoutMs`, else
 * ERR_HEALTH_NOTIFY_TIMEOUT with its last STATUS=. A re-adopted process served before the daemon
 * restarted and cannot say READY=1 again (its socket went with the old daemon): it counts as healthy.
 */
async function waitForNotifyReady(managed: ManagedProcess, health: HealthConfig, configIndex: number, signal: AbortSignal): Promise<void> {
  if (managed.adopted) return;
  const timeout = AbortSignal.timeout(health.timeoutMs);
  try {
    await managed.waitForNotifyReady(AbortSignal.any([signal, timeout]));
  } catch (error) {
    if (!timeout.aborted || signal.aborted) throw error;
    const status = managed.notifyState?.status;
    throw new RollbridgeError(ErrorCode.HEALTH_NOTIFY_TIMEOUT, `Process "${managed.id}" did not send READY=1 on its NOTIFY_SOCKET within ${health.timeoutMs} ms${status === undefined ? ` (nor any STATUS=)` : `; its last STATUS= was ${JSON.stringify(status)}`}`, {
      fix: `Make the app call sd_notify("READY=1") once it serves (gunicorn, puma and other systemd-aware servers do when NOTIFY_SOCKET is set), raise processes[${configIndex}].health.timeoutMs, or set processes[${configIndex}].health.type to "http"`,
      details: {processId: managed.id, timeoutMs: health.timeoutMs, ...(status === undefined ? {} : {notifyStatus: status})},
    });
  }
}

/** The command a shell reported as not found (`/bin/sh: 1: exec: uvicorn: not found`, `bash: uvicorn: command not found`). */
function missingCommand(output: string[]): string | null {
  for (const line of output.toReversed()) {
    const match = /([^\s:]+): (?:command )?not found\s*$/.exec(line);
    if (match?.[1] !== undefined) return match[1];
  }
  return null;
}

/**
 * A process with `readiness` must pass it before anything after it starts (dependsOn order). `report`
 * gets the `waiting` phase (the check, the timeout) as the wait starts and `ready` once it passed.
 */
export async function waitUntilReady(release: Release, process: ProcessConfig, managed: ManagedProcess, log: Logger, report?: PhaseReporter): Promise<void> {
  if (!process.readiness) return;
  const configIndex = release.config.processes.indexOf(process);
  const check = describeReadinessCheck(process.readiness, {host: release.config.proxy.upstreamHost, port: managed.spec.port});
  report?.(`waiting`, {wait: `readiness`, processId: managed.id, check, timeoutMs: process.readiness.timeoutMs, detail: `readiness of ${managed.id}: ${check} (timeout ${formatMs(process.readiness.timeoutMs)})`});
  try {
    await waitForReady(process.readiness, {
      processId: managed.id,
      host: release.config.proxy.upstreamHost,
      port: managed.spec.port,
      cwd: managed.spec.cwd,
      env: managed.spec.env,
    }, {configKey: `processes[${configIndex}].readiness`, logsCommand: logsCommand(release, managed)});
  } catch (error) {
    // The process's last output explains most failed checks (it crashed, it listens elsewhere).
    if (isRollbridgeError(error)) {
      throw new RollbridgeError(error.code, error.message, {fix: error.fix, details: {...error.details, processId: managed.id, output: managed.recentOutput().slice(-10).map((line) => line.line)}, cause: error});
    }
    throw error;
  }
  log.info(`process ready`, {releaseId: release.releaseId, processId: managed.id});
  report?.(`ready`, {processId: managed.id});
}

/** The `started` phase of a process that is not the proxied one (policy, pid, its port when it has one). */
export function startedPhase(managed: ManagedProcess, policy: string): Record<string, unknown> {
  return {processId: managed.id, policy, pid: managed.pid ?? null, ...(managed.spec.port === undefined ? {} : {port: managed.spec.port})};
}

/** `10 min`, `30 s`, `1500 ms`: a timeout as an operator reads it in a progress line. */
export function formatMs(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  return ms >= 1_000 && ms % 1_000 === 0 ? `${ms / 1_000} s` : `${ms} ms`;
}
