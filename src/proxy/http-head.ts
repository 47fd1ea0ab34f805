/**
 * HTTP/1.x message heads, validated as strictly as the grammar (RFC 9112 §2–§6, RFC 9110 §5) in the
 * same single scan that finds the lines the relay needs to route, frame bodies and rewrite forwarded
 * headers. Bodies are never parsed here (see body-framing.ts).
 *
 * A relay forwards the client's bytes, so anything this parser tolerates that the app reads
 * differently is a desync (request smuggling). Hence: a head is either forwarded in a form every
 * conforming parser reads the same way, or rejected with the status nginx uses.
 */
import type {ProxyErrorStatus} from './error-response.ts';

export const HEAD_TERMINATOR = Buffer.from(`\r\n\r\n`, `latin1`);

export type RequestHead = {
  /** The head as latin1 text, including the final empty line. */
  text: string;
  method: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion: number;
  /** The Host the app sees (the authority of an absolute-form target replaces the Host line). */
  host: string | undefined;
  /** -1 when absent. */
  contentLength: number;
  chunked: boolean;
  /** Lowercased Connection value (all lines joined), undefined when absent. */
  connection: string | undefined;
  /** True when the request upgrades to WebSocket (GET, Connection: upgrade, Upgrade: websocket). */
  upgrade: boolean;
  /** Same as `upgrade`: the relay tracks WebSocket frames after a 101. */
  websocket: boolean;
  forwardedFor: string | undefined;
  forwardedProto: string | undefined;
  forwardedHost: string | undefined;
  forwardedPort: string | undefined;
  /** X-Request-ID as sent (several lines joined with ", "), undefined when absent. */
  requestId: string | undefined;
  /** [start, end) offsets of the X-Request-ID lines (dropped when the proxy replaces the id), null when absent. */
  requestIdLines: number[] | null;
  /** [start, end) offsets in `text` of lines the proxy drops (rewritten or hop-by-hop), ascending. */
  strip: number[];
  /** Lines the proxy adds back in their one clean form (Host, Content-Length, Transfer-Encoding). */
  extra: string;
  /** The request line in origin-form when the client sent absolute-form (strip then starts with [0, line end)). */
  requestLine: string | undefined;
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
  /** [start, end) offsets of framing lines that must not reach the client as sent (CL of a TE response, unclean CL/TE). */
  framingLines: number[];
  /** The framing lines in their one clean form, added when `framingLines` is not empty. */
  framingExtra: string;
};

/** A request head the proxy refuses: the status it answers (then it closes the connection). */
export type RequestRejection = ProxyErrorStatus;

// Character classes of one latin1 byte.
const C_TCHAR = 1; // token (RFC 9110 §5.6.2)
const C_FIELD = 2; // field-vchar, SP, HTAB (RFC 9110 §5.5): VCHAR / obs-text
const C_TARGET = 4; // a byte a request-target may contain (see below)
const C_HOST = 8; // reg-name / IPv4 (unreserved / pct-encoded / sub-delims)
const C_HEX = 16;
const CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  let bits = 0;
  const ch = String.fromCharCode(c);
  if (/[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(ch)) bits |= C_TCHAR;
  if (c === 9 || (c >= 32 && c !== 127)) bits |= C_FIELD;
  // RFC 3986 pchar / "/" / "?" plus the printable ASCII that browsers, curl, nginx and llhttp
  // all pass unencoded in practice (" < > [ \ ] ^ ` { | }). Never: CTLs, SP, "#", DEL, non-ASCII.
  if (c > 32 && c < 127 && c !== 35) bits |= C_TARGET;
  if (/[A-Za-z0-9\-._~!$&'()*+,;=%]/.test(ch)) bits |= C_HOST;
  if (/[0-9A-Fa-f]/.test(ch)) bits |= C_HEX;
  CLASS[c] = bits;
}

/**
 * Bytes no head may contain anywhere (one scan of the whole head): NUL and the other CTLs except
 * HTAB, CR and LF, and DEL. CR and LF are then checked to come only as CRLF line ends, so what a value
 * holds is VCHAR, obs-text, SP and HTAB without a per-line byte loop. A table lookup per byte of the
 * Buffer costs a third of what the equivalent regular expression on the latin1 text did.
 */
const FORBIDDEN = new Uint8Array(256);
for (let c = 0; c < 256; c++) FORBIDDEN[c] = c === 127 || (c < 32 && c !== 9 && c !== 10 && c !== 13) ? 1 : 0;

function hasForbiddenByte(buffer: Buffer, end: number): boolean {
  for (let i = 0; i < end; i++) {
    if (FORBIDDEN[buffer[i]!] === 1) return true;
  }
  return false;
}

/** True for a byte of a token (RFC 9110 §5.6.2). */
export function isTokenChar(code: number): boolean {
  return (CLASS[code]! & C_TCHAR) !== 0;
}

/** True for a byte allowed in a field value (VCHAR, obs-text, SP, HTAB): never CR, LF, NUL or another CTL. */
export function isFieldChar(code: number): boolean {
  return (CLASS[code]! & C_FIELD) !== 0;
}

/** Lowercased, comma-joined value of a header that may appear on several lines. */
function join(previous: string | undefined, value: string): string {
  return previous === undefined ? value : `${previous}, ${value}`;
}

/** Whether the comma-separated `list` holds `token` as one element (OWS around elements ignored); allocates nothing. */
function hasToken(list: string, token: string): boolean {
  if (list === token) return true;
  const length = list.length;
  let start = 0;
  while (start <= length) {
    let end = list.indexOf(`,`, start);
    if (end === -1) end = length;
    let first = start;
    let last = end;
    while (first < last && (list.charCodeAt(first) === 32 || list.charCodeAt(first) === 9)) first++;
    while (last > first && (list.charCodeAt(last - 1) === 32 || list.charCodeAt(last - 1) === 9)) last--;
    if (last - first === token.length && list.startsWith(token, first)) return true;
    start = end + 1;
  }
  return false;
}

/**
 * Whether the field name at text[start, start + name.length) is `name` (lowercase letters and "-")
 * in any case, without slicing or lowercasing it. The caller checked the length, and the name's bytes
 * are token characters, for which `| 0x20` maps only "A"–"Z" onto "a"–"z" and only "-" onto "-".
 */
function isName(text: string, start: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    if ((text.charCodeAt(start + i) | 0x20) !== name.charCodeAt(i)) return false;
  }
  return true;
}

/** Trims SP and HTAB only (String.prototype.trim also eats \v, \f, \xa0 … which would hide them from the checks). */
function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && (value.charCodeAt(start) === 32 || value.charCodeAt(start) === 9)) start++;
  while (end > start && (value.charCodeAt(end - 1) === 32 || value.charCodeAt(end - 1) === 9)) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

/** 1*DIGIT, at most 2^53 - 1; -1 otherwise. */
function parseDecimal(value: string): number {
  const length = value.length;
  if (length === 0 || length > 16) return -1;
  let result = 0;
  for (let i = 0; i < length; i++) {
    const digit = value.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    result = result * 10 + digit;
  }
  return result <= Number.MAX_SAFE_INTEGER ? result : -1;
}

/** pct-encoded checks: every "%" followed by two hex digits. */
function hasValidPercents(text: string, start: number, end: number): boolean {
  let i = text.indexOf(`%`, start);
  while (i !== -1 && i < end) {
    if (i + 2 >= end || (CLASS[text.charCodeAt(i + 1)]! & C_HEX) === 0 || (CLASS[text.charCodeAt(i + 2)]! & C_HEX) === 0) return false;
    i = text.indexOf(`%`, i + 3);
  }
  return true;
}

/** uri-host [ ":" port ] (RFC 9110 §7.2): a reg-name or IPv4 address, or an IP-literal in brackets. */
export function isValidHost(value: string): boolean {
  const length = value.length;
  if (length === 0) return false;
  let i = 0;
  if (value.charCodeAt(0) === 91) { // "[" IP-literal "]"
    const close = value.indexOf(`]`);
    if (close < 3) return false;
    for (i = 1; i < close; i++) {
      const c = value.charCodeAt(i);
      if (!((CLASS[c]! & C_HEX) !== 0 || c === 58 || c === 46 || c === 118 || c === 86)) return false; // hex, ":", ".", "v"
    }
    i = close + 1;
  } else {
    while (i < length && value.charCodeAt(i) !== 58) {
      if ((CLASS[value.charCodeAt(i)]! & C_HOST) === 0) return false;
      i++;
    }
    if (i === 0 || !hasValidPercents(value, 0, i)) return false;
  }
  if (i === length) return true;
  if (value.charCodeAt(i) !== 58) return false;
  for (i++; i < length; i++) {
    const digit = value.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return false;
  }
  return true;
}

type TargetCheck = {status: 0; originForm: string | null; authority: string | null} | {status: RequestRejection};

const TARGET_OK: TargetCheck = {status: 0, originForm: null, authority: null};
const TARGET_BAD: TargetCheck = {status: 400};

/**
 * The request-target per its form (RFC 9112 §3.2): origin-form for every method, absolute-form
 * (http/https only; rewritten to origin-form + Host), asterisk-form for OPTIONS only. CONNECT
 * (authority-form) is answered 405, as nginx does.
 */
function checkTarget(text: string, start: number, end: number, method: string): TargetCheck {
  for (let i = start; i < end; i++) {
    if ((CLASS[text.charCodeAt(i)]! & C_TARGET) === 0) return TARGET_BAD;
  }
  if (!hasValidPercents(text, start, end)) return TARGET_BAD;
  const first = text.charCodeAt(start);
  if (first === 47) return TARGET_OK; // "/": origin-form
  if (first === 42) return end === start + 1 && method === `OPTIONS` ? TARGET_OK : TARGET_BAD; // "*"
  // absolute-form: scheme "://" authority path-abempty [ "?" query ]
  const separator = text.indexOf(`://`, start);
  if (separator === -1 || separator >= end) return TARGET_BAD;
  const scheme = text.slice(start, separator).toLowerCase();
  if (scheme !== `http` && scheme !== `https`) return TARGET_BAD;
  const authorityStart = separator + 3;
  let authorityEnd = authorityStart;
  while (authorityEnd < end) {
    const c = text.charCodeAt(authorityEnd);
    if (c === 47 || c === 63) break;
    authorityEnd++;
  }
  const authority = text.slice(authorityStart, authorityEnd);
  // userinfo ("@") is invalid in http(s) URIs (RFC 9110 §4.2.4).
  if (authority.includes(`@`) || !isValidHost(authority)) return TARGET_BAD;
  let path = text.slice(authorityEnd, end);
  if (path === `` || path.charCodeAt(0) === 63) path = `/${path}`;
  return {status: 0, originForm: path, authority};
}

/**
 * Parses and validates a request head ending at `headEnd` (just after `\r\n\r\n`). Returns the head,
 * or the status to answer before closing: 400 (malformed, ambiguous framing, Host missing or
 * repeated), 405 (CONNECT), 501 (a transfer coding other than chunked), 505 (HTTP/2 or later).
 */
export function parseRequestHead(buffer: Buffer, headEnd: number): RequestHead | RequestRejection {
  if (hasForbiddenByte(buffer, headEnd)) return 400;
  const text = buffer.toString(`latin1`, 0, headEnd);
  // request-line = method SP request-target SP HTTP-version CRLF
  let i = 0;
  while ((CLASS[text.charCodeAt(i)]! & C_TCHAR) !== 0) i++;
  if (i === 0 || text.charCodeAt(i) !== 32) return 400;
  const method = text.slice(0, i);
  const targetStart = i + 1;
  i = targetStart;
  while (i < headEnd) {
    const c = text.charCodeAt(i);
    if (c <= 32 || c === 127) break;
    i++;
  }
  const targetEnd = i;
  if (targetEnd === targetStart || text.charCodeAt(targetEnd) !== 32) return 400;
  if (!text.startsWith(`HTTP/`, targetEnd + 1)) return 400;
  const major = text.charCodeAt(targetEnd + 6) - 48;
  const minor = text.charCodeAt(targetEnd + 8) - 48;
  if (major < 0 || major > 9 || text.charCodeAt(targetEnd + 7) !== 46 || minor < 0 || minor > 9) return 400;
  const lineEnd = targetEnd + 9;
  if (text.charCodeAt(lineEnd) !== 13 || text.charCodeAt(lineEnd + 1) !== 10) return 400;
  if (major !== 1) return major === 0 ? 400 : 505;
  if (minor > 1) return 505;
  if (method === `CONNECT`) return 405;
  const target = checkTarget(text, targetStart, targetEnd, method);
  if (target.status !== 0) return target.status;

  const head: RequestHead = {
    text, method, minorVersion: minor, host: undefined, contentLength: -1, chunked: false,
    connection: undefined, upgrade: false, websocket: false,
    forwardedFor: undefined, forwardedProto: undefined, forwardedHost: undefined, forwardedPort: undefined,
    requestId: undefined, requestIdLines: null, strip: [], extra: ``, requestLine: undefined,
  };
  const strip = head.strip;
  let hostLines = 0;
  let upgradeValue: string | undefined;
  let transferEncoding: string | undefined;
  let contentLengthLine = -1;
  let contentLengthClean = false;
  let transferEncodingLine = -1;
  let transferEncodingClean = false;
  let hopByHop: number[] | null = null;
  const last = headEnd - 2;
  let pos = lineEnd + 2;
  while (pos < last) {
    // field-line = field-name ":" OWS field-value OWS CRLF; no obs-fold, no whitespace before ":".
    let colon = pos;
    while ((CLASS[text.charCodeAt(colon)]! & C_TCHAR) !== 0) colon++;
    if (colon === pos || text.charCodeAt(colon) !== 58) return 400;
    let valueStart = colon + 1;
    let c = text.charCodeAt(valueStart);
    while (c === 32 || c === 9) c = text.charCodeAt(++valueStart);
    // Field values need no byte loop: FORBIDDEN refused the CTLs, and the first CR and LF must be this line's CRLF.
    const eol = text.indexOf(`\r`, valueStart);
    if (text.charCodeAt(eol + 1) !== 10 || text.indexOf(`\n`, valueStart) !== eol + 1) return 400;
    let valueEnd = eol;
    c = text.charCodeAt(valueEnd - 1);
    while (valueEnd > valueStart && (c === 32 || c === 9)) c = text.charCodeAt(--valueEnd - 1);
    const next = eol + 2;
    switch (colon - pos) {
      case 4:
        if (isName(text, pos, `host`)) {
          hostLines++;
          head.host = text.slice(valueStart, valueEnd);
          if (target.authority !== null) strip.push(pos, next);
        }
        break;
      case 7:
        if (isName(text, pos, `upgrade`)) {
          upgradeValue = join(upgradeValue, text.slice(valueStart, valueEnd).toLowerCase());
          (hopByHop ??= []).push(pos, next);
        }
        break;
      case 10: {
        if (isName(text, pos, `connection`)) {
          head.connection = join(head.connection, text.slice(valueStart, valueEnd).toLowerCase());
          (hopByHop ??= []).push(pos, next);
        } else if (isName(text, pos, `keep-alive`)) {
          (hopByHop ??= []).push(pos, next);
        }
        break;
      }
      case 12:
        if (isName(text, pos, `x-request-id`)) {
          head.requestId = join(head.requestId, text.slice(valueStart, valueEnd));
          (head.requestIdLines ??= []).push(pos, next);
        }
        break;
      case 14:
        if (isName(text, pos, `content-length`)) {
          // One line, 1*DIGIT (nginx refuses a repeated line, even with the same value).
          if (contentLengthLine !== -1) return 400;
          const length = parseDecimal(text.slice(valueStart, valueEnd));
          if (length === -1) return 400;
          head.contentLength = length;
          contentLengthLine = pos;
          contentLengthClean = valueStart === colon + 2 && valueEnd === eol && text.charCodeAt(colon + 1) === 32
            && (length === 0 ? valueEnd - valueStart === 1 : text.charCodeAt(valueStart) !== 48);
          if (!contentLengthClean) strip.push(pos, next);
        }
        break;
      case 15:
        if (isName(text, pos, `x-forwarded-for`)) {
          head.forwardedFor = join(head.forwardedFor, text.slice(valueStart, valueEnd));
          strip.push(pos, next);
        }
        break;
      case 16: {
        if (isName(text, pos, `x-forwarded-host`)) {
          head.forwardedHost ??= text.slice(valueStart, valueEnd);
          strip.push(pos, next);
        } else if (isName(text, pos, `x-forwarded-port`)) {
          head.forwardedPort ??= text.slice(valueStart, valueEnd);
          strip.push(pos, next);
        } else if (isName(text, pos, `proxy-connection`)) {
          (hopByHop ??= []).push(pos, next);
        }
        break;
      }
      case 17: {
        if (isName(text, pos, `transfer-encoding`)) {
          if (transferEncodingLine !== -1) return 400;
          transferEncoding = text.slice(valueStart, valueEnd).toLowerCase();
          transferEncodingLine = pos;
          transferEncodingClean = valueStart === colon + 2 && valueEnd === eol && text.charCodeAt(colon + 1) === 32;
          if (!transferEncodingClean) strip.push(pos, next);
        } else if (isName(text, pos, `x-forwarded-proto`)) {
          head.forwardedProto ??= text.slice(valueStart, valueEnd);
          strip.push(pos, next);
        }
        break;
      }
    }
    pos = next;
  }

  // Exactly one valid Host (RFC 9112 §3.2); HTTP/1.0 may omit it.
  if (hostLines > 1 || (hostLines === 0 && minor === 1)) return 400;
  if (hostLines === 1 && !isValidHost(head.host!)) return 400;
  if (target.authority !== null) {
    // absolute-form: the target's authority is the Host (RFC 9112 §3.2.2); the app gets origin-form.
    head.host = target.authority;
    strip.push(0, lineEnd + 2);
    head.requestLine = `${method} ${target.originForm!} HTTP/1.${minor}\r\n`;
    head.extra += `Host: ${target.authority}\r\n`;
  }
  if (transferEncoding !== undefined) {
    // A request body is chunked and nothing else (nginx: 501 otherwise); never framed twice, and
    // HTTP/1.0 has no transfer codings (RFC 9112 §6.1).
    if (minor === 0 || contentLengthLine !== -1) return 400;
    if (transferEncoding !== `chunked`) return 501;
    head.chunked = true;
    if (!transferEncodingClean) head.extra += `Transfer-Encoding: chunked\r\n`;
  } else if (contentLengthLine !== -1 && !contentLengthClean) {
    head.extra += `Content-Length: ${head.contentLength}\r\n`;
  }
  const connectionUpgrade = head.connection !== undefined && hasToken(head.connection, `upgrade`);
  if (method === `GET` && connectionUpgrade && upgradeValue !== undefined && trimOws(upgradeValue) === `websocket` && minor === 1) {
    head.upgrade = true;
    head.websocket = true;
  } else if (hopByHop !== null && (minor === 1 || upgradeValue !== undefined || connectionUpgrade)) {
    // Connection semantics are per hop: the client's `close` must not stop pooling on our hop, and
    // an Upgrade other than WebSocket (h2c, …) is not ours to pass on: the app sees a plain request.
    // HTTP/1.0 keeps its Connection line (keep-alive is opt-in there) unless it asks to upgrade.
    for (let k = 0; k < hopByHop.length; k += 2) strip.push(hopByHop[k]!, hopByHop[k + 1]!);
  }
  if (strip.length > 2) sortRanges(strip);
  return head;
}

function sortRanges(ranges: number[]): void {
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < ranges.length; i += 2) pairs.push([ranges[i]!, ranges[i + 1]!]);
  pairs.sort((a, b) => a[0] - b[0]);
  ranges.length = 0;
  for (const [start, end] of pairs) ranges.push(start, end);
}

/** True when the client expects the connection to stay open after this request. */
export function isRequestKeepAlive(head: RequestHead): boolean {
  if (head.connection === undefined) return head.minorVersion === 1;
  if (head.minorVersion === 1) return !hasToken(head.connection, `close`);
  return hasToken(head.connection, `keep-alive`);
}

/**
 * Parses and validates a response head ending at `headEnd`. Returns null when malformed (the caller
 * answers 502): bad status line, non-token names, CTLs in values, repeated or invalid Content-Length.
 * A Content-Length next to a Transfer-Encoding is dropped (RFC 9112 §6.3).
 */
export function parseResponseHead(buffer: Buffer, headEnd: number): ResponseHead | null {
  if (hasForbiddenByte(buffer, headEnd)) return null;
  const text = buffer.toString(`latin1`, 0, headEnd);
  // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF (a missing second SP is tolerated, as llhttp does)
  if (!text.startsWith(`HTTP/1.`) || text.charCodeAt(8) !== 32) return null;
  const minor = text.charCodeAt(7) - 48;
  if (minor !== 0 && minor !== 1) return null;
  const d0 = text.charCodeAt(9) - 48;
  const d1 = text.charCodeAt(10) - 48;
  const d2 = text.charCodeAt(11) - 48;
  if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return null;
  let i = 12;
  if (text.charCodeAt(i) === 32) {
    i++;
    while ((CLASS[text.charCodeAt(i)]! & C_FIELD) !== 0) i++;
  }
  if (text.charCodeAt(i) !== 13 || text.charCodeAt(i + 1) !== 10) return null;
  const head: ResponseHead = {
    status: d0 * 100 + d1 * 10 + d2, minorVersion: minor, contentLength: -1, chunked: false,
    connectionClose: false, connectionKeepAlive: false, connectionLines: [], framingLines: [], framingExtra: ``,
  };
  const last = headEnd - 2;
  let pos = i + 2;
  let transferEncoding: string | undefined;
  let transferEncodingClean = true;
  const transferEncodingLines: number[] = [];
  let contentLengthLine = -1;
  let contentLengthNext = -1;
  while (pos < last) {
    let colon = pos;
    while ((CLASS[text.charCodeAt(colon)]! & C_TCHAR) !== 0) colon++;
    if (colon === pos || text.charCodeAt(colon) !== 58) return null;
    let valueStart = colon + 1;
    let c = text.charCodeAt(valueStart);
    while (c === 32 || c === 9) c = text.charCodeAt(++valueStart);
    const eol = text.indexOf(`\r`, valueStart);
    if (text.charCodeAt(eol + 1) !== 10 || text.indexOf(`\n`, valueStart) !== eol + 1) return null;
    let valueEnd = eol;
    c = text.charCodeAt(valueEnd - 1);
    while (valueEnd > valueStart && (c === 32 || c === 9)) c = text.charCodeAt(--valueEnd - 1);
    const next = eol + 2;
    switch (colon - pos) {
      case 10: {
        if (isName(text, pos, `connection`)) {
          const value = text.slice(valueStart, valueEnd).toLowerCase();
          if (hasToken(value, `close`)) head.connectionClose = true;
          if (hasToken(value, `keep-alive`)) head.connectionKeepAlive = true;
          head.connectionLines.push(pos, next);
        } else if (isName(text, pos, `keep-alive`)) {
          head.connectionLines.push(pos, next);
        }
        break;
      }
      case 14:
        if (isName(text, pos, `content-length`)) {
          if (contentLengthLine !== -1) return null;
          const length = parseDecimal(text.slice(valueStart, valueEnd));
          if (length === -1) return null;
          head.contentLength = length;
          contentLengthLine = pos;
          contentLengthNext = next;
          if (valueStart !== colon + 2 || valueEnd !== eol || (length !== 0 && text.charCodeAt(valueStart) === 48) || (length === 0 && valueEnd - valueStart !== 1)) {
            head.framingLines.push(pos, next);
            head.framingExtra += `Content-Length: ${length}\r\n`;
          }
        }
        break;
      case 17:
        if (isName(text, pos, `transfer-encoding`)) {
          const value = text.slice(valueStart, valueEnd).toLowerCase();
          for (const coding of value.split(`,`)) {
            const name = trimOws(coding);
            if (name === `` || !/^[!#$%&'*+\-.^_`|~0-9a-z]+(?:[ \t]*;.*)?$/.test(name)) return null;
          }
          transferEncoding = join(transferEncoding, value);
          transferEncodingLines.push(pos, next);
          if (valueStart !== colon + 2 || valueEnd !== eol) transferEncodingClean = false;
        }
        break;
    }
    pos = next;
  }
  if (transferEncoding !== undefined) {
    // Transfer-Encoding wins: the Content-Length is dropped, never relayed next to it. A coding
    // list not ending in chunked is delimited by the close (RFC 9112 §6.3).
    head.contentLength = -1;
    const codings = transferEncoding.split(`,`).map(trimOws);
    head.chunked = minor === 1 && codings[codings.length - 1] === `chunked`;
    if (contentLengthLine !== -1) {
      head.framingLines = [contentLengthLine, contentLengthNext];
      head.framingExtra = ``;
    }
    if (!transferEncodingClean || transferEncodingLines.length > 2) {
      head.framingLines.push(...transferEncodingLines);
      head.framingExtra += `Transfer-Encoding: ${codings.join(`, `)}\r\n`;
    }
    if (head.framingLines.length > 2) sortRanges(head.framingLines);
  }
  return head;
}

/**
 * The head without the lines in `ranges` (ascending, non-overlapping [start, end) pairs), with
 * `extra` lines added before the final empty line (latin1 text).
 */
export function rebuildHead(text: string, ranges: readonly number[], extra: string): string {
  let out = ``;
  let from = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    out += text.slice(from, ranges[i]);
    from = ranges[i + 1]!;
  }
  return `${out}${text.slice(from, text.length - 2)}${extra}\r\n`;
}

/** The response head with its Connection / Keep-Alive lines removed (latin1 text). */
export function stripConnectionLines(buffer: Buffer, headEnd: number, lines: readonly number[]): string {
  return rebuildHead(buffer.toString(`latin1`, 0, headEnd), lines, ``);
}

/** Ascending union of two sets of [start, end) ranges. */
export function mergeRanges(a: readonly number[], b: readonly number[]): number[] {
  const merged = [...a, ...b];
  if (merged.length > 2) sortRanges(merged);
  return merged;
}
