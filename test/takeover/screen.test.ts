import assert from 'node:assert/strict';
import {test} from 'node:test';
import {resolveLegacyUser} from '../../src/takeover/legacy-user.ts';
import {listScreenSessions, parseScreenList, quitScreenSession} from '../../src/takeover/screen.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {listOwnSessions, requireScreen, startScreenSession, uniqueName} from './legacy-fixtures.ts';

const me = resolveLegacyUser(undefined);

test(`parses session lines of screen -ls, with or without a date, CRLF endings and dead sessions`, () => {
  const output = [
    `There are screens on:\r`,
    `\t19165.shop\t(11/21/26 07:09:54)\t(Detached)`,
    `\t2001.shop.worker\t(Attached)\r`,
    `\t42.old\t(11/20/26 01:00:00)\t(Dead ???)`,
    `Remove dead screens with 'screen -wipe'.`,
    `3 Sockets in /run/screen/S-root.\r`,
    ``,
  ].join(`\n`);
  assert.deepEqual(parseScreenList(output), [
    {pid: 19165, name: `shop`, id: `19165.shop`, state: `Detached`},
    {pid: 2001, name: `shop.worker`, id: `2001.shop.worker`, state: `Attached`},
    {pid: 42, name: `old`, id: `42.old`, state: `Dead ???`},
  ]);
  assert.deepEqual(parseScreenList(`No Sockets found in /run/screen/S-root.\n`), []);
});

test(`lists a running session of the current user by PID.NAME`, async (t) => {
  if (!requireScreen(t)) return;
  const name = uniqueName();
  const session = await startScreenSession(t, name, `exec sleep 300`, {cwd: createTempDir(t)});
  const listing = await listScreenSessions(me);
  assert.equal(listing.warning, null);
  assert.deepEqual(listing.sessions.find((entry) => entry.name === name), {pid: session.pid, name, id: `${session.pid}.${name}`, state: `Detached`});
});

test(`quits a session by PID.NAME without touching a session whose name it prefixes`, async (t) => {
  if (!requireScreen(t)) return;
  const dir = createTempDir(t);
  const name = uniqueName();
  const session = await startScreenSession(t, name, `exec sleep 300`, {cwd: dir});
  const longer = await startScreenSession(t, `${name}2`, `exec sleep 300`, {cwd: dir});
  const result = await quitScreenSession(session, me);
  assert.equal(result.ok, true, result.output);
  await waitFor(async () => !(await listOwnSessions()).some((entry) => entry.id === session.id), {what: `the session to end`});
  assert.ok((await listOwnSessions()).some((entry) => entry.id === longer.id));
});

test(`reports a failed quit of a session that no longer exists`, async (t) => {
  if (!requireScreen(t)) return;
  const result = await quitScreenSession({pid: 2 ** 30, name: uniqueName(), id: `${2 ** 30}.gone`, state: `Detached`}, me);
  assert.equal(result.ok, false);
  assert.match(result.output, /No screen session found/);
});

test(`lists another user's sessions as that user: root runs screen through runuser, anyone else gets a warning`, async (t) => {
  if (!requireScreen(t)) return;
  const nobody = resolveLegacyUser(`nobody`);
  const listing = await listScreenSessions(nobody);
  assert.deepEqual(listing.sessions, []);
  if (process.getuid?.() === 0) assert.equal(listing.warning, null);
  else assert.match(listing.warning ?? ``, /Cannot run screen as user "nobody"/);
});
