const REASONS: Record<ProxyErrorStatus, [reason: string, body: string]> = {
  400: [`Bad Request`, `Bad request\n`],
  405: [`Method Not Allowed`, `Method not allowed\n`],
  408: [`Request Timeout`, `Request timeout\n`],
  431: [`Request Header Fields Too Large`, `Request header fields too large\n`],
  501: [`Not Implemented`, `Not implemented\n`],
  502: [`Bad Gateway`, `Bad gateway\n`],
  503: [`Service Unavailable`, `No active release\n`],
  504: [`Gateway Timeout`, `Gateway timeout\n`],
  505: [`HTTP Version Not Supported`, `HTTP version not supported\n`],
};

export type ProxyErrorStatus = 400 | 405 | 408 | 431 | 501 | 502 | 503 | 504 | 505;

const STATUSES = [400, 405, 408, 431, 501, 502, 503, 504, 505] as const;

function build(status: ProxyErrorStatus, close: boolean, body = REASONS[status][1]): string {
  const reason = REASONS[status][0];
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n`
    + `Connection: ${close ? `close` : `keep-alive`}\r\n\r\n${body}`;
}

const CLOSING = new Map<number, string>();
const KEEP_ALIVE = new Map<number, string>();
for (const status of STATUSES) {
  CLOSING.set(status, build(status, true));
  KEEP_ALIVE.set(status, build(status, false));
}

/** A complete plain-text error response the proxy itself generates. */
export function errorResponse(status: ProxyErrorStatus, close: boolean): string {
  return (close ? CLOSING : KEEP_ALIVE).get(status)!;
}

/** The answer to a connection beyond proxy.maxConnections, before it is closed. */
export const OVERLOADED_RESPONSE = build(503, true, `Too many connections\n`);
