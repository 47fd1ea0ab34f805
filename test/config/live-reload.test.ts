import assert from 'node:assert/strict';
import {test} from 'node:test';
import {diffLiveReload} from '../../src/config/live-reload.ts';
import {validateConfig} from '../../src/config/schema.ts';
import type {Config} from '../../src/config/types.ts';

function build(mutate: (raw: {application?: string; control?: Record<string, unknown>; statePath?: string; proxy: Record<string, unknown>; processes: Array<Record<string, unknown>>}) => void = () => {}): Config {
  const raw = {
    proxy: {host: `127.0.0.1`, port: 8182},
    processes: [
      {id: `web`, command: `node web.js`, policy: `proxied`, port: {from: 4000, to: 4009}},
      {id: `worker`, command: `node worker.js`, replicas: 2},
      {id: `beacon`, command: `node beacon.js`, policy: `service`, port: 4100},
    ],
  };
  mutate(raw);
  const {config, issues} = validateConfig(raw, {configPath: `/srv/shop/rollbridge.js`});
  assert.deepEqual(issues, []);
  assert.ok(config);
  return config;
}

test(`accepts changes that apply live: commands, env, health, timeouts, retention`, () => {
  const next = build((raw) => {
    raw.processes[0]![`command`] = `node web.js --new`;
    raw.processes[0]![`env`] = {FEATURE: `on`};
    raw.processes[0]![`health`] = {path: `/up`};
    raw.processes[1]![`gracefulStopMs`] = `indefinite`;
    raw.proxy[`drainTimeoutMs`] = 5_000;
    raw.proxy[`forceStopTimeoutMs`] = 1_000;
  });
  assert.deepEqual(diffLiveReload(build(), next), []);
});

test(`lists listener, socket and state changes that need a daemon restart`, () => {
  const next = build((raw) => {
    raw.application = `shop2`;
    raw.control = {path: `/run/shop.sock`, mode: `660`};
    raw.statePath = `/var/lib/shop/state.json`;
    raw.proxy[`host`] = `0.0.0.0`;
    raw.proxy[`port`] = 9000;
  });
  assert.deepEqual(diffLiveReload(build(), next), [`application`, `control.path`, `control.mode`, `statePath`, `proxy.host`, `proxy.port`]);
});

test(`detects an implicit upstream host change when only the proxy host changes`, () => {
  const next = build((raw) => {
    raw.proxy[`host`] = `10.0.0.5`;
  });
  assert.deepEqual(diffLiveReload(build(), next), [`proxy.host`, `proxy.upstreamHost`]);
});

test(`lists topology changes by process id`, () => {
  const next = build((raw) => {
    raw.processes[0]![`port`] = {from: 4000, to: 4019};
    raw.processes[1]![`replicas`] = 3;
    raw.processes[2]![`deployStrategy`] = `handoff`;
    raw.processes[2]![`port`] = {from: 4100, to: 4101};
  });
  assert.deepEqual(diffLiveReload(build(), next), [`processes.web.port`, `processes.worker.replicas`, `processes.beacon.deployStrategy`, `processes.beacon.port`]);
});

test(`reports a removed, renamed or re-policied process`, () => {
  const removed = build((raw) => {
    raw.processes.pop();
  });
  assert.deepEqual(diffLiveReload(build(), removed), [`processes`, `processes.beacon`]);
  const renamed = build((raw) => {
    raw.processes[1]![`id`] = `jobs`;
  });
  assert.deepEqual(diffLiveReload(build(), renamed), [`processes.worker`]);
  const policy = build((raw) => {
    raw.processes[2]![`policy`] = `singleton`;
    delete raw.processes[2]![`port`];
  });
  assert.deepEqual(diffLiveReload(build(), policy), [`processes.beacon.policy`, `processes.beacon.port`]);
});

test(`refuses a change of metrics.listen or proxy.accessLog (the daemon's own listener and file)`, () => {
  const next = build((raw) => {
    (raw as Record<string, unknown>)[`metrics`] = {listen: 9464};
    raw.proxy[`accessLog`] = `/var/log/shop/access.log`;
  });
  assert.deepEqual(diffLiveReload(build(), next), [`metrics.listen`, `proxy.accessLog`]);
  assert.deepEqual(diffLiveReload(next, build((raw) => {
    (raw as Record<string, unknown>)[`metrics`] = {listen: `127.0.0.1:9464`};
    raw.proxy[`accessLog`] = {path: `/var/log/shop/access.log`, includeQuery: false};
  })), [], `the same settings spelled differently are no change`);
});
