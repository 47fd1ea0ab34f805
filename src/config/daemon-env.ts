/**
 * How a daemon is started: the V8 flags of the standalone binary's daemon, the glibc malloc settings it
 * runs with, and how those settings are kept from the processes it starts.
 *
 * glibc reads them once, when a process starts, so the program that starts the daemon sets them:
 * `ensure-daemon` (and `deploy --ensure-daemon`, `legacy-takeover`) and the daemon starting its
 * successor (`ensure-daemon --replace`). They are the daemon's own tuning, not the apps': the starter
 * lists the names it added in ROLLBRIDGE_DAEMON_ENV_ADDED, and the daemon removes exactly those (and that
 * list) from the environment its processes, hooks and `{{env.X}}` templates see. A variable the operator
 * set already is neither overridden nor listed, so it still reaches the apps as before.
 *
 * - `MALLOC_ARENA_MAX=2`: V8's compiler threads and libuv's pool would otherwise each get an arena of
 *   their own (up to 8 per core) that keeps what they freed;
 * - `MALLOC_MMAP_THRESHOLD_` and `MALLOC_TRIM_THRESHOLD_` at 128 KiB (glibc's initial values): a block
 *   that large is its own mapping, returned when freed, and a free top of the heap is given back. Left
 *   dynamic, glibc raises both after the first large block is freed (up to 32 and 64 MiB), and the
 *   compiler zones freed after each deploy stay in the daemon's RSS.
 *
 * Measured in docs/benchmarks.md (deploys-memory and the notes after it).
 */
export const DAEMON_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: `2`,
  MALLOC_MMAP_THRESHOLD_: `131072`,
  MALLOC_TRIM_THRESHOLD_: `131072`,
};

/**
 * V8 flags the daemon runs with and the other commands do not. `--no-maglev`: Maglev, V8's mid-tier
 * compiler, is code in the binary that a daemon pages in once its functions get warm (2.2 MB of its idle
 * RSS), and its compile jobs leave freed memory in malloc's arenas. Baked into the binary for every
 * command it cost each command ~10 ms: V8 then rejects Node's own code cache for its built-in modules
 * (made without the flag) and compiles every one the command loads (streams, net, tty…) from source.
 * The binary takes them as `--node-options=…` (its SEA config's execArgvExtension `cli`); NODE_OPTIONS
 * does not accept V8 flags.
 */
export const DAEMON_V8_FLAGS: readonly string[] = [`--no-maglev`];

/**
 * The program and arguments that start a daemon (before `daemon` and its options): the standalone
 * binary with DAEMON_V8_FLAGS. Node running the sources (development, tests) runs without them.
 */
export function daemonExecutable(self: {file: string; args: readonly string[]; standalone: boolean}): {file: string; args: string[]} {
  return self.standalone ? {file: self.file, args: [`--node-options=${DAEMON_V8_FLAGS.join(` `)}`, ...self.args]} : {file: self.file, args: [...self.args]};
}

/** The names (comma-separated) of the variables the daemon's starter added to its environment. */
export const DAEMON_ENV_ADDED = `ROLLBRIDGE_DAEMON_ENV_ADDED`;

type Env = Record<string, string | undefined>;

/** The environment to start a daemon with: `env` plus the malloc settings it does not set itself. */
export function daemonLaunchEnv(env: Env): Env {
  // Ours from an earlier start (a successor's environment is its predecessor's): ours again.
  const ours = new Set(addedNames(env));
  const launch: Env = {...env};
  const added: string[] = [];
  for (const [name, value] of Object.entries(DAEMON_MALLOC_ENV)) {
    if (env[name] !== undefined && !ours.has(name)) continue;
    launch[name] = value;
    added.push(name);
  }
  if (added.length > 0) launch[DAEMON_ENV_ADDED] = added.join(`,`);
  else delete launch[DAEMON_ENV_ADDED];
  return launch;
}

/** The daemon's environment without what its starter added: the base of every child's environment. */
export function childBaseEnv(env: Env): Env {
  if (env[DAEMON_ENV_ADDED] === undefined) return env;
  const base: Env = {...env};
  for (const name of addedNames(env)) delete base[name];
  delete base[DAEMON_ENV_ADDED];
  return base;
}

/** The listed names, only those of DAEMON_MALLOC_ENV: a forged list cannot remove anything else. */
function addedNames(env: Env): string[] {
  return (env[DAEMON_ENV_ADDED] ?? ``).split(`,`).filter((name) => Object.hasOwn(DAEMON_MALLOC_ENV, name));
}
