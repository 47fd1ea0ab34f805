import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import type {ParamsOf, ResultOf} from '../control/protocol.ts';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {tokenPathOf} from '../control/replace-token.ts';
import {diffLiveReload} from '../config/live-reload.ts';
import {daemonLaunchEnv} from '../config/daemon-env.ts';
import {loadConfig} from '../config/load.ts';
import type {Config} from '../config/types.ts';
import type {Logger} from '../log/logger.ts';
import type {ProxyServer} from '../proxy/proxy-server.ts';
import {APPEND_FLAGS, openPrivateFile} from '../util/private-file.ts';

/** The parts of the daemon a handover uses. */
export type HandoverHost = {
  readonly config: Config;
  readonly log: Logger;
  readonly deployer: {freeze(): Promise<void>; unfreeze(): void; abandon(): void};
  readonly state: {persist(): Promise<void>; release(): Promise<void>; start(): void};
  readonly proxy: Pick<ProxyServer, `server` | `retire`>;
};

// How long a successor gets to re-adopt the processes and answer on the control socket.
const SUCCESSOR_READY_TIMEOUT_MS = 30_000;
// After the handover: idle keep-alive clients of the old daemon are closed after this long.
const CLIENT_IDLE_GRACE_MS = 1_000;

const LISTEN_MESSAGE = `rollbridge:listen`;
const READY_MESSAGE = `rollbridge:ready`;

/**
 * The old daemon's side of a zero-downtime replacement (product §8):
 * 1. check the token; finish the running deploy and the drains, stop deploys and restarts (freeze);
 * 2. write the state and stop writing it;
 * 3. start the successor with an IPC channel and hand it the proxy's LISTENING socket — both accept
 *    from the same queue from then on, so no connection is refused or lost;
 * 4. the successor re-adopts every process from the state, health-checks the web process, renames its
 *    control socket over ours, and reports ready;
 * 5. we stop accepting, let our client connections end after their next response
 *    (`Connection: close`), let go of the processes without stopping them, and exit.
 * If the successor fails, we carry on as before.
 */
export async function handOver(daemon: HandoverHost, params: ParamsOf<`replace`>, token: string): Promise<{result: ResultOf<`replace`>; retire: () => Promise<void>}> {
  const expected = Buffer.from(token);
  const given = Buffer.from(params.token);
  if (expected.length !== given.length || !process.getBuiltinModule(`node:crypto`).timingSafeEqual(expected, given)) {
    throw new RollbridgeError(ErrorCode.DAEMON_REPLACE_REFUSED, `The replacement request carried a wrong token`, {
      fix: `Run "rollbridge ensure-daemon --replace" as the daemon's user (or root): it reads ${tokenPathOf(daemon.config.control.path)}`,
    });
  }
  const startedAt = performance.now();
  const log = daemon.log.child({component: `replace`});
  const config = daemon.config;
  await assertSameTopology(config);
  await daemon.deployer.freeze();
  let successorPid: number;
  try {
    await daemon.state.persist();
    await daemon.state.release();
    successorPid = await startSuccessor(daemon, params, config.configPath);
  } catch (error) {
    log.error(`replacement failed; this daemon carries on`, {err: error});
    daemon.state.start();
    daemon.deployer.unfreeze();
    throw error;
  }
  log.info(`handed over to the new daemon`, {pid: successorPid, durationMs: Math.round(performance.now() - startedAt)});
  return {
    result: {previousPid: process.pid, pid: successorPid, durationMs: Math.round(performance.now() - startedAt)},
    retire: async () => {
      daemon.deployer.abandon();
      const {remaining} = await daemon.proxy.retire({idleGraceMs: CLIENT_IDLE_GRACE_MS, deadlineMs: config.proxy.drainTimeoutMs, wsCloseJitterMs: config.proxy.wsCloseJitterMs});
      log.info(`retired after handover`, {closedConnections: remaining});
    },
  };
}

/**
 * The successor reads the config file again and re-adopts the running release: it follows deploy's rules,
 * so a change a deploy refuses (process topology, listeners, socket, state file) is refused here too,
 * before anything moves. Re-adoption cannot apply it (upstream started `worker#2` as a "crash" restart
 * and leaked the process a scale-down left over).
 */
async function assertSameTopology(running: Config): Promise<void> {
  const {config: next} = await loadConfig({cwd: path.dirname(running.configPath), configPath: running.configPath});
  const changed = diffLiveReload(running, next);
  if (changed.length === 0) return;
  throw new RollbridgeError(ErrorCode.CONFIG_LIVE_RELOAD, `Config changes to ${changed.join(`, `)} cannot be applied by a daemon replacement: the new daemon re-adopts the running release as it is; the running daemon carries on`, {
    fix: `Revert those fields in ${running.configPath}, or apply them with a restart: "rollbridge shutdown", then deploy with --ensure-daemon (the proxy port is closed in between)`,
    details: {fields: changed},
  });
}

async function startSuccessor(daemon: HandoverHost, params: ParamsOf<`replace`>, configPath: string): Promise<number> {
  const {spawn} = await import('node:child_process');
  const logPath = params.logPath;
  // Never through a symlink, never a file someone else owns: the daemon may be root.
  const logFd = logPath === undefined ? `ignore` : openPrivateFile(logPath, APPEND_FLAGS, path.dirname(logPath));
  let child;
  try {
    child = spawn(params.executable.file, [...params.executable.args, `daemon`, `--config`, configPath, `--successor`], {
      cwd: path.dirname(configPath),
      env: daemonLaunchEnv(process.env) as NodeJS.ProcessEnv,
      detached: true,
      stdio: [`ignore`, logFd, logFd, `ipc`],
    });
  } finally {
    if (typeof logFd === `number`) fs.closeSync(logFd);
  }
  const successor = child;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(failed(`did not report ready within ${SUCCESSOR_READY_TIMEOUT_MS} ms`, logPath)), SUCCESSOR_READY_TIMEOUT_MS);
      successor.once(`error`, (error) => reject(failed(`could not be started: ${error.message}`, logPath)));
      successor.once(`exit`, (code, signal) => reject(failed(`exited (${signal ?? `code ${code}`}) before it was ready`, logPath)));
      successor.on(`message`, (message: unknown) => {
        if ((message as {type?: string} | null)?.type !== READY_MESSAGE) return;
        clearTimeout(timer);
        resolve();
      });
      successor.once(`spawn`, () => {
        successor.send({type: LISTEN_MESSAGE}, daemon.proxy.server as net.Server, (error) => {
          if (error) reject(failed(`did not receive the listening socket: ${error.message}`, logPath));
        });
      });
    });
  } catch (error) {
    successor.kill(`SIGKILL`);
    throw error;
  }
  successor.removeAllListeners(`exit`);
  successor.disconnect();
  successor.unref();
  return successor.pid as number;
}

function failed(what: string, logPath: string | undefined): RollbridgeError {
  return new RollbridgeError(ErrorCode.DAEMON_REPLACE_FAILED, `The new daemon ${what}; the running daemon carries on`, {
    fix: logPath === undefined ? `Run "rollbridge daemon --config <path>" in the foreground to see why it fails` : `Read ${logPath} for the new daemon's error`,
    details: {logPath},
  });
}

/**
 * The successor's side, before anything else: waits for the predecessor to send the listening socket
 * over the IPC channel.
 */
export function receiveListeningSocket(timeoutMs = SUCCESSOR_READY_TIMEOUT_MS): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    if (typeof process.send !== `function`) {
      reject(new RollbridgeError(ErrorCode.USAGE, `--successor is only for a daemon started by "rollbridge ensure-daemon --replace"`, {fix: `Run "rollbridge ensure-daemon --replace" instead`}));
      return;
    }
    const timer = setTimeout(() => reject(new Error(`no listening socket from the previous daemon within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (message: unknown, handle: unknown) => {
      if ((message as {type?: string} | null)?.type !== LISTEN_MESSAGE || handle === undefined) return;
      clearTimeout(timer);
      process.off(`message`, onMessage);
      resolve(handle as net.Server);
    };
    process.on(`message`, onMessage);
  });
}

/** The successor is serving: tell the predecessor, then cut the IPC channel (it must not keep either alive). */
export function reportReady(): void {
  process.send?.({type: READY_MESSAGE, pid: process.pid}, () => process.disconnect?.());
}
