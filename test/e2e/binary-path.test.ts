import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {createTempDir} from '../helpers/temp-dir.ts';
import {getBinaryPath} from './binary-path.ts';

test(`returns bundle/rollbridge-linux-x64 when it is an executable file`, (t) => {
  const root = createTempDir(t);
  fs.mkdirSync(path.join(root, `bundle`));
  fs.writeFileSync(path.join(root, `bundle`, `rollbridge-linux-x64`), ``, {mode: 0o755});

  assert.equal(getBinaryPath(root), path.join(root, `bundle`, `rollbridge-linux-x64`));
});

test(`tells to run npm run build when the binary is missing`, (t) => {
  const root = createTempDir(t);

  assert.throws(() => getBinaryPath(root), /rollbridge-linux-x64 does not exist: run `npm run build` first/);
});

test(`tells to build again when the binary is not executable`, (t) => {
  const root = createTempDir(t);
  fs.mkdirSync(path.join(root, `bundle`));
  fs.writeFileSync(path.join(root, `bundle`, `rollbridge-linux-x64`), ``, {mode: 0o644});

  assert.throws(() => getBinaryPath(root), /is not an executable file: run `npm run build` again/);
});
