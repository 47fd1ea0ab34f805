/**
 * HTTP/1.x message heads: only what the relay needs to route, frame bodies and rewrite
 * forwarded headers. Bodies are never parsed here (see body-framing.ts).
 */
export const HEAD_TERMINATOR = Buffer.from(`\r\n\r\n`, `latin1`);

export type RequestHead = {
  /** The head as latin1 text, including the final empty line. */
  text: string;
  method: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion: number;
  host: string | undefined;
  /** -1 when absent. */
  contentLength: number;
  chunked: boolean;
  /** Lowercased Connection value (all lines joined), undefined when absent. */
  connection: string | undefined;
  /** True when the request asks for a protocol upgrade (Connection: upgrade + Upgrade). */
  upgrade: boolean;
  /** Upgrade to `websocket`: the relay tracks frames after a 101. */
  websocket: boolean;
  forwardedFor: string | undefined;
  forwardedProto: string | undefined;
  forwardedHost: string | undefined;
  forwardedPort: string | undefined;
  /** [start, end) offsets in `text` of header lines the proxy drops and rewrites. */
  strip: number[];
};

export type ResponseHead = {
  status: number;
  minorVersion: number;
  /** -1 when absent. */
  contentLength: number;
  chunked: boolean;
  connectionClose: boolean;
  connectionKeepAlive: boolean;
  /** [start, end) offsets of the Connection and Keep-Alive lines, for stripping. */
  connectionLines: number[];
};

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CONTENT_LENGTH = /^[0-9]{1,15}$/;

function isSpace(code: number): boolean {
  return code === 32 || code === 9;
}

/** Lowercased, comma-joined value of a header that may appear on several lines. */
function join(previous: string | undefined, value: string): string {
  return previous === undefined ? value : `${previous}, ${value}`;
}

function parseContentLength(previous: number, value: string): number | null {
  // Identical repeated values ("5, 5" or two lines) are tolerated; anything else is a smuggling risk.
  let result = previous;
  for (const part of value.split(`,`)) {
    const trimmed = part.trim();
    if (!CONTENT_LENGTH.test(trimmed)) return null;
    const length = Number(trimmed);
    if (result !== -1 && result !== length) return null;
    result = length;
  }
  return result;
}

function hasToken(list: string, token: string): boolean {
  if (list === token) return true;
  for (const part of list.split(`,`)) {
    if (part.trim() === token) return true;
  }
  return false;
}

/**
 * Parses a request head ending at `headEnd` (just after `\r\n\r\n`). Returns null when the head
 * is malformed (the caller answers 400).
 */
export function parseRequestHead(buffer: Buffer, headEnd: number): RequestHead | null {
  const text = buffer.toString(`latin1`, 0, headEnd);
  const lineEnd = text.indexOf(`\r\n`);
  const sp1 = text.indexOf(` `);
  if (sp1 <= 0 || sp1 > lineEnd) return null;
  const sp2 = text.indexOf(` `, sp1 + 1);
  if (sp2 === -1 || sp2 >= lineEnd || sp2 === sp1 + 1) return null;
  if (lineEnd - sp2 !== 9 || !text.startsWith(`HTTP/1.`, sp2 + 1)) return null;
  const minor = text.charCodeAt(sp2 + 8) - 48;
  if (minor !== 0 && minor !== 1) return null;
  const method = text.slice(0, sp1);
  if (!TOKEN.test(method)) return null;

  const head: RequestHead = {
    text, method, minorVersion: minor, host: undefined, contentLength: -1, chunked: false,
    connection: undefined, upgrade: false, websocket: false,
    forwardedFor: undefined, forwardedProto: undefined, forwardedHost: undefined, forwardedPort: undefined,
    strip: [],
  };
  let upgradeValue: string | undefined;
  let transferEncoding: string | undefined;
  const hopByHop: number[] = [];
  const last = text.length - 2;
  let pos = lineEnd + 2;
  while (pos < last) {
    const eol = text.indexOf(`\r\n`, pos);
    if (text.indexOf(`\n`, pos) !== eol + 1) return null;
    const colon = text.indexOf(`:`, pos);
    if (colon <= pos || colon > eol) return null;
    if (isSpace(text.charCodeAt(pos)) || isSpace(text.charCodeAt(colon - 1))) return null;
    const next = eol + 2;
    switch (colon - pos) {
      case 4:
        if (text.slice(pos, colon).toLowerCase() === `host`) {
          if (head.host !== undefined) return null;
          head.host = text.slice(colon + 1, eol).trim();
        }
        break;
      case 7:
        if (text.slice(pos, colon).toLowerCase() === `upgrade`) upgradeValue = text.slice(colon + 1, eol).trim().toLowerCase();
        break;
      case 10: {
        const name = text.slice(pos, colon).toLowerCase();
        if (name === `connection`) {
          head.connection = join(head.connection, text.slice(colon + 1, eol).trim().toLowerCase());
          hopByHop.push(pos, next);
        } else if (name === `keep-alive`) {
          hopByHop.push(pos, next);
        }
        break;
      }
      case 14:
        if (text.slice(pos, colon).toLowerCase() === `content-length`) {
          const length = parseContentLength(head.contentLength, text.slice(colon + 1, eol));
          if (length === null) return null;
          head.contentLength = length;
        }
        break;
      case 15:
        if (text.slice(pos, colon).toLowerCase() === `x-forwarded-for`) {
          head.forwardedFor = join(head.forwardedFor, text.slice(colon + 1, eol).trim());
          head.strip.push(pos, next);
        }
        break;
      case 16: {
        const name = text.slice(pos, colon).toLowerCase();
        if (name === `x-forwarded-host`) {
          head.forwardedHost ??= text.slice(colon + 1, eol).trim();
          head.strip.push(pos, next);
        } else if (name === `x-forwarded-port`) {
          head.forwardedPort ??= text.slice(colon + 1, eol).trim();
          head.strip.push(pos, next);
        } else if (name === `proxy-connection`) {
          hopByHop.push(pos, next);
        }
        break;
      }
      case 17: {
        const name = text.slice(pos, colon).toLowerCase();
        if (name === `transfer-encoding`) {
          transferEncoding = join(transferEncoding, text.slice(colon + 1, eol).trim().toLowerCase());
        } else if (name === `x-forwarded-proto`) {
          head.forwardedProto ??= text.slice(colon + 1, eol).trim();
          head.strip.push(pos, next);
        }
        break;
      }
    }
    pos = next;
  }

  if (transferEncoding !== undefined) {
    // A request body must be chunked last, and never framed twice (request smuggling).
    if (head.contentLength !== -1 || !/(?:^|,)\s*chunked$/.test(transferEncoding)) return null;
    head.chunked = true;
  }
  if (upgradeValue !== undefined && head.connection !== undefined && hasToken(head.connection, `upgrade`)) {
    head.upgrade = true;
    head.websocket = hasToken(upgradeValue, `websocket`);
  } else if (hopByHop.length > 0 && minor === 1) {
    // Connection semantics are per hop: the client's `close` must not stop pooling on our hop.
    mergeRanges(head.strip, hopByHop);
  }
  return head;
}

function mergeRanges(into: number[], extra: number[]): void {
  for (let i = 0; i < extra.length; i += 2) into.push(extra[i]!, extra[i + 1]!);
  if (into.length > 2) {
    const pairs: Array<[number, number]> = [];
    for (let i = 0; i < into.length; i += 2) pairs.push([into[i]!, into[i + 1]!]);
    pairs.sort((a, b) => a[0] - b[0]);
    into.length = 0;
    for (const [start, end] of pairs) into.push(start, end);
  }
}

/** True when the client expects the connection to stay open after this request. */
export function isRequestKeepAlive(head: RequestHead): boolean {
  if (head.connection === undefined) return head.minorVersion === 1;
  if (head.minorVersion === 1) return !hasToken(head.connection, `close`);
  return hasToken(head.connection, `keep-alive`);
}

/** Parses a response head ending at `headEnd`. Returns null when malformed (the caller answers 502). */
export function parseResponseHead(buffer: Buffer, headEnd: number): ResponseHead | null {
  const text = buffer.toString(`latin1`, 0, headEnd);
  if (!text.startsWith(`HTTP/1.`) || text.charCodeAt(8) !== 32) return null;
  const minor = text.charCodeAt(7) - 48;
  if (minor !== 0 && minor !== 1) return null;
  const d0 = text.charCodeAt(9) - 48;
  const d1 = text.charCodeAt(10) - 48;
  const d2 = text.charCodeAt(11) - 48;
  if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return null;
  const head: ResponseHead = {
    status: d0 * 100 + d1 * 10 + d2, minorVersion: minor, contentLength: -1, chunked: false,
    connectionClose: false, connectionKeepAlive: false, connectionLines: [],
  };
  const last = text.length - 2;
  let pos = text.indexOf(`\r\n`) + 2;
  let transferEncoding: string | undefined;
  while (pos < last) {
    const eol = text.indexOf(`\r\n`, pos);
    const colon = text.indexOf(`:`, pos);
    if (colon <= pos || colon > eol) return null;
    const next = eol + 2;
    switch (colon - pos) {
      case 10: {
        const name = text.slice(pos, colon).toLowerCase();
        if (name === `connection`) {
          const value = text.slice(colon + 1, eol).trim().toLowerCase();
          if (hasToken(value, `close`)) head.connectionClose = true;
          if (hasToken(value, `keep-alive`)) head.connectionKeepAlive = true;
          head.connectionLines.push(pos, next);
        } else if (name === `keep-alive`) {
          head.connectionLines.push(pos, next);
        }
        break;
      }
      case 14:
        if (text.slice(pos, colon).toLowerCase() === `content-length`) {
          const length = parseContentLength(head.contentLength, text.slice(colon + 1, eol));
          if (length === null) return null;
          head.contentLength = length;
        }
        break;
      case 17:
        if (text.slice(pos, colon).toLowerCase() === `transfer-encoding`) {
          transferEncoding = join(transferEncoding, text.slice(colon + 1, eol).trim().toLowerCase());
        }
        break;
    }
    pos = next;
  }
  if (transferEncoding !== undefined) {
    // Transfer-Encoding wins over Content-Length; a non-chunked coding is delimited by close.
    head.contentLength = -1;
    head.chunked = /(?:^|,)\s*chunked$/.test(transferEncoding);
  }
  return head;
}

/** The response head with its Connection / Keep-Alive lines removed (latin1 text). */
export function stripConnectionLines(buffer: Buffer, headEnd: number, lines: readonly number[]): string {
  const text = buffer.toString(`latin1`, 0, headEnd);
  let out = ``;
  let from = 0;
  for (let i = 0; i < lines.length; i += 2) {
    out += text.slice(from, lines[i]);
    from = lines[i + 1]!;
  }
  return out + text.slice(from);
}
