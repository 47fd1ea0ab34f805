import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {createCli} from '../../src/cli/cli.ts';
import {loadCommands} from '../../src/cli/command-registry.ts';
import {SCHEMA_DIR, assertMatchesSchema, listSchemaFiles, loadSchemas, matchesSchema} from '../helpers/json-schemas.ts';

const ALL_COMMANDS = await loadCommands();

/** The schema files a command's `--json` outputs need, from its options (the README table lists them). */
function requiredSchemas(): Map<string, string[]> {
  const required = new Map<string, string[]>();
  for (const definition of createCli({commands: ALL_COMMANDS}).definitions()) {
    const options = definition.options.map((option) => option.definition);
    if (!options.includes(`--json`)) continue;
    const command = definition.path.replace(/^rollbridge /, ``).replace(/^--version$/, `version`);
    // The daemon prints its JSON-lines log; --json only shapes a start-up failure (error.schema.json).
    const files = command === `daemon` ? [`error.schema.json`] : [`${command}.schema.json`, `error.schema.json`];
    if (options.includes(`--stream`)) files.push(`stream-line.schema.json`);
    if (options.some((option) => option.startsWith(`--follow`))) files.push(`${command}-follow-line.schema.json`);
    if (command === `status` && options.includes(`--check`)) files.push(`status-check.schema.json`);
    if (command === `deploy` && options.includes(`--dry-run`)) files.push(`deploy-dry-run.schema.json`);
    required.set(command, files);
  }
  return required;
}

test(`docs/schemas has a JSON Schema for every --json output of every command, and the README lists each file`, () => {
  const files = new Set(listSchemaFiles());
  const required = requiredSchemas();
  assert.ok(required.size >= 17, `the commands with --json were found (${[...required.keys()].join(`, `)})`);
  for (const [command, names] of required) {
    for (const name of names) assert.ok(files.has(name), `${command} --json needs docs/schemas/${name}`);
  }
  const readme = fs.readFileSync(path.join(SCHEMA_DIR, `README.md`), `utf8`);
  const listed = new Set([...readme.matchAll(/\]\(([a-z0-9-]+\.schema\.json)\)/g)].map((match) => match[1]));
  assert.deepEqual([...listed].sort(), [...files].sort(), `docs/schemas/README.md links every schema file, and only those`);
  const used = new Set([...required.values()].flat().concat(`common.schema.json`));
  assert.deepEqual([...files].filter((name) => !used.has(name)), [], `no schema is left over from a removed output`);
});

test(`every schema is valid draft 2020-12 (strict), names its $id after its file, and resolves its references`, () => {
  const ajv = loadSchemas();
  for (const name of listSchemaFiles()) {
    const schema = JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, name), `utf8`)) as {$schema: string; $id: string; title: string; description: string};
    assert.equal(schema.$schema, `https://json-schema.org/draft/2020-12/schema`, name);
    assert.equal(schema.$id, `https://rollbridge.invalid/schemas/${name}`, name);
    assert.ok(schema.title && schema.description, `${name} has a title and a description`);
    assert.ok(ajv.getSchema(schema.$id), `${name} compiles`);
  }
});

test(`the schemas reject the shapes integrations must not accept`, () => {
  assert.equal(matchesSchema(`error.schema.json`, {error: {code: `not-a-code`, message: `x`}}), false);
  assert.equal(matchesSchema(`stream-line.schema.json`, {type: `result`, status: `success`}), false, `a result line carries changed`);
  assert.equal(matchesSchema(`stream-line.schema.json`, {type: `phase`}), false, `a phase line names its phase`);
  assert.equal(matchesSchema(`deploy.schema.json`, {status: `success`, activeReleaseId: `r1`, previousReleaseId: null, releaseId: `r1`, durationMs: 1}), false, `changed is required`);
  assert.equal(matchesSchema(`deploy.schema.json`, {status: `success`, changed: true, dryRun: true, daemonRunning: false, releaseId: `r1`}), false, `a dry run carries its plan`);
  assertMatchesSchema(`stream-line.schema.json`, {type: `phase`, phase: `started`, releaseId: `r1`, processId: `web`, pid: 12, port: 4000, durationMs: 3});
  assertMatchesSchema(`stream-line.schema.json`, {type: `error`, error: {code: `ERR_USAGE`, message: `x`, fix: `y`}});
  assertMatchesSchema(`stream-line.schema.json`, {type: `phase`, phase: `waiting`, releaseId: null, wait: `queue`, behind: {command: `deploy r1`, startedAt: `2026-12-01T20:00:00.000Z`, queued: 0}, detail: `the deploy queue: behind deploy r1`});
  assert.equal(matchesSchema(`stream-line.schema.json`, {type: `phase`, phase: `waiting`, wait: `queue`, behind: {command: `deploy r1`}}), false, `a queue wait says since when and how many wait before it`);
  assert.equal(matchesSchema(`stream-line.schema.json`, {type: `phase`, phase: `waiting`, wait: `health`, timeoutMs: -1}), false, `a timeout is not negative`);
});
