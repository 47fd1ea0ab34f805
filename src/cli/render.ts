import {UsageError} from 'clipanion';
import {isRollbridgeError, toWireError} from '../errors/rollbridge-error.ts';
import type {WireError} from '../errors/rollbridge-error.ts';

type Writable = {write(chunk: string): unknown; isTTY?: boolean};

export const ExitCode = {OK: 0, FAILED: 1, USAGE: 2} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export function writeJson(stream: Writable, value: unknown): void {
  stream.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function writeJsonLine(stream: Writable, value: unknown): void {
  stream.write(`${JSON.stringify(value)}\n`);
}

export function formatErrorText(wire: WireError): string {
  let text = `error ${wire.code}: ${wire.message}\n`;
  text += formatOutputTail(wire.details);
  if (wire.fix) text += `  fix: ${wire.fix}\n`;
  return text;
}

/**
 * `details.output` (the last output lines of a process or hook that failed) as an indented block, so a
 * terminal shows why a release did not boot; empty when there is none.
 */
function formatOutputTail(details: Record<string, unknown> | undefined): string {
  const output = details?.output;
  if (!Array.isArray(output) || output.length === 0) return ``;
  const lines = output.filter((line): line is string => typeof line === `string`);
  const of = typeof details?.processId === `string` ? `process ${details.processId}` : typeof details?.hook === `string` ? `hooks.${details.hook}` : `the process`;
  return `  last ${plural(lines.length, `line`)} of output of ${of}:\n${lines.map((line) => `    | ${line}\n`).join(``)}`;
}

/**
 * Renders any thrown value once, the way the CLI shows errors, and returns the exit code to use:
 * `{"error":{…}}` with --json, the last NDJSON line `{"type":"error","error":{…}}` with --stream.
 */
export function renderError(error: unknown, options: {json: boolean; stream?: boolean; stdout: Writable; stderr: Writable; verbose?: boolean}): ExitCode {
  if (error instanceof UsageError) {
    const wire: WireError = {code: `ERR_USAGE`, message: error.message, fix: `Run the command with --help to see its options and examples`};
    if (options.stream) writeJsonLine(options.stdout, {type: `error`, error: wire});
    else if (options.json) writeJson(options.stdout, {error: wire});
    else options.stderr.write(formatErrorText(wire));
    return ExitCode.USAGE;
  }
  const wire = toWireError(error);
  if (options.stream) {
    writeJsonLine(options.stdout, {type: `error`, error: wire});
  } else if (options.json) {
    writeJson(options.stdout, {error: wire});
  } else {
    options.stderr.write(formatErrorText(wire));
    if (!isRollbridgeError(error) && error instanceof Error) {
      options.stderr.write(`${error.stack ?? error.message}\nThis is a bug in rollbridge: please report it with the output above.\n`);
    } else if (options.verbose && error instanceof Error && error.stack) {
      options.stderr.write(`${error.stack}\n`);
    }
  }
  return wire.code === `ERR_USAGE` ? ExitCode.USAGE : ExitCode.FAILED;
}

/** `1 process`, `0 processes`, `2 processes`: real plurals, as rollbridge 0.1 printed them (scripts grep these lines). */
/** Text that came from a managed process (an error it caused, its STATUS=), with control characters shown as `?`: no escape sequence reaches the terminal. */
export function terminalSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, `?`);
}

export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

/** A small text table (status on a TTY). */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((cell, index) => Math.max(cell.length, ...rows.map((row) => (row[index] ?? ``).length)));
  const line = (cells: string[]) => cells.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join(`  `).trimEnd();
  return [line(header), ...rows.map(line)].join(`\n`);
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return `-`;
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  const seconds = ms / 1_000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${Math.floor(seconds % 60)}s`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours}h${minutes % 60}m` : `${Math.floor(hours / 24)}d${hours % 24}h`;
}
