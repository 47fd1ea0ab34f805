// The command registry (src/cli/command-registry.ts) lists every command module with its paths, so a run
// loads only the command it names. A command file left out of it would silently vanish from the CLI, and
// paths that disagree with the class would route a command line to the wrong module.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {COMMAND_REGISTRY, commandEntriesFor, loadCommands} from '../../src/cli/command-registry.ts';
import {REPO_ROOT} from '../helpers/run-cli.ts';

const COMMANDS_DIR = path.join(REPO_ROOT, `src`, `cli`, `commands`);

test(`every file in src/cli/commands is registered exactly once`, () => {
  const files = fs.readdirSync(COMMANDS_DIR).filter((name) => name.endsWith(`.ts`)).sort();
  const registered = COMMAND_REGISTRY.map((entry) => entry.file);
  assert.equal(new Set(registered).size, registered.length, `a file is registered twice: ${registered.join(`, `)}`);
  assert.deepEqual([...registered].sort(), files, `src/cli/command-registry.ts must list every command file`);
});

test(`each entry loads the command class its file exports, with the paths the entry gives`, async () => {
  for (const entry of COMMAND_REGISTRY) {
    const commandClass = await entry.load();
    const module = await import(path.join(COMMANDS_DIR, entry.file)) as Record<string, unknown>;
    const exported = Object.values(module).filter((value) => typeof value === `function` && `paths` in value && Array.isArray((value as {paths: unknown}).paths));
    assert.deepEqual(exported, [commandClass], `${entry.file} exports exactly the command class entry.load() returns`);
    assert.deepEqual(commandClass.paths, entry.paths, `${entry.file}: the registry's paths match the class's static paths`);
  }
});

test(`no two commands share a path`, () => {
  const paths = COMMAND_REGISTRY.flatMap((entry) => entry.paths.map((words) => words.join(` `)));
  assert.equal(new Set(paths).size, paths.length, paths.join(`, `));
});

test(`a run loads only the command it names; no command, completion or an unknown word loads all`, async () => {
  assert.deepEqual(commandEntriesFor([`status`, `--json`]).map((entry) => entry.file), [`status.ts`]);
  assert.deepEqual(commandEntriesFor([`-v`]).map((entry) => entry.file), [`version.ts`]);
  for (const argv of [[], [`completion`, `bash`], [`--help`], [`statsu`]]) {
    assert.equal(commandEntriesFor(argv), COMMAND_REGISTRY, argv.join(` `));
  }
  assert.equal((await loadCommands()).length, COMMAND_REGISTRY.length);
});
