// The linux-arm64 binary under qemu-user (qemu-aarch64-static with Debian's arm64 cross runtime as its
// sysroot): --version, then a daemon + deploy + status + shutdown of a small app, with no node on PATH.
// The app's processes are host (x64) programs: qemu-user hands their execve to the kernel.
import assert from 'node:assert/strict';
import {execFile, spawn} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {findArm64Runner} from '../../bundle/arm64-runner.ts';
import {httpGet} from '../helpers/http.ts';
import {requireCommands} from '../helpers/system-packages.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';

const BINARY = path.resolve(import.meta.dirname, `..`, `..`, `bundle`, `rollbridge-linux-arm64`);
/** A non-Node app: answers every request with its release id. */
const PERL_APP = `use strict; use warnings; use IO::Socket::INET;
my $server = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $ENV{ROLLBRIDGE_PORT}, Listen => 16, ReuseAddr => 1) or die "listen: $!";
$SIG{TERM} = sub { exit 0 };
while (my $client = $server->accept) {
  while (my $line = <$client>) { last if $line =~ /^\\r?\\n$/; }
  my $body = "arm64 release $ENV{ROLLBRIDGE_RELEASE_ID}\\n";
  print $client "HTTP/1.1 200 OK\\r\\nContent-Length: " . length($body) . "\\r\\nConnection: close\\r\\n\\r\\n$body";
  close $client;
}
`;

function makeNodelessPath(dir: string): string {
  const bin = path.join(dir, `bin`);
  fs.mkdirSync(bin);
  for (const tool of [`sh`, `perl`, `sleep`]) {
    const found = [`/usr/bin/${tool}`, `/bin/${tool}`].find((candidate) => fs.existsSync(candidate));
    if (found) fs.symlinkSync(found, path.join(bin, tool));
  }
  return bin;
}

test(`the linux-arm64 binary prints its version and deploys a small app under qemu-user, with no node on PATH`, async (t) => {
  if (!requireCommands(t, [
    {command: `qemu-aarch64-static`, pkg: `qemu-user-static`},
    {command: `/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1`, pkg: `libc6-arm64-cross`},
    {command: `/usr/aarch64-linux-gnu/lib/libstdc++.so.6`, pkg: `libstdc++6-arm64-cross`},
    {command: `perl`, pkg: `perl-base`},
  ])) return;
  assert.ok(fs.existsSync(BINARY), `${BINARY} does not exist: run \`npm run build\``);
  const runner = findArm64Runner();
  assert.ok(`command` in runner, JSON.stringify(runner));
  const dir = createTempDir(t, `rb-arm64-`);
  const env = {PATH: makeNodelessPath(dir), HOME: dir};
  assert.equal(fs.existsSync(path.join(env.PATH, `node`)), false);
  const run = (args: string[]) => new Promise<{code: number; stdout: string; stderr: string}>((resolve) => {
    execFile(runner.command, [...runner.args, BINARY, ...args], {cwd: dir, env, timeout: 120_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, stdout, stderr});
    });
  });

  const version = await run([`--version`]);
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, /^rollbridge \d+\.\d+\.\d+ \(commit \w+, node v24\.\d+\.\d+\)/);
  const elf = fs.readFileSync(BINARY).subarray(0, 20);
  assert.equal(elf.readUInt16LE(18), 183, `e_machine is EM_AARCH64`);

  fs.writeFileSync(path.join(dir, `app.pl`), PERL_APP);
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({
    application: `arm64`,
    control: {path: path.join(dir, `control.sock`)},
    proxy: {host: `127.0.0.1`, port: 0, drainTimeoutMs: 1_000},
    processes: [{id: `web`, command: `exec perl ${path.join(dir, `app.pl`)}`, policy: `proxied`, port: {from: 0, to: 0}, health: {path: `/`, intervalMs: 100, timeoutMs: 60_000}}],
  }));
  fs.mkdirSync(path.join(dir, `releases`, `a1`), {recursive: true});
  const daemon = spawn(runner.command, [...runner.args, BINARY, `daemon`], {cwd: dir, env, stdio: [`ignore`, `pipe`, `pipe`]});
  let output = ``;
  daemon.stdout.on(`data`, (chunk: Buffer) => (output += chunk.toString()));
  daemon.stderr.on(`data`, (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => daemon.once(`exit`, (code) => resolve(code)));
  t.after(async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill(`SIGTERM`);
      await exited;
    }
  });
  await waitFor(() => fs.existsSync(path.join(dir, `control.sock`)), {what: `the arm64 daemon's socket`, timeoutMs: 60_000});

  const deployed = await run([`deploy`, `--release-path`, `releases/a1`, `--release-id`, `a1`, `--json`]);
  assert.equal(deployed.code, 0, deployed.stdout + deployed.stderr + output);
  assert.equal((JSON.parse(deployed.stdout) as {activeReleaseId: string}).activeReleaseId, `a1`);
  const status = JSON.parse((await run([`status`, `--json`])).stdout) as {proxy: {port: number}; activeReleaseId: string};
  assert.equal(status.activeReleaseId, `a1`);
  assert.equal((await httpGet(status.proxy.port)).body, `arm64 release a1\n`);

  const shutdown = await run([`shutdown`]);
  assert.equal(shutdown.code, 0, shutdown.stderr);
  assert.equal(await exited, 0);
});
