import {Command, Option} from 'clipanion';
import {BaseCommand} from '../base-command.ts';
import {isReleaseId} from '../options.ts';

export class StopCommand extends BaseCommand {
  static paths = [[`stop`]];

  static usage = Command.Usage({
    description: `Stop a release (the active one by default) without draining`,
    details: `
      Each process of the release gets its graceful stop (stop signal, \`gracefulStopMs\`, then SIGKILL).
      Stopping the active release leaves the proxy answering 503 until the next deploy. Services and
      singletons keep running. JSON: the status document after the stop, with \`"changed": true\`.
    `,
    examples: [[`Stop the active release`, `$0 stop`], [`Stop a draining release now`, `$0 stop --release-id 41`]],
  });

  releaseId = Option.String(`--release-id`, {validator: isReleaseId, description: `Release to stop (default: the active one)`});

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const client = await this.connect(config);
    try {
      const status = await client.call(`stop`, this.releaseId !== undefined ? {releaseId: this.releaseId} : {});
      if (this.human) this.writeLine(`Stopped release ${this.releaseId ?? `(active)`}; active release is now ${status.activeReleaseId ?? `none`}`);
      else this.writeSuccess({changed: true, ...status});
    } finally {
      client.close();
    }
    return 0;
  }
}
