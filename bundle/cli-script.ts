// The CLI as a second script of the standalone binary, compiled with a V8 code cache made by a training run.
// Node's own SEA code cache (`useCodeCache`) is made by compiling the main script without running it, so it
// holds the top-level code only: every function a command calls was compiled again on every start. A cache
// made after the CLI ran (vm.Script#createCachedData) also holds the functions compiled during the run.
// Shared by the loader inside the binary (sea-cli.ts) and the build's training run (train-code-cache.ts):
// the cache is accepted only for the very same source text, so both compile the asset's text as it is.
import {createRequire} from 'node:module';
import vm from 'node:vm';
import type {runCli} from '../src/cli/cli.ts';

/** SEA asset keys (pkg-sea-child.ts `--asset`): the CLI bundle and its code cache. */
export const CLI_ASSET = `rollbridge-cli.cjs`;
export const CLI_CACHE_ASSET = `rollbridge-cli.cache`;

/** What the CLI bundle (entry src/cli/cli.ts, CommonJS) exports. */
export type CliModule = {runCli: typeof runCli};

export type CliScript = {cli: CliModule; script: vm.Script; cache: `absent` | `accepted` | `rejected`};

/**
 * The CLI bundle as the SEA asset holds it: a CommonJS module wrapper around the bundle, written so at build time
 * so that the binary compiles the asset's text as it is (a concatenation at run time would be one more 1.2 MB
 * string in every process's heap, the daemon's included).
 */
export function wrapCommonJs(source: string): string {
  return `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
}

/**
 * Compiles and runs `wrapped` (wrapCommonJs of the CommonJS bundle) as a module whose `require` loads Node's
 * built-ins (all the bundle requires). A rejected cache (another Node, other V8 flags such as a NODE_OPTIONS
 * heap size) only costs the compile time: V8 compiles the source as if there were none.
 */
export function runCliScript(wrapped: string, options: {filename: string; cachedData?: Buffer | undefined}): CliScript {
  const script = new vm.Script(wrapped, {
    filename: options.filename,
    ...options.cachedData === undefined ? {} : {cachedData: options.cachedData},
    // The config loader import()s an ESM config file (and node:crypto, node:child_process) with the main
    // context's loader, as from any module. (A callback function instead needs --experimental-vm-modules.)
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  silenceLoaderWarning();
  const module = {exports: {} as Record<string, unknown>};
  const wrapper = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string) => void;
  wrapper(module.exports, createRequire(options.filename), module, options.filename, ``);
  const cache = options.cachedData === undefined ? `absent` : script.cachedDataRejected === true ? `rejected` : `accepted`;
  return {cli: module.exports as CliModule, script, cache};
}

const LOADER_WARNING = `vm.USE_MAIN_CONTEXT_DEFAULT_LOADER is an experimental feature`;

/**
 * Node prints "ExperimentalWarning: vm.USE_MAIN_CONTEXT_DEFAULT_LOADER is an experimental feature…" on stderr
 * the first time such a script imports (a JS config file): an implementation detail of the binary, not
 * something its user can act on, and output the CLI did not print before. Only that warning is dropped.
 */
function silenceLoaderWarning(): void {
  const emitWarning = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]): void {
    if ((typeof warning === `string` ? warning : warning.message).startsWith(LOADER_WARNING)) return;
    (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
}
