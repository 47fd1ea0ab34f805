import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {createCli} from '../../src/cli/cli.ts';
import {loadCommands} from '../../src/cli/command-registry.ts';
import {runCli} from '../helpers/run-cli.ts';
import {createTempDir} from '../helpers/temp-dir.ts';

/** Sources the script in a real bash and calls _rollbridge with COMP_WORDS = words (the last one is completed). */
function bashComplete(scriptPath: string, words: string[], cwd: string): Promise<string[]> {
  const program = [
    `source "$1"`,
    `shift`,
    `COMP_WORDS=("$@")`,
    `COMP_CWORD=$(( $# - 1 ))`,
    `COMPREPLY=()`,
    `_rollbridge`,
    `printf '%s\\n' "\${COMPREPLY[@]}"`,
  ].join(`\n`);
  return new Promise((resolve, reject) => {
    execFile(`bash`, [`--norc`, `--noprofile`, `-c`, program, `bash`, scriptPath, ...words], {cwd}, (error, stdout, stderr) => {
      if (error) reject(new Error(`bash failed: ${stderr}`, {cause: error}));
      else resolve(stdout.split(`\n`).filter((line) => line !== ``));
    });
  });
}

const ALL_COMMANDS = await loadCommands();

function commandNames(): string[] {
  return createCli({commands: ALL_COMMANDS}).definitions().map((definition) => definition.path.split(` `)[1] ?? ``).filter((name) => !name.startsWith(`-`));
}

test(`the bash script completes command names, then flags, then files after a flag that takes a value`, async (t) => {
  const dir = createTempDir(t);
  const result = await runCli([`completion`, `bash`]);
  assert.equal(result.code, 0, result.stderr);
  const scriptPath = path.join(dir, `rollbridge.bash`);
  fs.writeFileSync(scriptPath, result.stdout);
  fs.mkdirSync(path.join(dir, `releases`));

  const [dep, all, rel, releaseDir, configFile, shells, hidden, afterBoolean, rootFlags] = await Promise.all([
    bashComplete(scriptPath, [`rollbridge`, `dep`], dir),
    bashComplete(scriptPath, [`rollbridge`, ``], dir),
    bashComplete(scriptPath, [`rollbridge`, `deploy`, `--rel`], dir),
    bashComplete(scriptPath, [`rollbridge`, `deploy`, `--release-path`, `rel`], dir),
    bashComplete(scriptPath, [`rollbridge`, `doctor`, `-c`, `rollbridge.b`], dir),
    bashComplete(scriptPath, [`rollbridge`, `completion`, ``], dir),
    bashComplete(scriptPath, [`rollbridge`, `__`], dir),
    bashComplete(scriptPath, [`rollbridge`, `status`, `--json`, `--ch`], dir),
    bashComplete(scriptPath, [`rollbridge`, `--ver`], dir),
  ]);
  assert.deepEqual(dep, [`deploy`]);
  assert.deepEqual(all, commandNames(), `every registered command, in registration order`);
  assert.ok(all.includes(`doctor`) && all.includes(`completion`));
  assert.ok(rel.includes(`--release-path`), rel.join(` `));
  assert.ok(rel.every((flag) => flag.startsWith(`--rel`)));
  assert.deepEqual(releaseDir, [`releases`]);
  assert.deepEqual(configFile, [`rollbridge.bash`]);
  assert.deepEqual(shells, [`bash`, `zsh`, `fish`]);
  assert.deepEqual(hidden, [], `hidden commands (no usage) are not completed`);
  assert.deepEqual(afterBoolean, [`--check`]);
  assert.deepEqual(rootFlags, [`--version`]);
});

test(`the zsh script is a #compdef script with each command's options; fish uses complete -c`, async () => {
  const [zsh, fish] = await Promise.all([runCli([`completion`, `zsh`]), runCli([`completion`, `fish`])]);
  assert.equal(zsh.code, 0, zsh.stderr);
  assert.match(zsh.stdout, /^#compdef rollbridge\n/);
  for (const name of commandNames()) assert.match(zsh.stdout, new RegExp(`\\n {4}'${name}:`), `zsh lists ${name}`);
  assert.match(zsh.stdout, /\n {4}deploy\)\n(?: {6,8}.*\n)*? {8}'--release-path\[[^\]]+\]:release-path:_files' \\\n/);
  assert.match(zsh.stdout, /'--check\[/);
  assert.doesNotMatch(zsh.stdout, /__verify-app/);

  assert.equal(fish.code, 0, fish.stderr);
  for (const name of commandNames()) assert.match(fish.stdout, new RegExp(`^complete -c rollbridge -n '[^']*' -a ${name} -d '`, `m`), `fish lists ${name}`);
  assert.match(fish.stdout, /^complete -c rollbridge -n '__fish_seen_subcommand_from deploy' -l release-path -r -F -d '/m);
  assert.match(fish.stdout, /^complete -c rollbridge -n '__fish_seen_subcommand_from status' -l check -d '/m);
  assert.doesNotMatch(fish.stdout, /__verify-app/);

  // After --policy the policies, after --process the config's ids (a hidden command prints them), nothing after a duration.
  assert.match(zsh.stdout, /'--policy\[[^\]]*\]:policy:\(proxied companion singleton service\)'/);
  assert.match(zsh.stdout, /'--process\[[^\]]*\]:process:\{compadd -- \$\{\(f\)"\$\(rollbridge __complete-processes 2>\/dev\/null\)"\}\}'/);
  assert.match(zsh.stdout, /'--cooldown\[[^\]]*\]:cooldown: '/);
  assert.match(fish.stdout, /^complete -c rollbridge -n '__fish_seen_subcommand_from restart' -l policy -r -f -a 'proxied companion singleton service' -d '/m);
  assert.match(fish.stdout, /^complete -c rollbridge -n '__fish_seen_subcommand_from logs' -l process -r -f -a '\(rollbridge __complete-processes 2>\/dev\/null\)' -d '/m);
  assert.match(fish.stdout, /^complete -c rollbridge -n '__fish_seen_subcommand_from restart' -l cooldown -r -f -d '/m);
  assert.doesNotMatch(zsh.stdout + fish.stdout, /__complete-processes'/, `the hidden command is not offered as a command`);
});

test(`an unsupported shell is a usage error (exit 2) listing the supported shells`, async () => {
  const result = await runCli([`completion`, `tcsh`]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, ``);
  assert.match(result.stderr, /^error ERR_USAGE: Unsupported shell "tcsh"; supported shells: bash, zsh, fish\n {2}fix: .*completion <shell>/);
  assert.equal((await runCli([`completion`])).code, 2, `the shell is required`);
});
