import assert from 'node:assert/strict';
import test from 'node:test';
import {CRASH_PHASES, runCrashScenario} from '../helpers/crash-scenario.ts';
import {MAIN} from '../helpers/run-cli.ts';
import {createTempDir} from '../helpers/temp-dir.ts';

// The fast version of `npm run bench crash` (which loops each phase at least 5 times on the binary).
for (const phase of CRASH_PHASES) {
  test(`issue-9: a daemon killed with SIGKILL (${phase}) leaves no unsupervised or doubled process and no acknowledged deploy undone after ensure-daemon and one more deploy`, async (t) => {
    const dir = createTempDir(t);
    const outcome = await runCrashScenario({cli: {file: process.execPath, prefixArgs: [MAIN]}, phase, dir, application: `crash-${phase}-${process.pid}`});
    assert.equal(outcome.killed, true, `the daemon was killed in the phase`);
    assert.deepEqual({unsupervised: outcome.unsupervised, duplicates: outcome.duplicates, undone: outcome.undone, proxyMismatch: outcome.proxyMismatch, servedAfterRestart: outcome.servedAfterRestart, finalDeployOk: outcome.finalDeployOk}, {unsupervised: 0, duplicates: 0, undone: 0, proxyMismatch: false, servedAfterRestart: true, finalDeployOk: true}, outcome.details.join(`\n`));
    if (phase === `drain`) assert.equal(outcome.activeAfterRestart, `r2`, `the deploy acknowledged before the kill stands`);
    // Killed while requests were held for r2's switch, or while r2 ran as a canary (not acknowledged): r1 serves again.
    if (phase === `hold-drain` || phase === `hold-start` || phase === `canary`) assert.equal(outcome.activeAfterRestart, `r1`);
  });
}
