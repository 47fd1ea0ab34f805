import {Command} from 'clipanion';
import {BaseCommand} from '../base-command.ts';

export class ShutdownCommand extends BaseCommand {
  static paths = [[`shutdown`]];

  static usage = Command.Usage({
    description: `Stop the daemon and every process it manages`,
    details: `
      Answers only after cleanup has finished: the control socket is removed, every managed process has
      had its graceful stop and the proxy port is closed, so a new daemon can bind at once.
      JSON: \`{"status": "success", "changed": true, "message": "shutdown"}\`.
    `,
    examples: [[`Stop the daemon`, `$0 shutdown`]],
  });

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const client = await this.connect(config);
    try {
      const result = await client.call(`shutdown`, {});
      if (this.human) this.writeLine(`The rollbridge daemon for "${config.application}" has shut down`);
      else this.writeSuccess({changed: true, ...result});
    } finally {
      client.close();
    }
    return 0;
  }
}
