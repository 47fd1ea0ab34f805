import {Command, Option} from 'clipanion';
import {isReleaseId} from '../options.ts';
import {formatDuration} from '../render.ts';
import {StreamingCommand} from '../streaming-command.ts';
import {formatPhase} from './deploy.ts';

export class RollbackCommand extends StreamingCommand {
  static paths = [[`rollback`]];

  static usage = Command.Usage({
    description: `Switch back to the previous retained release (or --release-id), health-checked`,
    details: `
      Runs a normal deploy of the target release's directory, id and revision with the current config:
      fresh ports, a fresh health check, then the switch and the drain of the current release. A failed
      rollback leaves the current release serving. The release directory must still exist.
      The target is named (first progress line, and in the daemon's events) before anything moves. A
      release that failed (its watch window switched back, a singleton could not start, a process
      crash-looped) is never chosen: with none healthy left, the command fails with
      ERR_ROLLBACK_NO_HEALTHY_RELEASE and the current release keeps serving.

      Prints each phase and each wait on a terminal as it happens, as deploy does; JSON (\`{status, changed, activeReleaseId, previousReleaseId, …}\`)
      with \`--json\` or when stdout is not a terminal; \`--stream\` prints one NDJSON line per phase, then
      the result line.
    `,
    examples: [
      [`Roll back to the previously active release`, `$0 rollback`],
      [`Roll back to a specific retained release`, `$0 rollback --release-id 41`],
      [`Stream each phase as NDJSON`, `$0 rollback --json --stream`],
    ],
  });

  releaseId = Option.String(`--release-id`, {validator: isReleaseId, description: `Retained release to activate (default: the most recently active one before the current that never failed)`});
  wait = Option.Boolean(`--wait`, true, {description: `Queue behind a running deploy (--no-wait fails at once)`});

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const client = await this.connect(config);
    try {
      const result = await client.call(`rollback`, {...(this.releaseId !== undefined ? {releaseId: this.releaseId} : {}), wait: this.wait}, {
        onProgress: this.progressListener(formatPhase),
      });
      if (this.human) this.writeLine(`✓ rolled back: release ${result.activeReleaseId} is active (previous: ${result.previousReleaseId ?? `none`}) in ${formatDuration(result.durationMs)}`);
      else this.writeSuccess({changed: result.changed ?? true, ...result});
    } finally {
      client.close();
    }
    return 0;
  }
}
