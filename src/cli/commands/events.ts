import {Command, Option} from 'clipanion';
import * as t from 'typanion';
import {BaseCommand} from '../base-command.ts';

type EventView = {at: string; message: string; level?: string; data: Record<string, unknown>};

export class EventsCommand extends BaseCommand {
  static paths = [[`events`]];

  static usage = Command.Usage({
    description: `Show the daemon's structured event history (the last 1000 events)`,
    examples: [[`All recorded events`, `$0 events`], [`The last 20, as JSON`, `$0 events --limit 20 --json`]],
  });

  limit = Option.String(`--limit`, {validator: t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(1)]), description: `Only the most recent N events (a positive integer)`});

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const client = await this.connect(config);
    let events: EventView[];
    try {
      ({events} = await client.call(`events`, this.limit !== undefined ? {limit: this.limit} : {}) as {events: EventView[]});
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
    for (const event of events) {
      const data = Object.keys(event.data).length > 0 ? ` ${JSON.stringify(event.data)}` : ``;
      this.writeLine(`${event.at}  ${event.message}${data}`);
    }
    return 0;
  }
}
