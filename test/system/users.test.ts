import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {resolveGroupId, resolveUserId} from '../../src/system/users.ts';
import {createTempDir} from '../helpers/temp-dir.ts';

test(`resolves root and numeric ids`, () => {
  assert.equal(resolveUserId(`root`), 0);
  assert.equal(resolveGroupId(`root`), 0);
  assert.equal(resolveUserId(0), 0);
  assert.equal(resolveUserId(`1000`), 1000);
  assert.equal(resolveGroupId(` 42 `), 42);
});

test(`rejects an unknown user with ERR_USER_UNKNOWN and a group with ERR_GROUP_UNKNOWN`, () => {
  assert.throws(() => resolveUserId(`no-such-user-rb`), (error: {code: string; fix: string}) => {
    assert.equal(error.code, `ERR_USER_UNKNOWN`);
    assert.match(error.fix, /numeric id in control\.owner/);
    return true;
  });
  assert.throws(() => resolveGroupId(`no-such-group-rb`), {code: `ERR_GROUP_UNKNOWN`});
  assert.throws(() => resolveUserId(-1), {code: `ERR_USER_UNKNOWN`});
  assert.throws(() => resolveUserId(``), {code: `ERR_USER_UNKNOWN`});
});

test(`reads names from the given database file, skipping comments and malformed lines`, (t) => {
  const file = path.join(createTempDir(t, `rbu-`), `passwd`);
  fs.writeFileSync(file, `# comment\nbroken\ndeploy:x:1234:1234::/home/deploy:/bin/sh\nweird:x:abc:1::/:/bin/sh\n`);
  assert.equal(resolveUserId(`deploy`, {databasePath: file}), 1234);
  assert.throws(() => resolveUserId(`weird`, {databasePath: file}), {code: `ERR_USER_UNKNOWN`});
  assert.throws(() => resolveUserId(`deploy`, {databasePath: path.join(path.dirname(file), `missing`)}), {code: `ERR_USER_UNKNOWN`});
});
