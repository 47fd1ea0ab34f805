// Child process of runPkgSea (pkg-sea.ts) for builds with V8's code cache: pkg 6.23's CLI cannot pass
// `seaConfig` to its simple SEA builder, so this calls that builder (lib-es5/sea.js, verified in
// /work/shared/notes/binary-build.md) with `useCodeCache: true`. Same arguments as the pkg CLI:
//   <entry> --sea --target node<x.y.z>-linux-<x64|arm64> --output <absolute path> [--asset <key>=<file>]...
// plus the SEA assets of a split build (the CLI script and its trained code cache, see cli-script.ts).
// The code cache skips compiling the bundle at every start (~15 ms of `rollbridge --version`). It is
// made by the build host's Node, so only a target of the host's own architecture gets it: Node's SEA docs
// (single-executable-applications.md, "cross-platform SEAs") say a code cache loads only on the platform
// it was compiled on and may crash the binary elsewhere.
import {createRequire} from 'node:module';
import {parseArgs, promisify} from 'node:util';
import {SEA_EXEC_ARGV} from './pkg-sea.ts';

type SeaBuilder = (entry: string, options: {
  targets: Array<{nodeRange: string; platform: string; arch: string; output: string}>;
  seaConfig: {useCodeCache: boolean; useSnapshot: boolean; disableExperimentalSEAWarning: boolean; execArgv: string[]; assets: Record<string, string>};
}) => Promise<void>;

/**
 * V8 takes a code cache only when the flags that change code generation are those it was made with:
 * `--no-maglev` is one (`--max-semi-space-size` is not). The cache is compiled by the blob generator pkg
 * runs (`node --experimental-sea-config <config>`, execFile'd by lib-es5/sea.js), which does not apply
 * the config's execArgv, so it gets these flags here; otherwise every run of the binary printed
 * "Warning: Code cache data rejected." and compiled the bundle from scratch. The build's smoke test
 * fails on any output on stderr.
 */
const CODEGEN_FLAGS = SEA_EXEC_ARGV.filter((flag) => flag === `--no-maglev`);

function passCodegenFlagsToBlobGenerator(): void {
  type ExecFile = (file: string, args?: readonly string[], ...rest: unknown[]) => unknown;
  const childProcess = createRequire(import.meta.url)(`node:child_process`) as {execFile: ExecFile & {[promisify.custom]?: ExecFile}};
  const original = childProcess.execFile;
  const promised = original[promisify.custom];
  const flagged = (args?: readonly string[]) => (args?.[0] === `--experimental-sea-config` ? [...CODEGEN_FLAGS, ...args] : args);
  const execFile: ExecFile & {[promisify.custom]?: ExecFile} = (file, args, ...rest) => original(file, flagged(args), ...rest);
  if (promised) execFile[promisify.custom] = (file, args, ...rest) => promised(file, flagged(args), ...rest);
  childProcess.execFile = execFile;
}

const {values, positionals} = parseArgs({
  allowPositionals: true,
  options: {sea: {type: `boolean`}, target: {type: `string`}, output: {type: `string`}, asset: {type: `string`, multiple: true}},
});
const target = /^(node\d+\.\d+\.\d+)-(linux)-(x64|arm64)$/.exec(values.target ?? ``);
const entry = positionals[0];
const assets = (values.asset ?? []).map((asset) => /^([\w.-]+)=(\/.+)$/.exec(asset));
if (!values.sea || target === null || entry === undefined || values.output === undefined || assets.includes(null)) {
  process.stderr.write(`> Error! usage: pkg-sea-child.ts <entry> --sea --target node<x.y.z>-linux-<x64|arm64> --output <file> [--asset <key>=<absolute file>]...\n`);
  process.exit(2);
}
passCodegenFlagsToBlobGenerator();
const sea = (createRequire(import.meta.url)(`@yao-pkg/pkg/lib-es5/sea`) as {default?: unknown}).default;
if (typeof sea !== `function`) {
  process.stderr.write(`> Error! @yao-pkg/pkg/lib-es5/sea no longer exports its simple SEA builder: build with --no-code-cache (public pkg CLI)\n`);
  process.exit(1);
}
await (sea as SeaBuilder)(entry, {
  targets: [{nodeRange: target[1]!, platform: target[2]!, arch: target[3]!, output: values.output}],
  seaConfig: {useCodeCache: target[3] === process.arch, useSnapshot: false, disableExperimentalSEAWarning: true, execArgv: SEA_EXEC_ARGV, assets: Object.fromEntries(assets.map((match) => [match![1]!, match![2]!]))},
});
