// Issue 9: the daemon is killed with SIGKILL in one phase of a deploy (or of a `restart --process web`
// drain), then `ensure-daemon` and one more deploy run; the outcome counts what a crash must never
// leave behind. Used by test/daemon/crash-phases.test.ts (once per phase, on the sources) and by
// `npm run bench crash` (≥ 5 per phase, on the binary).
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {ControlClient} from '../../src/control/client.ts';
import {listProcessIds, readEnvironmentVariable, readProcStat} from '../../src/system/proc.ts';
import {freePort} from './ports.ts';
import {waitFor} from './wait-for.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, `..`, `..`);
const WEB_APP = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `web-app.cjs`);
const RECORDER = path.join(REPO_ROOT, `test`, `fixtures`, `apps`, `recorder.cjs`);

// `hold-*`: the web process has `switch: "hold"` and takes an exclusive flock, so two copies can never
// run; the kill lands while requests are held (the previous copy draining, or the new one started).
// `canary`: r2 is deployed with --canary and the kill lands while it takes its share of the clients.
export const CRASH_PHASES = [`before-spawn`, `health-check`, `after-switch`, `drain`, `restart-drain`, `hold-drain`, `hold-start`, `canary`] as const;
export type CrashPhase = typeof CRASH_PHASES[number];

/** How to run the CLI: the binary, or Node with src/main.ts. */
export type CrashCli = {file: string; prefixArgs: string[]};

export type CrashOutcome = {
  phase: CrashPhase;
  /** The daemon was killed while the phase's command ran (false: the trigger never came). */
  killed: boolean;
  /** The killed command had already answered success (its deploy must survive the crash). */
  acknowledged: boolean;
  activeAfterRestart: string | null;
  /** App processes no daemon supervises after ensure-daemon + one more deploy. */
  unsupervised: number;
  /** Processes beyond one per singleton or service. */
  duplicates: number;
  /** Acknowledged deploys the restarted daemon does not serve (0 or 1 per run). */
  undone: number;
  /** The proxy answered with a release other than the one status calls active (after the last deploy). */
  proxyMismatch: boolean;
  /** Right after the restart, a request through the proxy was answered 200 (not held, not refused). */
  servedAfterRestart: boolean;
  finalDeployOk: boolean;
  /** Why a count is not 0, for the report. */
  details: string[];
};

type Status = {
  activeReleaseId: string | null;
  daemon: {pid: number};
  releases: Array<{releaseId: string; state: string; processes: Array<{id: string; pid?: number}>}>;
  services: Array<{id: string; process: {pid?: number}}>;
  singletons: Array<{id: string; process: {pid?: number}}>;
};

export async function runCrashScenario(options: {cli: CrashCli; phase: CrashPhase; dir: string; application: string}): Promise<CrashOutcome> {
  const {cli, phase, dir, application} = options;
  const [proxyPort, servicePort] = [await freePort(), await freePort()];
  const configPath = path.join(dir, `rollbridge.json`);
  const socketPath = path.join(dir, `c.sock`);
  const recorder = `exec "${process.execPath}" "${RECORDER}"`;
  const env = {RECORD_FILE: path.join(dir, `record.log`)};
  const hold = phase === `hold-drain` || phase === `hold-start`;
  const webCommand = hold ? `exec flock -n "${path.join(dir, `web.lock`)}" "${process.execPath}" "${WEB_APP}"` : `exec "${process.execPath}" "${WEB_APP}"`;
  fs.writeFileSync(configPath, JSON.stringify({
    application,
    control: {path: socketPath},
    logs: {dir: path.join(dir, `logs`)},
    proxy: {host: `127.0.0.1`, port: proxyPort, drainTimeoutMs: 2_000, forceStopTimeoutMs: 2_000},
    processes: [
      {id: `beacon`, command: recorder, policy: `service`, port: servicePort, env},
      {id: `scheduler`, command: recorder, policy: `singleton`, env},
      {id: `worker`, command: recorder, policy: `companion`, env},
      {id: `web`, command: webCommand, policy: `proxied`, port: {from: 0, to: 0}, env: {APP_BOOT_MS: `300`, APP_EVENTS_FILE: path.join(dir, `web-events.jsonl`)}, health: {path: `/ping`, intervalMs: 20, timeoutMs: 10_000}, ...(hold ? {switch: `hold`, holdTimeoutMs: 15_000} : {})},
    ],
  }, null, 2));
  const release = (name: string) => {
    const releaseDir = path.join(dir, `releases`, name);
    fs.mkdirSync(releaseDir, {recursive: true});
    return releaseDir;
  };
  const rollbridge = (args: string[]) => runCli(cli, [...args, `--config`, configPath], dir);
  const ensureDaemon = async () => {
    const run = await rollbridge([`ensure-daemon`, `--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, path.join(dir, `daemon.pid`)]);
    if (run.code !== 0) throw new Error(`ensure-daemon failed (${run.code}): ${run.stdout}${run.stderr}\n${readTail(path.join(dir, `daemon.log`))}`);
  };
  const status = async (): Promise<Status> => {
    const client = await ControlClient.connect(socketPath);
    try {
      return await client.call(`status`, {}) as unknown as Status;
    } finally {
      client.close();
    }
  };
  const deploy = (releaseId: string) => rollbridge([`deploy`, `--release-path`, release(releaseId), `--release-id`, releaseId, `--json`, ...(phase === `canary` && releaseId === `r2` ? [`--canary`, `50`, `--canary-window`, `10s`] : [])]);
  const details: string[] = [];
  try {
    await ensureDaemon();
    const first = await deploy(`r1`);
    if (first.code !== 0) throw new Error(`The first deploy failed: ${first.stdout}${first.stderr}`);
    const daemonPid = (await status()).daemon.pid;

    // The trigger: the daemon's own event stream; the kill lands a few ms after the event.
    const events = await ControlClient.connect(socketPath);
    let killed = false;
    const kill = () => {
      if (killed) return;
      killed = true;
      try {
        process.kill(daemonPid, `SIGKILL`);
      } catch {
        // already gone
      }
    };
    const triggers: Record<CrashPhase, (message: string, data: Record<string, unknown>) => boolean> = {
      'before-spawn': (message, data) => message === `deploy starting` && data.releaseId === `r2`,
      'health-check': (message, data) => message === `process started` && data.releaseId === `r2` && data.id === `web`,
      'after-switch': (message, data) => message === `traffic switched` && data.releaseId === `r2`,
      'drain': () => false,
      'restart-drain': (message) => message === `process replaced`,
      'hold-drain': (message, data) => message === `switch hold started` && data.releaseId === `r2`,
      'hold-start': (message, data) => message === `process started` && data.releaseId === `r2` && data.id === `web`,
      'canary': (message, data) => message === `canary started` && data.releaseId === `r2`,
    };
    const stream = events.call(`events`, {follow: true, limit: 1}, {onProgress: (frame) => {
      const event = frame.event as {message?: string; data?: Record<string, unknown>} | undefined;
      if (event?.message !== undefined && triggers[phase](event.message, event.data ?? {})) kill();
    }}).catch(() => undefined);

    let acknowledged = false;
    if (phase === `drain` || phase === `restart-drain` || phase === `hold-drain`) {
      // A slow request keeps the old web process draining.
      const slow = httpGet(proxyPort, `/slow?ms=1500`).catch(() => undefined);
      const webEvents = path.join(dir, `web-events.jsonl`);
      await waitFor(() => fs.existsSync(webEvents) && fs.readFileSync(webEvents, `utf8`).includes(`"slow request"`), {timeoutMs: 10_000, what: `the slow request to reach the old web process`});
      if (phase === `drain`) {
        const run = await deploy(`r2`);
        acknowledged = run.code === 0;
        if (!acknowledged) details.push(`the r2 deploy failed before the kill: ${run.stdout}${run.stderr}`);
        kill();
      } else if (phase === `hold-drain`) {
        acknowledged = (await deploy(`r2`)).code === 0;
      } else {
        const run = await rollbridge([`restart`, `--process`, `web`, `--json`]);
        acknowledged = run.code === 0;
      }
      await slow;
    } else {
      const run = await deploy(`r2`);
      acknowledged = run.code === 0;
    }
    await waitFor(() => !isAlive(daemonPid), {timeoutMs: 10_000, what: `the daemon to die`});
    events.close();
    await stream;

    await ensureDaemon();
    const restored = await status();
    const answer = await httpGet(proxyPort, `/release`, 5_000).catch((error: unknown) => `failed: ${String(error)}`);
    const servedAfterRestart = answer.trim() === restored.activeReleaseId;
    if (!servedAfterRestart) details.push(`right after the restart the proxy answered "${answer.trim()}", status says ${restored.activeReleaseId} is active`);
    let undone = 0;
    if (acknowledged && phase !== `restart-drain` && restored.activeReleaseId !== `r2`) {
      undone = 1;
      details.push(`the acknowledged deploy of r2 is undone: the restarted daemon serves ${restored.activeReleaseId}`);
    }
    const final = await deploy(`r3`);
    if (final.code !== 0) details.push(`the deploy after the restart failed: ${final.stdout}${final.stderr}`);
    // Quiet: no release draining any more, so every process left is one that should run.
    const settled = await waitFor(async () => {
      const current = await status();
      return current.releases.every((entry) => entry.state !== `draining` && entry.state !== `starting`) ? current : null;
    }, {timeoutMs: 20_000, what: `the previous releases to finish draining`});
    const served = (await httpGet(proxyPort, `/release`)).trim();
    const proxyMismatch = served !== settled.activeReleaseId;
    if (proxyMismatch) details.push(`the proxy serves ${served}, status says ${settled.activeReleaseId}`);
    if (settled.activeReleaseId !== `r3` && final.code === 0) {
      undone += 1;
      details.push(`the acknowledged deploy of r3 is undone: active ${settled.activeReleaseId}`);
    }

    const supervised = new Set<number>();
    for (const entry of settled.releases) for (const managed of entry.processes) if (managed.pid) supervised.add(managed.pid);
    for (const entry of [...settled.services, ...settled.singletons]) if (entry.process.pid) supervised.add(entry.process.pid);
    const apps = appProcesses(application);
    let unsupervised = 0;
    const perProcessId = new Map<string, number>();
    for (const app of apps) {
      if (!supervised.has(app.pid) && !supervised.has(app.pgid)) {
        unsupervised += 1;
        details.push(`unsupervised: pid ${app.pid} (${app.processId} of release ${app.releaseId})`);
      }
      if (app.pid === app.pgid) perProcessId.set(app.processId, (perProcessId.get(app.processId) ?? 0) + 1);
    }
    let duplicates = 0;
    for (const id of [`beacon`, `scheduler`]) {
      const count = perProcessId.get(id) ?? 0;
      if (count > 1) {
        duplicates += count - 1;
        details.push(`${count} copies of ${id}`);
      }
    }
    // One web process at the end (the lock makes a second copy impossible in the hold phases anyway).
    const webs = perProcessId.get(`web`) ?? 0;
    if (webs > 1) {
      duplicates += webs - 1;
      details.push(`${webs} copies of web`);
    }
    return {phase, killed, acknowledged, activeAfterRestart: restored.activeReleaseId, unsupervised, duplicates, undone, proxyMismatch, servedAfterRestart, finalDeployOk: final.code === 0, details};
  } finally {
    const client = await ControlClient.connect(socketPath).catch(() => null);
    await client?.call(`shutdown`, {}).catch(() => undefined);
    client?.close();
    await waitFor(() => appProcesses(application).length === 0, {timeoutMs: 10_000, what: `the app processes to stop`}).catch(() => undefined);
    for (const app of appProcesses(application)) {
      try {
        process.kill(-app.pgid, `SIGKILL`);
      } catch {
        // gone
      }
    }
  }
}

/** Every live process started for `application` (ROLLBRIDGE_APPLICATION in its environment). */
export function appProcesses(application: string): Array<{pid: number; pgid: number; processId: string; releaseId: string}> {
  const found: Array<{pid: number; pgid: number; processId: string; releaseId: string}> = [];
  for (const pid of listProcessIds()) {
    if (pid === process.pid || readEnvironmentVariable(pid, `ROLLBRIDGE_APPLICATION`) !== application) continue;
    const stat = readProcStat(pid);
    if (stat === null || stat.state === `Z` || stat.state === `X`) continue;
    found.push({pid, pgid: stat.pgrp, processId: readEnvironmentVariable(pid, `ROLLBRIDGE_PROCESS_ID`) ?? `?`, releaseId: readEnvironmentVariable(pid, `ROLLBRIDGE_RELEASE_ID`) ?? `?`});
  }
  return found;
}

function isAlive(pid: number): boolean {
  const stat = readProcStat(pid);
  return stat !== null && stat.state !== `Z` && stat.state !== `X`;
}

function runCli(cli: CrashCli, args: string[], cwd: string): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    const child = spawn(cli.file, [...cli.prefixArgs, ...args], {cwd, stdio: [`ignore`, `pipe`, `pipe`]});
    let stdout = ``;
    let stderr = ``;
    child.stdout.setEncoding(`utf8`).on(`data`, (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding(`utf8`).on(`data`, (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill(`SIGKILL`), 60_000);
    child.once(`close`, (code) => {
      clearTimeout(timer);
      resolve({code: code ?? 1, stdout, stderr});
    });
  });
}

function httpGet(port: number, pathname: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get({host: `127.0.0.1`, port, path: pathname, agent: false, timeout: timeoutMs}, (response) => {
      let body = ``;
      response.setEncoding(`utf8`).on(`data`, (chunk: string) => (body += chunk)).on(`end`, () => resolve(body)).on(`error`, reject);
    });
    request.on(`error`, reject);
    request.on(`timeout`, () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
  });
}

function readTail(file: string): string {
  try {
    return fs.readFileSync(file, `utf8`).split(`\n`).slice(-15).join(`\n`);
  } catch {
    return ``;
  }
}
