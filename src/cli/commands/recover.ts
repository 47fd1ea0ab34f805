import {Command, Option} from 'clipanion';
import {recoverLeftovers} from '../../takeover/recover.ts';
import type {Leftover, RecoverResult} from '../../takeover/recover.ts';
import {ErrorCode} from '../../errors/codes.ts';
import {RollbridgeError} from '../../errors/rollbridge-error.ts';
import {BaseCommand} from '../base-command.ts';
import {plural} from '../render.ts';

export class RecoverCommand extends BaseCommand {
  static paths = [[`recover`]];

  static usage = Command.Usage({
    description: `After a daemon crash: list the processes it left running; --force stops them`,
    details: `
      Reads the state file (\`statePath\`, by default beside the control socket) and lists every recorded
      process that still runs — the same pid with the same start time, so a recycled pid is never taken for
      one — together with the live members of its process group (children of a leader that already died
      are found too). Refuses while a daemon, or anything else, answers on the control socket.

      A restarted daemon re-adopts these processes by itself; use \`--force\` only when that is not wanted:
      each process group gets its process's \`stopSignal\`, then SIGKILL after its \`gracefulStopMs\`, and the
      state file is removed once nothing is left. If a process survives, the state file is kept and the
      command exits 1 with ERR_RECOVER_SURVIVORS.

      \`--json\` prints \`{status, changed, statePath, found, stopped, survivors}\`, each entry \`{id, processId,
      releaseId, pid, pgid, members}\`; \`changed\` is true when processes were stopped.
    `,
    examples: [
      [`List the processes a crashed daemon left running`, `$0 recover`],
      [`Stop them and clear the state file`, `$0 recover --force`],
      [`The same, as JSON`, `$0 recover --force --json`],
    ],
  });

  force = Option.Boolean(`--force`, false, {description: `Stop the listed processes (stopSignal, gracefulStopMs, then SIGKILL) and clear the state file`});

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const result = await recoverLeftovers({config, force: this.force, log: this.stderrLogger()});
    if (result.survivors.length > 0) {
      if (!this.json && result.stopped.length > 0) this.#list(`Stopped ${orphans(result.stopped.length)}:`, result.stopped);
      throw survivorsError(result);
    }
    if (this.json) {
      this.writeSuccess({changed: result.stopped.length > 0, ...result});
      return 0;
    }
    // These lines are rollbridge 0.1's: deploy scripts grep them.
    if (result.found.length === 0) {
      this.writeLine(this.force ? `No orphaned processes found; cleared the state file.` : `No orphaned processes found.`);
    } else if (this.force) {
      this.#list(`Stopped ${orphans(result.stopped.length)}:`, result.stopped);
    } else {
      this.#list(`Found ${orphans(result.found.length)} (run with --force to stop):`, result.found);
      this.writeLine(`Each was matched by its recorded pid and start time in this boot (or by the process key in its environment), so a recycled pid is never listed; --force stops their process groups.`);
    }
    return 0;
  }

  #list(heading: string, leftovers: Leftover[]): void {
    this.writeLine(heading);
    for (const leftover of leftovers) this.writeLine(formatLeftover(leftover));
  }
}

/** `1 orphaned process`, `2 orphaned processes` (rollbridge 0.1's words). */
function orphans(count: number): string {
  return plural(count, `orphaned process`, `orphaned processes`);
}

/** `  <id> (pid <pid>, release <releaseId>)`, plus the group members still running when the leader is gone. */
export function formatLeftover(leftover: Leftover): string {
  const release = leftover.releaseId === `` ? `` : `, release ${leftover.releaseId}`;
  const members = leftover.members.includes(leftover.pid) ? `` : `; leader gone, group members ${leftover.members.join(` `)}`;
  return `  ${leftover.id} (pid ${leftover.pid}${release})${members}`;
}

function survivorsError(result: RecoverResult): RollbridgeError {
  const pids = result.survivors.flatMap((leftover) => leftover.members.length > 0 ? leftover.members : [leftover.pid]);
  return new RollbridgeError(ErrorCode.RECOVER_SURVIVORS, `Could not stop ${orphans(result.survivors.length)}; kept the state file ${result.statePath}:\n${result.survivors.map(formatLeftover).join(`\n`)}`, {
    fix: `Check them with "ps -o pid,user,stat,args -p ${pids.join(`,`)}", stop them as their owner, then run "rollbridge recover --force" again`,
    details: {...result},
  });
}
