// Temporary projects that install the packed npm tarballs with real pnpm or npm.
import {execFile} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {packNpm} from '../../../integrations/npm/pack.ts';
import type {PackResult} from '../../../integrations/npm/pack.ts';
import {REPO_ROOT} from '../../helpers/run-cli.ts';
import {createTempDir} from '../../helpers/temp-dir.ts';

type After = {after(fn: () => unknown): void};

/** node_modules/.bin of the repo: pnpm (the pinned devDependency) and Node 24. */
export const REPO_BIN = path.join(REPO_ROOT, `node_modules`, `.bin`);

let packed: Promise<PackResult> | null = null;

/** The three tarballs of `npm run pack:npm`, from the built binaries (packed once per test process). */
export function getPackedTarballs(): Promise<PackResult> {
  packed ??= packNpm({outDir: path.join(REPO_ROOT, `bundle`, `npm`)});
  return packed;
}

export type CommandResult = {code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string};

export function runCommand(command: string, args: string[], options: {cwd: string; env?: Record<string, string | undefined>; timeoutMs?: number}): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(command, args, {cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024}, (error, stdout, stderr) => {
      const failure = error as (Error & {code?: unknown; signal?: NodeJS.Signals | null}) | null;
      resolve({code: failure === null ? 0 : typeof failure.code === `number` ? failure.code : null, signal: failure?.signal ?? null, stdout, stderr});
    });
  });
}

export type NpmProject = {dir: string; install: CommandResult; env: Record<string, string | undefined>};

/**
 * A project that depends on the packed `rollbridge` tarball; the platform packages it names in
 * optionalDependencies are pointed at their tarballs with pnpm/npm overrides (they are not on a registry).
 */
export async function createProject(t: After, options: {manager: `pnpm` | `npm`; scripts?: Record<string, string>; installArgs?: string[]}): Promise<NpmProject> {
  const tarballs = await getPackedTarballs();
  const dir = createTempDir(t, `rb-npm-`);
  const overrides = Object.fromEntries(Object.entries(tarballs.platforms).map(([arch, file]) => [`@rollbridge/linux-${arch}`, `file:${file}`]));
  fs.writeFileSync(path.join(dir, `package.json`), JSON.stringify({
    name: `app`,
    version: `1.0.0`,
    private: true,
    scripts: options.scripts ?? {},
    devDependencies: {rollbridge: `file:${tarballs.main}`},
    ...(options.manager === `pnpm` ? {pnpm: {overrides}} : {overrides}),
  }, null, 2));
  // Node 24 and pnpm from the repo first; HOME and the stores inside the project, so nothing is shared with the machine.
  const env = {
    ...process.env,
    PATH: `${REPO_BIN}:${process.env.PATH ?? ``}`,
    HOME: dir,
    npm_config_cache: path.join(dir, `.npm-cache`),
    npm_config_store_dir: path.join(dir, `.pnpm-store`),
    npm_config_update_notifier: `false`,
    ROLLBRIDGE_BIN: undefined,
  };
  const args = options.manager === `pnpm`
    ? [`install`, `--reporter`, `append-only`, ...(options.installArgs ?? [])]
    : [`install`, `--no-audit`, `--no-fund`, ...(options.installArgs ?? [])];
  const install = await runCommand(options.manager === `pnpm` ? path.join(REPO_BIN, `pnpm`) : `npm`, args, {cwd: dir, env, timeoutMs: 170_000});
  if (install.code !== 0) throw new Error(`${options.manager} install failed (${install.code}): ${install.stdout}${install.stderr}`);
  return {dir, install, env};
}

/** pnpm's wording when it refused or skipped dependency build scripts (pnpm 10: a warning, 11+: ERR_PNPM_IGNORED_BUILDS). */
export const IGNORED_BUILDS_PATTERN = /ignored build scripts|approve-builds|ERR_PNPM_IGNORED_BUILDS/i;
