// The real rollbridge 0.1.21 (the JavaScript tool this project replaces), from the fixture tarball in
// ../shared/fixtures (or ROLLBRIDGE_01_TARBALL), installed with npm into a temp dir. Where the tarball is
// absent, or npm cannot install its two dependencies, the test is skipped saying so.
import {execFile} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {REPO_ROOT} from './run-cli.ts';

export const TARBALL_NAME = `rollbridge-0.1.21.tgz`;

/** The tarball's path, or null when neither ROLLBRIDGE_01_TARBALL nor ../shared/fixtures has it. */
export function findTarball(): string | null {
  const candidates = [process.env.ROLLBRIDGE_01_TARBALL, path.resolve(REPO_ROOT, `..`, `shared`, `fixtures`, TARBALL_NAME)];
  return candidates.find((candidate) => candidate !== undefined && candidate !== `` && fs.existsSync(candidate)) ?? null;
}

export type Rollbridge01 = {
  /** `node_modules/rollbridge/bin/rollbridge` of the installation. */
  bin: string;
  /** Runs the 0.1 CLI with this Node (0.1 runs on Node 20 or 24). */
  run(args: string[], options: {cwd: string; timeoutMs?: number}): Promise<{code: number; stdout: string; stderr: string}>;
};

/** Installs 0.1.21 into `dir`; returns it, or the reason it cannot be had (for t.skip). */
export async function installRollbridge01(dir: string): Promise<Rollbridge01 | {skip: string}> {
  const tarball = findTarball();
  if (tarball === null) {
    return {skip: `the rollbridge 0.1.21 fixture is absent (set ROLLBRIDGE_01_TARBALL or put ${TARBALL_NAME} in ../shared/fixtures)`};
  }
  fs.mkdirSync(dir, {recursive: true});
  fs.writeFileSync(path.join(dir, `package.json`), `{"private": true}\n`);
  const npm = await runFile(`npm`, [`install`, `--omit=dev`, `--no-audit`, `--no-fund`, `--loglevel=error`, tarball], {cwd: dir, timeoutMs: 180_000});
  const bin = path.join(dir, `node_modules`, `rollbridge`, `bin`, `rollbridge`);
  if (npm.code !== 0 || !fs.existsSync(bin)) {
    return {skip: `npm install of ${tarball} failed (exit ${npm.code}): ${(npm.stderr || npm.stdout).trim().split(`\n`).slice(-3).join(` `)}`};
  }
  return {
    bin,
    run: (args, options) => runFile(process.execPath, [bin, ...args], options),
  };
}

export function runFile(file: string, args: string[], options: {cwd: string; env?: Record<string, string | undefined>; timeoutMs?: number}): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    execFile(file, args, {cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, stdout, stderr});
    });
  });
}
