import {Command, Option} from 'clipanion';
import * as t from 'typanion';
import {ErrorCode} from '../../errors/codes.ts';
import {RollbridgeError} from '../../errors/rollbridge-error.ts';
import type {RestartPlanView} from '../../control/protocol.ts';
import {formatDuration} from '../render.ts';
import {StreamingCommand} from '../streaming-command.ts';
import {formatPhase} from './deploy.ts';

export class RestartCommand extends StreamingCommand {
  static paths = [[`restart`]];

  /** `--process a --process b` restarts both (checked by runCli: other value flags may be given once). */
  static repeatableOptions = [`--process`];

  static usage = Command.Usage({
    description: `Restart processes one after the other; the web process without downtime`,
    details: `
      Without selectors restarts every companion, singleton and service of the active release; \`--process\`
      takes a base id (all replicas) or one instance (\`worker#1\`) and may be repeated to restart several
      (an id that matches nothing fails before anything restarts); \`--policy\` restricts to one policy.
      NAMES are substrings of instance ids: the union of their matches is restarted, and a name that
      matches nothing fails before anything restarts (typo safety). \`--cooldown\` pauses between
      processes; \`--check-url\` must answer 2xx (within \`--check-timeout\`, 10 s by default) after the
      last one, or the command fails.
      Stopped or failed processes are revived. Naming the proxied web process (\`--process web\` or
      \`--policy proxied\`) replaces it without downtime: a new process on a fresh port, health-checked,
      then traffic moves to it and the old one drains and stops. With replicas, the next replica's
      replacement starts while the previous old one drains (the drains overlap; a healthy new replica
      always takes an old one's place first, so the serving count never drops); the command returns once
      every old replica has stopped. \`--all\` restarts every process, the web one included: a rolling
      restart.

      Processes restart in \`dependsOn\` order (services, companions, the web process, singletons), each
      waiting for its readiness check (the web process: its health check) before the next, and the
      first failure stops the restart (the error lists what was and was not restarted).
      \`--skip-health-check\` skips those waits (emergencies only; logged). \`--before-switch\` runs
      \`hooks.beforeSwitch\` (e.g. migrations) against the active release first; if it fails nothing
      restarts. \`--dry-run\` prints the plan and restarts nothing.

      On a terminal each step is a line as it happens: \`restarting\` a process, \`started\`, each wait as it
      starts (its readiness check, the web process's health check, its drain, a cooldown) with a live
      elapsed time, \`ready\`/\`healthy\`, \`replaced\` and \`drained\` for the web process, then \`restarted\`; and
      the wait for \`--check-url\`.
      JSON: \`{status, changed, restarted: [ids], check?}\` (\`changed\` is false when nothing matched or with
      \`--dry-run\`, which prints \`{status, changed: false, plan}\`); \`--stream\` prints those steps as NDJSON
      lines (\`"phase": "restarting"\`, …, \`"waiting"\`, …, \`"restarted"\` with the process's whole restart
      time), then the result.
    `,
    examples: [
      [`Restart every non-proxied process`, `$0 restart`],
      [`Restart one process (all its replicas)`, `$0 restart --process worker`],
      [`Restart two processes`, `$0 restart --process worker --process cron`],
      [`Restart only the services`, `$0 restart --policy service`],
      [`Replace the web process without dropping a request`, `$0 restart --process web`],
      [`Every process whose id contains "worker" or "cron", 5 s apart, then check the site`, `$0 restart worker cron --cooldown 5s --check-url http://127.0.0.1:8182/ping`],
      [`Rolling restart of every process after the migrations in hooks.beforeSwitch`, `$0 restart --all --before-switch`],
      [`What a rolling restart would do, changing nothing`, `$0 restart --all --dry-run`],
      [`Stream each restarted process as NDJSON`, `$0 restart --json --stream`],
    ],
  });

  processIds = Option.Array(`--process`, [], {description: `Base id or instance id (id#n) to restart; repeat it for several`});
  policy = Option.String(`--policy`, {validator: t.isEnum([`companion`, `singleton`, `service`, `proxied`]), description: `Only processes with this policy: companion, singleton, service or proxied`});
  wait = Option.Boolean(`--wait`, true, {description: `Queue behind a running deploy (--no-wait fails at once)`});
  cooldown = Option.String(`--cooldown`, {description: `Pause between restarted processes, e.g. 5s`});
  checkUrl = Option.String(`--check-url`, {description: `URL that must answer 2xx after the restarts (end-to-end check)`});
  checkTimeout = Option.String(`--check-timeout`, {description: `How long --check-url may take to answer 2xx (default 10s)`});
  all = Option.Boolean(`--all`, false, {description: `Every process, the proxied web process included (replaced without downtime)`});
  skipHealthCheck = Option.Boolean(`--skip-health-check`, false, {description: `Do not wait for readiness and health checks after each restart, only for a replaced web process's port to accept connections (emergencies only; logged)`});
  beforeSwitch = Option.Boolean(`--before-switch`, false, {description: `Run hooks.beforeSwitch (e.g. migrations) against the active release first; its failure restarts nothing`});
  dryRun = Option.Boolean(`--dry-run`, false, {description: `Print the plan (which processes, in which order, how each is checked) and restart nothing`});
  names = Option.Rest({name: `names`});

  async run(): Promise<number> {
    const cooldownMs = this.parseDuration(`--cooldown`, this.cooldown);
    const checkTimeoutMs = this.parseDuration(`--check-timeout`, this.checkTimeout) ?? 10_000;
    const config = await this.loadConfig();
    const client = await this.connect(config);
    try {
      const result = await client.call(`restart`, {
        ...(this.names.length > 0 ? {names: this.names} : {}),
        ...(cooldownMs !== undefined ? {cooldownMs} : {}),
        // One id travels as processId, which every daemon (0.1 included) understands.
        ...(this.processIds.length === 1 ? {processId: this.processIds[0]} : this.processIds.length > 1 ? {processIds: this.processIds} : {}),
        ...(this.policy !== undefined ? {policy: this.policy as `companion` | `singleton` | `service` | `proxied`} : {}),
        wait: this.wait,
        ...(this.all ? {all: true} : {}),
        ...(this.skipHealthCheck ? {skipHealthCheck: true} : {}),
        ...(this.beforeSwitch ? {beforeSwitch: true} : {}),
        ...(this.dryRun ? {dryRun: true} : {}),
      }, {onProgress: this.progressListener(formatPhase)});
      if (result.plan) {
        if (this.human) this.writeLine(formatRestartPlan(result.plan));
        else this.writeSuccess({changed: false, ...result});
        return 0;
      }
      if (this.checkUrl !== undefined) this.showWait(`  waiting for ${this.checkUrl} to answer 2xx (timeout ${formatDuration(checkTimeoutMs)})`);
      const check = this.checkUrl === undefined ? undefined : await checkUrl(this.checkUrl, checkTimeoutMs);
      if (this.human) {
        this.writeLine(result.restarted.length > 0 ? `Restarted ${result.restarted.join(`, `)}` : `Nothing to restart`);
        if (check) this.writeLine(`${this.checkUrl} answered HTTP ${check.status}`);
      } else {
        this.writeSuccess({changed: result.restarted.length > 0, ...result, ...(check ? {check} : {})});
      }
    } finally {
      client.close();
    }
    return 0;
  }
}

export function formatRestartPlan(plan: RestartPlanView): string {
  const lines = [`Restart plan; nothing was changed:`];
  if (plan.hooks.beforeSwitch) lines.push(`  run      hooks.beforeSwitch: ${plan.hooks.beforeSwitch}`);
  for (const [index, process] of plan.processes.entries()) {
    if (index > 0 && plan.cooldownMs > 0) lines.push(`  wait     ${plan.cooldownMs} ms`);
    const how = process.how === `replace` ? `replace` : `restart`;
    lines.push(`  ${how.padEnd(8)} ${process.id} (${process.policy}, pid ${process.pid ?? `-`})${process.check ? `, then its ${process.check} check` : ``}`);
  }
  if (plan.processes.length === 0) lines.push(`  (no process matches)`);
  return lines.join(`\n`);
}

/** The end-to-end check after a restart: 2xx within `timeoutMs` (probes every 250 ms, 2 s each at most). */
async function checkUrl(url: string, timeoutMs: number): Promise<{url: string; status: number}> {
  const deadline = Date.now() + timeoutMs;
  let last = `no attempt`;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, {redirect: `manual`, signal: AbortSignal.timeout(Math.max(1, Math.min(2_000, deadline - Date.now())))});
      await response.body?.cancel();
      if (response.status >= 200 && response.status < 300) return {url, status: response.status};
      last = `HTTP ${response.status}`;
    } catch (error) {
      // A probe cut short by the overall deadline says less than the failure before it.
      const cutShort = (error as Error).name === `TimeoutError` && deadline - Date.now() < 2_000 && last !== `no attempt`;
      if (!cutShort) last = (error as {cause?: {code?: string}}).cause?.code ?? (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(250, deadline - Date.now()))));
  }
  throw new RollbridgeError(ErrorCode.HEALTH_CHECK_FAILED, `--check-url ${url} did not answer 2xx within ${timeoutMs} ms after the restart: ${last}`, {
    fix: `Check the restarted processes with "rollbridge status" and "rollbridge logs" (the restart itself has happened), or raise --check-timeout`,
    details: {url, last},
  });
}
