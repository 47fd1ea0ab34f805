// Part 3, websockets: 200 WebSockets opened through the proxy (in the load process) and pinged every
// 200 ms across a deploy; each must keep answering with the old release's prefix until the drain deadline,
// then be closed with 1001, the closes spread over the jitter window; sockets opened after the switch must
// reach the new release. Run with an app that closes its sockets itself on SIGTERM (graceful) and with one
// that just exits (immediate), so only the proxy can send the 1001. Then ~10,000 idle WebSockets across a
// deploy with the daemon's RSS.
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {BenchDaemon} from './bench-daemon.ts';
import {webConfig} from './bench-configs.ts';
import {BenchWebSocket} from './bench-web-socket.ts';
import type {SocketRecord, WsLoadResult} from './load-client.ts';
import {LoadProcess} from './load-process.ts';
import {check} from './part-result.ts';
import type {BenchContext, PartResult} from './part-result.ts';
import {sampleRss} from './process-usage.ts';
import type {RssSampler} from './process-usage.ts';
import {formatCount, formatMb} from './stats.ts';

const SOCKETS = 200;
const PING_MS = 200;
const DRAIN_TIMEOUT_MS = 3_000;
const JITTER_MS = 1_000;
const NEW_SOCKETS = 20;
/** A ping counts as answered in time when its reply came within this long. */
const ANSWER_WITHIN_MS = 600;
/** Close times may start this early (timer granularity) and end this late (after the jitter window). */
const EARLY_TOLERANCE_MS = 100;
const LATE_TOLERANCE_MS = 500;
const MANY_SOCKETS = 10_000;
const MANY_DRAIN_TIMEOUT_MS = 5_000;
const MANY_RSS_GOAL_MB = 300;

type SocketVerdict = {survived: boolean; answered: boolean; onlyOldRelease: boolean; closeCode: number | null; closeOffsetMs: number | null};

export async function benchWebSockets(ctx: BenchContext, result: PartResult): Promise<void> {
  const rows: string[][] = [];
  for (const mode of [`immediate`, `graceful`] as const) rows.push(await runDrain(ctx, result, mode));
  result.tables.unshift({
    title: `${SOCKETS} WebSockets pinged every ${PING_MS} ms across a deploy; proxy.drainTimeoutMs ${DRAIN_TIMEOUT_MS}, wsCloseJitterMs ${JITTER_MS}; close offsets are from the drain deadline (switch + ${DRAIN_TIMEOUT_MS} ms)`,
    header: [`APP_SHUTDOWN`, `opened`, `answered with the old release until the deadline`, `closed early`, `close codes`, `close offset min / max ms`, `spread ms`, `new sockets on the new release`],
    rows,
  });
  await runMany(ctx, result);
  result.notes.push(`a socket survives when it was not closed before the deadline (−${EARLY_TOLERANCE_MS} ms), every ping was answered within ${ANSWER_WITHIN_MS} ms up to its close, and every reply carried the old release's prefix`);
  result.notes.push(`the switch time is the daemon's "traffic switched" log record; the client's close time is when the close frame arrived`);
}

function judge(record: SocketRecord, oldRelease: string, deadline: number, endedAt: number): SocketVerdict {
  const closedAt = record.t ?? endedAt;
  const survived = closedAt >= deadline - EARLY_TOLERANCE_MS;
  const answered = record.l !== null && record.l >= Math.min(closedAt, deadline) - ANSWER_WITHIN_MS && (record.u === null || closedAt - record.u < ANSWER_WITHIN_MS);
  const onlyOldRelease = Object.keys(record.r).every((prefix) => prefix === oldRelease);
  return {survived, answered, onlyOldRelease, closeCode: record.c, closeOffsetMs: record.t === null ? null : record.t - deadline};
}

async function runDrain(ctx: BenchContext, result: PartResult, mode: `graceful` | `immediate`): Promise<string[]> {
  const dir = path.join(ctx.workDir, mode[0]!);
  fs.mkdirSync(dir);
  const daemon = await BenchDaemon.start({
    cli: ctx.cli, dir,
    config: webConfig(`rb-bench-ws`, {env: {APP_SHUTDOWN: mode}, proxy: {drainTimeoutMs: DRAIN_TIMEOUT_MS, wsCloseJitterMs: JITTER_MS, forceStopTimeoutMs: 3_000}, health: {intervalMs: 25}}),
  });
  let load: LoadProcess | null = null;
  const fresh: BenchWebSocket[] = [];
  const [oldRelease, newRelease] = [`${mode[0]}old`, `${mode[0]}new`];
  try {
    const first = await daemon.deploy(oldRelease);
    if (!first.ok) throw new Error(`The first deploy failed: ${first.error}`);
    load = LoadProcess.start([`ws`, `--port`, String(daemon.proxyPort), `--sockets`, String(SOCKETS), `--ping-ms`, String(PING_MS), `--max-ms`, `60000`]);
    const open = await load.waitFor<{event: `open`; opened: number; openFailures: Record<string, number>}>(`open`, 30_000);
    await delay(1_000);
    const deploy = await daemon.deploy(newRelease);
    if (!deploy.ok) throw new Error(`The deploy under WebSockets failed: ${deploy.error}`);
    const loggedSwitch = daemon.logTime(`traffic switched`, {releaseId: newRelease});
    const switchAt = Number.isFinite(loggedSwitch) ? loggedSwitch : deploy.startedAt + deploy.wallMs;
    const deadline = switchAt + DRAIN_TIMEOUT_MS;
    let newOk = 0;
    const newWrong: string[] = [];
    for (let i = 0; i < NEW_SOCKETS; i++) {
      try {
        const ws = await BenchWebSocket.connect(daemon.proxyPort);
        fresh.push(ws);
        const reply = await ws.roundTrip(`new${i}`);
        if (reply.startsWith(`${newRelease}:`)) newOk++;
        else newWrong.push(reply);
      } catch (error) {
        newWrong.push((error as Error).message);
      }
    }
    for (const ws of fresh) ws.close();
    const ws = await load.waitFor<WsLoadResult & {event: `result`}>(`result`, DRAIN_TIMEOUT_MS + JITTER_MS + 30_000);
    load = null;
    const verdicts = ws.sockets.map((record) => judge(record, oldRelease, deadline, ws.endedAt));
    const survived = verdicts.filter((v) => v.survived && v.answered && v.onlyOldRelease).length;
    const closedEarly = verdicts.filter((v) => !v.survived).length;
    const codes: Record<string, number> = {};
    for (const v of verdicts) codes[String(v.closeCode ?? `still open`)] = (codes[String(v.closeCode ?? `still open`)] ?? 0) + 1;
    const offsets = verdicts.flatMap((v) => (v.closeOffsetMs === null ? [] : [v.closeOffsetMs]));
    const minOffset = offsets.length ? Math.min(...offsets) : Number.NaN;
    const maxOffset = offsets.length ? Math.max(...offsets) : Number.NaN;
    const spread = maxOffset - minOffset;
    const codeText = Object.entries(codes).map(([code, count]) => `${code} × ${count}`).join(`, `);
    ctx.log(`  ${mode}: ${open.opened}/${SOCKETS} open; ${survived} answered with ${oldRelease} until the deadline; ${closedEarly} closed early; codes ${codeText}; close offsets ${minOffset} … ${maxOffset} ms (spread ${spread} ms); new sockets on ${newRelease}: ${newOk}/${NEW_SOCKETS}`);

    const label = `APP_SHUTDOWN=${mode}`;
    result.checks.push(check(`WebSockets answering with the old release until the drain deadline, ${label}`, `${survived} of ${SOCKETS}`, `100%`, survived === SOCKETS));
    result.checks.push(check(`WebSockets closed with 1001, ${label}`, codeText, `all 1001`, (codes[`1001`] ?? 0) === SOCKETS));
    const inWindow = offsets.length === SOCKETS && minOffset >= -EARLY_TOLERANCE_MS && maxOffset <= JITTER_MS + LATE_TOLERANCE_MS;
    result.checks.push(check(`close times spread over the jitter window, ${label}`, `${minOffset} … ${maxOffset} ms after the deadline (spread ${spread} ms)`, `within −${EARLY_TOLERANCE_MS} … ${JITTER_MS + LATE_TOLERANCE_MS} ms, spread ≥ ${JITTER_MS / 2} ms`, inWindow && spread >= JITTER_MS / 2));
    result.checks.push(check(`new WebSockets after the switch reach the new release, ${label}`, `${newOk} of ${NEW_SOCKETS}`, `all`, newOk === NEW_SOCKETS));
    if (open.opened < SOCKETS) result.findings.push(`${label}: only ${open.opened} of ${SOCKETS} WebSockets opened: ${JSON.stringify(open.openFailures)}`);
    if (survived < SOCKETS) {
      const foreign = verdicts.filter((v) => !v.onlyOldRelease).length;
      const silent = verdicts.filter((v) => v.survived && !v.answered).length;
      const earlyCodes = ws.sockets.filter((_, i) => !verdicts[i]!.survived).map((r) => `${r.c}@${r.t === null ? `?` : r.t - deadline}ms`).slice(0, 5);
      result.findings.push(`${label}: ${SOCKETS - survived} of ${SOCKETS} WebSockets did not last until the drain deadline: ${closedEarly} closed early (e.g. code@offset ${earlyCodes.join(`, `)}), ${silent} stopped answering pings, ${foreign} got replies from another release`);
    }
    if ((codes[`1001`] ?? 0) < SOCKETS) result.findings.push(`${label}: close codes ${codeText} (expected 1001 for all)`);
    if (newOk < NEW_SOCKETS) result.findings.push(`${label}: new WebSockets after the switch: ${newOk} of ${NEW_SOCKETS} reached ${newRelease}; others: ${newWrong.slice(0, 3).join(` | `)}`);
    const problems = daemon.problemLines(switchAt - 1_000);
    if (problems.length > 0) result.notes.push(`${label}: daemon warn/error lines: ${problems.slice(0, 3).join(` `)}`);
    return [mode, `${open.opened}`, `${survived}`, `${closedEarly}`, codeText, `${minOffset} / ${maxOffset}`, String(spread), `${newOk}/${NEW_SOCKETS}`];
  } finally {
    for (const ws of fresh) ws.socket.destroy();
    await load?.kill();
    const forced = await daemon.stop();
    if (forced.length > 0) result.findings.push(`websockets (${mode}), stopping the daemon: ${forced.join(`; `)}`);
  }
}

function hardOpenFilesLimit(): number {
  try {
    const value = execFileSync(`bash`, [`-c`, `ulimit -Hn`], {encoding: `utf8`}).trim();
    return value === `unlimited` ? 1_048_576 : Number(value);
  } catch {
    return 1024;
  }
}

async function runMany(ctx: BenchContext, result: PartResult): Promise<void> {
  // The daemon holds two descriptors per proxied WebSocket (client and app side), and `ulimit -n` can only
  // be raised up to the hard limit.
  const hardLimit = hardOpenFilesLimit();
  const nofile = Math.min(hardLimit, 65_536);
  const count = Math.min(MANY_SOCKETS, Math.floor((nofile - 500) / 2 / 250) * 250);
  if (count < MANY_SOCKETS) result.notes.push(`idle WebSockets: ${formatCount(count)} instead of ${formatCount(MANY_SOCKETS)}, because the hard open-files limit here is ${hardLimit} and the daemon needs two descriptors per proxied WebSocket`);
  const dir = path.join(ctx.workDir, `many`);
  fs.mkdirSync(dir);
  const daemon = await BenchDaemon.start({
    cli: ctx.cli, dir, nofile,
    config: webConfig(`rb-bench-ws-many`, {env: {APP_SHUTDOWN: `immediate`}, proxy: {drainTimeoutMs: MANY_DRAIN_TIMEOUT_MS, wsCloseJitterMs: JITTER_MS, forceStopTimeoutMs: 3_000}, health: {intervalMs: 25}}),
  });
  let load: LoadProcess | null = null;
  let sampler: RssSampler | null = null;
  try {
    const first = await daemon.deploy(`mold`);
    if (!first.ok) throw new Error(`The first deploy failed: ${first.error}`);
    const rssIdle = sampleRss(daemon.pid).stop()[0] ?? Number.NaN;
    sampler = sampleRss(daemon.pid);
    load = LoadProcess.start([`ws`, `--port`, String(daemon.proxyPort), `--sockets`, String(count), `--ping-ms`, `0`, `--max-ms`, `180000`, `--concurrency`, `200`], {nofile});
    const openStartedAt = Date.now();
    const open = await load.waitFor<{event: `open`; opened: number; openFailures: Record<string, number>}>(`open`, 120_000);
    const openMs = Date.now() - openStartedAt;
    load.send(`ping-all`);
    const before = await load.waitFor<{event: `pinged`; byPrefix: Record<string, number>; unanswered: number}>(`pinged`, 30_000);
    const rssOpen = sampler.peak();
    const deploy = await daemon.deploy(`mnew`);
    if (!deploy.ok) throw new Error(`The deploy under ${count} WebSockets failed: ${deploy.error}`);
    const loggedSwitch = daemon.logTime(`traffic switched`, {releaseId: `mnew`});
    const deadline = (Number.isFinite(loggedSwitch) ? loggedSwitch : deploy.startedAt + deploy.wallMs) + MANY_DRAIN_TIMEOUT_MS;
    load.send(`ping-all`);
    const after = await load.waitFor<{event: `pinged`; byPrefix: Record<string, number>; unanswered: number; ms: number}>(`pinged`, 30_000);
    const ws = await load.waitFor<WsLoadResult & {event: `result`}>(`result`, MANY_DRAIN_TIMEOUT_MS + JITTER_MS + 60_000);
    load = null;
    const peak = Math.max(...sampler.stop());
    sampler = null;
    const survived = ws.sockets.filter((record) => (record.t ?? ws.endedAt) >= deadline - EARLY_TOLERANCE_MS).length;
    const closed1001 = ws.sockets.filter((record) => record.c === 1001).length;
    const oldAnswers = after.byPrefix[`mold`] ?? 0;
    ctx.log(`  idle: ${open.opened}/${count} open in ${openMs} ms; after the switch ${oldAnswers} answered from the old release (${after.unanswered} unanswered); ${survived} lasted until the deadline; ${closed1001} closed with 1001; daemon RSS idle ${formatMb(rssIdle)}, with the sockets ${formatMb(rssOpen)}, peak ${formatMb(peak)}`);
    result.tables.push({
      title: `${formatCount(count)} idle WebSockets across a deploy (APP_SHUTDOWN=immediate, drainTimeoutMs ${MANY_DRAIN_TIMEOUT_MS}, wsCloseJitterMs ${JITTER_MS})`,
      header: [`opened`, `answered before the deploy`, `answered by the old release after the switch`, `lasted until the deadline`, `closed with 1001`, `daemon RSS before / open / peak`],
      rows: [[`${open.opened} (in ${(openMs / 1000).toFixed(1)} s)`, String(before.byPrefix[`mold`] ?? 0), `${oldAnswers} (${after.unanswered} unanswered)`, String(survived), String(closed1001), `${formatMb(rssIdle)} / ${formatMb(rssOpen)} / ${formatMb(peak)}`]],
    });
    const all = open.opened === count && oldAnswers === count && survived === count && closed1001 === count;
    result.checks.push(check(`${formatCount(count)} idle WebSockets survive a deploy (answer the old release, last until the deadline, 1001)`, `${open.opened} opened, ${oldAnswers} answered after the switch, ${survived} lasted, ${closed1001} × 1001`, `all`, all));
    result.checks.push(check(`daemon RSS with ${formatCount(count)} WebSockets`, formatMb(peak), `≤ ${MANY_RSS_GOAL_MB} MB`, peak <= MANY_RSS_GOAL_MB * 1024 * 1024));
    if (!all) result.findings.push(`${formatCount(count)} idle WebSockets: opened ${open.opened} (failures ${JSON.stringify(open.openFailures)}), answered after the switch ${oldAnswers} (${JSON.stringify(after.byPrefix)}, ${after.unanswered} unanswered), lasted until the deadline ${survived}, 1001 ${closed1001}`);
    const problems = daemon.problemLines();
    if (problems.length > 0) result.notes.push(`idle WebSockets: daemon warn/error lines (${problems.length}): ${problems.slice(0, 3).join(` `)}`);
  } finally {
    sampler?.stop();
    await load?.kill();
    const forced = await daemon.stop();
    if (forced.length > 0) result.findings.push(`idle WebSockets, stopping the daemon: ${forced.join(`; `)}`);
  }
}
