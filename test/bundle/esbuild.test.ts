import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {bundleCli} from '../../bundle/esbuild.ts';
import {createTempDir} from '../helpers/temp-dir.ts';

function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
}

test(`bundles a TypeScript ESM entry and its .ts imports into one CommonJS file with the commit baked in`, async (t) => {
  const dir = createTempDir(t);
  writeFiles(dir, {
    'main.ts': [
      `import {describe} from './describe.ts';`,
      `declare const __ROLLBRIDGE_COMMIT__: string | undefined;`,
      `const commit: string = typeof __ROLLBRIDGE_COMMIT__ === 'string' ? __ROLLBRIDGE_COMMIT__ : 'dev';`,
      `process.stdout.write(describe(commit) + '\\n');`,
    ].join(`\n`),
    'describe.ts': `import os from 'node:os';\nexport const describe = (commit: string): string => \`commit \${commit} on \${os.platform()}\`;\n`,
  });
  const outfile = path.join(dir, `out`, `cli.cjs`);

  const result = await bundleCli({entry: path.join(dir, `main.ts`), outfile, commit: `abc1234`, version: `9.8.7`, target: `node24`});

  assert.equal(result.outfile, outfile);
  assert.equal(result.bytes, fs.statSync(outfile).size);
  assert.deepEqual(result.warnings, []);
  assert.deepEqual(fs.readdirSync(path.dirname(outfile)), [`cli.cjs`]);
  const source = fs.readFileSync(outfile, `utf8`);
  assert.doesNotMatch(source, /\bimport\s|\bexport\s/, `CommonJS output has no ESM syntax`);
  const required = [...source.matchAll(/\brequire\("([^"]+)"\)/g)].map(match => match[1]);
  assert.deepEqual(required, [`node:os`], `only Node built-ins are left to require: the .ts import is inlined`);
  const run = spawnSync(process.execPath, [outfile], {cwd: dir, encoding: `utf8`});
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, `commit abc1234 on linux\n`);
});

test(`fails with a fix naming the promise chain when the entry uses top-level await`, async (t) => {
  const dir = createTempDir(t);
  writeFiles(dir, {'main.ts': `process.exitCode = await Promise.resolve(0);\n`});

  await assert.rejects(
    bundleCli({entry: path.join(dir, `main.ts`), outfile: path.join(dir, `out.cjs`), commit: `unknown`, version: `0.0.0`, target: `node24`}),
    (error: Error & {fix?: string}) => {
      assert.equal(error.name, `BuildFailure`);
      assert.match(error.message, /main\.ts:1:\d+: Top-level await/);
      assert.match(error.fix ?? ``, /process\.exitCode = code/);
      return true;
    },
  );
});

test(`fails naming the file and line of an import that does not resolve`, async (t) => {
  const dir = createTempDir(t);
  writeFiles(dir, {'main.ts': `import {missing} from './missing.ts';\nconsole.log(missing);\n`});

  await assert.rejects(
    bundleCli({entry: path.join(dir, `main.ts`), outfile: path.join(dir, `out.cjs`), commit: `unknown`, version: `0.0.0`, target: `node24`}),
    (error: Error) => {
      assert.equal(error.name, `BuildFailure`);
      assert.match(error.message, /main\.ts:1:\d+: Could not resolve "\.\/missing\.ts"/);
      return true;
    },
  );
});

test(`embeds the rollbridge version alone, not the package.json it comes from`, async (t) => {
  const dir = createTempDir(t);
  const srcDir = path.join(dir, `src`);
  fs.mkdirSync(path.join(srcDir, `cli`), {recursive: true});
  // The real version module, reading the package.json two levels up as it does in the repository.
  fs.copyFileSync(path.resolve(import.meta.dirname, `..`, `..`, `src`, `cli`, `version.ts`), path.join(srcDir, `cli`, `version.ts`));
  writeFiles(dir, {'package.json': JSON.stringify({name: `rollbridge`, version: `0.0.1`, description: `must-not-be-bundled`})});
  writeFiles(srcDir, {'main.ts': `import {getVersionInfo} from './cli/version.ts';\nprocess.stdout.write(getVersionInfo().version + '\\n');\n`});
  const outfile = path.join(dir, `out.cjs`);

  await bundleCli({entry: path.join(srcDir, `main.ts`), outfile, commit: `unknown`, version: `9.8.7`, target: `node24`});

  const source = fs.readFileSync(outfile, `utf8`);
  assert.doesNotMatch(source, /must-not-be-bundled|0\.0\.1/);
  const run = spawnSync(process.execPath, [outfile], {cwd: dir, encoding: `utf8`, timeout: 10_000});
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, `9.8.7\n`);
  // From the sources, the same module reads package.json.
  const fromSource = spawnSync(process.execPath, [path.join(srcDir, `main.ts`)], {cwd: dir, encoding: `utf8`, timeout: 10_000});
  assert.equal(fromSource.stdout, `0.0.1\n`, fromSource.stderr);
});

test(`the bundle is ASCII only: comments esbuild keeps are rewritten, strings keep their characters`, async (t) => {
  const dir = createTempDir(t);
  writeFiles(dir, {
    'main.ts': [
      `class Phase {`,
      `  /** SIGTERM → SIGKILL, the deadline … of §5.8 */`,
      `  arrow = '→ … — §';`,
      `  template = \`✓ \${1 + 1}\`;`,
      `}`,
      `const phase = new Phase();`,
      `process.stdout.write(JSON.stringify([phase.arrow, phase.template]) + '\\n');`,
    ].join(`\n`),
  });
  const outfile = path.join(dir, `out`, `cli.cjs`);
  await bundleCli({entry: path.join(dir, `main.ts`), outfile, commit: `abc1234`, version: `9.8.7`, target: `node24`});
  const source = fs.readFileSync(outfile, `utf8`);
  assert.doesNotMatch(source, /[^\t\n\r\x20-\x7e]/, `no character outside ASCII (V8 would hold the script as a two-byte string)`);
  const run = spawnSync(process.execPath, [outfile], {cwd: dir, encoding: `utf8`});
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, `${JSON.stringify([`→ … — §`, `✓ 2`])}\n`);
});

test(`a split build resolves the entry's import('./cli/cli.ts') to the loader and leaves the CLI's own imports alone`, async (t) => {
  const dir = createTempDir(t);
  fs.mkdirSync(path.join(dir, `cli`));
  writeFiles(dir, {
    'main.ts': `void import('./cli/cli.ts').then(({name}) => process.stdout.write(name + '\\n'));\n`,
    'loader.ts': `export const name = 'loader';\n`,
  });
  writeFiles(path.join(dir, `cli`), {
    'cli.ts': `import {inner} from './inner.ts';\nexport const name = 'cli ' + inner;\n`,
    'inner.ts': `export const inner = 'inner';\n`,
  });
  const common = {commit: `abc1234`, version: `9.8.7`, target: `node24`};

  const main = await bundleCli({...common, entry: path.join(dir, `main.ts`), outfile: path.join(dir, `out`, `main.cjs`), cliLoader: path.join(dir, `loader.ts`)});
  const whole = await bundleCli({...common, entry: path.join(dir, `main.ts`), outfile: path.join(dir, `out`, `whole.cjs`)});

  assert.equal(spawnSync(process.execPath, [main.outfile], {encoding: `utf8`}).stdout, `loader\n`);
  assert.doesNotMatch(fs.readFileSync(main.outfile, `utf8`), /inner/, `the CLI is not in the split main script`);
  assert.equal(spawnSync(process.execPath, [whole.outfile], {encoding: `utf8`}).stdout, `cli inner\n`, `without cliLoader the CLI is bundled in`);
});
