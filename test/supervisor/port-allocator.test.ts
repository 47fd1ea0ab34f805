import assert from 'node:assert/strict';
import net from 'node:net';
import {test} from 'node:test';
import type {TestContext} from 'node:test';
import {PortAllocator} from '../../src/supervisor/port-allocator.ts';

const HOST = `127.0.0.1`;

function listen(t: TestContext, port: number): Promise<net.Server | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once(`error`, () => resolve(null));
    server.listen({host: HOST, port, exclusive: true}, () => {
      t.after(() => new Promise<void>((done) => server.close(() => done())));
      resolve(server);
    });
  });
}

function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

/** Two consecutive ports: the first held by a real listener, the second free (as far as we know). */
async function occupiedThenFree(t: TestContext): Promise<{occupied: number; free: number}> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const holder = await listen(t, 0);
    assert.ok(holder);
    const occupied = portOf(holder);
    if (occupied >= 65_535) continue;
    const probe = await listen(t, occupied + 1);
    if (probe === null) continue;
    await new Promise<void>((done) => probe.close(() => done()));
    return {occupied, free: occupied + 1};
  }
  throw new Error(`No two consecutive ports found`);
}

test(`skips the occupied port and leases the allocated one to its owner`, async (t) => {
  const {occupied, free} = await occupiedThenFree(t);
  const allocator = new PortAllocator({host: HOST});
  const port = await allocator.allocate({owner: `r1`, processId: `web`, range: {from: occupied, to: free}, configKey: `processes[0].port`});
  assert.equal(port, free);
  assert.equal(allocator.isLeased(free), true);
  assert.equal(allocator.isLeased(occupied), false);
});

test(`reports reserved and in-use counts when a range is exhausted`, async (t) => {
  const {occupied, free} = await occupiedThenFree(t);
  const allocator = new PortAllocator({host: HOST});
  allocator.lease(`r1`, free);
  await assert.rejects(
    allocator.allocate({owner: `r2`, processId: `web`, range: {from: occupied, to: free}, configKey: `processes[0].port`}),
    (error: {code?: string; message?: string; fix?: string; details?: Record<string, unknown>}) => {
      assert.equal(error.code, `ERR_PORT_RANGE_EXHAUSTED`);
      assert.equal(error.message, `No available ports in range ${occupied}-${free} (2 ports on 127.0.0.1) for process "web": 1 reserved by rollbridge, 1 already in use`);
      assert.match(error.fix ?? ``, /processes\[0\]\.port/);
      assert.match(error.fix ?? ``, /`rollbridge status`/);
      assert.deepEqual(error.details, {processId: `web`, host: HOST, from: occupied, to: free, reserved: 1, inUse: 1, bindErrors: {}});
      return true;
    },
  );
});

test(`counts ports that could not be bound by their error code`, async () => {
  // 192.0.2.1 (TEST-NET-1) is not a local address, so every bind fails without any traffic.
  const allocator = new PortAllocator({host: `192.0.2.1`});
  await assert.rejects(
    allocator.allocate({owner: `r1`, processId: `worker`, range: {from: 40_000, to: 40_000}, configKey: `processes[2].port`}),
    (error: {code?: string; message?: string}) => {
      assert.equal(error.code, `ERR_PORT_RANGE_EXHAUSTED`);
      assert.equal(error.message, `No available ports in range 40000-40000 (1 port on 192.0.2.1) for process "worker": 0 reserved by rollbridge, 0 already in use, 1 could not be bound (EADDRNOTAVAIL)`);
      return true;
    },
  );
});

test(`never hands out a leased port twice, and releasing the owner frees its ports`, async (t) => {
  const {free} = await occupiedThenFree(t);
  const allocator = new PortAllocator({host: HOST});
  const range = {from: free, to: free};
  const request = {processId: `web`, range, configKey: `processes[0].port`};
  assert.equal(await allocator.allocate({...request, owner: `r1`}), free);
  await assert.rejects(allocator.allocate({...request, owner: `r2`}), {code: `ERR_PORT_RANGE_EXHAUSTED`});
  allocator.releaseOwner(`r2`);
  assert.equal(allocator.isLeased(free), true);
  allocator.releaseOwner(`r1`);
  assert.equal(allocator.isLeased(free), false);
  assert.equal(await allocator.allocate({...request, owner: `r2`}), free);
});

test(`never gives one free port to two concurrent allocations`, async (t) => {
  const {occupied, free} = await occupiedThenFree(t);
  const allocator = new PortAllocator({host: HOST});
  // Two allocations race for the single free port: exactly one wins it, the other finds the range exhausted.
  const range = {from: occupied, to: free};
  const results = await Promise.allSettled([
    allocator.allocate({owner: `r1`, processId: `web`, range, configKey: `processes[0].port`}),
    allocator.allocate({owner: `r1`, processId: `worker`, range, configKey: `processes[1].port`}),
  ]);
  assert.deepEqual(results.map((result) => result.status).sort(), [`fulfilled`, `rejected`]);
  const won = results.find((result) => result.status === `fulfilled`);
  assert.equal(won?.status === `fulfilled` && won.value, free);
});

test(`takes an OS-assigned port for a range of 0 and leases it`, async () => {
  const allocator = new PortAllocator({host: HOST});
  const port = await allocator.allocate({owner: `r1`, processId: `web`, range: {from: 0, to: 0}, configKey: `processes[0].port`});
  assert.ok(port > 0);
  assert.equal(allocator.isLeased(port), true);
  const other = await allocator.allocate({owner: `r1`, processId: `worker`, range: {from: 0, to: 0}, configKey: `processes[1].port`});
  assert.notEqual(other, port);
});

test(`a range of 0 picks a free port below the kernel's ephemeral range, which outgoing connections never use`, async () => {
  const {readEphemeralPortRange} = await import('../../src/system/proc.ts');
  const ephemeral = readEphemeralPortRange();
  assert.ok(ephemeral, `this Linux host has net.ipv4.ip_local_port_range`);
  const allocator = new PortAllocator({host: `127.0.0.1`});
  for (let index = 0; index < 5; index++) {
    const port = await allocator.allocate({owner: `r1`, processId: `web#${index}`, range: {from: 0, to: 0}, configKey: `processes[0].port`});
    assert.ok(port >= 20_000 && port < ephemeral.from, `port ${port} is in [20000, ${ephemeral.from})`);
  }
});
