import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {resolveLegacyUser} from '../../src/takeover/legacy-user.ts';
import {isRollbridgeError} from '../../src/errors/rollbridge-error.ts';
import {createTempDir} from '../helpers/temp-dir.ts';

function passwd(t: Parameters<typeof createTempDir>[0]): string {
  const file = path.join(createTempDir(t), `passwd`);
  fs.writeFileSync(file, `# comment\nroot:x:0:0:root:/root:/bin/sh\ndeploy:x:1234:1234::/home/deploy:/bin/sh\n`);
  return file;
}

test(`defaults to the user running rollbridge`, () => {
  assert.deepEqual(resolveLegacyUser(undefined), {name: os.userInfo().username, uid: process.getuid?.()});
});

test(`resolves a user name to its uid and a uid (number or digits) to its name`, (t) => {
  const passwdPath = passwd(t);
  assert.deepEqual(resolveLegacyUser(`deploy`, {passwdPath}), {name: `deploy`, uid: 1234});
  assert.deepEqual(resolveLegacyUser(1234, {passwdPath}), {name: `deploy`, uid: 1234});
  assert.deepEqual(resolveLegacyUser(`1234`, {passwdPath}), {name: `deploy`, uid: 1234});
});

test(`keeps the digits as the name of a uid without a passwd entry`, (t) => {
  assert.deepEqual(resolveLegacyUser(4321, {passwdPath: passwd(t)}), {name: `4321`, uid: 4321});
});

test(`rejects an unknown user name with ERR_USER_UNKNOWN naming legacyTakeover.user`, (t) => {
  assert.throws(() => resolveLegacyUser(`ghost`, {passwdPath: passwd(t)}), (error) => {
    assert.ok(isRollbridgeError(error));
    assert.equal(error.code, `ERR_USER_UNKNOWN`);
    assert.match(error.message, /User "ghost" of legacyTakeover.user not found/);
    assert.match(error.fix ?? ``, /legacyTakeover\.user/);
    return true;
  });
});
