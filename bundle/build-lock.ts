import fs from 'node:fs';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {buildFailure} from './build-failure.ts';

export type BuildLockOptions = {
  /** @default 600_000 */
  timeoutMs?: number;
  /** @default 200 */
  pollMs?: number;
  /** Called once when another build holds the lock. */
  onWait?: (holderPid: number) => void;
};

/**
 * Runs `fn` while holding `lockPath` (a file holding our pid), so two `npm run build` in one checkout
 * (several engineers running `npm test`) never write bundle/ at the same time. A lock whose pid is
 * gone is taken over.
 */
export async function withBuildLock<T>(lockPath: string, fn: () => Promise<T>, options: BuildLockOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 600_000);
  let waited = false;
  fs.mkdirSync(path.dirname(lockPath), {recursive: true});
  while (true) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), {flag: `wx`});
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== `EEXIST`) throw error;
    }
    const holder = Number.parseInt(readOrEmpty(lockPath), 10);
    if (!Number.isInteger(holder) || holder <= 0 || !isAlive(holder)) {
      fs.rmSync(lockPath, {force: true});
      continue;
    }
    if (Date.now() > deadline) {
      throw buildFailure(`Another build (pid ${holder}) has held ${lockPath} for longer than ${options.timeoutMs ?? 600_000} ms`, {
        fix: `Wait for pid ${holder} to finish, or stop it and delete ${lockPath}`,
      });
    }
    if (!waited) options.onWait?.(holder);
    waited = true;
    await delay(options.pollMs ?? 200);
  }
  try {
    return await fn();
  } finally {
    if (readOrEmpty(lockPath) === String(process.pid)) fs.rmSync(lockPath, {force: true});
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === `EPERM`;
  }
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, `utf8`).trim();
  } catch {
    return ``;
  }
}
