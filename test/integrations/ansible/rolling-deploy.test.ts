// The rollbridge.deploy collection end to end: real ansible-playbook over real SSH to three hosts (each
// its own sshd, user, daemon, config and proxy port), the built binary installed by the role, the
// collection's own rolling_deploy playbook under load, idempotence, check mode, and a release that fails
// its health check on host 2.
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import {test} from 'node:test';
import {setTimeout as delay} from 'node:timers/promises';
import {getBinaryPath} from '../../e2e/binary-path.ts';
import {createAnsibleWorkspace, requireAnsible, writeInventory} from './ansible.ts';
import type {AnsibleRun} from './ansible.ts';
import {REPO_ROOT} from '../../helpers/run-cli.ts';
import {startSshHosts} from '../../helpers/sshd.ts';
import type {SshHost, SshRig} from '../../helpers/sshd.ts';
import {createTempDir} from '../../helpers/temp-dir.ts';

const WEB_APP = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `web-app.cjs`);
const SETUP_PLAYBOOK = path.join(import.meta.dirname, `fixtures`, `setup.yml`);
const LOAD_LIMIT_MS = 120_000;

function hostConfig(host: SshHost): Record<string, unknown> {
  const root = `${host.home}/app`;
  return {
    application: `shop`,
    control: {path: `${root}/control.sock`},
    proxy: {host: `127.0.0.1`, port: host.proxyPort, drainTimeoutMs: 1_000},
    processes: [{
      id: `web`,
      // A release directory holding `unhealthy` is a broken build: its web process never passes /ping.
      command: `if [ -e unhealthy ]; then export APP_HEALTH=fail; fi; exec "${process.execPath}" web-app.cjs`,
      policy: `proxied`,
      port: {from: 0, to: 0},
      health: {path: `/ping`, intervalMs: 50, timeoutMs: 3_000},
    }],
  };
}

/** GET /release on every host's proxy port in a loop until stopped (or LOAD_LIMIT_MS): counts every failure. */
function startLoad(hosts: SshHost[]): {stop: () => Promise<{requests: number; failures: string[]; seen: Map<string, Set<string>>}>} {
  let running = true;
  const failures: string[] = [];
  const seen = new Map<string, Set<string>>();
  let requests = 0;
  const limit = setTimeout(() => (running = false), LOAD_LIMIT_MS);
  const loops = hosts.map(async (host) => {
    const agent = new http.Agent({keepAlive: true, maxSockets: 1});
    const bodies = new Set<string>();
    seen.set(host.name, bodies);
    while (running) {
      requests++;
      try {
        const {status, body} = await get(host.proxyPort, agent);
        if (status !== 200) failures.push(`${host.name}: HTTP ${status} ${body.trim()}`);
        else bodies.add(body.trim());
      } catch (error) {
        failures.push(`${host.name}: ${String(error)}`);
      }
      // Pacing, so the load shares the machine's two cores with Ansible and the daemons.
      await delay(5);
    }
    agent.destroy();
  });
  return {
    stop: async () => {
      running = false;
      clearTimeout(limit);
      await Promise.all(loops);
      return {requests, failures, seen};
    },
  };
}

function get(port: number, agent: http.Agent): Promise<{status: number; body: string}> {
  return new Promise((resolve, reject) => {
    const request = http.get({host: `127.0.0.1`, port, path: `/release`, agent, timeout: 10_000}, (response) => {
      let body = ``;
      response.setEncoding(`utf8`);
      response.on(`data`, (chunk: string) => (body += chunk));
      response.on(`end`, () => resolve({status: response.statusCode ?? 0, body}));
      response.on(`error`, reject);
    });
    request.on(`timeout`, () => request.destroy(new Error(`timed out`)));
    request.on(`error`, reject);
  });
}

async function serving(host: SshHost): Promise<string> {
  const agent = new http.Agent({keepAlive: false});
  try {
    const {status, body} = await get(host.proxyPort, agent);
    return `${status} ${body.trim()}`;
  } finally {
    agent.destroy();
  }
}

/** `rollbridge status --json` on the host, over SSH, with the binary the role installed. */
async function status(rig: SshRig, host: SshHost): Promise<{activeReleaseId: string | null; releases: Array<{releaseId: string; state: string}>}> {
  const result = await rig.ssh(host, `~/bin/rollbridge status --json --config ~/app/rollbridge.json`);
  assert.equal(result.code, 0, result.stdout + result.stderr);
  return JSON.parse(result.stdout) as {activeReleaseId: string | null; releases: Array<{releaseId: string; state: string}>};
}

function explain(run: AnsibleRun): string {
  return `exit ${run.code}\n${run.stdout.slice(-6_000)}\n${run.stderr.slice(-3_000)}`;
}

function counts(run: AnsibleRun, key: string): Record<string, number | undefined> {
  return Object.fromEntries([...run.recap].map(([name, entry]) => [name, entry[key]]));
}

test(`rollbridge.deploy rolls a release over three SSH hosts one at a time and stops at a failing host with the others on the old release`, async (t) => {
  if (!requireAnsible(t)) return;
  const rig = await startSshHosts(t, {hosts: 3});
  if (rig === null) return;
  const binary = getBinaryPath();
  const workspace = createAnsibleWorkspace(createTempDir(t, `rb-ansible-`));
  const inventory = path.join(workspace.dir, `inventory.json`);
  writeInventory(inventory, rig.hosts, (host) => ({
    app_root: `${host.home}/app`,
    rollbridge_binary_src: binary,
    rollbridge_install_dir: `${host.home}/bin`,
    rollbridge_binary: `${host.home}/bin/rollbridge`,
    rollbridge_config_path: `${host.home}/app/rollbridge.json`,
    rollbridge_config: hostConfig(host),
    web_app_src: WEB_APP,
    broken_release_hosts: [`host2`],
  }));
  // Each host's daemon stops (and its processes with it) before the rig removes the users.
  for (const host of rig.hosts) {
    rig.onTeardown(() => rig.ssh(host, `test -S ~/app/control.sock && ~/bin/rollbridge shutdown --config ~/app/rollbridge.json || true`));
  }
  const playbook = (args: string[]) => workspace.run(`ansible-playbook`, [`-i`, inventory, ...args]);
  const rolling = (releaseId: string, extra: string[] = []) => playbook([
    `rollbridge.deploy.rolling_deploy`,
    `-e`, `rollbridge_release_id=${releaseId}`,
    `-e`, `rollbridge_release_path={{ app_root }}/releases/${releaseId}`,
    ...extra,
  ]);

  await t.test(`the install role and a first deploy bring each host up on its own proxy port; a second run changes nothing`, async () => {
    const first = await playbook([SETUP_PLAYBOOK]);
    assert.equal(first.code, 0, explain(first));
    for (const host of rig.hosts) assert.equal(await serving(host), `200 r1`);
    const again = await playbook([SETUP_PLAYBOOK]);
    assert.equal(again.code, 0, explain(again));
    assert.deepEqual(counts(again, `changed`), {host1: 0, host2: 0, host3: 0}, explain(again));
  });

  await t.test(`--check reports the deploy on every host and changes nothing`, async () => {
    const checked = await rolling(`r2`, [`--check`]);
    assert.equal(checked.code, 0, explain(checked));
    assert.deepEqual(counts(checked, `changed`), {host1: 1, host2: 1, host3: 1}, explain(checked));
    for (const host of rig.hosts) {
      assert.equal(await serving(host), `200 r1`);
      const state = await status(rig, host);
      assert.equal(state.activeReleaseId, `r1`);
      assert.deepEqual(state.releases.map((release) => release.releaseId), [`r1`]);
    }
  });

  await t.test(`serial: 1 deploys r2 to all three under load without a failed request; the same play again changes nothing`, async (st) => {
    const load = startLoad(rig.hosts);
    const startedAt = Date.now();
    const deployed = await rolling(`r2`);
    const {requests, failures, seen} = await load.stop();
    st.diagnostic(`${requests} requests to the three proxy ports during the ${Date.now() - startedAt} ms rolling deploy, ${failures.length} failed`);
    assert.equal(deployed.code, 0, explain(deployed));
    assert.deepEqual(counts(deployed, `changed`), {host1: 1, host2: 1, host3: 1}, explain(deployed));
    assert.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);
    for (const host of rig.hosts) {
      assert.deepEqual([...(seen.get(host.name) ?? [])].sort(), [`r1`, `r2`], `${host.name} switched from r1 to r2 under load`);
      assert.equal(await serving(host), `200 r2`);
    }
    const again = await rolling(`r2`);
    assert.equal(again.code, 0, explain(again));
    assert.deepEqual(counts(again, `changed`), {host1: 0, host2: 0, host3: 0}, explain(again));
  });

  await t.test(`a release failing its health check on host 2 stops the play there: host 1 rolled back by the rescue, host 3 untouched`, async () => {
    const failed = await rolling(`r3`);
    assert.equal(failed.code, 2, explain(failed));
    assert.deepEqual([...failed.recap.keys()].sort(), [`host1`, `host2`], `host 3 was never reached\n${explain(failed)}`);
    assert.equal(failed.recap.get(`host2`)?.rescued, 1, explain(failed));
    assert.equal(failed.recap.get(`host2`)?.failed, 1, explain(failed));
    assert.match(failed.stdout, /ERR_HEALTH_CHECK_FAILED/);
    assert.match(failed.stdout, /Fix: /);
    for (const host of rig.hosts) assert.equal(await serving(host), `200 r2`, `${host.name} serves the old release`);
    const states = await Promise.all(rig.hosts.map((host) => status(rig, host)));
    assert.deepEqual(states.map((state) => state.activeReleaseId), [`r2`, `r2`, `r2`]);
    assert.ok(states[0]?.releases.some((release) => release.releaseId === `r3`), `host 1 had switched to r3 before the rollback`);
    assert.equal(states[2]?.releases.some((release) => release.releaseId === `r3`), false, `host 3 never saw r3`);
  });
});
