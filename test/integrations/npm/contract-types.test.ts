// The npm package's hand-written result types (integrations/npm/src/types.ts, shipped as .d.ts without
// rollbridge's sources) against the control contract (src/control/protocol.ts). The assertions are
// checked by `tsc --noEmit` (npm run typecheck): a field added to, removed from or retyped in one side
// only fails the type check. The test below also runs the contract's validators on the API's shapes.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import type * as Contract from '../../../src/control/protocol.ts';
import {isDeployResult, isEvent, isRestartResult, isStatusResult, isTakeoverResult} from '../../../src/control/protocol.ts';
import type * as Api from '../../../integrations/npm/src/types.ts';

/** `true` only when A and B are mutually assignable. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type TakeoverResult = Contract.ResultOf<`takeover`>;
type RestartResult = Contract.ResultOf<`restart`>;

const checks = {
  deploy: true as Same<Api.ContractDeployResult, Contract.DeployResult>,
  status: true as Same<Api.ContractStatusResult, Contract.StatusResult>,
  restart: true as Same<Api.ContractRestartResult, RestartResult>,
  event: true as Same<Api.ContractEvent, Contract.ControlEvent>,
  takeover: true as Same<Api.ContractTakeoverResult, TakeoverResult>,
  restartPlan: true as Same<Api.RestartPlan, Contract.RestartPlanView>,
} satisfies Record<string, true>;

test(`the npm package's result types are the control contract's, and its shapes pass the contract's validators`, () => {
  assert.deepEqual(Object.values(checks), [true, true, true, true, true, true]);
  const deploy: Api.DeployResult = {status: `success`, changed: true, activeReleaseId: `r2`, previousReleaseId: `r1`, releaseId: `r2`, durationMs: 12};
  const restart: Api.RestartResult = {status: `success`, restarted: [`web`], plan: {processes: [], hooks: {beforeSwitch: null}, cooldownMs: 0}};
  const event: Api.RollbridgeEvent = {at: `2026-12-01T00:00:00.000Z`, message: `release switched`, level: `info`, data: {releaseId: `r2`}};
  const takeover: Api.LegacyTakeoverResult = {status: `success`, activeReleaseId: `r1`, portGapMs: 3, legacy: {stopped: 1, killed: 0}, durationMs: 40};
  const status: Api.StatusResult = {application: `app`, activeReleaseId: null};
  assert.equal(isDeployResult(deploy), true);
  assert.equal(isRestartResult(restart), true);
  assert.equal(isEvent(event), true);
  assert.equal(isTakeoverResult(takeover), true);
  assert.equal(isStatusResult(status), true);
});
