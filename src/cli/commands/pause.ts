import {Command, Option} from 'clipanion';
import {DEFAULT_PAUSE_TIMEOUT_MS} from '../../config/defaults.ts';
import {BaseCommand} from '../base-command.ts';
import {formatTraffic} from './status.ts';

export class PauseCommand extends BaseCommand {
  static paths = [[`pause`]];

  static usage = Command.Usage({
    description: `Hold new requests at the proxy until "rollbridge resume" (or the timeout)`,
    details: `
      From now on the proxy parks every new request (and WebSocket upgrade) instead of sending it to the
      app: the client waits, nothing is refused. Requests already in flight finish normally, and health
      checks keep running (they go to the processes' own ports). \`rollbridge resume\` sends the held
      requests on, in arrival order.

      At most \`proxy.maxHeldRequests\` requests (default 1000) are held at once; one more is answered 503
      with \`Retry-After: 5\` at once. After \`--timeout\` (default ${DEFAULT_PAUSE_TIMEOUT_MS / 1_000}s; \`0\` = no timeout) the
      held requests are answered 503 with \`Retry-After: 5\`, and so is every new request until
      \`rollbridge resume\`: traffic never flows again unless the operator says so. Pausing again restarts
      the timeout. Refused with ERR_TRAFFIC_MAINTENANCE while maintenance is on. The pause is kept in the
      state file: a restarted daemon is paused too. \`rollbridge status\` shows it.

      JSON: \`{"status": "success", "changed", "traffic": {mode, pause, maintenance, held, maxHeld, switchHold}}\`.
    `,
    examples: [
      [`Hold requests for at most 30 seconds (the default)`, `$0 pause`],
      [`Hold requests while a migration runs, for at most 2 minutes`, `$0 pause --timeout 2m && ./migrate && $0 resume`],
      [`Hold until resume, however long it takes`, `$0 pause --timeout 0`],
    ],
  });

  timeout = Option.String(`--timeout`, {description: `Answer the held requests 503 after this long (e.g. 30s, 2m; 0 = hold until resume; default 30s)`});

  async run(): Promise<number> {
    const timeoutMs = this.parseDuration(`--timeout`, this.timeout);
    const config = await this.loadConfig();
    const client = await this.connect(config);
    try {
      const result = await client.call(`pause`, timeoutMs === undefined ? {} : {timeoutMs});
      if (this.human) this.writeLine(`${result.changed ? `Paused` : `Still paused`}: ${formatTraffic(result.traffic)}`);
      else this.writeSuccess(result);
    } finally {
      client.close();
    }
    return 0;
  }
}
