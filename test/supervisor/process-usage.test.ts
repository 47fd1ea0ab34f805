import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {readProcStat} from '../../src/system/proc.ts';
import {ProcessUsageSampler} from '../../src/supervisor/process-usage.ts';
import type {SampledProcess} from '../../src/supervisor/process-usage.ts';
import {killQuietly} from '../helpers/processes.ts';
import {waitFor} from '../helpers/wait-for.ts';

/** A real process group led by `sh -c script`, described as the sampler sees a running ManagedProcess. */
function startGroup(t: TestContext, script: string): SampledProcess {
  const child = spawn(`/bin/sh`, [`-c`, script], {detached: true, stdio: `ignore`});
  const pid = child.pid as number;
  t.after(() => killQuietly(pid));
  return {state: `running`, pgid: pid, startTime: readProcStat(pid)?.startTime, startedAt: Date.now()};
}

test(`measures RSS and CPU per process group: over the lifetime first, then since the previous sample`, async (t) => {
  const busy = startGroup(t, `while :; do :; done`);
  const idle = startGroup(t, `exec sleep 30`);
  const stopped: SampledProcess = {state: `stopped`, pgid: undefined, startTime: undefined, startedAt: undefined};
  const sampler = new ProcessUsageSampler();

  // Until the busy loop has used a measurable amount of CPU.
  const first = await waitFor(() => {
    const usage = sampler.sample([busy, idle, stopped]);
    return (usage.get(busy)?.cpuPercent ?? 0) > 0 ? usage : undefined;
  }, {what: `the busy loop's first CPU ticks`});
  assert.equal(first.has(stopped), false);
  for (const sampled of [busy, idle]) {
    const usage = first.get(sampled);
    assert.ok(usage && usage.rssBytes > 0, JSON.stringify(usage));
    // The first sample of a process covers its life so far.
    assert.ok(usage.cpuWindowMs <= Date.now() - (sampled.startedAt ?? 0) + 1, JSON.stringify(usage));
  }
  assert.equal(first.get(idle)?.cpuPercent, 0);

  const previousAt = Date.now();
  // A later call at least 0.5 s on measures the window since the last one.
  const later = await waitFor(() => {
    const usage = sampler.sample([busy, idle], Date.now());
    return (usage.get(busy)?.cpuWindowMs ?? 0) >= 500 ? usage : undefined;
  }, {what: `a window of 0.5 s`, timeoutMs: 5_000});
  const busyUsage = later.get(busy);
  assert.ok(busyUsage && busyUsage.cpuWindowMs < Date.now() - previousAt + 1_000, JSON.stringify(busyUsage));
  assert.ok(busyUsage.cpuPercent > (later.get(idle)?.cpuPercent ?? 0), JSON.stringify([...later.values()]));
});
