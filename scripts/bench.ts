// `npm run bench [-- <part>…] [--sources] [--no-write]`: runs the benchmark parts (all by default:
// throughput, deploys, websockets, lifecycle, latency, startup, memory, deploys-memory, recovery, crash,
// upgrade), prints each figure and a PASS/FAIL line per goal, and rewrites their sections of
// docs/benchmarks.md. Drives the standalone binary when it is built (bundle/rollbridge-linux-x64), else
// the sources; `--sources` forces the sources.
// Exit code: 0 when every goal passed, 1 otherwise.
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {parseArgs} from 'node:util';
import {stopAllDaemons} from './bench/bench-daemon.ts';
import {benchCrash} from './bench/crash.ts';
import {benchDeploys} from './bench/deploys.ts';
import {benchDeploysMemory} from './bench/deploys-memory.ts';
import {benchLifecycle} from './bench/lifecycle.ts';
import {benchLatency} from './bench/latency.ts';
import {benchMemory} from './bench/memory.ts';
import {PART_NAMES} from './bench/part-result.ts';
import type {BenchContext, PartName, PartResult} from './bench/part-result.ts';
import {writeReport} from './bench/report.ts';
import type {MachineInfo} from './bench/report.ts';
import {benchRecovery} from './bench/recovery.ts';
import {REPO_ROOT, resolveRollbridgeCli} from './bench/rollbridge-cli.ts';
import {benchStartupBinary} from './bench/startup-binary.ts';
import {benchThroughput} from './bench/throughput.ts';
import {benchUpgrade} from './bench/upgrade.ts';
import {killTrackedChildren} from './bench/tracked-children.ts';
import {benchWebSockets} from './bench/websockets.ts';

const TITLES: Record<PartName, string> = {
  throughput: `Throughput: direct vs rollbridge proxy (metrics and access log off, then on) vs nginx`,
  deploys: `Deploys under saturating keep-alive load`,
  websockets: `WebSockets across a deploy`,
  lifecycle: `Rollback, restarts and the watch window under load`,
  latency: `Deploy latency`,
  startup: `Binary start-up`,
  memory: `Daemon memory`,
  'deploys-memory': `Daemon memory over 1,000 deploys`,
  recovery: `Recovery: daemon SIGKILL and re-adoption, legacy takeover, daemon replacement under load`,
  crash: `Crash in every phase of a deploy: SIGKILL, ensure-daemon, one more deploy`,
  upgrade: `Upgrade from a running rollbridge 0.1.21 in one command, under load`,
};

const RUNNERS: Record<PartName, (ctx: BenchContext, result: PartResult) => Promise<void>> = {
  throughput: benchThroughput,
  deploys: benchDeploys,
  websockets: benchWebSockets,
  lifecycle: benchLifecycle,
  latency: benchLatency,
  startup: benchStartupBinary,
  memory: benchMemory,
  'deploys-memory': benchDeploysMemory,
  recovery: benchRecovery,
  crash: benchCrash,
  upgrade: benchUpgrade,
};

function readMachine(): MachineInfo {
  const cpu = /model name\s*:\s*(.+)/.exec(fs.readFileSync(`/proc/cpuinfo`, `utf8`))?.[1]?.trim() ?? os.arch();
  let wrk = `wrk not installed`;
  try {
    wrk = execFileSync(`wrk`, [`-v`], {encoding: `utf8`, stdio: [`ignore`, `pipe`, `pipe`]}).split(`\n`)[0]!.trim();
  } catch (error) {
    // `wrk -v` prints its version and exits 1
    wrk = String((error as {stdout?: string}).stdout ?? ``).split(`\n`)[0]!.trim() || wrk;
  }
  return {nproc: os.availableParallelism(), memoryGb: Math.round(os.totalmem() / 1024 ** 3), cpu, kernel: os.release(), benchNode: process.version, wrk: wrk.replace(/ \[.*$/, ``)};
}

async function main(): Promise<number> {
  const {positionals, values} = parseArgs({allowPositionals: true, options: {sources: {type: `boolean`, default: false}, 'no-write': {type: `boolean`, default: false}}});
  const unknown = positionals.filter((name) => !(PART_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0) {
    process.stderr.write(`Unknown part ${unknown.join(`, `)}: choose from ${PART_NAMES.join(`, `)}\n`);
    return 2;
  }
  const parts = positionals.length > 0 ? PART_NAMES.filter((name) => positionals.includes(name)) : [...PART_NAMES];
  const workRoot = fs.mkdtempSync(path.join(os.tmpdir(), `rbb-`));
  const results: PartResult[] = [];
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: stopping the daemons and load processes …\n`);
    void stopAllDaemons().finally(() => {
      killTrackedChildren();
      fs.rmSync(workRoot, {recursive: true, force: true});
      process.exit(130);
    });
  };
  process.once(`SIGINT`, onSignal);
  process.once(`SIGTERM`, onSignal);
  try {
    const machine = readMachine();
    const cli = resolveRollbridgeCli(workRoot, {sources: values.sources});
    console.log(`rollbridge bench: ${parts.join(`, `)}`);
    console.log(`  rollbridge: ${cli.description}`);
    console.log(`  machine: ${machine.nproc} CPUs, ${machine.memoryGb} GB, ${machine.cpu}, Node ${process.version}, ${machine.wrk}`);
    for (const [index, part] of parts.entries()) {
      const workDir = path.join(workRoot, `p${index}`);
      fs.mkdirSync(workDir);
      const result: PartResult = {part, title: TITLES[part], status: `PASS`, startedAt: new Date().toISOString(), durationS: 0, rollbridge: cli.description, tables: [], checks: [], findings: [], notes: [], data: {}};
      console.log(`\n== ${part}: ${TITLES[part]}`);
      const startedAt = performance.now();
      const loadAtStart = os.loadavg()[0]!;
      try {
        await RUNNERS[part]({cli, workDir, log: (line) => console.log(line)}, result);
        result.status = result.checks.every((c) => c.pass) ? `PASS` : `FAIL`;
      } catch (error) {
        result.status = `ERROR`;
        result.findings.unshift(`The part stopped with an error: ${error instanceof Error ? error.message : String(error)}`);
        console.log(`  error: ${error instanceof Error ? error.stack : String(error)}`);
      } finally {
        await stopAllDaemons();
        killTrackedChildren();
        fs.rmSync(workDir, {recursive: true, force: true});
      }
      result.durationS = (performance.now() - startedAt) / 1000;
      result.notes.push(`machine load average (1 min) when the part started / ended: ${loadAtStart.toFixed(2)} / ${os.loadavg()[0]!.toFixed(2)} (other work on this shared machine adds noise)`);
      for (const c of result.checks) console.log(`  ${c.pass ? `PASS` : `FAIL`} ${c.name}: ${c.measured} (goal ${c.goal})`);
      for (const finding of result.findings) console.log(`  finding: ${finding}`);
      console.log(`  ${part}: ${result.status} (${result.durationS.toFixed(0)} s)`);
      results.push(result);
    }
    if (!values[`no-write`]) {
      const file = path.join(REPO_ROOT, `docs`, `benchmarks.md`);
      writeReport(file, results, machine);
      console.log(`\nwrote ${path.relative(process.cwd(), file) || file}`);
    }
    console.log(`\nsummary: ${results.map((r) => `${r.part} ${r.status}`).join(`, `)}`);
    return results.every((r) => r.status === `PASS`) ? 0 : 1;
  } finally {
    fs.rmSync(workRoot, {recursive: true, force: true});
  }
}

// Exit explicitly: a part that failed half-way must not keep the bench alive with a leftover timer.
process.exit(await main());
