import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError, errorMessage, isRollbridgeError, toWireError} from '../errors/rollbridge-error.ts';
import type {Logger} from '../log/logger.ts';
import {
  createErrorFrame, createLineDecoder, createProgressFrame, createRequestFrame, createSuccessFrame, decodeRequestLine,
  decodeResponseLine, encodeFrame, resultOf, validateParams,
} from './protocol.ts';
import type {ControlCommandName, ParamsOf, RequestId, ResponseFrame, ResultOf} from './protocol.ts';
import {fsAsync} from '../util/fs-async.ts';

export type ControlHandlerContext = {
  /** Sends a progress frame for this request; ignored once the final frame is sent or the client is gone. */
  progress(event: Record<string, unknown>): void;
  /** Aborted when the client disconnects. */
  signal: AbortSignal;
  /** The client connection, opaque: pass it as `close({keep})` from the `shutdown` handler. */
  connection: unknown;
};

export type ControlHandlers = {
  [C in ControlCommandName]: (params: ParamsOf<C>, context: ControlHandlerContext) => Promise<ResultOf<C>>;
};

export type ControlServerOptions = {
  path: string;
  /** Permission bits of the socket. @default 0o600 */
  mode?: number | undefined;
  /** Numeric uid for chown (resolve names with system/users.ts). */
  owner?: number | undefined;
  /** Numeric gid for chown; a directory we create then gets mode 0710 and this group. */
  group?: number | undefined;
  application: string;
  maxMessageBytes: number;
  handlers: ControlHandlers;
  log: Logger;
  /** Daemon replacement: publish over the predecessor's live socket (atomic rename) instead of refusing it. */
  replaceExisting?: boolean | undefined;
};

export type ProbeResult = {state: `absent`} | {state: `stale`} | {state: `daemon`; status: Record<string, unknown>} | {state: `foreign`};

const DEFAULT_SOCKET_MODE = 0o600;
const DEFAULT_PROBE_TIMEOUT_MS = 1_000;
const PROBE_MAX_REPLY_BYTES = 64 * 1024 * 1024;
/** Rejected control requests after the first are counted and logged once per this window. */
const REJECTION_LOG_WINDOW_MS = 10_000;

/**
 * The daemon's end of the control socket: accepts connections, frames NDJSON, validates each request
 * against protocol.ts and dispatches it to the injected handler table. Nothing a client sends can
 * throw out of it.
 */
export class ControlServer {
  readonly #server: net.Server;
  #path: string;
  #inode: {dev: number; ino: number} = {dev: -1, ino: -1};
  #listening = false;
  readonly #options: ControlServerOptions;
  readonly #log: Logger;
  readonly #connections = new Set<net.Socket>();
  #closed = false;
  #rejections: {count: number; codes: Set<string>; timer: NodeJS.Timeout} | null = null;

  private constructor(socketPath: string, options: ControlServerOptions, log: Logger) {
    this.#path = socketPath;
    this.#options = options;
    this.#log = log;
    this.#server = net.createServer((socket) => this.#accept(socket));
    this.#server.on(`error`, (error) => log.error(`Control socket error`, {err: error}));
  }

  static async start(options: ControlServerOptions): Promise<ControlServer> {
    const log = options.log.child({component: `control`});
    const socketPath = path.resolve(options.path);
    await prepareDirectory(socketPath, options.group);
    if (!options.replaceExisting) await clearSocketPath(socketPath, options.application, log);

    const instance = new ControlServer(socketPath, options, log);
    instance.#inode = await bindSocket(instance.#server, socketPath, options, log);
    instance.#listening = true;
    log.info(`control socket listening`, {path: socketPath});
    return instance;
  }

  get path(): string {
    return this.#path;
  }

  /**
   * Renames the listening socket to `target` (atomic; replaces a file left there): clients that connect
   * by the new path reach this server, open connections carry on.
   */
  async relocate(target: string): Promise<void> {
    const socketPath = path.resolve(target);
    await prepareDirectory(socketPath, this.#options.group);
    await fsAsync.rename(this.#path, socketPath);
    this.#path = socketPath;
  }

  /** Stop accepting, destroy every open connection except `keep` (the one that asked for shutdown), unlink the socket file. */
  async close(options: {keep?: unknown} = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#flushRejections();
    const serverClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#connections) {
      if (socket !== options.keep) socket.destroy();
    }
    try {
      const stat = fs.lstatSync(this.#path);
      if (stat.dev === this.#inode.dev && stat.ino === this.#inode.ino) fs.unlinkSync(this.#path);
    } catch {
      // Already gone, or replaced by someone else's socket: nothing of ours to remove.
    }
    // The kept connection ends after its shutdown reply, which may still be pending on this very call.
    if (options.keep === undefined || !this.#connections.has(options.keep as net.Socket)) await serverClosed;
  }

  #accept(socket: net.Socket): void {
    // Connections that arrive before the socket has its final permissions and name are refused.
    if (this.#closed || !this.#listening) {
      socket.on(`error`, () => {});
      socket.destroy();
      return;
    }
    this.#connections.add(socket);
    const abort = new AbortController();
    let overflowed = false;
    // One request at a time per connection, and nothing more is read while one runs, while decoded
    // lines wait, or while a reply is not drained: a client that pipelines without reading its
    // replies holds at most one socket chunk of requests and one reply in the daemon's memory.
    const queue: string[] = [];
    let next = 0;
    let busy = false;
    let waitingForDrain = false;
    const updateFlow = (): void => {
      if (socket.destroyed) return;
      const hold = busy || waitingForDrain || next < queue.length;
      if (hold && !socket.isPaused()) socket.pause();
      else if (!hold && socket.isPaused()) socket.resume();
    };
    const pump = (): void => {
      while (!busy && !waitingForDrain && next < queue.length && !socket.destroyed) {
        const line = queue[next++]!;
        if (next === queue.length) {
          queue.length = 0;
          next = 0;
        }
        busy = true;
        void this.#handleLine(line, socket, abort.signal, send).finally(() => {
          busy = false;
          pump();
        });
      }
      updateFlow();
    };
    socket.on(`error`, (error: NodeJS.ErrnoException) => {
      this.#log.debug(`control connection error`, {code: error.code, error: error.message});
    });
    socket.on(`close`, () => {
      this.#connections.delete(socket);
      queue.length = 0;
      next = 0;
      abort.abort(new RollbridgeError(ErrorCode.DAEMON_UNREACHABLE, `The control client disconnected`));
    });
    socket.on(`drain`, () => {
      waitingForDrain = false;
      pump();
    });
    const send = (frame: ResponseFrame): boolean => {
      if (socket.destroyed || socket.writableEnded) return false;
      let line: string;
      try {
        line = encodeFrame(frame);
      } catch (error) {
        // A circular or BigInt value in a result or error: the client still gets a final frame.
        this.#log.error(`Control reply not serialisable`, {err: error, status: frame.status});
        const message = `The daemon could not serialise its reply: ${errorMessage(error)}`;
        line = encodeFrame(createErrorFrame(frame.id, {code: ErrorCode.INTERNAL, message}));
      }
      if (!socket.write(line)) {
        waitingForDrain = true;
        updateFlow();
      }
      return true;
    };
    const decode = createLineDecoder({
      maxLineBytes: this.#options.maxMessageBytes,
      onLine: (line) => {
        if (overflowed) return;
        queue.push(line);
      },
      onOverflow: () => {
        overflowed = true;
        queue.length = 0;
        next = 0;
        const max = this.#options.maxMessageBytes;
        this.#logRejected(ErrorCode.CONTROL_MESSAGE_TOO_LARGE, `Control message exceeds the limit of ${max} bytes`);
        const error = new RollbridgeError(ErrorCode.CONTROL_MESSAGE_TOO_LARGE, `Control message exceeds the limit of ${max} bytes`, {
          fix: `Send one JSON request per line, each under ${max} bytes`,
          details: {maxMessageBytes: max},
        });
        // Reply, then drop the connection: the rest of the oversized line is never read.
        if (!socket.destroyed && !socket.writableEnded) socket.end(encodeFrame(createErrorFrame(null, error.toWire())), () => socket.destroy());
        else socket.destroy();
      },
    });
    socket.on(`data`, (chunk: Buffer) => {
      decode(chunk);
      pump();
    });
  }

  /**
   * Rejected requests are logged once, then counted: a client sending a million junk lines adds two
   * log lines (the first and a count per REJECTION_LOG_WINDOW_MS), not a million, and does not push
   * the real events out of the event history.
   */
  #logRejected(code: string, reason: string): void {
    if (this.#rejections === null) {
      this.#log.warn(`Control request rejected`, {code, reason});
      const rejections = {count: 0, codes: new Set<string>(), timer: setTimeout(() => this.#flushRejections(), REJECTION_LOG_WINDOW_MS)};
      rejections.timer.unref();
      this.#rejections = rejections;
      return;
    }
    this.#rejections.count++;
    this.#rejections.codes.add(code);
  }

  #flushRejections(): void {
    const rejections = this.#rejections;
    if (rejections === null) return;
    clearTimeout(rejections.timer);
    this.#rejections = null;
    if (rejections.count > 0) {
      this.#log.warn(`Control requests rejected (repeated)`, {count: rejections.count, codes: [...rejections.codes], windowMs: REJECTION_LOG_WINDOW_MS});
    }
  }

  async #handleLine(line: string, socket: net.Socket, signal: AbortSignal, send: (frame: ResponseFrame) => boolean): Promise<void> {
    let id: RequestId | null = null;
    let command: ControlCommandName | undefined;
    let handling = false;
    try {
      const request = decodeRequestLine(line);
      id = request.id;
      command = request.command;
      const params = validateParams(command, request.params);
      let finished = false;
      const context: ControlHandlerContext = {
        progress: (event) => {
          if (finished) return;
          try {
            send(createProgressFrame(id, JSON.parse(JSON.stringify(event)) as Record<string, unknown>));
          } catch (error) {
            this.#log.warn(`Control progress event dropped`, {command, err: error});
          }
        },
        signal,
        connection: socket,
      };
      const handler = this.#options.handlers[command] as (params: unknown, context: ControlHandlerContext) => Promise<Record<string, unknown>>;
      handling = true;
      const result = await handler(params, context);
      finished = true;
      send(createSuccessFrame(id, result));
      if (command === `shutdown`) socket.end();
    } catch (caught) {
      // Nothing a client sends is an internal error: a failure before the handler runs (a parser or
      // validator giving up on hostile input) is a protocol error.
      const error = !handling && !isRollbridgeError(caught)
        ? new RollbridgeError(ErrorCode.CONTROL_INVALID_REQUEST, `Control request could not be read: ${errorMessage(caught)}`, {
          fix: `Send {"command": "<name>", ...params} as one JSON object per line`,
        })
        : caught;
      if (id === null && isRollbridgeError(error)) {
        const detailId = error.details.id;
        if (typeof detailId === `string` || typeof detailId === `number`) id = detailId;
      }
      this.#logFailure(handling ? command : undefined, error);
      send(createErrorFrame(id, toWireError(error)));
    }
  }

  #logFailure(command: ControlCommandName | undefined, error: unknown): void {
    if (!isRollbridgeError(error)) {
      this.#log.error(`command failed`, {command, code: ErrorCode.INTERNAL, error: errorMessage(error), err: error, stack: error instanceof Error ? error.stack : undefined});
    } else if (command === undefined) {
      this.#logRejected(error.code, error.message);
    } else {
      this.#log.warn(`command failed`, {command, code: error.code, error: error.message});
    }
  }
}

/**
 * What is at a control socket path: nothing, a stale socket file, a rollbridge daemon (with its status),
 * or some other listener that does not answer `status` within `timeoutMs`.
 */
export async function probeControlSocket(socketPath: string, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  return new Promise<ProbeResult>((resolve, reject) => {
    const socket = net.connect(socketPath);
    let settled = false;
    let connected = false;
    const finish = (result: ProbeResult | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(() => finish({state: `foreign`}), timeoutMs);
    socket.on(`error`, (error: NodeJS.ErrnoException) => {
      if (connected) return finish({state: `foreign`});
      if (error.code === `ENOENT`) finish({state: `absent`});
      else if (error.code === `ECONNREFUSED`) finish({state: `stale`});
      else finish(error);
    });
    socket.on(`connect`, () => {
      connected = true;
      socket.write(encodeFrame(createRequestFrame(`probe`, `status`, {})));
    });
    socket.on(`data`, createLineDecoder({
      maxLineBytes: PROBE_MAX_REPLY_BYTES,
      onLine: (line) => {
        try {
          const frame = decodeResponseLine(line);
          if (frame.status === `progress`) return;
          if (frame.status === `success` && typeof frame.application === `string`) {
            finish({state: `daemon`, status: resultOf(frame)});
            return;
          }
        } catch {
          // Not our protocol.
        }
        finish({state: `foreign`});
      },
      onOverflow: () => finish({state: `foreign`}),
    }));
    socket.on(`close`, () => finish({state: `foreign`}));
  });
}

async function prepareDirectory(socketPath: string, group: number | undefined): Promise<void> {
  const dir = path.dirname(socketPath);
  let stat = await tryLstat(dir);
  if (stat === null) {
    const parent = path.dirname(dir);
    if (await tryLstat(parent) === null) {
      throw listenFailed(socketPath, `its parent directory ${parent} does not exist`, undefined, `Create ${parent} or set a different control.path`);
    }
    try {
      await fsAsync.mkdir(dir, {mode: 0o700});
      // mkdir's mode is filtered by the umask; set the exact bits.
      await fsAsync.chmod(dir, group === undefined ? 0o700 : 0o710);
      if (group !== undefined) await chownOrThrow(dir, -1, group);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== `EEXIST`) {
        if (isRollbridgeError(error)) throw error;
        throw listenFailed(socketPath, `creating ${dir} failed (${codeOf(error)})`, error, `Create ${dir} (mode 0700) or set a different control.path`);
      }
    }
    stat = await tryLstat(dir);
    if (stat === null) throw listenFailed(socketPath, `${dir} disappeared while it was being created`, undefined);
  }
  if (stat.isSymbolicLink()) {
    throw unsafe(socketPath, `its directory ${dir} is a symbolic link`, `Point control.path at a real directory, not a symbolic link`);
  }
  if (!stat.isDirectory()) {
    throw listenFailed(socketPath, `${dir} is not a directory`, undefined, `Set control.path inside a directory`);
  }
  if ((stat.mode & 0o022) !== 0 && (stat.mode & 0o1000) === 0) {
    throw unsafe(socketPath, `its directory ${dir} is writable by other users (mode ${formatMode(stat.mode)}) without the sticky bit`,
      `Run "chmod go-w ${dir}" or set control.path inside a directory only the daemon's user can write`);
  }
  const uid = currentUid();
  if (stat.uid !== 0 && stat.uid !== uid) {
    throw unsafe(socketPath, `its directory ${dir} is owned by another user (uid ${stat.uid})`,
      `Set control.path inside a directory owned by the daemon's user (uid ${uid}) or root`);
  }
}

/** Leaves the path free: removes a stale socket, refuses anything alive or not a socket. */
async function clearSocketPath(socketPath: string, application: string, log: Logger): Promise<void> {
  const stat = await tryLstat(socketPath);
  if (stat === null) return;
  if (stat.isSymbolicLink()) {
    throw unsafe(socketPath, `it is a symbolic link`, `Remove the symbolic link ${socketPath} or set a different control.path`);
  }
  if (!stat.isSocket()) {
    throw inUse(socketPath, `${socketPath} exists and is not a socket`);
  }
  const probe = await probeOrWrap(socketPath);
  switch (probe.state) {
    case `absent`:
      return;
    case `stale`:
      await removeStale(socketPath, log);
      return;
    case `daemon`:
      throw daemonRunning(socketPath, application, probe.status);
    case `foreign`:
      throw inUse(socketPath, `The control socket ${socketPath} is already in use by another process`);
  }
}

async function probeOrWrap(socketPath: string): Promise<ProbeResult> {
  try {
    return await probeControlSocket(socketPath);
  } catch (error) {
    throw listenFailed(socketPath, `probing the existing socket failed (${codeOf(error)})`, error);
  }
}

async function removeStale(socketPath: string, log: Logger): Promise<void> {
  try {
    await fsAsync.unlink(socketPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== `ENOENT`) {
      throw listenFailed(socketPath, `removing the stale socket failed (${codeOf(error)})`, error, `Remove ${socketPath} by hand or set a different control.path`);
    }
  }
  log.info(`Removed stale control socket`, {path: socketPath});
}

/**
 * Listens on `<path>.<pid>.tmp`, applies mode and ownership, then hard-links it onto `<path>` (which
 * fails instead of replacing a socket another daemon created meanwhile). The final path therefore
 * never exists with umask permissions.
 */
async function bindSocket(server: net.Server, socketPath: string, options: ControlServerOptions, log: Logger): Promise<{dev: number; ino: number}> {
  const tmpPath = `${socketPath}.${process.pid}.tmp`;
  const leftover = await tryLstat(tmpPath);
  if (leftover?.isSocket()) await fsAsync.unlink(tmpPath);
  try {
    await listen(server, tmpPath);
  } catch (error) {
    throw listenFailed(socketPath, `listening on ${tmpPath} failed (${codeOf(error)})`, error);
  }
  try {
    await fsAsync.chmod(tmpPath, options.mode ?? DEFAULT_SOCKET_MODE);
    if (options.owner !== undefined || options.group !== undefined) await chownOrThrow(tmpPath, options.owner ?? -1, options.group ?? -1);
    const stat = await fsAsync.lstat(tmpPath);
    // A successor renames its socket over the predecessor's: clients find one or the other, never none.
    if (options.replaceExisting) await fsAsync.rename(tmpPath, socketPath);
    else await publish(tmpPath, socketPath, options.application, log);
    return {dev: stat.dev, ino: stat.ino};
  } catch (error) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await fsAsync.unlink(tmpPath).catch(() => {});
    if (isRollbridgeError(error)) throw error;
    throw listenFailed(socketPath, `preparing the socket failed (${codeOf(error)})`, error);
  }
}

async function publish(tmpPath: string, socketPath: string, application: string, log: Logger): Promise<void> {
  try {
    await fsAsync.link(tmpPath, socketPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === `EEXIST`) {
      // Someone took the path between our check and now.
      await clearSocketPath(socketPath, application, log);
      await fsAsync.rename(tmpPath, socketPath);
      return;
    }
    // Filesystems without hard links for sockets: rename is still atomic, only not exclusive.
    await fsAsync.rename(tmpPath, socketPath);
    return;
  }
  await fsAsync.unlink(tmpPath);
}

function listen(server: net.Server, socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once(`error`, onError);
    server.listen(socketPath, () => {
      server.off(`error`, onError);
      resolve();
    });
  });
}

async function chownOrThrow(target: string, owner: number, group: number): Promise<void> {
  try {
    await fsAsync.chown(target, owner, group);
  } catch (error) {
    const who = [owner === -1 ? undefined : `uid ${owner}`, group === -1 ? undefined : `gid ${group}`].filter(Boolean).join(` and `);
    throw new RollbridgeError(ErrorCode.CONTROL_SOCKET_PERMISSIONS, `Cannot give ${target} to ${who} (${codeOf(error)})`, {
      fix: `Run the daemon as root or as a member of that group, or unset control.owner / control.group`,
      details: {path: target, owner, group},
      cause: error,
    });
  }
}

async function tryLstat(target: string): Promise<fs.Stats | null> {
  try {
    return await fsAsync.lstat(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === `ENOENT` || (error as NodeJS.ErrnoException).code === `ENOTDIR`) return null;
    throw error;
  }
}

function daemonRunning(socketPath: string, application: string, status: Record<string, unknown>): RollbridgeError {
  const running = typeof status.application === `string` ? status.application : application;
  const active = typeof status.activeReleaseId === `string` ? status.activeReleaseId : `none`;
  return new RollbridgeError(ErrorCode.DAEMON_RUNNING, `A rollbridge daemon for application "${running}" is already running on ${socketPath} (active release: ${active})`, {
    fix: `Run "rollbridge status" to inspect it or "rollbridge shutdown" to stop it, or set a different control.path`,
    details: {path: socketPath, application: running, activeReleaseId: active === `none` ? null : active},
  });
}

function inUse(socketPath: string, message: string): RollbridgeError {
  return new RollbridgeError(ErrorCode.CONTROL_SOCKET_IN_USE, message, {
    fix: `Stop the process holding ${socketPath} or set a different control.path`,
    details: {path: socketPath},
  });
}

function unsafe(socketPath: string, reason: string, fix: string): RollbridgeError {
  return new RollbridgeError(ErrorCode.CONTROL_SOCKET_UNSAFE, `Refusing control socket ${socketPath}: ${reason}`, {fix, details: {path: socketPath}});
}

function listenFailed(socketPath: string, reason: string, cause: unknown, fix = `Set control.path to a writable location (at most about 100 bytes long)`): RollbridgeError {
  return new RollbridgeError(ErrorCode.CONTROL_LISTEN_FAILED, `Cannot create control socket ${socketPath}: ${reason}`, {
    fix,
    details: {path: socketPath},
    cause,
  });
}

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException | undefined)?.code ?? errorMessage(error);
}

function formatMode(mode: number): string {
  return `0${(mode & 0o7777).toString(8)}`;
}

function currentUid(): number {
  return typeof process.getuid === `function` ? process.getuid() : 0;
}
