import {Command, Option, UsageError} from 'clipanion';
import {ControlClient} from '../control/client.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError, isRollbridgeError} from '../errors/rollbridge-error.ts';
import {loadConfig} from '../config/load.ts';
import {listLegacyControlPaths} from '../config/paths.ts';
import type {Config} from '../config/types.ts';
import {Logger} from '../log/logger.ts';
import type {LogRecord} from '../log/logger.ts';
import type {CliContext} from './context.ts';
import {ExitCode, renderError, writeJson, writeJsonLine} from './render.ts';
import {parseDurationMs} from './options.ts';
import {explainConnectError} from './socket-access.ts';

/**
 * Shared flags (--config, --json) and helpers. Commands implement `run()`; errors are rendered once
 * here (human text on stderr, `{"error":{…}}` with --json, `{"type":"error",…}` with --stream) and
 * turned into exit codes 0/1/2. `ROLLBRIDGE_OUTPUT=json` turns --json on for every command.
 */
export abstract class BaseCommand extends Command<CliContext> {
  configPath = Option.String(`-c,--config`, {description: `Path of the config file (default: rollbridge.js, then rollbridge.json, in the current directory)`});
  json = Option.Boolean(`--json`, false, {description: `Print one JSON document on stdout (errors as {"error":{code,message,fix}}); also ROLLBRIDGE_OUTPUT=json`});

  abstract run(): Promise<number | void>;

  /** NDJSON progress then the result (`--stream`); only the commands with phases have the flag. */
  get streaming(): boolean {
    return false;
  }

  async execute(): Promise<number> {
    try {
      this.#applyOutputMode();
      const code = await this.run();
      return code ?? ExitCode.OK;
    } catch (error) {
      this.endProgress();
      return renderError(explainConnectError(error), {json: this.json, stream: this.streaming, stdout: this.context.stdout, stderr: this.context.stderr});
    }
  }

  #applyOutputMode(): void {
    if (this.context.output === `json` || this.streaming) this.json = true;
    if (this.context.output === null) {
      throw new RollbridgeError(ErrorCode.USAGE, `ROLLBRIDGE_OUTPUT must be json, human or auto (got ${JSON.stringify(this.context.env.ROLLBRIDGE_OUTPUT ?? ``)})`, {
        fix: `Set ROLLBRIDGE_OUTPUT=json (JSON even on a terminal) or ROLLBRIDGE_OUTPUT=human (text even when piped), or unset it`,
      });
    }
  }

  /** Human text: never with --json (or ROLLBRIDGE_OUTPUT=json); on a terminal, or anywhere with ROLLBRIDGE_OUTPUT=human. */
  get human(): boolean {
    return !this.json && (this.context.output === `human` || Boolean((this.context.stdout as {isTTY?: boolean}).isTTY));
  }

  /**
   * The success result as JSON: one document `{"status":"success",…}`, or with --stream the last NDJSON
   * line `{"type":"result","status":"success",…}`.
   */
  writeSuccess(result: object): void {
    if (this.streaming) writeJsonLine(this.context.stdout, {type: `result`, status: `success`, ...result});
    else this.writeJson({status: `success`, ...result});
  }

  /**
   * Loads the config, printing its warnings (not with --json). `notices: true` (deploy, daemon) also
   * prints, in one line, the keys of a later rollbridge 0.1.x it ignores; other commands stay quiet about them.
   */
  async loadConfig(options: {notices?: boolean} = {}): Promise<Config> {
    const {config, warnings, notices} = await loadConfig({cwd: this.context.cwd, configPath: this.configPath});
    if (!this.json) {
      for (const warning of warnings) this.context.stderr.write(`warning: ${warning.message}\n  fix: ${warning.fix}\n`);
      if (options.notices && notices.length > 0) {
        this.context.stderr.write(`notice: ${config.configPath} holds ${notices.length === 1 ? `a key` : `keys`} of a later rollbridge 0.1.x, accepted and ignored: ${notices.map((notice) => notice.path).join(`, `)} (rollbridge validate explains each)\n`);
      }
    }
    return config;
  }

  /**
   * The daemon on control.path. With control.path left to its default and no daemon there, a rollbridge
   * 0.1 daemon on 0.1's default socket is used instead (with a notice): its commands still work until
   * the upgrade (`deploy --ensure-daemon`).
   */
  async connect(config: Config): Promise<ControlClient> {
    try {
      return await ControlClient.connect(config.control.path);
    } catch (error) {
      const fallback = listLegacyControlPaths(config.application, config.control.path)[1];
      if (fallback === undefined || !isRollbridgeError(error) || error.code !== ErrorCode.DAEMON_UNREACHABLE) throw error;
      let client: ControlClient;
      try {
        client = await ControlClient.connect(fallback);
      } catch {
        throw error;
      }
      this.context.stderr.write(`notice: no daemon on ${config.control.path}; using the rollbridge 0.1 daemon on ${fallback} (run "rollbridge deploy --ensure-daemon" to upgrade it)\n`);
      return client;
    }
  }

  /** Ends live progress output (a wait line with a running counter) before a result or an error is printed. */
  endProgress(): void {}

  writeJson(value: unknown): void {
    writeJson(this.context.stdout, value);
  }

  /** Warnings and errors of in-process work (recover, legacy stop) as `warning: <msg> {fields}` on stderr; silent with --json. */
  stderrLogger(): Logger {
    const sink = (record: LogRecord) => {
      if (this.json) return;
      const {time: _time, level, msg, ...fields} = record;
      this.context.stderr.write(`${level === `warn` ? `warning` : level}: ${msg} ${JSON.stringify(fields)}\n`);
    };
    return new Logger({level: `warn`, sinks: [sink]});
  }

  writeLine(text = ``): void {
    this.context.stdout.write(`${text}\n`);
  }

  parseDuration(flag: string, value: string | undefined): number | undefined {
    if (value === undefined) return undefined;
    const ms = parseDurationMs(value);
    if (ms === null) throw new UsageError(`Invalid value for ${flag}: expected a duration such as 500ms, 10s or 2m (got "${value}")`);
    return ms;
  }
}
