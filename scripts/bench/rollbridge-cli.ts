// Which rollbridge the benchmark drives: the standalone binary when it has been built (copied into the
// bench's work directory, so a concurrent `npm run build` cannot swap it mid-run), else the sources run
// by this Node.
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {spawnTracked} from './tracked-children.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, `..`, `..`);
const BINARY = path.join(REPO_ROOT, `bundle`, `rollbridge-linux-x64`);
const MAIN = path.join(REPO_ROOT, `src`, `main.ts`);

export type RollbridgeCli = {
  kind: `binary` | `sources`;
  /** Executable and leading arguments. */
  file: string;
  prefixArgs: string[];
  /** What `--version` printed. */
  version: string;
  /** For the report: which program ran. */
  description: string;
};

export type CliRun = {code: number; stdout: string; stderr: string; wallMs: number; startedAt: number};

export function resolveRollbridgeCli(workDir: string, options: {sources?: boolean} = {}): RollbridgeCli {
  const binaryExists = fs.existsSync(BINARY) && (fs.statSync(BINARY).mode & 0o111) !== 0;
  if (binaryExists && !options.sources) {
    const copy = path.join(workDir, `rollbridge`);
    fs.copyFileSync(BINARY, copy);
    fs.chmodSync(copy, 0o755);
    const version = execFileSync(copy, [`--version`], {encoding: `utf8`}).trim();
    return {kind: `binary`, file: copy, prefixArgs: [], version, description: `the standalone binary bundle/rollbridge-linux-x64 (${version})`};
  }
  const version = execFileSync(process.execPath, [MAIN, `--version`], {encoding: `utf8`}).trim();
  const why = options.sources ? `--sources` : `bundle/rollbridge-linux-x64 is not built`;
  return {kind: `sources`, file: process.execPath, prefixArgs: [MAIN], version, description: `the sources (node src/main.ts, Node ${process.version}; ${why}) (${version})`};
}

/** Runs one CLI command; `wallMs` is measured around the process, from spawn to exit. */
export function runRollbridge(cli: RollbridgeCli, args: string[], options: {cwd: string; timeoutMs?: number}): Promise<CliRun> {
  return new Promise((resolve) => {
    const startedAt = Date.now();
    const start = performance.now();
    const child = spawnTracked(cli.file, [...cli.prefixArgs, ...args], {cwd: options.cwd, env: cliEnv(), stdio: [`ignore`, `pipe`, `pipe`]});
    let stdout = ``;
    let stderr = ``;
    let wallMs = Number.NaN;
    child.stdout!.setEncoding(`utf8`).on(`data`, (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding(`utf8`).on(`data`, (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill(`SIGKILL`), options.timeoutMs ?? 60_000);
    child.once(`exit`, () => (wallMs = performance.now() - start));
    child.once(`error`, (error) => {
      clearTimeout(timer);
      resolve({code: -1, stdout, stderr: `${stderr}${error.message}`, wallMs: performance.now() - start, startedAt});
    });
    child.once(`close`, (code, signal) => {
      clearTimeout(timer);
      resolve({code: code ?? (signal ? 128 : -1), stdout, stderr: signal ? `${stderr}killed by ${signal}` : stderr, wallMs, startedAt});
    });
  });
}

export function cliEnv(): NodeJS.ProcessEnv {
  const env = {...process.env};
  delete env.NODE_OPTIONS;
  return env;
}
