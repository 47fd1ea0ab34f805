import assert from 'node:assert/strict';
import {test} from 'node:test';
import {levenshteinDistance, suggest} from '../../src/config/suggest.ts';

test(`suggests a case-insensitive match before a closer edit`, () => {
  assert.equal(suggest(`PORT`, [`host`, `port`]), `port`);
  assert.equal(suggest(`Policy`, [`policy`, `polic`]), `policy`);
});

test(`suggests the closest key within two edits and nothing beyond`, () => {
  assert.equal(suggest(`drainTimeout`, [`drainTimeoutMs`, `healthTimeoutMs`]), `drainTimeoutMs`);
  assert.equal(suggest(`comand`, [`command`, `cwd`]), `command`);
  assert.equal(suggest(`hooks`, [`application`, `proxy`, `processes`]), undefined);
});

test(`computes edit distances`, () => {
  assert.equal(levenshteinDistance(``, `abc`), 3);
  assert.equal(levenshteinDistance(`kitten`, `sitting`), 3);
  assert.equal(levenshteinDistance(`same`, `same`), 0);
});
