import type {ControlHandlers} from '../control/server.ts';
import type {ResultOf} from '../control/protocol.ts';
import {baseProcessId} from '../deploy/plan.ts';
import type {Daemon} from './daemon.ts';
import {runTakeover} from './takeover.ts';
import {handOver} from './replace.ts';

/** Control command → domain call, one line each where possible (kamal-proxy's commands.go). */
export function createHandlers(daemon: Daemon): ControlHandlers {
  return {
    status: async () => daemon.status() as ResultOf<`status`>,
    deploy: async (params, context) => daemon.deployer.deploy(params, (event) => context.progress({type: `phase`, ...event})),
    rollback: async (params, context) => daemon.deployer.rollback(params, (event) => context.progress({type: `phase`, ...event})),
    stop: async (params) => {
      await daemon.deployer.stop(params);
      return daemon.status() as ResultOf<`stop`>;
    },
    restart: async (params) => daemon.deployer.restart(params),
    events: async (params, context) => {
      const events = daemon.history.recent(params.limit) as ResultOf<`events`>[`events`];
      if (!params.follow) return {events};
      for (const event of events) context.progress({event});
      // Streams until the client goes away or the daemon stops; the final frame then carries no events.
      const unsubscribe = daemon.history.subscribe((event) => context.progress({event}));
      try {
        await Promise.race([
          new Promise<void>((resolve) => context.signal.addEventListener(`abort`, () => resolve(), {once: true})),
          daemon.stopping,
        ]);
      } finally {
        unsubscribe();
      }
      return {events: []};
    },
    logs: async (params) => ({
      sources: daemon.deployer.processSources()
        .filter(({id}) => params.processId === undefined || id === params.processId || baseProcessId(id) === params.processId)
        .map(({id, source, process}) => ({id, source, logs: process.recentOutput(), ...(process.processLog ? {logPaths: {...process.processLog.paths}} : {})})),
    }),
    takeover: async (params, context) => runTakeover(daemon, params, (event) => context.progress({type: `phase`, ...event})),
    replace: async (params, context) => {
      const {result, retire} = await handOver(daemon, params, daemon.token);
      daemon.retireAfterHandover(retire, context.connection);
      return result;
    },
    shutdown: async (_params, context) => {
      await daemon.shutdown({keep: context.connection});
      return {message: `shutdown`};
    },
  };
}
