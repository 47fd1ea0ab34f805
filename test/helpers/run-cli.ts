import {execFile} from 'node:child_process';
import path from 'node:path';

export const REPO_ROOT = path.resolve(import.meta.dirname, `..`, `..`);
export const MAIN = path.join(REPO_ROOT, `src`, `main.ts`);

export type CliResult = {code: number; stdout: string; stderr: string; json: () => unknown};

/** Runs the real CLI from the sources (Node 24, type stripping) as a child process. */
export function runCli(args: string[], options: {cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number} = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: {...process.env, ...options.env} as NodeJS.ProcessEnv,
      timeout: options.timeoutMs ?? 60_000,
      maxBuffer: 64 * 1024 * 1024,
    }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === `number` ? error.code : 1) : 0;
      resolve({code, stdout, stderr, json: () => JSON.parse(stdout)});
    });
  });
}
