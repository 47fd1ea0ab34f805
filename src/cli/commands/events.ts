import {Command, Option} from 'clipanion';
import * as t from 'typanion';
import {ErrorCode} from '../../errors/codes.ts';
import {isRollbridgeError} from '../../errors/rollbridge-error.ts';
import type {ControlEvent} from '../../control/protocol.ts';
import {BaseCommand} from '../base-command.ts';


export class EventsCommand extends BaseCommand {
  static paths = [[`events`]];

  static usage = Command.Usage({
    description: `Show the daemon's structured event history (the last 1000 events)`,
    details: `
      Prints the recorded events, oldest first. With \`--follow\` it keeps the connection open and prints
      every new event as it happens (one JSON object per line with \`--json\`: NDJSON), until the daemon
      stops, you press Ctrl-C or it gets SIGTERM; it then exits 0 (as \`logs --follow\` does).
      \`eventsPath\` in the config keeps a permanent JSONL copy.
    `,
    examples: [
      [`All recorded events`, `$0 events`],
      [`The last 20, as JSON`, `$0 events --limit 20 --json`],
      [`Stream events as NDJSON (e.g. into a CI log)`, `$0 events --follow --json --limit 1`],
    ],
  });

  follow = Option.Boolean(`--follow,-f`, false, {description: `Keep printing new events as they happen (NDJSON with --json)`});
  limit = Option.String(`--limit`, {validator: t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(1)]), description: `Only the most recent N events (a positive integer)`});

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const client = await this.connect(config);
    if (this.follow) {
      // Ctrl-C or SIGTERM is how a follow ends: exit 0, like `logs --follow`, not 130/143.
      const interrupted = new AbortController();
      const onSignal = (): void => interrupted.abort();
      process.once(`SIGINT`, onSignal);
      process.once(`SIGTERM`, onSignal);
      try {
        await client.call(`events`, {...(this.limit !== undefined ? {limit: this.limit} : {}), follow: true}, {
          onProgress: (frame) => this.#print(frame.event),
          signal: interrupted.signal,
        });
      } catch (error) {
        if (interrupted.signal.aborted) return 0;
        // The daemon stopping ends the stream: that is the normal end of --follow, not a failure.
        if (!isRollbridgeError(error) || error.code !== ErrorCode.DAEMON_UNREACHABLE) throw error;
        this.context.stderr.write(`The daemon closed the event stream (it stopped).\n`);
      } finally {
        process.off(`SIGINT`, onSignal);
        process.off(`SIGTERM`, onSignal);
        client.close();
      }
      return 0;
    }
    let events: ControlEvent[];
    try {
      ({events} = await client.call(`events`, this.limit !== undefined ? {limit: this.limit} : {}));
    } finally {
      client.close();
    }
    if (this.json) {
      this.writeJson(events);
      return 0;
    }
    if (events.length === 0) {
      this.writeLine(`No events recorded yet.`);
      return 0;
    }
    for (const event of events) this.#print(event);
    return 0;
  }

  #print(event: ControlEvent): void {
    if (this.json) {
      this.context.stdout.write(`${JSON.stringify(event)}\n`);
      return;
    }
    const data = Object.keys(event.data).length > 0 ? ` ${JSON.stringify(event.data)}` : ``;
    this.writeLine(`${event.at}  ${event.message}${data}`);
  }
}
