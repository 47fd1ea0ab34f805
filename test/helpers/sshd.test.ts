// The shared sshd rig: real logins over SSH, one user per host, pinned host keys, and a teardown that
// leaves no user, home, sshd or stray process behind.
import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import {test} from 'node:test';
import {isPidAlive} from './processes.ts';
import {startSshHosts} from './sshd.ts';
import type {SshHost} from './sshd.ts';

function userExists(name: string): boolean {
  return spawnSync(`getent`, [`passwd`, name]).status === 0;
}

test(`starts separate sshd hosts on 127.0.0.1 and removes them, their users and their processes afterwards`, async (t) => {
  let hosts: SshHost[] = [];
  let sshdPids: number[] = [];
  let stray = 0;
  let skipped = false;
  await t.test(`two hosts`, async (st) => {
    const rig = await startSshHosts(st, {hosts: 2});
    if (rig === null) {
      skipped = true;
      return;
    }
    hosts = rig.hosts;
    assert.equal(hosts.length, 2);
    assert.notEqual(hosts[0]?.port, hosts[1]?.port);
    assert.notEqual(hosts[0]?.user, hosts[1]?.user);
    assert.notEqual(hosts[0]?.proxyPort, hosts[1]?.proxyPort);
    for (const host of hosts) {
      const login = await rig.ssh(host, `id -un; echo "$HOME"; echo "$TMPDIR"; stat -c %a "$HOME/.ssh" "$HOME/.ssh/authorized_keys" "$TMPDIR"`);
      assert.equal(login.code, 0, login.stderr + fs.readFileSync(host.logPath, `utf8`));
      assert.deepEqual(login.stdout.trim().split(`\n`), [host.user, host.home, host.tmpDir, `700`, `600`, `700`]);
    }
    const [first, second] = hosts as [SshHost, SshHost];
    // Host keys are pinned: a client without the rig's known_hosts refuses to log in (ssh takes the first -o of a kind).
    const unpinned = spawnSync(`ssh`, [`-o`, `UserKnownHostsFile=/dev/null`, ...first.sshOptions, `${first.user}@127.0.0.1`, `true`], {encoding: `utf8`});
    assert.equal(unpinned.status, 255);
    assert.match(unpinned.stderr, /Host key verification failed/);
    // Each sshd lets in only its own host's user.
    const crossed = spawnSync(`ssh`, [...first.sshOptions, `${second.user}@127.0.0.1`, `true`], {encoding: `utf8`});
    assert.equal(crossed.status, 255);
    // A process that escapes the session (setsid, nohup) is still removed at teardown.
    const escaped = await rig.ssh(second, `setsid nohup sleep 300 >/dev/null 2>&1 < /dev/null & echo $!`);
    assert.equal(escaped.code, 0, escaped.stderr);
    stray = Number(escaped.stdout.trim());
    assert.ok(isPidAlive(stray));
    assert.ok(rig.userProcesses().includes(stray));
    sshdPids = hosts.map((host) => Number(fs.readFileSync(host.logPath.replace(/sshd\.log$/, `sshd.pid`), `utf8`)));
    assert.ok(sshdPids.every((pid) => isPidAlive(pid)));
  });
  if (skipped) return;
  assert.equal(isPidAlive(stray), false);
  assert.deepEqual(sshdPids.filter((pid) => isPidAlive(pid)), []);
  for (const host of hosts) {
    assert.equal(userExists(host.user), false, `${host.user} removed`);
    assert.equal(fs.existsSync(host.home), false, `${host.home} removed`);
  }
});
