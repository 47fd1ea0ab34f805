import type {RestartConfig} from '../config/types.ts';

export type RestartPlan = {
  /** Milliseconds to wait before restarting, or null when the restart budget is spent. */
  delayMs: number | null;
  /** The restart history to keep: pruned to the window, plus `now` when this restart counts. */
  history: number[];
};

/**
 * Decides when an unexpected exit is restarted (upstream §4.6). Pure: `history` holds the times
 * (ms) of earlier counted restarts and the caller stores the returned one.
 * Unlimited restarts with a constant delay take the fast path and keep no history.
 */
export function planRestart(options: {restart: RestartConfig; restartDelayMs: number; history: readonly number[]; now: number}): RestartPlan {
  const {restart, now} = options;
  const baseDelayMs = Math.max(0, options.restartDelayMs);
  if (restart.maxRestarts === undefined && restart.backoffFactor === 1) {
    return {delayMs: capDelay(baseDelayMs, restart.maxDelayMs), history: [...options.history]};
  }
  const history = restart.windowMs > 0
    ? options.history.filter((at) => now - at < restart.windowMs)
    : [...options.history];
  if (restart.maxRestarts !== undefined && history.length >= restart.maxRestarts) {
    return {delayMs: null, history};
  }
  const delayMs = capDelay(baseDelayMs * restart.backoffFactor ** history.length, restart.maxDelayMs);
  history.push(now);
  return {delayMs, history};
}

function capDelay(delayMs: number, maxDelayMs: number): number {
  return maxDelayMs > 0 ? Math.min(delayMs, maxDelayMs) : delayMs;
}
