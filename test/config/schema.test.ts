import assert from 'node:assert/strict';
import path from 'node:path';
import {test} from 'node:test';
import {getDefaultControlPath} from '../../src/config/paths.ts';
import {validateConfig} from '../../src/config/schema.ts';
import type {Config, ConfigIssue} from '../../src/config/types.ts';

const CONFIG_PATH = `/srv/shop/rollbridge.js`;

type RawProcess = Record<string, unknown>;

function web(overrides: RawProcess = {}): RawProcess {
  return {id: `web`, command: `node server.js`, policy: `proxied`, port: 3000, ...overrides};
}

function configWith(processes: RawProcess[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {proxy: {}, processes, ...extra};
}

function validConfig(raw: unknown): Config {
  const result = validateConfig(raw, {configPath: CONFIG_PATH});
  assert.deepEqual(result.issues, []);
  assert.ok(result.config);
  return result.config;
}

function issuesOf(raw: unknown): ConfigIssue[] {
  const result = validateConfig(raw, {configPath: CONFIG_PATH});
  assert.equal(result.config, null);
  for (const issue of result.issues) {
    assert.match(issue.message, /^[A-Z]/, `message starts with a capital: ${issue.message}`);
    assert.doesNotMatch(issue.message, /\.$/, `message has no final period: ${issue.message}`);
    assert.ok(issue.fix.length > 0);
  }
  return result.issues;
}

function issueAt(issues: ConfigIssue[], path: string): ConfigIssue {
  const issue = issues.find((entry) => entry.path === path);
  assert.ok(issue, `expected an issue at ${path}, got ${JSON.stringify(issues.map((entry) => entry.path))}`);
  return issue;
}

test(`returns a normalized config with every upstream default and no issues for a minimal config`, () => {
  const config = validConfig(configWith([web()]));
  assert.equal(config.configPath, CONFIG_PATH);
  assert.equal(config.application, `shop`);
  assert.deepEqual(config.control, {path: getDefaultControlPath(`shop`), mode: undefined, owner: undefined, group: undefined});
  assert.equal(config.proxy.host, `127.0.0.1`);
  assert.equal(config.proxy.port, 8182);
  assert.equal(config.proxy.upstreamHost, `127.0.0.1`);
  assert.equal(config.proxy.healthPath, `/ping`);
  assert.equal(config.proxy.drainTimeoutMs, 60_000);
  assert.equal(config.proxy.forceStopTimeoutMs, 10_000);
  assert.deepEqual(config.proxy.trustForwarded, [`loopback`]);
  assert.equal(config.proxy.maxHeaderBytes, 64 * 1024);
  assert.equal(config.proxy.wsCloseJitterMs, 1_000);
  assert.deepEqual(config.releaseRetention, {keep: 10, maxAgeMs: 0});
  assert.equal(config.statePath, undefined);
  assert.equal(config.legacyTakeover, undefined);
  const [process] = config.processes;
  assert.deepEqual(process, {
    id: `web`,
    command: `node server.js`,
    policy: `proxied`,
    deployStrategy: `persistent`,
    switch: `overlap`,
    holdTimeoutMs: 30_000,
    cwd: undefined,
    env: {},
    port: {from: 3000, to: 3000},
    health: {type: `http`, path: `/ping`, command: undefined, timeoutMs: 30_000, intervalMs: 250, startDelayMs: 0, probeTimeoutMs: 2_000, successThreshold: 1, liveness: null},
    stopSignal: `SIGTERM`,
    nonBlockingDrain: false,
    lifecycle: {quietCommand: undefined, drainCommand: undefined, stopCommand: undefined, drainTimeoutMs: 0},
    gracefulStopMs: 10_000,
    restartDelayMs: 1_000,
    restart: {maxRestarts: undefined, windowMs: 0, backoffFactor: 1, maxDelayMs: 0},
    memory: undefined,
    replicas: 1,
    outputLines: 50,
    readiness: null,
    dependsOn: [],
  });
});

test(`derives process defaults from the proxy section`, () => {
  const config = validConfig(configWith([web({health: {intervalMs: 100}})], {proxy: {healthPath: `/up`, healthTimeoutMs: 5_000, forceStopTimeoutMs: 2_500}}));
  const [process] = config.processes;
  assert.equal(process?.health?.path, `/up`);
  assert.equal(process?.health?.timeoutMs, 5_000);
  assert.equal(process?.health?.intervalMs, 100);
  assert.equal(process?.gracefulStopMs, 2_500);
});

test(`collects duplicate ids, "#" in ids, missing proxied ports and policy mistakes in one pass`, () => {
  const issues = issuesOf(configWith([
    web({port: undefined}),
    {id: `web`, command: `node other.js`},
    {id: `worker#1`, command: `node worker.js`, policy: `daemon`},
  ]));
  assert.match(issueAt(issues, `processes[0].port`).message, /Proxied process "web" has no port/);
  assert.match(issueAt(issues, `processes[1].id`).message, /Duplicate process id "web" in processes\[0\] and processes\[1\]/);
  assert.match(issueAt(issues, `processes[2].id`).message, /"worker#1" contains "#"/);
  const policy = issueAt(issues, `processes[2].policy`);
  assert.match(policy.message, /proxied, companion, singleton, service, got "daemon"/);
  assert.match(policy.fix, /processes\[2\]\.policy/);
  assert.equal(issues.length, 4);
});

test(`requires exactly one proxied process and names the extra ones`, () => {
  const none = issueAt(issuesOf(configWith([{id: `worker`, command: `w`}])), `processes`);
  assert.match(none.message, /exactly one proxied process, found none/);
  const two = issueAt(issuesOf(configWith([web(), web({id: `api`, port: 3001})])), `processes`);
  assert.match(two.message, /found 2 \(web, api\)/);
  assert.match(two.fix, /processes\[1\]\.policy/);
});

test(`reports a missing proxy, processes and non-object root with fixes naming the key`, () => {
  const issues = issuesOf({});
  assert.match(issueAt(issues, `proxy`).fix, /Add proxy: \{\}/);
  assert.match(issueAt(issues, `processes`).message, /Missing required key "processes"/);
  const root = issuesOf([]);
  assert.equal(root.length, 1);
  assert.match(root[0]!.message, /Expected the config to be an object, got \[\]/);
  const notObject = issuesOf({proxy: 8080, processes: [`web`]});
  assert.match(issueAt(notObject, `proxy`).message, /got 8080/);
  assert.match(issueAt(notObject, `processes[0]`).message, /got "web"/);
});

test(`checks ports and numbers against ranges upstream never checked`, () => {
  const issues = issuesOf(configWith([web({port: {from: 3010, to: 3000}, restartDelayMs: -1, gracefulStopMs: 1e12}), {id: `svc`, command: `s`, policy: `service`, port: 70_000}], {
    proxy: {port: 3.5, drainTimeoutMs: -5, maxHeaderBytes: 0},
    releaseRetention: {keep: 1.5, maxAgeMs: -1},
  }));
  assert.match(issueAt(issues, `proxy.port`).message, /integer port from 0 to 65535, got 3.5/);
  assert.match(issueAt(issues, `proxy.drainTimeoutMs`).message, /got -5/);
  assert.ok(issueAt(issues, `proxy.maxHeaderBytes`));
  assert.match(issueAt(issues, `processes[0].port`).message, /reversed: from 3010 is above to 3000/);
  assert.ok(issueAt(issues, `processes[0].restartDelayMs`));
  assert.match(issueAt(issues, `processes[0].gracefulStopMs`).message, /or "indefinite", got 1000000000000/);
  assert.match(issueAt(issues, `processes[1].port`).message, /got 70000/);
  assert.match(issueAt(issues, `releaseRetention.keep`).message, /non-negative integer, got 1.5/);
  assert.ok(issueAt(issues, `releaseRetention.maxAgeMs`));
});

test(`accepts port 0 as an ephemeral port and a range whose "to" defaults to "from"`, () => {
  const config = validConfig(configWith([web({port: {from: 4000}}), {id: `svc`, command: `s`, policy: `service`, port: 0}], {proxy: {port: 0}}));
  assert.deepEqual(config.processes[0]?.port, {from: 4000, to: 4000});
  assert.deepEqual(config.processes[1]?.port, {from: 0, to: 0});
  assert.equal(config.proxy.port, 0);
});

test(`defaults the upstream host of wildcard proxy hosts to loopback and keeps explicit ones`, () => {
  assert.equal(validConfig(configWith([web()], {proxy: {host: `0.0.0.0`}})).proxy.upstreamHost, `127.0.0.1`);
  assert.equal(validConfig(configWith([web()], {proxy: {host: `::`}})).proxy.upstreamHost, `127.0.0.1`);
  assert.equal(validConfig(configWith([web()], {proxy: {host: `10.0.0.5`}})).proxy.upstreamHost, `10.0.0.5`);
  assert.equal(validConfig(configWith([web()], {proxy: {host: `0.0.0.0`, upstreamHost: `10.0.0.6`}})).proxy.upstreamHost, `10.0.0.6`);
});

test(`validates proxy additions: trusted peers, header limit and timeouts`, () => {
  const config = validConfig(configWith([web()], {proxy: {trustForwarded: [`loopback`, `10.0.0.1`, `::1`], maxHeaderBytes: 8192, upstreamResponseTimeoutMs: 0}}));
  assert.deepEqual(config.proxy.trustForwarded, [`loopback`, `10.0.0.1`, `::1`]);
  assert.equal(config.proxy.maxHeaderBytes, 8192);
  assert.equal(config.proxy.upstreamResponseTimeoutMs, 0);
  const issues = issuesOf(configWith([web()], {proxy: {trustForwarded: [`loopback`, `nginx`], clientIdleTimeoutMs: `60s`}}));
  assert.match(issueAt(issues, `proxy.trustForwarded[1]`).message, /"loopback" or an IP address, got "nginx"/);
  assert.ok(issueAt(issues, `proxy.clientIdleTimeoutMs`));
});

test(`accepts legacy takeover screens and process matchers with upstream defaults`, () => {
  const config = validConfig(configWith([web()], {
    proxy: {forceStopTimeoutMs: 4_000},
    legacyTakeover: {screens: [`shop`], processes: [{includes: [`puma`, `/srv/shop`]}, {name: `sidekiq`, includes: [`sidekiq`]}]},
  }));
  assert.deepEqual(config.legacyTakeover, {
    screens: [`shop`],
    processes: [{name: `legacy process 1`, includes: [`puma`, `/srv/shop`]}, {name: `sidekiq`, includes: [`sidekiq`]}],
    forceStopTimeoutMs: 4_000,
  });
});

test(`rejects an empty legacy takeover and empty matchers`, () => {
  assert.match(issueAt(issuesOf(configWith([web()], {legacyTakeover: {}})), `legacyTakeover`).message, /No screen or process matcher/);
  const issues = issuesOf(configWith([web()], {legacyTakeover: {screens: [``], processes: [{includes: []}]}}));
  assert.ok(issueAt(issues, `legacyTakeover.screens[0]`));
  assert.match(issueAt(issues, `legacyTakeover.processes[0].includes`).message, /non-empty array/);
});

test(`defaults outputLines to 50, accepts a positive override and rejects others`, () => {
  assert.equal(validConfig(configWith([web({outputLines: 200})])).processes[0]?.outputLines, 200);
  for (const bad of [0, -1, 2.5, `50`]) {
    const issue = issueAt(issuesOf(configWith([web({outputLines: bad})])), `processes[0].outputLines`);
    assert.match(issue.fix, /Set processes\[0\]\.outputLines to a positive integer/);
  }
});

test(`defaults the restart policy, accepts overrides and rejects bad values`, () => {
  const config = validConfig(configWith([web({restart: {maxRestarts: 0, windowMs: 60_000, backoffFactor: 2, maxDelayMs: 30_000}})]));
  assert.deepEqual(config.processes[0]?.restart, {maxRestarts: 0, windowMs: 60_000, backoffFactor: 2, maxDelayMs: 30_000});
  const issues = issuesOf(configWith([web({restart: {maxRestarts: -1, windowMs: -1, backoffFactor: 0.5, maxDelayMs: -1}})]));
  assert.ok(issueAt(issues, `processes[0].restart.maxRestarts`));
  assert.ok(issueAt(issues, `processes[0].restart.windowMs`));
  assert.match(issueAt(issues, `processes[0].restart.backoffFactor`).message, /greater than or equal to 1, got 0.5/);
  assert.ok(issueAt(issues, `processes[0].restart.maxDelayMs`));
});

test(`defaults lifecycle, accepts hooks, skips empty hooks and requires a drain timeout for drainCommand`, () => {
  const config = validConfig(configWith([web(), {id: `worker`, command: `w`, lifecycle: {quietCommand: `kill -USR1 $ROLLBRIDGE_PID`, drainCommand: `touch drain`, stopCommand: ``, drainTimeoutMs: 5_000}}]));
  assert.deepEqual(config.processes[1]?.lifecycle, {quietCommand: `kill -USR1 $ROLLBRIDGE_PID`, drainCommand: `touch drain`, stopCommand: undefined, drainTimeoutMs: 5_000});
  const issues = issuesOf(configWith([web({lifecycle: {quietCommand: 5, drainCommand: `touch drain`}})]));
  assert.match(issueAt(issues, `processes[0].lifecycle.quietCommand`).message, /to be a string, got 5/);
  const drain = issueAt(issues, `processes[0].lifecycle.drainTimeoutMs`);
  assert.match(drain.message, /drainCommand but lifecycle.drainTimeoutMs is 0/);
  assert.match(drain.fix, /processes\[0\]\.lifecycle\.drainTimeoutMs/);
});

test(`accepts indefinite graceful stop windows`, () => {
  const config = validConfig(configWith([web(), {id: `worker`, command: `w`, gracefulStopMs: `indefinite`}]));
  assert.equal(config.processes[1]?.gracefulStopMs, `indefinite`);
  assert.ok(issueAt(issuesOf(configWith([web({gracefulStopMs: `forever`})])), `processes[0].gracefulStopMs`));
});

test(`accepts handoff only on a service with a multi-port range`, () => {
  const config = validConfig(configWith([web(), {id: `beacon`, command: `b`, policy: `service`, deployStrategy: `handoff`, port: {from: 4100, to: 4101}}]));
  assert.equal(config.processes[1]?.deployStrategy, `handoff`);
  const issues = issuesOf(configWith([
    web(),
    {id: `a`, command: `a`, policy: `companion`, deployStrategy: `handoff`, port: {from: 1, to: 2}},
    {id: `b`, command: `b`, policy: `service`, deployStrategy: `handoff`},
    {id: `c`, command: `c`, policy: `service`, deployStrategy: `handoff`, port: 4200},
    {id: `d`, command: `d`, policy: `service`, deployStrategy: `blue-green`},
  ]));
  assert.match(issueAt(issues, `processes[1].deployStrategy`).fix, /Set processes\[1\]\.policy to "service"/);
  assert.match(issueAt(issues, `processes[2].port`).message, /Handoff service "b" has no port range/);
  assert.match(issueAt(issues, `processes[3].port`).message, /single port 4200/);
  assert.ok(issueAt(issues, `processes[4].deployStrategy`));
});

test(`rejects a custom stopSignal next to a stopCommand, but allows an explicit SIGTERM`, () => {
  validConfig(configWith([web({stopSignal: `SIGTERM`, lifecycle: {stopCommand: `bin/stop`}})]));
  const issue = issueAt(issuesOf(configWith([web({stopSignal: `SIGINT`, lifecycle: {stopCommand: `bin/stop`}})])), `processes[0].stopSignal`);
  assert.match(issue.message, /stopCommand and stopSignal "SIGINT"/);
});

test(`defaults replicas to 1, accepts companion and proxied replicas and rejects other placements`, () => {
  const config = validConfig(configWith([web(), {id: `worker`, command: `w`, replicas: 3}]));
  assert.equal(config.processes[0]?.replicas, 1);
  assert.equal(config.processes[1]?.replicas, 3);
  assert.equal(validConfig(configWith([web({replicas: 2, port: {from: 0, to: 0}})])).processes[0]?.replicas, 2);
  assert.equal(validConfig(configWith([web({replicas: 2, port: {from: 4000, to: 4003}})])).processes[0]?.replicas, 2);
  const issues = issuesOf(configWith([
    web({replicas: 3, port: {from: 4000, to: 4003}}),
    {id: `worker`, command: `w`, replicas: 2, port: 5000},
    {id: `zero`, command: `z`, replicas: 0},
    {id: `cron`, command: `c`, policy: `singleton`, replicas: 2},
  ]));
  assert.match(issueAt(issues, `processes[0].port`).message, /runs 3 replicas but processes\[0\]\.port holds only 4 port\(s\); a deploy needs 6/);
  assert.match(issueAt(issues, `processes[1].replicas`).message, /it has a port/);
  assert.match(issueAt(issues, `processes[2].replicas`).message, /positive integer, got 0/);
  assert.match(issueAt(issues, `processes[3].replicas`).message, /its policy is "singleton"/);
});

test(`allows nonBlockingDrain only on companions`, () => {
  assert.equal(validConfig(configWith([web(), {id: `worker`, command: `w`, nonBlockingDrain: true}])).processes[1]?.nonBlockingDrain, true);
  const issues = issuesOf(configWith([web({nonBlockingDrain: true}), {id: `worker`, command: `w`, nonBlockingDrain: `yes`}]));
  assert.match(issueAt(issues, `processes[0].nonBlockingDrain`).message, /policy is "proxied"/);
  assert.ok(issueAt(issues, `processes[1].nonBlockingDrain`));
});

test(`defaults stopSignal to SIGTERM, accepts signals Node knows and rejects unknown ones`, () => {
  assert.equal(validConfig(configWith([web({stopSignal: `SIGQUIT`})])).processes[0]?.stopSignal, `SIGQUIT`);
  const issue = issueAt(issuesOf(configWith([web({stopSignal: `TERM`})])), `processes[0].stopSignal`);
  assert.match(issue.message, /signal name, got "TERM"/);
  assert.match(issue.fix, /"SIGTERM"/);
});

test(`normalizes memory supervision, requires limitBytes and warns when the warning level is not below the limit`, () => {
  assert.deepEqual(validConfig(configWith([web({memory: {limitBytes: 1024}})])).processes[0]?.memory, {limitBytes: 1024, warnBytes: 0, checkIntervalMs: 5_000});
  const issues = issuesOf(configWith([web({memory: {warnBytes: -1, checkIntervalMs: 0}})]));
  assert.match(issueAt(issues, `processes[0].memory.limitBytes`).message, /Missing required key/);
  assert.ok(issueAt(issues, `processes[0].memory.warnBytes`));
  assert.ok(issueAt(issues, `processes[0].memory.checkIntervalMs`));
  const result = validateConfig(configWith([web({memory: {limitBytes: 1000, warnBytes: 2000}})]), {configPath: CONFIG_PATH});
  assert.ok(result.config);
  assert.equal(result.warnings[0]?.path, `processes[0].memory.warnBytes`);
});

test(`parses control.mode from numbers and octal strings, leaves it unset by default and rejects invalid modes`, () => {
  const modeOf = (mode: unknown): number | undefined => validConfig(configWith([web()], {control: {mode}})).control.mode;
  assert.equal(modeOf(0o660), 0o660);
  assert.equal(modeOf(`660`), 0o660);
  assert.equal(modeOf(`0660`), 0o660);
  assert.equal(modeOf(`0o600`), 0o600);
  assert.equal(modeOf(`0`), 0);
  assert.equal(modeOf(undefined), undefined);
  for (const bad of [512, -1, `999`, `7777`, `rw-rw----`, 1.5]) {
    assert.match(issueAt(issuesOf(configWith([web()], {control: {mode: bad}})), `control.mode`).message, /octal file mode from 0 to 0o777/);
  }
});

test(`accepts control owner and group as ids or names and rejects bad values`, () => {
  const config = validConfig(configWith([web()], {control: {owner: `deploy`, group: `1001`, path: `run/shop.sock`}}));
  assert.equal(config.control.owner, `deploy`);
  assert.equal(config.control.group, 1001);
  assert.equal(config.control.path, `/srv/shop/run/shop.sock`);
  assert.equal(validConfig(configWith([web()], {control: {owner: 0}})).control.owner, 0);
  const issues = issuesOf(configWith([web()], {control: {owner: -1, group: ``}}));
  assert.match(issueAt(issues, `control.owner`).message, /non-negative integer id or a name, got -1/);
  assert.ok(issueAt(issues, `control.group`));
});

test(`defaults health.startDelayMs to 0, accepts an override, disables health with false or null and rejects negatives`, () => {
  assert.equal(validConfig(configWith([web({health: {startDelayMs: 750}})])).processes[0]?.health?.startDelayMs, 750);
  assert.equal(validConfig(configWith([web({health: false})])).processes[0]?.health, null);
  assert.equal(validConfig(configWith([web({health: null})])).processes[0]?.health, null);
  const issues = issuesOf(configWith([web({health: {startDelayMs: -1, path: `ping`, successThreshold: 0}}), {id: `w`, command: `w`, health: true}]));
  assert.ok(issueAt(issues, `processes[0].health.startDelayMs`));
  assert.match(issueAt(issues, `processes[0].health.path`).message, /starting with "\/"/);
  assert.ok(issueAt(issues, `processes[0].health.successThreshold`));
  assert.match(issueAt(issues, `processes[1].health`).fix, /false to disable/);
});

test(`health.type selects http (default), tcp, command or notify, and each type's keys must match it`, () => {
  assert.equal(validConfig(configWith([web()])).processes[0]?.health?.type, `http`);
  assert.equal(validConfig(configWith([web({health: {type: `tcp`}})])).processes[0]?.health?.type, `tcp`);
  assert.equal(validConfig(configWith([web({health: {type: `notify`, timeoutMs: 5_000}})])).processes[0]?.health?.type, `notify`);
  assert.match(issueAt(issuesOf(configWith([web({health: {type: `notify`, liveness: {}}})])), `processes[0].health.liveness`).message, /only reports readiness once/);
  const command = validConfig(configWith([web({health: {type: `command`, command: `curl -fsS localhost:$ROLLBRIDGE_PORT/up`}})])).processes[0]?.health;
  assert.equal(command?.type, `command`);
  assert.equal(command?.command, `curl -fsS localhost:$ROLLBRIDGE_PORT/up`);
  assert.match(issueAt(issuesOf(configWith([web({health: {type: `grpc`}})])), `processes[0].health.type`).message, /to be one of: http, tcp, command, notify, got "grpc"/);
  const noCommand = issueAt(issuesOf(configWith([web({health: {type: `command`}})])), `processes[0].health.command`);
  assert.match(noCommand.message, /type "command" but no processes\[0\]\.health\.command/);
  assert.match(noCommand.fix, /Set processes\[0\]\.health\.command/);
  assert.match(issueAt(issuesOf(configWith([web({health: {type: `tcp`, command: `true`}})])), `processes[0].health.command`).fix, /Set processes\[0\]\.health\.type to "command"/);
  assert.match(issueAt(issuesOf(configWith([web({health: {type: `tcp`, path: `/up`}})])), `processes[0].health.path`).message, /would never be probed/);
});

test(`liveness is off by default; health.liveness and readiness.liveness take intervalMs, probeTimeoutMs and failureThreshold`, () => {
  assert.equal(validConfig(configWith([web()])).processes[0]?.health?.liveness, null);
  assert.deepEqual(validConfig(configWith([web({health: {liveness: {}}})])).processes[0]?.health?.liveness, {intervalMs: 5_000, probeTimeoutMs: 2_000, failureThreshold: 3});
  assert.deepEqual(validConfig(configWith([web({health: {probeTimeoutMs: 700, liveness: {intervalMs: 1_000, failureThreshold: 5}}})])).processes[0]?.health?.liveness, {intervalMs: 1_000, probeTimeoutMs: 700, failureThreshold: 5});
  const worker = validConfig(configWith([web(), {id: `worker`, command: `w`, readiness: {command: `true`, liveness: {probeTimeoutMs: 300}}}])).processes[1];
  assert.deepEqual(worker?.readiness?.liveness, {intervalMs: 5_000, probeTimeoutMs: 300, failureThreshold: 3});
  const issues = issuesOf(configWith([web({health: {liveness: {intervalMs: 0, failureThreshold: 0}}})]));
  assert.ok(issueAt(issues, `processes[0].health.liveness.intervalMs`));
  assert.ok(issueAt(issues, `processes[0].health.liveness.failureThreshold`));
});

test(`defaults releaseRetention, accepts overrides and rejects bad values`, () => {
  assert.deepEqual(validConfig(configWith([web()], {releaseRetention: {keep: 0, maxAgeMs: 86_400_000}})).releaseRetention, {keep: 0, maxAgeMs: 86_400_000});
  assert.ok(issueAt(issuesOf(configWith([web()], {releaseRetention: `10`})), `releaseRetention`));
});

test(`leaves statePath unset by default, resolves a relative path against the config directory and rejects non-strings`, () => {
  assert.equal(validConfig(configWith([web()], {statePath: null})).statePath, undefined);
  assert.equal(validConfig(configWith([web()], {statePath: `/var/lib/shop/state.json`})).statePath, `/var/lib/shop/state.json`);
  assert.equal(validConfig(configWith([web()], {statePath: `state/state.json`})).statePath, `/srv/shop/state/state.json`);
  assert.match(issueAt(issuesOf(configWith([web()], {statePath: 42})), `statePath`).message, /non-empty string, got 42/);
});

test(`requires env values to be strings and keeps cwd undefined when unset`, () => {
  const config = validConfig(configWith([web({env: {NODE_ENV: `production`}}), {id: `w`, command: `w`, cwd: `workers`}]));
  assert.deepEqual(config.processes[0]?.env, {NODE_ENV: `production`});
  assert.equal(config.processes[0]?.cwd, undefined);
  assert.equal(config.processes[1]?.cwd, `workers`);
  const issue = issueAt(issuesOf(configWith([web({env: {PORT: 3000}})])), `processes[0].env.PORT`);
  assert.match(issue.fix, /Quote the value of processes\[0\]\.env\.PORT/);
});

test(`warns about unknown keys at every level with a did-you-mean suggestion`, () => {
  const result = validateConfig(configWith([web({Policy: `proxied`, helth: {}, port: {from: 3000, too: 3001}})], {
    proxy: {drainTimeout: 5_000},
    metrcs: {listen: 9100},
    telemetry: {port: 9100},
  }), {configPath: CONFIG_PATH});
  assert.ok(result.config, JSON.stringify(result.issues));
  const byPath = new Map(result.warnings.map((warning) => [warning.path, warning]));
  assert.deepEqual(byPath.get(`proxy.drainTimeout`), {
    path: `proxy.drainTimeout`,
    message: `Unknown key "proxy.drainTimeout"`,
    fix: `Did you mean "proxy.drainTimeoutMs"? Remove the key if it is not a typo.`,
  });
  assert.match(byPath.get(`processes[0].Policy`)?.fix ?? ``, /Did you mean "processes\[0\]\.policy"/);
  assert.match(byPath.get(`processes[0].helth`)?.fix ?? ``, /Did you mean "processes\[0\]\.health"/);
  assert.match(byPath.get(`processes[0].port.too`)?.fix ?? ``, /Did you mean "processes\[0\]\.port\.to"/);
  assert.match(byPath.get(`metrcs`)?.fix ?? ``, /^Did you mean "metrics"\?/);
  assert.match(byPath.get(`telemetry`)?.fix ?? ``, /^Remove the key: the top level only knows application, control, proxy/);
  assert.equal(result.warnings.length, 6);
});

test(`reports every issue of a badly broken config at once`, () => {
  const issues = issuesOf({
    application: 7,
    control: {mode: `abc`},
    proxy: {port: -1},
    statePath: 1,
    processes: [{command: 5, policy: `proxied`}, web({stopSignal: `SIGNOPE`})],
  });
  for (const path of [`application`, `control.mode`, `proxy.port`, `statePath`, `processes[0].id`, `processes[0].command`, `processes[0].port`, `processes[1].stopSignal`, `processes`]) {
    issueAt(issues, path);
  }
});

test(`accepts hooks around the switch with a default timeout, and rejects a non-string command`, () => {
  const result = validateConfig(configWith([web()], {hooks: {beforeSwitch: `npm run migrate`}}), {configPath: CONFIG_PATH});
  assert.deepEqual(result.config?.hooks, {beforeSwitch: `npm run migrate`, afterSwitch: undefined, timeoutMs: 600_000});
  const defaults = validateConfig(configWith([web()]), {configPath: CONFIG_PATH});
  assert.deepEqual(defaults.config?.hooks, {beforeSwitch: undefined, afterSwitch: undefined, timeoutMs: 600_000});
  assert.ok(issueAt(issuesOf(configWith([web()], {hooks: {afterSwitch: 5, timeoutMs: 0}})), `hooks.afterSwitch`));
  assert.ok(issueAt(issuesOf(configWith([web()], {hooks: {timeoutMs: -1}})), `hooks.timeoutMs`));
});

test(`accepts a watch window with defaults for the 5xx threshold`, () => {
  const result = validateConfig(configWith([web()], {watch: {windowMs: 30_000}}), {configPath: CONFIG_PATH});
  assert.deepEqual(result.config?.watch, {windowMs: 30_000, max5xxPercent: 10, minRequests: 20});
  assert.deepEqual(validateConfig(configWith([web()]), {configPath: CONFIG_PATH}).config?.watch, {windowMs: 0, max5xxPercent: 10, minRequests: 20});
  assert.ok(issueAt(issuesOf(configWith([web()], {watch: {windowMs: -5, minRequests: 1.5}})), `watch.windowMs`));
});

test(`accepts readiness checks and dependsOn, and rejects bad checks, unknown or later dependencies and cycles`, () => {
  const config = validConfig(configWith([
    web({dependsOn: [`db`]}),
    {id: `db`, command: `d`, policy: `service`, port: 5432, readiness: {tcp: true}},
    {id: `worker`, command: `w`, dependsOn: [`db`], readiness: {command: `test -f ready`, timeoutMs: 5_000}},
  ]));
  assert.deepEqual(config.processes[1]?.readiness, {kind: `tcp`, path: undefined, command: undefined, timeoutMs: 30_000, intervalMs: 250, probeTimeoutMs: 2_000, successThreshold: 1, liveness: null});
  assert.equal(config.processes[2]?.readiness?.kind, `command`);
  assert.deepEqual(config.processes[0]?.dependsOn, [`db`]);
  assert.equal(config.processes[1]?.readiness && config.processes[0]?.readiness, null);

  const issues = issuesOf(configWith([
    web({readiness: {http: `/ready`}}),
    {id: `a`, command: `a`, readiness: {http: `/ready`}, dependsOn: [`b`]},
    {id: `b`, command: `b`, readiness: {tcp: true, command: `x`}, dependsOn: [`a`]},
    {id: `c`, command: `c`, dependsOn: [`nope`, `c`, `cron`]},
    {id: `cron`, command: `c`, policy: `singleton`},
  ]));
  assert.match(issueAt(issues, `processes[0].readiness`).message, /uses processes\[0\]\.health, not readiness/);
  assert.match(issueAt(issues, `processes[1].readiness`).message, /probes the process's port, but processes\[1\] has no port/);
  assert.match(issueAt(issues, `processes[2].readiness`).message, /exactly one check .* found tcp and command/);
  const dependsIssues = issues.filter((issue) => issue.path === `processes[3].dependsOn`).map((issue) => issue.message);
  assert.ok(dependsIssues.some((message) => /Dependency "nope" in processes\[3\]\.dependsOn is not a process id/.test(message)));
  assert.ok(dependsIssues.some((message) => /depends on itself/.test(message)));
  assert.ok(dependsIssues.some((message) => /depends on "cron" \(singleton\), which starts after it/.test(message)));
  assert.ok(issues.some((issue) => /Dependencies form a cycle: a → b → a/.test(issue.message)));
});

test(`keys of a later rollbridge 0.1.x (ownerRecovery, lifecycle.activateCommand) are notices, not warnings, and the config loads`, () => {
  const result = validateConfig(configWith([web({lifecycle: {activateCommand: `bin/coordinator`}})], {ownerRecovery: {enabled: true}, metricz: 1}), {configPath: CONFIG_PATH});
  assert.ok(result.config, JSON.stringify(result.issues));
  assert.deepEqual(result.notices.map((notice) => notice.path), [`ownerRecovery`, `processes[0].lifecycle.activateCommand`]);
  assert.match(result.notices[0]?.message ?? ``, /^"ownerRecovery" comes from a later rollbridge 0\.1\.x and is ignored: /);
  assert.deepEqual(result.warnings.map((warning) => warning.path), [`metricz`], `a truly unknown key still warns`);
});

test(`metrics.listen takes a port or host:port and binds loopback by default; anything else is refused with a fix`, () => {
  const listen = (value: unknown) => validateConfig(configWith([web()], {metrics: {listen: value}}), {configPath: CONFIG_PATH});
  assert.deepEqual(listen(9464).config?.metrics.listen, {host: `127.0.0.1`, port: 9464});
  assert.deepEqual(listen(`9464`).config?.metrics.listen, {host: `127.0.0.1`, port: 9464});
  assert.deepEqual(listen(`0.0.0.0:9464`).config?.metrics.listen, {host: `0.0.0.0`, port: 9464});
  assert.deepEqual(listen(`[::1]:9464`).config?.metrics.listen, {host: `::1`, port: 9464});
  assert.deepEqual(listen(`localhost:9464`).config?.metrics.listen, {host: `localhost`, port: 9464});
  assert.equal(validateConfig(configWith([web()]), {configPath: CONFIG_PATH}).config?.metrics.listen, undefined, `off by default`);
  for (const bad of [0, `0`, 65_536, `:9464`, `9464:`, `example.com:9464`, `::1:9464`, `[nope]:9464`, `127.0.0.1:09464`, ` 9464`, 94.5, true, {}]) {
    const result = listen(bad);
    assert.equal(result.config, null, `refuses ${JSON.stringify(bad)}`);
    assert.equal(result.issues[0]?.path, `metrics.listen`);
    assert.match(result.issues[0]?.fix ?? ``, /^Set metrics\.listen to a port from 1 to 65535 or "host:port"/);
  }
});

test(`proxy.accessLog takes a path or {path, includeQuery}; the path is resolved against the config's directory`, () => {
  const withLog = (value: unknown) => validateConfig(configWith([web()], {proxy: {accessLog: value}}), {configPath: CONFIG_PATH});
  const dir = path.dirname(CONFIG_PATH);
  assert.deepEqual(withLog(`logs/access.log`).config?.proxy.accessLog, {path: path.join(dir, `logs/access.log`), includeQuery: false});
  assert.deepEqual(withLog({path: `/var/log/app/access.log`, includeQuery: true}).config?.proxy.accessLog, {path: `/var/log/app/access.log`, includeQuery: true});
  assert.equal(validateConfig(configWith([web()]), {configPath: CONFIG_PATH}).config?.proxy.accessLog, undefined, `off by default`);
  for (const bad of [``, 3, {includeQuery: true}, {path: `a.log`, includeQuery: `no`}]) {
    const result = withLog(bad);
    assert.equal(result.config, null, `refuses ${JSON.stringify(bad)}`);
    assert.match(result.issues[0]?.path ?? ``, /^proxy\.accessLog/);
  }
});
