// A local runner for composite actions (`runs.using: composite`, `run:` steps only), written from what
// GitHub's runner (actions/runner) does, so the action in integrations/action can be run here exactly
// as a workflow would run it, against the real binary:
// - `${{ }}` in input defaults, `env`, `run`, `working-directory`, `continue-on-error` and output values,
//   and `if:` conditions, are evaluated by GitHub's own expression library (@actions/expressions);
//   an `if:` without a status function means `success() && (…)`; status functions look at the
//   composite's own steps (`github.action_status`), as the runner does for composite main steps;
// - every step runs as a script file in RUNNER_TEMP: `bash --noprofile --norc -e -o pipefail {0}`
//   (`sh -e {0}`, or a custom `cmd … {0}` template), in GITHUB_WORKSPACE unless `working-directory`;
// - fresh GITHUB_OUTPUT / GITHUB_ENV / GITHUB_PATH / GITHUB_STATE / GITHUB_STEP_SUMMARY files per step,
//   parsed afterwards with the runner's rules and error texts (a bad file fails the step);
// - workflow commands on stdout and stderr: `::add-mask::` masks later output (and the summary and
//   annotations), `::error|warning|notice …::` become annotations, `::group::`/`::endgroup::`,
//   `::stop-commands::`, the deprecated `::set-output::` (with its warning), disabled `set-env`/`add-path`;
// - a non-zero exit is the step's failure ("Process completed with exit code N."), `continue-on-error`
//   keeps the action going (outcome failure, conclusion success), outputs are `outputs.<id>.value`.
// Not covered (the action must not need them): `uses:` steps, hashFiles(), cancellation, pre/post.
import {spawn} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {Evaluator, Lexer, Parser, data} from '@actions/expressions';
import type {FunctionDefinition} from '@actions/expressions/funcs/info';
import {truthy} from '@actions/expressions/result';
import YAML from 'yaml';

export type Annotation = {level: `error` | `warning` | `notice`; message: string; properties: Record<string, string>};
export type StepResult = `success` | `failure` | `skipped`;
export type StepRecord = {id: string; name: string; outcome: StepResult; conclusion: StepResult; outputs: Record<string, string>; exitCode: number | null};

export type CompositeRun = {
  status: `success` | `failure`;
  /** The action's `outputs.<id>.value`s, evaluated after the last step. */
  outputs: Record<string, string>;
  steps: StepRecord[];
  /** Every line the runner would show in the job log, after masking (commands consumed, `##[error]…` for annotations). */
  log: string[];
  annotations: Annotation[];
  /** What the steps wrote to GITHUB_STEP_SUMMARY, in order, masked line by line. */
  summary: string;
  /** Variables the steps exported through GITHUB_ENV. */
  env: Record<string, string>;
  /** Directories the steps added through GITHUB_PATH, first = searched first. */
  path: string[];
};

export type CompositeOptions = {
  /** The directory holding action.yml (`uses: ./that/dir`). */
  actionDir: string;
  /** The caller's `with:`. */
  with?: Record<string, string>;
  /** The job's `env:` (the env context and the steps' environment). */
  env?: Record<string, string>;
  /** The runner machine's environment the steps inherit (default: this process's). */
  machineEnv?: Record<string, string | undefined>;
  /** github context values (sha, repository, ref, …); workspace and action_path are filled in. */
  github?: Record<string, string>;
  workspace: string;
  runnerTemp: string;
  /** Kills a step that runs longer (SIGKILL; the step fails). @default 120_000 */
  stepTimeoutMs?: number;
  /** Sees each log line as it happens. */
  onLine?: (line: string) => void;
};

type Step = {id?: string; name?: string; if?: string | boolean; run?: string; shell?: string; env?: Record<string, string>; 'working-directory'?: string; 'continue-on-error'?: string | boolean; uses?: string};
type ActionFile = {name: string; inputs?: Record<string, {default?: string; required?: boolean}>; outputs?: Record<string, {value?: string}>; runs: {using: string; steps: Step[]}};
type Contexts = Record<string, unknown>;

const STATUS_FUNCTIONS = [`success`, `failure`, `always`, `cancelled`];
const CONTEXT_NAMES = [`github`, `inputs`, `steps`, `env`, `runner`, `job`, `strategy`, `matrix`];
const COMMANDS = new Set([`add-mask`, `error`, `warning`, `notice`, `debug`, `group`, `endgroup`, `stop-commands`, `echo`, `set-output`, `save-state`, `set-env`, `add-path`, `add-matcher`, `remove-matcher`]);
const SUMMARY_LIMIT_BYTES = 1024 * 1024;

export function loadCompositeAction(actionDir: string): ActionFile {
  const file = [`action.yml`, `action.yaml`].map((name) => path.join(actionDir, name)).find((candidate) => fs.existsSync(candidate));
  if (!file) throw new Error(`No action.yml or action.yaml in ${actionDir}`);
  const action = YAML.parse(fs.readFileSync(file, `utf8`)) as ActionFile;
  if (action?.runs?.using !== `composite`) throw new Error(`${file}: runs.using must be composite (got ${String(action?.runs?.using)})`);
  for (const [index, step] of (action.runs.steps ?? []).entries()) {
    if (step.uses !== undefined) throw new Error(`${file}: step ${index + 1} is a uses: step, which this runner does not run`);
    if (typeof step.run !== `string`) throw new Error(`${file}: step ${index + 1}: Required property is missing: run`);
    if (typeof step.shell !== `string`) throw new Error(`${file}: step ${index + 1}: Required property is missing: shell`);
  }
  return action;
}

/** Runs the composite action in `actionDir` the way a workflow step `uses: ./<actionDir>` would. */
export async function runCompositeAction(options: CompositeOptions): Promise<CompositeRun> {
  const action = loadCompositeAction(options.actionDir);
  const masker = new SecretMasker();
  const log: string[] = [];
  const annotations: Annotation[] = [];
  const emit = (line: string) => {
    const masked = masker.mask(line);
    log.push(masked);
    options.onLine?.(masked);
  };
  const annotate = (level: Annotation[`level`], message: string, properties: Record<string, string> = {}) => {
    const masked = masker.mask(message);
    annotations.push({level, message: masked, properties});
    emit(`##[${level}]${masked}`);
  };

  const fileCommandDir = path.join(options.runnerTemp, `_runner_file_commands`);
  fs.mkdirSync(fileCommandDir, {recursive: true});
  const github: Record<string, string> = {
    action_path: path.resolve(options.actionDir), workspace: options.workspace, sha: `0000000000000000000000000000000000000000`,
    repository: `example/app`, repository_owner: `example`, ref: `refs/heads/main`, ref_name: `main`, event_name: `push`, run_id: `1`,
    run_number: `1`, run_attempt: `1`, actor: `octocat`, job: `deploy`, server_url: `https://github.com`, api_url: `https://api.github.com`,
    ...options.github,
  };
  const runner = {os: `Linux`, arch: `X64`, name: `local-composite-runner`, temp: options.runnerTemp, tool_cache: path.join(options.runnerTemp, `tool-cache`)};
  const globalEnv: Record<string, string> = {...options.env};
  const exportedEnv: Record<string, string> = {};
  const prependPath: string[] = [];
  const stepsContext: Record<string, {outputs: Record<string, string>; outcome: StepResult; conclusion: StepResult}> = {};
  const steps: StepRecord[] = [];
  const summaries: string[] = [];
  let actionFailed = false;

  // Inputs: the caller's values, else the evaluated defaults; `required` is not enforced (actions/runner#1070).
  const declared = action.inputs ?? {};
  const given = new Map(Object.entries(options.with ?? {}).map(([key, value]) => [key.toLowerCase(), {key, value}]));
  const unexpected = [...given.values()].filter(({key}) => !Object.keys(declared).some((name) => name.toLowerCase() === key.toLowerCase())).map(({key}) => key);
  if (unexpected.length > 0) {
    annotate(`warning`, `Unexpected input(s) '${unexpected.join(`', '`)}', valid inputs are ['${Object.keys(declared).join(`', '`)}']`);
  }
  const inputs: Record<string, string> = {};
  for (const {key, value} of given.values()) inputs[key] = value;
  const defaultContexts = {github, runner, job: {status: `success`}, strategy: {}, matrix: {}, env: globalEnv};
  for (const [name, definition] of Object.entries(declared)) {
    if (given.has(name.toLowerCase())) continue;
    inputs[name] = definition?.default === undefined ? `` : toStringValue(evaluateTemplate(String(definition.default), defaultContexts, statusFunctions(`success`)), `inputs.${name}.default`);
  }

  for (const [index, step] of action.runs.steps.entries()) {
    const id = step.id ?? `__${index}`;
    const name = step.name ?? (step.run ?? ``).split(`\n`)[0] ?? id;
    const record: StepRecord = {id, name, outcome: `success`, conclusion: `success`, outputs: {}, exitCode: null};
    const status = actionFailed ? `failure` : `success`;
    const contexts: Contexts = {
      github: {...github, action_status: status}, runner, job: {status: `success`}, strategy: {}, matrix: {}, inputs,
      steps: Object.fromEntries(Object.entries(stepsContext)), env: {...globalEnv},
    };
    const functions = statusFunctions(status);
    let failed = false;
    try {
      if (!evaluateCondition(step.if, contexts, functions)) {
        record.outcome = record.conclusion = `skipped`;
        stepsContext[id] = {outputs: {}, outcome: `skipped`, conclusion: `skipped`};
        steps.push(record);
        continue;
      }
      const stepEnv: Record<string, string> = {};
      for (const [key, value] of Object.entries(step.env ?? {})) stepEnv[key] = toStringValue(evaluateTemplate(String(value), contexts, functions), `env.${key}`);
      contexts.env = {...globalEnv, ...stepEnv};
      const script = toStringValue(evaluateTemplate(step.run ?? ``, contexts, functions), `run`);
      const workingDirectory = step[`working-directory`] === undefined ? options.workspace : path.resolve(options.workspace, toStringValue(evaluateTemplate(step[`working-directory`], contexts, functions), `working-directory`));
      emit(`##[group]Run ${name}`);
      for (const line of script.replace(/\n$/, ``).split(`\n`)) emit(line);
      emit(`shell: ${step.shell === `bash` ? `/usr/bin/bash --noprofile --norc -e -o pipefail {0}` : step.shell ?? ``}`);
      emit(`##[endgroup]`);

      const files = {output: ``, env: ``, path: ``, state: ``, step_summary: ``};
      const suffix = crypto.randomUUID();
      for (const [key, prefix] of [[`output`, `set_output_`], [`env`, `set_env_`], [`path`, `add_path_`], [`state`, `save_state_`], [`step_summary`, `step_summary_`]] as const) {
        files[key] = path.join(fileCommandDir, `${prefix}${suffix}`);
        fs.writeFileSync(files[key], ``);
      }
      const githubEnv: Record<string, string> = {};
      for (const [key, value] of Object.entries({...github, action_status: status})) githubEnv[`GITHUB_${key.toUpperCase()}`] = value;
      const processEnv: Record<string, string> = {
        ...definedEntries(options.machineEnv ?? process.env), ...githubEnv, CI: `true`, GITHUB_ACTIONS: `true`, GITHUB_ACTION: id,
        GITHUB_OUTPUT: files.output, GITHUB_ENV: files.env, GITHUB_PATH: files.path, GITHUB_STATE: files.state, GITHUB_STEP_SUMMARY: files.step_summary,
        RUNNER_OS: runner.os, RUNNER_ARCH: runner.arch, RUNNER_NAME: runner.name, RUNNER_TEMP: runner.temp, RUNNER_TOOL_CACHE: runner.tool_cache,
        ...globalEnv, ...stepEnv,
      };
      if (prependPath.length > 0) processEnv.PATH = [...prependPath, processEnv.PATH ?? ``].join(`:`);

      const commands = new CommandProcessor(masker, emit, annotate, (key, value) => (record.outputs[key] = value));
      record.exitCode = await runScript({
        shell: step.shell ?? `bash`, script, cwd: workingDirectory, env: processEnv, tempDir: options.runnerTemp,
        timeoutMs: options.stepTimeoutMs ?? 120_000, onLine: (line) => commands.process(line),
      });
      if (commands.failed) failed = true;
      if (record.exitCode !== 0) {
        annotate(`error`, record.exitCode === null ? `The step was killed after ${options.stepTimeoutMs ?? 120_000} ms.` : `Process completed with exit code ${record.exitCode}.`);
        failed = true;
      }

      // File commands, each on its own: a bad one is reported and fails the step, the others still apply.
      const fileCommand = (contextName: string, apply: () => void) => {
        try {
          apply();
        } catch (error) {
          annotate(`error`, `Unable to process file command '${contextName}' successfully.`);
          annotate(`error`, (error as Error).message);
          failed = true;
        }
      };
      fileCommand(`path`, () => {
        for (const line of fs.readFileSync(files.path, `utf8`).split(/\r?\n/)) {
          if (line === ``) continue;
          const existing = prependPath.indexOf(line);
          if (existing >= 0) prependPath.splice(existing, 1);
          prependPath.unshift(line);
        }
      });
      fileCommand(`env`, () => {
        for (const [key, value] of parseKeyValueFile(fs.readFileSync(files.env, `utf8`))) {
          if (key.toUpperCase() === `NODE_OPTIONS`) {
            annotate(`error`, `Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command.`);
            continue;
          }
          globalEnv[key] = value;
          exportedEnv[key] = value;
        }
      });
      fileCommand(`step_summary`, () => {
        const size = fs.statSync(files.step_summary).size;
        if (size === 0) return;
        if (size > SUMMARY_LIMIT_BYTES) {
          annotate(`error`, `$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of ${SUMMARY_LIMIT_BYTES / 1024}k, got ${Math.floor(size / 1024)}k.`);
          return;
        }
        const lines = fs.readFileSync(files.step_summary, `utf8`).split(`\n`);
        if (lines.at(-1) === ``) lines.pop();
        summaries.push(lines.map((line) => `${masker.mask(line.replace(/\r$/, ``))}\n`).join(``));
      });
      fileCommand(`state`, () => void parseKeyValueFile(fs.readFileSync(files.state, `utf8`)));
      fileCommand(`output`, () => {
        for (const [key, value] of parseKeyValueFile(fs.readFileSync(files.output, `utf8`))) record.outputs[key] = value;
      });
      for (const file of Object.values(files)) fs.rmSync(file, {force: true});
    } catch (error) {
      // An expression that does not evaluate fails the step, as in the runner.
      annotate(`error`, (error as Error).message);
      failed = true;
    }
    record.outcome = failed ? `failure` : `success`;
    const continueOnError = step[`continue-on-error`] !== undefined && truthyValue(step[`continue-on-error`], contexts, functions);
    record.conclusion = failed && !continueOnError ? `failure` : `success`;
    if (record.conclusion === `failure`) actionFailed = true;
    stepsContext[id] = {outputs: record.outputs, outcome: record.outcome, conclusion: record.conclusion};
    steps.push(record);
  }

  const outputs: Record<string, string> = {};
  const outputContexts = {github: {...github, action_status: actionFailed ? `failure` : `success`}, runner, job: {status: `success`}, inputs, steps: stepsContext, env: globalEnv, strategy: {}, matrix: {}};
  for (const [name, definition] of Object.entries(action.outputs ?? {})) {
    outputs[name] = definition?.value === undefined ? `` : toStringValue(evaluateTemplate(String(definition.value), outputContexts, statusFunctions(`success`)), `outputs.${name}.value`);
  }
  return {status: actionFailed ? `failure` : `success`, outputs, steps, log, annotations, summary: summaries.join(``), env: exportedEnv, path: [...prependPath]};
}

/** `NAME=value` and `NAME<<DELIMITER` … `DELIMITER` lines, as GITHUB_OUTPUT/ENV/STATE are read (same error texts). */
export function parseKeyValueFile(text: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  let index = 0;
  const readLine = (): {line: string; newline: boolean} | null => {
    if (index >= text.length) return null;
    const lf = text.indexOf(`\n`, index);
    const start = index;
    if (lf < 0) {
      index = text.length;
      return {line: text.slice(start), newline: false};
    }
    index = lf + 1;
    return {line: text.slice(start, lf), newline: true};
  };
  for (let read = readLine(); read !== null; read = readLine()) {
    const line = read.line;
    if (line === ``) continue;
    const equals = line.indexOf(`=`);
    const heredoc = line.indexOf(`<<`);
    if (equals >= 0 && (heredoc < 0 || equals < heredoc)) {
      pairs.push([line.slice(0, equals), line.slice(equals + 1)]);
    } else if (heredoc >= 0 && (equals < 0 || heredoc < equals)) {
      const key = line.slice(0, heredoc);
      const delimiter = line.slice(heredoc + 2);
      if (key === `` || delimiter === ``) throw new Error(`Invalid format '${line}'. Name must not be empty and delimiter must not be empty`);
      const start = index;
      let end = index;
      let next = readLine();
      while (next?.line !== delimiter) {
        if (next === null) throw new Error(`Invalid value. Matching delimiter not found '${delimiter}'`);
        if (!next.newline) throw new Error(`Invalid value. EOF marker missing new line.`);
        end = index - 1;
        next = readLine();
      }
      pairs.push([key, end > start ? text.slice(start, end) : ``]);
    } else {
      throw new Error(`Invalid format '${line}'`);
    }
  }
  return pairs;
}

/** Evaluates a scalar with `${{ }}` in it: one whole expression keeps its type, anything else is a string. */
export function evaluateTemplate(text: string, contexts: Contexts, functions: FunctionDefinition[] = []): data.ExpressionData {
  const parts: Array<{literal: string} | {expression: string}> = [];
  let position = 0;
  while (position < text.length) {
    const open = text.indexOf(`\${{`, position);
    if (open < 0) {
      parts.push({literal: text.slice(position)});
      break;
    }
    if (open > position) parts.push({literal: text.slice(position, open)});
    const close = findExpressionEnd(text, open + 3);
    if (close < 0) throw new Error(`The expression is not closed. An unescaped \${{ sequence was found, but the closing }} sequence was not found.`);
    parts.push({expression: text.slice(open + 3, close).trim()});
    position = close + 2;
  }
  const only = parts[0];
  if (parts.length === 1 && only && `expression` in only) return evaluateExpression(only.expression, contexts, functions);
  return new data.StringData(parts.map((part) => (`literal` in part ? part.literal : toStringValue(evaluateExpression(part.expression, contexts, functions), part.expression, true))).join(``));
}

export function evaluateExpression(source: string, contexts: Contexts, functions: FunctionDefinition[] = []): data.ExpressionData {
  const tokens = new Lexer(source).lex().tokens;
  const expression = new Parser(tokens, CONTEXT_NAMES, functions).parse();
  const context = JSON.parse(JSON.stringify(contexts), data.reviver) as data.Dictionary;
  return new Evaluator(expression, context, new Map(functions.map((definition) => [definition.name.toLowerCase(), definition]))).evaluate();
}

/** A step's `if:`: `${{ }}` optional; without a status function it means `success() && (…)`. */
export function evaluateCondition(condition: string | boolean | undefined, contexts: Contexts, functions: FunctionDefinition[]): boolean {
  if (condition === undefined || condition === ``) return truthy(evaluateExpression(`success()`, contexts, functions));
  let source = String(condition).trim();
  if (source.startsWith(`\${{`) && source.endsWith(`}}`) && findExpressionEnd(source, 3) === source.length - 2) source = source.slice(3, -2).trim();
  const tokens = new Lexer(source).lex().tokens;
  const callsStatus = tokens.some((token, index) => STATUS_FUNCTIONS.includes(token.lexeme.toLowerCase()) && tokens[index + 1]?.lexeme === `(`);
  return truthy(evaluateExpression(callsStatus ? source : `success() && (${source})`, contexts, functions));
}

function truthyValue(value: string | boolean, contexts: Contexts, functions: FunctionDefinition[]): boolean {
  if (typeof value === `boolean`) return value;
  return truthy(evaluateTemplate(value, contexts, functions));
}

// The `}}` that ends an expression, skipping string literals ('it''s' escapes a quote).
function findExpressionEnd(text: string, from: number): number {
  let inString = false;
  for (let index = from; index < text.length; index++) {
    const char = text[index];
    if (inString) {
      if (char === `'`) {
        if (text[index + 1] === `'`) index++;
        else inString = false;
      }
    } else if (char === `'`) {
      inString = true;
    } else if (char === `}` && text[index + 1] === `}`) {
      return index;
    }
  }
  return -1;
}

function toStringValue(value: data.ExpressionData, where: string, embedded = false): string {
  if (!embedded && value.kind === data.Kind.Dictionary) throw new Error(`${where}: A mapping was not expected`);
  if (!embedded && value.kind === data.Kind.Array) throw new Error(`${where}: A sequence was not expected`);
  return value.coerceString();
}

function statusFunctions(actionStatus: `success` | `failure`): FunctionDefinition[] {
  const fn = (name: string, result: boolean): FunctionDefinition => ({name, minArgs: 0, maxArgs: 0, call: () => new data.BooleanData(result)});
  return [fn(`success`, actionStatus === `success`), fn(`failure`, actionStatus === `failure`), fn(`always`, true), fn(`cancelled`, false)];
}

function definedEntries(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** Replaces registered secrets (and their JSON-, URI- and base64-encoded forms) with `***`. */
class SecretMasker {
  #values = new Set<string>();

  add(value: string): void {
    for (const variant of [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value), Buffer.from(value).toString(`base64`)]) {
      if (variant !== ``) this.#values.add(variant);
    }
  }

  mask(line: string): string {
    let masked = line;
    for (const value of [...this.#values].sort((a, b) => b.length - a.length)) masked = masked.split(value).join(`***`);
    return masked;
  }
}

/** Workflow commands (`::name key=value,…::data`) in a step's output, as the runner's ActionCommandManager reads them. */
class CommandProcessor {
  failed = false;
  #stopToken: string | null = null;
  #masker: SecretMasker;
  #emit: (line: string) => void;
  #annotate: (level: Annotation[`level`], message: string, properties?: Record<string, string>) => void;
  #setOutput: (key: string, value: string) => void;

  constructor(masker: SecretMasker, emit: (line: string) => void, annotate: (level: Annotation[`level`], message: string, properties?: Record<string, string>) => void, setOutput: (key: string, value: string) => void) {
    this.#masker = masker;
    this.#emit = emit;
    this.#annotate = annotate;
    this.#setOutput = setOutput;
  }

  process(line: string): void {
    const command = parseCommand(line, this.#stopToken);
    if (!command) return this.#emit(line);
    if (this.#stopToken !== null) {
      if (command.name !== this.#stopToken) return this.#emit(line);
      this.#stopToken = null;
      return this.#emit(line);
    }
    switch (command.name) {
      case `add-mask`:
        if (command.data.trim() === ``) return this.#annotate(`warning`, `Can't add secret mask for empty string in ##[add-mask] command.`);
        this.#masker.add(command.data);
        for (const part of command.data.split(/[\r\n]+/).map((item) => item.trim()).filter(Boolean)) this.#masker.add(part);
        return;
      case `error`:
      case `warning`:
      case `notice`:
        return this.#annotate(command.name, command.data, command.properties);
      case `group`:
        return this.#emit(`##[group]${command.data}`);
      case `endgroup`:
        return this.#emit(`##[endgroup]`);
      case `debug`:
        return;
      case `stop-commands`:
        if (command.data === `` || COMMANDS.has(command.data) || command.data.toLowerCase() === `pause-logging`) {
          this.#annotate(`error`, `Unable to process command '${line}' successfully.`);
          this.failed = true;
          return;
        }
        this.#stopToken = command.data;
        if (command.data.length > 6) this.#masker.add(command.data);
        return this.#emit(line);
      case `set-output`:
        this.#annotate(`warning`, `The \`set-output\` command is deprecated and will be disabled soon. Please upgrade to using Environment Files.`);
        if (!command.properties.name) {
          this.#annotate(`error`, `Unable to process command '${line}' successfully.`);
          this.failed = true;
          return;
        }
        return this.#setOutput(command.properties.name, command.data);
      case `set-env`:
      case `add-path`:
        this.#annotate(`error`, `Unable to process command '${line}' successfully.`);
        this.#annotate(`error`, `The \`${command.name}\` command is disabled. Please upgrade to using Environment Files or opt into unsecure command execution by setting the \`ACTIONS_ALLOW_UNSECURE_COMMANDS\` environment variable to \`true\`.`);
        this.failed = true;
        return;
      default:
        return;
    }
  }
}

function parseCommand(line: string, stopToken: string | null): {name: string; properties: Record<string, string>; data: string} | null {
  const message = line.trimStart();
  if (!message.startsWith(`::`)) return null;
  const end = message.indexOf(`::`, 2);
  if (end < 0) return null;
  const info = message.slice(2, end);
  const space = info.indexOf(` `);
  const name = space < 0 ? info : info.slice(0, space);
  if (!COMMANDS.has(name) && name !== stopToken) return null;
  const properties: Record<string, string> = {};
  if (space > 0) {
    for (const pair of info.slice(space + 1).trim().split(`,`).filter(Boolean)) {
      const equals = pair.indexOf(`=`);
      if (equals <= 0 || equals === pair.length - 1) continue;
      properties[pair.slice(0, equals)] = unescape(pair.slice(equals + 1), true);
    }
  }
  return {name, properties, data: unescape(message.slice(end + 2), false)};
}

function unescape(value: string, property: boolean): string {
  let result = value.replaceAll(`%0D`, `\r`).replaceAll(`%0A`, `\n`);
  if (property) result = result.replaceAll(`%3A`, `:`).replaceAll(`%2C`, `,`);
  return result.replaceAll(`%25`, `%`);
}

/** One step's script, run like the runner runs it; resolves with its exit code (null when killed at the timeout). */
function runScript(options: {shell: string; script: string; cwd: string; env: Record<string, string>; tempDir: string; timeoutMs: number; onLine: (line: string) => void}): Promise<number | null> {
  const extension = options.shell === `bash` || options.shell === `sh` ? `.sh` : ``;
  const scriptPath = path.join(options.tempDir, `${crypto.randomUUID()}${extension}`);
  fs.writeFileSync(scriptPath, options.script);
  const template = options.shell === `bash` ? `bash --noprofile --norc -e -o pipefail {0}` : options.shell === `sh` ? `sh -e {0}` : options.shell;
  if (!template.includes(`{0}`)) throw new Error(`Invalid shell option. Shell path must contain {0}: ${options.shell}`);
  const [command = ``, ...args] = template.split(/\s+/).map((part) => part.replace(`{0}`, scriptPath));
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {cwd: options.cwd, env: options.env, stdio: [`ignore`, `pipe`, `pipe`]});
    const timer = setTimeout(() => child.kill(`SIGKILL`), options.timeoutMs);
    let pending = 2;
    const lines = (stream: NodeJS.ReadableStream) => {
      let partial = ``;
      stream.setEncoding(`utf8`);
      stream.on(`data`, (chunk: string) => {
        partial += chunk;
        const parts = partial.split(/\r?\n/);
        partial = parts.pop() ?? ``;
        for (const part of parts) options.onLine(part);
      });
      stream.on(`end`, () => {
        if (partial !== ``) options.onLine(partial);
        if (--pending === 0) finish();
      });
    };
    let exitCode: number | null | undefined;
    const finish = () => {
      if (pending > 0 || exitCode === undefined) return;
      clearTimeout(timer);
      fs.rmSync(scriptPath, {force: true});
      resolve(exitCode);
    };
    lines(child.stdout);
    lines(child.stderr);
    child.on(`error`, (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on(`close`, (code, signal) => {
      exitCode = signal ? null : code;
      finish();
    });
  });
}
