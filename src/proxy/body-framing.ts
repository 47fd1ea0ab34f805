/** How an HTTP/1.1 message body ends. */
export const Framing = {
  NONE: 0,
  LENGTH: 1,
  CHUNKED: 2,
  /** Response delimited by the connection closing. */
  CLOSE: 3,
} as const;
export type Framing = (typeof Framing)[keyof typeof Framing];

const S_SIZE = 0;
const S_EXTENSION = 1;
const S_SIZE_LF = 2;
const S_DATA = 3;
const S_DATA_CR = 4;
const S_DATA_LF = 5;
const S_TRAILER_START = 6;
const S_TRAILER_LINE = 7;
const S_TRAILER_LF = 8;
const S_END_LF = 9;

const MAX_CHUNK_SIZE = 2 ** 48;

/**
 * Finds where a message body ends without copying it: the relay feeds it every chunk of body
 * bytes and forwards exactly the consumed prefix. Reused across messages via reset().
 */
export class BodyFramer {
  framing: Framing = Framing.NONE;
  done = true;
  failed = false;
  #remaining = 0;
  #state = S_SIZE;
  #size = 0;
  #digits = 0;

  reset(framing: Framing, contentLength: number): void {
    this.framing = framing;
    this.failed = false;
    this.#state = S_SIZE;
    this.#size = 0;
    this.#digits = 0;
    if (framing === Framing.LENGTH) {
      this.#remaining = contentLength;
      this.done = contentLength === 0;
    } else {
      this.#remaining = 0;
      this.done = framing === Framing.NONE;
    }
  }

  /** Marks a close-delimited body complete (the sender closed the connection). */
  end(): void {
    if (this.framing === Framing.CLOSE) this.done = true;
  }

  /** Consumes body bytes from buffer[start..]; returns how many belong to this message. Sets `done`/`failed`. */
  consume(buffer: Buffer, start: number): number {
    const available = buffer.length - start;
    if (this.done || this.failed) return 0;
    switch (this.framing) {
      case Framing.LENGTH: {
        const n = available < this.#remaining ? available : this.#remaining;
        this.#remaining -= n;
        if (this.#remaining === 0) this.done = true;
        return n;
      }
      case Framing.CHUNKED:
        return this.#consumeChunked(buffer, start) - start;
      case Framing.CLOSE:
        return available;
      default:
        return 0;
    }
  }

  #consumeChunked(buffer: Buffer, start: number): number {
    const end = buffer.length;
    let i = start;
    while (i < end) {
      switch (this.#state) {
        case S_DATA: {
          const n = end - i < this.#remaining ? end - i : this.#remaining;
          this.#remaining -= n;
          i += n;
          if (this.#remaining === 0) this.#state = S_DATA_CR;
          break;
        }
        case S_SIZE: {
          const c = buffer[i++]!;
          const digit = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
          if (digit >= 0) {
            this.#size = this.#size * 16 + digit;
            this.#digits++;
            if (this.#size > MAX_CHUNK_SIZE) return this.#fail(i);
          } else if (this.#digits === 0) {
            return this.#fail(i);
          } else if (c === 13) {
            this.#state = S_SIZE_LF;
          } else if (c === 59 || c === 32 || c === 9) {
            this.#state = S_EXTENSION;
          } else {
            return this.#fail(i);
          }
          break;
        }
        case S_EXTENSION: {
          const cr = buffer.indexOf(13, i);
          if (cr === -1) return end;
          i = cr + 1;
          this.#state = S_SIZE_LF;
          break;
        }
        case S_SIZE_LF:
          if (buffer[i++] !== 10) return this.#fail(i);
          if (this.#size === 0) {
            this.#state = S_TRAILER_START;
          } else {
            this.#remaining = this.#size;
            this.#state = S_DATA;
          }
          this.#size = 0;
          this.#digits = 0;
          break;
        case S_DATA_CR:
          if (buffer[i++] !== 13) return this.#fail(i);
          this.#state = S_DATA_LF;
          break;
        case S_DATA_LF:
          if (buffer[i++] !== 10) return this.#fail(i);
          this.#state = S_SIZE;
          break;
        case S_TRAILER_START:
          this.#state = buffer[i++] === 13 ? S_END_LF : S_TRAILER_LINE;
          break;
        case S_TRAILER_LINE: {
          const cr = buffer.indexOf(13, i);
          if (cr === -1) return end;
          i = cr + 1;
          this.#state = S_TRAILER_LF;
          break;
        }
        case S_TRAILER_LF:
          if (buffer[i++] !== 10) return this.#fail(i);
          this.#state = S_TRAILER_START;
          break;
        case S_END_LF:
          if (buffer[i++] !== 10) return this.#fail(i);
          this.done = true;
          return i;
      }
    }
    return i;
  }

  #fail(position: number): number {
    this.failed = true;
    return position;
  }
}
