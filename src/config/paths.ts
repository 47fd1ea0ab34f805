import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The only place runtime locations are derived. CLI and daemon both call these, so they agree.
 */
export function getUid(): number {
  return typeof process.getuid === `function` ? process.getuid() : 0;
}

/**
 * Directory for sockets and default runtime files: private to the user (mode 0700). Each uid has its own,
 * so `sudo rollbridge …` (uid 0) and `rollbridge …` reach different daemons unless control.path is set.
 */
export function getRuntimeDir(uid: number = getUid()): string {
  return path.join(os.tmpdir(), `rollbridge-${uid}`);
}

/** The runtime directories of every user in the temp directory (`rollbridge-<uid>`), by uid. */
export function listRuntimeDirs(): Array<{uid: number; dir: string}> {
  let names: string[];
  try {
    names = fs.readdirSync(os.tmpdir());
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const match = /^rollbridge-(\d+)$/.exec(name);
    return match ? [{uid: Number(match[1]), dir: path.join(os.tmpdir(), name)}] : [];
  }).sort((left, right) => left.uid - right.uid);
}

export function getDefaultControlPath(application: string): string {
  return path.join(getRuntimeDir(), `${sanitizeName(application)}.sock`);
}

/** Where a rollbridge 0.1 daemon listens when its config sets no control.path (found for the upgrade). */
export function getLegacyControlPath(application: string): string {
  return `/tmp/rollbridge-${application}.sock`;
}

/**
 * Where a 0.1 daemon of an application may answer: its control.path, and 0.1's default when control.path
 * is left to this project's default (the two defaults differ).
 */
export function listLegacyControlPaths(application: string, controlPath: string): string[] {
  const legacyDefault = getLegacyControlPath(application);
  return controlPath === getDefaultControlPath(application) && legacyDefault !== controlPath ? [controlPath, legacyDefault] : [controlPath];
}

/** Where the new daemon binds its control socket while a rollbridge 0.1 daemon still holds control.path (the upgrade). */
export function getUpgradeControlPath(controlPath: string): string {
  return `${controlPath}.upgrade`;
}

/** Where managed processes write their output unless `logs.dir` says otherwise. */
export function getDefaultLogDir(application: string): string {
  return path.join(getRuntimeDir(), `${sanitizeName(application)}-logs`);
}

/** Where the sd_notify sockets of processes with health.type "notify" live (created 0700 by the daemon). */
export function getNotifySocketDir(application: string): string {
  return path.join(getRuntimeDir(), `${sanitizeName(application)}-notify`);
}

/** In the private runtime directory (0700), where no other user can plant a symlink or a file. */
export function getDefaultDaemonLogPath(application: string): string {
  return path.join(getRuntimeDir(), `${sanitizeName(application)}.log`);
}

export function getDefaultDaemonPidPath(application: string): string {
  return path.join(getRuntimeDir(), `${sanitizeName(application)}.pid`);
}

export function sanitizeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, `_`) || `app`;
}
