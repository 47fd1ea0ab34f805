// The typed Node API of the `rollbridge` npm package: each function runs the rollbridge binary with the
// flags named by its options (camelCase of the CLI's flags) and `--json`, and returns the parsed answer.
// Failures are thrown as RollbridgeError with rollbridge's `code`, `message` and `fix`.
import {runJson, runLines, toArgs} from './run-binary.ts';
import type {
  DeployOptions, DeployProgress, DeployResult, EventsOptions, LegacyTakeoverOptions, LegacyTakeoverResult, RestartOptions,
  RestartResult, RollbackOptions, RollbackResult, RollbridgeEvent, RunOptions, StatusOptions, StatusResult, ValidateOptions,
  ValidateResult,
} from './types.ts';

export {RollbridgeError, isRollbridgeError} from './rollbridge-error.ts';
export type {WireError} from './rollbridge-error.ts';
export {resolveBinary} from './resolve-binary.ts';
export type * from './types.ts';

/** `rollbridge deploy`: start the release, switch once healthy, drain the previous one. */
export async function deploy(options: DeployOptions): Promise<DeployResult> {
  return await runJson(toArgs([`deploy`], {...options}), options) as DeployResult;
}

/**
 * `rollbridge deploy --json --stream`: yields each phase as it happens, then `{type: "result", …}`.
 * A failed deploy throws a RollbridgeError from the loop; leaving the loop early stops the CLI (the
 * daemon finishes the deploy it started).
 */
export async function* deployProgress(options: DeployOptions): AsyncGenerator<DeployProgress, void, undefined> {
  for await (const line of runLines(toArgs([`deploy`], {...options}), options)) yield line as DeployProgress;
}

/** `rollbridge rollback`: switch back to a retained release. */
export async function rollback(options: RollbackOptions = {}): Promise<RollbackResult> {
  return await runJson(toArgs([`rollback`], {...options}), options) as RollbackResult;
}

/** `rollbridge restart`: restart processes one after the other; the web process without downtime. */
export async function restart(options: RestartOptions = {}): Promise<RestartResult> {
  return await runJson(toArgs([`restart`], {...options}, {positional: `names`}), options) as RestartResult;
}

/** `rollbridge status`: the daemon's view of releases, processes and the proxy. */
export async function status(options: StatusOptions = {}): Promise<StatusResult> {
  return await runJson(toArgs([`status`], {...options}), options) as StatusResult;
}

/** `rollbridge validate`: every config issue at once. An invalid config is a result (`valid: false`), not a throw. */
export async function validate(options: ValidateOptions = {}): Promise<ValidateResult> {
  return await runJson(toArgs([`validate`], {...options}), options, {okExitCodes: [0, 1]}) as ValidateResult;
}

/** `rollbridge legacy-takeover`: the first handover from a legacy supervisor. */
export async function legacyTakeover(options: LegacyTakeoverOptions): Promise<LegacyTakeoverResult> {
  return await runJson(toArgs([`legacy-takeover`], {...options}), options) as LegacyTakeoverResult;
}

/**
 * `rollbridge events --follow --json`: the daemon's events as they happen (after the last `limit`
 * recorded ones). Ends when the daemon stops; stop it earlier with `break` or the AbortSignal.
 */
export async function* events(options: EventsOptions = {}): AsyncGenerator<RollbridgeEvent, void, undefined> {
  for await (const line of runLines(toArgs([`events`, `--follow`], {...options}), options, {stream: false})) yield line as RollbridgeEvent;
}

/** Any other command: `run(["doctor"])` → its `--json` document. */
export async function run(args: string[], options: RunOptions = {}): Promise<Record<string, unknown>> {
  return await runJson(args, options);
}
