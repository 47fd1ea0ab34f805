import net from 'node:net';
import type {PortRange} from '../config/types.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {readEphemeralPortRange} from '../system/proc.ts';

export type PortRequest = {
  /** Who holds the port once allocated, e.g. a release id. */
  owner: string;
  processId: string;
  range: PortRange;
  /** Config key of the range, named in the error's fix, e.g. `processes[0].port`. */
  configKey: string;
};

// Leased ports the OS hands out again for port 0 are retried this many times.
const OS_ASSIGNED_ATTEMPTS = 20;
// Ports for `0` ranges are picked at random in [DYNAMIC_FLOOR, start of the ephemeral range).
const DYNAMIC_FLOOR = 20_000;
const DYNAMIC_ATTEMPTS = 50;

/**
 * Hands out ports from configured ranges. A port is free when no owner leases it and a trial bind
 * on the host succeeds; leases keep a port reserved between allocation and the moment the process
 * actually listens on it (and for as long as its release holds it).
 */
export class PortAllocator {
  readonly #host: string;
  readonly #leases = new Map<number, string>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: {host: string}) {
    this.#host = options.host;
  }

  /** Reserves a port for `owner` from the range; a range starting or ending at 0 takes an OS-assigned port. */
  allocate(request: PortRequest): Promise<number> {
    // One allocation at a time, so two callers never probe and lease the same port.
    const result = this.#queue.then(() => this.#allocate(request));
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** Marks a port as held by `owner` (e.g. a service keeping its port across deploys). */
  lease(owner: string, port: number): void {
    this.#leases.set(port, owner);
  }

  /** Forgets every lease of `owner`. */
  releaseOwner(owner: string): void {
    for (const [port, holder] of this.#leases) {
      if (holder === owner) this.#leases.delete(port);
    }
  }

  isLeased(port: number): boolean {
    return this.#leases.has(port);
  }

  async #allocate(request: PortRequest): Promise<number> {
    const {from, to} = request.range;
    if (from === 0 || to === 0) return this.#allocateOsAssigned(request);
    let reserved = 0;
    let inUse = 0;
    const bindErrors = new Map<string, number>();
    for (let port = from; port <= to; port++) {
      if (this.#leases.has(port)) {
        reserved++;
        continue;
      }
      const probe = await probeBind(this.#host, port);
      if (probe.ok) {
        this.#leases.set(port, request.owner);
        return port;
      }
      if (probe.code === `EADDRINUSE`) inUse++;
      else bindErrors.set(probe.code, (bindErrors.get(probe.code) ?? 0) + 1);
    }
    throw exhaustedError(request, this.#host, {reserved, inUse, bindErrors});
  }

  async #allocateOsAssigned(request: PortRequest): Promise<number> {
    // Prefer a port below the kernel's ephemeral range: the OS never hands those to outgoing
    // connections, so nothing can take the port between this check and the app's own bind (a port
    // the OS assigns for port 0 can be reused by any outgoing connection in that window).
    const ephemeral = readEphemeralPortRange();
    if (ephemeral && ephemeral.from - 1 > DYNAMIC_FLOOR) {
      for (let attempt = 0; attempt < DYNAMIC_ATTEMPTS; attempt++) {
        const port = DYNAMIC_FLOOR + Math.floor(Math.random() * (ephemeral.from - DYNAMIC_FLOOR));
        if (this.#leases.has(port)) continue;
        const probe = await probeBind(this.#host, port);
        if (probe.ok) {
          this.#leases.set(port, request.owner);
          return port;
        }
      }
    }
    let lastCode = `EADDRINUSE`;
    for (let attempt = 0; attempt < OS_ASSIGNED_ATTEMPTS; attempt++) {
      const probe = await probeBind(this.#host, 0);
      if (!probe.ok) {
        lastCode = probe.code;
        break;
      }
      if (!this.#leases.has(probe.port)) {
        this.#leases.set(probe.port, request.owner);
        return probe.port;
      }
    }
    throw new RollbridgeError(`ERR_PORT_RANGE_EXHAUSTED`, `No OS-assigned port could be bound on ${this.#host} for process "${request.processId}" (${lastCode})`, {
      fix: `Check that ${this.#host} is a local address this user may bind, or set a fixed range in ${request.configKey}`,
      details: {processId: request.processId, host: this.#host, from: request.range.from, to: request.range.to, code: lastCode},
    });
  }
}

type ProbeResult = {ok: true; port: number} | {ok: false; code: string};

function probeBind(host: string, port: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once(`error`, (error: NodeJS.ErrnoException) => {
      resolve({ok: false, code: error.code ?? error.message});
    });
    server.listen({host, port, exclusive: true}, () => {
      const address = server.address();
      const bound = typeof address === `object` && address !== null ? address.port : port;
      server.close(() => resolve({ok: true, port: bound}));
    });
  });
}

function exhaustedError(request: PortRequest, host: string, counts: {reserved: number; inUse: number; bindErrors: Map<string, number>}): RollbridgeError {
  const {from, to} = request.range;
  const size = to - from + 1;
  const parts = [`${counts.reserved} reserved by rollbridge`, `${counts.inUse} already in use`];
  for (const [code, count] of counts.bindErrors) parts.push(`${count} could not be bound (${code})`);
  const bindErrors = Object.fromEntries(counts.bindErrors);
  return new RollbridgeError(
    `ERR_PORT_RANGE_EXHAUSTED`,
    `No available ports in range ${from}-${to} (${size} ${size === 1 ? `port` : `ports`} on ${host}) for process "${request.processId}": ${parts.join(`, `)}`,
    {
      fix: `Widen ${request.configKey} in the config, or stop the release still holding these ports (\`rollbridge status\` lists them)`,
      details: {processId: request.processId, host, from, to, reserved: counts.reserved, inUse: counts.inUse, bindErrors},
    },
  );
}
