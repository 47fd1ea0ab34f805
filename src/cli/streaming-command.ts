import {Option} from 'clipanion';
import type {ProgressEvent} from '../control/protocol.ts';
import {BaseCommand} from './base-command.ts';
import {writeJsonLine} from './render.ts';

/**
 * A command whose work has phases (deploy, rollback, restart, legacy-takeover): on a terminal each phase
 * is a line as it happens; with `--stream` each is an NDJSON line `{"type":"phase",…}` and the result
 * (or error) is the last line.
 */
export abstract class StreamingCommand extends BaseCommand {
  stream = Option.Boolean(`--stream`, false, {description: `With --json (implied): one NDJSON line {"type":"phase",…} per phase as it happens, then {"type":"result",…} or {"type":"error",…}`});

  override get streaming(): boolean {
    return this.stream;
  }

  /** Where phases go: NDJSON lines with --stream, formatted lines for a human, nowhere otherwise. */
  progressListener(format: (event: ProgressEvent) => string): ((event: ProgressEvent) => void) | undefined {
    if (this.stream) return (event) => writeJsonLine(this.context.stdout, {...event, type: `phase`});
    if (this.human) return (event) => this.writeLine(format(event));
    return undefined;
  }
}
