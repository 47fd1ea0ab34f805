import {spawn} from 'node:child_process';
import os from 'node:os';
import {resolveBinary} from './resolve-binary.ts';
import {isRollbridgeError} from './rollbridge-error.ts';

/** What a shell exits with when the command is not found. */
export const EXIT_NOT_FOUND = 127;
/** SIGUSR1 is left alone: Node reserves it for its inspector. */
const FORWARDED_SIGNALS: NodeJS.Signals[] = [`SIGINT`, `SIGTERM`, `SIGHUP`, `SIGQUIT`, `SIGUSR2`];

/**
 * Runs the rollbridge binary (ROLLBRIDGE_BIN, then the platform package) with `args` and this process's
 * stdio, then exits with its exit code, or 128 + N when signal N killed it (as a shell reports it).
 * Signals sent to this process are forwarded. Without a binary: ERR_NPM_BINARY_NOT_FOUND, exit 127.
 */
export function runInherited(args: string[], {json}: {json: boolean}): void {
  let binary: string;
  try {
    binary = resolveBinary();
  } catch (error) {
    if (!isRollbridgeError(error)) throw error;
    if (json) process.stdout.write(`${JSON.stringify({error: {code: error.code, message: error.message, fix: error.fix, details: error.details}})}\n`);
    else process.stderr.write(`error ${error.code}: ${error.message}\n  fix: ${error.fix ?? ``}\n`);
    process.exit(EXIT_NOT_FOUND);
  }
  // The handlers go in before the spawn: a signal that arrives while the binary starts is forwarded
  // to it, not taken by this process's default action (which would exit without the binary's code).
  let child: ReturnType<typeof spawn> | null = null;
  for (const signal of FORWARDED_SIGNALS) {
    process.on(signal, () => {
      if (child === null) process.exit(128 + (os.constants.signals[signal] ?? 0));
      else if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    });
  }
  child = spawn(binary, args, {stdio: `inherit`});
  child.once(`error`, (error: NodeJS.ErrnoException) => {
    process.stderr.write(`error ERR_NPM_BINARY_FAILED: Cannot run ${binary}: ${error.message}\n  fix: Check that ${binary} is a rollbridge binary for this machine, or set ROLLBRIDGE_BIN to one\n`);
    process.exit(error.code === `ENOENT` ? EXIT_NOT_FOUND : 126);
  });
  child.once(`exit`, (code, signal) => {
    process.exit(signal === null ? (code ?? 1) : 128 + (os.constants.signals[signal] ?? 0));
  });
}
