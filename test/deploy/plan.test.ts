import assert from 'node:assert/strict';
import test from 'node:test';
import {validateConfig} from '../../src/config/schema.ts';
import {planRelease} from '../../src/deploy/plan.ts';

function plan(processes: Array<Record<string, unknown>>) {
  const {config, issues} = validateConfig({proxy: {}, processes}, {configPath: `/srv/app/rollbridge.json`});
  assert.ok(config, JSON.stringify(issues));
  return planRelease(config);
}

test(`starts handoff services, then companions (replicas in order), then the proxied process; singletons after the switch`, () => {
  const result = plan([
    {id: `web`, command: `w`, policy: `proxied`, port: 3000},
    {id: `cron`, command: `c`, policy: `singleton`},
    {id: `worker`, command: `w`, replicas: 2},
    {id: `coordinator`, command: `c`, policy: `service`, deployStrategy: `handoff`, port: {from: 4000, to: 4001}},
    {id: `db`, command: `d`, policy: `service`, port: 5432},
  ]);
  assert.deepEqual(result.services.map(({process}) => process.id), [`db`]);
  assert.deepEqual(result.instances.map((instance) => instance.instanceId), [`coordinator`, `worker#0`, `worker#1`, `web`]);
  assert.deepEqual(result.singletons.map(({process}) => process.id), [`cron`]);
  assert.deepEqual(result.portRequests.map((request) => request.configKey), [`processes[0].port`, `processes[3].port`, `processes[4].port`]);
});

test(`dependsOn reorders processes of the same stage after their dependencies, keeping config order otherwise`, () => {
  const result = plan([
    {id: `web`, command: `w`, policy: `proxied`, port: 3000},
    {id: `mailer`, command: `m`, dependsOn: [`queue`]},
    {id: `reporter`, command: `r`},
    {id: `queue`, command: `q`},
    {id: `cache`, command: `c`, policy: `service`, dependsOn: [`store`]},
    {id: `store`, command: `s`, policy: `service`},
  ]);
  assert.deepEqual(result.instances.map((instance) => instance.instanceId), [`queue`, `mailer`, `reporter`, `web`]);
  assert.deepEqual(result.services.map(({process}) => process.id), [`store`, `cache`]);
});
