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

  const result = await bundleCli({entry: path.join(dir, `main.ts`), outfile, commit: `abc1234`, target: `node24`});

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
    bundleCli({entry: path.join(dir, `main.ts`), outfile: path.join(dir, `out.cjs`), commit: `unknown`, target: `node24`}),
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
    bundleCli({entry: path.join(dir, `main.ts`), outfile: path.join(dir, `out.cjs`), commit: `unknown`, target: `node24`}),
    (error: Error) => {
      assert.equal(error.name, `BuildFailure`);
      assert.match(error.message, /main\.ts:1:\d+: Could not resolve "\.\/missing\.ts"/);
      return true;
    },
  );
});

/** A temp project whose node_modules is the repo's, so the entry can import our real dependencies. */
function createProjectDir(t: Parameters<typeof createTempDir>[0]): string {
  const dir = createTempDir(t);
  fs.symlinkSync(path.resolve(import.meta.dirname, `..`, `..`, `node_modules`), path.join(dir, `node_modules`));
  return dir;
}

test(`defers undici's module body to the first request, which still reaches a real server`, async (t) => {
  const dir = createProjectDir(t);
  writeFiles(dir, {
    'main.ts': [
      `import http from 'node:http';`,
      `import {request} from 'undici';`,
      `const server = http.createServer((_req, res) => res.end('pong')).listen(0, '127.0.0.1', async () => {`,
      `  const {port} = server.address() as {port: number};`,
      `  const response = await request('http://127.0.0.1:' + port + '/ping');`,
      `  process.stdout.write(response.statusCode + ' ' + await response.body.text() + '\\n');`,
      `  server.close();`,
      `});`,
    ].join(`\n`),
  });
  const outfile = path.join(dir, `out.cjs`);

  await bundleCli({entry: path.join(dir, `main.ts`), outfile, commit: `unknown`, target: `node24`});

  const source = fs.readFileSync(outfile, `utf8`);
  const calls = [...source.matchAll(/require_undici\(\)/g)];
  assert.equal(calls.length, 1, `undici is initialised from one place only`);
  assert.match(source, /function request\(\.\.\.args\) \{\s*return require_undici\(\)\.request\(\.\.\.args\);\s*\}/);
  const run = spawnSync(process.execPath, [outfile], {cwd: dir, encoding: `utf8`, timeout: 10_000});
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, `200 pong\n`);
});

test(`fails the build when src imports an undici export the lazy facade does not list`, async (t) => {
  const dir = createProjectDir(t);
  writeFiles(dir, {'main.ts': `import {Pool} from 'undici';\nconsole.log(Pool);\n`});

  await assert.rejects(
    bundleCli({entry: path.join(dir, `main.ts`), outfile: path.join(dir, `out.cjs`), commit: `unknown`, target: `node24`}),
    (error: Error & {fix?: string}) => {
      assert.equal(error.name, `BuildFailure`);
      assert.match(error.message, /No matching export in "rollbridge-lazy:undici" for import "Pool"/);
      assert.match(error.fix ?? ``, /LAZY_DEPENDENCIES/);
      return true;
    },
  );
});
