import {execa} from 'execa';
import {HOOK_OUTPUT_LINES} from '../config/defaults.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';

export type HookName = `beforeSwitch` | `afterSwitch`;

export type HookResult = {
  hook: HookName;
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  /** The last HOOK_OUTPUT_LINES lines of stdout and stderr, interleaved. */
  output: string[];
};

/**
 * Runs a hook command through `/bin/sh -c` in its own process group with the release's environment,
 * bounded by `timeoutMs` (then execa's `killDescendants` sends SIGKILL to the whole group). Never throws
 * for the command's failure: the result says what happened; `assertHookSucceeded` turns a failure into
 * ERR_HOOK_FAILED.
 */
export async function runHook(options: {hook: HookName; command: string; cwd: string; env: Record<string, string>; timeoutMs: number}): Promise<HookResult> {
  const startedAt = performance.now();
  const subprocess = execa(`/bin/sh`, [`-c`, options.command], {
    cwd: options.cwd,
    env: options.env,
    extendEnv: false,
    // Not stopped with the daemon (as before): killDescendants alone would also make it a group leader.
    detached: true,
    killDescendants: true,
    timeout: options.timeoutMs,
    killSignal: `SIGKILL`,
    all: true,
    reject: false,
    stdin: `ignore`,
    maxBuffer: 16 * 1024 * 1024,
  });
  const result = await subprocess;
  const timedOut = result.timedOut;
  const all = typeof result.all === `string` ? result.all : ``;
  const output = all.split(/\r?\n/).filter((line) => line.length > 0).slice(-HOOK_OUTPUT_LINES);
  const exitCode = typeof result.exitCode === `number` ? result.exitCode : null;
  return {
    hook: options.hook,
    ok: !timedOut && exitCode === 0,
    exitCode,
    signal: result.signal ?? null,
    timedOut,
    durationMs: Math.round(performance.now() - startedAt),
    output,
  };
}

export function hookFailure(result: HookResult, releaseId: string): RollbridgeError {
  const how = result.timedOut ? `timed out after ${result.durationMs} ms` : result.signal ? `was killed by ${result.signal}` : result.exitCode === null ? `could not run` : `exited with code ${result.exitCode}`;
  return new RollbridgeError(ErrorCode.HOOK_FAILED, `hooks.${result.hook} for release ${releaseId} ${how}${result.output.length > 0 ? `: ${result.output.at(-1)}` : ``}`, {
    fix: result.timedOut ? `Make the command finish sooner or raise hooks.timeoutMs` : `Fix the command in hooks.${result.hook} (its last output lines are in the error details and in "rollbridge events")`,
    details: {hook: result.hook, releaseId, exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut, output: result.output},
  });
}
