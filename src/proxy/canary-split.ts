import type {Peer} from './forwarded-headers.ts';
import type {RequestHead} from './http-head.ts';
import type {Target} from './target.ts';

/** The cookie that keeps a client on the side of a canary it was given (its value names the canary release). */
export const CANARY_COOKIE = `rollbridge-canary`;
const COOKIE_MAX_AGE_S = 86_400;

/**
 * A canary split (deploy --canary): `percent` of the clients go to the canary's targets, the rest to the
 * active release. Sticky per client: the `rollbridge-canary` cookie the proxy sets on the first response
 * decides when it names this canary; without it, a hash of the client address does (the last
 * X-Forwarded-For address from a trusted peer, else the connection's address), so a client that
 * keeps no cookies stays on its side too.
 */
export class CanarySplit {
  readonly releaseId: string;
  readonly percent: number;
  readonly targets: readonly Target[];
  readonly #cookiePrefix: string;
  readonly #cookies: readonly [stable: string, canary: string];
  #next = 0;

  constructor(options: {releaseId: string; percent: number; targets: readonly Target[]}) {
    this.releaseId = options.releaseId;
    this.percent = options.percent;
    this.targets = Object.freeze([...options.targets]);
    this.#cookiePrefix = `${options.releaseId}.`;
    const line = (side: number) => `Set-Cookie: ${CANARY_COOKIE}=${options.releaseId}.${side}; Path=/; Max-Age=${COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Lax\r\n`;
    this.#cookies = [line(0), line(1)];
  }

  /** Which side the request goes to, and the Set-Cookie line to add to its response (null: the client's cookie already says so). */
  assign(head: RequestHead, peer: Peer): {canary: boolean; setCookie: string | null} {
    const cookie = this.#readCookie(head.text);
    if (cookie !== null) return {canary: cookie, setCookie: null};
    const address = peer.trusted && head.forwardedFor !== undefined ? lastAddress(head.forwardedFor) : peer.ip;
    const canary = hashAddress(address) % 10_000 < this.percent * 100;
    return {canary, setCookie: this.#cookies[canary ? 1 : 0]!};
  }

  /** The next serving canary target (round-robin), or null. */
  pickCanary(): Target | null {
    const count = this.targets.length;
    for (let i = 0; i < count; i++) {
      const target = this.targets[this.#next]!;
      this.#next = this.#next + 1 === count ? 0 : this.#next + 1;
      if (target.state === `serving`) return target;
    }
    return null;
  }

  /** true/false from a cookie naming this canary; null when absent or naming another one. */
  #readCookie(text: string): boolean | null {
    const lines = /\r\ncookie:[ \t]*([^\r]*)/gi;
    for (let match = lines.exec(text); match !== null; match = lines.exec(text)) {
      for (const pair of match[1]!.split(`;`)) {
        const trimmed = pair.trim();
        if (!trimmed.startsWith(`${CANARY_COOKIE}=`)) continue;
        const value = trimmed.slice(CANARY_COOKIE.length + 1);
        if (value === `${this.#cookiePrefix}1`) return true;
        if (value === `${this.#cookiePrefix}0`) return false;
      }
    }
    return null;
  }
}

function lastAddress(forwardedFor: string): string {
  const comma = forwardedFor.lastIndexOf(`,`);
  return (comma === -1 ? forwardedFor : forwardedFor.slice(comma + 1)).trim();
}

/** FNV-1a (32 bit): spreads addresses evenly enough for a percentage split. */
function hashAddress(address: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < address.length; i++) {
    hash ^= address.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
