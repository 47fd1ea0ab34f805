import assert from 'node:assert/strict';
import {test} from 'node:test';
import {DAEMON_ENV_ADDED, DAEMON_MALLOC_ENV, DAEMON_V8_FLAGS, childBaseEnv, daemonExecutable, daemonLaunchEnv} from '../../src/config/daemon-env.ts';

const ALL = Object.keys(DAEMON_MALLOC_ENV).join(`,`);

test(`daemonLaunchEnv adds the malloc settings and lists them; childBaseEnv gives back the caller's environment`, () => {
  const caller = {PATH: `/usr/bin`, HOME: `/root`};
  const launch = daemonLaunchEnv(caller);
  assert.deepEqual(launch, {...caller, ...DAEMON_MALLOC_ENV, [DAEMON_ENV_ADDED]: ALL});
  assert.deepEqual(childBaseEnv(launch), caller);
  assert.deepEqual(caller, {PATH: `/usr/bin`, HOME: `/root`}, `the caller's object is not changed`);
});

test(`a variable the caller set is neither overridden nor listed, so the children keep it`, () => {
  const launch = daemonLaunchEnv({MALLOC_ARENA_MAX: `8`});
  assert.equal(launch.MALLOC_ARENA_MAX, `8`);
  assert.equal(launch[DAEMON_ENV_ADDED], `MALLOC_MMAP_THRESHOLD_,MALLOC_TRIM_THRESHOLD_`);
  assert.deepEqual(childBaseEnv(launch), {MALLOC_ARENA_MAX: `8`});
  assert.equal(daemonLaunchEnv({...DAEMON_MALLOC_ENV})[DAEMON_ENV_ADDED], undefined, `nothing added, no list`);
});

test(`a successor started from a daemon's environment gets the same settings and the same list`, () => {
  const first = daemonLaunchEnv({MALLOC_TRIM_THRESHOLD_: `0`});
  assert.deepEqual(daemonLaunchEnv(first), first);
  assert.deepEqual(childBaseEnv(daemonLaunchEnv(first)), {MALLOC_TRIM_THRESHOLD_: `0`});
});

test(`the list removes only the malloc settings: a forged one cannot take PATH from the children`, () => {
  const env = {PATH: `/usr/bin`, MALLOC_ARENA_MAX: `2`, [DAEMON_ENV_ADDED]: `PATH,MALLOC_ARENA_MAX,HOME`};
  assert.deepEqual(childBaseEnv(env), {PATH: `/usr/bin`});
  assert.equal(childBaseEnv({PATH: `/usr/bin`}).PATH, `/usr/bin`);
});

test(`daemonExecutable gives the standalone binary the daemon's V8 flags through --node-options; node running the sources gets none`, () => {
  assert.deepEqual(DAEMON_V8_FLAGS, [`--no-maglev`]);
  assert.deepEqual(daemonExecutable({file: `/usr/local/bin/rollbridge`, args: [], standalone: true}), {file: `/usr/local/bin/rollbridge`, args: [`--node-options=--no-maglev`]});
  const sources = {file: `/usr/bin/node`, args: [`--enable-source-maps`, `/srv/rollbridge/src/main.ts`], standalone: false};
  assert.deepEqual(daemonExecutable(sources), {file: `/usr/bin/node`, args: [`--enable-source-maps`, `/srv/rollbridge/src/main.ts`]});
  assert.notEqual(daemonExecutable(sources).args, sources.args, `a copy: the caller's arguments are not shared`);
});
