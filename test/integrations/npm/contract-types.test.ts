// The npm package's hand-written result types (integrations/npm/src/types.ts, shipped as .d.ts without
// rollbridge's sources) against the control contract (src/control/protocol.ts). The assertions are
// checked by `tsc --noEmit` (npm run typecheck): every result the contract allows must fit the type the
// package declares, so a field the package promises that the contract drops, makes optional or retypes
// fails the type check; fields the contract adds fit the package's `[key: string]: unknown`. The test
// below also runs the contract's validators on the API's shapes.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import type * as Contract from '../../../src/control/protocol.ts';
import {isDeployResult, isEvent, isRestartResult, isStatusResult, isTakeoverResult} from '../../../src/control/protocol.ts';
import type * as Api from '../../../integrations/npm/src/types.ts';

/** `true` when every value of the contract's type `C` is a value of the package's type `P`. */
type Fits<C, P> = [C] extends [P] ? true : false;
type TakeoverResult = Contract.ResultOf<`takeover`>;
type RestartResult = Contract.ResultOf<`restart`>;

const checks = {
  deploy: true as Fits<Contract.DeployResult, Api.ContractDeployResult>,
  status: true as Fits<Contract.StatusResult, Api.ContractStatusResult>,
  restart: true as Fits<RestartResult, Api.ContractRestartResult>,
  event: true as Fits<Contract.ControlEvent, Api.ContractEvent>,
  takeover: true as Fits<TakeoverResult, Api.ContractTakeoverResult>,
  restartPlan: true as Fits<Contract.RestartPlanView, Api.RestartPlan>,
  // The other way round too where the package's type is complete (no index signature).
  restartPlanBack: true as Fits<Api.RestartPlan, Contract.RestartPlanView>,
} satisfies Record<string, true>;

test(`the npm package's result types are the control contract's, and its shapes pass the contract's validators`, () => {
  assert.deepEqual(Object.values(checks), [true, true, true, true, true, true, true]);
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
