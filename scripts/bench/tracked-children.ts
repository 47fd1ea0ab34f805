// Every process the benchmark starts goes through spawnTracked, so that a failing part (or Ctrl-C) can
// never leave one behind: whatever is still running when the bench exits is killed by its pid.
import {spawn} from 'node:child_process';
import type {ChildProcess, SpawnOptions} from 'node:child_process';

const tracked = new Set<ChildProcess>();

export function spawnTracked(file: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const child = spawn(file, args, options);
  tracked.add(child);
  child.once(`exit`, () => tracked.delete(child));
  child.once(`error`, () => tracked.delete(child));
  return child;
}

/** Resolves true once `child` has exited (at once when it already has), false after `timeoutMs`. */
export function waitForExit(child: ChildProcess, timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = Number.isFinite(timeoutMs) ? setTimeout(() => resolve(false), timeoutMs) : null;
    child.once(`exit`, () => {
      if (timer) clearTimeout(timer);
      resolve(true);
    });
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = waitForExit(child);
  child.kill(`SIGTERM`);
  const timer = setTimeout(() => child.kill(`SIGKILL`), graceMs);
  await exited;
  clearTimeout(timer);
}

export function killTrackedChildren(): void {
  for (const child of tracked) {
    if (child.exitCode === null && child.signalCode === null) child.kill(`SIGKILL`);
  }
}

process.on(`exit`, killTrackedChildren);
