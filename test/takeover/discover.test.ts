import assert from 'node:assert/strict';
import {test} from 'node:test';
import {validateParams} from '../../src/control/protocol.ts';
import {discoverLegacyProcesses, listRunningProcesses} from '../../src/takeover/discover.ts';
import type {DiscoverOptions} from '../../src/takeover/discover.ts';
import {resolveLegacyUser} from '../../src/takeover/legacy-user.ts';
import {readProcStat} from '../../src/system/proc.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {ESCAPEES_COMMAND, pidsWithArgs, requireScreen, startDetached, startScreenSession, uniqueName} from './legacy-fixtures.ts';

const me = resolveLegacyUser(undefined);

function options(overrides: Partial<DiscoverOptions>): DiscoverOptions {
  return {screens: [], matchers: [], uid: me.uid, user: me.name, ...overrides};
}

test(`finds a session's screen server, window process, children and its setsid and nohup escapees`, async (t) => {
  if (!requireScreen(t)) return;
  const name = uniqueName();
  const session = await startScreenSession(t, name, ESCAPEES_COMMAND, {cwd: createTempDir(t), processes: 4});
  const plan = await discoverLegacyProcesses(options({screens: [name]}));
  assert.deepEqual(plan.screens, [session]);
  assert.deepEqual(plan.user, me);
  const server = plan.processes.find((entry) => entry.pid === session.pid);
  assert.equal(server?.source, `screen ${session.id}`);
  assert.match(server.args, new RegExp(`^SCREEN -dmS ${name}`));
  const sleeps = plan.processes.filter((entry) => /^sleep 40[0-3]$/.test(entry.args));
  assert.deepEqual(sleeps.map((entry) => entry.args).sort(), [`sleep 400`, `sleep 401`, `sleep 402`, `sleep 403`]);
  // The setsid escapee was reparented away from the session: only its STY variable ties it to the session.
  const escapee = sleeps.find((entry) => entry.args === `sleep 401`);
  assert.notEqual(escapee?.ppid, session.pid);
  assert.equal(escapee?.source, `screen ${session.id}`);
  for (const entry of plan.processes) assert.equal(entry.startTime, readProcStat(entry.pid)?.startTime);
});

test(`takes only sessions whose name matches exactly, and every session sharing that name`, async (t) => {
  if (!requireScreen(t)) return;
  const dir = createTempDir(t);
  const name = uniqueName();
  const first = await startScreenSession(t, name, `exec sleep 300`, {cwd: dir});
  const second = await startScreenSession(t, name, `exec sleep 300`, {cwd: dir});
  const other = await startScreenSession(t, `${name}2`, `exec sleep 300`, {cwd: dir});
  const plan = await discoverLegacyProcesses(options({screens: [name]}));
  assert.deepEqual(plan.screens.map((session) => session.id).sort(), [first.id, second.id].sort());
  assert.ok(!plan.processes.some((entry) => entry.pid === other.pid));
  assert.ok(plan.warnings.some((warning) => warning.includes(`2 screen sessions are named "${name}"`)));
});

test(`a matcher takes processes whose command line holds every substring, and their descendants`, async (t) => {
  const marker = uniqueName(`rbm`);
  const parent = startDetached(t, `sleep 310 & sleep 311; wait`, [marker]);
  startDetached(t, `exec sleep 312`, [`${marker}-only-half`]);
  await waitFor(() => pidsWithArgs(`sleep 310`).length === 2 && pidsWithArgs(`sleep 311`).length === 2, {what: `the matched process's children`});
  const plan = await discoverLegacyProcesses(options({matchers: [{name: `app`, includes: [marker, `wait`]}]}));
  const matched = plan.processes.filter((entry) => entry.source === `matcher app`);
  assert.deepEqual(matched.map((entry) => entry.pid), [parent]);
  const children = plan.processes.filter((entry) => entry.source === `descendant of ${parent}`);
  assert.deepEqual(children.map((entry) => entry.args).sort(), [`sleep 310`, `sleep 311`]);
  assert.equal(plan.processes.length, 3);
});

test(`leaves processes of another uid alone and says so`, async (t) => {
  const marker = uniqueName(`rbm`);
  const pid = startDetached(t, `exec sleep 320`, [marker]);
  await waitFor(() => readProcStat(pid)?.comm === `sleep`, {what: `the exec`});
  const nobody = resolveLegacyUser(`nobody`);
  assert.notEqual(nobody.uid, me.uid);
  const plan = await discoverLegacyProcesses({screens: [], matchers: [{name: `app`, includes: [`sleep 320`]}], uid: nobody.uid, user: nobody.name});
  assert.deepEqual(plan.processes, []);
  assert.ok(plan.warnings.some((warning) => warning.startsWith(`Process ${pid} (sleep 320) matches matcher "app" but belongs to uid ${me.uid}`)));
});

test(`never takes this process, its ancestors or protected pids`, async (t) => {
  const marker = uniqueName(`rbm`);
  const protectedPid = startDetached(t, `sleep 330 & wait`, [marker]);
  await waitFor(() => pidsWithArgs(`sleep 330`).length === 2, {what: `the protected process's child`});
  const plan = await discoverLegacyProcesses(options({
    matchers: [{name: `self`, includes: [process.argv[1] ?? `discover.test.ts`]}, {name: `protected`, includes: [marker]}],
    protectPids: [protectedPid],
  }));
  const ancestors: number[] = [];
  for (let pid: number | undefined = process.pid; pid !== undefined && pid > 0; pid = readProcStat(pid)?.ppid) ancestors.push(pid);
  for (const entry of plan.processes) {
    assert.ok(!ancestors.includes(entry.pid), `took ancestor ${entry.pid} (${entry.args})`);
    assert.notEqual(entry.pid, protectedPid);
    assert.notEqual(entry.args, `sleep 330`);
  }
});

test(`lists a zombie descendant without counting it as running`, async (t) => {
  const marker = `${30_000 + Math.floor(Math.random() * 9_999)}`;
  // The shell's child exits at once; after the exec nobody reaps it, so it stays a zombie of `sleep`.
  const pid = startDetached(t, `sleep 0 & exec sleep ${marker}`);
  await waitFor(() => readProcStat(pid)?.comm === `sleep` && pidsWithArgs(`sleep ${marker}`).length === 1, {what: `the exec`});
  const plan = await waitFor(async () => {
    const candidate = await discoverLegacyProcesses(options({matchers: [{name: `app`, includes: [`sleep ${marker}`]}]}));
    return candidate.processes.some((entry) => entry.state === `Z`) ? candidate : null;
  }, {what: `the zombie child`});
  const zombie = plan.processes.find((entry) => entry.state === `Z`);
  assert.equal(zombie?.source, `descendant of ${pid}`);
  assert.deepEqual(listRunningProcesses(plan).map((entry) => entry.pid), [pid]);
});

test(`finds nothing for a configured session name that does not exist`, async () => {
  const plan = await discoverLegacyProcesses(options({screens: [uniqueName()]}));
  assert.deepEqual(plan.screens, []);
  assert.deepEqual(plan.processes, []);
  assert.deepEqual(plan.warnings, []);
});

test(`a discovered plan is valid takeover params for the control protocol`, async (t) => {
  if (!requireScreen(t)) return;
  const name = uniqueName();
  await startScreenSession(t, name, `exec sleep 300`, {cwd: createTempDir(t), processes: 1});
  const plan = await discoverLegacyProcesses(options({screens: [name]}));
  assert.equal(plan.processes.length, 2);
  assert.doesNotThrow(() => validateParams(`takeover`, {releasePath: `/srv/app/releases/1`, legacy: plan, forceStopTimeoutMs: 1_000}));
});
