// `npm run test:bare-host`: proves the binary needs nothing but itself. Makes (once per machine) a
// minimal Debian root with `debootstrap --variant=minbase`, copies ONLY the binary into it, checks
// that the root holds no `node`, and runs the binary inside `chroot` with a clean environment.
// Needs root. Prints one PASS/FAIL line and exits non-zero on failure.
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {parseArgs} from 'node:util';
import {buildFailure, formatFailure} from '../bundle/build-failure.ts';
import {getBinaryPath} from '../test/e2e/binary-path.ts';

const DEFAULT_CACHE_DIR = `/var/cache/rollbridge-bare-host`;
const DEFAULT_MIRROR = `http://deb.debian.org/debian`;
const CHROOT_ENV = {PATH: `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, HOME: `/root`, LANG: `C.UTF-8`};
const BINARY_IN_ROOT = `/rollbridge`;
const RUN_TIMEOUT_MS = 60_000;

const USAGE = `Usage: npm run test:bare-host -- [--binary <file>] [--cache-dir <dir>] [--suite <name>] [--mirror <url>] [--rebuild-root]

  --binary <file>     Binary to check (default: bundle/rollbridge-linux-x64)
  --cache-dir <dir>   Where the Debian root is kept between runs (default: ${DEFAULT_CACHE_DIR})
  --suite <name>      Debian suite for debootstrap (default: this host's VERSION_CODENAME, else bookworm)
  --mirror <url>      Debian mirror (default: ${DEFAULT_MIRROR})
  --rebuild-root      Discard the cached root and make a new one
`;

type Check = {name: string; ok: boolean; detail: string; durationMs: number};

async function main(): Promise<boolean> {
  const {values} = parseArgs({
    options: {
      'binary': {type: `string`},
      'cache-dir': {type: `string`, default: DEFAULT_CACHE_DIR},
      'suite': {type: `string`},
      'mirror': {type: `string`, default: DEFAULT_MIRROR},
      'rebuild-root': {type: `boolean`, default: false},
      'help': {type: `boolean`, default: false},
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return true;
  }
  const startedAt = performance.now();
  if (process.getuid?.() !== 0) {
    throw buildFailure(`The bare-host check needs root for debootstrap, mount and chroot (uid ${String(process.getuid?.())})`, {fix: `Run \`npm run test:bare-host\` as root`});
  }
  const binary = path.resolve(values.binary ?? getBinaryPath());
  if (!fs.existsSync(binary)) throw buildFailure(`The binary ${binary} does not exist`, {fix: `Run \`npm run build\` first, or pass --binary <file>`});

  ensureDebootstrap();
  const root = ensureRoot({
    cacheDir: path.resolve(values[`cache-dir`]),
    suite: values.suite ?? readHostSuite(),
    mirror: values.mirror,
    rebuild: values[`rebuild-root`],
  });

  const checks: Check[] = [];
  const target = path.join(root.dir, BINARY_IN_ROOT);
  const procDir = path.join(root.dir, `proc`);
  let mountedProc = false;
  try {
    fs.copyFileSync(binary, target);
    fs.chmodSync(target, 0o755);
    if (!isMountPoint(procDir)) {
      run(`mount`, [`-t`, `proc`, `proc`, procDir]);
      mountedProc = true;
    }

    checks.push(timed(`no node in the root`, () => {
      const found = findNodeBinaries(root.dir);
      const probe = chroot(root.dir, [`/bin/sh`, `-c`, `command -v node nodejs || true`]);
      const onPath = probe.stdout.trim();
      if (found.length > 0 || onPath !== ``) return {ok: false, detail: `found ${[...found, onPath].filter(Boolean).join(`, `)}`};
      return {ok: true, detail: `no node, nodejs or libnode in the root; PATH=${CHROOT_ENV.PATH}`};
    }));

    checks.push(timed(`${BINARY_IN_ROOT} --version`, () => {
      const result = chroot(root.dir, [BINARY_IN_ROOT, `--version`]);
      const output = `${result.stdout}${result.stderr}`.trim();
      if (result.status !== 0) return {ok: false, detail: `exit ${String(result.status ?? result.signal)}: ${output || result.error?.message}`};
      const version = readPackageVersion();
      if (!output.includes(version)) return {ok: false, detail: `expected version ${version} in: ${output}`};
      return {ok: true, detail: output.split(`\n`)[0] ?? ``};
    }));

    // `rollbridge verify` (a self-test with an app built into the binary) runs here once the CLI has it.
    const help = chroot(root.dir, [BINARY_IN_ROOT, `--help`]);
    if (/\brollbridge verify\b/.test(help.stdout)) {
      checks.push(timed(`${BINARY_IN_ROOT} verify`, () => {
        const result = chroot(root.dir, [BINARY_IN_ROOT, `verify`]);
        const output = `${result.stdout}${result.stderr}`.trim();
        return result.status === 0
          ? {ok: true, detail: output.split(`\n`).at(-1) ?? ``}
          : {ok: false, detail: `exit ${String(result.status ?? result.signal)}: ${output.split(`\n`).slice(-5).join(` | `)}`};
      }));
    } else {
      log(`\`verify\` is not in this binary's --help yet: only --version was run`);
    }
  } finally {
    if (mountedProc) run(`umount`, [procDir]);
    fs.rmSync(target, {force: true});
  }

  for (const check of checks) log(`${check.ok ? `ok  ` : `FAIL`} ${check.name} (${Math.round(check.durationMs)} ms): ${check.detail}`);
  const ok = checks.every(check => check.ok);
  const summary = `${checks.filter(check => check.ok).length}/${checks.length} checks, root ${root.reused ? `reused` : `created in ${formatSeconds(root.durationMs)}`}, total ${formatSeconds(performance.now() - startedAt)}`;
  process.stdout.write(`${ok ? `PASS` : `FAIL`} bare-host: ${path.basename(binary)} in a debootstrap --variant=minbase ${root.suite} root (${summary})\n`);
  return ok;
}

function ensureDebootstrap(): void {
  if (hasCommand(`debootstrap`)) return;
  log(`debootstrap is missing: apt-get install -y debootstrap`);
  const result = spawnSync(`apt-get`, [`install`, `-y`, `--no-install-recommends`, `debootstrap`], {stdio: [`ignore`, `ignore`, `pipe`], encoding: `utf8`});
  if (result.status !== 0 || !hasCommand(`debootstrap`)) {
    throw buildFailure(`Installing debootstrap failed: ${result.error?.message ?? result.stderr.trim().split(`\n`).at(-1)}`, {fix: `Run \`apt-get update && apt-get install -y debootstrap\``});
  }
}

type RootOptions = {cacheDir: string; suite: string; mirror: string; rebuild: boolean};
type Root = {dir: string; suite: string; reused: boolean; durationMs: number};

/**
 * The root is made in `rootfs.partial` and renamed, then `rootfs.json` records it: a root without
 * that record (an interrupted run) or made for another suite is discarded and made again.
 */
function ensureRoot(options: RootOptions): Root {
  const startedAt = performance.now();
  const dir = path.join(options.cacheDir, `rootfs`);
  const recordPath = path.join(options.cacheDir, `rootfs.json`);
  const record = JSON.stringify({variant: `minbase`, suite: options.suite, mirror: options.mirror});
  if (!options.rebuild && readFileOrNull(recordPath) === record && fs.existsSync(path.join(dir, `bin`, `sh`))) {
    return {dir, suite: options.suite, reused: true, durationMs: 0};
  }
  const partial = `${dir}.partial`;
  fs.rmSync(recordPath, {force: true});
  for (const stale of [dir, partial]) {
    if (fs.existsSync(stale)) {
      // Never recurse into a root that still has /proc mounted from an interrupted run.
      if (isMountPoint(path.join(stale, `proc`))) run(`umount`, [path.join(stale, `proc`)]);
      fs.rmSync(stale, {recursive: true, force: true});
    }
  }
  fs.mkdirSync(options.cacheDir, {recursive: true});
  log(`making a ${options.suite} minbase root in ${dir} (once per machine, a few minutes at most)`);
  const result = spawnSync(`debootstrap`, [`--variant=minbase`, options.suite, partial, options.mirror], {stdio: [`ignore`, `pipe`, `pipe`], encoding: `utf8`});
  if (result.status !== 0) {
    const tail = `${result.stdout}${result.stderr}`.trim().split(`\n`).slice(-3).join(` | `);
    throw buildFailure(`debootstrap --variant=minbase ${options.suite} failed (${result.error?.message ?? `exit ${String(result.status)}`}): ${tail}`, {
      fix: `Check that ${options.mirror} is reachable, or pass another Debian mirror with --mirror <url>`,
    });
  }
  fs.renameSync(partial, dir);
  fs.writeFileSync(recordPath, record);
  return {dir, suite: options.suite, reused: false, durationMs: performance.now() - startedAt};
}

/** Every file named like a Node runtime anywhere in the root (proc excluded). */
function findNodeBinaries(root: string): string[] {
  const result = spawnSync(`find`, [root, `-path`, path.join(root, `proc`), `-prune`, `-o`, `(`, `-name`, `node`, `-o`, `-name`, `nodejs`, `-o`, `-name`, `libnode.so*`, `)`, `-print`], {encoding: `utf8`});
  return result.stdout.split(`\n`).filter(Boolean).map(file => `/${path.relative(root, file)}`);
}

function chroot(root: string, argv: string[]) {
  return spawnSync(`chroot`, [root, ...argv], {cwd: `/`, env: CHROOT_ENV, encoding: `utf8`, timeout: RUN_TIMEOUT_MS});
}

function timed(name: string, fn: () => {ok: boolean; detail: string}): Check {
  const startedAt = performance.now();
  const {ok, detail} = fn();
  return {name, ok, detail, durationMs: performance.now() - startedAt};
}

function isMountPoint(dir: string): boolean {
  return spawnSync(`mountpoint`, [`-q`, dir]).status === 0;
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, {stdio: [`ignore`, `ignore`, `pipe`], encoding: `utf8`});
  if (result.status !== 0) throw buildFailure(`${command} ${args.join(` `)} failed: ${result.error?.message ?? result.stderr.trim()}`);
}

function hasCommand(command: string): boolean {
  return spawnSync(`sh`, [`-c`, `command -v "$0"`, command], {stdio: `ignore`}).status === 0;
}

function readHostSuite(): string {
  const osRelease = readFileOrNull(`/etc/os-release`) ?? ``;
  return /^VERSION_CODENAME=([a-z]+)$/m.exec(osRelease)?.[1] ?? `bookworm`;
}

function readPackageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(import.meta.dirname, `..`, `package.json`), `utf8`)) as {version: string}).version;
}

function readFileOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, `utf8`);
  } catch {
    return null;
  }
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function log(line: string): void {
  process.stderr.write(`bare-host: ${line}\n`);
}

try {
  process.exitCode = (await main()) ? 0 : 1;
} catch (error) {
  process.stderr.write(formatFailure(error));
  process.stdout.write(`FAIL bare-host: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
