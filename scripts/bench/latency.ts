// Part 4, latency: wall time of `rollbridge deploy` (spawn to exit) for an app that boots in 100 ms
// (APP_BOOT_MS=100), median of 10 deploys with the product's default health settings, then 10 more while
// the proxy is polled to find when the new release serves its first response, then 10 with
// health.intervalMs 25 (the config is re-read on every deploy).
import fs from 'node:fs';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {Pool} from 'undici';
import {BenchDaemon} from './bench-daemon.ts';
import type {DeployRun} from './bench-daemon.ts';
import {WEB_APP, webConfig} from './bench-configs.ts';
import {canConnect, findFreePort} from './nginx.ts';
import {check} from './part-result.ts';
import type {BenchContext, PartResult} from './part-result.ts';
import {median, percentile} from './stats.ts';
import {spawnTracked, stopChild} from './tracked-children.ts';

export const DEPLOY_WALL_GOAL_MS = 200;
const DEPLOYS = 10;
const BOOT_MS = `100`;
/** Lets the previous release drain and stop before the next deploy. */
const PAUSE_MS = 300;

type Series = {label: string; walls: number[]; durations: number[]; firstResponses: number[]; failures: string[]; phases: Record<string, number[]>; steps: Record<string, number[]>};

/** The deploy's wall time by step (ms), from the CLI's `cliTimings` and the daemon's `timings` in `deploy --json`. */
const STEPS: Array<{key: string; label: string}> = [
  {key: `cli.start`, label: `CLI start: runtime and modules, until the command runs`},
  {key: `cli.config`, label: `CLI: config read and checked`},
  {key: `cli.connect`, label: `CLI: connect to the control socket`},
  {key: `daemon.config`, label: `daemon: config read again`},
  {key: `daemon.stateWrite`, label: `daemon: write-ahead state write (fsync) before the spawn`},
  {key: `daemon.spawn`, label: `daemon: spawn the new process`},
  {key: `daemon.health`, label: `daemon: health checks until the first pass (the app's boot included)`},
  {key: `daemon.switch`, label: `daemon: switch`},
  {key: `daemon.switchStateWrite`, label: `daemon: state write (fsync) that makes the switch durable`},
  {key: `daemon.other`, label: `daemon: the rest (ports, retiring the previous release)`},
  {key: `reply`, label: `request and reply on the socket beyond the daemon's durationMs`},
  {key: `cli.exit`, label: `CLI: process spawn, output and exit (wall time minus the above)`},
];

function stepsOf(deploy: DeployRun): Record<string, number> | null {
  const cli = deploy.cliTimings;
  const daemon = deploy.timings;
  if (cli.startMs === undefined || daemon.healthMs === undefined) return null;
  const daemonListed = (daemon.configMs ?? 0) + (daemon.stateWriteMs ?? 0) + (daemon.spawnMs ?? 0) + daemon.healthMs + (daemon.switchMs ?? 0) + (daemon.switchStateWriteMs ?? 0);
  const requestMs = cli.requestMs ?? Number.NaN;
  return {
    'cli.start': cli.startMs,
    'cli.config': cli.configMs ?? Number.NaN,
    'cli.connect': cli.connectMs ?? Number.NaN,
    'daemon.config': daemon.configMs ?? Number.NaN,
    'daemon.stateWrite': daemon.stateWriteMs ?? Number.NaN,
    'daemon.spawn': daemon.spawnMs ?? Number.NaN,
    'daemon.health': daemon.healthMs,
    'daemon.switch': daemon.switchMs ?? Number.NaN,
    'daemon.switchStateWrite': daemon.switchStateWriteMs ?? Number.NaN,
    'daemon.other': deploy.durationMs - daemonListed,
    reply: requestMs - deploy.durationMs,
    'cli.exit': deploy.wallMs - cli.startMs - (cli.configMs ?? 0) - (cli.connectMs ?? 0) - requestMs,
  };
}

export async function benchLatency(ctx: BenchContext, result: PartResult): Promise<void> {
  const dir = path.join(ctx.workDir, `d`);
  fs.mkdirSync(dir);
  const config = (health: Record<string, unknown>) => webConfig(`rb-bench-latency`, {env: {APP_BOOT_MS: BOOT_MS}, proxy: {drainTimeoutMs: 2_000}, health});
  const daemon = await BenchDaemon.start({cli: ctx.cli, dir, config: config({})});
  let counter = 0;
  const nextId = () => `l${String(++counter).padStart(2, `0`)}`;
  try {
    const first = await daemon.deploy(nextId());
    if (!first.ok) throw new Error(`The first deploy failed: ${first.error}`);
    const defaults = await series(`default health settings (intervalMs 250)`, daemon, nextId, false);
    const polled = await series(`default health settings, proxy polled in parallel`, daemon, nextId, true);
    const written = JSON.parse(fs.readFileSync(daemon.configPath, `utf8`)) as Record<string, unknown>;
    fs.writeFileSync(daemon.configPath, `${JSON.stringify({...written, processes: (config({intervalMs: 25}).processes)}, null, 2)}\n`);
    const tuned = await series(`health.intervalMs 25`, daemon, nextId, false);
    const all = [defaults, polled, tuned];
    const appFloor = median(await timeAppStart(5));
    ctx.log(`  the app alone: ${appFloor.toFixed(0)} ms from spawn to accepting connections (median of 5)`);
    for (const s of all) ctx.log(`  ${s.label}: wall median ${median(s.walls).toFixed(0)} ms (p95 ${percentile(s.walls, 95).toFixed(0)}), daemon durationMs median ${median(s.durations).toFixed(0)}${s.firstResponses.length ? `, first response from the new release ${median(s.firstResponses).toFixed(0)} ms after the command started` : ``}${s.failures.length ? `, ${s.failures.length} failed` : ``}`);
    result.tables.push({
      title: `app boots in ${BOOT_MS} ms; ${DEPLOYS} deploys per row; \`rollbridge deploy --json\` timed from spawn to exit`,
      header: [`series`, `CLI wall median ms`, `min / p95 ms`, `daemon durationMs median`, `first new-release response, median ms after the command started`, `failed`],
      rows: [
        ...all.map((s) => [s.label, median(s.walls).toFixed(0), `${Math.min(...s.walls).toFixed(0)} / ${percentile(s.walls, 95).toFixed(0)}`, median(s.durations).toFixed(0), s.firstResponses.length ? `${median(s.firstResponses).toFixed(0)} (min ${Math.min(...s.firstResponses).toFixed(0)}, max ${Math.max(...s.firstResponses).toFixed(0)})` : `-`, String(s.failures.length)]),
        [`the app alone, spawn to accepting connections (no rollbridge)`, `-`, `-`, appFloor.toFixed(0), `-`, `-`],
        [`upstream 0.1.21 (anchor, not run)`, `420`, `-`, `-`, `400`, `-`],
      ],
    });
    if (Object.keys(defaults.steps).length > 0) {
      const cell = (values: number[] | undefined) => (values && values.length > 0 ? median(values).toFixed(1) : `-`);
      result.tables.push({
        title: `where the deploy's wall time goes (medians of ${DEPLOYS} deploys, ms; from \`cliTimings\` and \`timings\` in \`deploy --json\`; the medians of the steps need not add up to the median wall time)`,
        header: [`step`, defaults.label, tuned.label],
        rows: [
          ...STEPS.map((step) => [step.label, cell(defaults.steps[step.key]), cell(tuned.steps[step.key])]),
          [`wall time (CLI spawn to exit)`, median(defaults.walls).toFixed(1), median(tuned.walls).toFixed(1)],
          [`the app alone, spawn to accepting connections`, appFloor.toFixed(1), appFloor.toFixed(1)],
        ],
      });
    }
    const wall = median(defaults.walls);
    result.checks.push(check(`deploy CLI wall time, app booting in ${BOOT_MS} ms (default config, median of ${DEPLOYS})`, `${wall.toFixed(0)} ms`, `≤ ${DEPLOY_WALL_GOAL_MS} ms (upstream 420 ms)`, wall <= DEPLOY_WALL_GOAL_MS));
    const firstResponse = median(polled.firstResponses);
    result.checks.push(check(`first response from the new release after the command started (median; no goal set, compared with upstream)`, `${firstResponse.toFixed(0)} ms`, `< 400 ms (upstream)`, firstResponse < 400));
    const breakdown = (s: Series) => `${Object.entries(s.phases).map(([phase, values]) => `${phase} ${median(values).toFixed(0)}`).join(`, `)}; CLI process beyond the daemon's durationMs ${(median(s.walls) - median(s.durations)).toFixed(0)} ms`;
    result.notes.push(`where the time goes (medians, ms), default settings: ${breakdown(defaults)}; with health.intervalMs 25: ${breakdown(tuned)}. The app alone needs ${appFloor.toFixed(0)} ms from spawn to accepting connections (its ${BOOT_MS} ms boot plus Node's start)`);
    if (wall > DEPLOY_WALL_GOAL_MS) {
      result.findings.push(`deploy CLI wall time is ${wall.toFixed(0)} ms for an app booting in ${BOOT_MS} ms (goal ≤ ${DEPLOY_WALL_GOAL_MS} ms): the daemon reports ${median(defaults.durations).toFixed(0)} ms (${breakdown(defaults)}), of which the app itself needs ${appFloor.toFixed(0)} ms to listen; see the startup part for the binary's own start time`);
    }
    for (const s of all) for (const failure of s.failures) result.findings.push(`${s.label}: ${failure}`);
    result.notes.push(`first response: two keep-alive connections poll GET / through the proxy during the deploy; the time is when the first body carrying the new release id arrived, from the spawn of the CLI`);
    result.data = Object.fromEntries(all.map((s) => [s.label, s]));
  } finally {
    const forced = await daemon.stop();
    if (forced.length > 0) result.findings.push(`stopping the daemon: ${forced.join(`; `)}`);
  }
}

async function series(label: string, daemon: BenchDaemon, nextId: () => string, poll: boolean): Promise<Series> {
  const out: Series = {label, walls: [], durations: [], firstResponses: [], failures: [], phases: {}, steps: {}};
  for (let i = 0; i < DEPLOYS; i++) {
    await delay(PAUSE_MS);
    const releaseId = nextId();
    let deploy: DeployRun;
    if (poll) {
      const poller = pollFor(daemon.proxyPort, releaseId);
      deploy = await daemon.deploy(releaseId);
      const firstAt = await poller.firstAt(5_000);
      if (Number.isFinite(firstAt)) out.firstResponses.push(firstAt - deploy.startedAt);
      else out.failures.push(`no response from ${releaseId} within 5 s of its deploy`);
      if (poller.failures.length > 0) out.failures.push(`${poller.failures.length} polling requests failed during deploy ${releaseId}: ${poller.failures.slice(0, 3).join(`, `)}`);
    } else {
      deploy = await daemon.deploy(releaseId);
    }
    if (!deploy.ok) out.failures.push(`deploy ${releaseId} failed: ${deploy.error}`);
    out.walls.push(deploy.wallMs);
    if (Number.isFinite(deploy.durationMs)) out.durations.push(deploy.durationMs);
    for (const phase of deploy.phases) (out.phases[phase.phase] ??= []).push(phase.durationMs);
    for (const [key, ms] of Object.entries(stepsOf(deploy) ?? {})) if (Number.isFinite(ms)) (out.steps[key] ??= []).push(ms);
  }
  return out;
}

/** Polls the proxy on two keep-alive connections until a response carries `releaseId`. */
function pollFor(port: number, releaseId: string): {failures: string[]; firstAt(timeoutMs: number): Promise<number>} {
  const pool = new Pool(`http://127.0.0.1:${port}`, {connections: 2, pipelining: 1});
  const failures: string[] = [];
  let firstAt = Number.NaN;
  let running = true;
  const loop = async () => {
    while (running) {
      try {
        const response = await pool.request({path: `/`, method: `GET`});
        const body = (await response.body.text()).trim();
        if (response.statusCode !== 200) failures.push(`HTTP ${response.statusCode}`);
        else if (body === releaseId && Number.isNaN(firstAt)) firstAt = Date.now();
      } catch (error) {
        failures.push((error as {code?: string}).code ?? (error as Error).message);
      }
      if (!Number.isNaN(firstAt)) running = false;
    }
  };
  const loops = [loop(), loop()];
  return {
    failures,
    firstAt: async (timeoutMs) => {
      const stop = setTimeout(() => (running = false), timeoutMs);
      await Promise.all(loops);
      clearTimeout(stop);
      await pool.destroy().catch(() => undefined);
      return firstAt;
    },
  };
}

/** Spawn-to-listening time of the fixture app with APP_BOOT_MS=100 run directly, the floor of any deploy. */
async function timeAppStart(runs: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const port = await findFreePort();
    const start = performance.now();
    const child = spawnTracked(process.execPath, [WEB_APP], {env: {ROLLBRIDGE_PORT: String(port), APP_BOOT_MS: BOOT_MS}, stdio: `ignore`});
    try {
      const deadline = Date.now() + 5_000;
      while (!(await canConnect(port))) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`The fixture app did not listen on ${port} within 5 s`);
        await delay(2);
      }
      times.push(performance.now() - start);
    } finally {
      await stopChild(child);
    }
  }
  return times;
}
