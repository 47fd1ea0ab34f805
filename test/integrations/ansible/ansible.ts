// Runs the real Ansible (Debian's ansible-core) against the collection in integrations/ansible: the
// collection is copied into a temp `ansible_collections/rollbridge/deploy` tree (what ansible-galaxy would
// install), with an ansible.cfg and ANSIBLE_HOME of the test's own.
import {execFile} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type {TestContext} from 'node:test';
import {REPO_ROOT} from '../../helpers/run-cli.ts';
import {requireCommands} from '../../helpers/system-packages.ts';
import type {SshHost} from '../../helpers/sshd.ts';

export const COLLECTION_DIR = path.join(REPO_ROOT, `integrations`, `ansible`);

/** The commands of Debian's ansible-core (the `ansible` package is not needed). */
export function requireAnsible(t: TestContext): boolean {
  return requireCommands(t, [
    {command: `ansible-playbook`, pkg: `ansible-core`},
    {command: `ansible-doc`, pkg: `ansible-core`},
    {command: `ansible-galaxy`, pkg: `ansible-core`},
    {command: `ansible-test`, pkg: `ansible-core`},
  ]);
}

export type AnsibleWorkspace = {
  dir: string;
  /** `<dir>/collections/ansible_collections/rollbridge/deploy`: the collection as Ansible finds it. */
  collectionPath: string;
  env: Record<string, string>;
  run: (command: string, args: string[], options?: {timeoutMs?: number; cwd?: string}) => Promise<AnsibleRun>;
};

export type AnsibleRun = {code: number; stdout: string; stderr: string; recap: Map<string, Record<string, number>>};

/** Copies the collection into `dir` and returns a runner for ansible-* commands that finds it. */
export function createAnsibleWorkspace(dir: string): AnsibleWorkspace {
  const collectionPath = path.join(dir, `collections`, `ansible_collections`, `rollbridge`, `deploy`);
  fs.cpSync(COLLECTION_DIR, collectionPath, {recursive: true});
  const home = path.join(dir, `ansible-home`);
  fs.mkdirSync(home);
  fs.writeFileSync(path.join(dir, `ansible.cfg`), [
    `[defaults]`,
    `host_key_checking = True`,
    `forks = 3`,
    `interpreter_python = /usr/bin/python3`,
    `retry_files_enabled = False`,
    `nocows = True`,
    `[ssh_connection]`,
    `pipelining = True`,
    `control_path_dir = ${path.join(dir, `cp`)}`,
    // Connections are reused within a run; the masters exit with the rig's sshd at the latest.
    `ssh_args = -o ControlMaster=auto -o ControlPersist=30s`,
    ``,
  ].join(`\n`));
  const env: Record<string, string> = {
    PATH: `/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
    HOME: home,
    ANSIBLE_CONFIG: path.join(dir, `ansible.cfg`),
    ANSIBLE_HOME: home,
    ANSIBLE_COLLECTIONS_PATH: path.join(dir, `collections`),
    ANSIBLE_LOCAL_TEMP: path.join(dir, `tmp`),
    ANSIBLE_FORCE_COLOR: `0`,
    ANSIBLE_NOCOLOR: `1`,
    LANG: `C.UTF-8`,
  };
  const run = (command: string, args: string[], options: {timeoutMs?: number; cwd?: string} = {}) => new Promise<AnsibleRun>((resolve) => {
    execFile(command, args, {cwd: options.cwd ?? dir, env, timeout: options.timeoutMs ?? 180_000, maxBuffer: 64 * 1024 * 1024}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, stdout, stderr, recap: parseRecap(stdout)});
    });
  });
  return {dir, collectionPath, env, run};
}

/** `host1 : ok=3 changed=1 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0` lines of the PLAY RECAP. */
export function parseRecap(stdout: string): Map<string, Record<string, number>> {
  const recap = new Map<string, Record<string, number>>();
  const at = stdout.lastIndexOf(`PLAY RECAP`);
  if (at === -1) return recap;
  for (const line of stdout.slice(at).split(`\n`).slice(1)) {
    const match = /^(\S+)\s+:\s+(.*)$/.exec(line.trim());
    if (!match) continue;
    const counts: Record<string, number> = {};
    for (const pair of (match[2] as string).trim().split(/\s+/)) {
      const [key, value] = pair.split(`=`);
      if (key !== undefined && value !== undefined) counts[key] = Number(value);
    }
    recap.set(match[1] as string, counts);
  }
  return recap;
}

/** An inventory (YAML plugin, JSON syntax) of the rig's hosts in group `app`, with per-host vars. */
export function writeInventory(file: string, hosts: SshHost[], hostVars: (host: SshHost) => Record<string, unknown>): void {
  const entries = Object.fromEntries(hosts.map((host) => [host.name, {
    ansible_host: host.host,
    ansible_port: host.port,
    ansible_user: host.user,
    ansible_ssh_private_key_file: host.keyPath,
    ansible_ssh_common_args: `-o UserKnownHostsFile=${host.knownHostsPath} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes`,
    ansible_python_interpreter: `/usr/bin/python3`,
    ...hostVars(host),
  }]));
  fs.writeFileSync(file, JSON.stringify({all: {children: {app: {hosts: entries}}}}, null, 2));
}
