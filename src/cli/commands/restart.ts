import {Command, Option} from 'clipanion';
import * as t from 'typanion';
import {BaseCommand} from '../base-command.ts';

export class RestartCommand extends BaseCommand {
  static paths = [[`restart`]];

  static usage = Command.Usage({
    description: `Restart processes one after the other; the web process without downtime`,
    details: `
      Without selectors restarts every companion, singleton and service of the active release; \`--process\`
      takes a base id (all replicas) or one instance (\`worker#1\`); \`--policy\` restricts to one policy.
      Stopped or failed processes are revived. Naming the proxied web process (\`--process web\` or
      \`--policy proxied\`) replaces it without downtime: a new process on a fresh port, health-checked,
      then traffic moves to it and the old one drains and stops.
    `,
    examples: [
      [`Restart every non-proxied process`, `$0 restart`],
      [`Restart one process (all its replicas)`, `$0 restart --process worker`],
      [`Restart only the services`, `$0 restart --policy service`],
      [`Replace the web process without dropping a request`, `$0 restart --process web`],
    ],
  });

  processId = Option.String(`--process`, {description: `Base id or instance id (id#n) to restart`});
  policy = Option.String(`--policy`, {validator: t.isEnum([`companion`, `singleton`, `service`, `proxied`]), description: `Only processes with this policy: companion, singleton, service or proxied`});
  wait = Option.Boolean(`--wait`, true, {description: `Queue behind a running deploy (--no-wait fails at once)`});

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const client = await this.connect(config);
    try {
      const result = await client.call(`restart`, {
        ...(this.processId !== undefined ? {processId: this.processId} : {}),
        ...(this.policy !== undefined ? {policy: this.policy as `companion` | `singleton` | `service` | `proxied`} : {}),
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
