import type {BaseContext} from 'clipanion';

/** What every command receives; the only place besides config/paths.ts that reads the environment. */
export type CliContext = BaseContext & {
  cwd: string;
  env: Record<string, string | undefined>;
  /** Absolute path of the program to re-run for detached daemons (the binary, or node + main.ts). */
  selfCommand: {file: string; args: string[]};
};

export function createProcessContext(): Omit<CliContext, keyof BaseContext> & Partial<BaseContext> {
  return {
    cwd: process.cwd(),
    env: process.env,
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    selfCommand: getSelfCommand(),
  };
}

function getSelfCommand(): {file: string; args: string[]} {
  // Inside the standalone binary argv[1] is the binary itself (or a virtual path); from the sources it is main.ts.
  const entry = process.argv[1];
  const isStandalone = entry === undefined || entry === process.execPath || !/\.(?:[cm]?[jt]s)$/.test(entry);
  return isStandalone ? {file: process.execPath, args: []} : {file: process.execPath, args: [...process.execArgv, entry]};
}
