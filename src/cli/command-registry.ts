import type {CommandClass} from 'clipanion';
import type {CliContext} from './context.ts';

/** One command of the CLI, known by its paths before its module is loaded. */
export type CommandEntry = {
  /** Its file in src/cli/commands/ (test/cli/command-registry.test.ts checks every file is listed once). */
  file: string;
  /** The class's `static paths`, repeated here so a run can pick its command without loading the others (the test checks they agree). */
  paths: ReadonlyArray<readonly string[]>;
  /** Loads the module and returns the command class. */
  load: () => Promise<CommandClass<CliContext>>;
};

/**
 * Every command, in the order help lists them. A run loads only the command it names: evaluating all
 * 20 command modules (with the takeover, deploy and doctor code and node:crypto behind them) was most of
 * the start-up of `status`. Each `import()` has a literal specifier, so esbuild keeps the module in the
 * single-file bundle and evaluates it only when `load()` is called.
 */
export const COMMAND_REGISTRY: readonly CommandEntry[] = [
  {file: `daemon.ts`, paths: [[`daemon`]], load: async () => (await import('./commands/daemon.ts')).DaemonCommand},
  {file: `ensure-daemon.ts`, paths: [[`ensure-daemon`]], load: async () => (await import('./commands/ensure-daemon.ts')).EnsureDaemonCommand},
  {file: `deploy.ts`, paths: [[`deploy`]], load: async () => (await import('./commands/deploy.ts')).DeployCommand},
  {file: `rollback.ts`, paths: [[`rollback`]], load: async () => (await import('./commands/rollback.ts')).RollbackCommand},
  {file: `restart.ts`, paths: [[`restart`]], load: async () => (await import('./commands/restart.ts')).RestartCommand},
  {file: `stop.ts`, paths: [[`stop`]], load: async () => (await import('./commands/stop.ts')).StopCommand},
  {file: `shutdown.ts`, paths: [[`shutdown`]], load: async () => (await import('./commands/shutdown.ts')).ShutdownCommand},
  {file: `status.ts`, paths: [[`status`]], load: async () => (await import('./commands/status.ts')).StatusCommand},
  {file: `logs.ts`, paths: [[`logs`]], load: async () => (await import('./commands/logs.ts')).LogsCommand},
  {file: `events.ts`, paths: [[`events`]], load: async () => (await import('./commands/events.ts')).EventsCommand},
  {file: `pause.ts`, paths: [[`pause`]], load: async () => (await import('./commands/pause.ts')).PauseCommand},
  {file: `resume.ts`, paths: [[`resume`]], load: async () => (await import('./commands/resume.ts')).ResumeCommand},
  {file: `maintenance.ts`, paths: [[`maintenance`]], load: async () => (await import('./commands/maintenance.ts')).MaintenanceCommand},
  {file: `predeploy-cleanup.ts`, paths: [[`predeploy-cleanup`]], load: async () => (await import('./commands/predeploy-cleanup.ts')).PredeployCleanupCommand},
  {file: `recover.ts`, paths: [[`recover`]], load: async () => (await import('./commands/recover.ts')).RecoverCommand},
  {file: `legacy-takeover.ts`, paths: [[`legacy-takeover`]], load: async () => (await import('./commands/legacy-takeover.ts')).LegacyTakeoverCommand},
  {file: `validate.ts`, paths: [[`validate`]], load: async () => (await import('./commands/validate.ts')).ValidateCommand},
  {file: `doctor.ts`, paths: [[`doctor`]], load: async () => (await import('./commands/doctor.ts')).DoctorCommand},
  {file: `verify.ts`, paths: [[`verify`]], load: async () => (await import('./commands/verify.ts')).VerifyCommand},
  {file: `completion.ts`, paths: [[`completion`]], load: async () => (await import('./commands/completion.ts')).CompletionCommand},
  {file: `version.ts`, paths: [[`--version`], [`-v`], [`version`]], load: async () => (await import('./commands/version.ts')).VersionCommand},
  {file: `verify-app.ts`, paths: [[`__verify-app`]], load: async () => (await import('./commands/verify-app.ts')).VerifyAppCommand},
  {file: `complete-processes.ts`, paths: [[`__complete-processes`]], load: async () => (await import('./commands/complete-processes.ts')).CompleteProcessesCommand},
];

/**
 * The commands `argv` can name: those whose path begins with argv[0], else all of them. Clipanion
 * compiles one parser state machine of every registered command on each run, and each command module
 * costs its evaluation; a run that names its command parses (and reports a bad flag) the same way with
 * that command alone. Without a command name (no argument, `--help`, a typo) every command is
 * registered, so the usage and the suggestions list them all; `completion` lists every command.
 */
export function commandEntriesFor(argv: readonly string[]): readonly CommandEntry[] {
  const head = argv[0];
  if (head === undefined || head === `completion`) return COMMAND_REGISTRY;
  const named = COMMAND_REGISTRY.filter((entry) => entry.paths.some((path) => path[0] === head));
  return named.length > 0 ? named : COMMAND_REGISTRY;
}

/** Loads the command classes of `entries` (every command by default), in registry order. */
export function loadCommands(entries: readonly CommandEntry[] = COMMAND_REGISTRY): Promise<Array<CommandClass<CliContext>>> {
  return Promise.all(entries.map((entry) => entry.load()));
}
