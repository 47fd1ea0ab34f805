// Real SSH hosts on this machine for the integration tests (Ansible, Capistrano, the Action's ssh
// flows): N sshd instances on 127.0.0.1, each on its own free port with its own host key, config, pid
// file and log, and each with its own throw-away user (home directory, TMPDIR, proxy port), so the
// daemons, configs and runtime files of the "hosts" never meet. One generated ed25519 key logs in everywhere;
// a known_hosts file pins every host key, so clients check host keys instead of ignoring them.
//
// Teardown (in this order): functions registered with `onTeardown` (stop daemons gracefully), then every
// process still running as a rig user (TERM, then KILL), the sshd session processes and each sshd by
// the pid in its PidFile, then the users with their homes, then the temp dir.
//
// Needs root (useradd, sshd); installs openssh-server/openssh-client when missing, else the test is
// skipped saying why. Separate network namespaces were left out: the client tools run outside them and
// would need veth routing; separate users, directories and ports keep the hosts apart well enough.
import {execFile, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import type {TestContext} from 'node:test';
import {listDescendants, readProcessTable} from '../../src/system/proc.ts';
import {freePort} from './ports.ts';
import {isPidAlive, killQuietly} from './processes.ts';
import {requireCommands} from './system-packages.ts';
import {waitFor} from './wait-for.ts';

/** One SSH "host": an sshd on 127.0.0.1:port, logged into as `user` with `keyPath`. */
export type SshHost = {
  /** `host1`, `host2`, … */
  name: string;
  host: `127.0.0.1`;
  port: number;
  user: string;
  uid: number;
  gid: number;
  /** The user's home directory (0700, owned by the user): this host's private disk. */
  home: string;
  /** `<home>/tmp`, the host's private temp dir: sshd sets TMPDIR to it in every session (all hosts share /tmp). */
  tmpDir: string;
  /** A free port on 127.0.0.1 for this host's proxy (rollbridge's `proxy.port`). */
  proxyPort: number;
  /** The private key (0600, owned by root, the test's user) that logs in as `user`. */
  keyPath: string;
  /** A known_hosts file pinning every host of the rig (`[127.0.0.1]:port ssh-ed25519 …`). */
  knownHostsPath: string;
  /** OpenSSH client options (before the destination) for this host: key, port, known_hosts, batch mode. */
  sshOptions: string[];
  /** The sshd log (`-E`), for failure messages. */
  logPath: string;
};

export type SshRig = {
  hosts: SshHost[];
  keyPath: string;
  knownHostsPath: string;
  /** Runs a shell command on a host over real SSH as its user. */
  ssh: (host: SshHost, command: string, options?: {timeoutMs?: number}) => Promise<{code: number; stdout: string; stderr: string}>;
  /** Runs `fn` at teardown before any process is killed (last registered first), e.g. a graceful daemon stop. */
  onTeardown: (fn: () => unknown) => void;
  /** Pids of the processes running as any of the rig's users right now. */
  userProcesses: () => number[];
};

const SSHD = `/usr/sbin/sshd`;
const USERS_LOCK = `/tmp/rollbridge-test-users.lock`;

/**
 * Starts `hosts` sshd instances with their users, or skips the test (returning null) when that cannot
 * be done here (not root, openssh missing and not installable).
 */
export async function startSshHosts(t: TestContext, options: {hosts?: number} = {}): Promise<SshRig | null> {
  const count = options.hosts ?? 1;
  if (process.getuid?.() !== 0) {
    t.skip(`the sshd rig needs root (useradd, sshd)`);
    return null;
  }
  if (!requireCommands(t, [{command: SSHD, pkg: `openssh-server`}, {command: `ssh`, pkg: `openssh-client`}, {command: `ssh-keygen`, pkg: `openssh-client`}, {command: `useradd`, pkg: `passwd`}])) return null;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rb-sshd-`));
  const teardowns: Array<() => unknown> = [];
  const users: Array<{name: string; uid: number}> = [];
  const sshdPidFiles: string[] = [];
  const rig: SshRig = {
    hosts: [],
    keyPath: path.join(dir, `id_ed25519`),
    knownHostsPath: path.join(dir, `known_hosts`),
    ssh: (host, command, sshOptions = {}) => runSsh(host, command, sshOptions.timeoutMs ?? 60_000),
    onTeardown: (fn) => teardowns.push(fn),
    userProcesses: () => {
      const uids = new Set(users.map((user) => user.uid));
      return readProcessTable().filter((entry) => uids.has(entry.uid) && entry.state !== `Z` && entry.state !== `X`).map((entry) => entry.pid);
    },
  };
  t.after(async () => {
    const errors: string[] = [];
    for (const fn of teardowns.reverse()) {
      try {
        await fn();
      } catch (error) {
        errors.push(String(error));
      }
    }
    await killAll(rig.userProcesses());
    for (const pidFile of sshdPidFiles) await stopSshd(pidFile);
    for (const user of users) {
      const removed = spawnSync(`flock`, [USERS_LOCK, `userdel`, `--remove`, user.name], {encoding: `utf8`});
      // userdel exits 12 when only the mail spool is missing; the user and home are gone then.
      if (removed.status !== 0 && removed.status !== 12) errors.push(`userdel ${user.name}: exit ${removed.status}: ${removed.stderr.trim()}`);
    }
    fs.rmSync(dir, {recursive: true, force: true});
    if (errors.length > 0) throw new Error(`sshd rig teardown: ${errors.join(`; `)}`);
  });

  run(`ssh-keygen`, [`-q`, `-t`, `ed25519`, `-N`, ``, `-C`, `rollbridge-test`, `-f`, rig.keyPath]);
  const publicKey = fs.readFileSync(`${rig.keyPath}.pub`, `utf8`);
  fs.mkdirSync(`/run/sshd`, {recursive: true, mode: 0o755});
  const tag = crypto.randomBytes(3).toString(`hex`);
  const knownHosts: string[] = [];

  for (let index = 1; index <= count; index++) {
    const name = `host${index}`;
    const user = `rbssh-${tag}-${index}`;
    run(`flock`, [USERS_LOCK, `useradd`, `--create-home`, `--shell`, `/bin/bash`, `--comment`, `rollbridge test ${name}`, user]);
    // A new account's password field is `!` (locked); sshd without PAM then refuses even keys.
    run(`flock`, [USERS_LOCK, `usermod`, `--password`, `*`, user]);
    const uid = Number(run(`id`, [`-u`, user]).trim());
    const gid = Number(run(`id`, [`-g`, user]).trim());
    users.push({name: user, uid});
    const home = run(`sh`, [`-c`, `getent passwd "$1" | cut -d: -f6`, `sh`, user]).trim();
    fs.chmodSync(home, 0o700);
    const sshDir = path.join(home, `.ssh`);
    fs.mkdirSync(sshDir, {mode: 0o700});
    fs.writeFileSync(path.join(sshDir, `authorized_keys`), publicKey, {mode: 0o600});
    const tmpDir = path.join(home, `tmp`);
    fs.mkdirSync(tmpDir, {mode: 0o700});
    for (const entry of [sshDir, path.join(sshDir, `authorized_keys`), tmpDir]) fs.chownSync(entry, uid, gid);

    const hostDir = path.join(dir, name);
    fs.mkdirSync(hostDir);
    const hostKey = path.join(hostDir, `ssh_host_ed25519_key`);
    run(`ssh-keygen`, [`-q`, `-t`, `ed25519`, `-N`, ``, `-C`, name, `-f`, hostKey]);
    const port = await freePort();
    const pidFile = path.join(hostDir, `sshd.pid`);
    const logPath = path.join(hostDir, `sshd.log`);
    const configPath = path.join(hostDir, `sshd_config`);
    fs.writeFileSync(configPath, [
      `ListenAddress 127.0.0.1`,
      `Port ${port}`,
      `HostKey ${hostKey}`,
      `PidFile ${pidFile}`,
      `AuthorizedKeysFile .ssh/authorized_keys`,
      `PubkeyAuthentication yes`,
      `PasswordAuthentication no`,
      `KbdInteractiveAuthentication no`,
      `UsePAM no`,
      `PermitRootLogin no`,
      `AllowUsers ${user}`,
      `StrictModes yes`,
      `LogLevel VERBOSE`,
      `MaxStartups 50`,
      `MaxSessions 50`,
      `Subsystem sftp internal-sftp`,
      `SetEnv TMPDIR=${tmpDir}`,
      ``,
    ].join(`\n`));
    run(SSHD, [`-t`, `-f`, configPath]);
    sshdPidFiles.push(pidFile);
    run(SSHD, [`-f`, configPath, `-E`, logPath]);
    await waitFor(() => readPid(pidFile) !== null, {what: `sshd of ${name} to write ${pidFile}`});
    knownHosts.push(`[127.0.0.1]:${port} ${fs.readFileSync(`${hostKey}.pub`, `utf8`).split(` `).slice(0, 2).join(` `)}`);
    const proxyPort = await freePort();
    rig.hosts.push({
      name, host: `127.0.0.1`, port, user, uid, gid, home, tmpDir, proxyPort, keyPath: rig.keyPath, knownHostsPath: rig.knownHostsPath, logPath,
      sshOptions: [`-i`, rig.keyPath, `-p`, String(port), `-o`, `IdentitiesOnly=yes`, `-o`, `BatchMode=yes`, `-o`, `StrictHostKeyChecking=yes`, `-o`, `UserKnownHostsFile=${rig.knownHostsPath}`, `-o`, `ConnectTimeout=10`],
    });
  }
  fs.writeFileSync(rig.knownHostsPath, `${knownHosts.join(`\n`)}\n`, {mode: 0o644});
  return rig;
}

function runSsh(host: SshHost, command: string, timeoutMs: number): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    execFile(`ssh`, [...host.sshOptions, `${host.user}@${host.host}`, command], {timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 255) : 0, stdout, stderr});
    });
  });
}

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, {encoding: `utf8`, timeout: 30_000});
  if (result.status !== 0) throw new Error(`${command} ${args.join(` `)} failed (exit ${result.status ?? result.signal}): ${result.error?.message ?? result.stderr.trim()}`);
  return result.stdout;
}

function readPid(pidFile: string): number | null {
  try {
    const pid = Number(fs.readFileSync(pidFile, `utf8`).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

async function killAll(pids: number[]): Promise<void> {
  for (const pid of pids) killQuietly(pid, `SIGTERM`);
  try {
    await waitFor(() => pids.every((pid) => !isPidAlive(pid)), {timeoutMs: 5_000, what: `the rig users' processes to exit`});
  } catch {
    for (const pid of pids) killQuietly(pid, `SIGKILL`);
    await waitFor(() => pids.every((pid) => !isPidAlive(pid)), {timeoutMs: 5_000, what: `the rig users' processes to die`});
  }
}

// SIGTERM ends the listening sshd only; its per-connection children (root monitors) are ours too.
async function stopSshd(pidFile: string): Promise<void> {
  const pid = readPid(pidFile);
  if (pid === null || !isPidAlive(pid)) return;
  const sessions = listDescendants(pid);
  killQuietly(pid, `SIGTERM`);
  await killAll(sessions);
  await waitFor(() => !isPidAlive(pid), {timeoutMs: 5_000, what: `sshd ${pid} to exit`});
}
