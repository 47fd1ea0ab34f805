import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {ControlClient} from '../../src/control/client.ts';
import {webConfig, WEB_APP} from '../helpers/daemon.ts';
import {httpGet} from '../helpers/http.ts';
import {loadSwitch} from '../helpers/load-switch.ts';
import {freePort} from '../helpers/ports.ts';
import {isPidAlive, killQuietly} from '../helpers/processes.ts';
import {runCli} from '../helpers/run-cli.ts';
import {beforeRemoving, createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';
import {listOwnSessions, pidsOfSession, requireScreen, startScreenSession, uniqueName} from '../takeover/legacy-fixtures.ts';

test(`legacy-takeover starts the release beside a screen-run app on the proxy port, stops the app and its escapees, takes the port and serves`, async (t) => {
  if (!requireScreen(t)) return;
  const dir = createTempDir(t);
  const port = await freePort();
  const name = uniqueName();
  const configPath = path.join(dir, `rollbridge.json`);
  fs.writeFileSync(configPath, JSON.stringify(webConfig(dir, {
    application: `takeover-test`,
    proxy: {host: `127.0.0.1`, port, drainTimeoutMs: 1_000},
    legacyTakeover: {screens: [name], forceStopTimeoutMs: 3_000},
  })));
  // The legacy deployment: the same web app, run by hand in screen on the port the proxy will take,
  // with a nohup and a setsid child that a plain `screen -X quit` would leave behind.
  const legacy = `(setsid sleep 401 &); nohup sleep 402 >/dev/null 2>&1 & ROLLBRIDGE_PORT=${port} ROLLBRIDGE_RELEASE_ID=legacy exec "${process.execPath}" "${WEB_APP}"`;
  const session = await startScreenSession(t, name, legacy, {cwd: dir, processes: 3});
  const legacyPids = pidsOfSession(session.id);
  await waitFor(async () => (await httpGet(port, `/`).catch(() => null))?.body === `legacy\n`, {what: `the legacy app to serve`});
  const releasePath = path.join(dir, `r1`);
  fs.mkdirSync(releasePath);
  const pidPath = path.join(dir, `daemon.pid`);
  beforeRemoving(dir, async () => {
    const pid = fs.existsSync(pidPath) ? Number(fs.readFileSync(pidPath, `utf8`)) : 0;
    await runCli([`shutdown`, `--config`, configPath], {cwd: dir});
    if (pid > 0) await waitFor(() => !isPidAlive(pid), {what: `the daemon to exit`}).catch(() => killQuietly(pid));
  });

  // Requests keep coming during the takeover: every one is answered by the legacy app or the new release, or refused in the gap.
  const answers = new Map<string, number>();
  let refused = 0;
  const loadOn = loadSwitch(t);
  const load = (async () => {
    while (loadOn.on()) {
      const response = await httpGet(port, `/`).catch(() => null);
      if (response === null) refused += 1;
      else answers.set(response.body.trim(), (answers.get(response.body.trim()) ?? 0) + 1);
    }
  })();
  const result = await runCli([`legacy-takeover`, `--config`, configPath, `--release-path`, releasePath, `--release-id`, `r1`, `--json`, `--daemon-log-path`, path.join(dir, `daemon.log`), `--daemon-pid-path`, pidPath], {cwd: dir});
  loadOn.stop();
  await load;
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}\n${fs.existsSync(path.join(dir, `daemon.log`)) ? fs.readFileSync(path.join(dir, `daemon.log`), `utf8`) : ``}`);
  const output = result.json() as {activeReleaseId: string; portGapMs: number; legacy: {stopped: number; killed: number}; plan: {legacy: {processes: Array<{pid: number}>}}};
  assert.equal(output.activeReleaseId, `r1`);
  assert.ok(Number.isFinite(output.portGapMs) && output.portGapMs >= 0, `a measured port gap: ${output.portGapMs}`);
  assert.equal(output.legacy.stopped + output.legacy.killed, output.plan.legacy.processes.length);
  for (const pid of legacyPids) await waitFor(() => !isPidAlive(pid), {what: `legacy pid ${pid} (setsid/nohup escapees included) to be gone`});
  assert.equal((await listOwnSessions()).some((entry) => entry.id === session.id), false, `the screen session was quit`);
  assert.equal((await httpGet(port, `/`)).body, `r1\n`);
  assert.ok((answers.get(`legacy`) ?? 0) > 0, `the legacy app served while the new release started`);
  t.diagnostic(`answers ${JSON.stringify(Object.fromEntries(answers))}, refused ${refused}, port gap ${output.portGapMs} ms`);

  const client = await ControlClient.connect(path.join(dir, `control.sock`));
  const status = await client.call(`status`, {}) as unknown as {proxy: {listening: boolean; port: number}};
  client.close();
  assert.deepEqual([status.proxy.listening, status.proxy.port], [true, port]);
  // The takeover is the first handover only.
  const again = await runCli([`legacy-takeover`, `--config`, configPath, `--release-path`, releasePath, `--json`], {cwd: dir});
  assert.notEqual(again.code, 0);
  assert.match(again.stdout + again.stderr, /ERR_TAKEOVER_NOT_NEEDED|ERR_LEGACY/);
});
