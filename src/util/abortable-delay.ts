import {setTimeout as delay} from 'node:timers/promises';

/**
 * Waits `ms`; an abort rejects with the signal's reason (a RollbridgeError a caller put there) rather
 * than node's generic AbortError. The probe loops of health checks and readiness checks wait with it.
 */
export async function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await delay(ms, undefined, {signal});
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw error;
  }
}
