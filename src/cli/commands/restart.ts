import {Command, Option} from 'clipanion';
import * as t from 'typanion';
import {BaseCommand} from '../base-command.ts';

export class RestartCommand extends BaseCommand {
  static paths = [[`restart`]];

  static usage = Command.Usage({
    description: `Restart non-proxied processes in place, one after the other`,
    details: `
      Without selectors restarts every companion, singleton and service of the active release; \`--process\`
      takes a base id (all replicas) or one instance (\`worker#1\`); \`--policy\` restricts to one policy.
      Stopped or failed processes are revived. The proxied web process is replaced by \`deploy\`.
    `,
    examples: [
      [`Restart every non-proxied process`, `$0 restart`],
      [`Restart one process (all its replicas)`, `$0 restart --process worker`],
      [`Restart only the services`, `$0 restart --policy service`],
    ],
  });

  processId = Option.String(`--process`, {description: `Base id or instance id (id#n) to restart`});
  policy = Option.String(`--policy`, {validator: t.isEnum([`companion`, `singleton`, `service`]), description: `Only processes with this policy: companion, singleton or service`});
  wait = Option.Boolean(`--wait`, true, {description: `Queue behind a running deploy (--no-wait fails at once)`});

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const client = await this.connect(config);
    try {
      const result = await client.call(`restart`, {
        ...(this.processId !== undefined ? {processId: this.processId} : {}),
        ...(this.policy !== undefined ? {policy: this.policy as `companion` | `singleton` | `service`} : {}),
        wait: this.wait,
      });
      if (!this.json && this.isTTY) this.writeLine(result.restarted.length > 0 ? `Restarted ${result.restarted.join(`, `)}` : `Nothing to restart`);
      else this.writeJson({status: `success`, ...result});
    } finally {
      client.close();
    }
    return 0;
  }
}
