import type {LegacyUser} from './legacy-user.ts';

/** One GNU Screen session as `screen -ls` lists it. */
export type ScreenSession = {
  /** Pid of the SCREEN server process. */
  pid: number;
  name: string;
  /** `PID.NAME`: the only safe way to address a session (`-S NAME` is a prefix match). */
  id: string;
  /** `Detached`, `Attached`, `Private`, `Dead ???`… as screen prints it. */
  state: string;
};

export type ScreenListing = {
  sessions: ScreenSession[];
  /** Why the sessions could not be listed (screen not installed, no way to run it as the user); null when they were. */
  warning: string | null;
};

const SCREEN_TIMEOUT_MS = 10_000;

/**
 * Parses `screen -ls` output: session lines are `\t<PID>.<NAME>\t(<date>)\t(<state>)`. The exit code is not
 * used (screen 4.9 exits 1 even after listing sessions in some states), nor are the header and footer lines.
 */
export function parseScreenList(output: string): ScreenSession[] {
  const sessions: ScreenSession[] = [];
  for (const rawLine of output.split(`\n`)) {
    const line = rawLine.replace(/\r$/, ``);
    if (!line.startsWith(`\t`)) continue;
    const fields = line.slice(1).split(`\t`);
    const match = /^(\d+)\.(.+)$/.exec(fields[0] ?? ``);
    if (match?.[1] === undefined || match[2] === undefined) continue;
    const last = fields.length > 1 ? fields.at(-1)?.trim() : undefined;
    const state = last !== undefined && last.startsWith(`(`) && last.endsWith(`)`) ? last.slice(1, -1) : `unknown`;
    const pid = Number(match[1]);
    sessions.push({pid, name: match[2], id: `${pid}.${match[2]}`, state});
  }
  return sessions;
}

/**
 * The screen sessions of `user`, listed by running `screen -ls` as that user (screen is not setuid on
 * Debian, so root cannot address another user's sessions). A missing screen binary is a warning, not an error.
 */
export async function listScreenSessions(user: LegacyUser): Promise<ScreenListing> {
  const result = await runScreenAs(user, [`-ls`]);
  if (`warning` in result) return {sessions: [], warning: result.warning};
  return {sessions: parseScreenList(result.output), warning: null};
}

/** `screen -S PID.NAME -X quit`, run as the session's owner. */
export async function quitScreenSession(session: ScreenSession, user: LegacyUser): Promise<{ok: boolean; output: string}> {
  const result = await runScreenAs(user, [`-S`, session.id, `-X`, `quit`]);
  if (`warning` in result) return {ok: false, output: result.warning};
  return {ok: result.exitCode === 0, output: result.output.trim()};
}

async function runScreenAs(user: LegacyUser, args: string[]): Promise<{output: string; exitCode: number} | {warning: string}> {
  const ownUid = process.getuid?.();
  let file: string;
  let fileArgs: string[];
  if (ownUid === user.uid) {
    file = `screen`;
    fileArgs = args;
  } else if (ownUid === 0) {
    file = `runuser`;
    fileArgs = [`-u`, user.name, `--`, `screen`, ...args];
  } else {
    return {warning: `Cannot run screen as user "${user.name}" (uid ${user.uid}) from uid ${ownUid ?? `unknown`}: only root or that user can reach its screen sessions`};
  }
  // Loaded on demand: execa is heavy, and the CLI loads this module for every command (`--version` goal: 50 ms).
  const {execa} = await import('execa');
  const result = await execa(file, fileArgs, {reject: false, all: true, stdin: `ignore`, timeout: SCREEN_TIMEOUT_MS});
  const output = result.all ?? ``;
  // ENOENT: screen (or runuser) is not installed; 127: runuser could not execute screen.
  if ((result as {code?: string}).code === `ENOENT` || result.exitCode === 127) {
    return {warning: `GNU screen is not installed (running ${file} failed: ${output.trim() || `command not found`}); screen sessions were not listed`};
  }
  if (result.timedOut) return {warning: `screen ${args.join(` `)} did not finish within ${SCREEN_TIMEOUT_MS} ms`};
  return {output, exitCode: result.exitCode ?? 1};
}
