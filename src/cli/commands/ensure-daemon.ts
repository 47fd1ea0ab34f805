import {Command, Option} from 'clipanion';
import type {ProgressEvent} from '../../control/protocol.ts';
import {BaseCommand} from '../base-command.ts';
import {findLegacyDaemon} from '../../takeover/legacy-daemon.ts';
import {ensureDaemon, parseStartTimeout, replaceDaemon, statusOf} from '../daemon-launcher.ts';
import {formatUpgrade, upgradeFromLegacyDaemon} from '../legacy-upgrade.ts';
import {ProgressLines} from '../progress-lines.ts';
import {formatPhase} from './deploy.ts';

export class EnsureDaemonCommand extends BaseCommand {
  static paths = [[`ensure-daemon`]];

  static usage = Command.Usage({
    description: `Start a detached daemon unless one already answers on the control socket`,
    details: `
      Idempotent: prints the running daemon's status when there is one. Otherwise spawns
      \`rollbridge daemon --config <absolute config path>\` detached, with the config's directory as its
      working directory, appends its output to \`--daemon-log-path\`, writes its pid to
      \`--daemon-pid-path\`, and waits until it answers. On a terminal that wait is a line
      (\`waiting for the daemon (pid …) to listen on <socket> (timeout …)\`) with a live elapsed time,
      then \`daemon listening\` with how long it took.

      \`--replace\` hands a running daemon over to a new one of this build without downtime: the new
      daemon receives the proxy's listening socket, re-adopts every process from the state file,
      health-checks the web process and takes over the control socket; then the old one stops
      accepting, closes its client connections after their next response and exits. Only the daemon's
      user (or root) may do it. With no daemon running, it starts one.

      JSON: the daemon's status document with \`"changed"\` (true when this call started a daemon);
      with \`--replace\`, \`{changed: true, replaced, previousPid, pid, durationMs, daemon: <status>}\`.

      A running rollbridge 0.1 daemon (on \`control.path\`, or on 0.1's default
      \`/tmp/rollbridge-<application>.sock\` when the config sets none) is taken over: a daemon of this
      build starts its active release beside it, health-checks it, has the 0.1 daemon shut down and
      binds the proxy port; the port gap is reported and nothing of 0.1 is left running. See
      docs/migrating-from-0.1.md.
    `,
    examples: [
      [`Make sure a daemon runs for ./rollbridge.js`, `$0 ensure-daemon`],
      [`Replace the running daemon with this build, without downtime`, `$0 ensure-daemon --replace`],
      [`With explicit log and pid files`, `$0 ensure-daemon --daemon-log-path /var/log/app/rollbridge.log --daemon-pid-path /run/app/rollbridge.pid`],
    ],
  });

  daemonLogPath = Option.String(`--daemon-log-path`, {description: `Where the daemon's output is appended (default: $TMPDIR/rollbridge-<uid>/<application>.log)`});
  daemonPidPath = Option.String(`--daemon-pid-path`, {description: `Where the daemon's pid is written (default: $TMPDIR/rollbridge-<uid>/<application>.pid)`});
  daemonStartTimeoutMs = Option.String(`--daemon-start-timeout-ms`, {description: `How long to wait for the daemon to answer, in ms (default: 10000)`});
  daemonRuntimePath = Option.String(`--daemon-runtime-path`, {hidden: true, description: `Accepted for compatibility with rollbridge 0.1; the binary is self-contained, so it is ignored`});

  replace = Option.Boolean(`--replace`, false, {description: `Replace a running daemon with one of this build, without downtime`});

  #lines: ProgressLines | null = null;

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const launch = {logPath: this.daemonLogPath, pidPath: this.daemonPidPath, startTimeoutMs: parseStartTimeout(this.daemonStartTimeoutMs), onProgress: this.#progress()};
    if (this.replace) {
      const replaced = await replaceDaemon(config, this.context, launch);
      if (!this.human) {
        this.writeSuccess({changed: true, replaced: replaced.replaced, previousPid: replaced.previousPid, pid: replaced.pid, durationMs: replaced.durationMs, daemon: replaced.status});
      } else {
        this.writeLine(replaced.replaced
          ? `Replaced the rollbridge daemon (pid ${replaced.previousPid} → ${replaced.pid}) in ${replaced.durationMs} ms; every process was re-adopted`
          : `No daemon was running; started one (pid ${replaced.pid}) on ${config.control.path}`);
      }
      return 0;
    }
    const legacy = await findLegacyDaemon(config);
    if (legacy !== null) {
      const report = await upgradeFromLegacyDaemon(config, this.context, legacy, {launch, log: this.stderrLogger()});
      if (!this.human) {
        this.context.stderr.write(`${formatUpgrade(report)}\n`);
        this.writeSuccess({changed: true, ...await statusOf(config.control.path), upgrade: report});
      } else {
        this.writeLine(formatUpgrade(report));
      }
      return 0;
    }
    const result = await ensureDaemon(config, this.context, launch);
    if (!this.human) {
      this.writeSuccess({changed: result.started, ...result.status});
    } else {
      this.writeLine(result.started ? `Started the rollbridge daemon (pid ${result.pid}) on ${config.control.path}` : `A rollbridge daemon is already running on ${config.control.path}`);
    }
    return 0;
  }

  /** On a terminal, the wait for a daemon this command starts: a line with a live elapsed time (deploy's phase lines). */
  #progress(): ((event: ProgressEvent) => void) | undefined {
    if (!this.human) return undefined;
    const lines = new ProgressLines(this.context.stdout);
    this.#lines = lines;
    return (event) => lines.write(formatPhase(event), event.phase === `waiting`);
  }

  override endProgress(): void {
    this.#lines?.end();
  }

  override writeLine(text = ``): void {
    this.endProgress();
    super.writeLine(text);
  }
}
