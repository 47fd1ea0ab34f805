import {Command} from 'clipanion';
import {BaseCommand} from '../base-command.ts';
import {formatTraffic} from './status.ts';

export class ResumeCommand extends BaseCommand {
  static paths = [[`resume`]];

  static usage = Command.Usage({
    description: `End a pause: the held requests go on to the app`,
    details: `
      Ends \`rollbridge pause\` (also one that timed out): every held request is sent on at once, and new
      requests flow again. Without a pause it changes nothing (\`"changed": false\`). Refused with
      ERR_TRAFFIC_MAINTENANCE while maintenance is on (use \`rollbridge maintenance off\`).

      JSON: \`{"status": "success", "changed", "released": <held requests sent on>, "traffic": {…}}\`.
    `,
    examples: [[`Let the held requests through`, `$0 resume`]],
  });

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const client = await this.connect(config);
    try {
      const result = await client.call(`resume`, {});
      if (this.human) this.writeLine(result.changed ? `Resumed: ${result.released ?? 0} held request(s) sent on; ${formatTraffic(result.traffic)}` : `Not paused: ${formatTraffic(result.traffic)}`);
      else this.writeSuccess(result);
    } finally {
      client.close();
    }
    return 0;
  }
}
