import os from 'node:os';
import path from 'node:path';

/**
 * The only place runtime locations are derived. CLI and daemon both call these, so they agree.
 */
export function getUid(): number {
  return typeof process.getuid === `function` ? process.getuid() : 0;
}

/** Directory for sockets and default runtime files: private to the user (mode 0700). */
export function getRuntimeDir(): string {
  return path.join(os.tmpdir(), `rollbridge-${getUid()}`);
}

export function getDefaultControlPath(application: string): string {
  return path.join(getRuntimeDir(), `${sanitizeName(application)}.sock`);
}

/** Where managed processes write their output unless `logs.dir` says otherwise. */
export function getDefaultLogDir(application: string): string {
  return path.join(getRuntimeDir(), `${sanitizeName(application)}-logs`);
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
