import fs from 'node:fs';
import type {FSWatcher} from 'node:fs';
import {Command, Option} from 'clipanion';
import * as t from 'typanion';
import {LogFileReader} from '../../supervisor/process-log.ts';
import {BaseCommand} from '../base-command.ts';
import type {LogSource} from '../../control/protocol.ts';

type FollowedFile = {id: string; stream: string; reader: LogFileReader; partial: string};

// Same cadence as the daemon's follower; fs.watch wakes it up sooner where it works.
const FOLLOW_POLL_INTERVAL_MS = 250;

export class LogsCommand extends BaseCommand {
  static paths = [[`logs`]];

  static usage = Command.Usage({
    description: `Show the recent output of managed processes`,
    details: `
      One section per process (retained releases, then services, then singletons) with its last
      \`outputLines\` lines (\`--lines\` shows fewer). \`--process\` takes a base id (all replicas) or an
      instance id.

      The whole output is in each process's log files, \`<logs.dir>/<releaseId>/<id>.stdout.log\` and
      \`.stderr.log\` (\`--json\` lists them as \`logPaths\`). With \`--follow\`, after the recent lines the
      command reads those files directly and prints every new line as \`<id> [<stream>] <line>\` (NDJSON
      objects \`{id, stream, line, at}\` with \`--json\`, the recent lines included) until Ctrl-C or
      SIGTERM, then exits 0; it keeps following while the daemon is down.
    `,
    examples: [
      [`Recent output of every process`, `$0 logs`],
      [`Only the web process`, `$0 logs --process web`],
      [`As JSON`, `$0 logs --json`],
      [`The last 20 lines of the workers, then every new line`, `$0 logs --process worker --lines 20 --follow`],
    ],
  });

  processId = Option.String(`--process`, {description: `Only this process (base id or id#n)`});
  lines = Option.String(`--lines`, {validator: t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(0)]), description: `Show at most this many recent lines per process (default: all the daemon keeps)`});
  follow = Option.Boolean(`--follow,-f`, false, {description: `Keep printing new lines from the log files until interrupted (NDJSON with --json)`});

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const client = await this.connect(config);
    let sources: LogSource[];
    try {
      ({sources} = await client.call(`logs`, this.processId !== undefined ? {processId: this.processId} : {}));
    } finally {
      client.close();
    }
    if (this.lines !== undefined) {
      const count = this.lines;
      sources = sources.map((source) => ({...source, logs: count === 0 ? [] : source.logs.slice(-count)}));
    }
    // Positioned at the end before the snapshot is printed: a line written from now on is followed.
    const followed = this.follow ? openFollowedFiles(sources) : [];
    if (this.follow && this.json) {
      for (const source of sources) {
        for (const entry of source.logs) this.#printJsonLine({id: source.id, stream: entry.stream, line: entry.line, at: entry.at});
      }
    } else if (this.json) {
      this.writeJson(sources);
      return 0;
    } else if (sources.length === 0) {
      this.writeLine(this.processId === undefined ? `No managed processes.` : `No process found with id "${this.processId}".`);
    } else {
      const sections = sources.map((source) => {
        const body = source.logs.length === 0 ? `  (no recent output)` : source.logs.map((entry) => `  ${entry.at} [${entry.stream}] ${entry.line}`).join(`\n`);
        return `== ${source.id} [${source.source}] ==\n${body}`;
      });
      this.writeLine(sections.join(`\n\n`));
    }
    if (!this.follow || sources.length === 0) return 0;
    if (followed.length === 0) {
      this.context.stderr.write(`No log files to follow: the daemon reported none for these processes.\n`);
      return 0;
    }
    await this.#followUntilSignal(followed);
    return 0;
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
      else this.writeLine(`${file.id} [${file.stream}] ${line}`);
    }
  }

  #printJsonLine(entry: {id: string; stream: string; line: string; at: string}): void {
    this.context.stdout.write(`${JSON.stringify(entry)}\n`);
  }
}

/** One reader per log file of the sources, at the file's current end; a file shared by two sources is read once. */
function openFollowedFiles(sources: LogSource[]): FollowedFile[] {
  const files = new Map<string, FollowedFile>();
  for (const source of sources) {
    if (!source.logPaths) continue;
    for (const stream of [`stdout`, `stderr`] as const) {
      const file = source.logPaths[stream];
      if (files.has(file)) continue;
      const reader = new LogFileReader(file);
      reader.seekToEnd();
      files.set(file, {id: source.id, stream, reader, partial: ``});
    }
  }
  return [...files.values()];
}
