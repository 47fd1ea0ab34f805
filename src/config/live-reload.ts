import {isDeepStrictEqual} from 'node:util';
import type {Config} from './types.ts';

const CONTROL_FIELDS = [`path`, `mode`, `owner`, `group`] as const;
const PROXY_FIELDS = [`host`, `port`, `upstreamHost`] as const;
/** Per-process fields that shape listeners and topology: changing them needs a daemon restart. */
const PROCESS_FIELDS = [`policy`, `deployStrategy`, `replicas`, `port`] as const;

/**
 * The fields that differ between the running config and a reloaded one and cannot apply live
 * (listeners, socket, state file, process topology). Empty means the new config can be adopted.
 * Processes are named by id: `processes.worker.replicas`; `processes` alone means the count changed.
 * `logs.*` always applies: to the processes a deploy starts (running ones keep their log files).
 */
export function diffLiveReload(previous: Config, next: Config): string[] {
  const changed: string[] = [];
  if (previous.application !== next.application) changed.push(`application`);
  for (const field of CONTROL_FIELDS) {
    if (previous.control[field] !== next.control[field]) changed.push(`control.${field}`);
  }
  if (previous.statePath !== next.statePath) changed.push(`statePath`);
  if (previous.eventsPath !== next.eventsPath) changed.push(`eventsPath`);
  for (const field of PROXY_FIELDS) {
    if (previous.proxy[field] !== next.proxy[field]) changed.push(`proxy.${field}`);
  }
  if (!isDeepStrictEqual(previous.metrics.listen, next.metrics.listen)) changed.push(`metrics.listen`);
  if (!isDeepStrictEqual(previous.proxy.accessLog, next.proxy.accessLog)) changed.push(`proxy.accessLog`);
  if (previous.processes.length !== next.processes.length) changed.push(`processes`);
  const nextById = new Map(next.processes.map((process) => [process.id, process]));
  for (const process of previous.processes) {
    const counterpart = nextById.get(process.id);
    if (counterpart === undefined) {
      changed.push(`processes.${process.id}`);
      continue;
    }
    for (const field of PROCESS_FIELDS) {
      if (!isDeepStrictEqual(process[field], counterpart[field])) changed.push(`processes.${process.id}.${field}`);
    }
  }
  return changed;
}
