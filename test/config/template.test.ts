import assert from 'node:assert/strict';
import {test} from 'node:test';
import {buildTemplateContext, findTemplateErrors, renderTemplate} from '../../src/config/template.ts';
import type {TemplateContext} from '../../src/config/template.ts';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';

function context(overrides: Partial<TemplateContext> = {}): TemplateContext {
  return buildTemplateContext({
    application: `shop`,
    releaseId: `r42`,
    releasePath: `/srv/shop/releases/r42`,
    revision: `abc123`,
    processId: `worker`,
    replicaIndex: 1,
    replicaCount: 3,
    port: 4001,
    ports: {web: 4000, worker: 4001},
    proxy: {host: `0.0.0.0`, port: 8182, upstreamHost: `127.0.0.1`},
    env: {HOME: `/home/deploy`, EMPTY: ``},
    ...overrides,
  });
}

function templateError(text: string, ctx: TemplateContext, where = `processes[0].command`): {message: string; fix: string | undefined} {
  try {
    renderTemplate(text, ctx, where);
  } catch (error) {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_TEMPLATE_MISSING_VALUE`);
    return {message: error.message, fix: error.fix};
  }
  assert.fail(`expected ${text} to fail`);
}

test(`renders every upstream template key, with or without whitespace inside the braces`, () => {
  const text = `{{application}} {{ releaseId }} {{releasePath}} {{revision}} {{processId}} {{ replicaIndex }}/{{replicaCount}} {{port}} {{ports.web}} {{proxy.host}}:{{proxy.port}} {{proxy.upstreamHost}} {{ env.HOME }}`;
  assert.equal(renderTemplate(text, context(), `processes[0].command`), `shop r42 /srv/shop/releases/r42 abc123 worker 1/3 4001 4000 0.0.0.0:8182 127.0.0.1 /home/deploy`);
});

test(`renders an empty environment variable as an empty string and leaves other braces alone`, () => {
  assert.equal(renderTemplate(`a{{env.EMPTY}}b {{not a key}} {single}`, context(), `x`), `ab {{not a key}} {single}`);
});

test(`copies its inputs so later changes to the port map do not leak into a built context`, () => {
  const ports: Record<string, number> = {web: 4000};
  const ctx = buildTemplateContext({...context(), ports});
  ports[`web`] = 5000;
  assert.equal(renderTemplate(`{{ports.web}}`, ctx, `x`), `4000`);
});

test(`fails with ERR_TEMPLATE_MISSING_VALUE naming the key, the place and the available keys`, () => {
  const error = templateError(`node app.js --db {{database}}`, context());
  assert.equal(error.message, `Missing template value for {{database}} in processes[0].command`);
  assert.match(error.fix ?? ``, /application, releaseId, releasePath, revision, processId, replicaIndex, replicaCount, port, ports\.web, ports\.worker, proxy\.host, proxy\.port, proxy\.upstreamHost, env\.<NAME>/);
});

test(`fails for an unset environment variable, a port-less process and an unknown process port`, () => {
  assert.match(templateError(`{{env.DATABASE_URL}}`, context(), `processes[1].env.DATABASE_URL`).fix ?? ``, /^Set DATABASE_URL in the environment the rollbridge daemon starts with/);
  assert.match(templateError(`--port {{port}}`, context({port: undefined})).fix ?? ``, /processes\[\]\.port/);
  assert.match(templateError(`{{ports.beacon}}`, context()).message, /\{\{ports\.beacon\}\}/);
  assert.match(templateError(`{{constructor}}`, context()).message, /Missing template value for \{\{constructor\}\}/);
});

test(`refuses an object value instead of printing [object Object]`, () => {
  const error = templateError(`{{ports}}`, context());
  assert.match(error.message, /\{\{ports\}\} in processes\[0\]\.command is an object/);
  assert.match(error.fix ?? ``, /ports\.web, ports\.worker/);
});

test(`a mistyped key gets the closest one in the fix; findTemplateErrors reports every placeholder, env.* left alone on request`, () => {
  assert.match(templateError(`--port {{prot}}`, context()).fix ?? ``, /^Did you mean \{\{port\}\}\? Use one of the available keys in processes\[0\]\.command: /);
  assert.match(templateError(`{{releasID}}`, context()).fix ?? ``, /^Did you mean \{\{releaseId\}\}\?/);
  assert.doesNotMatch(templateError(`{{database}}`, context()).fix ?? ``, /Did you mean/);
  const text = `{{prot}} {{port}} {{env.UNSET_FOR_TEST}} {{ports.nope}}`;
  assert.deepEqual(findTemplateErrors(text, context(), `x`).map((error) => error.details.key), [`prot`, `env.UNSET_FOR_TEST`, `ports.nope`]);
  assert.deepEqual(findTemplateErrors(text, context(), `x`, {skipEnv: true}).map((error) => error.details.key), [`prot`, `ports.nope`]);
  assert.deepEqual(findTemplateErrors(`{{port}} {{ env.HOME }}`, context(), `x`), []);
});
