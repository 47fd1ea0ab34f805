import type {BaseContext} from 'clipanion';

/**
 * How results are printed, from `ROLLBRIDGE_OUTPUT`: `json` = every command as with `--json` (even on a
 * terminal), `human` = human text even when stdout is not a terminal, `auto` (unset) = human text on a
 * terminal, and for the commands rollbridge 0.1 always printed as JSON, JSON when piped. `--json` and
 * `--stream` always win.
 */
export type OutputMode = `auto` | `json` | `human`;

export const OUTPUT_MODES: readonly OutputMode[] = [`auto`, `json`, `human`];

/** What every command receives; the only place besides config/paths.ts that reads the environment. */
export type CliContext = BaseContext & {
  cwd: string;
  env: Record<string, string | undefined>;
  /** Absolute path of the program to re-run for detached daemons (the binary, or node + main.ts). */
  selfCommand: SelfCommand;
  /** `ROLLBRIDGE_OUTPUT` (absent = auto), or null when it holds something else: the command then fails with a usage error. */
  output?: OutputMode | null;
};

/** How to run this rollbridge again: the standalone binary (`standalone`, no args), or node with its flags and main.ts. */
export type SelfCommand = {file: string; args: string[]; standalone: boolean};

export function createProcessContext(): Omit<CliContext, keyof BaseContext> & Partial<BaseContext> {
  return {
    cwd: process.cwd(),
    env: process.env,
    stdin: lazyStdin(),
    stdout: process.stdout,
    stderr: process.stderr,
    selfCommand: getSelfCommand(),
    output: parseOutputMode(process.env.ROLLBRIDGE_OUTPUT),
  };
}

/**
 * `process.stdin`, opened on first use. No command reads its input, and opening fd 0 as a stream when it
 * is /dev/null or a file loads fs streams, FileHandle and readline (~1.5 ms of every start).
 */
function lazyStdin(): NodeJS.ReadStream {
  const stdin = (): NodeJS.ReadStream => process.stdin;
  return new Proxy({} as NodeJS.ReadStream, {
    get: (_target, key) => {
      const value: unknown = Reflect.get(stdin(), key);
      return typeof value === `function` ? (value as (...args: unknown[]) => unknown).bind(stdin()) : value;
    },
    set: (_target, key, value) => Reflect.set(stdin(), key, value),
    has: (_target, key) => Reflect.has(stdin(), key),
  });
}

/** `ROLLBRIDGE_OUTPUT`: unset or empty = auto; case-insensitive; anything else = null. */
export function parseOutputMode(value: string | undefined): OutputMode | null {
  if (value === undefined || value.trim() === ``) return `auto`;
  const mode = value.trim().toLowerCase();
  return (OUTPUT_MODES as readonly string[]).includes(mode) ? mode as OutputMode : null;
}

function getSelfCommand(): SelfCommand {
  // Inside the standalone binary argv[1] is the binary itself (or a virtual path); from the sources it is main.ts.
  const entry = process.argv[1];
  const isStandalone = entry === undefined || entry === process.execPath || !/\.(?:[cm]?[jt]s)$/.test(entry);
  return isStandalone ? {file: process.execPath, args: [], standalone: true} : {file: process.execPath, args: [...process.execArgv, entry], standalone: false};
}
