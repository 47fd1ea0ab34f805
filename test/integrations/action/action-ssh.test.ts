// integrations/action over real SSH: an sshd on 127.0.0.1 with a throw-away user (test/helpers/sshd.ts),
// the action run through the local composite runner. It installs the real binary on first use,
// uploads releases with tar over ssh, deploys (starting the daemon with --ensure-daemon), streams the
// phases back, makes a dry run that leaves the host as it was, rolls back, and reports a host key it
// cannot verify.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {getBinaryPath} from '../../e2e/binary-path.ts';
import {httpGet} from '../../helpers/http.ts';
import {startSshHosts} from '../../helpers/sshd.ts';
import {createTempDir} from '../../helpers/temp-dir.ts';
import {ACTION_DIR, actionTestConfig, makeNodelessPath} from './action-rig.ts';
import {runCompositeAction} from './composite-runner.ts';
import type {CompositeRun} from './composite-runner.ts';

const sha256 = (file: string) => crypto.createHash(`sha256`).update(fs.readFileSync(file)).digest(`hex`);

test(`over SSH the action installs the binary once, uploads each release, deploys, streams progress and rolls back`, async (t) => {
  const rig = await startSshHosts(t);
  if (!rig) return;
  const [host] = rig.hosts;
  assert.ok(host);
  const binary = getBinaryPath();

  // The host: the app's config in ~/app (owned by the user); no binary yet, no daemon.
  const appDir = path.join(host.home, `app`);
  fs.mkdirSync(appDir);
  const config = {...actionTestConfig(appDir), application: `action-ssh-${host.user}`, proxy: {host: `127.0.0.1`, port: host.proxyPort, drainTimeoutMs: 500, forceStopTimeoutMs: 2_000}};
  fs.writeFileSync(path.join(appDir, `rollbridge.json`), JSON.stringify(config, null, 2));
  for (const entry of [appDir, path.join(appDir, `rollbridge.json`)]) fs.chownSync(entry, host.uid, host.gid);
  rig.onTeardown(() => rig.ssh(host, `.local/bin/rollbridge shutdown --config app/rollbridge.json --json`));
  // An older binary is installed already: the action replaces it because it differs.
  const installed = path.join(host.home, `.local`, `bin`, `rollbridge`);
  fs.mkdirSync(path.dirname(installed), {recursive: true});
  fs.writeFileSync(installed, `#!/bin/sh\necho "rollbridge 0.1.21"\n`, {mode: 0o755});
  for (const entry of [path.join(host.home, `.local`), path.dirname(installed), installed]) fs.chownSync(entry, host.uid, host.gid);
  const daemonArgs = `--ensure-daemon\n--daemon-log-path\napp/daemon.log\n--daemon-pid-path\napp/daemon.pid\n`;

  // The runner: a workspace with the built release and the binary to install; no node on PATH.
  const workspace = createTempDir(t, `rb-action-ssh-`);
  const runnerTemp = path.join(workspace, `.runner-temp`);
  fs.mkdirSync(runnerTemp);
  fs.copyFileSync(binary, path.join(workspace, `rollbridge-linux-x64`));
  const machinePath = makeNodelessPath(path.join(workspace, `.runner-bin`));
  const key = fs.readFileSync(host.keyPath, `utf8`);
  const knownHosts = fs.readFileSync(host.knownHostsPath, `utf8`);
  const sshInputs = {'ssh-host': host.host, 'ssh-port': String(host.port), 'ssh-user': host.user, 'ssh-private-key': key, 'ssh-known-hosts': knownHosts, config: `~/app/rollbridge.json`, binary: `~/.local/bin/rollbridge`};
  const release = (id: string) => {
    const dir = path.join(workspace, `build-${id}`);
    fs.mkdirSync(path.join(dir, `public`), {recursive: true});
    fs.writeFileSync(path.join(dir, `public`, `VERSION`), `${id}\n`);
    return `build-${id}`;
  };
  const controlDirs = () => fs.readdirSync(`/tmp`).filter((name) => name.startsWith(`rb-ssh.`)).sort();
  const controlDirsBefore = controlDirs();
  const run = (inputs: Record<string, string>): Promise<CompositeRun> => runCompositeAction({
    actionDir: ACTION_DIR, workspace, runnerTemp, with: {...sshInputs, ...inputs},
    machineEnv: {PATH: machinePath, HOME: workspace, LANG: `C.UTF-8`}, github: {sha: `feedfacefeedfacefeedfacefeedfacefeedface`},
  });

  const first = await run({'release-path': release(`r1`), 'release-id': `r1`, 'install-binary': `rollbridge-linux-x64`, args: daemonArgs});
  const firstLog = first.log.join(`\n`);
  assert.equal(first.status, `success`, firstLog);
  assert.deepEqual([first.outputs[`active-release`], first.outputs[`previous-release`], first.outputs.changed], [`r1`, ``, `true`]);
  assert.match(firstLog, /^Installed \.local\/bin\/rollbridge: rollbridge 0\.1\.21 -> rollbridge \d+\.\d+\.\d+ /m, `a differing binary is replaced`);
  assert.equal(sha256(installed), sha256(binary));
  assert.ok(fs.existsSync(path.join(appDir, `daemon.pid`)), `--ensure-daemon started the daemon with the args given one per line`);
  assert.equal(fs.readFileSync(path.join(appDir, `releases`, `r1`, `public`, `VERSION`), `utf8`), `r1\n`, `the release went to releases beside the config`);
  assert.equal(fs.statSync(path.join(appDir, `releases`, `r1`)).uid, host.uid);
  assert.equal((await httpGet(host.proxyPort, `/release`)).body, `r1\n`);
  for (const line of key.trim().split(`\n`)) assert.ok(!firstLog.includes(line.trim()), `the key never reaches the log`);
  assert.match(first.summary, new RegExp(`^\\| Where \\| ${host.user}@127\\.0\\.0\\.1 port ${host.port} \\|$`, `m`));

  const second = await run({'release-path': release(`r2`), 'release-id': `r2`, 'install-binary': `rollbridge-linux-x64`, args: daemonArgs});
  const secondLog = second.log.join(`\n`);
  assert.equal(second.status, `success`, secondLog);
  assert.deepEqual([second.outputs[`active-release`], second.outputs[`previous-release`], second.outputs.changed], [`r2`, `r1`, `true`]);
  assert.match(secondLog, /^\.local\/bin\/rollbridge is up to date \(sha256 [0-9a-f]{64}\)$/m, `the same binary is not installed again`);
  assert.match(secondLog, /^ {2}healthy \(processId web releaseId r2\) \d+ ms$/m, `phases stream back over ssh`);
  assert.match(secondLog, /^Uploaded 1 files \(\d+ KiB\) in /m);
  assert.equal((await httpGet(host.proxyPort, `/release`)).body, `r2\n`);

  const rerun = await run({'release-path': release(`r2`), 'release-id': `r2`});
  assert.equal(rerun.status, `success`, rerun.log.join(`\n`));
  assert.equal(rerun.outputs.changed, `false`);
  assert.ok(rerun.log.some((line) => line.includes(`releases/r2 already exists on 127.0.0.1: not uploaded again`)), rerun.log.join(`\n`));

  const scratchDirs = () => [`/tmp`, path.join(host.home, `tmp`)].filter((dir) => fs.existsSync(dir)).flatMap((dir) => fs.readdirSync(dir).filter((name) => name.startsWith(`rollbridge-dry-run.`)));
  const planned = await run({'release-path': release(`r3`), 'release-id': `r3`, 'dry-run': `true`});
  assert.equal(planned.status, `success`, planned.log.join(`\n`));
  assert.deepEqual([planned.outputs.changed, planned.outputs[`active-release`]], [`false`, `r2`]);
  assert.match(planned.summary, /^\| start \| web \| proxied \|$/m, planned.summary);
  assert.equal(fs.existsSync(path.join(appDir, `releases`, `r3`)), false, `a dry run leaves the releases alone`);
  assert.deepEqual(scratchDirs(), [], `and removes its temporary upload`);

  const rolledBack = await run({command: `rollback`});
  assert.equal(rolledBack.status, `success`, rolledBack.log.join(`\n`));
  assert.deepEqual([rolledBack.outputs[`active-release`], rolledBack.outputs[`previous-release`], rolledBack.outputs.changed], [`r1`, `r2`, `true`]);
  assert.equal((await httpGet(host.proxyPort, `/release`)).body, `r1\n`);

  const otherKey = knownHosts.replace(/ssh-ed25519 \S+/g, `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvSHXm7GhHmDsXVKJEL2lO1L5LJmV0zYw0r6xP7bAJA`);
  const spoofed = await run({command: `status`, 'ssh-known-hosts': otherKey});
  assert.equal(spoofed.status, `failure`);
  const [annotation] = spoofed.annotations.filter((entry) => entry.level === `error`);
  assert.match(annotation?.message ?? ``, /^SSH to .* failed: .*Host key verification failed\.\nFix: .*ssh-known-hosts/s);

  const leftovers = controlDirs().filter((name) => !controlDirsBefore.includes(name));
  assert.deepEqual(leftovers, [], `the key and the connection are removed after every run`);
});
