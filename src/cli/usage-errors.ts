import type {CommandClass} from 'clipanion';
import {levenshteinDistance} from '../config/suggest.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import type {CliContext} from './context.ts';
import type {OptionSpec, RollbridgeCli} from './usage-text.ts';

/** Largest edit distance between a mistyped command or flag and the one suggested. */
const MAX_SUGGESTION_DISTANCE = 2;

type Located = {commandClass: CommandClass<CliContext>; path: string[]};

/**
 * What the command line got wrong, as an ERR_USAGE error (exit 2) with a fix, instead of clipanion's
 * "Command not found" with every command's usage: a missing required flag is named, a mistyped command
 * or flag gets the closest one(s), anything else keeps clipanion's reason and points at the command's help.
 */
export function explainUsageError(error: unknown, argv: string[], cli: RollbridgeCli, commands: ReadonlyArray<CommandClass<CliContext>>): RollbridgeError {
  const located = locateCommand(argv, commands);
  const binary = cli.binaryName;
  if (located === null) return unknownCommand(argv[0] ?? ``, binary, commands);
  const command = `${binary} ${located.path.join(` `)}`;
  const help = `Run "${command} --help" for its options and examples`;
  const helpAside = `("${command} --help" lists every option)`;
  const options = cli.optionsOf(located.commandClass);
  const args = argsOf(argv, located.path);
  const reason = reasonOf(error);
  if (reason === null) {
    const given = new Set(args.map((arg) => arg.split(`=`)[0]));
    const missing = options.filter((option) => option.required && !option.names.some((name) => given.has(name)));
    if (missing.length > 0) {
      const flags = missing.map(longName);
      return new RollbridgeError(ErrorCode.USAGE, `${command} needs ${flags.join(` and `)}`, {
        fix: `Pass ${missing.map((option) => `${longName(option)} ${option.value ?? `<value>`}`).join(` and `)} ${helpAside}`,
        details: {command: located.path.join(` `), missing: flags},
      });
    }
    return new RollbridgeError(ErrorCode.USAGE, `The arguments do not fit ${command}: ${argv.join(` `)}`, {fix: help, details: {command: located.path.join(` `)}});
  }
  const unsupported = /^Unsupported option name \("(.+)"\)/.exec(reason);
  if (unsupported?.[1] !== undefined) {
    const flag = unsupported[1];
    const closest = closestOf(flag, options.flatMap((option) => option.names.filter((name) => name.startsWith(`--`))));
    return new RollbridgeError(ErrorCode.USAGE, `${command} has no option ${flag}`, {
      fix: closest.length > 0 ? `Did you mean ${closest.join(` or `)}? ${helpAside}` : help,
      details: {command: located.path.join(` `), option: flag, suggestions: closest},
    });
  }
  return new RollbridgeError(ErrorCode.USAGE, `${reason.replace(/\.$/, ``)} (${command})`, {fix: help, details: {command: located.path.join(` `)}});
}

/**
 * The value flags given more than once on the command line: clipanion keeps only the last value of an
 * `Option.String`, so such a repeat would silently drop a value. Flags a command accepts several times
 * (`static repeatableOptions`) are left alone.
 */
export function findRepeatedOption(argv: string[], commandClass: CommandClass<CliContext>, cli: RollbridgeCli, binary: string): RollbridgeError | null {
  const located = {commandClass, path: commandClass.paths?.find((path) => path.every((word, index) => argv[index] === word)) ?? []};
  const repeatable = (commandClass as {repeatableOptions?: readonly string[]}).repeatableOptions ?? [];
  const args = argsOf(argv, located.path);
  for (const option of cli.optionsOf(commandClass)) {
    if (!option.takesValue || option.names.some((name) => repeatable.includes(name))) continue;
    const values: string[] = [];
    args.forEach((arg, index) => {
      const [name, inline] = splitInline(arg);
      if (!option.names.includes(name)) return;
      values.push(inline ?? args[index + 1] ?? ``);
    });
    if (values.length > 1) {
      const flag = longName(option);
      const command = `${binary} ${located.path.join(` `)}`;
      return new RollbridgeError(ErrorCode.USAGE, `${flag} was given ${values.length} times (${values.map((value) => JSON.stringify(value)).join(`, `)}); ${command} takes one`, {
        fix: `Pass ${flag} once; run "${command}" once per value`,
        details: {command: located.path.join(` `), option: flag, values},
      });
    }
  }
  return null;
}

function unknownCommand(word: string, binary: string, commands: ReadonlyArray<CommandClass<CliContext>>): RollbridgeError {
  const names = [...new Set(commands.filter((command) => command.usage !== undefined).flatMap((command) => (command.paths ?? []).map((path) => path[0] ?? ``)))].filter((name) => name !== ``);
  const isFlag = word.startsWith(`-`);
  const closest = word === `help` ? [`--help`] : closestOf(word, names.filter((name) => name.startsWith(`-`) === isFlag));
  const subject = isFlag ? `option` : `command`;
  const fix = closest.length > 0
    ? `Did you mean ${closest.map((name) => `"${binary} ${name}"`).join(` or `)}? Run "${binary} --help" for every command`
    : `Run "${binary} --help" for every command`;
  return new RollbridgeError(ErrorCode.USAGE, word === `` ? `No command given` : `Unknown ${subject} "${word}"`, {fix, details: {[subject]: word, suggestions: closest}});
}

/** The candidates closest to `input` within the suggestion distance (ties all kept), or those it is the start of. */
function closestOf(input: string, candidates: string[]): string[] {
  let best = MAX_SUGGESTION_DISTANCE + 1;
  let closest: string[] = [];
  for (const candidate of candidates) {
    const distance = levenshteinDistance(input.toLowerCase(), candidate.toLowerCase());
    if (distance < best) {
      best = distance;
      closest = [candidate];
    } else if (distance === best) {
      closest.push(candidate);
    }
  }
  if (closest.length === 0 && input.length >= 3) closest = candidates.filter((candidate) => candidate.startsWith(input));
  return closest.slice(0, 3);
}

/** The registered command whose path starts argv (the longest one), or null. */
function locateCommand(argv: string[], commands: ReadonlyArray<CommandClass<CliContext>>): Located | null {
  let found: Located | null = null;
  for (const commandClass of commands) {
    for (const path of commandClass.paths ?? []) {
      if (path.length === 0 || !path.every((word, index) => argv[index] === word)) continue;
      if (found === null || path.length > found.path.length) found = {commandClass, path};
    }
  }
  return found;
}

/** The arguments after the command path, up to `--`. */
function argsOf(argv: string[], path: string[]): string[] {
  const args = argv.slice(path.length);
  const end = args.indexOf(`--`);
  return end === -1 ? args : args.slice(0, end);
}

function splitInline(arg: string): [string, string | undefined] {
  const equals = arg.indexOf(`=`);
  return arg.startsWith(`--`) && equals !== -1 ? [arg.slice(0, equals), arg.slice(equals + 1)] : [arg, undefined];
}

/** The reason clipanion gives when every candidate failed for the same one; null when it has none (a required flag is missing). */
function reasonOf(error: unknown): string | null {
  const candidates = (error as {candidates?: Array<{reason: string | null}>}).candidates;
  if (Array.isArray(candidates)) {
    const reason = candidates[0]?.reason ?? null;
    return reason !== null && candidates.every((candidate) => candidate.reason === reason) ? reason : null;
  }
  return error instanceof Error ? error.message : String(error);
}

function longName(option: OptionSpec): string {
  return option.names.find((name) => name.startsWith(`--`)) ?? option.names[0] ?? ``;
}
