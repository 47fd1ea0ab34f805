import {Builtins, Cli} from 'clipanion';
import type {BaseContext, CommandClass} from 'clipanion';
import type {CliContext} from './context.ts';
import {renderError} from './render.ts';
import {explainUsageError, findRepeatedOption} from './usage-errors.ts';
import {RollbridgeCli} from './usage-text.ts';
import {getVersionInfo} from './version.ts';
import {CompleteProcessesCommand} from './commands/complete-processes.ts';
import {CompletionCommand} from './commands/completion.ts';
import {DaemonCommand} from './commands/daemon.ts';
import {DeployCommand} from './commands/deploy.ts';
import {DoctorCommand} from './commands/doctor.ts';
import {EnsureDaemonCommand} from './commands/ensure-daemon.ts';
import {EventsCommand} from './commands/events.ts';
import {LegacyTakeoverCommand} from './commands/legacy-takeover.ts';
import {LogsCommand} from './commands/logs.ts';
import {PredeployCleanupCommand} from './commands/predeploy-cleanup.ts';
import {RecoverCommand} from './commands/recover.ts';
import {RestartCommand} from './commands/restart.ts';
import {RollbackCommand} from './commands/rollback.ts';
import {ShutdownCommand} from './commands/shutdown.ts';
import {StatusCommand} from './commands/status.ts';
import {StopCommand} from './commands/stop.ts';
import {ValidateCommand} from './commands/validate.ts';
import {VerifyAppCommand} from './commands/verify-app.ts';
import {VerifyCommand} from './commands/verify.ts';
import {VersionCommand} from './commands/version.ts';

/** Every command, in the order help lists them. Shared by main.ts, tests and the docs generator. */
export const COMMANDS = [
  DaemonCommand,
  EnsureDaemonCommand,
  DeployCommand,
  RollbackCommand,
  RestartCommand,
  StopCommand,
  ShutdownCommand,
  StatusCommand,
  LogsCommand,
  EventsCommand,
  PredeployCleanupCommand,
  RecoverCommand,
  LegacyTakeoverCommand,
  ValidateCommand,
  DoctorCommand,
  VerifyCommand,
  CompletionCommand,
  VersionCommand,
  VerifyAppCommand,
  CompleteProcessesCommand,
] as const;

/**
 * `colors`: whether help may use ANSI colours (runCli decides from the terminal, NO_COLOR and FORCE_COLOR); off by default.
 * `commands`: the commands to register (all by default; runCli passes commandsFor(argv)).
 */
export function createCli(options: {colors?: boolean; commands?: ReadonlyArray<typeof COMMANDS[number]>} = {}): RollbridgeCli {
  const cli = new RollbridgeCli({
    binaryLabel: `rollbridge`,
    binaryName: `rollbridge`,
    binaryVersion: getVersionInfo().version,
    enableCapture: false,
    enableColors: options.colors ?? false,
  });
  cli.register(Builtins.HelpCommand);
  for (const command of options.commands ?? COMMANDS) cli.register(command);
  return cli;
}

/**
 * The commands `argv` can name: those whose path begins with argv[0], else all of them. Clipanion
 * compiles one parser state machine of every registered command on each run, which was most of the
 * start-up of `status`; a run that names its command parses (and reports a bad flag) the same way
 * with that command alone. Without a command name (no argument, `--help`, a typo) every command is
 * registered, so the usage and the suggestions list them all; `completion` lists every command.
 */
export function commandsFor(argv: readonly string[]): ReadonlyArray<typeof COMMANDS[number]> {
  const head = argv[0];
  if (head === undefined || head === `completion`) return COMMANDS;
  const named = COMMANDS.filter((command) => command.paths.some((path) => path[0] === head));
  return named.length > 0 ? named : COMMANDS;
}

/**
 * Parses argv and runs the command. Usage errors (unknown command or flag, a missing required flag, a
 * bad flag value, a flag given twice that takes one value) exit 2 as ERR_USAGE; operational failures
 * exit 1 (rendered by BaseCommand).
 */
export async function runCli(argv: string[], context: Omit<CliContext, keyof BaseContext> & Partial<BaseContext>): Promise<number> {
  const fullContext = {...Cli.defaultContext, ...context} as CliContext;
  const cli = createCli({colors: useColors(fullContext), commands: commandsFor(argv)});
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
    return renderError(explainUsageError(error, argv, cli, COMMANDS), output);
  }
  const commandClass = command.constructor as CommandClass<CliContext>;
  const repeated = (COMMANDS as ReadonlyArray<CommandClass<CliContext>>).includes(commandClass) ? findRepeatedOption(argv, commandClass, cli, cli.binaryName) : null;
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
