/**
 * A failure of the build tooling (bundle/, scripts/). These are not rollbridge runtime errors, so
 * they carry no ERR_* code; like RollbridgeError they state the fact and, where honest, a `fix`.
 */
export type BuildFailure = Error & {fix?: string | undefined};

export function buildFailure(message: string, options: {fix?: string; cause?: unknown} = {}): BuildFailure {
  const error: BuildFailure = new Error(message, options.cause === undefined ? undefined : {cause: options.cause});
  error.name = `BuildFailure`;
  if (options.fix !== undefined) error.fix = options.fix;
  return error;
}

/** `error: <message>` + `  fix: <fix>`, the CLI's human rendering; a stack only for unexpected errors. */
export function formatFailure(error: unknown): string {
  if (error instanceof Error && error.name === `BuildFailure`) {
    const fix = (error as BuildFailure).fix;
    return `error: ${error.message}\n${fix === undefined ? `` : `  fix: ${fix}\n`}`;
  }
  return `error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`;
}
