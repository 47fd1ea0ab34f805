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
const S_EXT_NAME = 1;
const S_SIZE_LF = 2;
const S_DATA = 3;
const S_DATA_CR = 4;
const S_DATA_LF = 5;
const S_TRAILER_START = 6;
const S_TRAILER_NAME = 7;
const S_TRAILER_LF = 8;
const S_END_LF = 9;
const S_EXT_VALUE = 10;
const S_EXT_TOKEN = 11;
const S_EXT_QUOTED = 12;
const S_EXT_ESCAPE = 13;
const S_TRAILER_VALUE = 14;
const S_EXT_AFTER_QUOTE = 15;

/** A chunk-size above this (2^48) is refused: no 64-bit overflow downstream, and no real body is that large. */
const MAX_CHUNK_SIZE = 2 ** 48;
/** Bytes of chunk extensions on one chunk line, and of the whole trailer section, before the message is refused. */
export const MAX_CHUNK_METADATA_BYTES = 8 * 1024;

// Character classes (RFC 9110 §5.6.2 token, §5.6.4 qdtext, §5.5 field-vchar).
const TCHAR = new Uint8Array(256);
const QDTEXT = new Uint8Array(256);
const FIELD = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  TCHAR[c] = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(String.fromCharCode(c)) ? 1 : 0;
  QDTEXT[c] = c === 9 || c === 32 || c === 33 || (c >= 35 && c <= 91) || (c >= 93 && c <= 126) || c >= 128 ? 1 : 0;
  FIELD[c] = c === 9 || (c >= 32 && c !== 127) ? 1 : 0;
}

function hexDigit(c: number): number {
  return c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
}

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
  #tokenLength = 0;
  #metadata = 0;

  reset(framing: Framing, contentLength: number): void {
    this.framing = framing;
    this.failed = false;
    this.#state = S_SIZE;
    this.#size = 0;
    this.#digits = 0;
    this.#tokenLength = 0;
    this.#metadata = 0;
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

  /**
   * The chunked grammar exactly (RFC 9112 §7.1): chunk-size = 1*HEXDIG, chunk-ext = *( ";" token
   * [ "=" ( token / quoted-string ) ] ) without whitespace, CRLF everywhere (a bare CR or LF fails),
   * trailer field lines = token ":" field-value. Anything else fails the message.
   */
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
          const digit = hexDigit(c);
          if (digit >= 0) {
            this.#size = this.#size * 16 + digit;
            this.#digits++;
            if (this.#size > MAX_CHUNK_SIZE) return this.#fail(i);
          } else if (this.#digits === 0) {
            return this.#fail(i);
          } else if (c === 13) {
            this.#state = S_SIZE_LF;
          } else if (c === 59) {
            this.#metadata = 0;
            this.#state = S_EXT_NAME;
            this.#tokenLength = 0;
          } else {
            return this.#fail(i);
          }
          break;
        }
        case S_EXT_NAME: {
          const c = buffer[i++]!;
          if (++this.#metadata > MAX_CHUNK_METADATA_BYTES) return this.#fail(i);
          if (TCHAR[c] === 1) {
            this.#tokenLength++;
          } else if (this.#tokenLength === 0) {
            return this.#fail(i);
          } else if (c === 61) {
            this.#state = S_EXT_VALUE;
          } else if (c === 59) {
            this.#tokenLength = 0;
          } else if (c === 13) {
            this.#state = S_SIZE_LF;
          } else {
            return this.#fail(i);
          }
          break;
        }
        case S_EXT_VALUE: {
          const c = buffer[i++]!;
          if (++this.#metadata > MAX_CHUNK_METADATA_BYTES) return this.#fail(i);
          if (c === 34) {
            this.#state = S_EXT_QUOTED;
          } else if (TCHAR[c] === 1) {
            this.#state = S_EXT_TOKEN;
          } else {
            return this.#fail(i);
          }
          break;
        }
        case S_EXT_TOKEN: {
          const c = buffer[i++]!;
          if (++this.#metadata > MAX_CHUNK_METADATA_BYTES) return this.#fail(i);
          if (TCHAR[c] === 1) break;
          if (c === 59) {
            this.#state = S_EXT_NAME;
            this.#tokenLength = 0;
          } else if (c === 13) {
            this.#state = S_SIZE_LF;
          } else {
            return this.#fail(i);
          }
          break;
        }
        case S_EXT_QUOTED: {
          const c = buffer[i++]!;
          if (++this.#metadata > MAX_CHUNK_METADATA_BYTES) return this.#fail(i);
          if (c === 34) {
            this.#state = S_EXT_AFTER_QUOTE; // only ";" or CR may follow
          } else if (c === 92) {
            this.#state = S_EXT_ESCAPE;
          } else if (QDTEXT[c] !== 1) {
            return this.#fail(i);
          }
          break;
        }
        case S_EXT_AFTER_QUOTE: {
          const c = buffer[i++]!;
          if (c === 59) {
            this.#state = S_EXT_NAME;
            this.#tokenLength = 0;
          } else if (c === 13) {
            this.#state = S_SIZE_LF;
          } else {
            return this.#fail(i);
          }
          break;
        }
        case S_EXT_ESCAPE: {
          const c = buffer[i++]!;
          if (++this.#metadata > MAX_CHUNK_METADATA_BYTES) return this.#fail(i);
          if (c !== 9 && (c < 32 || c === 127)) return this.#fail(i);
          this.#state = S_EXT_QUOTED;
          break;
        }
        case S_SIZE_LF:
          if (buffer[i++] !== 10) return this.#fail(i);
          if (this.#size === 0) {
            this.#metadata = 0;
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
        case S_TRAILER_START: {
          const c = buffer[i++]!;
          if (c === 13) {
            this.#state = S_END_LF;
          } else if (TCHAR[c] === 1) {
            this.#state = S_TRAILER_NAME;
          } else {
            return this.#fail(i); // obs-fold, whitespace or a CTL where a field name starts
          }
          if (++this.#metadata > MAX_CHUNK_METADATA_BYTES) return this.#fail(i);
          break;
        }
        case S_TRAILER_NAME: {
          const c = buffer[i++]!;
          if (++this.#metadata > MAX_CHUNK_METADATA_BYTES) return this.#fail(i);
          if (c === 58) this.#state = S_TRAILER_VALUE;
          else if (TCHAR[c] !== 1) return this.#fail(i);
          break;
        }
        case S_TRAILER_VALUE: {
          const c = buffer[i++]!;
          if (++this.#metadata > MAX_CHUNK_METADATA_BYTES) return this.#fail(i);
          if (c === 13) this.#state = S_TRAILER_LF;
          else if (FIELD[c] !== 1) return this.#fail(i); // NUL, bare LF, other CTLs
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
