// `npm run pack:npm`: the npm packages from the built binaries, as three tarballs in bundle/npm/:
//   rollbridge-<v>.tgz                 the `rollbridge` and `rollbridge-rolling` commands + the typed Node API
//   rollbridge-linux-x64-<v>.tgz       @rollbridge/linux-x64   (os linux, cpu x64, libc glibc): the binary
//   rollbridge-linux-arm64-<v>.tgz     @rollbridge/linux-arm64 (os linux, cpu arm64, libc glibc): the binary
// The main package has no install scripts: the package manager picks the platform package through
// `optionalDependencies` + os/cpu/libc, and the `rollbridge` command finds it at run time.
import {spawnSync} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {parseArgs} from 'node:util';
import {build} from 'esbuild';
import {buildFailure, formatFailure} from '../../bundle/build-failure.ts';
import {withBuildLock} from '../../bundle/build-lock.ts';

const NPM_DIR = import.meta.dirname;
const REPO_ROOT = path.resolve(NPM_DIR, `..`, `..`);
const SOURCE_DIR = path.join(NPM_DIR, `src`);
/** The Node the package's JavaScript runs on: users' machines, not the binary's embedded Node. */
const NODE_TARGET = `node20`;
const PLATFORMS = [{arch: `x64`}, {arch: `arm64`}] as const;
/** The package's commands: integrations/npm/src/bin/<name>.ts → bin/<name>.js. */
const COMMANDS = [`rollbridge`, `rollbridge-rolling`];
const LIFECYCLE_SCRIPTS = [`preinstall`, `install`, `postinstall`, `prepare`, `preprepare`, `postprepare`, `prepack`, `postpack`];

const USAGE = `Usage: npm run pack:npm -- [--out <dir>]

Packs bundle/rollbridge-linux-x64 and bundle/rollbridge-linux-arm64 (run \`npm run build\` first) and the
package's JavaScript into three tarballs.

  --out <dir>   Where the tarballs go (default: bundle/npm)
`;

export type PackResult = {main: string; platforms: Record<string, string>; version: string};

/**
 * Packs the three tarballs into `outDir`, one packer at a time (a lock file in `outDir`). A platform
 * tarball is reused while its binary is unchanged (npm pack gzips ~110 MB: ~30 s on a busy machine).
 */
export async function packNpm(options: {outDir: string; binaryDir?: string}): Promise<PackResult> {
  fs.mkdirSync(options.outDir, {recursive: true});
  return await withBuildLock(path.join(options.outDir, `.pack.lock`), () => pack(options));
}

async function pack(options: {outDir: string; binaryDir?: string}): Promise<PackResult> {
  const version = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, `package.json`), `utf8`)) as {version: string}).version;
  const binaryDir = options.binaryDir ?? path.join(REPO_ROOT, `bundle`);
  const binaries = PLATFORMS.map(({arch}) => ({arch, file: path.join(binaryDir, `rollbridge-linux-${arch}`)}));
  for (const {file} of binaries) {
    if (!fs.existsSync(file)) throw buildFailure(`${file} does not exist`, {fix: `Run \`npm run build\` first (it builds both architectures)`});
  }
  fs.mkdirSync(options.outDir, {recursive: true});
  const staging = fs.mkdtempSync(path.join(options.outDir, `.staging-`));
  try {
    const platforms: Record<string, string> = {};
    for (const {arch, file} of binaries) {
      const sha256 = crypto.createHash(`sha256`).update(fs.readFileSync(file)).digest(`hex`);
      const tarball = path.join(path.resolve(options.outDir), `rollbridge-linux-${arch}-${version}.tgz`);
      const stamp = `${tarball}.sha256`;
      if (fs.existsSync(tarball) && readFileOrNull(stamp) === sha256) {
        platforms[arch] = tarball;
        continue;
      }
      fs.rmSync(stamp, {force: true});
      const dir = path.join(staging, `linux-${arch}`);
      fs.mkdirSync(dir);
      writeJson(path.join(dir, `package.json`), {
        name: `@rollbridge/linux-${arch}`,
        version,
        description: `The rollbridge binary for Linux ${arch} (glibc); installed by the rollbridge package`,
        license: `MIT`,
        os: [`linux`],
        cpu: [arch],
        libc: [`glibc`],
        files: [`rollbridge`],
        preferUnplugged: true,
      });
      fs.copyFileSync(file, path.join(dir, `rollbridge`));
      fs.chmodSync(path.join(dir, `rollbridge`), 0o755);
      fs.writeFileSync(path.join(dir, `README.md`), `# @rollbridge/linux-${arch}\n\nThe standalone rollbridge ${version} binary for Linux ${arch} (glibc ≥ 2.28). Install \`rollbridge\`, which depends on it; see its README.\n`);
      platforms[arch] = npmPack(dir, options.outDir);
      if (platforms[arch] !== tarball) throw new Error(`Assertion failed: npm pack wrote ${platforms[arch]}, expected ${tarball}`);
      fs.writeFileSync(stamp, sha256);
    }

    const main = path.join(staging, `rollbridge`);
    await bundleJavaScript(main);
    emitDeclarations(path.join(main, `dist`));
    writeJson(path.join(main, `package.json`), {
      name: `rollbridge`,
      version,
      description: `Zero-downtime deploys on one Linux host: the rollbridge command and a typed Node API`,
      license: `MIT`,
      type: `module`,
      bin: Object.fromEntries(COMMANDS.map((name) => [name, `bin/${name}.js`])),
      exports: {'.': {types: `./dist/index.d.ts`, default: `./dist/index.js`}, './package.json': `./package.json`},
      types: `./dist/index.d.ts`,
      files: [`bin`, `dist`],
      engines: {node: `>=20`},
      optionalDependencies: Object.fromEntries(PLATFORMS.map(({arch}) => [`@rollbridge/linux-${arch}`, version])),
    });
    fs.copyFileSync(path.join(NPM_DIR, `README.md`), path.join(main, `README.md`));
    return {main: npmPack(main, options.outDir), platforms, version};
  } finally {
    fs.rmSync(staging, {recursive: true, force: true});
  }
}

/** dist/index.js (the API) and the two commands, each one self-contained ESM file. */
async function bundleJavaScript(packageDir: string): Promise<void> {
  const common = {bundle: true, platform: `node`, format: `esm`, target: NODE_TARGET, sourcemap: false, legalComments: `none`, logLevel: `silent`} as const;
  try {
    await build({...common, entryPoints: [path.join(SOURCE_DIR, `index.ts`)], outfile: path.join(packageDir, `dist`, `index.js`)});
    for (const name of COMMANDS) {
      const outfile = path.join(packageDir, `bin`, `${name}.js`);
      await build({...common, entryPoints: [path.join(SOURCE_DIR, `bin`, `${name}.ts`)], outfile, banner: {js: `#!/usr/bin/env node`}});
      fs.chmodSync(outfile, 0o755);
    }
  } catch (error) {
    throw buildFailure(`esbuild failed on integrations/npm/src: ${(error as Error).message}`, {cause: error});
  }
}

/**
 * dist/*.d.ts from the sources with tsc. The sources import each other as `./x.ts`; the published
 * declarations sit next to `.js` files, so the specifiers are rewritten to `./x.js`.
 */
function emitDeclarations(distDir: string): void {
  const tsc = path.join(REPO_ROOT, `node_modules`, `typescript`, `bin`, `tsc`);
  const result = spawnSync(process.execPath, [tsc, `--declaration`, `--emitDeclarationOnly`, `--outDir`, distDir, `--rootDir`, SOURCE_DIR,
    `--module`, `nodenext`, `--moduleResolution`, `nodenext`, `--target`, `es2022`, `--strict`, `--allowImportingTsExtensions`,
    `--verbatimModuleSyntax`, `--skipLibCheck`, `--types`, `node`, `--ignoreConfig`, path.join(SOURCE_DIR, `index.ts`)], {cwd: REPO_ROOT, encoding: `utf8`});
  if (result.status !== 0) throw buildFailure(`tsc could not emit the package's declarations: ${(result.stdout + result.stderr).trim()}`);
  for (const file of fs.readdirSync(distDir, {recursive: true, encoding: `utf8`})) {
    if (!file.endsWith(`.d.ts`)) continue;
    const full = path.join(distDir, file);
    fs.writeFileSync(full, fs.readFileSync(full, `utf8`).replace(/(from\s+['"]\.{1,2}\/[^'"]+)\.ts(['"])/g, `$1.js$2`));
  }
}

function npmPack(dir: string, outDir: string): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, `package.json`), `utf8`)) as {name: string; scripts?: Record<string, string>};
  const lifecycle = Object.keys(manifest.scripts ?? {}).filter((name) => LIFECYCLE_SCRIPTS.includes(name));
  if (lifecycle.length > 0) throw new Error(`Assertion failed: ${manifest.name} must have no install scripts (has ${lifecycle.join(`, `)})`);
  const result = spawnSync(`npm`, [`pack`, `--pack-destination`, path.resolve(outDir), `--json`, `--silent`], {cwd: dir, encoding: `utf8`, maxBuffer: 64 * 1024 * 1024});
  if (result.status !== 0) throw buildFailure(`npm pack of ${manifest.name} failed: ${result.stderr.trim().split(`\n`).slice(-3).join(` `)}`);
  const [packed] = JSON.parse(result.stdout) as Array<{filename: string}>;
  if (!packed) throw buildFailure(`npm pack of ${manifest.name} reported no tarball`);
  return path.join(path.resolve(outDir), packed.filename.replace(/^@/, ``).replace(/\//g, `-`));
}

function readFileOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, `utf8`);
  } catch {
    return null;
  }
}

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

if (import.meta.main) {
  try {
    const {values} = parseArgs({options: {out: {type: `string`}, help: {type: `boolean`, default: false}}});
    if (values.help) {
      process.stdout.write(USAGE);
    } else {
      const startedAt = performance.now();
      const result = await packNpm({outDir: path.resolve(values.out ?? path.join(REPO_ROOT, `bundle`, `npm`))});
      for (const file of [result.main, ...Object.values(result.platforms)]) {
        process.stdout.write(`${path.relative(process.cwd(), file)}  ${(fs.statSync(file).size / 1_000_000).toFixed(1)} MB\n`);
      }
      process.stdout.write(`packed rollbridge ${result.version} in ${((performance.now() - startedAt) / 1000).toFixed(1)} s\n`);
    }
  } catch (error) {
    process.stderr.write(formatFailure(error));
    process.exitCode = 1;
  }
}
