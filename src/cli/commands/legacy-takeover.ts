import path from 'node:path';
import {Command, Option} from 'clipanion';
import type {Config} from '../../config/types.ts';
import {ErrorCode} from '../../errors/codes.ts';
import {RollbridgeError} from '../../errors/rollbridge-error.ts';
import {discoverLegacyProcesses, listRunningProcesses} from '../../takeover/discover.ts';
import type {LegacyPlan} from '../../takeover/discover.ts';
import {resolveLegacyUser} from '../../takeover/legacy-user.ts';
import {findPortHolders} from '../../takeover/ports.ts';
import type {PortHolder} from '../../takeover/ports.ts';
import {StreamingCommand} from '../streaming-command.ts';
import {ensureDaemon, parseStartTimeout} from '../daemon-launcher.ts';
import {isReleaseId} from '../options.ts';
import {formatDuration, formatTable} from '../render.ts';
import {formatPhase} from './deploy.ts';

/** What `--dry-run` prints (and `--json` carries next to the result). */
export type TakeoverPlanView = {
  releasePath: string;
  releaseId: string | null;
  revision: string | null;
  proxy: {
    host: string;
    port: number;
    /** Processes listening on the proxy port right now. */
    listeners: PortHolder[];
    /** True when a legacy process holds the port: the daemon binds it once the legacy processes are stopped. */
    heldByLegacy: boolean;
  };
  forceStopTimeoutMs: number;
  legacy: LegacyPlan;
};

export class LegacyTakeoverCommand extends StreamingCommand {
  static paths = [[`legacy-takeover`]];

  static usage = Command.Usage({
    description: `Hand over from GNU Screen sessions or hand-started processes to rollbridge, with the shortest possible port gap`,
    details: `
      Discovers the legacy processes \`legacyTakeover\` describes: the configured screen sessions (listed with
      \`screen -ls\` as \`legacyTakeover.user\`), every process carrying their \`STY\` variable (setsid and nohup
      escapees included), processes whose command line holds every string of a \`legacyTakeover.processes\`
      matcher, and all their descendants; only that user's processes, never this command or its parents.

      Then starts a daemon that does not bind the proxy port yet, starts the release on its internal port and
      health-checks it while the legacy app still serves, stops the legacy processes (screen quit, SIGTERM,
      SIGKILL after \`legacyTakeover.forceStopTimeoutMs\`), binds the proxy port and switches. The time in
      which the port refused connections is reported as the port gap.

      With \`--dry-run\`, prints the plan (sessions, processes with pid, source and command line, the release,
      the proxy port and who holds it) and changes nothing.

      Human text on a terminal; JSON with \`--json\`, \`ROLLBRIDGE_OUTPUT=json\` or when stdout is not a terminal:
      \`{status, changed, activeReleaseId, portGapMs, legacy, durationMs, phases, plan}\` (\`{status, changed:
      false, dryRun: true, plan}\` for a dry run). \`--stream\` prints one NDJSON line per phase (\`started\`,
      \`healthy\`, \`legacy-stopping\`, \`proxy-listening\`, \`legacy-stopped\`, \`switched\`…), then the result line.
    `,
    examples: [
      [`Show what would be stopped and started`, `$0 legacy-takeover --release-path /srv/app/releases/42 --dry-run`],
      [`Take over, with an explicit release id and revision`, `$0 legacy-takeover --release-path /srv/app/releases/42 --release-id 42 --revision 3f2a9c1`],
      [`Take over, streaming each phase as NDJSON`, `$0 legacy-takeover --release-path /srv/app/releases/42 --json --stream`],
    ],
  });

  releasePath = Option.String(`--release-path`, {required: true, description: `Directory of the prepared release (made absolute against the current directory)`});
  releaseId = Option.String(`--release-id`, {validator: isReleaseId, description: `Release id (default: --revision, else the UTC time as 17 digits)`});
  revision = Option.String(`--revision`, {description: `Revision recorded with the release (default: the release id)`});
  dryRun = Option.Boolean(`--dry-run`, false, {description: `Print the plan (legacy sessions and processes, release, proxy port) and change nothing`});
  daemonLogPath = Option.String(`--daemon-log-path`, {description: `Where the started daemon's output is appended`});
  daemonPidPath = Option.String(`--daemon-pid-path`, {description: `Where the started daemon's pid is written`});
  daemonStartTimeoutMs = Option.String(`--daemon-start-timeout-ms`, {description: `How long to wait for the daemon, in ms`});

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const legacy = config.legacyTakeover;
    if (legacy === undefined) {
      throw new RollbridgeError(ErrorCode.LEGACY_NOT_CONFIGURED, `The config ${config.configPath} has no legacyTakeover block, so there is nothing to take over`, {
        fix: `Add legacyTakeover.screens (screen session names) or legacyTakeover.processes ([{includes: ["..."]}]) to the config, or use "rollbridge deploy"`,
        details: {configPath: config.configPath},
      });
    }
    const user = resolveLegacyUser(legacy.user);
    const plan = await discoverLegacyProcesses({screens: legacy.screens, matchers: legacy.processes, uid: user.uid, user: user.name});
    const view = this.#planView(config, plan, legacy.forceStopTimeoutMs);
    // As every command decides: text on a terminal (or ROLLBRIDGE_OUTPUT=human), JSON otherwise.
    const human = this.human;

    if (this.dryRun) {
      if (human) this.writeLine(formatTakeoverPlan(view));
      else this.writeSuccess({changed: false, dryRun: true, plan: view});
      return 0;
    }
    if (human) this.writeLine(formatTakeoverPlan(view, {header: `Taking over:`}));

    // Each wait (the daemon's start, then the takeover's health check) as a line; on a terminal with a live elapsed time.
    const onProgress = this.progressListener(formatPhase);
    await ensureDaemon(config, this.context, {
      logPath: this.daemonLogPath,
      pidPath: this.daemonPidPath,
      startTimeoutMs: parseStartTimeout(this.daemonStartTimeoutMs),
      daemonArgs: [`--proxy-deferred`],
      onProgress,
    });
    const client = await this.connect(config);
    try {
      const result = await client.call(`takeover`, {
        releasePath: view.releasePath,
        ...(this.releaseId !== undefined ? {releaseId: this.releaseId} : {}),
        ...(this.revision !== undefined ? {revision: this.revision} : {}),
        legacy: plan,
        forceStopTimeoutMs: legacy.forceStopTimeoutMs,
      }, {
        onProgress,
      });
      if (human) {
        this.writeLine(`✓ release ${result.activeReleaseId} is active; legacy processes: ${result.legacy.stopped} stopped, ${result.legacy.killed} killed; port gap ${result.portGapMs} ms; took ${formatDuration(result.durationMs)}`);
      } else {
        this.writeSuccess({changed: true, ...result, plan: view});
      }
    } finally {
      client.close();
    }
    return 0;
  }

  #planView(config: Config, plan: LegacyPlan, forceStopTimeoutMs: number): TakeoverPlanView {
    const legacyPids = new Set(listRunningProcesses(plan).map((entry) => entry.pid));
    const listeners = config.proxy.port === 0 ? [] : findPortHolders(config.proxy.port, legacyPids);
    return {
      releasePath: path.resolve(this.context.cwd, this.releasePath),
      releaseId: this.releaseId ?? null,
      revision: this.revision ?? null,
      proxy: {host: config.proxy.host, port: config.proxy.port, listeners, heldByLegacy: listeners.some((holder) => holder.legacy)},
      forceStopTimeoutMs,
      legacy: plan,
    };
  }
}

export function formatTakeoverPlan(view: TakeoverPlanView, options: {header?: string} = {}): string {
  const {legacy, proxy} = view;
  const lines = [options.header ?? `Legacy takeover plan; nothing was changed:`];
  lines.push(`  user     ${legacy.user.name} (uid ${legacy.user.uid})`);
  for (const session of legacy.screens) lines.push(`  screen   ${session.id} (${session.state})`);
  if (legacy.processes.length === 0) {
    lines.push(`  no legacy processes found`);
  } else {
    const table = formatTable([`PID`, `SOURCE`, `COMMAND`], legacy.processes.map((entry) => [
      String(entry.pid),
      entry.state === `Z` ? `${entry.source} (zombie)` : entry.source,
      entry.args,
    ]));
    lines.push(...table.split(`\n`).map((line) => `    ${line}`));
  }
  lines.push(`  start    release ${view.releaseId ?? `(new id)`} from ${view.releasePath}, health-checked while the legacy app serves`);
  lines.push(`  stop     the legacy processes (SIGTERM, SIGKILL after ${view.forceStopTimeoutMs} ms)`);
  lines.push(`  bind     ${proxy.host}:${proxy.port} (${describeListeners(proxy.listeners)}) and switch traffic`);
  for (const warning of legacy.warnings) lines.push(`warning: ${warning}`);
  for (const holder of proxy.listeners) {
    if (!holder.legacy) lines.push(`warning: pid ${holder.pid} (${holder.args}) listens on port ${proxy.port} but is not a legacy process; the takeover cannot bind the port while it runs`);
  }
  return lines.join(`\n`);
}

function describeListeners(listeners: PortHolder[]): string {
  if (listeners.length === 0) return `free now`;
  return `now held by ${listeners.map((holder) => `${holder.legacy ? `legacy ` : ``}pid ${holder.pid}`).join(`, `)}`;
}
