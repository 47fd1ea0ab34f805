// Usage errors, help and completion of the built binary (issue 13 item 5), and `validate` catching what a
// deploy would trip over (item 9): a template typo and a single fixed port on the proxied process.
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {Cli} from 'clipanion';
import {loadCommands} from '../../src/cli/command-registry.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {requireCommands} from '../helpers/system-packages.ts';
import {getBinaryPath} from './binary-path.ts';

type Run = {code: number; stdout: string; stderr: string};
type UsageErrorJson = {error: {code: string; message: string; fix: string; details: Record<string, unknown>}};

const BINARY = getBinaryPath();
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[/;

function run(args: string[], options: {cwd?: string; env?: Record<string, string | undefined>} = {}): Promise<Run> {
  return new Promise((resolve) => {
    const env: Record<string, string | undefined> = {...process.env, ROLLBRIDGE_OUTPUT: ``, NO_COLOR: undefined, FORCE_COLOR: undefined, ...options.env};
    execFile(BINARY, args, {cwd: options.cwd ?? path.dirname(BINARY), env: env as NodeJS.ProcessEnv, timeout: 60_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === `number` ? error.code : 1) : 0, stdout, stderr});
    });
  });
}

function writeConfig(dir: string, processes: Array<Record<string, unknown>>): void {
  fs.writeFileSync(path.join(dir, `rollbridge.json`), JSON.stringify({application: `usage`, control: {path: path.join(dir, `control.sock`)}, proxy: {host: `127.0.0.1`, port: 0}, processes}, null, 2));
}

test(`deploy without --release-path names the missing flag: exit 2, ERR_USAGE under --json and --stream`, async () => {
  const human = await run([`deploy`]);
  assert.equal(human.code, 2, human.stderr);
  assert.equal(human.stdout, ``);
  assert.equal(human.stderr, `error ERR_USAGE: rollbridge deploy needs --release-path\n  fix: Pass --release-path <path> ("rollbridge deploy --help" lists every option)\n`);
  assert.doesNotMatch(human.stderr, /Command not found/);

  const json = await run([`deploy`, `--release-id`, `r1`, `--json`]);
  assert.equal(json.code, 2);
  const {error} = JSON.parse(json.stdout) as UsageErrorJson;
  assert.equal(error.code, `ERR_USAGE`);
  assert.equal(error.message, `rollbridge deploy needs --release-path`);
  assert.deepEqual(error.details, {command: `deploy`, missing: [`--release-path`]});

  const stream = await run([`legacy-takeover`, `--stream`]);
  assert.equal(stream.code, 2);
  const line = JSON.parse(stream.stdout.trim()) as {type: string; error: {code: string; message: string}};
  assert.equal(line.type, `error`);
  assert.equal(line.error.code, `ERR_USAGE`);
  assert.equal(line.error.message, `rollbridge legacy-takeover needs --release-path`);
});

test(`every command's help names flag values, shows required flags on the Usage line, and has no #0`, async () => {
  // The required flags as clipanion itself records them (a plain Cli, not the binary's help rendering).
  const plain = Cli.from(await loadCommands(), {binaryName: `rollbridge`});
  const documented = plain.definitions().filter((definition) => !definition.path.startsWith(`rollbridge -`));
  assert.ok(documented.length >= 17, `found ${documented.length} commands`);
  const top = await run([`--help`]);
  assert.equal(top.code, 0);
  assert.doesNotMatch(top.stdout, / #\d/);
  for (const definition of documented) {
    const words = definition.path.split(` `).slice(1);
    const help = await run([...words, `--help`]);
    assert.equal(help.code, 0, `${definition.path} --help: ${help.stderr}`);
    assert.doesNotMatch(help.stdout, / #\d/, `${definition.path} --help has no #0 placeholder`);
    const usageLine = /\n\$ (rollbridge .*)\n/.exec(help.stdout)?.[1] ?? ``;
    assert.ok(usageLine.startsWith(definition.path), `${definition.path} --help has a usage line: ${help.stdout.slice(0, 300)}`);
    for (const option of definition.options.filter((candidate) => candidate.required)) {
      const flag = option.definition.split(/[\s,]/).find((name) => name.startsWith(`--`)) ?? ``;
      assert.match(usageLine, new RegExp(` ${flag} <[a-z]+>`), `${definition.path}: the Usage line shows the required ${flag}`);
      assert.match(top.stdout, new RegExp(`${definition.path} .* ${flag} <[a-z]+> `), `${definition.path}: the command list shows ${flag} as required (no brackets)`);
    }
    for (const option of definition.options) {
      if (option.definition.includes(`#0`)) assert.match(help.stdout, new RegExp(`\\n {2}${option.definition.replace(/ #0$/, ``).replace(/[-,]/g, `\\$&`)} <[a-z]+> `), `${definition.path}: ${option.definition} has a named value`);
    }
  }
  const deploy = await run([`deploy`, `--help`]);
  assert.match(deploy.stdout, /\n\$ rollbridge deploy --release-path <path> \[options\]\n/);
  assert.match(deploy.stdout, /\n {2}--watch <duration> +Keep the previous release warm/);
});

test(`help has ANSI colours only on a terminal; NO_COLOR and FORCE_COLOR are respected`, async (t) => {
  const piped = await run([`--help`]);
  assert.equal(piped.code, 0);
  assert.doesNotMatch(piped.stdout, ANSI, `no colour codes into a pipe`);
  assert.doesNotMatch((await run([`deploy`, `--help`])).stdout, ANSI);
  assert.match((await run([`--help`], {env: {FORCE_COLOR: `1`}})).stdout, ANSI, `FORCE_COLOR turns colours on`);
  assert.doesNotMatch((await run([`--help`], {env: {FORCE_COLOR: `0`}})).stdout, ANSI);
  assert.doesNotMatch((await run([`--help`], {env: {FORCE_COLOR: `1`, NO_COLOR: `1`}})).stdout, ANSI, `NO_COLOR wins`);
  if (!requireCommands(t, [{command: `script`, pkg: `bsdutils`}])) return;
  // On a real terminal (script gives the binary a pty): colours, unless NO_COLOR.
  const onTty = (env: Record<string, string | undefined>) => new Promise<string>((resolve) => {
    execFile(`script`, [`-qec`, `${BINARY} --help`, `/dev/null`], {env: {...process.env, NO_COLOR: undefined, FORCE_COLOR: undefined, TERM: `xterm-256color`, ...env} as NodeJS.ProcessEnv, timeout: 60_000}, (_error, stdout) => resolve(stdout));
  });
  assert.match(await onTty({}), ANSI, `colours on a terminal`);
  assert.doesNotMatch(await onTty({NO_COLOR: `1`}), ANSI);
});

test(`a mistyped command or flag gets the closest one, not every command; exit 2`, async () => {
  const typo = await run([`deploi`, `--release-path`, `x`]);
  assert.equal(typo.code, 2);
  assert.equal(typo.stderr, `error ERR_USAGE: Unknown command "deploi"\n  fix: Did you mean "rollbridge deploy"? Run "rollbridge --help" for every command\n`);
  const json = await run([`stauts`, `--json`]);
  assert.equal(json.code, 2);
  const {error} = JSON.parse(json.stdout) as UsageErrorJson;
  assert.equal(error.code, `ERR_USAGE`);
  assert.deepEqual(error.details, {command: `stauts`, suggestions: [`status`]});
  const nothingClose = await run([`frobnicate`]);
  assert.equal(nothingClose.code, 2);
  assert.equal(nothingClose.stderr, `error ERR_USAGE: Unknown command "frobnicate"\n  fix: Run "rollbridge --help" for every command\n`);
  const flag = await run([`status`, `--jsno`]);
  assert.equal(flag.code, 2);
  assert.equal(flag.stderr, `error ERR_USAGE: rollbridge status has no option --jsno\n  fix: Did you mean --json? ("rollbridge status --help" lists every option)\n`);
});

test(`a repeated --process: restart acts on each, logs refuses with exit 2 instead of keeping the last`, async (t) => {
  const dir = createTempDir(t, `rb-usage-`);
  writeConfig(dir, [{id: `web`, command: `true`, policy: `proxied`, port: {from: 0, to: 0}}, {id: `worker`, command: `true`}]);
  const logs = await run([`logs`, `--process`, `web`, `--process=worker`, `--json`], {cwd: dir});
  assert.equal(logs.code, 2);
  const {error} = JSON.parse(logs.stdout) as UsageErrorJson;
  assert.equal(error.code, `ERR_USAGE`);
  assert.equal(error.message, `--process was given 2 times ("web", "worker"); rollbridge logs takes one`);
  const deploy = await run([`deploy`, `--release-path`, `a`, `--release-path`, `b`], {cwd: dir});
  assert.equal(deploy.code, 2);
  assert.match(deploy.stderr, /^error ERR_USAGE: --release-path was given 2 times \("a", "b"\); rollbridge deploy takes one\n/);
  // restart accepts both: it gets past the command line to the daemon (none runs here).
  const restart = await run([`restart`, `--process`, `web`, `--process`, `worker`, `--json`], {cwd: dir});
  assert.equal(restart.code, 1, restart.stdout);
  assert.equal((JSON.parse(restart.stdout) as UsageErrorJson).error.code, `ERR_DAEMON_UNREACHABLE`);
});

test(`bash completion offers the policies after --policy and the config's process ids after --process`, async (t) => {
  if (!requireCommands(t, [{command: `bash`, pkg: `bash`}])) return;
  const dir = createTempDir(t, `rb-usage-`);
  writeConfig(dir, [{id: `web`, command: `true`, policy: `proxied`, port: {from: 0, to: 0}, replicas: 2}, {id: `worker`, command: `true`}, {id: `cache`, command: `true`, policy: `service`}]);
  fs.mkdirSync(path.join(dir, `other`));
  fs.writeFileSync(path.join(dir, `other`, `app.json`), JSON.stringify({application: `other`, proxy: {}, processes: [{id: `api`, command: `true`, policy: `proxied`, port: {from: 0, to: 0}}]}));
  fs.writeFileSync(path.join(dir, `web.txt`), ``);
  // The script runs "rollbridge" from PATH, as an installed completion does.
  const bin = path.join(dir, `bin`);
  fs.mkdirSync(bin);
  fs.symlinkSync(BINARY, path.join(bin, `rollbridge`));
  const script = await run([`completion`, `bash`]);
  assert.equal(script.code, 0, script.stderr);
  const scriptPath = path.join(dir, `rollbridge.bash`);
  fs.writeFileSync(scriptPath, script.stdout);
  const complete = (words: string[]) => new Promise<string[]>((resolve, reject) => {
    const program = [`source "$1"`, `shift`, `COMP_WORDS=("$@")`, `COMP_CWORD=$(( $# - 1 ))`, `COMPREPLY=()`, `_rollbridge`, `printf '%s\\n' "\${COMPREPLY[@]}"`].join(`\n`);
    execFile(`bash`, [`--norc`, `--noprofile`, `-c`, program, `bash`, scriptPath, ...words], {cwd: dir, env: {...process.env, PATH: `${bin}:${process.env.PATH ?? ``}`}}, (error, stdout, stderr) => {
      if (error) reject(new Error(`bash failed: ${stderr}`, {cause: error}));
      else resolve(stdout.split(`\n`).filter((line) => line !== ``));
    });
  });
  assert.deepEqual(await complete([`rollbridge`, `restart`, `--policy`, ``]), [`proxied`, `companion`, `singleton`, `service`]);
  assert.deepEqual(await complete([`rollbridge`, `restart`, `--policy`, `s`]), [`singleton`, `service`]);
  assert.deepEqual(await complete([`rollbridge`, `restart`, `--process`, ``]), [`web`, `web#0`, `web#1`, `worker`, `cache`]);
  assert.deepEqual(await complete([`rollbridge`, `logs`, `--process`, `w`]), [`web`, `web#0`, `web#1`, `worker`], `no file names (web.txt)`);
  assert.deepEqual(await complete([`rollbridge`, `restart`, `--config`, `other/app.json`, `--process`, ``]), [`api`], `--config on the line picks the config`);
  assert.deepEqual(await complete([`rollbridge`, `restart`, `--cooldown`, ``]), [], `nothing after a duration`);
  assert.deepEqual(await complete([`rollbridge`, `deploy`, `--release-path`, `ot`]), [`other`], `file names after a path flag`);
});

test(`validate reports a template typo as doctor and deploy would, and warns about a single fixed port`, async (t) => {
  const dir = createTempDir(t, `rb-usage-`);
  writeConfig(dir, [
    {id: `web`, command: `exec node server.js --port {{prot}}`, policy: `proxied`, port: 3000, env: {HOME_DIR: `{{env.HOME}}`}},
    {id: `worker`, command: `exec node worker.js --api {{ports.web}}`, cwd: `{{releasePath}}/worker`},
  ]);
  const human = await run([`validate`], {cwd: dir});
  assert.equal(human.code, 1);
  assert.match(human.stderr, /^Found 1 configuration issue in .*rollbridge\.json:\n\n1\. Missing template value for \{\{prot\}\} in processes\[0\]\.command\n {3}Fix: Did you mean \{\{port\}\}\? Use one of the available keys in processes\[0\]\.command: /);
  assert.match(human.stderr, /\nFound 1 warning in .*:\n\n1\. Proxied process "web" has the single port 3000: a deploy starts the new release beside the running one, finds 3000 taken and fails \(ERR_PORT_RANGE_EXHAUSTED\)\n {3}Fix: Set processes\[0\]\.port to a range, e\.g\. \{from: 3000, to: 3009\} .*\{\{port\}\} in processes\[0\]\.command/);
  const json = await run([`validate`, `--json`], {cwd: dir});
  assert.equal(json.code, 1);
  const report = JSON.parse(json.stdout) as {valid: boolean; issues: Array<{path: string}>; warnings: Array<{path: string}>};
  assert.equal(report.valid, false);
  assert.deepEqual(report.issues.map((issue) => issue.path), [`processes[0].command`], `{{env.HOME}}, {{ports.web}} and {{releasePath}} are fine`);
  assert.deepEqual(report.warnings.map((warning) => warning.path), [`processes[0].port`]);
  const doctor = await run([`doctor`, `--json`], {cwd: dir});
  assert.equal(doctor.code, 1);
  assert.deepEqual((JSON.parse(doctor.stdout) as {checks: Array<{name: string; ok: boolean}>}).checks.map((check) => [check.name, check.ok]), [[`config`, false]]);

  // Fixed: a range and {{port}}; the warning goes, validate passes.
  writeConfig(dir, [{id: `web`, command: `exec node server.js --port {{port}}`, policy: `proxied`, port: {from: 3000, to: 3009}}, {id: `worker`, command: `exec node worker.js --port {{port}}`}]);
  const portless = await run([`validate`, `--json`], {cwd: dir});
  assert.equal(portless.code, 1, `{{port}} on a process without a port is caught too`);
  assert.deepEqual((JSON.parse(portless.stdout) as {issues: Array<{path: string}>}).issues.map((issue) => issue.path), [`processes[1].command`]);
  writeConfig(dir, [{id: `web`, command: `exec node server.js --port {{port}}`, policy: `proxied`, port: {from: 3000, to: 3009}}]);
  const fixed = await run([`validate`], {cwd: dir});
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.equal(fixed.stderr, ``);
});
