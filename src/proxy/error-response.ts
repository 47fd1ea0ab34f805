const REASONS: Record<number, [reason: string, body: string]> = {
  400: [`Bad Request`, `Bad request\n`],
  408: [`Request Timeout`, `Request timeout\n`],
  431: [`Request Header Fields Too Large`, `Request header fields too large\n`],
  502: [`Bad Gateway`, `Bad gateway\n`],
  503: [`Service Unavailable`, `No active release\n`],
  504: [`Gateway Timeout`, `Gateway timeout\n`],
};

export type ProxyErrorStatus = 400 | 408 | 431 | 502 | 503 | 504;

function build(status: ProxyErrorStatus, close: boolean): string {
  const [reason, body] = REASONS[status]!;
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n`
    + `Connection: ${close ? `close` : `keep-alive`}\r\n\r\n${body}`;
}

const CLOSING = new Map<number, string>();
const KEEP_ALIVE = new Map<number, string>();
for (const status of [400, 408, 431, 502, 503, 504] as const) {
  CLOSING.set(status, build(status, true));
  KEEP_ALIVE.set(status, build(status, false));
}

/** A complete plain-text error response the proxy itself generates. */
export function errorResponse(status: ProxyErrorStatus, close: boolean): string {
  return (close ? CLOSING : KEEP_ALIVE).get(status)!;
}
