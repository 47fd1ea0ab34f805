import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {fileURLToPath} from 'node:url';
import {ConfigError, formatValidationReport, loadConfig, loadRawConfig, resolveConfigPath, validateConfigFile} from '../../src/config/load.ts';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {createTempDir} from '../helpers/temp-dir.ts';

const FIXTURES = fileURLToPath(new URL(`../fixtures/configs/`, import.meta.url));

function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

function webConfig(port: number): string {
  return `{proxy: {port: ${port}}, processes: [{id: 'web', command: 'node server.js', policy: 'proxied', port: 3000}]}`;
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<Error & {code: string; fix?: string}> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isRollbridgeError(error), `expected a RollbridgeError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error as Error & {code: string; fix?: string};
  }
  assert.fail(`expected a rejection with ${code}`);
}

test(`resolveConfigPath makes an explicit path absolute against the working directory`, (t) => {
  const dir = createTempDir(t);
  assert.equal(resolveConfigPath({cwd: dir, configPath: `deploy/app.js`}), path.join(dir, `deploy/app.js`));
  assert.equal(resolveConfigPath({cwd: dir, configPath: `/etc/rollbridge/app.js`}), `/etc/rollbridge/app.js`);
});

test(`resolveConfigPath finds rollbridge.js first, then the other default names, skipping directories`, (t) => {
  const dir = createTempDir(t);
  fs.mkdirSync(path.join(dir, `rollbridge.js`));
  fs.writeFileSync(path.join(dir, `rollbridge.json`), `{}`);
  assert.equal(resolveConfigPath({cwd: dir}), path.join(dir, `rollbridge.json`));
  fs.writeFileSync(path.join(dir, `rollbridge.cjs`), ``);
  assert.equal(resolveConfigPath({cwd: dir}), path.join(dir, `rollbridge.cjs`));
});

test(`resolveConfigPath throws ERR_CONFIG_NOT_FOUND with a fix when no default config exists`, async (t) => {
  const dir = createTempDir(t);
  const error = await rejectsWithCode(Promise.resolve().then(() => resolveConfigPath({cwd: dir})), `ERR_CONFIG_NOT_FOUND`);
  assert.equal(error.message, `No config file found in ${dir}`);
  assert.equal(error.fix, `Pass --config <path> or add rollbridge.js (or rollbridge.json) to ${dir}`);
});

test(`loads every config format written for the old tool`, async () => {
  const cases: Array<[string, string, string, number]> = [
    [`esm`, `rollbridge.js`, `esm`, 8182],
    [`commonjs`, `rollbridge.js`, `commonjs`, 8183],
    [`sync-function`, `rollbridge.cjs`, `sync-app`, 8182],
    [`async-function`, `rollbridge.mjs`, `async-app`, 0],
    [`json`, `rollbridge.json`, `json`, 8184],
  ];
  for (const [dir, file, application, port] of cases) {
    const {config, warnings} = await loadConfig({cwd: fixture(dir)});
    assert.equal(config.configPath, path.join(fixture(dir), file), dir);
    assert.equal(config.application, application, dir);
    assert.equal(config.proxy.port, port, dir);
    assert.deepEqual(warnings, [], dir);
  }
});

test(`loads the upstream README topology with every policy`, async () => {
  const {config, warnings} = await loadConfig({cwd: process.cwd(), configPath: fixture(`upstream-readme/rollbridge.js`)});
  assert.deepEqual(warnings, []);
  assert.equal(config.application, `tensorbuzz`);
  assert.deepEqual(config.processes.map((entry) => [entry.id, entry.policy]), [
    [`web`, `proxied`],
    [`background-jobs-worker`, `companion`],
    [`beacon`, `service`],
    [`background-jobs-main`, `singleton`],
  ]);
  const worker = config.processes[1];
  assert.equal(worker?.replicas, 2);
  assert.equal(worker?.gracefulStopMs, `indefinite`);
  assert.deepEqual(config.processes[2]?.port, {from: 4100, to: 4100});
  assert.equal(config.releaseRetention.keep, 5);
});

test(`detects ESM and CommonJS syntax in a .js file outside any package`, async (t) => {
  const dir = createTempDir(t);
  const esm = path.join(dir, `esm.js`);
  const cjs = path.join(dir, `cjs.js`);
  fs.writeFileSync(esm, `export default ${webConfig(1)};\n`);
  fs.writeFileSync(cjs, `module.exports = ${webConfig(2)};\n`);
  assert.equal((await loadConfig({cwd: dir, configPath: esm})).config.proxy.port, 1);
  assert.equal((await loadConfig({cwd: dir, configPath: cjs})).config.proxy.port, 2);
});

test(`reloads an edited CommonJS config`, async (t) => {
  const dir = createTempDir(t);
  const file = path.join(dir, `rollbridge.cjs`);
  fs.writeFileSync(file, `module.exports = ${webConfig(9001)};\n`);
  assert.equal((await loadConfig({cwd: dir})).config.proxy.port, 9001);
  fs.writeFileSync(file, `module.exports = ${webConfig(9002)};\n`);
  assert.equal((await loadConfig({cwd: dir})).config.proxy.port, 9002);
});

test(`reloads an edited ES module config`, async (t) => {
  const dir = createTempDir(t);
  const file = path.join(dir, `rollbridge.mjs`);
  fs.writeFileSync(file, `export default ${webConfig(9101)};\n`);
  assert.equal((await loadConfig({cwd: dir})).config.proxy.port, 9101);
  fs.writeFileSync(file, `export default ${webConfig(9102)};\n`);
  assert.equal((await loadConfig({cwd: dir})).config.proxy.port, 9102);
});

test(`calls a function export on every load`, async (t) => {
  const dir = createTempDir(t);
  const file = path.join(dir, `rollbridge.mjs`);
  const counter = path.join(dir, `calls`);
  fs.writeFileSync(file, `import fs from 'node:fs';\nexport default () => { fs.appendFileSync(${JSON.stringify(counter)}, 'x'); return ${webConfig(1)}; };\n`);
  await loadRawConfig(file);
  await loadRawConfig(file);
  assert.equal(fs.readFileSync(counter, `utf8`), `xx`);
});

test(`reports syntax errors, missing default exports, throwing functions and bad JSON as ERR_CONFIG_LOAD_FAILED`, async (t) => {
  const dir = createTempDir(t);
  const write = (name: string, text: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };
  const syntax = await rejectsWithCode(loadRawConfig(write(`syntax.mjs`, `export default {proxy: {}, processes: [}\n`)), `ERR_CONFIG_LOAD_FAILED`);
  assert.match(syntax.message, /Unexpected token/);
  assert.equal(syntax.fix, `Fix the syntax error in ${path.join(dir, `syntax.mjs`)}`);
  const cjsSyntax = await rejectsWithCode(loadRawConfig(write(`syntax.cjs`, `module.exports = {\n  proxy: {,\n};\n`)), `ERR_CONFIG_LOAD_FAILED`);
  assert.match(cjsSyntax.message, /syntax\.cjs:2/);
  const noDefault = await rejectsWithCode(loadRawConfig(write(`named.mjs`, `export const proxy = {};\n`)), `ERR_CONFIG_LOAD_FAILED`);
  assert.match(noDefault.message, /has no default export/);
  assert.equal(noDefault.fix, `Export a config object or function (export default {...} or module.exports = {...})`);
  const throwing = await rejectsWithCode(loadRawConfig(write(`throws.mjs`, `export default async () => { throw new Error('vault unreachable'); };\n`)), `ERR_CONFIG_LOAD_FAILED`);
  assert.match(throwing.message, /failed: vault unreachable/);
  const json = await rejectsWithCode(loadRawConfig(write(`bad.json`, `{"proxy": }`)), `ERR_CONFIG_LOAD_FAILED`);
  assert.match(json.fix ?? ``, /Fix the JSON syntax in/);
  await rejectsWithCode(loadRawConfig(path.join(dir, `missing.js`)), `ERR_CONFIG_NOT_FOUND`);
});

test(`loadConfig throws a ConfigError listing every issue`, async (t) => {
  const dir = createTempDir(t);
  const file = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(file, JSON.stringify({proxy: {port: -1}, processes: [{id: `web`, command: `x`}]}));
  const error = await rejectsWithCode(loadConfig({cwd: dir}), `ERR_CONFIG_INVALID`);
  assert.ok(error instanceof ConfigError);
  assert.equal(error.issues.length, 2);
  assert.match(error.message, new RegExp(`^Invalid config ${file}: 2 issues\\n  - Expected proxy.port`));
  assert.equal(error.fix, `Run "rollbridge validate --config ${file}" to see every issue with its fix`);
  assert.deepEqual(error.toWire().details?.[`issues`], error.issues);
});

test(`validateConfigFile reports a missing config as an issue without a path`, async (t) => {
  const dir = createTempDir(t);
  const result = await validateConfigFile({cwd: dir});
  assert.equal(result.path, null);
  assert.equal(result.config, null);
  assert.equal(result.issues.length, 1);
  assert.match(result.issues[0]?.fix ?? ``, /Pass --config <path>/);
  const report = formatValidationReport(result, {json: true});
  assert.equal(report.exitCode, 1);
  assert.deepEqual(JSON.parse(report.stdout), {config: null, issues: result.issues, warnings: [], notices: [], path: null, valid: false});
});

test(`validateConfigFile turns a load failure into a single issue`, async (t) => {
  const dir = createTempDir(t);
  const file = path.join(dir, `rollbridge.mjs`);
  fs.writeFileSync(file, `export default {`);
  const result = await validateConfigFile({cwd: dir});
  assert.equal(result.path, file);
  assert.equal(result.issues.length, 1);
  assert.match(result.issues[0]?.fix ?? ``, /Fix the syntax error/);
});

test(`formats a valid config with its process count, proxy address and warnings`, async (t) => {
  const dir = createTempDir(t);
  const file = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(file, JSON.stringify({proxy: {port: 9000, drainTimeout: 1}, processes: [{id: `web`, command: `x`, policy: `proxied`, port: {from: 3000, to: 3009}}]}));
  const result = await validateConfigFile({cwd: dir});
  const text = formatValidationReport(result, {json: false});
  assert.equal(text.exitCode, 0);
  assert.equal(text.stdout, `${file} is valid: 1 process, proxy on 127.0.0.1:9000.\n`);
  assert.equal(text.stderr, `Found 1 warning in ${file}:\n\n1. Unknown key "proxy.drainTimeout"\n   Fix: Did you mean "proxy.drainTimeoutMs"? Remove the key if it is not a typo.\n`);
  const json = JSON.parse(formatValidationReport(result, {json: true}).stdout) as Record<string, unknown>;
  assert.deepEqual(json[`config`], {application: path.basename(dir), processes: 1, proxy: {host: `127.0.0.1`, port: 9000}});
  assert.equal(json[`valid`], true);
  assert.equal(json[`path`], file);
  assert.equal((json[`warnings`] as unknown[]).length, 1);
});

test(`formats every issue of an invalid config with its fix and exits 1`, async (t) => {
  const dir = createTempDir(t);
  const file = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(file, JSON.stringify({proxy: {}, processes: [{id: `web`, command: `x`, policy: `proxied`}, {id: `web`, command: `y`}]}));
  const result = await validateConfigFile({cwd: dir});
  const text = formatValidationReport(result, {json: false});
  assert.equal(text.exitCode, 1);
  assert.equal(text.stdout, ``);
  const lines = text.stderr.split(`\n`);
  assert.equal(lines[0], `Found 2 configuration issues in ${file}:`);
  assert.equal(lines[1], ``);
  assert.match(lines[2] ?? ``, /^1\. Proxied process "web" has no port$/);
  assert.match(lines[3] ?? ``, /^ {3}Fix: Set processes\[0\]\.port/);
  assert.equal(lines[4], ``);
  assert.match(lines[5] ?? ``, /^2\. Duplicate process id "web"/);
  const json = JSON.parse(formatValidationReport(result, {json: true}).stdout) as {issues: Array<{path: string; message: string; fix: string}>; valid: boolean};
  assert.equal(json.valid, false);
  assert.deepEqual(json.issues.map((issue) => issue.path), [`processes[0].port`, `processes[1].id`]);
});
