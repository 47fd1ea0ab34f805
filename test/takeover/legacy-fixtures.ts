import {execFile, spawn} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import type {TestContext} from 'node:test';
import {promisify} from 'node:util';
import {parseScreenList} from '../../src/takeover/screen.ts';
import type {ScreenSession} from '../../src/takeover/screen.ts';
import {readEnvironmentVariable, readProcessTable} from '../../src/system/proc.ts';
import {isPidAlive, killQuietly} from '../helpers/processes.ts';
import {findCommand, requireCommands} from '../helpers/system-packages.ts';
import {waitFor} from '../helpers/wait-for.ts';

const run = promisify(execFile);

/** The session command of the brief: a background child, a setsid escapee, a nohup escapee and the exec'd window process. */
export const ESCAPEES_COMMAND = `sleep 400 & (setsid sleep 401 &); nohup sleep 402 & exec sleep 403`;

type After = Pick<TestContext, `after`>;

/**
 * GNU screen, which every legacy-takeover test drives: installed when missing (root + apt-get), else the
 * test is skipped saying what is absent. Returns true when the test may go on.
 */
export function requireScreen(t: TestContext): boolean {
  return requireCommands(t, [{command: `screen`, pkg: `screen`}]);
}

export function uniqueName(prefix = `rbt`): string {
  return `${prefix}-${randomBytes(4).toString(`hex`)}`;
}

export async function listOwnSessions(): Promise<ScreenSession[]> {
  const result = await run(`screen`, [`-ls`]).catch((error: {stdout?: string}) => ({stdout: error.stdout ?? ``}));
  return parseScreenList(result.stdout);
}

/** Pids whose environment carries `STY=<id>`, i.e. everything started inside the session. */
export function pidsOfSession(id: string): number[] {
  return readProcessTable().filter((entry) => entry.state !== `Z` && readEnvironmentVariable(entry.pid, `STY`) === id).map((entry) => entry.pid);
}

/**
 * Starts `screen -dmS NAME bash -c COMMAND` in `cwd` and returns the new session. After the test, every
 * process of the session is killed and the session quit by its `PID.NAME`.
 */
export async function startScreenSession(t: After, name: string, command: string, options: {cwd: string; processes?: number}): Promise<ScreenSession> {
  if (findCommand(`screen`) === null) throw new Error(`GNU screen is not installed: call requireScreen(t) at the start of the test`);
  const before = new Set((await listOwnSessions()).map((session) => session.id));
  await run(`screen`, [`-dmS`, name, `bash`, `-c`, command], {cwd: options.cwd});
  const session = await waitFor(async () => (await listOwnSessions()).find((entry) => entry.name === name && !before.has(entry.id)), {what: `screen session ${name}`});
  t.after(async () => {
    const leftovers = pidsOfSession(session.id);
    await run(`screen`, [`-S`, session.id, `-X`, `quit`]).catch(() => undefined);
    // A server killed before it has handled the quit leaves a dead socket behind: give it time to exit.
    const ended = await waitFor(() => !isPidAlive(session.pid), {timeoutMs: 3_000, what: `the screen server to exit`}).catch(() => false);
    for (const pid of [...leftovers, session.pid]) killQuietly(pid);
    if (!ended) await run(`screen`, [`-wipe`, session.id]).catch(() => undefined);
  });
  if (options.processes !== undefined) {
    const expected = options.processes;
    await waitFor(() => pidsOfSession(session.id).length >= expected, {what: `${expected} processes in screen session ${session.id}`});
  }
  return session;
}

/** Starts a detached `/bin/sh -c script` (its own group); it and its group are killed after the test. */
export function startDetached(t: After, script: string, args: string[] = []): number {
  const child = spawn(`/bin/sh`, [`-c`, script, ...args], {detached: true, stdio: `ignore`});
  const pid = child.pid;
  if (pid === undefined) throw new Error(`spawn failed`);
  child.unref();
  t.after(() => killQuietly(pid));
  return pid;
}

/** Pids of the processes whose command line contains `marker`. */
export function pidsWithArgs(marker: string): number[] {
  return readProcessTable().filter((entry) => entry.state !== `Z` && entry.args.includes(marker)).map((entry) => entry.pid);
}
