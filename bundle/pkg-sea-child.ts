// Child process of runPkgSea (pkg-sea.ts) for every build: pkg 6.23's CLI cannot pass `seaConfig` to its
// simple SEA builder, so this calls that builder (lib-es5/sea.js, verified in
// /work/shared/notes/binary-build.md) with the SEA config below. Same arguments as the pkg CLI:
//   <entry> --sea --target node<x.y.z>-linux-<x64|arm64> --output <absolute path> [--asset <key>=<file>]...
// plus the SEA assets of a split build (the CLI script and its trained code cache, see cli-script.ts).
//
// The SEA config:
// - `execArgv`: the V8 flags every command runs with (SEA_EXEC_ARGV in pkg-sea.ts).
// - `execArgvExtension: cli`: `rollbridge --node-options="<flags>" …` adds V8 flags to one run; the daemon
//   is started so with its own (DAEMON_V8_FLAGS in src/config/daemon-env.ts). NODE_OPTIONS no longer
//   reaches the binary: it is the apps' (and it refuses V8 flags such as --no-maglev anyway).
// - `useCodeCache: false`: the main script of a split build is 6 KB (`--version` and the loader of the
//   CLI script, whose trained cache is ours), and a cache V8 rejects (made without the daemon's
//   --no-maglev) prints "Warning: Code cache data rejected." on every start of the daemon.
import {createRequire} from 'node:module';
import {parseArgs} from 'node:util';
import {SEA_EXEC_ARGV} from './pkg-sea.ts';

type SeaBuilder = (entry: string, options: {
  targets: Array<{nodeRange: string; platform: string; arch: string; output: string}>;
  seaConfig: {useCodeCache: boolean; useSnapshot: boolean; disableExperimentalSEAWarning: boolean; execArgv: string[]; execArgvExtension: `none` | `env` | `cli`; assets: Record<string, string>};
}) => Promise<void>;

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
const sea = (createRequire(import.meta.url)(`@yao-pkg/pkg/lib-es5/sea`) as {default?: unknown}).default;
if (typeof sea !== `function`) {
  process.stderr.write(`> Error! @yao-pkg/pkg/lib-es5/sea no longer exports its simple SEA builder: keep @yao-pkg/pkg at the version in package.json, or port this child to the new builder\n`);
  process.exit(1);
}
await (sea as SeaBuilder)(entry, {
  targets: [{nodeRange: target[1]!, platform: target[2]!, arch: target[3]!, output: values.output}],
  seaConfig: {useCodeCache: false, useSnapshot: false, disableExperimentalSEAWarning: true, execArgv: SEA_EXEC_ARGV, execArgvExtension: `cli`, assets: Object.fromEntries(assets.map((match) => [match![1]!, match![2]!]))},
});
