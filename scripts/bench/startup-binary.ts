// Part 5, startup: runs scripts/bench/startup.ts (binary size, `--version` and `status` medians) as a
// child process against the binary under test; skipped when only the sources are available.
import {execFile} from 'node:child_process';
import path from 'node:path';
import {check} from './part-result.ts';
import type {BenchContext, PartResult} from './part-result.ts';
import type {StartupResult} from './startup.ts';

const STARTUP_SCRIPT = path.join(import.meta.dirname, `startup.ts`);

export async function benchStartupBinary(ctx: BenchContext, result: PartResult): Promise<void> {
  if (ctx.cli.kind !== `binary`) {
    result.status = `SKIPPED`;
    result.notes.push(`Skipped: the binary is not built (\`npm run build\`).`);
    return;
  }
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [STARTUP_SCRIPT, `--binary`, ctx.cli.file, `--runs`, `20`, `--json`], {encoding: `utf8`, timeout: 180_000, maxBuffer: 8 * 1024 * 1024}, (error, out, err) => {
      if (error) reject(new Error(`scripts/bench/startup.ts failed: ${error.message} ${err.trim()}`));
      else resolve(out);
    });
  });
  const startup = JSON.parse(stdout.trim().split(`\n`).at(-1)!) as StartupResult;
  const row = (label: string, timing: StartupResult[`version`] | null) => timing
    ? [label, timing.medianMs.toFixed(1), timing.minMs.toFixed(1), timing.maxMs.toFixed(1), String(timing.runs), timing.tool]
    : [label, `-`, `-`, `-`, `0`, `-`];
  result.tables.push({
    title: `binary ${(startup.bytes / 1_000_000).toFixed(1)} MB${startup.compressed ? ` (${path.basename(startup.compressed.file)} ${(startup.compressed.bytes / 1_000_000).toFixed(1)} MB)` : ``}`,
    header: [`command`, `median ms`, `min ms`, `max ms`, `runs`, `timed with`],
    rows: [row(`rollbridge --version`, startup.version), row(`rollbridge status --json`, startup.status), [`upstream 0.1.21 status (anchor, not run)`, `86`, `-`, `-`, `-`, `-`]],
  });
  ctx.log(`  --version ${startup.version.medianMs.toFixed(1)} ms, status ${startup.status ? `${startup.status.medianMs.toFixed(1)} ms` : `not measured`}, size ${(startup.bytes / 1_000_000).toFixed(1)} MB`);
  result.checks.push(check(`rollbridge --version (binary, median)`, `${startup.version.medianMs.toFixed(1)} ms`, `≤ ${startup.version.goalMs} ms`, startup.version.meetsGoal));
  result.checks.push(startup.status
    ? check(`rollbridge status (binary, median)`, `${startup.status.medianMs.toFixed(1)} ms`, `≤ ${startup.status.goalMs} ms`, startup.status.meetsGoal)
    : check(`rollbridge status (binary, median)`, startup.statusNote, `measured`, false));
  if (!startup.version.meetsGoal) result.findings.push(`\`rollbridge --version\` takes ${startup.version.medianMs.toFixed(1)} ms (median of ${startup.version.runs}, min ${startup.version.minMs.toFixed(1)}) with the ${(startup.bytes / 1_000_000).toFixed(0)} MB binary; goal ≤ ${startup.version.goalMs} ms${startup.status ? `; \`status\` (${startup.status.medianMs.toFixed(1)} ms) costs about the same, so nearly all of it is the binary's own start` : ``}`);
  if (startup.status && !startup.status.meetsGoal) result.findings.push(`\`rollbridge status\` takes ${startup.status.medianMs.toFixed(1)} ms (median), goal ≤ ${startup.status.goalMs} ms`);
  result.notes.push(`scripts/bench/startup.ts: ${startup.statusNote}; the binary runs with a clean environment (no node on PATH)`);
  result.data = {startup};
}
