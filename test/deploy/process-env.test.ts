import assert from 'node:assert/strict';
import {test} from 'node:test';
import {validateConfig} from '../../src/config/schema.ts';
import {buildTemplateContext} from '../../src/config/template.ts';
import type {ProcessConfig} from '../../src/config/types.ts';
import {buildProcessEnv, processPortEnvName, renderProcessDefinition} from '../../src/deploy/process-env.ts';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';

const RELEASE_PATH = `/srv/shop/releases/r7`;

function processOf(raw: Record<string, unknown>): ProcessConfig {
  const {config, issues} = validateConfig({proxy: {}, processes: [{id: `web`, command: `w`, policy: `proxied`, port: 4000}, {id: `worker`, ...raw}]}, {configPath: `/srv/shop/rollbridge.js`});
  assert.deepEqual(issues, []);
  return config!.processes[1]!;
}

function contextFor(processId: string, replicaIndex = 0, replicaCount = 1) {
  return buildTemplateContext({
    application: `shop`,
    releaseId: `r7`,
    releasePath: RELEASE_PATH,
    revision: `deadbeef`,
    processId,
    replicaIndex,
    replicaCount,
    port: undefined,
    ports: {web: 4000, 'background-jobs-main': 4100},
    proxy: {host: `127.0.0.1`, port: 8182, upstreamHost: `127.0.0.1`},
    env: {REDIS_URL: `redis://127.0.0.1:6379`},
  });
}

test(`names process port variables by uppercasing and collapsing non-alphanumerics`, () => {
  assert.equal(processPortEnvName(`background-jobs-main`), `ROLLBRIDGE_BACKGROUND_JOBS_MAIN_PORT`);
  assert.equal(processPortEnvName(`web`), `ROLLBRIDGE_WEB_PORT`);
  assert.equal(processPortEnvName(`api.v2--beta`), `ROLLBRIDGE_API_V2_BETA_PORT`);
});

test(`layers daemon env, ROLLBRIDGE_* variables and the process env, each overriding the one before`, () => {
  const env = buildProcessEnv({
    baseEnv: {PATH: `/usr/bin`, ROLLBRIDGE_APPLICATION: `stale`, NODE_ENV: `development`, UNSET: undefined},
    application: `shop`,
    processId: `web`,
    releaseId: `r7`,
    releasePath: RELEASE_PATH,
    revision: `deadbeef`,
    replicaIndex: 0,
    replicaCount: 1,
    port: 4000,
    ports: {web: 4000, 'background-jobs-main': 4100},
    processEnv: {NODE_ENV: `production`, ROLLBRIDGE_REVISION: `pinned`},
  });
  assert.deepEqual(env, {
    PATH: `/usr/bin`,
    ROLLBRIDGE_APPLICATION: `shop`,
    NODE_ENV: `production`,
    ROLLBRIDGE_PROCESS_ID: `web`,
    ROLLBRIDGE_RELEASE_ID: `r7`,
    ROLLBRIDGE_RELEASE_PATH: RELEASE_PATH,
    ROLLBRIDGE_REVISION: `pinned`,
    ROLLBRIDGE_REPLICA_INDEX: `0`,
    ROLLBRIDGE_REPLICA_COUNT: `1`,
    ROLLBRIDGE_PORT: `4000`,
    ROLLBRIDGE_WEB_PORT: `4000`,
    ROLLBRIDGE_BACKGROUND_JOBS_MAIN_PORT: `4100`,
  });
});

test(`sets ROLLBRIDGE_PORT only for a process with a port and gives replicas their index`, () => {
  const env = buildProcessEnv({
    baseEnv: {},
    application: `shop`,
    processId: `worker`,
    releaseId: `r7`,
    releasePath: RELEASE_PATH,
    revision: `r7`,
    replicaIndex: 2,
    replicaCount: 3,
    port: undefined,
    ports: {},
    processEnv: {},
  });
  assert.equal(env[`ROLLBRIDGE_PORT`], undefined);
  assert.equal(env[`ROLLBRIDGE_REPLICA_INDEX`], `2`);
  assert.equal(env[`ROLLBRIDGE_REPLICA_COUNT`], `3`);
});

test(`renders command, cwd and env values, resolving cwd against the release path`, () => {
  const process = processOf({command: `bin/worker --queue q{{replicaIndex}} --web {{ports.web}}`, cwd: `apps/{{processId}}`, env: {REDIS_URL: `{{env.REDIS_URL}}/{{replicaIndex}}`, RELEASE: `{{releaseId}}`}});
  const rendered = renderProcessDefinition(process, contextFor(`worker`, 2, 3), {releasePath: RELEASE_PATH});
  assert.deepEqual(rendered, {
    command: `bin/worker --queue q2 --web 4000`,
    cwd: `${RELEASE_PATH}/apps/worker`,
    env: {REDIS_URL: `redis://127.0.0.1:6379/2`, RELEASE: `r7`},
  });
});

test(`uses the release path as cwd when unset and keeps an absolute cwd`, () => {
  assert.equal(renderProcessDefinition(processOf({command: `w`}), contextFor(`worker`), {releasePath: RELEASE_PATH}).cwd, RELEASE_PATH);
  assert.equal(renderProcessDefinition(processOf({command: `w`, cwd: `/opt/shared`}), contextFor(`worker`), {releasePath: RELEASE_PATH}).cwd, `/opt/shared`);
});

test(`names the failing field when a template value is missing`, () => {
  const process = processOf({command: `w`, env: {DB: `{{env.DATABASE_URL}}`}});
  assert.throws(() => renderProcessDefinition(process, contextFor(`worker`), {releasePath: RELEASE_PATH, processIndex: 1}), (error) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_TEMPLATE_MISSING_VALUE`);
    assert.equal(error.message, `Missing template value for {{env.DATABASE_URL}} in processes[1].env.DB`);
    return true;
  });
});
