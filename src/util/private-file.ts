import fs from 'node:fs';

/**
 * Opening the files the daemon writes so that nobody else can plant them: never through a symbolic
 * link (O_NOFOLLOW: a planted link would make root truncate or append to any file), never a file
 * another user owns or may write, never inside a directory others may write without the sticky bit.
 * Callers turn UnsafePathError into their RollbridgeError (util imports nothing from src).
 */
export class UnsafePathError extends Error {
  readonly path: string;
  readonly reason: string;

  constructor(file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.path = file;
    this.reason = reason;
  }
}

const {O_WRONLY, O_RDONLY, O_APPEND, O_CREAT, O_TRUNC, O_EXCL, O_NOFOLLOW} = fs.constants;

/** Append-only, created 0600, not through a symlink. */
export const APPEND_FLAGS = O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW;
/** Replace the content (pid file), created 0600, not through a symlink. */
export const REPLACE_FLAGS = O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW;
/** A new file only (temp files), never an existing one or a symlink. */
export const CREATE_NEW_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
export const READ_FLAGS = O_RDONLY | O_NOFOLLOW;

export function currentUid(): number {
  return typeof process.geteuid === `function` ? process.geteuid() : 0;
}

function formatMode(mode: number): string {
  return `0${(mode & 0o7777).toString(8)}`;
}

/**
 * Why an opened file must not be used, or null: not a regular file (a character device such as
 * /dev/null passes), owned by another user than `uid`, or writable by group or others.
 */
export function describeUnsafeFile(stat: fs.Stats, uid = currentUid()): string | null {
  if (stat.isCharacterDevice()) return null;
  if (!stat.isFile()) return `it is not a regular file`;
  if (stat.uid !== uid) return `it is owned by uid ${stat.uid}, not by the daemon's user (uid ${uid})`;
  if ((stat.mode & 0o022) !== 0) return `it is writable by other users (mode ${formatMode(stat.mode)})`;
  return null;
}

/**
 * Why a directory must not hold the daemon's files, or null when it is fine or does not exist (yet):
 * writable by group or others without the sticky bit, where anyone could replace a file between two
 * writes (the rule the control socket's directory follows).
 */
export function describeUnsafeDirectory(dir: string): string | null {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    return null;
  }
  if (stat.isDirectory() && (stat.mode & 0o022) !== 0 && (stat.mode & 0o1000) === 0) {
    return `its directory ${dir} is writable by other users (mode ${formatMode(stat.mode)}) without the sticky bit`;
  }
  return null;
}

/**
 * Opens `file` with `flags` (one of the *_FLAGS above) and mode 0600, refusing a symlink (ELOOP), a
 * file someone else owns or may write, and a directory others may write. Throws UnsafePathError or
 * the errno error of open(2).
 */
export function openPrivateFile(file: string, flags: number, dir: string): number {
  const unsafeDir = describeUnsafeDirectory(dir);
  if (unsafeDir !== null) throw new UnsafePathError(file, unsafeDir);
  let fd: number;
  try {
    fd = fs.openSync(file, flags, 0o600);
  } catch (error) {
    // ELOOP from O_NOFOLLOW, or EACCES when fs.protected_symlinks refuses the link first.
    const code = (error as NodeJS.ErrnoException).code;
    if ((code === `ELOOP` || code === `EACCES`) && isSymbolicLink(file)) throw new UnsafePathError(file, `it is a symbolic link`);
    throw error;
  }
  const problem = describeUnsafeFile(fs.fstatSync(fd));
  if (problem !== null) {
    fs.closeSync(fd);
    throw new UnsafePathError(file, problem);
  }
  return fd;
}

function isSymbolicLink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Creates `dir` (mode 0700) when missing and checks it is private: a real directory (not a symlink)
 * owned by the daemon's user, with no group or other permissions. The runtime directory in /tmp, where
 * anyone could have created it first, holds the default pid file, daemon log and control socket.
 */
export function ensurePrivateDirectory(dir: string): void {
  try {
    fs.mkdirSync(dir, {mode: 0o700});
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== `EEXIST`) throw error;
  }
  const stat = fs.lstatSync(dir);
  const uid = currentUid();
  if (stat.isSymbolicLink()) throw new UnsafePathError(dir, `it is a symbolic link`);
  if (!stat.isDirectory()) throw new UnsafePathError(dir, `it is not a directory`);
  if (stat.uid !== uid) throw new UnsafePathError(dir, `it is owned by uid ${stat.uid}, not by the daemon's user (uid ${uid})`);
  // 0710 (control.group may traverse it) passes; any read, write or other bit does not.
  if ((stat.mode & 0o067) !== 0) throw new UnsafePathError(dir, `it is open to other users (mode ${formatMode(stat.mode)}); it must be 0700`);
}
