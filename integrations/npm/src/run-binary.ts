import {spawn} from 'node:child_process';
import readline from 'node:readline';
import {resolveBinary} from './resolve-binary.ts';
import {RollbridgeError} from './rollbridge-error.ts';
import type {WireError} from './rollbridge-error.ts';

/** How to run the binary; every API function takes these next to its flags. */
export type RunOptions = {
  /** Working directory of the binary (a relative `config` or `releasePath` is resolved against it). @default process.cwd() */
  cwd?: string;
  /** Environment of the binary. @default process.env */
  env?: Record<string, string | undefined>;
  /** Aborting it stops the binary (SIGTERM) and rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** The rollbridge binary. @default ROLLBRIDGE_BIN, then the installed `@rollbridge/<platform>` package */
  binary?: string;
};

const RUN_OPTION_KEYS = new Set([`cwd`, `env`, `signal`, `binary`]);
/** Kept of the binary's stderr for an error message. */
const STDERR_TAIL_BYTES = 8_192;

/**
 * CLI arguments from an options object: every key that is not a RunOptions key becomes its kebab-case
 * flag (`releasePath` → `--release-path`); `true` → `--flag`, `false` → `--no-flag`, an array repeats
 * the flag; `undefined` is left out. `positional` names a key whose strings go after the flags.
 */
export function toArgs(command: string[], options: Record<string, unknown>, {positional}: {positional?: string} = {}): string[] {
  const args = [...command];
  const rest: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (RUN_OPTION_KEYS.has(key) || value === undefined) continue;
    if (key === positional) {
      if (!Array.isArray(value) || !value.every((item) => typeof item === `string`)) throw new TypeError(`Option "${key}" must be an array of strings (got ${describe(value)})`);
      rest.push(...value);
      continue;
    }
    if (!/^[a-z][A-Za-z0-9]*$/.test(key)) throw new TypeError(`Option "${key}" is not a camelCase flag name`);
    const flag = `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item === true) args.push(flag);
      else if (item === false) args.push(`--no-${flag.slice(2)}`);
      else if (typeof item === `string`) args.push(flag, item);
      else if (typeof item === `number` && Number.isFinite(item)) args.push(flag, String(item));
      else throw new TypeError(`Option "${key}" must be a string, a finite number or a boolean (got ${describe(item)})`);
    }
  }
  return rest.length > 0 ? [...args, `--`, ...rest] : args;
}

/**
 * Runs `rollbridge <args> --json` and returns its one JSON document. A document `{"error": {…}}`
 * (or a non-zero exit with none) is thrown as a RollbridgeError. `okExitCodes` lists the exit codes
 * whose document is a result (`validate` exits 1 with its report).
 */
export async function runJson(args: string[], options: RunOptions, {okExitCodes = [0]}: {okExitCodes?: number[]} = {}): Promise<Record<string, unknown>> {
  options.signal?.throwIfAborted();
  const binary = options.binary ?? resolveBinary({env: options.env, cwd: options.cwd});
  const child = spawn(binary, [...args, `--json`], {cwd: options.cwd, env: options.env ?? process.env, stdio: [`ignore`, `pipe`, `pipe`]});
  const stdout: Buffer[] = [];
  const stderr = createTail();
  child.stdout.on(`data`, (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on(`data`, stderr.push);
  const exit = await waitForExit(child, binary, options.signal);
  const text = Buffer.concat(stdout).toString(`utf8`);
  const document = parseDocument(text);
  if (document !== null && isWireErrorDocument(document)) throw RollbridgeError.fromWire(document.error, exit.code);
  if (exit.code !== null && okExitCodes.includes(exit.code) && document !== null) return document;
  throw binaryFailed(binary, args, exit, text, stderr.text());
}

/**
 * Runs `rollbridge <args> --json [--stream]` and yields each NDJSON line as an object. A line
 * `{"type":"error","error":{…}}` is thrown as a RollbridgeError; leaving the loop early stops the binary.
 */
export async function* runLines(args: string[], options: RunOptions, {stream = true}: {stream?: boolean} = {}): AsyncGenerator<Record<string, unknown>, void, undefined> {
  options.signal?.throwIfAborted();
  const binary = options.binary ?? resolveBinary({env: options.env, cwd: options.cwd});
  const child = spawn(binary, [...args, `--json`, ...(stream ? [`--stream`] : [])], {cwd: options.cwd, env: options.env ?? process.env, stdio: [`ignore`, `pipe`, `pipe`]});
  const stderr = createTail();
  child.stderr.on(`data`, stderr.push);
  const exited = waitForExit(child, binary, options.signal);
  // Consumed below or by the caller's rejection path; never left unhandled.
  exited.catch(() => {});
  const lines = readline.createInterface({input: child.stdout, crlfDelay: Infinity});
  const seen: string[] = [];
  try {
    for await (const line of lines) {
      if (line.trim() === ``) continue;
      const value = parseDocument(line);
      if (value === null) {
        seen.push(line);
        continue;
      }
      // `{"type":"error","error":…}` in a stream; `{"error":…}` from a command that failed before streaming.
      if (isWireErrorDocument(value) && (value.type === `error` || value.type === undefined)) {
        const exit = await exited;
        throw RollbridgeError.fromWire(value.error, exit.code);
      }
      yield value;
    }
    const exit = await exited;
    if (exit.code !== 0 || seen.length > 0) throw binaryFailed(binary, args, exit, seen.join(`\n`), stderr.text());
  } finally {
    lines.close();
    if (child.exitCode === null && child.signalCode === null) child.kill(`SIGTERM`);
  }
}

type Exit = {code: number | null; signal: NodeJS.Signals | null};

function waitForExit(child: ReturnType<typeof spawn>, binary: string, signal: AbortSignal | undefined): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      child.kill(`SIGTERM`);
      reject(signal?.reason);
    };
    signal?.addEventListener(`abort`, onAbort, {once: true});
    child.once(`error`, (error: NodeJS.ErrnoException) => {
      signal?.removeEventListener(`abort`, onAbort);
      reject(new RollbridgeError(`ERR_NPM_BINARY_FAILED`, `Cannot run ${binary}: ${error.message}`, {
        fix: `Check that ${binary} is a rollbridge binary for this machine (\`${binary} --version\`), or set ROLLBRIDGE_BIN to one`,
        details: {binary, errno: error.code},
        cause: error,
      }));
    });
    child.once(`close`, (code, exitSignal) => {
      signal?.removeEventListener(`abort`, onAbort);
      resolve({code, signal: exitSignal});
    });
  });
}

function binaryFailed(binary: string, args: string[], exit: Exit, stdout: string, stderr: string): RollbridgeError {
  const how = exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
  const output = (stderr.trim() || stdout.trim()).split(`\n`).slice(-5).join(`\n`);
  return new RollbridgeError(`ERR_NPM_BINARY_FAILED`, `\`rollbridge ${args.join(` `)}\` ${how} without a JSON answer${output ? `: ${output}` : ``}`, {
    fix: `Run \`${binary} --version\` to check the binary, then the same command by hand to see its output`,
    details: {binary, args, exitCode: exit.code, signal: exit.signal},
    exitCode: exit.code,
  });
}

function parseDocument(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === `object` && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : null;
  } catch {
    return null;
  }
}

function isWireErrorDocument(value: Record<string, unknown>): value is {type?: unknown; error: WireError} {
  const error = value.error;
  return typeof error === `object` && error !== null && typeof (error as WireError).code === `string` && typeof (error as WireError).message === `string`;
}

function createTail(): {push: (chunk: Buffer) => void; text: () => string} {
  let tail = Buffer.alloc(0);
  return {
    push: (chunk) => {
      tail = Buffer.concat([tail, chunk]);
      if (tail.length > STDERR_TAIL_BYTES) tail = tail.subarray(tail.length - STDERR_TAIL_BYTES);
    },
    text: () => tail.toString(`utf8`),
  };
}

function describe(value: unknown): string {
  if (value === undefined) return `undefined`;
  if (typeof value === `function`) return `a function`;
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}
