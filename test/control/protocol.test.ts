import assert from 'node:assert/strict';
import {test} from 'node:test';
import {
  ControlCommands, createLineDecoder, createSuccessFrame, decodeRequestLine, decodeResponseLine, validateParams, validateResult,
} from '../../src/control/protocol.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as {code: string}).code;
  }
  return `no error`;
}

test(`defines params and result schemas for every command`, () => {
  assert.deepEqual(Object.keys(ControlCommands).sort(), [`deploy`, `events`, `logs`, `replace`, `restart`, `rollback`, `shutdown`, `status`, `stop`, `takeover`, `pause`, `resume`, `maintenance`].sort());
});

test(`splits a request line into id, command and params`, () => {
  assert.deepEqual(decodeRequestLine(`{"id":3,"command":"deploy","releasePath":"/srv/r1"}`), {id: 3, command: `deploy`, params: {releasePath: `/srv/r1`}});
  assert.deepEqual(decodeRequestLine(`{"command":"status"}`), {id: null, command: `status`, params: {}});
});

test(`keeps the request id on errors raised after the id was read`, () => {
  try {
    decodeRequestLine(`{"id":"x","command":"nope"}`);
    assert.fail(`expected an error`);
  } catch (error) {
    assert.equal((error as {details: {id: unknown}}).details.id, `x`);
  }
});

test(`accepts release ids up to 200 characters and rejects unsafe ones`, () => {
  assert.deepEqual(validateParams(`stop`, {releaseId: `2026-01-01_a.b`}), {releaseId: `2026-01-01_a.b`});
  assert.deepEqual(validateParams(`stop`, {releaseId: `a`.repeat(200)}), {releaseId: `a`.repeat(200)});
  for (const releaseId of [``, `.hidden`, `a/b`, `a b`, `a`.repeat(201), 5]) {
    assert.equal(codeOf(() => validateParams(`stop`, {releaseId})), `ERR_CONTROL_INVALID_REQUEST`, JSON.stringify(releaseId));
  }
});

test(`accepts the optional deploy params and rejects wrong types`, () => {
  const params = {releasePath: `/srv/r1`, releaseId: `r1`, revision: `abc`, wait: false, dryRun: true, skipHealthCheck: true};
  assert.deepEqual(validateParams(`deploy`, params), params);
  assert.equal(codeOf(() => validateParams(`deploy`, {releasePath: `/srv/r1`, dryRun: `yes`})), `ERR_CONTROL_INVALID_REQUEST`);
  assert.equal(codeOf(() => validateParams(`events`, {limit: 1.5})), `ERR_CONTROL_INVALID_REQUEST`);
  assert.equal(codeOf(() => validateParams(`restart`, {names: [`web`, 3]})), `ERR_CONTROL_INVALID_REQUEST`);
});

test(`validates results: status loosely, deploy strictly on known fields`, () => {
  assert.deepEqual(validateResult(`status`, {application: `a`, activeReleaseId: null, releases: []}), {application: `a`, activeReleaseId: null, releases: []});
  assert.equal(codeOf(() => validateResult(`status`, {activeReleaseId: null})), `ERR_CONTROL_INVALID_RESPONSE`);
  assert.equal(codeOf(() => validateResult(`deploy`, {activeReleaseId: `r1`, previousReleaseId: null, releaseId: `r1`})), `ERR_CONTROL_INVALID_RESPONSE`);
  assert.equal(codeOf(() => validateResult(`shutdown`, {message: `bye`})), `ERR_CONTROL_INVALID_RESPONSE`);
});

test(`never lets a result overwrite the frame's id or status`, () => {
  assert.deepEqual(createSuccessFrame(1, {status: `success`, id: 9, application: `a`}), {id: 1, status: `success`, application: `a`});
});

test(`decodes success, progress and error frames, including upstream's id-less string errors`, () => {
  assert.deepEqual(decodeResponseLine(`{"id":1,"status":"progress","event":{"phase":"x"}}`), {id: 1, status: `progress`, event: {phase: `x`}});
  assert.deepEqual(decodeResponseLine(`{"status":"error","error":"boom"}`), {id: null, status: `error`, error: {code: `ERR_INTERNAL`, message: `boom`, details: {legacy: true}}});
  assert.deepEqual(decodeResponseLine(`{"id":"a","status":"error","error":{"code":"ERR_X","message":"m","fix":"f"}}`), {id: `a`, status: `error`, error: {code: `ERR_X`, message: `m`, fix: `f`}});
  for (const line of [`[]`, `{"status":"weird"}`, `{"id":1,"status":"progress"}`, `{"status":"error","error":{}}`, `{"id":[1],"status":"success"}`]) {
    assert.equal(codeOf(() => decodeResponseLine(line)), `ERR_CONTROL_INVALID_RESPONSE`, line);
  }
});

test(`the line decoder joins chunks, handles several lines per chunk and multi-byte characters split across chunks`, () => {
  const lines: string[] = [];
  const decode = createLineDecoder({maxLineBytes: 100, onLine: (line) => lines.push(line), onOverflow: () => assert.fail(`no overflow`)});
  const bytes = Buffer.from(`{"a":"é"}\r\n\n{"b":2}\n{"c"`);
  decode(bytes.subarray(0, 7));
  decode(bytes.subarray(7));
  decode(Buffer.from(`:3}\n`));
  assert.deepEqual(lines, [`{"a":"é"}`, `{"b":2}`, `{"c":3}`]);
});

test(`the line decoder overflows as soon as a pending line passes the limit, before any newline, then ignores the rest`, () => {
  const lines: string[] = [];
  let overflows = 0;
  const decode = createLineDecoder({maxLineBytes: 10, onLine: (line) => lines.push(line), onOverflow: () => overflows++});
  decode(Buffer.from(`0123456789`));
  assert.equal(overflows, 0);
  decode(Buffer.from(`a`));
  assert.equal(overflows, 1);
  decode(Buffer.from(`\n{"ok":1}\n`));
  assert.equal(overflows, 1);
  assert.deepEqual(lines, []);
});

test(`the line decoder rejects a complete over-long line arriving in one chunk`, () => {
  let overflows = 0;
  const lines: string[] = [];
  const decode = createLineDecoder({maxLineBytes: 4, onLine: (line) => lines.push(line), onOverflow: () => overflows++});
  decode(Buffer.from(`ok\ntoo long\nok\n`));
  assert.deepEqual(lines, [`ok`]);
  assert.equal(overflows, 1);
});
