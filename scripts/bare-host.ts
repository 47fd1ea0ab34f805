// `npm run test:bare-host`: proves the binary needs nothing but itself. Makes (once per machine) a
// minimal Debian root with `debootstrap --variant=minbase`, copies ONLY the binary into it, checks
// that the root holds no `node`, and runs the binary inside `chroot` with a clean environment.
// Then, when the binary has them, runs `daemon` + `deploy` of a tiny perl app inside the root and
// `verify`. Needs root. Prints one PASS/FAIL line and exits non-zero on failure.
import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {parseArgs} from 'node:util';
import {buildFailure, formatFailure} from '../bundle/build-failure.ts';
import {getBinaryPath} from '../test/e2e/binary-path.ts';
import {ensureCommands} from '../test/helpers/system-packages.ts';

const DEFAULT_CACHE_DIR = `/var/cache/rollbridge-bare-host`;
const DEFAULT_MIRROR = `http://deb.debian.org/debian`;
const CHROOT_ENV = {PATH: `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, HOME: `/root`, LANG: `C.UTF-8`};
const BINARY_IN_ROOT = `/rollbridge`;
const RUN_TIMEOUT_MS = 60_000;
const DAEMON_READY_TIMEOUT_MS = 15_000;
/** The deploy check's files, inside the root; removed after the run like the binary. */
const APP_DIR_IN_ROOT = `/rb-bare`;
/** A non-Node app from perl-base (part of minbase): answers every request with its release id. */
const PERL_APP = `#!/usr/bin/perl
use strict; use warnings; use IO::Socket::INET;
my $server = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $ENV{ROLLBRIDGE_PORT}, Listen => 16, ReuseAddr => 1) or die "listen: $!";
$SIG{TERM} = sub { exit 0 };
while (my $client = $server->accept) {
  while (my $line = <$client>) { last if $line =~ /^\\r?\\n$/; }
  my $body = "hello from perl release $ENV{ROLLBRIDGE_RELEASE_ID}\\n";
  print $client "HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: " . length($body) . "\\r\\nConnection: close\\r\\n\\r\\n$body";
  close $client;
}
`;

const USAGE = `Usage: npm run test:bare-host -- [--binary <file>] [--cache-dir <dir>] [--suite <name>] [--mirror <url>] [--rebuild-root]

  --binary <file>     Binary to check (default: bundle/rollbridge-linux-x64)
  --cache-dir <dir>   Where the Debian root is kept between runs (default: ${DEFAULT_CACHE_DIR})
  --suite <name>      Debian suite for debootstrap (default: this host's VERSION_CODENAME, else bookworm)
  --mirror <url>      Debian mirror (default: ${DEFAULT_MIRROR})
  --rebuild-root      Discard the cached root and make a new one
`;

type CheckOutcome = {ok: boolean; detail: string};
type Check = CheckOutcome & {name: string; durationMs: number};

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

    checks.push(await timed(`no node in the root`, () => {
      const found = findNodeBinaries(root.dir);
      const probe = chroot(root.dir, [`/bin/sh`, `-c`, `command -v node nodejs || true`]);
      const onPath = probe.stdout.trim();
      if (found.length > 0 || onPath !== ``) return {ok: false, detail: `found ${[...found, onPath].filter(Boolean).join(`, `)}`};
      return {ok: true, detail: `no node, nodejs or libnode in the root; PATH=${CHROOT_ENV.PATH}`};
    }));

    checks.push(await timed(`${BINARY_IN_ROOT} --version`, () => {
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
      checks.push(await timed(`${BINARY_IN_ROOT} verify`, () => {
        const result = chroot(root.dir, [BINARY_IN_ROOT, `verify`]);
        const output = `${result.stdout}${result.stderr}`.trim();
        return result.status === 0
          ? {ok: true, detail: output.split(`\n`).at(-1) ?? ``}
          : {ok: false, detail: `exit ${String(result.status ?? result.signal)}: ${output.split(`\n`).slice(-5).join(` | `)}`};
      }));
    } else {
      log(`\`verify\` is not in this binary's --help yet`);
    }
    if (/\brollbridge daemon\b/.test(help.stdout) && /\brollbridge deploy\b/.test(help.stdout)) {
      checks.push(await timed(`daemon + deploy of a perl app, request through the proxy`, () => checkDeploy(root.dir)));
    } else {
      log(`\`daemon\` or \`deploy\` is not in this binary's --help: no deploy check`);
    }
  } finally {
    if (mountedProc) run(`umount`, [procDir]);
    fs.rmSync(target, {force: true});
    fs.rmSync(path.join(root.dir, APP_DIR_IN_ROOT), {recursive: true, force: true});
  }

  for (const check of checks) log(`${check.ok ? `ok  ` : `FAIL`} ${check.name} (${Math.round(check.durationMs)} ms): ${check.detail}`);
  const ok = checks.every(check => check.ok);
  const summary = `${checks.filter(check => check.ok).length}/${checks.length} checks, root ${root.reused ? `reused` : `created in ${formatSeconds(root.durationMs)}`}, total ${formatSeconds(performance.now() - startedAt)}`;
  process.stdout.write(`${ok ? `PASS` : `FAIL`} bare-host: ${path.basename(binary)} in a debootstrap --variant=minbase ${root.suite} root (${summary})\n`);
  return ok;
}

/**
 * Inside the root: starts `rollbridge daemon`, deploys a perl app (no Node anywhere), then sends a
 * request to the proxy port from the host (chroot shares the network) and expects the app's answer.
 */
async function checkDeploy(root: string): Promise<CheckOutcome> {
  if (!fs.existsSync(path.join(root, `usr`, `bin`, `perl`))) return {ok: false, detail: `no /usr/bin/perl in the root (perl-base is part of minbase)`};
  const appDir = path.join(root, APP_DIR_IN_ROOT);
  fs.rmSync(appDir, {recursive: true, force: true});
  fs.mkdirSync(path.join(appDir, `releases`, `r1`), {recursive: true});
  fs.writeFileSync(path.join(appDir, `releases`, `r1`, `server.pl`), PERL_APP, {mode: 0o755});
  const configPath = `${APP_DIR_IN_ROOT}/rollbridge.json`;
  fs.writeFileSync(path.join(root, configPath), `${JSON.stringify({
    application: `bare-host`,
    control: {path: `${APP_DIR_IN_ROOT}/control.sock`},
    proxy: {host: `127.0.0.1`, port: 0},
    statePath: `${APP_DIR_IN_ROOT}/state.json`,
    processes: [{id: `web`, command: `perl server.pl`, policy: `proxied`, port: {from: 0, to: 0}}],
  }, null, 2)}\n`);

  const logFd = fs.openSync(path.join(appDir, `daemon.log`), `w`);
  const daemon = spawn(`chroot`, [root, BINARY_IN_ROOT, `daemon`, `--config`, configPath], {cwd: `/`, env: CHROOT_ENV, stdio: [`ignore`, logFd, logFd]});
  fs.closeSync(logFd);
  const exited = new Promise<void>(resolve => daemon.once(`exit`, () => resolve()));
  const daemonOutput = () => (readFileOrNull(path.join(appDir, `daemon.log`)) ?? ``).trim().split(`\n`).slice(-3).join(` | `);
  try {
    const deadline = Date.now() + DAEMON_READY_TIMEOUT_MS;
    while (!fs.existsSync(path.join(root, APP_DIR_IN_ROOT, `control.sock`))) {
      if (daemon.exitCode !== null || daemon.signalCode !== null) return {ok: false, detail: `daemon exited (${String(daemon.exitCode ?? daemon.signalCode)}): ${daemonOutput()}`};
      if (Date.now() > deadline) return {ok: false, detail: `daemon made no control socket within ${DAEMON_READY_TIMEOUT_MS} ms: ${daemonOutput()}`};
      await new Promise(resolve => setTimeout(resolve, 20));
    }
    const deploy = chroot(root, [BINARY_IN_ROOT, `deploy`, `--config`, configPath, `--release-path`, `${APP_DIR_IN_ROOT}/releases/r1`, `--release-id`, `r1`, `--json`]);
    if (deploy.status !== 0) return {ok: false, detail: `deploy exit ${String(deploy.status ?? deploy.signal)}: ${`${deploy.stdout}${deploy.stderr}`.trim().slice(0, 400)} (daemon: ${daemonOutput()})`};
    const status = chroot(root, [BINARY_IN_ROOT, `status`, `--config`, configPath, `--json`]);
    const proxyPort = (JSON.parse(status.stdout) as {proxy?: {port?: unknown}}).proxy?.port;
    if (typeof proxyPort !== `number`) return {ok: false, detail: `status --json has no proxy.port: ${status.stdout.slice(0, 300)}`};
    const body = await httpGet(`http://127.0.0.1:${proxyPort}/`);
    const expected = `hello from perl release r1`;
    return body.trim() === expected
      ? {ok: true, detail: `deployed r1; GET 127.0.0.1:${proxyPort} → "${expected}"`}
      : {ok: false, detail: `GET through the proxy answered "${body.trim().slice(0, 200)}", expected "${expected}"`};
  } finally {
    if (daemon.exitCode === null && daemon.signalCode === null && daemon.pid !== undefined) {
      // chroot execs the binary, so this pid is the daemon itself; SIGTERM stops the app gracefully too.
      process.kill(daemon.pid, `SIGTERM`);
      const timer = setTimeout(() => daemon.kill(`SIGKILL`), 10_000);
      await exited;
      clearTimeout(timer);
    }
  }
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, {timeout: 10_000}, response => {
      let body = ``;
      response.setEncoding(`utf8`);
      response.on(`data`, (chunk: string) => { body += chunk; });
      response.on(`end`, () => resolve(body));
      response.on(`error`, reject);
    });
    request.on(`timeout`, () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on(`error`, reject);
  });
}

function ensureDebootstrap(): void {
  if (hasCommand(`debootstrap`)) return;
  log(`debootstrap is missing: apt-get install -y debootstrap`);
  const why = ensureCommands([{command: `debootstrap`, pkg: `debootstrap`}]);
  if (why !== null) throw buildFailure(`Installing debootstrap failed: ${why}`, {fix: `Run \`apt-get update && apt-get install -y debootstrap\``});
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

async function timed(name: string, fn: () => CheckOutcome | Promise<CheckOutcome>): Promise<Check> {
  const startedAt = performance.now();
  let outcome: CheckOutcome;
  try {
    outcome = await fn();
  } catch (error) {
    outcome = {ok: false, detail: error instanceof Error ? error.message : String(error)};
  }
  return {name, ...outcome, durationMs: performance.now() - startedAt};
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
