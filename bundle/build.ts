// `npm run build`: src/ → one CommonJS file (esbuild) → standalone Linux x64 binary (pkg, simple SEA), offline.
// Outputs in bundle/: rollbridge-linux-x64, its .sha256 and a compressed copy (.xz, or .gz without xz).
import {spawnSync} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {parseArgs} from 'node:util';
import {buildFailure, formatFailure} from './build-failure.ts';
import {withBuildLock} from './build-lock.ts';
import {bundleCli} from './esbuild.ts';
import {getPkgTarget, readEmbeddedNodeVersion, runPkgSea, seedPkgCache} from './pkg-sea.ts';

const BUNDLE_DIR = import.meta.dirname;
const REPO_ROOT = path.dirname(BUNDLE_DIR);
const BINARY_NAME = `rollbridge-linux-x64`;

const USAGE = `Usage: npm run build -- [--entry <file>] [--skip-compress] [--keep-symbols] [--no-code-cache]

  --entry <file>    CLI entry to bundle (default: src/main.ts)
  --skip-compress   Do not write the compressed copy (faster local builds)
  --keep-symbols    Do not strip the base Node binary before injection (bigger; native backtraces)
  --no-code-cache   Build through pkg's public CLI, without V8's code cache (slower start-up)
`;

async function main(): Promise<void> {
  const {values} = parseArgs({
    options: {
      'entry': {type: `string`, default: path.join(REPO_ROOT, `src`, `main.ts`)},
      'skip-compress': {type: `boolean`, default: false},
      'keep-symbols': {type: `boolean`, default: false},
      'code-cache': {type: `boolean`, default: true},
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

  await withBuildLock(path.join(BUNDLE_DIR, `out`, `.build.lock`), () => build({entry, startedAt, compress: !values[`skip-compress`], strip: !values[`keep-symbols`], codeCache: values[`code-cache`]}), {
    onWait: pid => log(`waiting for the build running as pid ${pid}`),
  });
}

async function build(options: {entry: string; startedAt: number; compress: boolean; strip: boolean; codeCache: boolean}): Promise<void> {
  const {entry, startedAt} = options;
  const embedded = readEmbeddedNodeVersion(REPO_ROOT);
  const target = getPkgTarget(embedded.version);
  const commit = readGitCommit();
  log(`Building rollbridge ${readPackageVersion()} (commit ${commit}) for ${target}`);

  const bundle = await bundleCli({
    entry,
    // Staged like the binary: tests run bundle/dist/rollbridge.cjs while a build may be running.
    outfile: path.join(BUNDLE_DIR, `out`, `rollbridge.cjs`),
    commit,
    target: `node${embedded.version}`,
  });
  for (const warning of bundle.warnings) log(`esbuild warning: ${warning}`);
  log(`bundled ${path.relative(REPO_ROOT, bundle.outfile)} → bundle/dist/rollbridge.cjs (${formatBytes(bundle.bytes)}) in ${formatMs(bundle.durationMs)}`);

  const pkgHome = path.join(BUNDLE_DIR, `.pkg-home`);
  const seed = seedPkgCache({nodeBinary: embedded.binary, nodeVersion: embedded.version, pkgHome, strip: options.strip});
  log(`${seed.reused ? `reused` : `seeded`} pkg cache with ${seed.stripped ? `stripped ` : ``}Node v${embedded.version} in ${formatMs(seed.durationMs)}`);

  const staged = path.join(BUNDLE_DIR, `out`, BINARY_NAME);
  fs.mkdirSync(path.dirname(staged), {recursive: true});
  fs.rmSync(staged, {force: true});
  const pkg = await runPkgSea({
    entry: bundle.outfile,
    output: staged,
    target,
    pkgHome,
    pkgCli: options.codeCache
      ? path.join(BUNDLE_DIR, `pkg-sea-child.ts`)
      : path.join(REPO_ROOT, `node_modules`, `@yao-pkg`, `pkg`, `lib-es5`, `bin.js`),
  });
  log(`pkg built the SEA binary (${options.codeCache ? `with` : `without`} code cache) in ${formatMs(pkg.durationMs)}`);

  const versionLine = smokeTest(staged, embedded.version);
  log(`smoke test: \`${BINARY_NAME} --version\` → ${versionLine}`);

  const binary = path.join(BUNDLE_DIR, BINARY_NAME);
  const bytes = fs.statSync(staged).size;
  const sha256 = crypto.createHash(`sha256`).update(fs.readFileSync(staged)).digest(`hex`);
  fs.writeFileSync(`${staged}.sha256`, `${sha256}  ${BINARY_NAME}\n`);
  // Renames, so a test or deploy running the previous binary keeps its file; the two renames are adjacent.
  fs.renameSync(staged, binary);
  fs.renameSync(`${staged}.sha256`, `${binary}.sha256`);
  const bundleFile = path.join(BUNDLE_DIR, `dist`, `rollbridge.cjs`);
  fs.mkdirSync(path.dirname(bundleFile), {recursive: true});
  fs.renameSync(bundle.outfile, bundleFile);

  let compressed: {file: string; bytes: number; durationMs: number} | null = null;
  if (!options.compress) {
    // A compressed copy of an older build must never sit next to this binary.
    for (const ext of [`xz`, `gz`]) fs.rmSync(`${binary}.${ext}`, {force: true});
  } else {
    compressed = compress(binary);
  }

  const lines = [
    `binary    ${path.relative(REPO_ROOT, binary)}  ${formatBytes(bytes)}`,
    `sha256    ${sha256}`,
    compressed
      ? `download  ${path.relative(REPO_ROOT, compressed.file)}  ${formatBytes(compressed.bytes)} (${formatMs(compressed.durationMs)})`
      : `download  skipped (--skip-compress)`,
    `version   ${versionLine}`,
    `time      ${formatMs(performance.now() - startedAt)}`,
  ];
  process.stdout.write(`\n${lines.join(`\n`)}\n`);
}

/** Runs the fresh binary with an empty environment from a neutral directory: no node on PATH, no repo around. */
function smokeTest(binary: string, nodeVersion: string): string {
  const result = spawnSync(binary, [`--version`], {cwd: os.tmpdir(), env: {}, encoding: `utf8`, timeout: 30_000});
  const output = `${result.stdout ?? ``}${result.stderr ?? ``}`.trim();
  if (result.status !== 0) {
    throw buildFailure(`The built binary failed \`--version\` (${result.error?.message ?? `exit ${String(result.status ?? result.signal)}`}): ${output}`, {
      fix: `Run \`node bundle/dist/rollbridge.cjs --version\` with Node 24 to see whether the bundle itself works`,
    });
  }
  const firstLine = output.split(`\n`)[0] ?? ``;
  const version = readPackageVersion();
  if (!output.includes(version) || !output.includes(nodeVersion)) {
    log(`warning: \`--version\` should print the rollbridge version ${version}, the commit and Node v${nodeVersion}; it printed: ${firstLine}`);
  }
  return firstLine;
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
