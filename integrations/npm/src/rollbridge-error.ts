/** `{code, message, fix?, details?}`: how rollbridge prints an error with `--json` (docs/errors.md). */
export type WireError = {code: string; message: string; fix?: string; details?: Record<string, unknown>};

/**
 * A failure reported by the rollbridge binary (or by this package when it cannot run it). Branch on
 * `code` (`ERR_…`, documented in rollbridge's docs/errors.md), never on the message; `fix` says what to
 * do next. `exitCode` is the binary's exit status (1 failed, 2 usage) when it ran.
 */
export class RollbridgeError extends Error {
  readonly code: string;
  readonly fix: string | undefined;
  readonly details: Readonly<Record<string, unknown>>;
  readonly exitCode: number | null;

  constructor(code: string, message: string, options: {fix?: string | undefined; details?: Record<string, unknown> | undefined; exitCode?: number | null; cause?: unknown} = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause});
    this.name = `RollbridgeError`;
    this.code = code;
    this.fix = options.fix;
    this.details = options.details ?? {};
    this.exitCode = options.exitCode ?? null;
  }

  static fromWire(wire: WireError, exitCode: number | null): RollbridgeError {
    return new RollbridgeError(wire.code, wire.message, {fix: wire.fix, details: wire.details, exitCode});
  }
}

/** True for a RollbridgeError, also one from another copy of this package (`instanceof` fails across copies). */
export function isRollbridgeError(value: unknown): value is RollbridgeError {
  return value instanceof Error && value.name === `RollbridgeError` && typeof (value as {code?: unknown}).code === `string`;
}
