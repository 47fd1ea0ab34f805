import fs from 'node:fs';
import path from 'node:path';
import {build} from 'esbuild';

export type BundleOptions = {
  /** The CLI entry, e.g. `src/main.ts`. */
  entry: string;
  /** Where the single CommonJS file is written (its directory is created). */
  outfile: string;
  /** Short git commit baked in as `__ROLLBRIDGE_COMMIT__`. */
  commit: string;
  /** esbuild target, the exact Node the binary embeds, e.g. `node24.21.0`. */
  target: string;
  /** @default false */
  minify?: boolean;
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
  const result = await build({
    entryPoints: [path.resolve(options.entry)],
    outfile,
    bundle: true,
    platform: `node`,
    target: options.target,
    format: `cjs`,
    minify: options.minify ?? false,
    sourcemap: false,
    legalComments: `none`,
    logLevel: `silent`,
    define: {__ROLLBRIDGE_COMMIT__: JSON.stringify(options.commit)},
    // import.meta is empty in CommonJS output: fail the build instead of shipping a binary that breaks at run time.
    logOverride: {'empty-import-meta': `error`},
  });
  const warnings = result.warnings.map(warning => `${warning.text}${warning.location ? ` (${warning.location.file}:${warning.location.line})` : ``}`);
  return {outfile, bytes: fs.statSync(outfile).size, durationMs: performance.now() - startedAt, warnings};
}
