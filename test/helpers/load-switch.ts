// The on/off switch of a test's load loop (`while (load.on()) …`). A loop must end even when the test
// fails before its own `load.stop()`: the switch turns off when the test ends (t.after) and after maxMs,
// so a failed assertion can never leave a loop reconnecting forever and the test file hanging.
import type {TestContext} from 'node:test';

export type LoadSwitch = {on: () => boolean; stop: () => void};

export function loadSwitch(t: TestContext, maxMs = 120_000): LoadSwitch {
  const deadline = Date.now() + maxMs;
  let stopped = false;
  const load: LoadSwitch = {on: () => !stopped && Date.now() < deadline, stop: () => void (stopped = true)};
  t.after(load.stop);
  return load;
}
