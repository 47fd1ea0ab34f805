// The published JSON Schemas (docs/schemas/*.schema.json) loaded into one draft 2020-12 validator, so
// tests check real outputs against exactly what integrations are told to expect.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {Ajv2020} from 'ajv/dist/2020.js';
import type {ValidateFunction} from 'ajv/dist/2020.js';
import {REPO_ROOT} from './run-cli.ts';

export const SCHEMA_DIR = path.join(REPO_ROOT, `docs`, `schemas`);
const BASE_URI = `https://rollbridge.invalid/schemas/`;

/** Every schema file name in docs/schemas. */
export function listSchemaFiles(): string[] {
  return fs.readdirSync(SCHEMA_DIR).filter((name) => name.endsWith(`.schema.json`)).sort();
}

let ajv: Ajv2020 | undefined;

/** A strict validator holding every published schema (each one compiled: a broken schema throws here). */
export function loadSchemas(): Ajv2020 {
  if (ajv) return ajv;
  const instance = new Ajv2020({strict: true, allErrors: true, allowUnionTypes: true});
  for (const name of listSchemaFiles()) instance.addSchema(JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, name), `utf8`)) as object);
  for (const name of listSchemaFiles()) instance.getSchema(BASE_URI + name);
  ajv = instance;
  return instance;
}

function validatorFor(name: string): ValidateFunction {
  const validate = loadSchemas().getSchema(BASE_URI + name);
  assert.ok(validate, `docs/schemas/${name} exists`);
  return validate;
}

/** Fails with every schema violation when `value` does not match docs/schemas/<name>. */
export function assertMatchesSchema(name: string, value: unknown, what = name): void {
  const validate = validatorFor(name);
  if (!validate(value)) {
    assert.fail(`${what} does not match docs/schemas/${name}:\n${JSON.stringify(validate.errors, null, 2)}\n${JSON.stringify(value, null, 2).slice(0, 4_000)}`);
  }
}

/** True when `value` matches docs/schemas/<name> (for tests that a schema rejects a wrong shape). */
export function matchesSchema(name: string, value: unknown): boolean {
  return validatorFor(name)(value) === true;
}
