import type {Daemon} from './daemon.ts';
import {baseProcessId} from '../deploy/plan.ts';

/** Control command → domain call, one line each where possible (kamal-proxy's commands.go). */
export function createHandlers(daemon: Daemon) {
  return {
    status: async () => daemon.status(),
    deploy: async (params: {releasePath: string; releaseId?: string | undefined; revision?: string | undefined; wait?: boolean | undefined; skipHealthCheck?: boolean | undefined}, context: {progress(event: Record<string, unknown>): void}) =>
      daemon.deployer.deploy(params, (event) => context.progress({type: `phase`, ...event})),
    rollback: async (params: {releaseId?: string | undefined; wait?: boolean | undefined}, context: {progress(event: Record<string, unknown>): void}) =>
      daemon.deployer.rollback(params, (event) => context.progress({type: `phase`, ...event})),
    stop: async (params: {releaseId?: string | undefined}) => {
      await daemon.deployer.stop(params);
      return daemon.status();
    },
    restart: async (params: {processId?: string | undefined; policy?: string | undefined; wait?: boolean | undefined}) => daemon.deployer.restart(params),
    events: async (params: {limit?: number | undefined}) => ({events: daemon.history.recent(params.limit)}),
    logs: async (params: {processId?: string | undefined}) => ({
      sources: daemon.deployer.processSources()
        .filter(({id}) => params.processId === undefined || id === params.processId || baseProcessId(id) === params.processId)
        .map(({id, source, process}) => ({id, source, logs: process.recentOutput()})),
    }),
    shutdown: async (_params: Record<string, never>, context: {connection?: unknown}) => {
      await daemon.shutdown({keep: context.connection});
      return {message: `shutdown` as const};
    },
  };
}
