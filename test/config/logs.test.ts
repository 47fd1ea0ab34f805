import assert from 'node:assert/strict';
import path from 'node:path';
import {test} from 'node:test';
import {DEFAULT_LOG_FILES, DEFAULT_LOG_MAX_BYTES} from '../../src/config/defaults.ts';
import {diffLiveReload} from '../../src/config/live-reload.ts';
import {getDefaultLogDir, getRuntimeDir} from '../../src/config/paths.ts';
import {validateConfig} from '../../src/config/schema.ts';
import type {Config} from '../../src/config/types.ts';

const CONFIG_PATH = `/srv/shop/rollbridge.js`;

function configWith(logs: unknown): Record<string, unknown> {
  return {application: `my shop`, proxy: {}, processes: [{id: `web`, command: `node server.js`, policy: `proxied`, port: 3000}], ...(logs === undefined ? {} : {logs})};
}

function validConfig(raw: unknown): Config {
  const result = validateConfig(raw, {configPath: CONFIG_PATH});
  assert.deepEqual(result.issues, []);
  assert.deepEqual(result.warnings, []);
  assert.ok(result.config);
  return result.config;
}

test(`logs defaults to a directory per application in the runtime dir, 10 MiB files and 3 rotated copies`, () => {
  assert.deepEqual(validConfig(configWith(undefined)).logs, {dir: getDefaultLogDir(`my shop`), maxBytes: DEFAULT_LOG_MAX_BYTES, files: DEFAULT_LOG_FILES});
  assert.equal(getDefaultLogDir(`my shop`), path.join(getRuntimeDir(), `my_shop-logs`));
  assert.deepEqual([DEFAULT_LOG_MAX_BYTES, DEFAULT_LOG_FILES], [10 * 1024 * 1024, 3]);
  assert.deepEqual(validConfig(configWith(null)).logs, validConfig(configWith({})).logs);
});

test(`logs.dir resolves against the config file's directory; maxBytes and files take overrides`, () => {
  assert.deepEqual(validConfig(configWith({dir: `log`, maxBytes: 1_000, files: 0})).logs, {dir: `/srv/shop/log`, maxBytes: 1_000, files: 0});
  assert.equal(validConfig(configWith({dir: `/var/log/shop`})).logs.dir, `/var/log/shop`);
});

test(`rejects an empty logs.dir, a maxBytes that is not a positive integer and a negative files`, () => {
  const result = validateConfig(configWith({dir: ``, maxBytes: 0, files: -1}), {configPath: CONFIG_PATH});
  assert.equal(result.config, null);
  assert.deepEqual(result.issues.map((issue) => issue.path).sort(), [`logs.dir`, `logs.files`, `logs.maxBytes`]);
  for (const issue of result.issues) assert.match(issue.fix, /logs\./);
});

test(`a changed logs section applies on the next deploy without a daemon restart`, () => {
  assert.deepEqual(diffLiveReload(validConfig(configWith(undefined)), validConfig(configWith({dir: `/var/log/shop`, maxBytes: 5, files: 1}))), []);
});
