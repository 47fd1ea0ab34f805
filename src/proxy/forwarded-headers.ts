import {randomBytes} from '../util/random-bytes.ts';
import net from 'node:net';
import {isTokenChar, mergeRanges} from './http-head.ts';
import type {RequestHead} from './http-head.ts';

/** The longest X-Request-ID kept from a client; a longer one is replaced. */
export const MAX_REQUEST_ID_LENGTH = 128;

/** The client on the other end of a proxy connection, resolved once per connection. */
export type Peer = {
  /** Plain IP (IPv4-mapped IPv6 unwrapped), as it appears in X-Forwarded-For. */
  ip: string;
  /** Whether its X-Forwarded-Proto/-Host/-Port are kept (`proxy.trustForwarded`). */
  trusted: boolean;
};

export function normalizeIp(address: string | undefined): string {
  if (address === undefined) return `unknown`;
  return address.startsWith(`::ffff:`) && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

export function isLoopback(ip: string): boolean {
  return ip === `::1` || (net.isIPv4(ip) && ip.startsWith(`127.`));
}

/** Whether `ip` matches a `trustForwarded` list (`loopback` or IP literals). */
export function isTrustedPeer(ip: string, trustForwarded: readonly string[]): boolean {
  for (const entry of trustForwarded) {
    if (entry === `loopback` ? isLoopback(ip) : normalizeIp(entry) === ip) return true;
  }
  return false;
}

export function resolvePeer(remoteAddress: string | undefined, trustForwarded: readonly string[]): Peer {
  const ip = normalizeIp(remoteAddress);
  return {ip, trusted: isTrustedPeer(ip, trustForwarded)};
}

/** `host:port` for URLs and logs, with IPv6 literals bracketed. */
export function formatHostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Port part of a Host header value (`[::1]:8080`, `example.com:81`), or the scheme default. */
export function portOfHost(host: string | undefined, proto: string): string {
  if (host !== undefined) {
    const bracket = host.startsWith(`[`) ? host.indexOf(`]`) : -1;
    const colon = host.indexOf(`:`, bracket === -1 ? 0 : bracket);
    if (colon !== -1 && (bracket !== -1 || host.indexOf(`:`, colon + 1) === -1) && colon + 1 < host.length) {
      return host.slice(colon + 1);
    }
  }
  return proto === `https` || proto === `wss` ? `443` : `80`;
}

/** An X-Request-ID the proxy passes on as it is: 1 to 128 token characters (RFC 9110 §5.6.2), one line. */
export function isValidRequestId(value: string): boolean {
  const length = value.length;
  if (length === 0 || length > MAX_REQUEST_ID_LENGTH) return false;
  for (let i = 0; i < length; i++) {
    if (!isTokenChar(value.charCodeAt(i))) return false;
  }
  return true;
}

/**
 * Generated request ids: 16 random hex digits drawn when the daemon starts, a dash and a counter in hex.
 * Unique per daemon without a random draw per request (randomUUID costs about 0.5 µs), and not
 * confusable across daemon restarts.
 */
const REQUEST_ID_PREFIX = `${randomBytes(8).toString(`hex`)}-`;
let requestCounter = 0;

export function generateRequestId(): string {
  requestCounter++;
  return REQUEST_ID_PREFIX + requestCounter.toString(16);
}

/**
 * The request id of a request: the client's X-Request-ID when valid (then `head.requestId` itself), else a
 * new one (generateRequestId) that the proxy must add as an X-Request-ID line (a result other than
 * `head.requestId`); an invalid id's lines are dropped from `head` (the app then sees only the new id).
 */
export function resolveRequestId(head: RequestHead): string {
  const sent = head.requestId;
  if (sent !== undefined && head.requestIdLines!.length === 2 && isValidRequestId(sent)) return sent;
  if (head.requestIdLines !== null) head.strip = mergeRanges(head.strip, head.requestIdLines);
  return generateRequestId();
}

/**
 * The request head sent to the app: the client's head minus hop-by-hop and X-Forwarded-* lines,
 * plus X-Forwarded-For (appended), -Proto, -Host and -Port (kept from trusted peers, else ours).
 */
export function buildUpstreamHead(head: RequestHead, peer: Peer, addRequestId: string | null = null): string {
  const text = head.text;
  const strip = head.strip;
  let out: string;
  if (strip.length === 0) {
    out = text.slice(0, text.length - 2);
  } else {
    let from = 0;
    if (strip[0] === 0) {
      // absolute-form: the request line is rewritten to origin-form (the Host line is in `extra`).
      from = strip[1]!;
      out = head.requestLine!;
    } else {
      out = ``;
    }
    for (let i = from === 0 ? 0 : 2; i < strip.length; i += 2) {
      out += text.slice(from, strip[i]);
      from = strip[i + 1]!;
    }
    out += text.slice(from, text.length - 2);
  }
  out += head.extra;
  if (addRequestId !== null) out += `X-Request-ID: ${addRequestId}\r\n`;
  const forwardedFor = head.forwardedFor === undefined || head.forwardedFor === `` ? peer.ip : `${head.forwardedFor}, ${peer.ip}`;
  const proto = peer.trusted && head.forwardedProto !== undefined ? head.forwardedProto : `http`;
  const host = peer.trusted && head.forwardedHost !== undefined ? head.forwardedHost : head.host;
  const port = peer.trusted && head.forwardedPort !== undefined ? head.forwardedPort : portOfHost(head.host, proto);
  out += `X-Forwarded-For: ${forwardedFor}\r\nX-Forwarded-Proto: ${proto}\r\n`;
  if (host !== undefined) out += `X-Forwarded-Host: ${host}\r\n`;
  return `${out}X-Forwarded-Port: ${port}\r\n\r\n`;
}

