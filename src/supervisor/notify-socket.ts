import {spawn} from 'node:child_process';
import type {ChildProcess} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import type {Logger} from '../log/logger.ts';
import {readProcStat} from '../system/proc.ts';
import {ensurePrivateDirectory} from '../util/private-file.ts';
import {hasNotifyHelper, installNotifyHelper} from './notify-helper.ts';

/** systemd's limit too: a datagram over 4096 bytes is refused whole. */
export const NOTIFY_MAX_DATAGRAM_BYTES = 4096;
// sockaddr_un.sun_path holds 108 bytes with the final NUL.
const MAX_SOCKET_PATH_BYTES = 107;
const MAX_STATUS_CHARS = 512;
const MAX_LOGGED_REJECTIONS = 10;
const BIND_TIMEOUT_MS = 5_000;
// The helper's frames (notify-helper/x64.S): u32 data bytes, u32 control bytes, u32 msg_flags, control, data.
const FRAME_HEADER_BYTES = 12;
const MAX_CONTROL_BYTES = 64;
const BOUND_MARKER = `BND\n`;
const MSG_CTRUNC = 0x08;
const MSG_TRUNC = 0x20;
const SOL_SOCKET = 1;
const SCM_CREDENTIALS = 2;
const HELPER_EXIT_REASONS: Record<number, string> = {2: `bad socket path`, 3: `socket() failed`, 4: `setsockopt(SO_PASSCRED) failed`, 5: `bind() failed`, 6: `recvmsg() failed`, 7: `writing to the daemon failed`, 8: `its stdin closed`};
// Written to the helper after each frame: it then closes the descriptors that came with the datagram.
const ACK = Buffer.from([1]);

/** What the process said on its notify socket since it was started (status). */
export type NotifyState = {ready: boolean; status?: string; mainPid?: number; stopping?: boolean};

type Credentials = {pid: number; uid: number; gid: number};

/**
 * sd_notify's NOTIFY_SOCKET for one run of one process (product §5.12): an AF_UNIX datagram socket in a
 * private directory (0700, the daemon's user), mode 0600, bound by the notify helper (notify-helper.ts).
 * Each datagram is checked before it counts: at most 4096 bytes (longer: refused, as systemd does), the
 * sender's credentials (SCM_CREDENTIALS, filled in by the kernel) present, its uid the daemon's (or
 * root), its pid a running member of the process's group (like NotifyAccess=all within a service: a
 * sender that exited before its datagram was checked is refused, as systemd refuses it; the helper holds
 * the descriptor of systemd-notify's BARRIER=1 until the check, so `systemd-notify --ready` waits for
 * it), UTF-8 without NUL.
 * Then READY=1 makes the process ready, STATUS= is kept (512 characters, C0 and C1 control characters removed),
 * MAINPID= is kept when that pid is in the process group, STOPPING=1 is noted, other keys are ignored.
 */
export class NotifySocket {
  readonly path: string;
  readonly #helper: ChildProcess;
  readonly #log: Logger;
  readonly #processGroup: () => number | undefined;
  readonly #uid: number;
  readonly #readyListeners = new Set<() => void>();
  #state: NotifyState = {ready: false};
  #pending: Buffer = Buffer.alloc(0);
  #rejections = 0;
  #closed = false;

  /**
   * Binds the socket at `socketPath` (its directory is created private; a stale socket left by a killed
   * daemon is replaced) and resolves once it accepts datagrams; throws ERR_HEALTH_NOTIFY_SOCKET_FAILED.
   * `processGroup` returns the process group whose members may notify (undefined before the spawn).
   */
  static async open(options: {socketPath: string; processId: string; log: Logger; processGroup: () => number | undefined}): Promise<NotifySocket> {
    const {socketPath, processId} = options;
    const fail = (reason: string, cause?: unknown): RollbridgeError => new RollbridgeError(ErrorCode.HEALTH_NOTIFY_SOCKET_FAILED, `Cannot create the notify socket ${socketPath} of process "${processId}": ${reason}`, {
      fix: Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES
        ? `Point TMPDIR of the daemon at a shorter directory (the notify socket lives in its runtime directory), or use health.type "http"`
        : `Check that ${path.dirname(socketPath)} is a directory only the daemon's user can write (mode 0700), or use health.type "http"`,
      details: {processId, socketPath, reason},
      ...(cause === undefined ? {} : {cause}),
    });
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) throw fail(`the path is ${Buffer.byteLength(socketPath)} bytes, a unix socket path holds at most ${MAX_SOCKET_PATH_BYTES}`);
    if (!hasNotifyHelper()) throw fail(`sd_notify sockets are supported on x64 and arm64, this is ${process.arch}`);
    let helperPath: string;
    try {
      // The runtime directory first, when no control socket or log made it yet.
      if (!fs.existsSync(path.dirname(path.dirname(socketPath)))) ensurePrivateDirectory(path.dirname(path.dirname(socketPath)));
      ensurePrivateDirectory(path.dirname(socketPath));
      helperPath = installNotifyHelper(path.dirname(socketPath));
      fs.rmSync(socketPath, {force: true});
    } catch (error) {
      throw fail(error instanceof Error ? error.message : String(error), error);
    }
    const helper = spawn(helperPath, [socketPath], {stdio: [`pipe`, `pipe`, `ignore`]});
    // The helper may be gone (killed with the process's socket); its stdin then reports EPIPE.
    helper.stdin?.on(`error`, () => undefined);
    const socket = new NotifySocket(socketPath, helper, options);
    try {
      await socket.#waitUntilBound();
      fs.chmodSync(socketPath, 0o600);
    } catch (error) {
      socket.close();
      throw fail(error instanceof Error ? error.message : String(error), error);
    }
    return socket;
  }

  private constructor(socketPath: string, helper: ChildProcess, options: {log: Logger; processGroup: () => number | undefined}) {
    this.path = socketPath;
    this.#helper = helper;
    this.#log = options.log;
    this.#processGroup = options.processGroup;
    this.#uid = typeof process.getuid === `function` ? process.getuid() : 0;
  }

  get state(): NotifyState {
    return {...this.#state};
  }

  /** Resolves at READY=1 (at once if it came already); aborting rejects with the signal's reason. */
  waitForReady(signal?: AbortSignal): Promise<void> {
    if (this.#state.ready) return Promise.resolve();
    signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const onReady = (): void => {
        signal?.removeEventListener(`abort`, onAbort);
        resolve();
      };
      const onAbort = (): void => {
        this.#readyListeners.delete(onReady);
        reject(signal?.reason);
      };
      this.#readyListeners.add(onReady);
      signal?.addEventListener(`abort`, onAbort, {once: true});
    });
  }

  /** Stops the helper and removes the socket file; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#helper.stdout?.removeAllListeners(`data`);
    this.#helper.stdin?.destroy();
    this.#helper.kill(`SIGKILL`);
    fs.rmSync(this.path, {force: true});
  }

  #waitUntilBound(): Promise<void> {
    const stdout = this.#helper.stdout;
    if (!stdout) return Promise.reject(new Error(`the notify helper has no stdout`));
    return new Promise<void>((resolve, reject) => {
      let head = Buffer.alloc(0);
      const timer = setTimeout(() => settle(new Error(`the notify helper did not bind within ${BIND_TIMEOUT_MS} ms`)), BIND_TIMEOUT_MS);
      const settle = (error?: Error): void => {
        clearTimeout(timer);
        stdout.off(`data`, onHead);
        this.#helper.off(`exit`, onEarlyExit);
        this.#helper.off(`error`, onError);
        if (error) {
          reject(error);
          return;
        }
        stdout.on(`data`, (chunk: Buffer) => this.#receive(chunk));
        this.#helper.once(`exit`, (code, signal) => {
          if (!this.#closed) this.#log.error(`notify helper exited`, {socketPath: this.path, code, signal, reason: code === null ? undefined : HELPER_EXIT_REASONS[code]});
        });
        resolve();
      };
      const onHead = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        if (head.length < BOUND_MARKER.length) return;
        if (head.subarray(0, BOUND_MARKER.length).toString(`latin1`) !== BOUND_MARKER) {
          settle(new Error(`the notify helper answered ${JSON.stringify(head.subarray(0, 16).toString(`latin1`))}`));
          return;
        }
        const rest = head.subarray(BOUND_MARKER.length);
        settle();
        if (rest.length > 0) this.#receive(rest);
      };
      const onEarlyExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        settle(new Error(code !== null ? `the notify helper exited with ${code} (${HELPER_EXIT_REASONS[code] ?? `unknown`})` : `the notify helper was killed by ${signal}`));
      };
      const onError = (error: Error): void => settle(error);
      stdout.on(`data`, onHead);
      this.#helper.once(`exit`, onEarlyExit);
      this.#helper.once(`error`, onError);
    });
  }

  #receive(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (this.#pending.length >= FRAME_HEADER_BYTES) {
      const dataBytes = this.#pending.readUInt32LE(0);
      const controlBytes = this.#pending.readUInt32LE(4);
      const flags = this.#pending.readUInt32LE(8);
      if (dataBytes > NOTIFY_MAX_DATAGRAM_BYTES || controlBytes > MAX_CONTROL_BYTES) {
        // Only a broken helper writes this: stop listening rather than misread the rest.
        this.#log.error(`notify helper output malformed`, {socketPath: this.path, dataBytes, controlBytes});
        this.close();
        return;
      }
      const frameBytes = FRAME_HEADER_BYTES + controlBytes + dataBytes;
      if (this.#pending.length < frameBytes) return;
      const control = this.#pending.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + controlBytes);
      const data = this.#pending.subarray(FRAME_HEADER_BYTES + controlBytes, frameBytes);
      this.#pending = this.#pending.subarray(frameBytes);
      this.#handleDatagram(control, data, flags);
      if (!this.#closed) this.#helper.stdin?.write(ACK);
    }
  }

  #handleDatagram(control: Buffer, data: Buffer, flags: number): void {
    if ((flags & MSG_TRUNC) !== 0) return this.#reject(`datagram over ${NOTIFY_MAX_DATAGRAM_BYTES} bytes`);
    if ((flags & MSG_CTRUNC) !== 0) return this.#reject(`control data truncated`);
    const sender = parseCredentials(control);
    if (!sender) return this.#reject(`no sender credentials`);
    if (sender.uid !== this.#uid && sender.uid !== 0) return this.#reject(`sender uid ${sender.uid} is not the daemon's (${this.#uid})`, sender.pid);
    const pgid = this.#processGroup();
    if (pgid === undefined) return this.#reject(`the process is not running`, sender.pid);
    const stat = readProcStat(sender.pid);
    if (stat === null || stat.state === `Z`) return this.#reject(`sender pid ${sender.pid} exited before its message was checked`, sender.pid);
    if (stat.pgrp !== pgid) return this.#reject(`sender pid ${sender.pid} is outside the process group ${pgid}`, sender.pid);
    const text = data.toString(`utf8`);
    if (text.includes(`\0`) || !Buffer.from(text, `utf8`).equals(data)) return this.#reject(`not UTF-8 text without NUL`, sender.pid);
    const before = this.#state;
    const next: NotifyState = {...before};
    for (const line of text.split(`\n`)) {
      const equals = line.indexOf(`=`);
      if (equals <= 0) continue;
      const key = line.slice(0, equals);
      const value = line.slice(equals + 1);
      if (key === `READY` && value === `1`) next.ready = true;
      else if (key === `STOPPING` && value === `1`) next.stopping = true;
      else if (key === `STATUS`) next.status = sanitizeStatus(value);
      else if (key === `MAINPID`) {
        const mainPid = /^[1-9]\d{0,9}$/.test(value) ? Number(value) : NaN;
        if (Number.isSafeInteger(mainPid) && readProcStat(mainPid)?.pgrp === pgid) next.mainPid = mainPid;
        else this.#reject(`MAINPID=${value.slice(0, 20)} is not a process of the group ${pgid}`, sender.pid);
      }
    }
    this.#state = next;
    if (next.ready && !before.ready) {
      this.#log.info(`process notified ready`, {socketPath: this.path, senderPid: sender.pid, ...(next.status !== undefined ? {status: next.status} : {})});
      for (const listener of [...this.#readyListeners]) listener();
      this.#readyListeners.clear();
    }
    if (next.stopping && !before.stopping) this.#log.info(`process notified stopping`, {socketPath: this.path, senderPid: sender.pid});
  }

  #reject(reason: string, pid?: number): void {
    this.#rejections += 1;
    if (this.#rejections > MAX_LOGGED_REJECTIONS) return;
    this.#log.warn(`notify message rejected`, {socketPath: this.path, reason, ...(pid !== undefined ? {senderPid: pid} : {}), ...(this.#rejections === MAX_LOGGED_REJECTIONS ? {note: `further rejections are not logged`} : {})});
  }
}

/** The SCM_CREDENTIALS message among the control messages (struct cmsghdr on 64-bit Linux: len u64, level i32, type i32). */
export function parseCredentials(control: Buffer): Credentials | null {
  let offset = 0;
  while (offset + 16 <= control.length) {
    const length = Number(control.readBigUInt64LE(offset));
    if (length < 16 || offset + length > control.length) return null;
    const level = control.readInt32LE(offset + 8);
    const type = control.readInt32LE(offset + 12);
    if (level === SOL_SOCKET && type === SCM_CREDENTIALS && length >= 28) {
      return {pid: control.readInt32LE(offset + 16), uid: control.readUInt32LE(offset + 20), gid: control.readUInt32LE(offset + 24)};
    }
    offset += (length + 7) & ~7;
  }
  return null;
}

function sanitizeStatus(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u001f\u007f-\u009f]/g, ``).slice(0, MAX_STATUS_CHARS);
}
