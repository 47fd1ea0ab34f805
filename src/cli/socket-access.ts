import fs from 'node:fs';
import path from 'node:path';
import {getDefaultControlPath, getRuntimeDir, getUid, listRuntimeDirs} from '../config/paths.ts';
import type {Config} from '../config/types.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError, isRollbridgeError} from '../errors/rollbridge-error.ts';
import {findGroupName, findUserName} from '../system/users.ts';

/** Who owns a file or directory, and its permission bits. */
export type PathOwner = {path: string; uid: number; user: string | null; gid: number; group: string | null; mode: number};

/**
 * Which control socket this user's commands use and why: control.path from the config is the same for
 * everyone; left to its default it lies in the user's own runtime directory, `$TMPDIR/rollbridge-<uid>`,
 * so `sudo rollbridge …` (root's) and `rollbridge …` reach different daemons.
 */
export type SocketChoice = {
  path: string;
  /** `config`: control.path is set; `runtime`: the default, in this user's runtime directory. */
  source: `config` | `runtime`;
  runtimeDir: string;
  uid: number;
  user: string | null;
};

/** A control socket for the same application in another user's runtime directory. */
export type OtherSocket = {
  uid: number;
  user: string | null;
  dir: string;
  socketPath: string;
  /** `socket`: it exists; `private`: the directory exists but this user may not look inside (mode 0700). */
  state: `socket` | `private`;
};

export function describeSocketChoice(config: Config): SocketChoice {
  const uid = getUid();
  const isDefault = config.control.path === getDefaultControlPath(config.application);
  return {path: config.control.path, source: isDefault ? `runtime` : `config`, runtimeDir: getRuntimeDir(uid), uid, user: findUserName(uid)};
}

/** One line for `status`: where the socket is and why this user resolves to it. */
export function formatSocketChoice(choice: SocketChoice): string {
  if (choice.source === `config`) return `control socket ${choice.path} (control.path: the same for every user, with or without sudo)`;
  return `control socket ${choice.path} (the runtime directory of ${userLabel(choice.uid, choice.user)}: sudo uses root's, every other user their own ${path.join(path.dirname(choice.runtimeDir), `rollbridge-<uid>`)})`;
}

/**
 * Sockets named like `socketPath` in the other users' runtime directories, when `socketPath` lies in this
 * user's (control.path left to its default): where a daemon started with or without sudo would listen.
 * Root sees inside every directory; another user only learns that root's exists when it is private.
 */
export function findOtherSockets(socketPath: string): OtherSocket[] {
  const mine = getRuntimeDir();
  if (path.dirname(socketPath) !== mine) return [];
  const name = path.basename(socketPath);
  const found: OtherSocket[] = [];
  for (const {uid, dir} of listRuntimeDirs()) {
    if (dir === mine) continue;
    const candidate = path.join(dir, name);
    try {
      if (fs.lstatSync(candidate).isSocket()) found.push({uid, user: findUserName(uid), dir, socketPath: candidate, state: `socket`});
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === `EACCES` || code === `EPERM`) found.push({uid, user: findUserName(uid), dir, socketPath: candidate, state: `private`});
    }
  }
  return found;
}

/**
 * Adds to a connect failure what only the CLI can say: for ERR_CONTROL_PERMISSION_DENIED who owns the
 * socket or the directory that refuses this user, and how to get in; for ERR_DAEMON_UNREACHABLE on the
 * default socket, a daemon for the same application in another user's runtime directory (sudo or not).
 * Anything else is returned as it is.
 */
export function explainConnectError(error: unknown): unknown {
  if (!isRollbridgeError(error)) return error;
  const socketPath = error.details.path;
  if (typeof socketPath !== `string`) return error;
  if (error.code === ErrorCode.CONTROL_PERMISSION_DENIED) return explainPermissionDenied(socketPath, String(error.details.errno ?? `EACCES`), error);
  if (error.code === ErrorCode.DAEMON_UNREACHABLE && !(`otherSockets` in error.details)) {
    const others = findOtherSockets(socketPath);
    if (others.length === 0) return error;
    // A socket in another user's directory is likely the daemon meant: no "start one" then (a second daemon).
    const seen = others.some((other) => other.state === `socket`);
    return new RollbridgeError(error.code, error.message, {
      fix: seen
        ? `${capitalize(describeOtherSockets(others))}; or set control.path in the config so every user reaches the same socket`
        : `${capitalize(describeOtherSockets(others))}; otherwise ${(error.fix ?? ``).replace(/^S/, `s`)}`,
      details: {...error.details, otherSockets: others},
      cause: error.cause,
    });
  }
  return error;
}

/** What the other users' runtime directories hold, as advice (`run it with sudo`, `run it as deploy`). */
export function describeOtherSockets(others: OtherSocket[]): string {
  return others.map((other) => {
    const owner = userLabel(other.uid, other.user);
    const how = other.uid === 0 ? `run the command with sudo` : `run the command as ${other.user ?? `uid ${other.uid}`}${getUid() === 0 ? `, without sudo` : ``}`;
    return other.state === `socket`
      ? `a control socket for this application exists in ${owner}'s runtime directory (${other.socketPath}): if that daemon is the one you mean, ${how}`
      : `${other.dir} (${owner}'s runtime directory) exists but is private to ${owner}: if the daemon was started by ${owner}${other.uid === 0 ? ` or with sudo` : ``}, ${how}`;
  }).join(`; `);
}

function explainPermissionDenied(socketPath: string, errno: string, original: RollbridgeError): RollbridgeError {
  const uid = getUid();
  const me = userLabel(uid, findUserName(uid));
  const blocker = findBlocker(socketPath);
  const owner = blocker === null ? null : readOwner(blocker);
  if (owner === null) return original;
  const what = owner.path === socketPath ? `the socket` : `the directory ${owner.path}`;
  const groupName = owner.group ?? `gid ${owner.gid}`;
  const ownerName = owner.user ?? `uid ${owner.uid}`;
  // A socket needs write permission to connect; a directory on the way needs search (x).
  const groupBit = owner.path === socketPath ? 0o020 : 0o010;
  const fixes = [
    owner.uid === 0 ? `run the command with sudo` : `run the command as ${ownerName} (sudo -u ${ownerName} rollbridge …)`,
    (owner.mode & groupBit) !== 0
      ? `add ${findUserName(uid) ?? `this user`} to the group ${groupName} (usermod -aG ${groupName} ${findUserName(uid) ?? `<user>`}, then log in again)`
      : `let a group in with control.group and control.mode (e.g. "0660") in the daemon's config, then add this user to that group`,
    `or set control.path to a socket this user may use`,
  ];
  return new RollbridgeError(ErrorCode.CONTROL_PERMISSION_DENIED, `Permission denied (${errno}): ${me} may not connect to the control socket ${socketPath}; ${what} belongs to ${userLabel(owner.uid, owner.user)}, group ${groupName}, mode ${formatMode(owner.mode)}. A daemon may be running there: do not start another one`, {
    fix: `${capitalize(fixes[0] ?? ``)}, ${fixes.slice(1).join(`, `)}`,
    details: {path: socketPath, errno, blockedAt: owner.path, owner: {uid: owner.uid, user: owner.user, gid: owner.gid, group: owner.group, mode: formatMode(owner.mode)}, user: {uid, name: findUserName(uid)}},
    cause: original,
  });
}

/** The first directory on the way to `socketPath` this user may not search, else the socket itself. */
function findBlocker(socketPath: string): string | null {
  const parts = path.resolve(socketPath).split(path.sep).filter(Boolean);
  let current: string = path.sep;
  for (const part of parts.slice(0, -1)) {
    current = path.join(current, part);
    try {
      fs.accessSync(current, fs.constants.X_OK);
    } catch {
      return current;
    }
  }
  return socketPath;
}

export function readOwner(file: string): PathOwner | null {
  try {
    const stat = fs.lstatSync(file);
    return {path: file, uid: stat.uid, user: findUserName(stat.uid), gid: stat.gid, group: findGroupName(stat.gid), mode: stat.mode & 0o7777};
  } catch {
    return null;
  }
}

export function formatMode(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, `0`)}`;
}

export function userLabel(uid: number, user: string | null): string {
  return user === null ? `uid ${uid}` : `${user} (uid ${uid})`;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
