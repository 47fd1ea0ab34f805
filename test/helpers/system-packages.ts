// Debian packages a test needs (screen, sshd, ansible-core, capistrano, qemu-user-static, prometheus…).
// A fresh machine has none of them: the test installs what is missing (as root, through apt-get, one
// install at a time across parallel test files), and when that cannot be done it is skipped with the
// reason, never counted as passed.
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type {TestContext} from 'node:test';

/** A command the test runs, and the Debian package that provides it. */
export type Requirement = {command: string; pkg: string};

const LOCK_PATH = `/tmp/rollbridge-test-apt.lock`;
const UPDATED_MARKER = `/tmp/rollbridge-test-apt.updated`;

/** The absolute path of a command on PATH (or the sbin directories, where sshd lives), or null. */
export function findCommand(command: string): string | null {
  if (command.includes(`/`)) return fs.existsSync(command) ? command : null;
  const dirs = [...(process.env.PATH ?? ``).split(`:`), `/usr/sbin`, `/sbin`, `/usr/local/sbin`];
  for (const dir of dirs) {
    if (dir === ``) continue;
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch { /* next */ }
  }
  return null;
}

/**
 * Installs the packages of the missing commands. Returns null when every command is there afterwards,
 * else why not (the caller skips with it).
 */
export function ensureCommands(requirements: Requirement[]): string | null {
  const missing = requirements.filter((requirement) => findCommand(requirement.command) === null);
  if (missing.length === 0) return null;
  const packages = [...new Set(missing.map((requirement) => requirement.pkg))];
  const names = missing.map((requirement) => requirement.command).join(`, `);
  if (process.getuid?.() !== 0) return `${names} missing and not root: apt-get install -y ${packages.join(` `)}`;
  if (findCommand(`apt-get`) === null || findCommand(`flock`) === null) return `${names} missing and no apt-get/flock to install ${packages.join(` `)}`;
  // flock serialises parallel test files; apt-get update runs once per machine boot of the suite.
  const script = [
    `set -e`,
    `if [ ! -e ${UPDATED_MARKER} ]; then apt-get update -qq >/dev/null 2>&1 || true; touch ${UPDATED_MARKER}; fi`,
    `DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null`,
  ].join(`\n`);
  const result = spawnSync(`flock`, [LOCK_PATH, `sh`, `-c`, script, `sh`, ...packages], {encoding: `utf8`, timeout: 600_000});
  const still = missing.filter((requirement) => findCommand(requirement.command) === null);
  if (still.length === 0) return null;
  const why = result.error?.message ?? result.stderr.trim().split(`\n`).slice(-2).join(` `);
  return `${still.map((requirement) => requirement.command).join(`, `)} missing; apt-get install ${packages.join(` `)} failed: ${why || `exit ${result.status}`}`;
}

/**
 * For a test (or a suite's `before`): installs what is missing, or skips the test saying what is absent.
 * Returns true when the test may go on.
 */
export function requireCommands(t: TestContext, requirements: Requirement[]): boolean {
  const why = ensureCommands(requirements);
  if (why === null) return true;
  t.skip(why);
  return false;
}
