// The API's argument mapping and its handling of a binary's answers, with stand-in binaries (shell
// scripts) at the one seam the package has: the binary it runs (`binary` / ROLLBRIDGE_BIN).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {resolveBinary} from '../../../integrations/npm/src/resolve-binary.ts';
import {isRollbridgeError} from '../../../integrations/npm/src/rollbridge-error.ts';
import {runJson, runLines, toArgs} from '../../../integrations/npm/src/run-binary.ts';
import {isPidAlive} from '../../helpers/processes.ts';
import {createTempDir} from '../../helpers/temp-dir.ts';
import {waitFor} from '../../helpers/wait-for.ts';

function script(dir: string, name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, {mode: 0o755});
  return file;
}

test(`options become the kebab-case flags of the command; false is --no-flag; names go after --`, () => {
  assert.deepEqual(toArgs([`deploy`], {config: `rb.json`, releasePath: `r/1`, dryRun: true, wait: false, daemonStartTimeoutMs: 500, watch: undefined, cwd: `/x`, signal: undefined}),
    [`deploy`, `--config`, `rb.json`, `--release-path`, `r/1`, `--dry-run`, `--no-wait`, `--daemon-start-timeout-ms`, `500`]);
  assert.deepEqual(toArgs([`restart`], {names: [`worker`, `--cron`], cooldown: `5s`}, {positional: `names`}), [`restart`, `--cooldown`, `5s`, `--`, `worker`, `--cron`]);
  assert.throws(() => toArgs([`deploy`], {releasePath: {path: `x`}}), /Option "releasePath" must be a string, a finite number or a boolean \(got \{"path":"x"\}\)/);
  assert.throws(() => toArgs([`deploy`], {'release-path': `x`}), /Option "release-path" is not a camelCase flag name/);
  assert.throws(() => toArgs([`restart`], {names: `web`}, {positional: `names`}), /Option "names" must be an array of strings/);
});

test(`an {"error"} answer is thrown with its code, message, fix and the exit code; other output is ERR_NPM_BINARY_FAILED`, async (t) => {
  const dir = createTempDir(t);
  const failing = script(dir, `failing`, `echo '{"error":{"code":"ERR_RELEASE_NOT_FOUND","message":"Release not found: r9","fix":"Run rollbridge status"}}'; exit 1`);
  await assert.rejects(runJson([`rollback`], {binary: failing}), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.deepEqual([error.code, error.message, error.fix, error.exitCode], [`ERR_RELEASE_NOT_FOUND`, `Release not found: r9`, `Run rollbridge status`, 1]);
    return true;
  });
  const garbage = script(dir, `garbage`, `echo 'Segmentation fault' >&2; kill -SEGV $$`);
  await assert.rejects(runJson([`status`], {binary: garbage}), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_NPM_BINARY_FAILED`);
    assert.match(error.message, /`rollbridge status` was killed by SIGSEGV without a JSON answer: Segmentation fault/);
    return true;
  });
  const ok = script(dir, `ok`, `echo "{\\"status\\":\\"success\\",\\"args\\":\\"$*\\"}"`);
  assert.deepEqual(await runJson([`status`], {binary: ok}), {status: `success`, args: `status --json`});
});

test(`aborting stops the binary and rejects with the signal's reason; leaving a stream early stops it too`, async (t) => {
  const dir = createTempDir(t);
  const pidFile = path.join(dir, `pid`);
  const slow = script(dir, `slow`, `echo $$ > "${pidFile}"; echo '{"type":"phase","phase":"started"}'; exec sleep 300`);
  const controller = new AbortController();
  const pending = runJson([`deploy`], {binary: slow, signal: controller.signal});
  const pid = await waitFor(() => fs.existsSync(pidFile) && Number(fs.readFileSync(pidFile, `utf8`)) || null, {what: `the stand-in binary`});
  controller.abort(new Error(`cancelled by the test`));
  await assert.rejects(pending, /cancelled by the test/);
  await waitFor(() => !isPidAlive(pid), {what: `the aborted binary to exit`});

  fs.rmSync(pidFile);
  for await (const line of runLines([`deploy`], {binary: slow})) {
    assert.deepEqual(line, {type: `phase`, phase: `started`});
    break;
  }
  const streamed = Number(fs.readFileSync(pidFile, `utf8`));
  await waitFor(() => !isPidAlive(streamed), {what: `the binary of the abandoned stream to exit`});
});

test(`ROLLBRIDGE_BIN is resolved against cwd, and a missing platform package names both ways to fix it`, (t) => {
  const dir = createTempDir(t);
  script(dir, `rb`, `exit 0`);
  assert.equal(resolveBinary({env: {ROLLBRIDGE_BIN: `rb`}, cwd: dir}), path.join(dir, `rb`));
  assert.throws(() => resolveBinary({env: {}, platform: `linux`, arch: `x64`, from: path.join(dir, `index.js`)}), (error: unknown) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_NPM_BINARY_NOT_FOUND`);
    assert.match(error.message, /@rollbridge\/linux-x64 is not installed and ROLLBRIDGE_BIN is not set/);
    return true;
  });
  assert.throws(() => resolveBinary({env: {}, platform: `darwin`, arch: `arm64`}), /no binary package for darwin-arm64/);
});
