// Part 9, crash: the daemon is killed with SIGKILL in each phase of a deploy — before the spawn, during
// the health check, right after the switch (on the `traffic switched` event), during the drain — and
// during a `restart --process web` drain; then `ensure-daemon` and one more deploy run. Counted after
// each run: app processes no daemon supervises, duplicate singletons/services, acknowledged deploys
// undone, the proxy serving another release than status calls active. CRASH_ROUNDS (default 5) runs per phase.
import fs from 'node:fs';
import path from 'node:path';
import {CRASH_PHASES, runCrashScenario} from '../../test/helpers/crash-scenario.ts';
import type {CrashOutcome} from '../../test/helpers/crash-scenario.ts';
import {check} from './part-result.ts';
import type {BenchContext, PartResult} from './part-result.ts';

export async function benchCrash(ctx: BenchContext, result: PartResult): Promise<void> {
  const rounds = Math.max(1, Number(process.env.CRASH_ROUNDS ?? 5));
  const outcomes: CrashOutcome[] = [];
  for (const [index, phase] of CRASH_PHASES.entries()) {
    for (let round = 1; round <= rounds; round++) {
      // Short (the control socket lives in it) and unique: hold-drain and hold-start share a prefix.
      const dir = path.join(ctx.workDir, `${phase.slice(0, 3)}${index}-${round}`);
      fs.mkdirSync(dir);
      const outcome = await runCrashScenario({cli: ctx.cli, phase, dir, application: `rb-bench-crash-${phase}-${round}`});
      outcomes.push(outcome);
      ctx.log(`  ${phase} #${round}: killed ${outcome.killed}, acknowledged ${outcome.acknowledged}, active after restart ${outcome.activeAfterRestart}, unsupervised ${outcome.unsupervised}, duplicates ${outcome.duplicates}, undone ${outcome.undone}${outcome.details.length > 0 ? ` — ${outcome.details.join(`; `)}` : ``}`);
      for (const detail of outcome.details) result.findings.push(`${phase} #${round}: ${detail}`);
    }
  }
  const sum = (list: CrashOutcome[], pick: (outcome: CrashOutcome) => number) => list.reduce((total, outcome) => total + pick(outcome), 0);
  result.tables.push({
    title: `${rounds} runs per phase; after each kill: ensure-daemon, then one more deploy`,
    header: [`phase`, `runs`, `killed in phase`, `killed command acknowledged`, `unsupervised processes`, `duplicate singletons/services`, `acknowledged deploys undone`, `proxy ≠ status`, `deploy after restart failed`],
    rows: CRASH_PHASES.map((phase) => {
      const list = outcomes.filter((outcome) => outcome.phase === phase);
      return [phase, String(list.length), String(list.filter((o) => o.killed).length), String(list.filter((o) => o.acknowledged).length), String(sum(list, (o) => o.unsupervised)), String(sum(list, (o) => o.duplicates)), String(sum(list, (o) => o.undone)), String(list.filter((o) => o.proxyMismatch).length), String(list.filter((o) => !o.finalDeployOk).length)];
    }),
  });
  const total = outcomes.length;
  result.checks.push(
    check(`processes no daemon supervises after a kill in any phase`, `${sum(outcomes, (o) => o.unsupervised)} over ${total} runs`, `0`, sum(outcomes, (o) => o.unsupervised) === 0),
    check(`duplicate singletons or services`, `${sum(outcomes, (o) => o.duplicates)} over ${total} runs`, `0`, sum(outcomes, (o) => o.duplicates) === 0),
    check(`acknowledged deploys undone`, `${sum(outcomes, (o) => o.undone)} over ${total} runs`, `0`, sum(outcomes, (o) => o.undone) === 0),
    check(`proxy serving what status calls active`, `${total - outcomes.filter((o) => o.proxyMismatch).length} of ${total}`, `${total} of ${total}`, outcomes.every((o) => !o.proxyMismatch)),
    check(`daemon killed inside the phase`, `${outcomes.filter((o) => o.killed).length} of ${total}`, `${total} of ${total}`, outcomes.every((o) => o.killed)),
  );
  result.notes.push(
    `topology: a service with a fixed port (beacon), a singleton (scheduler), a companion (worker), the web app (APP_BOOT_MS 300, health every 20 ms); proxy.drainTimeoutMs 2000; a 1.5 s request holds the old web process in its drain for the drain phases`,
    `triggers: the daemon's own event stream (\`events --follow\`): \`deploy starting\` (before the spawn), \`process started\` of the new web process (health check), \`traffic switched\`, the deploy's success (drain), \`process replaced\` (restart --process web); the SIGKILL lands a few ms after the event`,
    `unsupervised: live processes with the run's ROLLBRIDGE_APPLICATION whose pid or process group is not in \`status\` once no release is draining; duplicates: more than one group leader per singleton/service id`,
    `the scenario is test/helpers/crash-scenario.ts; test/daemon/crash-phases.test.ts runs each phase once in the suite`,
  );
  result.data.outcomes = outcomes;
}
