import type {ErrorCode} from './codes.ts';

export type WireError = {
  code: string;
  message: string;
  fix?: string | undefined;
  details?: Record<string, unknown> | undefined;
};

export type RollbridgeErrorOptions = {
  fix?: string | undefined;
  details?: Record<string, unknown> | undefined;
  cause?: unknown;
};

/**
 * An operational failure with a stable code and, where there is an honest one, a `fix`
 * naming the exact config key, flag or command. Crosses the control socket via toWire/fromWire.
 */
export class RollbridgeError extends Error {
  readonly code: ErrorCode | string;
  readonly fix: string | undefined;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode | string, message: string, options: RollbridgeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause});
    this.name = `RollbridgeError`;
    this.code = code;
    this.fix = options.fix;
    this.details = options.details ?? {};
  }

  toWire(): WireError {
    const wire: WireError = {code: this.code, message: this.message};
    if (this.fix !== undefined) wire.fix = this.fix;
    if (Object.keys(this.details).length > 0) wire.details = {...this.details};
    return wire;
  }

  static fromWire(wire: WireError): RollbridgeError {
    return new RollbridgeError(wire.code, wire.message, {fix: wire.fix, details: wire.details});
  }
}

export function isRollbridgeError(error: unknown): error is RollbridgeError {
  return error instanceof RollbridgeError
    || (typeof error === `object` && error !== null && (error as {name?: unknown}).name === `RollbridgeError` && typeof (error as {code?: unknown}).code === `string`);
}

/** Any thrown value as a wire error; unknown errors become ERR_INTERNAL with their message. */
export function toWireError(error: unknown): WireError {
  if (isRollbridgeError(error)) return error.toWire();
  const message = error instanceof Error ? error.message : String(error);
  return {code: `ERR_INTERNAL`, message};
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
