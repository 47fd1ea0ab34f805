// The Capistrano recipe (integrations/capistrano/rollbridge.rake) driven by Debian's real `cap` over real
// SSH to three hosts of the sshd rig, each with its own user, home, rollbridge config, proxy port and
// daemon (started by the recipe's --ensure-daemon), running the real built binary. Both flows: the
// hooked git deploy (Capistrano checks out releases/<timestamp>, rollbridge switches to it after
// deploy:published) and the standalone one (no SCM, rollbridge owns the releases); then the other
// tasks on one host: a legacy takeover, a restart under load, predeploy-cleanup and ensure-daemon.
import assert from 'node:assert/strict';
import {execFile, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {setTimeout as delay} from 'node:timers/promises';
import {getBinaryPath} from '../e2e/binary-path.ts';
import {WEB_APP} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {isPidAlive} from '../helpers/processes.ts';
import {REPO_ROOT} from '../helpers/run-cli.ts';
import {startSshHosts} from '../helpers/sshd.ts';
import type {SshHost, SshRig} from '../helpers/sshd.ts';
import {requireCommands} from '../helpers/system-packages.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';

const RECIPE = path.join(REPO_ROOT, `integrations`, `capistrano`, `rollbridge.rake`);
const FIXTURES = path.join(REPO_ROOT, `test`, `fixtures`, `capistrano`);
const CAP_TIMEOUT_MS = 120_000;

type Cap = {code: number; output: string};
type Flow = `git` | `standalone`;

/** Three rig hosts, each with its rollbridge config in its home; null when the test was skipped. */
async function startHosts(t: TestContext, options: {hosts?: number; legacyTakeover?: Record<string, unknown>} = {}): Promise<{rig: SshRig; binary: string} | null> {
  const binary = getBinaryPath();
  if (!requireCommands(t, [{command: `cap`, pkg: `capistrano`}, {command: `git`, pkg: `git`}])) return null;
  const rig = await startSshHosts(t, {hosts: options.hosts ?? 3});
  if (rig === null) return null;
  for (const host of rig.hosts) {
    // A release holding unhealthy-<host name> fails its health check on that host only.
    writeOwned(host, `rollbridge.json`, JSON.stringify({
      application: `hello`,
      control: {path: path.join(host.home, `rollbridge.sock`)},
      logs: {dir: path.join(host.home, `logs`)},
      proxy: {host: `127.0.0.1`, port: host.proxyPort, drainTimeoutMs: 2_000, forceStopTimeoutMs: 2_000},
      processes: [{
        id: `web`,
        command: `if [ -e unhealthy-${host.name} ]; then export APP_HEALTH=fail; fi; exec "${process.execPath}" "${WEB_APP}"`,
        policy: `proxied`,
        port: {from: 0, to: 0},
        health: {path: `/ping`, intervalMs: 50, timeoutMs: 2_000},
      }],
      ...(options.legacyTakeover ? {legacyTakeover: options.legacyTakeover} : {}),
    }, null, 2));
    // Stops the daemon the recipe started (and its app) before the rig kills what is left of the user.
    rig.onTeardown(() => rig.ssh(host, `${binary} shutdown --config ~/rollbridge.json`));
  }
  return {rig, binary};
}

function writeOwned(host: SshHost, name: string, content: string): void {
  const file = path.join(host.home, name);
  fs.writeFileSync(file, content);
  fs.chownSync(file, host.uid, host.gid);
}

/** A Capistrano project of the fixture's flow, with the recipe in lib/capistrano/tasks and a stage `test` for the rig. */
function makeProject(t: TestContext, flow: Flow, rig: SshRig): string {
  const dir = createTempDir(t, `rb-cap-`);
  fs.cpSync(path.join(FIXTURES, flow), dir, {recursive: true});
  fs.mkdirSync(path.join(dir, `lib`, `capistrano`, `tasks`), {recursive: true});
  fs.copyFileSync(RECIPE, path.join(dir, `lib`, `capistrano`, `tasks`, `rollbridge.rake`));
  fs.mkdirSync(path.join(dir, `config`, `deploy`));
  writeStage(dir, rig);
  return dir;
}

/** config/deploy/test.rb: the rig's servers and SSH options, then `extra` lines (settings of one test). */
function writeStage(project: string, rig: SshRig, extra: string[] = []): void {
  fs.writeFileSync(path.join(project, `config`, `deploy`, `test.rb`), [
    ...rig.hosts.map((host) => `server "127.0.0.1", port: ${host.port}, user: "${host.user}", roles: %w[app]`),
    `set :ssh_options, keys: ["${rig.keyPath}"], keys_only: true, auth_methods: %w[publickey],`,
    `                  user_known_hosts_file: "${rig.knownHostsPath}", verify_host_key: :always`,
    // Real hosts each have their own /tmp; the rig's share one, where the git wrapper script of one
    // deploy user (/tmp/git-ssh-….sh, one name for all) would lock out the others. A relative tmp_dir is
    // in each user's home (ssh and scp start there); the repository is local, so git never runs it.
    `set :tmp_dir, "tmp"`,
    ...extra,
    ``,
  ].join(`\n`));
}

/** A bare repository with branches v1, v2 and v3 (v3 holds unhealthy-host2), copied into every host's home. */
function makeRepositories(t: TestContext, rig: SshRig): void {
  const dir = createTempDir(t, `rb-git-`);
  const work = path.join(dir, `work`);
  const git = (...args: string[]) => {
    const result = spawnSync(`git`, [`-c`, `user.name=rollbridge test`, `-c`, `user.email=test@rollbridge.invalid`, `-c`, `init.defaultBranch=main`, ...args], {cwd: work, encoding: `utf8`});
    assert.equal(result.status, 0, `git ${args.join(` `)}: ${result.stderr}`);
  };
  fs.mkdirSync(work);
  git(`init`, `-q`);
  for (const [branch, files] of [[`v1`, [`README`]], [`v2`, [`CHANGELOG`]], [`v3`, [`unhealthy-host2`]]] as const) {
    for (const file of files) fs.writeFileSync(path.join(work, file), `${branch}\n`);
    git(`add`, `.`);
    git(`commit`, `-q`, `-m`, branch);
    git(`branch`, branch);
  }
  git(`clone`, `-q`, `--bare`, work, path.join(dir, `hello.git`));
  for (const host of rig.hosts) {
    const target = path.join(host.home, `hello.git`);
    fs.cpSync(path.join(dir, `hello.git`), target, {recursive: true});
    const chown = spawnSync(`chown`, [`-R`, `${host.uid}:${host.gid}`, target]);
    assert.equal(chown.status, 0);
  }
}

function cap(project: string, binary: string, args: string[], env: Record<string, string> = {}): Promise<Cap> {
  return new Promise((resolve) => {
    execFile(`cap`, args, {cwd: project, env: {...process.env, ROLLBRIDGE_BIN: binary, ...env}, timeout: CAP_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, output: `${stdout}${stderr}`});
    });
  });
}

/** The release each host reported active in the recipe's summary lines, by ssh port. */
function activeReleases(result: Cap): Map<number, string> {
  const releases = new Map<number, string>();
  for (const match of result.output.matchAll(/127\.0\.0\.1:(\d+) release (\S+) is active/g)) releases.set(Number(match[1]), String(match[2]));
  return releases;
}

/** Requests on every host's proxy port until stopped (or 120 s at most), counting failed requests and the releases that answered. */
function loadAll(hosts: SshHost[]) {
  const deadline = Date.now() + CAP_TIMEOUT_MS;
  let running = true;
  const failures: string[] = [];
  const answered = new Map<string, Set<string>>();
  const agents: http.Agent[] = [];
  const clients = hosts.flatMap((host) => {
    const agent = new http.Agent({keepAlive: true, maxSockets: 2});
    agents.push(agent);
    answered.set(host.name, new Set());
    return [0, 1].map(async () => {
      while (running && Date.now() < deadline) {
        try {
          const result = await httpGet(host.proxyPort, `/`, {agent});
          if (result.status === 200) answered.get(host.name)?.add(result.body.trim());
          else failures.push(`${host.name}: HTTP ${result.status}`);
        } catch (error) {
          failures.push(`${host.name}: ${String(error)}`);
        }
        // Paces the loop (a few hundred requests a second in all) on a shared 2-core machine.
        await delay(5);
      }
    });
  });
  return {
    answered,
    stop: async () => {
      running = false;
      await Promise.all(clients);
      for (const agent of agents) agent.destroy();
      return failures;
    },
  };
}

async function assertServing(hosts: SshHost[], releaseId: string): Promise<void> {
  for (const host of hosts) assert.equal((await httpGet(host.proxyPort)).body, `${releaseId}\n`, `${host.name} serves ${releaseId}`);
}

/** Deploys or rolls back under load on the three proxy ports; returns the release now active everywhere. */
async function underLoad(rig: SshRig, run: () => Promise<Cap>): Promise<{result: Cap; releaseId: string; answered: Map<string, Set<string>>}> {
  const traffic = loadAll(rig.hosts);
  const result = await run();
  const failures = await traffic.stop();
  assert.equal(result.code, 0, result.output);
  assert.deepEqual(failures, [], `no failed request on any host`);
  const releases = activeReleases(result);
  assert.deepEqual([...releases.keys()], rig.hosts.map((host) => host.port), `the hosts were walked in order`);
  const releaseId = releases.get(rig.hosts[0]!.port)!;
  assert.deepEqual(new Set(releases.values()), new Set([releaseId]));
  await assertServing(rig.hosts, releaseId);
  return {result, releaseId, answered: traffic.answered};
}

type HostStatus = {activeReleaseId: string; releases: Array<{releaseId: string; state: string; processes: Array<{id: string; pid: number; state: string}>}>};

async function hostStatus(rig: SshRig, host: SshHost, binary: string): Promise<HostStatus> {
  const result = await rig.ssh(host, `${binary} status --json --config ~/rollbridge.json`);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as HostStatus;
}

/** The pid of the running web process of the active release. */
function webPid(status: HostStatus): number | undefined {
  const active = status.releases.findLast((release) => release.releaseId === status.activeReleaseId);
  return active?.processes.find((entry) => entry.id === `web` && entry.state === `running`)?.pid;
}

/** The failed run stopped at host 2 with rollbridge's error; host 1 took the release, host 3 never heard of it. */
async function assertStoppedAtHost2(rig: SshRig, binary: string, failed: Cap, previous: string): Promise<void> {
  const [host1, host2, host3] = rig.hosts as [SshHost, SshHost, SshHost];
  assert.equal(failed.code, 1, failed.output);
  assert.match(failed.output, new RegExp(`rollbridge deploy failed on 127\\.0\\.0\\.1:${host2.port}`));
  assert.match(failed.output, /error ERR_HEALTH_CHECK_\w+: .*ping/);
  assert.match(failed.output, /fix: \S/);
  const releases = activeReleases(failed);
  assert.deepEqual([...releases.keys()], [host1.port], `only host 1 switched`);
  const newRelease = releases.get(host1.port)!;
  assert.notEqual(newRelease, previous);
  await assertServing([host1], newRelease);
  await assertServing([host2, host3], previous);
  assert.equal((await hostStatus(rig, host2, binary)).activeReleaseId, previous);
  const untouched = await hostStatus(rig, host3, binary);
  assert.equal(untouched.activeReleaseId, previous);
  assert.ok(!untouched.releases.some((release) => release.releaseId === newRelease), `host 3 never saw ${newRelease}`);
}

test(`cap deploy from git hands each release to rollbridge host by host, deploy:rollback switches back, a failing host stops the run`, async (t) => {
  const hosts = await startHosts(t);
  if (hosts === null) return;
  const {rig, binary} = hosts;
  makeRepositories(t, rig);
  const project = makeProject(t, `git`, rig);

  const first = await cap(project, binary, [`test`, `deploy`], {BRANCH: `v1`});
  assert.equal(first.code, 0, first.output);
  const v1 = activeReleases(first).get(rig.hosts[0]!.port)!;
  assert.match(v1, /^\d{14}$/, `the release id is Capistrano's release timestamp`);
  assert.match(first.output, new RegExp(`--release-path ~/app/releases/${v1} --release-id ${v1} --revision [0-9a-f]{40} `), `the checked-out commit is the revision`);
  await assertServing(rig.hosts, v1);

  const second = await underLoad(rig, () => cap(project, binary, [`test`, `deploy`], {BRANCH: `v2`}));
  assert.notEqual(second.releaseId, v1);
  for (const host of rig.hosts) {
    assert.equal(fs.readlinkSync(path.join(host.home, `app`, `current`)), path.join(host.home, `app`, `releases`, second.releaseId));
    assert.deepEqual(second.answered.get(host.name), new Set([v1, second.releaseId]), `${host.name} served both releases during the deploy`);
  }
  for (const host of rig.hosts) {
    const label = `127\\.0\\.0\\.1:${host.port}`;
    assert.match(second.result.output, new RegExp(`${label} started web pid \\d+ port \\d+ \\(\\d+ ms\\)\\n.*${label} waiting for health check of web: GET http://127\\.0\\.0\\.1:\\d+/\\S* \\(timeout [^)]+\\)\\n.*${label} healthy web \\(\\d+ ms\\)\\n.*${label} switched traffic to ${second.releaseId} `), `${host.name}'s phases as they happened`);
  }

  const rollback = await underLoad(rig, () => cap(project, binary, [`test`, `deploy:rollback`]));
  assert.equal(rollback.releaseId, v1);
  assert.doesNotMatch(rollback.result.output, /rollbridge deploy /, `the publish hook did not deploy during the rollback`);
  assert.match(rollback.result.output, new RegExp(`rollbridge rollback --config ~/rollbridge.json --release-id ${v1} `), `to Capistrano's rollback target`);
  for (const host of rig.hosts) assert.equal(fs.readlinkSync(path.join(host.home, `app`, `current`)), path.join(host.home, `app`, `releases`, v1));

  const failed = await cap(project, binary, [`test`, `deploy`], {BRANCH: `v3`});
  await assertStoppedAtHost2(rig, binary, failed, v1);
});

test(`standalone: cap deploy shows the plan on a dry run, runs rollbridge:deploy on the prepared release host by host, deploy:rollback runs rollbridge:rollback`, async (t) => {
  const hosts = await startHosts(t);
  if (hosts === null) return;
  const {rig, binary} = hosts;
  const project = makeProject(t, `standalone`, rig);

  const status = await cap(project, binary, [`test`, `rollbridge:status`]);
  assert.equal(status.code, 1, `no daemon runs yet`);
  assert.match(status.output, /error ERR_DAEMON_\w+/);

  writeStage(project, rig, [`set :rollbridge_dry_run, true`]);
  const plan = await cap(project, binary, [`test`, `deploy`]);
  assert.equal(plan.code, 0, plan.output);
  for (const host of rig.hosts) assert.match(plan.output, new RegExp(`127\\.0\\.0\\.1:${host.port} plan for release \\d{14} \\(nothing changed\\): start web \\(proxied, port [^)]+\\), switch traffic`));
  for (const host of rig.hosts) assert.equal(fs.existsSync(path.join(host.home, `rollbridge.sock`)), false, `no daemon was started for the plan`);

  writeStage(project, rig);
  const first = await cap(project, binary, [`test`, `deploy`]);
  assert.equal(first.code, 0, first.output);
  const r1 = activeReleases(first).get(rig.hosts[0]!.port)!;
  await assertServing(rig.hosts, r1);
  assert.equal((first.output.match(/rollbridge deploy /g) ?? []).length, 3, `one deploy per host, not two`);

  const second = await underLoad(rig, () => cap(project, binary, [`test`, `deploy`]));
  assert.notEqual(second.releaseId, r1);
  const rollback = await underLoad(rig, () => cap(project, binary, [`test`, `deploy:rollback`]));
  assert.equal(rollback.releaseId, r1);

  const listed = await cap(project, binary, [`test`, `rollbridge:status`]);
  assert.equal(listed.code, 0, listed.output);
  for (const host of rig.hosts) assert.match(listed.output, new RegExp(`127\\.0\\.0\\.1:${host.port} active release ${r1} on proxy 127\\.0\\.0\\.1:${host.proxyPort} \\(web running\\)`));

  const failed = await cap(project, binary, [`test`, `deploy`], {RELEASE_FILES: `unhealthy-host2`});
  await assertStoppedAtHost2(rig, binary, failed, r1);
});

test(`rollbridge:legacy_takeover (plan, then the handover), :restart under load, a deploy skipped when active, :predeploy_cleanup and :ensure_daemon on a host; a missing binary or an unset :rollbridge_config fails saying so`, async (t) => {
  const hosts = await startHosts(t, {hosts: 1, legacyTakeover: {processes: [{includes: [`legacy-app`], name: `hand-started app`}]}});
  if (hosts === null) return;
  const {rig, binary} = hosts;
  const host = rig.hosts[0]!;
  const project = makeProject(t, `standalone`, rig);
  const takeover = [`set :rollbridge_release_id, "r1"`, `before "rollbridge:legacy_takeover", "app:prepare_release"`];

  // The app as it ran before rollbridge: started by hand on the proxy port, `legacy-app` in its command line.
  const started = await rig.ssh(host, `ROLLBRIDGE_PORT=${host.proxyPort} ROLLBRIDGE_RELEASE_ID=legacy nohup "${process.execPath}" "${WEB_APP}" legacy-app >/dev/null 2>&1 & echo $!`);
  const legacyPid = Number(started.stdout.trim());
  assert.ok(legacyPid > 0, started.stderr);
  await waitFor(() => httpGet(host.proxyPort).then((result) => result.body === `legacy\n`), {what: `the hand-started app to serve`});

  writeStage(project, rig, [...takeover, `set :rollbridge_dry_run, true`]);
  const plan = await cap(project, binary, [`test`, `rollbridge:legacy_takeover`]);
  assert.equal(plan.code, 0, plan.output);
  assert.match(plan.output, /legacy-takeover plan \(nothing changed\): 0 screen session\(s\), 1 legacy process\(es\) to stop/);
  assert.equal(isPidAlive(legacyPid), true);

  writeStage(project, rig, takeover);
  const handover = await cap(project, binary, [`test`, `rollbridge:legacy_takeover`]);
  assert.equal(handover.code, 0, handover.output);
  assert.match(handover.output, new RegExp(`127\\.0\\.0\\.1:${host.port} release r1 is active; legacy processes: 1 stopped, 0 killed; port gap [\\d.]+ ms`));
  await assertServing([host], `r1`);
  await waitFor(() => !isPidAlive(legacyPid), {what: `the hand-started app to be gone`});

  writeStage(project, rig, [`set :rollbridge_restart_process, "web"`]);
  const before = webPid(await hostStatus(rig, host, binary));
  assert.ok(before);
  const traffic = loadAll([host]);
  const restart = await cap(project, binary, [`test`, `rollbridge:restart`]);
  assert.deepEqual(await traffic.stop(), [], `no failed request while web was replaced`);
  assert.equal(restart.code, 0, restart.output);
  assert.match(restart.output, /restarted web/);
  const after = webPid(await hostStatus(rig, host, binary));
  assert.ok(after && after !== before, `a new web process serves (${before} → ${after})`);
  await waitFor(() => !isPidAlive(before), {what: `the replaced web process ${before} to stop`});

  writeStage(project, rig, [`set :rollbridge_release_id, "r1"`, `set :rollbridge_skip_if_active, true`]);
  const again = await cap(project, binary, [`test`, `deploy`]);
  assert.equal(again.code, 0, again.output);
  assert.match(again.output, /release r1 is active \(previous: \S+\), unchanged/);
  assert.equal(webPid(await hostStatus(rig, host, binary)), after, `the same web process still serves`);

  const cleanup = await cap(project, binary, [`test`, `rollbridge:predeploy_cleanup`]);
  assert.equal(cleanup.code, 0, cleanup.output);
  assert.match(cleanup.output, /predeploy-cleanup: daemon-active/);
  const ensured = await cap(project, binary, [`test`, `rollbridge:ensure_daemon`]);
  assert.equal(ensured.code, 0, ensured.output);
  assert.match(ensured.output, /daemon running: active release r1 on proxy 127\.0\.0\.1:\d+ \(web running\)/);

  // Not rollbridge's answer: what the host printed is the message.
  const missing = await cap(project, `/nonexistent/rollbridge`, [`test`, `rollbridge:status`]);
  assert.equal(missing.code, 1, missing.output);
  assert.match(missing.output, new RegExp(`rollbridge status failed on 127\\.0\\.0\\.1:${host.port}: .*/nonexistent/rollbridge: No such file or directory`));
  writeStage(project, rig, [`set :rollbridge_config, nil`]);
  const unset = await cap(project, binary, [`test`, `rollbridge:status`]);
  assert.equal(unset.code, 1, unset.output);
  assert.match(unset.output, /:rollbridge_config is not set; set it in config\/deploy\.rb/);
});
