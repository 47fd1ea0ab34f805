import {setTimeout as delay} from 'node:timers/promises';

/** Polls `fn` until it returns a truthy value (returned) or the timeout elapses (throws with `what`). */
export async function waitFor<T>(fn: () => T | Promise<T>, {timeoutMs = 10_000, intervalMs = 20, what = `condition`}: {timeoutMs?: number; intervalMs?: number; what?: string} = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (true) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ``}`);
    }
    await delay(intervalMs);
  }
}
