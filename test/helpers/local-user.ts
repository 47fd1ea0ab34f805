/**
 * A second local user for tests of what another account on the host can do (plant files, symlinks,
 * connect to sockets). Created with useradd, removed with userdel when the test ends. Needs root;
 * otherwise the test is skipped saying so.
 */
import crypto from 'node:crypto';
import {spawnSync} from 'node:child_process';
import type {SpawnSyncReturns} from 'node:child_process';
import type {TestContext} from 'node:test';
import {requireCommands} from './system-packages.ts';

/** The lock the sshd rig takes too: useradd/userdel edit /etc/passwd and must not run concurrently. */
const USERS_LOCK = `/tmp/rollbridge-test-users.lock`;

export type LocalUser = {
  name: string;
  uid: number;
  gid: number;
  /** Runs a command as this user (no shell unless you ask for one), with `input` on its stdin. */
  run(command: string, args: string[], input?: string): SpawnSyncReturns<string>;
};

function runChecked(command: string, args: string[]): string {
  const result = spawnSync(command, args, {encoding: `utf8`});
  if (result.status !== 0) throw new Error(`${command} ${args.join(` `)}: exit ${result.status}: ${result.stderr.trim()}`);
  return result.stdout;
}

export function createLocalUser(t: TestContext): LocalUser | null {
  if (process.getuid?.() !== 0) {
    t.skip(`creating a second local user needs root (useradd)`);
    return null;
  }
  if (!requireCommands(t, [{command: `useradd`, pkg: `passwd`}, {command: `userdel`, pkg: `passwd`}, {command: `flock`, pkg: `util-linux`}])) return null;
  const name = `rbother-${crypto.randomBytes(3).toString(`hex`)}`;
  runChecked(`flock`, [USERS_LOCK, `useradd`, `--no-create-home`, `--shell`, `/usr/sbin/nologin`, `--comment`, `rollbridge test other user`, name]);
  t.after(() => {
    const removed = spawnSync(`flock`, [USERS_LOCK, `userdel`, name], {encoding: `utf8`});
    if (removed.status !== 0) throw new Error(`userdel ${name}: exit ${removed.status}: ${removed.stderr.trim()}`);
  });
  const uid = Number(runChecked(`id`, [`-u`, name]).trim());
  const gid = Number(runChecked(`id`, [`-g`, name]).trim());
  return {
    name, uid, gid,
    run: (command, args, input) => spawnSync(command, args, {uid, gid, encoding: `utf8`, cwd: `/`, input, env: {PATH: process.env.PATH ?? `/usr/bin:/bin`}}),
  };
}
