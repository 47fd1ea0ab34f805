import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type {ConfigFileValidation} from '../config/load.ts';
import {buildConfigTemplateContext} from '../config/template.ts';
import type {Config} from '../config/types.ts';
import {probeControlSocket} from '../control/server.ts';
import type {ProbeResult} from '../control/server.ts';
import {findPortListeners} from '../takeover/ports.ts';
import {listLeftovers} from '../takeover/recover.ts';
import {readStateFile, statePathOf} from '../state/state-file.ts';
import type {DaemonState} from '../state/state-file.ts';
import {renderProcessDefinition} from '../deploy/process-env.ts';
import {errorMessage} from '../errors/rollbridge-error.ts';
import {plural} from './render.ts';
import {describeSocketChoice, findOtherSockets, userLabel} from './socket-access.ts';
import {getRuntimeDir} from '../config/paths.ts';
import {findUserName} from '../system/users.ts';

/** One line of `rollbridge doctor`. Names are upstream's, so scripts that grep them keep working. */
export type DoctorCheck = {name: string; ok: boolean; detail: string};

/** What `probeControlSocket` found, or the error it threw. */
export type SocketProbe = ProbeResult | {state: `error`; error: unknown};

export type ReleaseCheckOptions = {
  /** Absolute path of the release directory. */
  releasePath: string;
  /** Default: `revision`, then the release path's basename. */
  releaseId?: string | undefined;
  /** Default: the release id. */
  revision?: string | undefined;
  /** What `{{env.NAME}}` reads (the CLI's environment stands in for the daemon's). */
  env: Record<string, string | undefined>;
};

/** `config`: passes for a valid config; otherwise the only check doctor runs. */
export function checkConfig(result: ConfigFileValidation): DoctorCheck {
  const {config} = result;
  if (config !== null && result.issues.length === 0) {
    return pass(`config`, `${result.path} is valid: ${plural(config.processes.length, `process`, `processes`)}, proxy on ${config.proxy.host}:${config.proxy.port}`);
  }
  const [first] = result.issues;
  if (result.path === null && first !== undefined) return fail(`config`, first.message);
  return fail(`config`, `${plural(result.issues.length, `issue`)} — run "rollbridge validate" for details`);
}

/** Probes the control socket once; the socket, proxy port and orphan checks all read the result. */
export async function probeSocket(socketPath: string): Promise<SocketProbe> {
  try {
    return await probeControlSocket(socketPath);
  } catch (error) {
    return {state: `error`, error};
  }
}

/** `control socket`, `control socket user`, `control socket directory`, `proxy port`, `state path directory`, `orphaned processes`. */
export async function runEnvironmentChecks(config: Config, env: Record<string, string | undefined> = {}): Promise<DoctorCheck[]> {
  const probe = await probeSocket(config.control.path);
  const statePath = statePathOf(config);
  return [
    await checkControlSocket(config, probe),
    await checkControlSocketUser(config, env),
    await checkControlSocketDirectory(config.control.path),
    await checkProxyPort(config, probe),
    await checkStatePathDirectory(statePath, config.control.path),
    checkOrphanedProcesses(statePath, probe),
  ];
}

export async function checkControlSocket(config: Config, probe: SocketProbe): Promise<DoctorCheck> {
  const name = `control socket`;
  const socketPath = config.control.path;
  const stat = await lstatOrNull(socketPath);
  if (stat !== null && stat.isSymbolicLink()) return fail(name, `${socketPath} is a symbolic link; the daemon refuses to use it`);
  if (stat !== null && !stat.isSocket()) return fail(name, `${socketPath} exists and is not a socket; the daemon would fail to bind it`);
  switch (probe.state) {
    case `absent`:
      return pass(name, `no daemon running; ${socketPath} is free to bind`);
    case `stale`:
      return pass(name, `no daemon running; ${socketPath} is a stale socket the daemon will replace`);
    case `daemon`: {
      const application = probe.status.application;
      if (application === config.application) return pass(name, `rollbridge daemon for "${config.application}" is running on ${socketPath}`);
      return fail(name, `a rollbridge daemon for "${String(application)}" is running on ${socketPath}, not one for "${config.application}"`);
    }
    case `foreign`:
      return fail(name, `another process is already listening on ${socketPath}; the daemon would fail to bind it`);
    case `error`:
      return fail(name, `could not probe ${socketPath}: ${errorMessage(probe.error)}`);
  }
}

/**
 * `control socket user`: which socket this user resolves to and why (control.path, or its own runtime
 * directory: sudo and plain users differ), and whether a daemon for the same application answers in another
 * user's runtime directory (fails: this user's commands would not reach it, and `ensure-daemon` would start
 * a second one). Root looks into every user's directory; another user only sees whether root's is there.
 */
export async function checkControlSocketUser(config: Config, env: Record<string, string | undefined>): Promise<DoctorCheck> {
  const name = `control socket user`;
  const choice = describeSocketChoice(config);
  const me = userLabel(choice.uid, choice.user);
  if (choice.source === `config`) return pass(name, `control.path is set in the config: ${me} and every other user, with or without sudo, use ${choice.path}`);
  const sudoUid = choice.uid === 0 && env.SUDO_UID !== undefined && /^\d+$/.test(env.SUDO_UID) ? Number(env.SUDO_UID) : null;
  const resolved = `${me} resolves control.path to ${choice.path}, in its own runtime directory (sudo uses root's ${getRuntimeDir(0)}, every other user ${path.join(path.dirname(choice.runtimeDir), `rollbridge-<uid>`)}${sudoUid === null ? `` : `; without sudo, ${userLabel(sudoUid, findUserName(sudoUid))} uses ${getRuntimeDir(sudoUid)}`})`;
  const others = findOtherSockets(choice.path);
  const daemons: string[] = [];
  const notes: string[] = [];
  for (const other of others) {
    const owner = userLabel(other.uid, other.user);
    if (other.state === `private`) {
      notes.push(`${other.dir} (${owner}'s runtime directory) is private, so a daemon started ${other.uid === 0 ? `with sudo` : `by ${owner}`} cannot be seen from here: run "${other.uid === 0 ? `sudo ` : ``}rollbridge doctor" to look there`);
      continue;
    }
    const probe = await probeSocket(other.socketPath);
    if (probe.state === `daemon` && probe.status.application === config.application) {
      daemons.push(`a daemon for "${config.application}" answers on ${other.socketPath} (${owner}'s runtime directory): ${other.uid === 0 ? `run rollbridge with sudo to reach it` : `run rollbridge as ${other.user ?? `uid ${other.uid}`}${choice.uid === 0 ? `, without sudo,` : ``} to reach it`}, or stop one of the two`);
    } else {
      notes.push(`${other.socketPath} (${owner}'s runtime directory) is ${probe.state === `stale` ? `a stale socket, no daemon` : probe.state === `error` ? `a socket this user may not probe` : `not a daemon for "${config.application}"`}`);
    }
  }
  if (daemons.length > 0) return fail(name, `${resolved}; but ${daemons.join(`; `)}`);
  const looked = others.length === 0 ? `no other user's runtime directory holds a socket for "${config.application}"` : notes.join(`; `);
  return pass(name, `${resolved}; ${looked}`);
}

/**
 * `control socket directory`: writable and searchable. A missing directory passes when its parent
 * exists, because the daemon creates it (mode 0700); a directory other users can write is refused
 * by the daemon, so it fails here too.
 */
export async function checkControlSocketDirectory(socketPath: string): Promise<DoctorCheck> {
  const name = `control socket directory`;
  const dir = path.dirname(socketPath);
  const stat = await lstatOrNull(dir);
  if (stat === null) {
    const parent = path.dirname(dir);
    if (await isWritableDirectory(parent)) return pass(name, `${dir} does not exist yet; the daemon creates it in ${parent}`);
    return fail(name, `${dir} is missing or not writable`);
  }
  if (stat.isDirectory() && (stat.mode & 0o022) !== 0 && (stat.mode & 0o1000) === 0) {
    return fail(name, `${dir} is writable by other users (mode ${(stat.mode & 0o7777).toString(8).padStart(4, `0`)}) without the sticky bit; the daemon refuses it`);
  }
  return await isWritableDirectory(dir) ? pass(name, `${dir} is writable`) : fail(name, `${dir} is missing or not writable`);
}

/** `proxy port`: a trial bind; a port held by this application's running daemon on the same host and port passes. */
export async function checkProxyPort(config: Config, probe: SocketProbe): Promise<DoctorCheck> {
  const name = `proxy port`;
  const {host, port} = config.proxy;
  const address = `${host}:${port}`;
  const bindError = await tryBind(host, port);
  if (bindError === null) return pass(name, port === 0 ? `${address} is available (the OS picks a free port)` : `${address} is available`);
  if (probe.state === `daemon` && probe.status.application === config.application) {
    const proxy = probe.status.proxy as {host?: unknown; port?: unknown} | undefined;
    if (proxy?.host === host && proxy.port === port) return pass(name, `${address} is already held by the running rollbridge daemon`);
  }
  return fail(name, `${address} is unavailable (${bindError})${bindError === `EADDRINUSE` ? `: ${describePortHolders(port)}` : ``}`);
}

/**
 * Who listens on `port`: `held by pid 812 (nginx: master process) of user www-data`, found through the
 * socket inodes in /proc as the takeover finds them. Another user's process is only visible to root.
 */
export function describePortHolders(port: number): string {
  const listeners = findPortListeners(port);
  if (listeners.length === 0) return `held by a process this user cannot see (run "sudo rollbridge doctor" to name it)`;
  return `held by ${listeners.map((listener) => `pid ${listener.pid} (${listener.args}) of user ${listener.user ?? (listener.uid === null ? `?` : `uid ${listener.uid}`)}`).join(`, `)}`;
}

/**
 * `state path directory`: writable. The default state file lives beside the control socket, whose directory
 * the daemon creates, so a missing directory passes there when its parent is writable.
 */
export async function checkStatePathDirectory(statePath: string, socketPath: string): Promise<DoctorCheck> {
  const name = `state path directory`;
  const dir = path.dirname(statePath);
  if (await isWritableDirectory(dir)) return pass(name, `${dir} is writable`);
  if (dir === path.dirname(socketPath) && await lstatOrNull(dir) === null && await isWritableDirectory(path.dirname(dir))) {
    return pass(name, `${dir} does not exist yet; the daemon creates it with the control socket`);
  }
  return fail(name, `${dir} is missing or not writable; state cannot be persisted`);
}

/**
 * `orphaned processes`: processes the state file records that still run (same pid and start time, not
 * zombies) or left live members in their process group, while no daemon runs to re-adopt them.
 */
export function checkOrphanedProcesses(statePath: string, probe: SocketProbe): DoctorCheck {
  const name = `orphaned processes`;
  if (probe.state === `daemon`) return pass(name, `a daemon is running; its managed processes are not orphans`);
  let state: DaemonState | null;
  try {
    state = readStateFile(statePath);
  } catch (error) {
    return fail(name, `${errorMessage(error)}; recorded processes cannot be checked`);
  }
  if (state === null) return pass(name, `no state file`);
  const leftovers = listLeftovers(state);
  if (leftovers.length === 0) return pass(name, `no orphaned processes`);
  const list = leftovers.map((leftover) => `${leftover.id} (pid ${leftover.pid})`).join(`, `);
  return fail(name, `${plural(leftovers.length, `orphaned process`, `orphaned processes`)} still running: ${list} — the next daemon start re-adopts them; "rollbridge recover" lists them, "rollbridge recover --force" stops them`);
}

/** `release path`, `process templates`, `process working directories` (with `doctor --release-path`). */
export async function runReleaseChecks(config: Config, options: ReleaseCheckOptions): Promise<DoctorCheck[]> {
  const releaseId = options.releaseId ?? options.revision ?? path.basename(options.releasePath);
  const revision = options.revision ?? releaseId;
  const rendered = renderProcesses(config, {...options, releaseId, revision});
  return [
    await checkReleasePath(options.releasePath),
    checkProcessTemplates(rendered),
    await checkProcessWorkingDirectories(rendered),
  ];
}

export async function checkReleasePath(releasePath: string): Promise<DoctorCheck> {
  const stat = await statOrNull(releasePath);
  if (stat === null) return fail(`release path`, `${releasePath} does not exist`);
  if (!stat.isDirectory()) return fail(`release path`, `${releasePath} is not a directory`);
  return pass(`release path`, `${releasePath} is a directory`);
}

/** Each process rendered once (replica 0, the low end of each port range), or the error rendering threw. */
export type RenderedProcess = {id: string; cwd: string} | {id: string; error: string};

export function renderProcesses(config: Config, options: ReleaseCheckOptions & {releaseId: string; revision: string}): RenderedProcess[] {
  return config.processes.map((process, processIndex) => {
    const context = buildConfigTemplateContext(config, process, options);
    try {
      return {id: process.id, cwd: renderProcessDefinition(process, context, {releasePath: options.releasePath, processIndex}).cwd};
    } catch (error) {
      return {id: process.id, error: errorMessage(error)};
    }
  });
}

export function checkProcessTemplates(rendered: RenderedProcess[]): DoctorCheck {
  const failures = rendered.filter((entry) => `error` in entry).map((entry) => `${entry.id}: ${(entry as {error: string}).error}`);
  if (failures.length > 0) return fail(`process templates`, failures.join(`; `));
  return pass(`process templates`, `command, cwd and env of ${plural(rendered.length, `process`, `processes`)} render`);
}

/** Rendered cwds (relative ones already resolved against the release path) that are not directories. */
export async function checkProcessWorkingDirectories(rendered: RenderedProcess[]): Promise<DoctorCheck> {
  const withCwd = rendered.filter((entry): entry is {id: string; cwd: string} => `cwd` in entry);
  const missing: string[] = [];
  for (const entry of withCwd) {
    const stat = await statOrNull(entry.cwd);
    if (stat === null || !stat.isDirectory()) missing.push(`${entry.id} (${entry.cwd})`);
  }
  if (missing.length > 0) return fail(`process working directories`, `missing: ${missing.join(`, `)}`);
  return pass(`process working directories`, `${plural(withCwd.length, `working directory`, `working directories`)} found`);
}

function tryBind(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once(`error`, (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    server.listen({host, port, exclusive: true}, () => server.close(() => resolve(null)));
  });
}

async function isWritableDirectory(dir: string): Promise<boolean> {
  try {
    await fsp.access(dir, fs.constants.W_OK | fs.constants.X_OK);
    return (await fsp.stat(dir)).isDirectory();
  } catch {
    return false;
  }
}

async function lstatOrNull(file: string): Promise<fs.Stats | null> {
  try {
    return await fsp.lstat(file);
  } catch {
    return null;
  }
}

async function statOrNull(file: string): Promise<fs.Stats | null> {
  try {
    return await fsp.stat(file);
  } catch {
    return null;
  }
}

function pass(name: string, detail: string): DoctorCheck {
  return {name, ok: true, detail};
}

function fail(name: string, detail: string): DoctorCheck {
  return {name, ok: false, detail};
}
