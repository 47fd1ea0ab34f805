import {Builtins, Cli} from 'clipanion';
import type {BaseContext, CommandClass} from 'clipanion';
import {commandEntriesFor, loadCommands} from './command-registry.ts';
import type {CliContext} from './context.ts';
import {renderError} from './render.ts';
import {explainUsageError, findRepeatedOption} from './usage-errors.ts';
import {RollbridgeCli} from './usage-text.ts';
import {getVersionInfo} from './version.ts';

/**
 * `colors`: whether help may use ANSI colours (runCli decides from the terminal, NO_COLOR and FORCE_COLOR); off by default.
 * `commands`: the command classes to register (`loadCommands()` of command-registry.ts: all of them, or those argv names).
 */
export function createCli(options: {colors?: boolean; commands: ReadonlyArray<CommandClass<CliContext>>}): RollbridgeCli {
  const cli = new RollbridgeCli({
    binaryLabel: `rollbridge`,
    binaryName: `rollbridge`,
    binaryVersion: getVersionInfo().version,
    enableCapture: false,
    enableColors: options.colors ?? false,
  });
  cli.register(Builtins.HelpCommand);
  for (const command of options.commands) cli.register(command);
  return cli;
}

/**
 * Parses argv and runs the command. Usage errors (unknown command or flag, a missing required flag, a
 * bad flag value, a flag given twice that takes one value) exit 2 as ERR_USAGE; operational failures
 * exit 1 (rendered by BaseCommand).
 */
export async function runCli(argv: string[], context: Omit<CliContext, keyof BaseContext> & Partial<BaseContext>): Promise<number> {
  const fullContext = {...Cli.defaultContext, ...context} as CliContext;
  const commands = await loadCommands(commandEntriesFor(argv));
  const cli = createCli({colors: useColors(fullContext), commands});
  if (argv.length === 0) {
    fullContext.stderr.write(cli.usage(null));
    return 2;
  }
  const stream = argv.includes(`--stream`);
  const json = stream || argv.includes(`--json`) || fullContext.output === `json`;
  const output = {json, stream, stdout: fullContext.stdout, stderr: fullContext.stderr};
  let command;
  try {
    command = cli.process(argv, fullContext);
  } catch (error) {
    // Anything cli.process throws is about the command line (unknown command or flag, missing value).
    return renderError(explainUsageError(error, argv, cli, commands), output);
  }
  const commandClass = command.constructor as CommandClass<CliContext>;
  const repeated = commands.includes(commandClass) ? findRepeatedOption(argv, commandClass, cli, cli.binaryName) : null;
  if (repeated !== null) return renderError(repeated, output);
  return cli.run(command, fullContext);
}

/**
 * ANSI colours in help only on a terminal: NO_COLOR (any value) turns them off, FORCE_COLOR turns them on
 * (off for `0` or `false`), as most command-line tools do.
 */
export function useColors(context: Pick<CliContext, `env` | `stdout`>): boolean {
  const {NO_COLOR: noColor, FORCE_COLOR: forceColor} = context.env;
  if (noColor !== undefined && noColor !== ``) return false;
  if (forceColor !== undefined) return forceColor !== `0` && forceColor !== `false`;
  return Boolean((context.stdout as {isTTY?: boolean}).isTTY);
}
