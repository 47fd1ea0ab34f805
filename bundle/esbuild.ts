import fs from 'node:fs';
import path from 'node:path';
import {build} from 'esbuild';
import type {Message, Plugin} from 'esbuild';
import {buildFailure} from './build-failure.ts';

export type BundleOptions = {
  /** The CLI entry, e.g. `src/main.ts`. */
  entry: string;
  /** Where the single CommonJS file is written (its directory is created). */
  outfile: string;
  /** Short git commit baked in as `__ROLLBRIDGE_COMMIT__`. */
  commit: string;
  /** The rollbridge version baked in as `__ROLLBRIDGE_VERSION__` (only it: package.json is not bundled). */
  version: string;
  /** esbuild target, the exact Node the binary embeds, e.g. `node24.21.0`. */
  target: string;
  /** @default false */
  minify?: boolean;
  /**
   * Split build: the module that replaces `./cli/cli.ts` where the entry imports it (bundle/sea-cli.ts, which
   * runs the CLI from a second script in the binary). The CLI itself is then bundled on its own (entry src/cli/cli.ts).
   */
  cliLoader?: string;
};

export type BundleResult = {outfile: string; bytes: number; durationMs: number; warnings: string[]};

/**
 * Bundles the CLI and every dependency into ONE CommonJS file for a simple SEA: nothing is
 * loaded from disk at run time, so the binary needs neither node_modules nor a virtual file system.
 */
export async function bundleCli(options: BundleOptions): Promise<BundleResult> {
  const startedAt = performance.now();
  const outfile = path.resolve(options.outfile);
  fs.mkdirSync(path.dirname(outfile), {recursive: true});
  let result;
  try {
    result = await build({
      entryPoints: [path.resolve(options.entry)],
      outfile,
      bundle: true,
      platform: `node`,
      target: options.target,
      format: `cjs`,
      minify: options.minify ?? false,
      // Whitespace and comments only (names and syntax stay as written): the script's text is held by every
      // process (in the heap for lazy compilation, and as the binary's pages it was read from), so the
      // 1.29 MB CLI script at 0.97 MB is 0.6 MB less RSS in each, the daemon's included.
      minifyWhitespace: true,
      sourcemap: false,
      legalComments: `none`,
      logLevel: `silent`,
      define: {__ROLLBRIDGE_COMMIT__: JSON.stringify(options.commit), __ROLLBRIDGE_VERSION__: JSON.stringify(options.version)},
      // import.meta is empty in CommonJS output: fail the build instead of shipping a binary that breaks at run time.
      logOverride: {'empty-import-meta': `error`},
      plugins: [clipanionWithoutStdin(), ...options.cliLoader === undefined ? [] : [replaceCliImport(path.resolve(options.entry), path.resolve(options.cliLoader))]],
    });
  } catch (error) {
    throw toBuildFailure(error);
  }
  asciiOnly(outfile);
  shareEsmWrappers(outfile);
  return {outfile, bytes: fs.statSync(outfile).size, durationMs: performance.now() - startedAt, warnings: result.warnings.map(formatMessage)};
}

/**
 * clipanion's Cli.js reads `process.stdin` when it loads (its `Cli.defaultContext`), and Node opens fd 0 as
 * a stream then: when fd 0 is /dev/null or a file (CI runners, Ansible, systemd), that loads fs streams,
 * FileHandle and readline, ~1.5 ms of every command's start and 0.2 MB of the daemon's RSS. No command reads
 * its input, and every run passes its own context with a stdin opened on first use (src/cli/context.ts),
 * so the default stays undefined. The build fails if clipanion's text is not the one this expects.
 */
function clipanionWithoutStdin(): Plugin {
  const eager = `    stdin: process.stdin,\n`;
  return {
    name: `rollbridge-clipanion-stdin`,
    setup(pluginBuild) {
      pluginBuild.onLoad({filter: /[\\/]clipanion[\\/]lib[\\/]advanced[\\/]Cli\.js$/}, (args) => {
        const source = fs.readFileSync(args.path, `utf8`);
        if (source.split(eager).length !== 2) {
          throw buildFailure(`clipanion's ${args.path} no longer sets Cli.defaultContext.stdin as expected`, {fix: `Check the clipanion upgrade: bundle/esbuild.ts clipanionWithoutStdin() replaces its one "stdin: process.stdin" line`});
        }
        return {contents: source.replace(eager, `    stdin: undefined,\n`), loader: `js`};
      });
    },
  };
}

/** Resolves the entry's `import('./cli/cli.ts')` to `loader`; every other import (the CLI's own included) resolves as usual. */
function replaceCliImport(entry: string, loader: string): Plugin {
  return {
    name: `rollbridge-sea-cli`,
    setup(pluginBuild) {
      pluginBuild.onResolve({filter: /^\.\/cli\/cli\.ts$/}, (args) => (args.importer === entry ? {path: loader} : undefined));
    },
  };
}

/**
 * esbuild escapes every non-ASCII character of strings, templates and regular expressions, but keeps
 * the comments it leaves (doc comments of class members) as written. One `→` in a comment makes V8 hold
 * the whole ~1 MB script as a two-byte string: 2.1 MB of heap in every process, the daemon's included.
 * Only lines that are comment text (starting with `//`, `/*` or `*`) are rewritten, where a `\uXXXX`
 * spelling changes nothing; a non-ASCII character anywhere else is left as it is.
 */
function asciiOnly(outfile: string): void {
  const source = fs.readFileSync(outfile, `utf8`);
  if (!/[^\t\n\r\x20-\x7e]/.test(source)) return;
  const lines = source.split(`\n`).map((line) => (/^\s*(?:\/\/|\/\*|\*)/.test(line) ? line.replace(/[^\t\n\r\x20-\x7e]/gu, (char) => `\\u${char.codePointAt(0)!.toString(16).padStart(4, `0`)}`) : line));
  fs.writeFileSync(outfile, lines.join(`\n`));
}

function toBuildFailure(error: unknown): Error {
  const errors = (error as {errors?: Message[]}).errors;
  if (!Array.isArray(errors) || errors.length === 0) return error as Error;
  const hasTopLevelAwait = errors.some(message => /top-level await/i.test(message.text));
  let fix = `Fix the import or syntax at the location above; \`npm run typecheck\` shows the same problem`;
  if (hasTopLevelAwait) fix = `Replace the top-level await in the entry with a promise chain, e.g. \`void runCli(argv, context).then(code => { process.exitCode = code; })\`: the SEA bundle is CommonJS`;
  return buildFailure(`esbuild could not bundle the CLI (${errors.length} error${errors.length === 1 ? `` : `s`}): ${errors.map(formatMessage).join(`; `)}`, {
    fix,
    cause: error,
  });
}

function formatMessage(message: Message): string {
  return message.location ? `${message.location.file}:${message.location.line}:${message.location.column}: ${message.text}` : message.text;
}

/**
 * esbuild turns each `import fs from 'node:fs'` into its own `__toESM(require("node:fs"), 1)`: a new object
 * with one getter closure per property of the module (about 100 for node:fs), in every one of the ~100
 * modules that import a built-in. The same module and mode now get the same object, as an ESM namespace
 * is one object for all its importers: ~4,500 closures and their accessors less in every process's heap,
 * and less start-up work. esbuild's helper is renamed and called once per (module, mode).
 */
function shareEsmWrappers(outfile: string): void {
  const source = fs.readFileSync(outfile, `latin1`);
  const helpers = source.match(/\bvar __toESM ?= ?/g) ?? [];
  if (helpers.length === 0) return;
  if (helpers.length !== 1) throw buildFailure(`esbuild's __toESM helper is defined ${helpers.length} times in ${outfile}`, {fix: `Check the esbuild output: bundle/esbuild.ts shareEsmWrappers() expects one helper`});
  const shared = `var __toESMShared=[new WeakMap,new WeakMap];var __toESM=(mod,isNodeMode)=>{if(mod==null||typeof mod!=="object"&&typeof mod!=="function")return __toESMFresh(mod,isNodeMode);var seen=__toESMShared[isNodeMode?1:0],wrapper=seen.get(mod);if(wrapper===void 0)seen.set(mod,wrapper=__toESMFresh(mod,isNodeMode));return wrapper};var __toESMFresh=`;
  fs.writeFileSync(outfile, source.replace(/\bvar __toESM ?= ?/, () => shared), `latin1`);
}
