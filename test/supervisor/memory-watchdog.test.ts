import assert from 'node:assert/strict';
import test from 'node:test';
import {Logger} from '../../src/log/logger.ts';
import type {LogRecord} from '../../src/log/logger.ts';
import {ManagedProcess} from '../../src/supervisor/managed-process.ts';
import type {ProcessSpec} from '../../src/supervisor/managed-process.ts';
import {MemoryWatchdog} from '../../src/supervisor/memory-watchdog.ts';
import {waitFor} from '../helpers/wait-for.ts';

const MB = 1024 * 1024;

/** A real process whose memory samples are counted (the watchdog's seam into the process). */
class CountingProcess extends ManagedProcess {
  samples: number[] = [];
  override recordMemory(sample: {rssBytes: number; children: Array<{command: string; pid: number; rssBytes?: number}>} | undefined): void {
    if (sample) this.samples.push(sample.rssBytes);
    super.recordMemory(sample);
  }
}

function spec(command: string): ProcessSpec {
  return {
    id: `hog`, processId: `hog`, command, cwd: process.cwd(), env: {PATH: process.env.PATH ?? ``}, port: undefined,
    stopSignal: `SIGTERM`, gracefulStopMs: 2_000, lifecycle: {quietCommand: undefined, drainCommand: undefined, stopCommand: undefined, drainTimeoutMs: 0},
    restart: {maxRestarts: 0, windowMs: 0, backoffFactor: 1, maxDelayMs: 0}, restartDelayMs: 1_000, outputLines: 10,
  };
}

test(`warns once while the group stays above warnBytes, and calls onLimit above limitBytes`, async (t) => {
  const records: LogRecord[] = [];
  const log = new Logger({sinks: [(record) => records.push(record)]});
  const managed = new CountingProcess(spec(`exec "${process.execPath}" -e "globalThis.b = Buffer.alloc(40 * 1024 * 1024, 1); setInterval(() => {}, 1000)"`), {log, shouldRestart: () => false});
  t.after(() => managed.stop());
  await managed.start(`manual`);
  const limits: number[] = [];
  const watchdog = new MemoryWatchdog({process: managed, memory: {limitBytes: 4096 * MB, warnBytes: 30 * MB, checkIntervalMs: 10}, log, onLimit: async (rss) => {
    limits.push(rss);
  }});
  t.after(() => watchdog.stop());
  watchdog.start();
  await waitFor(() => managed.samples.filter((rss) => rss > 30 * MB).length >= 10, {what: `ten samples above warnBytes`});
  assert.equal(records.filter((record) => record.msg === `memory warning`).length, 1);
  assert.equal(limits.length, 0);
  assert.ok((managed.status().rssBytes ?? 0) > 30 * MB);

  const strict = new MemoryWatchdog({process: managed, memory: {limitBytes: 30 * MB, warnBytes: 0, checkIntervalMs: 10}, log, onLimit: async (rss) => {
    limits.push(rss);
  }});
  t.after(() => strict.stop());
  strict.start();
  await waitFor(() => limits.length >= 1, {what: `onLimit`});
  assert.ok((limits[0] ?? 0) > 30 * MB);
  assert.ok(records.some((record) => record.msg === `memory limit exceeded` && record.limitBytes === 30 * MB));
});
