import fs from 'node:fs';
import path from 'node:path';
import {APPEND_FLAGS, openPrivateFile} from '../util/private-file.ts';
import {shiftRotatedFiles} from './log-rotation.ts';
import type {Logger} from './logger.ts';

export type BufferedLogFileOptions = {
  path: string;
  /** The file is rotated once it grows past this (logs.maxBytes). */
  maxBytes: number;
  /** Rotated copies kept (logs.files); 0 truncates. */
  files: number;
  log: Logger;
  /** Lines wait at most this long before they are written. */
  flushIntervalMs?: number;
  /** Above this many bytes waiting (the disk is slow or failing), new lines are dropped and counted. */
  maxBufferedBytes?: number;
};

const DEFAULT_FLUSH_INTERVAL_MS = 200;
/** A batch this large is written at once instead of at the next interval. */
const FLUSH_BYTES = 64 * 1024;
/** Lines are encoded into blocks this large: a batch reaches FLUSH_BYTES within one block (one write, not a writev of two). */
const BLOCK_BYTES = FLUSH_BYTES + 16 * 1024;
const DEFAULT_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/** Encoded lines waiting to be written: `length` bytes of `buffer`, holding `lines` whole lines. */
type Block = {buffer: Buffer; length: number; lines: number};

/**
 * A file of lines written in batches (one asynchronous write per batch, never one write per line, and
 * never a synchronous write on the caller's path), rotated like the process logs (log-rotation.ts).
 * Each line is encoded into a block of bytes as it comes, so no string outlives its write() call (an
 * access log line is a tree of a dozen string parts: kept until the batch, hundreds of them were
 * copied by every young-generation GC and then joined and encoded at once); two blocks are reused
 * in turn, one filling while the other is written.
 * When the disk cannot take the lines (full, failing, too slow), lines are dropped and counted in
 * `dropped`, never thrown at the caller; a batch cut short by a full disk is cut back, so the file
 * never holds a torn line.
 */
export class BufferedLogFile {
  readonly path: string;
  readonly #log: Logger;
  readonly #flushIntervalMs: number;
  readonly #maxBufferedBytes: number;
  #maxBytes: number;
  #files: number;
  #fd: number;
  #size: number;
  /** Full blocks waiting for the next write, oldest first. */
  #blocks: Block[] = [];
  /** The block lines are encoded into (null until the first line after a write took it). */
  #current: Block | null = null;
  /** A written block's buffer, reused for the next one. */
  #spare: Buffer | null = null;
  #bufferedBytes = 0;
  #writing = false;
  #timer: NodeJS.Timeout | null = null;
  #failing = false;
  #closed = false;
  #idle: Array<() => void> = [];
  #dropped = 0;
  #written = 0;

  /** Opens (creates 0600, appends) the file; throws UnsafePathError or the system error. */
  constructor(options: BufferedLogFileOptions) {
    this.path = options.path;
    this.#log = options.log;
    this.#maxBytes = options.maxBytes;
    this.#files = options.files;
    this.#flushIntervalMs = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    fs.mkdirSync(path.dirname(options.path), {recursive: true, mode: 0o700});
    this.#fd = openPrivateFile(options.path, APPEND_FLAGS, path.dirname(options.path));
    this.#size = fs.fstatSync(this.#fd).size;
  }

  /** Lines dropped so far (the disk was full or failing, or could not keep up). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Lines written so far. */
  get written(): number {
    return this.#written;
  }

  /** Live config reload of logs.maxBytes / logs.files. */
  updateLimits(limits: {maxBytes: number; files: number}): void {
    this.#maxBytes = limits.maxBytes;
    this.#files = limits.files;
  }

  /** Queues one line (with its `\n`). */
  write(line: string): void {
    if (this.#closed || this.#bufferedBytes + line.length > this.#maxBufferedBytes) {
      this.#dropped++;
      return;
    }
    // UTF-8 takes at most 3 bytes per UTF-16 code unit, so a line given this much room is never cut.
    const room = line.length * 3;
    let block = this.#current;
    if (block === null || block.length + room > block.buffer.length) block = this.#startBlock(room);
    const bytes = block.buffer.write(line, block.length);
    block.length += bytes;
    block.lines++;
    this.#bufferedBytes += bytes;
    if (this.#writing) return;
    if (this.#bufferedBytes >= FLUSH_BYTES) this.#flush();
    else this.#armTimer();
  }

  #armTimer(): void {
    if (this.#timer !== null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#flush();
    }, this.#flushIntervalMs);
    this.#timer.unref();
  }

  /** Resolves once every line queued so far has been written (or dropped). */
  flush(): Promise<void> {
    if (!this.#writing && !this.#hasLines()) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.#idle.push(resolve));
    this.#flush();
    return done;
  }

  /** Writes what is queued, then closes the file; later lines are dropped. */
  async close(): Promise<void> {
    await this.flush();
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    fs.closeSync(this.#fd);
  }

  #hasLines(): boolean {
    return this.#blocks.length > 0 || (this.#current !== null && this.#current.lines > 0);
  }

  /** Seals the block being filled (if any) and starts one with at least `room` bytes free. */
  #startBlock(room: number): Block {
    if (this.#current !== null && this.#current.lines > 0) this.#blocks.push(this.#current);
    const spare = this.#spare;
    this.#spare = null;
    const buffer = spare !== null && spare.length >= room ? spare : Buffer.allocUnsafeSlow(Math.max(BLOCK_BYTES, room));
    const block: Block = {buffer, length: 0, lines: 0};
    this.#current = block;
    return block;
  }

  #flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#writing) return;
    if (!this.#hasLines()) {
      this.#settleIdle();
      return;
    }
    const batch = this.#blocks;
    if (this.#current !== null && this.#current.lines > 0) batch.push(this.#current);
    this.#blocks = [];
    this.#current = null;
    let lines = 0;
    let total = 0;
    const buffers: Buffer[] = [];
    for (const block of batch) {
      lines += block.lines;
      total += block.length;
      buffers.push(block.buffer.subarray(0, block.length));
    }
    this.#bufferedBytes = 0;
    this.#writing = true;
    const sizeBefore = this.#size;
    const written = (error: NodeJS.ErrnoException | null, bytes: number): void => {
      const reusable = batch[0]!.buffer;
      if (reusable.length === BLOCK_BYTES) this.#spare = reusable;
      if (error === null && bytes === total) {
        this.#size += bytes;
        this.#written += lines;
        if (this.#failing) this.#log.info(`access log writes again`, {path: this.path});
        this.#failing = false;
        this.#rotateIfNeeded();
        this.#afterWrite();
        return;
      }
      // A short write (the disk filled up mid-batch) is cut back to where the batch began.
      this.#dropped += lines;
      if (!this.#failing) this.#log.warn(`access log write failed; lines are dropped until it works again`, {path: this.path, err: error ?? new Error(`short write (${bytes} of ${total} bytes)`)});
      this.#failing = true;
      if (error === null) {
        fs.ftruncate(this.#fd, sizeBefore, () => this.#afterWrite());
        return;
      }
      this.#afterWrite();
    };
    if (buffers.length === 1) fs.write(this.#fd, buffers[0]!, 0, total, null, written);
    else fs.writev(this.#fd, buffers, null, written);
  }

  /**
   * What came in during the write goes out at once only when it is a full batch or someone waits in
   * flush(); else at the next interval. (Writing whatever was there as soon as the previous write
   * returned made one write per few lines under load: a thread-pool round trip per handful of requests.)
   */
  #afterWrite(): void {
    this.#writing = false;
    if (!this.#hasLines() || this.#closed) this.#settleIdle();
    else if (this.#bufferedBytes >= FLUSH_BYTES || this.#idle.length > 0) this.#flush();
    else this.#armTimer();
  }

  #settleIdle(): void {
    const waiting = this.#idle;
    this.#idle = [];
    for (const resolve of waiting) resolve();
  }

  /** Between two batches (no write in flight): rename to `.1` and reopen, or truncate when no copy is kept. */
  #rotateIfNeeded(): void {
    if (this.#size <= this.#maxBytes) return;
    try {
      if (this.#files > 0) {
        shiftRotatedFiles(this.path, this.#files);
        fs.renameSync(this.path, `${this.path}.1`);
        const fd = openPrivateFile(this.path, APPEND_FLAGS, path.dirname(this.path));
        fs.closeSync(this.#fd);
        this.#fd = fd;
      } else {
        fs.ftruncateSync(this.#fd, 0);
      }
      this.#size = 0;
    } catch (error) {
      // Retried after the next batch; the lines keep going to the file that is open.
      this.#log.warn(`access log rotation failed`, {path: this.path, err: error});
    }
  }
}
