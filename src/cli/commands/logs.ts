import fs from 'node:fs';
import type {FSWatcher} from 'node:fs';
import {Command, Option, UsageError} from 'clipanion';
import * as t from 'typanion';
import {LogFileReader} from '../../supervisor/process-log.ts';
import {BaseCommand} from '../base-command.ts';
import type {LogLine, LogSource} from '../../control/protocol.ts';
import {isReleaseId, parseSinceTime} from '../options.ts';

type FollowedFile = {id: string; label: string; stream: string; reader: LogFileReader; partial: string};

// Same cadence as the daemon's follower; fs.watch wakes it up sooner where it works.
const FOLLOW_POLL_INTERVAL_MS = 250;

export class LogsCommand extends BaseCommand {
  static paths = [[`logs`]];

  static usage = Command.Usage({
    description: `Show the recent output of managed processes, failed releases included`,
    details: `
      By default the output of the active release, of a release being deployed, of the latest failed
      deploy when it failed after the active release was deployed, and of the services and singletons.
      \`--release <id>\` shows one release instead: any retained release, also one whose deploy failed
      before its switch (the daemon keeps the last \`releaseRetention.keep\` of those, also across a daemon
      restart, which reads their lines back from the log files); an id it does not keep fails with
      ERR_RELEASE_NOT_FOUND listing the ones it does. \`--all\` shows
      every retained release. \`--process\` takes a base id (all replicas) or an instance id.

      On a terminal the lines of all shown processes are merged in time order, each as \`<time> <process>
      [<stream>] <line>\`; with more than one release shown the process is written \`<id>@<releaseId>\`. A
      header names the releases shown and why a failed one failed. The daemon keeps the last
      \`outputLines\` lines of each process with the time each was written (for a process re-adopted
      after a daemon restart, the lines read back from its files carry the files' modification time);
      \`--lines\` keeps fewer per process, \`--since\` only those written since a time: a duration back from
      now (\`90s\`, \`5m\`, \`2h\`, \`1d\`) or an ISO 8601 time (\`2026-12-01T18:00:00Z\`); anything else is a
      usage error (exit 2).

      \`--json\` prints rollbridge 0.1's array, one element per process \`{id, source, releaseId?, failure?,
      logs: [{at, stream, line}], logPaths}\`. The whole output is in each process's log files,
      \`<logs.dir>/<releaseId>/<id>.stdout.log\` and \`.stderr.log\` (\`logPaths\`). With \`--follow\`, after the
      recent lines the command reads those files directly and prints every new line as \`<process> [<stream>]
      <line>\` (NDJSON objects \`{id, stream, line, at}\` with \`--json\`, the recent lines included) until
      Ctrl-C or SIGTERM, then exits 0; it keeps following while the daemon is down.
    `,
    examples: [
      [`The active release, the latest failed deploy, services and singletons, merged by time`, `$0 logs`],
      [`Why release 20261201183000 failed (its output, also when its deploy never switched)`, `$0 logs --release 20261201183000`],
      [`The last five minutes of the web process`, `$0 logs --process web --since 5m`],
      [`Every retained release, as JSON`, `$0 logs --all --json`],
      [`The last 20 lines of the workers, then every new line`, `$0 logs --process worker --lines 20 --follow`],
    ],
  });

  processId = Option.String(`--process`, {description: `Only this process (base id or id#n)`});
  releaseId = Option.String(`--release`, {validator: isReleaseId, description: `Only this release: any retained release, failed ones included`});
  all = Option.Boolean(`--all`, false, {description: `Every retained release, not only the active one and the latest failed deploy`});
  since = Option.String(`--since`, {description: `Only lines written since this time: a duration back from now (90s, 5m, 2h, 1d) or an ISO 8601 time`});
  lines = Option.String(`--lines`, {validator: t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(0)]), description: `Show at most this many recent lines per process (default: all the daemon keeps)`});
  follow = Option.Boolean(`--follow,-f`, false, {description: `Keep printing new lines from the log files until interrupted (NDJSON with --json)`});

  async run(): Promise<number> {
    const since = this.#parseSince();
    if (this.all && this.releaseId !== undefined) throw new UsageError(`--all and --release exclude each other: pass one of them`);
    const config = await this.loadConfig();
    const client = await this.connect(config);
    let sources: LogSource[];
    try {
      ({sources} = await client.call(`logs`, {
        ...(this.processId !== undefined ? {processId: this.processId} : {}),
        ...(this.releaseId !== undefined ? {releaseId: this.releaseId} : {}),
        ...(this.all ? {all: true} : {}),
      }));
    } finally {
      client.close();
    }
    if (this.lines !== undefined) {
      const count = this.lines;
      sources = sources.map((source) => ({...source, logs: count === 0 ? [] : source.logs.slice(-count)}));
    }
    if (since !== undefined) {
      const from = since.getTime();
      sources = sources.map((source) => ({...source, logs: source.logs.filter((entry) => Date.parse(entry.at) >= from)}));
    }
    const labelOf = labeller(sources);
    // Positioned at the end before the snapshot is printed: a line written from now on is followed.
    const followed = this.follow ? openFollowedFiles(sources, labelOf) : [];
    if (this.follow && this.json) {
      for (const entry of mergeByTime(sources)) this.#printJsonLine({id: entry.source.id, stream: entry.stream, line: entry.line, at: entry.at});
    } else if (this.json) {
      this.writeJson(sources);
      return 0;
    } else if (sources.length === 0) {
      this.writeLine(this.processId === undefined ? `No managed processes.` : `No process found with id "${this.processId}".`);
    } else {
      this.writeLine(formatMergedLogs(sources, labelOf, since));
    }
    if (!this.follow || sources.length === 0) return 0;
    if (followed.length === 0) {
      this.context.stderr.write(`No log files to follow: the daemon reported none for these processes.\n`);
      return 0;
    }
    await this.#followUntilSignal(followed);
    return 0;
  }

  #parseSince(): Date | undefined {
    if (this.since === undefined) return undefined;
    const since = parseSinceTime(this.since, new Date());
    if (since === null) throw new UsageError(`Invalid value for --since: expected a duration back from now such as 90s, 5m, 2h or 1d, or an ISO 8601 time such as 2026-12-01T18:00:00Z (got "${this.since}")`);
    return since;
  }

  async #followUntilSignal(files: FollowedFile[]): Promise<void> {
    const readAll = (): void => {
      for (const file of files) this.#printNew(file);
    };
    let scheduled = false;
    const scheduleRead = (): void => {
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        readAll();
      });
    };
    const watchers: FSWatcher[] = [];
    for (const file of files) {
      try {
        const watcher = fs.watch(file.reader.path, {persistent: false}, scheduleRead);
        watcher.on(`error`, () => watcher.close());
        watchers.push(watcher);
      } catch {
        // Not there yet, or no inotify: the poll covers it.
      }
    }
    // The poll keeps the command alive until a signal arrives.
    const timer = setInterval(readAll, FOLLOW_POLL_INTERVAL_MS);
    let onSignal: () => void = () => undefined;
    await new Promise<void>((resolve) => {
      onSignal = resolve;
      process.once(`SIGINT`, onSignal);
      process.once(`SIGTERM`, onSignal);
    });
    process.off(`SIGINT`, onSignal);
    process.off(`SIGTERM`, onSignal);
    clearInterval(timer);
    for (const watcher of watchers) watcher.close();
    readAll();
  }

  #printNew(file: FollowedFile): void {
    const text = file.reader.readNew();
    if (text === ``) return;
    const parts = (file.partial + text).split(`\n`);
    file.partial = parts.pop() ?? ``;
    const at = new Date().toISOString();
    for (const part of parts) {
      const line = part.endsWith(`\r`) ? part.slice(0, -1) : part;
      if (line === ``) continue;
      if (this.json) this.#printJsonLine({id: file.id, stream: file.stream, line, at});
      else this.writeLine(`${file.label} [${file.stream}] ${line}`);
    }
  }

  #printJsonLine(entry: {id: string; stream: string; line: string; at: string}): void {
    this.context.stdout.write(`${JSON.stringify(entry)}\n`);
  }
}

/** One reader per log file of the sources, at the file's current end; a file shared by two sources is read once. */
function openFollowedFiles(sources: LogSource[], labelOf: (source: LogSource) => string): FollowedFile[] {
  const files = new Map<string, FollowedFile>();
  for (const source of sources) {
    if (!source.logPaths) continue;
    for (const stream of [`stdout`, `stderr`] as const) {
      const file = source.logPaths[stream];
      if (files.has(file)) continue;
      const reader = new LogFileReader(file);
      reader.seekToEnd();
      files.set(file, {id: source.id, label: labelOf(source), stream, reader, partial: ``});
    }
  }
  return [...files.values()];
}

type MergedLine = LogLine & {source: LogSource};

/** Every line of the sources in time order; lines of the same time keep their order (the sort is stable). */
function mergeByTime(sources: LogSource[]): MergedLine[] {
  const merged = sources.flatMap((source) => source.logs.map((entry) => ({...entry, source})));
  return merged.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
}

/** `web`, or `web@r4` when processes of more than one release are shown. */
function labeller(sources: LogSource[]): (source: LogSource) => string {
  const releases = new Set(sources.flatMap((source) => source.releaseId === undefined ? [] : [source.releaseId]));
  return (source) => releases.size > 1 && source.releaseId !== undefined ? `${source.id}@${source.releaseId}` : source.id;
}

/**
 * The merged view: one header line per place shown (`== release r4 (failed): web ==`, with why it
 * failed below it), then every line in time order as `<time> <process> [<stream>] <line>`.
 */
export function formatMergedLogs(sources: LogSource[], labelOf: (source: LogSource) => string, since?: Date): string {
  const places = new Map<string, {ids: string[]; failure: string | undefined}>();
  for (const source of sources) {
    const place = places.get(source.source) ?? {ids: [], failure: source.failure};
    place.ids.push(source.id);
    places.set(source.source, place);
  }
  const lines: string[] = [];
  for (const [where, place] of places) {
    lines.push(`== ${where}: ${place.ids.join(`, `)} ==`);
    if (place.failure !== undefined) lines.push(`   failed: ${place.failure}`);
  }
  const merged = mergeByTime(sources);
  const width = Math.max(0, ...merged.map((entry) => labelOf(entry.source).length));
  lines.push(``);
  if (merged.length === 0) lines.push(since === undefined ? `(no recent output)` : `(no output since ${since.toISOString()})`);
  for (const entry of merged) lines.push(`${entry.at} ${labelOf(entry.source).padEnd(width)} [${entry.stream}] ${entry.line}`);
  return lines.join(`\n`);
}
