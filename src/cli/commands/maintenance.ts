import {Command, Option, UsageError} from 'clipanion';
import {DEFAULT_MAINTENANCE_RETRY_AFTER_SECONDS} from '../../config/defaults.ts';
import {BaseCommand} from '../base-command.ts';
import {formatTraffic} from './status.ts';

export class MaintenanceCommand extends BaseCommand {
  static paths = [[`maintenance`]];

  static usage = Command.Usage({
    description: `Answer every request 503 with a maintenance page (on), or serve again (off)`,
    details: `
      \`maintenance on\`: the proxy answers every new request itself with 503 Service Unavailable,
      \`Retry-After\` (\`--retry-after\`, default ${DEFAULT_MAINTENANCE_RETRY_AFTER_SECONDS}s) and a small page carrying \`--message\`: JSON
      (\`{"error": "maintenance", "message", "retryAfterSeconds"}\`) when the request's Accept header names
      application/json (or a +json type) before text/html, HTML when it names text/html, plain text
      otherwise. Requests in flight finish; held requests of a pause get the page too (maintenance ends
      a pause). Health checks keep running. Running it again replaces the message.

      \`maintenance off\`: requests go to the active release again. Both are kept in the state file:
      a restarted daemon is still in maintenance. \`rollbridge status\` shows it.

      JSON: \`{"status": "success", "changed", "traffic": {mode, pause, maintenance, held, maxHeld, switchHold}}\`.
    `,
    examples: [
      [`Maintenance with the default page`, `$0 maintenance on`],
      [`With a message, retry in 10 minutes`, `$0 maintenance on --message "Back at 14:00 UTC" --retry-after 10m`],
      [`Serve again`, `$0 maintenance off`],
    ],
  });

  state = Option.String({name: `on|off`});
  message = Option.String(`--message`, {description: `Text of the maintenance page (1-1000 characters; with "on")`});
  retryAfter = Option.String(`--retry-after`, {description: `Retry-After of the 503 (e.g. 60s, 10m; whole seconds up to 24h; default 60s; with "on")`});

  async run(): Promise<number> {
    if (this.state !== `on` && this.state !== `off`) throw new UsageError(`Expected "on" or "off" after "maintenance" (got "${this.state}")`);
    const enabled = this.state === `on`;
    if (!enabled && (this.message !== undefined || this.retryAfter !== undefined)) throw new UsageError(`--message and --retry-after go with "maintenance on"`);
    const retryAfterMs = this.parseDuration(`--retry-after`, this.retryAfter);
    if (retryAfterMs !== undefined && (retryAfterMs % 1_000 !== 0 || retryAfterMs > 86_400_000)) {
      throw new UsageError(`Invalid value for --retry-after: expected whole seconds up to 24h, such as 30s or 10m (got "${this.retryAfter}")`);
    }
    const config = await this.loadConfig();
    const client = await this.connect(config);
    try {
      const result = await client.call(`maintenance`, {
        enabled,
        ...(this.message !== undefined ? {message: this.message} : {}),
        ...(retryAfterMs !== undefined ? {retryAfterSeconds: retryAfterMs / 1_000} : {}),
      });
      if (this.human) this.writeLine(`${enabled ? `Maintenance on` : `Maintenance off`}${result.changed ? `` : ` (unchanged)`}: ${formatTraffic(result.traffic)}`);
      else this.writeSuccess(result);
    } finally {
      client.close();
    }
    return 0;
  }
}
