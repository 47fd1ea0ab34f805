import net from 'node:net';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {completeLegacyResult, createLineDecoder, isLegacyDaemonStatus, listLegacyUnsupported, createRequestFrame, decodeResponseLine, encodeFrame, resultOf, validateParams, validateProgress, validateResult} from './protocol.ts';
import type {ControlCommandName, ParamsOf, ProgressOf, ResponseFrame, ResultOf} from './protocol.ts';

export type ControlCallOptions<C extends ControlCommandName = ControlCommandName> = {
  /** Each progress frame's event, validated (an invalid one fails the call with ERR_CONTROL_INVALID_RESPONSE). */
  onProgress?: ((event: ProgressOf<C>) => void) | undefined;
  /**
   * Rejects the call locally with the signal's reason; the daemon is not told (the protocol has no
   * cancel). The daemon serves one request per connection at a time, so later calls on this client wait
   * for the abandoned one: close the client to abort it in the daemon.
   */
  signal?: AbortSignal;
};

type PendingCall = {
  command: ControlCommandName;
  sentAt: number;
  onProgress: ((event: unknown) => void) | undefined;
  resolve(result: Record<string, unknown>): void;
  reject(error: unknown): void;
};

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Replies (status with logs) can be large, but a runaway peer must not exhaust memory. */
const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;
const UNREACHABLE_FIX = `Start one with "rollbridge ensure-daemon" (or "rollbridge deploy --ensure-daemon"), or check control.path`;

/**
 * The CLI's end of the control socket. Several calls may run at once on one client; replies are
 * matched by request id (an upstream daemon without ids is answered in order).
 */
export class ControlClient {
  readonly #socket: net.Socket;
  readonly #path: string;
  readonly #pending = new Map<number, PendingCall>();
  #nextId = 1;
  /** Whether the daemon is rollbridge 0.1, asked once (with a status call) when a request needs to know. */
  #legacy: Promise<boolean> | undefined;
  #closedError: RollbridgeError | undefined;

  private constructor(socket: net.Socket, socketPath: string) {
    this.#socket = socket;
    this.#path = socketPath;
    socket.on(`data`, createLineDecoder({
      maxLineBytes: MAX_RESPONSE_BYTES,
      onLine: (line) => this.#receive(line),
      onOverflow: () => {
        this.#fail(() => new RollbridgeError(ErrorCode.CONTROL_INVALID_RESPONSE, `The daemon on ${socketPath} sent a line over ${MAX_RESPONSE_BYTES} bytes`, {details: {path: socketPath}}));
        socket.destroy();
      },
    }));
    socket.on(`error`, (error: NodeJS.ErrnoException) => {
      this.#fail((command) => new RollbridgeError(ErrorCode.DAEMON_UNREACHABLE, `The connection to the rollbridge daemon on ${socketPath} failed${during(command)} (${error.code ?? error.message})`, {
        fix: UNREACHABLE_FIX,
        details: {path: socketPath},
        cause: error,
      }));
    });
    socket.on(`close`, () => {
      this.#fail((command) => new RollbridgeError(ErrorCode.DAEMON_UNREACHABLE, `The rollbridge daemon on ${socketPath} closed the connection${command === undefined ? `` : ` before answering "${command}"`}`, {
        fix: `Check the daemon's log for a crash or shutdown, then retry (run "rollbridge status")`,
        details: {path: socketPath},
      }));
    });
  }

  static connect(socketPath: string, options: {timeoutMs?: number} = {}): Promise<ControlClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(unreachable(socketPath, `timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      const onError = (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        if (error.code === `EACCES` || error.code === `EPERM`) reject(permissionDenied(socketPath, error));
        else reject(unreachable(socketPath, error.code === `ECONNREFUSED` ? `ECONNREFUSED: stale socket` : error.code ?? error.message, error));
      };
      socket.once(`error`, onError);
      socket.once(`connect`, () => {
        clearTimeout(timer);
        socket.off(`error`, onError);
        resolve(new ControlClient(socket, socketPath));
      });
    });
  }

  get path(): string {
    return this.#path;
  }

  /**
   * Sends one request and resolves with its validated result; an error reply rejects with RollbridgeError.fromWire.
   * A request with options a rollbridge 0.1 daemon would ignore with another effect (listLegacyUnsupported) is
   * sent only once a status call showed the daemon is not 0.1; else it rejects with ERR_CONTROL_LEGACY_UNSUPPORTED.
   */
  call<C extends ControlCommandName>(command: C, params: ParamsOf<C>, options: ControlCallOptions<C> = {}): Promise<ResultOf<C>> {
    const unsupported = listLegacyUnsupported(command, params as Record<string, unknown>);
    if (unsupported.length === 0) return this.#send(command, params, options);
    this.#legacy ??= this.#send(`status`, {}, {}).then((status) => isLegacyDaemonStatus(status as Record<string, unknown>));
    return this.#legacy.then((legacy) => {
      if (!legacy) return this.#send(command, params, options);
      throw new RollbridgeError(ErrorCode.CONTROL_LEGACY_UNSUPPORTED, `The daemon on ${this.#path} is rollbridge 0.1, which cannot do ${unsupported.join(`, `)}; nothing was sent`, {
        fix: `Upgrade it first with "rollbridge deploy --ensure-daemon --release-path <dir>" or "rollbridge ensure-daemon" (docs/migrating-from-0.1.md), or run "${command}" without that option`,
        details: {path: this.#path, command, unsupported},
      });
    });
  }

  #send<C extends ControlCommandName>(command: C, params: ParamsOf<C>, options: ControlCallOptions<C>): Promise<ResultOf<C>> {
    return new Promise<ResultOf<C>>((resolve, reject) => {
      if (this.#closedError !== undefined) return reject(this.#closedError);
      validateParams(command, params);
      const {signal} = options;
      if (signal?.aborted) return reject(signal.reason);
      const id = this.#nextId++;
      const onAbort = () => {
        this.#pending.delete(id);
        reject(signal?.reason);
      };
      const settle = () => signal?.removeEventListener(`abort`, onAbort);
      this.#pending.set(id, {
        command,
        sentAt: performance.now(),
        onProgress: options.onProgress === undefined ? undefined : (event) => options.onProgress?.(validateProgress(command, event)),
        resolve: (result) => {
          settle();
          try {
            resolve(validateResult(command, result));
          } catch (error) {
            reject(error);
          }
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
      signal?.addEventListener(`abort`, onAbort, {once: true});
      this.#socket.write(encodeFrame(createRequestFrame(id, command, params as Record<string, unknown>)));
    });
  }

  /** Closes the connection; calls still waiting reject with ERR_DAEMON_UNREACHABLE. */
  close(): void {
    this.#fail((command) => new RollbridgeError(ErrorCode.DAEMON_UNREACHABLE, `The control connection to ${this.#path} was closed by the client${during(command)}`, {details: {path: this.#path}}));
    this.#socket.destroy();
  }

  #receive(line: string): void {
    let frame: ResponseFrame;
    try {
      frame = decodeResponseLine(line);
    } catch (error) {
      this.#fail(() => error as RollbridgeError);
      this.#socket.destroy();
      return;
    }
    const key = typeof frame.id === `number` ? frame.id : frame.id === null ? this.#oldestPending() : Number(frame.id);
    const call = key === undefined ? undefined : this.#pending.get(key);
    if (call === undefined || key === undefined) return;
    switch (frame.status) {
      case `progress`:
        try {
          call.onProgress?.(frame.event);
        } catch (error) {
          this.#pending.delete(key);
          call.reject(error);
        }
        return;
      case `success`:
        this.#pending.delete(key);
        // Only a rollbridge 0.1 daemon answers a request with a success frame without its id.
        call.resolve(frame.id === null ? completeLegacyResult(call.command, resultOf(frame), performance.now() - call.sentAt) : resultOf(frame));
        return;
      case `error`:
        this.#pending.delete(key);
        call.reject(RollbridgeError.fromWire(frame.error));
        return;
    }
  }

  /** Replies without an id (upstream daemons, or requests the server could not parse) go to the oldest call. */
  #oldestPending(): number | undefined {
    return this.#pending.keys().next().value;
  }

  /** Rejects every waiting call with the error `describe` builds for its command; later calls get the first one. */
  #fail(describe: (command?: string) => RollbridgeError): void {
    this.#closedError ??= describe();
    const calls = [...this.#pending.values()];
    this.#pending.clear();
    for (const call of calls) call.reject(describe(call.command));
  }
}

function during(command: string | undefined): string {
  return command === undefined ? `` : ` during "${command}"`;
}

/**
 * The socket (or a directory on its way) exists but this user may not use it: a daemon may well be running,
 * so this must never read as "start one". The CLI adds who owns what (cli/socket-access.ts).
 */
function permissionDenied(socketPath: string, cause: NodeJS.ErrnoException): RollbridgeError {
  return new RollbridgeError(ErrorCode.CONTROL_PERMISSION_DENIED, `Permission denied connecting to the control socket ${socketPath} (${cause.code ?? `EACCES`})`, {
    fix: `Run the command as the user the daemon runs as (or with sudo), or set control.path to a socket you may use`,
    details: {path: socketPath, errno: cause.code ?? `EACCES`},
    cause,
  });
}

function unreachable(socketPath: string, reason: string, cause?: unknown): RollbridgeError {
  return new RollbridgeError(ErrorCode.DAEMON_UNREACHABLE, `No rollbridge daemon is listening on ${socketPath} (${reason})`, {
    fix: UNREACHABLE_FIX,
    details: {path: socketPath},
    cause,
  });
}
