import {Command, Option} from 'clipanion';
import type {ProcessStatusView, StatusResult, TrafficStatusView} from '../../control/protocol.ts';
import {BaseCommand} from '../base-command.ts';
import {formatDuration, formatTable, plural, terminalSafe} from '../render.ts';
import {describeSocketChoice, formatSocketChoice} from '../socket-access.ts';


export class StatusCommand extends BaseCommand {
  static paths = [[`status`]];

  static usage = Command.Usage({
    description: `Show the daemon's state: releases, processes, services, singletons, proxy`,
    details: `
      A table on a terminal: the processes of the starting, active and draining releases, the services
      and the singletons, each with its state (\`running (adopted)\` for a process re-adopted from a
      previous daemon; \`liveness 2/3 failed\` while its liveness checks fail; \`not ready\` for a
      \`health.type: notify\` process that has not sent READY=1), pid, port, uptime, restarts
      (after crashes, then the replacements for the memory limit and for failed liveness checks:
      \`3 (1 memory, 2 liveness)\`),
      RSS and CPU of its process group. Under the table: why a liveness check fails, and what a notify
      process last said (its STATUS= text). \`--all\` adds the stopped and failed retained releases. CPU is
      measured since the previous \`status\` call (at least 0.5 s before), else averaged since the
      process started, so \`watch rollbridge status\` shows the current load.

      The full status document as JSON with \`--json\` or when stdout is not a terminal (the rollbridge
      0.1 shape: activeReleaseId, application, control, proxy, releases, services, singletons, plus
      daemon and daemonRuntime), every retained release included, each running process with
      \`rssBytes\`, \`cpuPercent\` and \`cpuWindowMs\`. \`control\` also says which socket this user
      resolved to: \`source\` is \`config\` (control.path, the same for every user) or \`runtime\` (this
      user's own \`runtimeDir\`, \`$TMPDIR/rollbridge-<uid>\`: \`sudo\` and a plain user reach different
      daemons), with \`uid\` and \`user\`; on a terminal the last line says it.

      With \`--check\`, compares the state with what should run instead: every process of the active
      release, every service and every singleton should be \`running\`, and a release should be active.
      Prints one \`✗ <release|service|singleton> <process id>: expected running, is <state>\` line per
      problem (\`--json\`: \`{ok, problems: [{where, processId, releaseId?, expected, actual}]}\`) and exits 1 when
      there is any. Draining and stopped releases are not problems.
    `,
    examples: [[`Show the status`, `$0 status`], [`Also the stopped and failed releases`, `$0 status --all`], [`As JSON, for scripts`, `$0 status --json`], [`Exit 1 if a process is not running (monitoring)`, `$0 status --check`]],
  });

  check = Option.Boolean(`--check`, false, {description: `Exit 1 when a process is not running where it should (or no release is active), listing each one`});
  all = Option.Boolean(`--all`, false, {description: `On a terminal, also list the stopped and failed retained releases (JSON always has every one)`});

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const client = await this.connect(config);
    let status: StatusResult;
    try {
      status = await client.call(`status`, {});
    } finally {
      client.close();
    }
    if (this.check) return this.#renderCheck(findStatusProblems(status));
    // Which socket this user resolved to, and why (sudo and a plain user differ unless control.path is set).
    const choice = describeSocketChoice(config);
    if (!this.human) {
      this.writeJson({status: `success`, ...status, control: {...status.control, path: status.control?.path ?? choice.path, source: choice.source, runtimeDir: choice.runtimeDir, uid: choice.uid, user: choice.user}});
      return 0;
    }
    this.writeLine(renderStatus(status, {all: this.all}));
    this.writeLine(`\n${formatSocketChoice(choice)}`);
    return 0;
  }

  #renderCheck(problems: StatusProblem[]): number {
    const ok = problems.length === 0;
    if (this.json) {
      this.writeJson({ok, problems});
    } else if (ok) {
      this.writeLine(`✓ every process is running where it should`);
    } else {
      for (const problem of problems) this.writeLine(`✗ ${formatStatusProblem(problem)}`);
      this.context.stderr.write(`\n${plural(problems.length, `problem`)} found.\n`);
    }
    return ok ? 0 : 1;
  }
}

/** A process that is not in its expected state (`status --check`); `where: proxy` means no release is active. */
export type StatusProblem = {where: `release` | `service` | `singleton` | `proxy`; processId: string | null; releaseId?: string; expected: string; actual: string};

/** Every process of the active release, every service and every singleton should be running. */
export function findStatusProblems(status: StatusResult): StatusProblem[] {
  const problems: StatusProblem[] = [];
  const expect = (where: StatusProblem[`where`], process: ProcessStatusView | undefined, fallbackId: string, releaseId?: string) => {
    const actual = process?.state ?? `missing`;
    if (actual !== `running`) problems.push({where, processId: process?.id ?? fallbackId, ...(releaseId === undefined ? {} : {releaseId}), expected: `running`, actual});
  };
  const activeReleaseId = status.activeReleaseId;
  const active = typeof activeReleaseId === `string` ? (status.releases ?? []).find((release) => release.releaseId === activeReleaseId) : undefined;
  if (active === undefined) {
    problems.push({where: `proxy`, processId: null, expected: `an active release`, actual: `no active release`});
  } else {
    for (const process of active.processes ?? []) expect(`release`, process, `?`, active.releaseId);
  }
  for (const service of status.services ?? []) expect(`service`, service.process, service.id);
  for (const singleton of status.singletons ?? []) expect(`singleton`, singleton.process, singleton.id);
  return problems;
}

export function formatStatusProblem(problem: StatusProblem): string {
  if (problem.where === `proxy`) return `proxy: ${problem.actual}`;
  return `${problem.where} ${problem.processId ?? `?`}: expected ${problem.expected}, is ${problem.actual}`;
}

/** One line: `open`, `paused since … (held 3 of 1000, 503 from …)`, `maintenance since …: "message"`. */
export function formatTraffic(traffic: TrafficStatusView): string {
  const hold = traffic.switchHold ? `, a deploy holds traffic for its switch` : ``;
  if (traffic.maintenance) return `maintenance since ${traffic.maintenance.since} (503, Retry-After ${traffic.maintenance.retryAfterSeconds}s): "${traffic.maintenance.message}"`;
  if (traffic.pause) {
    const until = traffic.pause.expired ? `timed out: requests are answered 503 until "rollbridge resume"` : traffic.pause.deadline === null ? `held until "rollbridge resume"` : `held until "rollbridge resume" or ${traffic.pause.deadline}`;
    return `paused since ${traffic.pause.since}, ${until} (${traffic.held} of at most ${traffic.maxHeld} held)${hold}`;
  }
  return traffic.switchHold ? `held by a deploy for its switch (${traffic.held} held)` : `open`;
}

/** Releases a terminal shows without `--all`: what runs or serves now. */
const CURRENT_RELEASE_STATES = new Set([`starting`, `active`, `draining`]);

/**
 * The status as a terminal shows it: a header line, then one row per process of the current releases
 * (starting, active, draining; every retained release with `all`), services and singletons, with RSS and
 * CPU of each running process, `adopted` on processes re-adopted from a previous daemon, and restarts
 * with the memory restarts among them.
 */
export function renderStatus(status: StatusResult, options: {all?: boolean} = {}): string {
  const proxy = status.proxy;
  const daemon = status.daemon;
  const lines = [
    `rollbridge "${status.application}": proxy ${proxy ? `${proxy.host}:${proxy.port}` : `?`}, active release ${status.activeReleaseId ?? `none`}` +
      (daemon ? `, daemon pid ${daemon.pid} up ${formatDuration(daemon.uptimeMs)}` : ``) +
      (daemon?.deploying ? `, ${daemon.deploying} in progress` : ``),
    ...(status.traffic !== undefined && (status.traffic.mode !== `open` || status.traffic.switchHold) ? [`traffic: ${formatTraffic(status.traffic)}`] : []),
    ``,
  ];
  const rows: string[][] = [];
  const addRow = (where: string, process: ProcessStatusView, extra = ``) => {
    const running = process.state === `running`;
    const marks = stateMarks(process);
    rows.push([
      where,
      process.id,
      marks.length > 0 ? `${process.state} (${marks.join(`, `)})` : process.state,
      process.pid === undefined ? `-` : String(process.pid),
      process.port === undefined ? `-` : String(process.port),
      running ? formatDuration(process.uptimeMs) : `-`,
      formatRestarts(process),
      running && process.rssBytes !== undefined ? formatBytes(process.rssBytes) : `-`,
      running && process.cpuPercent !== undefined ? `${process.cpuPercent.toFixed(1)}%` : `-`,
      extra,
    ]);
    notes.push(...processNotes(where, process));
  };
  const notes: string[] = [];
  const releases = status.releases ?? [];
  const shown = options.all === true ? releases : releases.filter((release) => CURRENT_RELEASE_STATES.has(String(release.state)));
  for (const release of shown) {
    const connections = release.connections ? `${release.connections.http} http, ${release.connections.websocket} ws` : ``;
    for (const process of release.processes ?? []) addRow(`${release.releaseId} (${release.state})`, process, process === release.processes?.at(-1) ? connections : ``);
  }
  for (const service of status.services ?? []) addRow(`service`, {...service.process, port: service.port});
  for (const singleton of status.singletons ?? []) addRow(`singleton`, singleton.process);
  lines.push(rows.length > 0 ? formatTable([`RELEASE`, `PROCESS`, `STATE`, `PID`, `PORT`, `UPTIME`, `RESTARTS`, `RSS`, `CPU`, `CONNECTIONS`], rows) : `No managed processes. Deploy with "rollbridge deploy --release-path <dir>".`);
  const hidden = releases.length - shown.length;
  if (hidden > 0) {
    const states = [...new Set(releases.filter((release) => !shown.includes(release)).map((release) => String(release.state)))].join(`, `);
    lines.push(``, `${plural(hidden, `more retained release`, `more retained releases`)} (${states}) not shown: "rollbridge status --all" lists them`);
  }
  if (rows.some((row) => row[2]?.includes(`(adopted`))) lines.push(``, `adopted: re-adopted from the previous daemon after it restarted (found by pid and start time)`);
  if (notes.length > 0) lines.push(``, ...notes);
  return lines.join(`\n`);
}

/** `adopted`, a failing liveness check (`liveness 2/3 failed`), a notify process not ready yet. */
function stateMarks(process: ProcessStatusView): string[] {
  const marks: string[] = [];
  if (process.adopted === true) marks.push(`adopted`);
  if (process.liveness?.state === `failing`) marks.push(`liveness ${process.liveness.consecutiveFailures}/${process.liveness.failureThreshold} failed`);
  if (process.state === `running` && process.notify?.ready === false) marks.push(`not ready`);
  return marks;
}

/** `3`, `3 (1 memory)`, `0 (1 memory, 2 liveness)`: restarts after crashes, then the memory and liveness restarts. */
function formatRestarts(process: ProcessStatusView): string {
  const causes = [
    [process.memoryRestarts ?? 0, `memory`],
    [process.liveness?.restarts ?? 0, `liveness`],
  ] as const;
  const among = causes.filter(([count]) => count > 0).map(([count, cause]) => `${count} ${cause}`);
  return `${process.restarts ?? 0}${among.length > 0 ? ` (${among.join(`, `)})` : ``}`;
}

/** Lines under the table: why a liveness check fails, what a notify process last said (STATUS=). */
function processNotes(where: string, process: ProcessStatusView): string[] {
  const notes: string[] = [];
  const liveness = process.liveness;
  if (liveness?.state === `failing`) {
    notes.push(`${process.id} (${where}): liveness check failed ${liveness.consecutiveFailures} of ${liveness.failureThreshold} times in a row${liveness.lastError === undefined ? `` : `: ${terminalSafe(liveness.lastError)}`}`);
  }
  if (process.state === `running` && process.notify?.status !== undefined) notes.push(`${process.id} (${where}): notify status "${terminalSafe(process.notify.status)}"`);
  return notes;
}

/** `512K`, `48.3M`, `1.20G` (binary units, as `ps` and `top` print RSS). */
function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)}K`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)}M`;
  return `${(bytes / 1024 ** 3).toFixed(2)}G`;
}
