import type {Daemon} from './daemon.ts';

/**
 * SIGINT/SIGTERM → one ordered graceful shutdown (a second signal does not cut it short; a third
 * exits at once). SIGHUP is logged and ignored. Uncaught errors are logged, never fatal to the proxy.
 * Resolves with the exit code once the daemon has stopped (by signal or by the `shutdown` command).
 */
export function installSignalHandlers(daemon: Daemon): Promise<number> {
  let signals = 0;
  let resolveExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => {
    resolveExit = resolve;
  });
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals === 3) {
      daemon.log.error(`forced exit`, {signal});
      process.exit(1);
    }
    daemon.log.info(signals === 1 ? `signal received` : `signal received again; still shutting down`, {signal});
    daemon.shutdown().catch(() => undefined);
  };
  process.on(`SIGINT`, onSignal);
  process.on(`SIGTERM`, onSignal);
  process.on(`SIGHUP`, () => daemon.log.warn(`SIGHUP ignored`, {}));
  process.on(`uncaughtException`, (error) => daemon.log.error(`uncaught exception`, {err: error, stack: error.stack}));
  process.on(`unhandledRejection`, (reason) => daemon.log.error(`unhandled rejection`, {err: reason}));
  // Signals and the `shutdown` control command both end here.
  daemon.stopped.then(() => resolveExit(0), () => resolveExit(1));
  return exited.finally(() => {
    process.off(`SIGINT`, onSignal);
    process.off(`SIGTERM`, onSignal);
  });
}
