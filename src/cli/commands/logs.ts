import {Command, Option} from 'clipanion';
import {BaseCommand} from '../base-command.ts';

type LogSource = {id: string; source: string; logs: Array<{at: string; stream: string; line: string}>};

export class LogsCommand extends BaseCommand {
  static paths = [[`logs`]];

  static usage = Command.Usage({
    description: `Show the recent output of managed processes`,
    details: `
      One section per process (retained releases, then services, then singletons) with its last
      \`outputLines\` lines. \`--process\` takes a base id (all replicas) or an instance id.
    `,
    examples: [[`Recent output of every process`, `$0 logs`], [`Only the web process`, `$0 logs --process web`], [`As JSON`, `$0 logs --json`]],
  });

  processId = Option.String(`--process`, {description: `Only this process (base id or id#n)`});

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const client = await this.connect(config);
    let sources: LogSource[];
    try {
      ({sources} = await client.call(`logs`, this.processId !== undefined ? {processId: this.processId} : {}) as {sources: LogSource[]});
    } finally {
      client.close();
    }
    if (this.json) {
      this.writeJson(sources);
      return 0;
    }
    if (sources.length === 0) {
      this.writeLine(this.processId === undefined ? `No managed processes.` : `No process found with id "${this.processId}".`);
      return 0;
    }
    const sections = sources.map((source) => {
      const body = source.logs.length === 0 ? `  (no recent output)` : source.logs.map((entry) => `  ${entry.at} [${entry.stream}] ${entry.line}`).join(`\n`);
      return `== ${source.id} [${source.source}] ==\n${body}`;
    });
    this.writeLine(sections.join(`\n\n`));
    return 0;
  }
}
