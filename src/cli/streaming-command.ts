import {Option} from 'clipanion';
import type {ProgressEvent} from '../control/protocol.ts';
import {BaseCommand} from './base-command.ts';
import {ProgressLines} from './progress-lines.ts';
import {writeJsonLine} from './render.ts';

/** The phases that start a wait: a terminal shows their elapsed time until the next phase ends it. */
const WAIT_PHASES = new Set([`waiting`, `watching`]);

/**
 * A command whose work has phases (deploy, rollback, restart, legacy-takeover): on a terminal each phase
 * is a line as it happens (a wait with a live elapsed time, see ProgressLines); with `--stream` each is an
 * NDJSON line `{"type":"phase",…}` and the result (or error) is the last line.
 */
export abstract class StreamingCommand extends BaseCommand {
  stream = Option.Boolean(`--stream`, false, {description: `With --json (implied): one NDJSON line {"type":"phase",…} per phase as it happens (waits included: "phase":"waiting"), then {"type":"result",…} or {"type":"error",…}`});

  #lines: ProgressLines | null = null;

  override get streaming(): boolean {
    return this.stream;
  }

  /** Where phases go: NDJSON lines with --stream, formatted lines for a human, nowhere otherwise. */
  progressListener(format: (event: ProgressEvent) => string): ((event: ProgressEvent) => void) | undefined {
    if (this.stream) return (event) => writeJsonLine(this.context.stdout, {...event, type: `phase`});
    if (!this.human) return undefined;
    const lines = new ProgressLines(this.context.stdout);
    this.#lines = lines;
    return (event) => lines.write(format(event), WAIT_PHASES.has(event.phase));
  }

  /** A wait the CLI does itself (restart --check-url), shown like the daemon's: on a terminal with a live elapsed time. */
  showWait(text: string): void {
    if (!this.human || this.stream) return;
    this.#lines ??= new ProgressLines(this.context.stdout);
    this.#lines.write(text, true);
  }

  /** A wait line still counting is settled before anything else is printed. */
  override endProgress(): void {
    this.#lines?.end();
  }

  override writeLine(text = ``): void {
    this.endProgress();
    super.writeLine(text);
  }
}
