// The rollbridge.deploy collection as Ansible's own tools see it: ansible-doc renders every module and
// the role, ansible-galaxy builds it, the venv-free ansible-test sanity tests pass, and the install role
// writes a systemd unit that systemd-analyze verify accepts and hands a running daemon over to a new
// binary without a failed request.
import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {test} from 'node:test';
import {setTimeout as delay} from 'node:timers/promises';
import {getBinaryPath} from '../../e2e/binary-path.ts';
import {COLLECTION_DIR, createAnsibleWorkspace, requireAnsible} from './ansible.ts';
import type {AnsibleRun} from './ansible.ts';
import {freePort} from '../../helpers/ports.ts';
import {isPidAlive} from '../../helpers/processes.ts';
import {REPO_ROOT} from '../../helpers/run-cli.ts';
import {requireCommands} from '../../helpers/system-packages.ts';
import {beforeRemoving, createTempDir} from '../../helpers/temp-dir.ts';
import {waitFor} from '../../helpers/wait-for.ts';

const MODULES = fs.readdirSync(path.join(COLLECTION_DIR, `plugins`, `modules`)).filter((file) => file.endsWith(`.py`)).map((file) => file.slice(0, -3)).sort();
const WEB_APP = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `web-app.cjs`);
const INSTALL_PLAYBOOK = path.join(import.meta.dirname, `fixtures`, `install-local.yml`);
const MODULES_PLAYBOOK = path.join(import.meta.dirname, `fixtures`, `modules-local.yml`);
// The sanity tests of ansible-test that need no virtualenv (the others bootstrap pip from the internet).
const SANITY_TESTS = [
  `action-plugin-docs`, `compile`, `empty-init`, `future-import-boilerplate`, `ignores`, `line-endings`, `metaclass-boilerplate`,
  `no-assert`, `no-basestring`, `no-dict-iteritems`, `no-dict-iterkeys`, `no-dict-itervalues`, `no-get-exception`,
  `no-illegal-filenames`, `no-main-display`, `no-smart-quotes`, `no-unicode-literals`, `replace-urlopen`, `shebang`,
  `shellcheck`, `symlinks`, `use-argspec-type-path`, `use-compat-six`,
];

function explain(run: AnsibleRun): string {
  return `exit ${run.code}\n${run.stdout.slice(-6_000)}\n${run.stderr.slice(-3_000)}`;
}

test(`the collection has the four modules the docs promise`, () => {
  assert.deepEqual(MODULES, [`info`, `legacy_takeover`, `release`, `restart`]);
});

test(`ansible-doc renders every module with its options, examples and return values, and the install role`, async (t) => {
  if (!requireAnsible(t)) return;
  const workspace = createAnsibleWorkspace(createTempDir(t, `rb-ansible-`));
  const listed = await workspace.run(`ansible-doc`, [`--list`, `rollbridge.deploy`, `--json`]);
  assert.equal(listed.code, 0, explain(listed));
  assert.deepEqual(Object.keys(JSON.parse(listed.stdout) as object).sort(), MODULES.map((name) => `rollbridge.deploy.${name}`));
  for (const name of MODULES) {
    const rendered = await workspace.run(`ansible-doc`, [`rollbridge.deploy.${name}`]);
    assert.equal(rendered.code, 0, explain(rendered));
    assert.equal(rendered.stderr.trim(), ``, `ansible-doc warns nothing for ${name}`);
    for (const section of [`OPTIONS`, `EXAMPLES`, `RETURN VALUES`, `config`]) assert.match(rendered.stdout, new RegExp(section), `${name} has ${section}`);
  }
  // config and binary are documented once, in plugins/doc_fragments/rollbridge.py: every module has them
  // from there (a module may word config's description its own way), and no module repeats them.
  const documented = await workspace.run(`ansible-doc`, [`--json`, ...MODULES.map((name) => `rollbridge.deploy.${name}`)]);
  assert.equal(documented.code, 0, explain(documented));
  type Option = {description: string[]; type: string; required?: boolean; default?: unknown};
  const docs = JSON.parse(documented.stdout) as Record<string, {doc: {options: Record<string, Option>}}>;
  for (const name of MODULES) {
    const {config, binary} = docs[`rollbridge.deploy.${name}`]?.doc.options ?? {};
    assert.deepEqual([config?.type, config?.required], [`path`, true], `${name}: config`);
    assert.match(config?.description[0] ?? ``, /^Path of the application's rollbridge config file /, `${name}: config`);
    assert.deepEqual([binary?.type, binary?.default], [`str`, `rollbridge`], `${name}: binary`);
    assert.match(binary?.description.join(` `) ?? ``, /^The rollbridge executable on the managed host, a name looked up on C\(PATH\)/, `${name}: binary`);
    const source = fs.readFileSync(path.join(COLLECTION_DIR, `plugins`, `modules`, `${name}.py`), `utf8`);
    assert.match(source, /\nextends_documentation_fragment:\n {2}- rollbridge\.deploy\.rollbridge\n/, name);
    assert.doesNotMatch(source, /\n {2}binary:\n/, `${name} does not repeat the binary option's documentation`);
  }
  const role = await workspace.run(`ansible-doc`, [`-t`, `role`, `rollbridge.deploy.install`]);
  assert.equal(role.code, 0, explain(role));
  assert.match(role.stdout, /rollbridge_binary_src/);
});

test(`ansible-galaxy builds the collection with its modules, role and playbook`, async (t) => {
  if (!requireAnsible(t)) return;
  const workspace = createAnsibleWorkspace(createTempDir(t, `rb-ansible-`));
  const built = await workspace.run(`ansible-galaxy`, [`collection`, `build`, workspace.collectionPath, `--output-path`, workspace.dir]);
  assert.equal(built.code, 0, explain(built));
  const tarball = fs.readdirSync(workspace.dir).find((file) => /^rollbridge-deploy-\d+\.\d+\.\d+\.tar\.gz$/.test(file));
  assert.ok(tarball, built.stdout);
  const listing = spawnSync(`tar`, [`-tzf`, path.join(workspace.dir, tarball)], {encoding: `utf8`}).stdout.split(`\n`);
  for (const file of [`MANIFEST.json`, `plugins/module_utils/rollbridge.py`, `plugins/doc_fragments/rollbridge.py`, `roles/install/templates/rollbridge.service.j2`, `playbooks/rolling_deploy.yml`, ...MODULES.map((name) => `plugins/modules/${name}.py`)]) {
    assert.ok(listing.includes(file), `${file} is in ${tarball}`);
  }
});

test(`the venv-free ansible-test sanity tests pass`, async (t) => {
  if (!requireAnsible(t) || !requireCommands(t, [{command: `git`, pkg: `git`}])) return;
  const workspace = createAnsibleWorkspace(createTempDir(t, `rb-ansible-`));
  // ansible-test looks at the files git knows in the collection's own repository.
  const git = (...args: string[]) => spawnSync(`git`, [`-c`, `user.name=test`, `-c`, `user.email=test@localhost`, ...args], {cwd: workspace.collectionPath, encoding: `utf8`});
  for (const args of [[`init`, `-q`], [`add`, `-A`], [`commit`, `-qm`, `collection`]]) assert.equal(git(...args).status, 0);
  const sanity = await workspace.run(`ansible-test`, [`sanity`, `--local`, `--python`, `3.11`, ...SANITY_TESTS.flatMap((name) => [`--test`, name])], {cwd: workspace.collectionPath});
  assert.equal(sanity.code, 0, explain(sanity));
  for (const name of SANITY_TESTS) assert.match(sanity.stdout, new RegExp(`Running sanity test "${name}"`));
});

test(`the install role writes a systemd unit systemd-analyze verify accepts, is idempotent, and hands a running daemon over to a new binary without a failed request; every module works against that daemon`, async (t) => {
  if (!requireAnsible(t) || !requireCommands(t, [{command: `systemd-analyze`, pkg: `systemd`}])) return;
  const binary = getBinaryPath();
  const dir = createTempDir(t, `rb-ansible-`);
  const workspace = createAnsibleWorkspace(dir);
  const appRoot = path.join(dir, `app`);
  const installDir = path.join(dir, `bin`);
  const unitDir = path.join(dir, `units`);
  const configPath = path.join(appRoot, `rollbridge.json`);
  const proxyPort = await freePort();
  const config = {
    application: `shop`,
    control: {path: path.join(appRoot, `control.sock`)},
    proxy: {host: `127.0.0.1`, port: proxyPort, drainTimeoutMs: 1_000},
    processes: [{id: `web`, command: `exec "${process.execPath}" "${WEB_APP}"`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/ping`, intervalMs: 50}}],
  };
  const varsPath = path.join(dir, `vars.json`);
  fs.writeFileSync(varsPath, JSON.stringify({
    app_root: appRoot,
    rollbridge_binary_src: binary,
    rollbridge_install_dir: installDir,
    rollbridge_config_path: configPath,
    rollbridge_config: config,
    rollbridge_systemd: true,
    rollbridge_systemd_unit_dir: unitDir,
    rollbridge_service_user: `root`,
    rollbridge_daemon_pid_path: path.join(dir, `run`, `daemon.pid`),
    rollbridge_daemon_log_path: path.join(dir, `log`, `daemon.log`),
  }));
  fs.mkdirSync(unitDir);
  // Before the temp dir (config, socket, state) goes: the daemon the play starts (and its successor) stops.
  beforeRemoving(dir, () => spawnSync(path.join(installDir, `rollbridge`), [`shutdown`, `--config`, configPath], {timeout: 30_000}));
  const play = () => workspace.run(`ansible-playbook`, [`-i`, `localhost,`, `-e`, `@${varsPath}`, INSTALL_PLAYBOOK]);

  const first = await play();
  assert.equal(first.code, 0, explain(first));
  assert.deepEqual(JSON.parse(fs.readFileSync(configPath, `utf8`)), config);
  assert.equal(fs.statSync(path.join(installDir, `rollbridge`)).mode & 0o777, 0o755);
  const unit = path.join(unitDir, `rollbridge-shop.service`);
  // verify exits 0 on many problems, only printing them: the unit passes when it prints nothing.
  const verified = spawnSync(`systemd-analyze`, [`verify`, unit], {encoding: `utf8`});
  assert.equal(verified.status, 0, verified.stderr);
  assert.equal(`${verified.stdout}${verified.stderr}`.trim(), ``, `systemd-analyze verify warns nothing`);
  const unitText = fs.readFileSync(unit, `utf8`);
  assert.match(unitText, new RegExp(`^ExecStart=${installDir}/rollbridge ensure-daemon --config ${configPath} `, `m`));
  assert.match(unitText, /^Type=forking$/m);
  // The check can fail: a unit systemd cannot parse makes it complain.
  fs.writeFileSync(path.join(dir, `broken.service`), unitText.replace(/^Type=forking$/m, `Type=sometimes`));
  assert.match(spawnSync(`systemd-analyze`, [`verify`, path.join(dir, `broken.service`)], {encoding: `utf8`}).stderr, /Failed to parse service type/);

  const again = await play();
  assert.equal(again.code, 0, explain(again));
  assert.deepEqual(Object.fromEntries(again.recap), {localhost: {...again.recap.get(`localhost`), changed: 0}}, explain(again));

  // A different binary on the host (the old build, say): the role installs ours, and the handler hands the
  // running daemon over to it while requests keep flowing.
  const daemonPid = () => Number((JSON.parse(spawnSync(path.join(installDir, `rollbridge`), [`status`, `--json`, `--config`, configPath], {encoding: `utf8`}).stdout) as {daemon: {pid: number}}).daemon.pid);
  const before = daemonPid();
  const stale = path.join(installDir, `.rollbridge-stale`);
  fs.copyFileSync(binary, stale);
  fs.appendFileSync(stale, `stale build`);
  fs.renameSync(stale, path.join(installDir, `rollbridge`));
  let running = true;
  const failures: string[] = [];
  let requests = 0;
  const agent = new http.Agent({keepAlive: true, maxSockets: 1});
  const load = (async () => {
    const stopAt = Date.now() + 120_000;
    while (running && Date.now() < stopAt) {
      requests++;
      const outcome = await new Promise<string>((resolve) => {
        http.get({host: `127.0.0.1`, port: proxyPort, path: `/release`, agent}, (response) => {
          response.resume();
          response.on(`end`, () => resolve(response.statusCode === 200 ? `` : `HTTP ${response.statusCode}`));
        }).on(`error`, (error) => resolve(String(error)));
      });
      if (outcome) failures.push(outcome);
      await delay(5);
    }
  })();
  const upgraded = await play();
  running = false;
  await load;
  agent.destroy();
  assert.equal(upgraded.code, 0, explain(upgraded));
  assert.match(upgraded.stdout, /RUNNING HANDLER \[rollbridge\.deploy\.install : Replace the daemon without downtime\]/);
  t.diagnostic(`${requests} requests to the proxy port during the play that handed the daemon over, ${failures.length} failed`);
  assert.deepEqual(failures, [], `${failures.length} of ${requests} requests failed during the handover`);
  const after = daemonPid();
  assert.notEqual(after, before);
  await waitFor(() => !isPidAlive(before), {timeoutMs: 15_000, what: `the old daemon to exit after the handover`});
  assert.equal(Number(fs.readFileSync(path.join(dir, `run`, `daemon.pid`), `utf8`)), after, `the unit's PIDFile names the new daemon`);

  // Every module against that daemon; the play asserts the results itself.
  const modules = await workspace.run(`ansible-playbook`, [`-i`, `localhost,`, `-e`, `@${varsPath}`, MODULES_PLAYBOOK]);
  assert.equal(modules.code, 0, explain(modules));
  assert.equal(modules.recap.get(`localhost`)?.failed, 0, explain(modules));
  assert.equal(modules.recap.get(`localhost`)?.ignored, 2, explain(modules));
});
