// Inside the standalone binary, src/main.ts's `import('./cli/cli.ts')` resolves to this module (bundle/esbuild.ts,
// split build): the CLI is the SEA asset CLI_ASSET, compiled with the trained code cache CLI_CACHE_ASSET, so the
// main script (main.ts, `--version`) stays small. ROLLBRIDGE_DEBUG_CODE_CACHE=1 prints whether V8 accepted the
// cache on stderr (the build's smoke test checks it).
import sea from 'node:sea';
import {CLI_ASSET, CLI_CACHE_ASSET, runCliScript} from './cli-script.ts';

// The asset is already wrapped (cli-script.ts): the compiled script's source is the one copy of the text in the heap.
const loaded = runCliScript(readSource(), {filename: `${process.execPath}/${CLI_ASSET}`, cachedData: readCache()});
if (process.env.ROLLBRIDGE_DEBUG_CODE_CACHE === `1`) process.stderr.write(`rollbridge: code cache ${loaded.cache}\n`);

export const runCli = loaded.cli.runCli;

/** The bundle is ASCII only (esbuild.ts), so latin1 gives the same text as UTF-8 without a decoding pass. */
function readSource(): string {
  return Buffer.from(sea.getRawAsset(CLI_ASSET)).toString(`latin1`);
}

function readCache(): Buffer | undefined {
  try {
    return Buffer.from(sea.getRawAsset(CLI_CACHE_ASSET));
  } catch {
    // Built without a cache (another architecture than the build host's): V8 compiles the CLI lazily.
    return undefined;
  }
}
