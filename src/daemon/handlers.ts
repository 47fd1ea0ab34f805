import type {ControlHandlers} from '../control/server.ts';
import type {ParamsOf, ResultOf, StatusResult} from '../control/protocol.ts';
import type {Deployer} from '../deploy/deployer.ts';
import type {EventHistory} from './event-history.ts';
import {runTakeover} from './takeover.ts';
import type {TakeoverHost} from './takeover.ts';
import {handOver} from './replace.ts';
import type {HandoverHost} from './replace.ts';

/** The parts of the daemon the control handlers use (the daemon implements it; handlers never import it). */
export type DaemonApi = TakeoverHost & HandoverHost & {
  readonly deployer: Pick<Deployer, `deploy` | `rollback` | `stop` | `restart` | `processSources` | `logSources` | `activeRelease` | `freeze` | `unfreeze` | `abandon`>;
  readonly history: Pick<EventHistory, `recent` | `subscribe`>;
  /** Resolves as soon as a shutdown begins. */
  readonly stopping: Promise<void>;
  readonly token: string;
  status(): Promise<StatusResult>;
  pause(params: ParamsOf<`pause`>): Promise<ResultOf<`pause`>>;
  resume(): Promise<ResultOf<`resume`>>;
  maintenance(params: ParamsOf<`maintenance`>): Promise<ResultOf<`maintenance`>>;
  retireAfterHandover(retire: () => Promise<void>, keep: unknown): void;
  shutdown(options: {keep?: unknown}): Promise<void>;
};

/** Control command → domain call, one line each where possible (kamal-proxy's commands.go). */
export function createHandlers(daemon: DaemonApi): ControlHandlers {
  return {
    status: () => daemon.status(),
    deploy: async (params, context) => daemon.deployer.deploy(params, (event) => context.progress({type: `phase`, ...event})),
    rollback: async (params, context) => daemon.deployer.rollback(params, (event) => context.progress({type: `phase`, ...event})),
    stop: async (params) => {
      await daemon.deployer.stop(params);
      return daemon.status();
    },
    restart: async (params, context) => daemon.deployer.restart(params, (event) => context.progress({type: `phase`, ...event})),
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
    logs: async (params) => ({sources: daemon.deployer.logSources(params)}),
    takeover: async (params, context) => runTakeover(daemon, params, (event) => context.progress({type: `phase`, ...event})),
    replace: async (params, context) => {
      const {result, retire} = await handOver(daemon, params, daemon.token);
      daemon.retireAfterHandover(retire, context.connection);
      return result;
    },
    pause: (params) => daemon.pause(params),
    resume: () => daemon.resume(),
    maintenance: (params) => daemon.maintenance(params),
    shutdown: async (_params, context) => {
      await daemon.shutdown({keep: context.connection});
      return {message: `shutdown`};
    },
  };
}
