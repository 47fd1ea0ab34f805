import {Builtins, Cli, UsageError} from 'clipanion';
import type {BaseContext} from 'clipanion';
import type {CliContext} from './context.ts';
import {renderError} from './render.ts';
import {getVersionInfo} from './version.ts';
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
] as const;

export function createCli(): Cli<CliContext> {
  const cli = new Cli<CliContext>({
    binaryLabel: `rollbridge`,
    binaryName: `rollbridge`,
    binaryVersion: getVersionInfo().version,
    enableCapture: false,
  });
  cli.register(Builtins.HelpCommand);
  for (const command of COMMANDS) cli.register(command);
  return cli;
}

/**
 * Parses argv and runs the command. Usage errors (unknown command or flag, bad flag value) exit 2;
 * operational failures exit 1 (rendered by BaseCommand).
 */
export async function runCli(argv: string[], context: Omit<CliContext, keyof BaseContext> & Partial<BaseContext>): Promise<number> {
  const cli = createCli();
  const fullContext = {...Cli.defaultContext, ...context} as CliContext;
  if (argv.length === 0) {
    fullContext.stderr.write(cli.usage(null));
    return 2;
  }
  let command;
  try {
    command = cli.process(argv, fullContext);
  } catch (error) {
    const stream = argv.includes(`--stream`);
    const json = stream || argv.includes(`--json`) || fullContext.output === `json`;
    if (!json) fullContext.stderr.write(cli.error(error));
    // Anything cli.process throws is about the command line (unknown command or flag, missing value).
    else renderError(error instanceof UsageError ? error : new UsageError((error as Error).message), {json, stream, stdout: fullContext.stdout, stderr: fullContext.stderr});
    return 2;
  }
  return cli.run(command, fullContext);
}
