// The binary's CLI loader and the build's training run share bundle/cli-script.ts: a code cache made after
// running the wrapped bundle must be accepted when the same text is compiled again, and any other text
// must still run (V8 rejects the cache and compiles).
import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {runCliScript, wrapCommonJs} from '../../bundle/cli-script.ts';
import {createTempDir} from '../helpers/temp-dir.ts';

const BUNDLE = `"use strict";\nconst os = require("node:os");\nmodule.exports = {runCli: async (argv) => argv.length + os.EOL.length};\n`;

test(`the wrapped bundle runs as a CommonJS module that requires Node built-ins`, async () => {
  const {cli, cache} = runCliScript(wrapCommonJs(BUNDLE), {filename: `/nonexistent/rollbridge-cli.cjs`});

  assert.equal(cache, `absent`);
  assert.equal(await cli.runCli([`a`, `b`], {} as never), 3);
});

test(`a cache made after a run is accepted for the same text (in a fresh process) and rejected for another`, (t) => {
  const dir = createTempDir(t);
  const cacheFile = path.join(dir, `cli.cache`);
  const script = path.join(dir, `probe.ts`);
  const module = path.resolve(import.meta.dirname, `..`, `..`, `bundle`, `cli-script.ts`);
  fs.writeFileSync(script, [
    `import fs from 'node:fs';`,
    `import {runCliScript, wrapCommonJs} from ${JSON.stringify(module)};`,
    `const [mode, text, cacheFile] = process.argv.slice(2);`,
    `const cachedData = mode === 'make' ? undefined : fs.readFileSync(cacheFile);`,
    `const loaded = runCliScript(wrapCommonJs(text), {filename: '/x/rollbridge-cli.cjs', cachedData});`,
    `const code = await loaded.cli.runCli(['a'], {});`,
    `if (mode === 'make') fs.writeFileSync(cacheFile, loaded.script.createCachedData());`,
    `process.stdout.write(loaded.cache + ' ' + code);`,
  ].join(`\n`));
  const run = (mode: string, text: string) => spawnSync(process.execPath, [script, mode, text, cacheFile], {encoding: `utf8`});

  assert.equal(run(`make`, BUNDLE).stdout, `absent 2`);
  assert.equal(run(`use`, BUNDLE).stdout, `accepted 2`);
  assert.equal(run(`use`, `${BUNDLE}// another build\n`).stdout, `rejected 2`);
});
