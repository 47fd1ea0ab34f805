import net from 'node:net';
import {setTimeout as delay} from 'node:timers/promises';
import {listLegacyControlPaths} from '../config/paths.ts';
import type {Config} from '../config/types.ts';
import {isLegacyDaemonStatus} from '../control/protocol.ts';
import {probeControlSocket} from '../control/server.ts';
import type {Logger} from '../log/logger.ts';
import {readProcessTable} from '../system/proc.ts';
import type {ProcessEntry} from '../system/proc.ts';
import {findUserName} from '../system/users.ts';
import {addDescendants, toLegacyProcess} from './discover.ts';
import type {LegacyPlan, LegacyProcess} from './discover.ts';
import {findUnixListeningPids} from './ports.ts';
import {stopLegacyProcesses, waitUntilGone} from './stop.ts';
import type {StopLegacyResult} from './stop.ts';

/**
 * A running rollbridge 0.1 daemon (upgrade from 0.1, issue 8 item 6): where it answers, what it serves,
 * and every process of it — the daemon, its managed processes and their descendants — as a legacy plan,
 * so the takeover machinery (daemon/takeover.ts) retires it like any legacy supervisor.
 */
export type LegacyDaemon = {
  socketPath: string;
  /** The daemon process (the holder of the listening control socket); null when it cannot be seen (another user, not root). */
  pid: number | null;
  version: string | null;
  application: string;
  activeRelease: {releaseId: string; releasePath: string; revision: string} | null;
  proxy: {host: string; port: number};
  plan: LegacyPlan;
};

/** The control socket, the 0.1 daemon's part of the takeover request (control/protocol.ts isTakeoverParams). */
export type LegacyDaemonRef = {socketPath: string; pid: number | null};

/** The 0.1 daemon of this config, or null when none answers on any of its possible control sockets. */
export async function findLegacyDaemon(config: Pick<Config, `application` | `control`>): Promise<LegacyDaemon | null> {
  for (const socketPath of listLegacyControlPaths(config.application, config.control.path)) {
    const probe = await probeControlSocket(socketPath).catch(() => ({state: `absent` as const}));
    if (probe.state !== `daemon` || !isLegacyDaemonStatus(probe.status)) continue;
    return describeLegacyDaemon(socketPath, probe.status);
  }
  return null;
}

/**
 * Builds the picture of a 0.1 daemon from its status: the managed pids of every release, service and
 * singleton (0.1 reports them), the daemon itself (the process listening on the socket) and all their
 * descendants (0.1 starts each command through `/bin/sh -c`). Only the daemon user's processes.
 */
export function describeLegacyDaemon(socketPath: string, status: Record<string, unknown>, table: ProcessEntry[] = readProcessTable()): LegacyDaemon {
  const byPid = new Map(table.map((entry) => [entry.pid, entry]));
  const pid = findUnixListeningPids(socketPath).find((holder) => holder !== process.pid) ?? null;
  const daemonEntry = pid === null ? undefined : byPid.get(pid);
  const uid = daemonEntry?.uid ?? process.getuid?.() ?? 0;
  const found = new Map<number, LegacyProcess>();
  if (daemonEntry !== undefined) found.set(daemonEntry.pid, toLegacyProcess(daemonEntry, `rollbridge 0.1 daemon`));
  for (const managed of listManagedProcesses(status)) {
    const entry = byPid.get(managed.pid);
    if (entry === undefined || found.has(entry.pid) || entry.uid !== uid) continue;
    found.set(entry.pid, toLegacyProcess(entry, `rollbridge 0.1 ${managed.label}`));
  }
  const warnings: string[] = [];
  if (pid === null) warnings.push(`The rollbridge 0.1 daemon listening on ${socketPath} is not visible in /proc (run as its user or root); only its managed processes are known`);
  const user = {name: findUserName(uid) ?? String(uid), uid};
  addDescendants(table, found, new Set([process.pid]), {uid, user: user.name}, warnings);
  const runtime = status.daemonRuntime as {version?: unknown} | undefined;
  const proxy = status.proxy as {host?: unknown; port?: unknown} | undefined;
  return {
    socketPath,
    pid,
    version: typeof runtime?.version === `string` ? runtime.version : null,
    application: typeof status.application === `string` ? status.application : ``,
    activeRelease: findActiveRelease(status),
    proxy: {host: typeof proxy?.host === `string` ? proxy.host : ``, port: typeof proxy?.port === `number` ? proxy.port : 0},
    plan: {user, screens: [], processes: [...found.values()], warnings},
  };
}

type ManagedProcess = {pid: number; label: string};

function listManagedProcesses(status: Record<string, unknown>): ManagedProcess[] {
  const managed: ManagedProcess[] = [];
  const add = (process: unknown, label: string) => {
    const pid = (process as {pid?: unknown} | null)?.pid;
    if (typeof pid === `number` && Number.isInteger(pid) && pid > 1) managed.push({pid, label});
  };
  for (const release of asArray(status.releases)) {
    const releaseId = String((release as {releaseId?: unknown}).releaseId ?? `?`);
    for (const process of asArray((release as {processes?: unknown}).processes)) add(process, `release ${releaseId} ${String((process as {id?: unknown}).id ?? `?`)}`);
  }
  for (const kind of [`services`, `singletons`] as const) {
    for (const entry of asArray(status[kind])) add((entry as {process?: unknown}).process, `${kind.slice(0, -1)} ${String((entry as {id?: unknown}).id ?? `?`)}`);
  }
  return managed;
}

function findActiveRelease(status: Record<string, unknown>): LegacyDaemon[`activeRelease`] {
  const activeReleaseId = status.activeReleaseId;
  if (typeof activeReleaseId !== `string`) return null;
  const release = asArray(status.releases).find((entry) => (entry as {releaseId?: unknown}).releaseId === activeReleaseId) as {releasePath?: unknown; revision?: unknown} | undefined;
  if (typeof release?.releasePath !== `string`) return null;
  return {releaseId: activeReleaseId, releasePath: release.releasePath, revision: typeof release.revision === `string` ? release.revision : activeReleaseId};
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export type RetireLegacyDaemonOptions = {
  /** How long its processes get to finish the stop it began before what remains is stopped, and SIGTERM → SIGKILL after it. */
  timeoutMs: number;
  log: Logger;
  /** Called once the retirement request is written: the port gap starts there. */
  onSignalled?: () => void;
  /**
   * Settles once the new daemon listens on the proxy port: then the 0.1 daemon process is ended at once
   * (see retireLegacyDaemon). Absent: it gets `timeoutMs` to exit by itself.
   */
  released?: Promise<unknown>;
};

/**
 * Has a 0.1 daemon let go through its own protocol: `retire-owner` (0.1's request for handing over to a
 * new owner: it unlinks its control socket, closes its proxy listener, then stops its processes), or
 * `shutdown` when the daemon does not know that command. The reply is not awaited: under keep-alive load
 * a 0.1 daemon may neither answer nor exit until its clients disconnect. Once the new daemon listens
 * (`released`), the 0.1 daemon process is killed: it would answer its clients' open keep-alive connections
 * with 502 while its web process stops, whereas a reset connection is retried by a proxy in front (nginx
 * `proxy_next_upstream error`). Then its processes get `timeoutMs` to finish the stop it began; whatever
 * still runs is stopped as any legacy process (SIGTERM, SIGKILL).
 */
export async function retireLegacyDaemon(plan: LegacyPlan, daemon: LegacyDaemonRef, options: RetireLegacyDaemonOptions): Promise<StopLegacyResult> {
  const {log} = options;
  const request = requestRetirement(daemon.socketPath, log);
  try {
    await request.written;
    options.onSignalled?.();
    log.info(`rollbridge 0.1 daemon asked to let go`, {socketPath: daemon.socketPath, pid: daemon.pid});
    const daemonProcess = plan.processes.find((entry) => entry.pid === daemon.pid);
    const killed: LegacyProcess[] = [];
    if (options.released !== undefined && daemonProcess !== undefined) {
      await Promise.race([options.released.catch(() => undefined), delay(options.timeoutMs)]);
      const stopped = await stopLegacyProcesses({...plan, screens: [], processes: [daemonProcess]}, {timeoutMs: 0, log});
      killed.push(...stopped.killed);
    }
    const running = await waitUntilGone(plan.processes, options.timeoutMs);
    const exited = plan.processes.filter((entry) => !running.includes(entry) && !killed.includes(entry));
    if (running.length === 0) return {stopped: exited, killed, survivors: []};
    log.warn(`rollbridge 0.1 processes still run after its retirement; stopping them`, {pids: running.map((entry) => entry.pid), timeoutMs: options.timeoutMs});
    const rest = await stopLegacyProcesses({...plan, screens: [], processes: running}, {timeoutMs: options.timeoutMs, log});
    return {stopped: [...exited, ...rest.stopped], killed: [...killed, ...rest.killed], survivors: rest.survivors};
  } finally {
    request.close();
  }
}

/**
 * Sends `retire-owner` (with a well-formed attestation: 0.1 checks only its format and logs it); on an
 * error reply (a 0.1.x without the command) sends `shutdown` on a new connection. `written` settles once
 * the first request is sent, or the connection failed (the daemon may be gone already).
 */
function requestRetirement(socketPath: string, log: Logger): {written: Promise<void>; close(): void} {
  const sockets: net.Socket[] = [];
  const send = (command: Record<string, unknown>, onReply: (reply: Record<string, unknown>) => void): Promise<void> => new Promise((resolve) => {
    const socket = net.connect(socketPath);
    sockets.push(socket);
    let buffered = ``;
    socket.setEncoding(`utf8`).on(`data`, (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf(`\n`);
      if (newline === -1) return;
      try {
        onReply(JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>);
      } catch {
        // Not JSON: nothing to act on; the processes are watched anyway.
      }
    });
    socket.once(`error`, (error: NodeJS.ErrnoException) => {
      log.warn(`rollbridge 0.1 daemon could not be asked to let go; its processes are stopped instead`, {socketPath, command: command.command, code: error.code ?? error.message});
      resolve();
    });
    socket.once(`connect`, () => socket.write(`${JSON.stringify(command)}\n`, () => resolve()));
  });
  // node:crypto only here (a rare upgrade): `deploy` imports this module, and loading crypto was ~2 ms of every deploy's start.
  const attestation = `sha256:${process.getBuiltinModule(`node:crypto`).createHash(`sha256`).update(`rollbridge upgrade ${process.pid} ${Date.now()}`).digest(`hex`)}`;
  const written = send({command: `retire-owner`, attestation}, (reply) => {
    if (reply.status !== `error`) return;
    log.info(`rollbridge 0.1 daemon refused retire-owner; asking it to shut down`, {error: reply.error});
    void send({command: `shutdown`}, () => undefined);
  });
  return {written, close: () => sockets.forEach((socket) => socket.destroy())};
}
