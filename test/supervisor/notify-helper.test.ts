import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import {assembleNotifyHelper} from '../../scripts/gen-notify-helper.ts';
import {NOTIFY_HELPER_ARM64, NOTIFY_HELPER_X64} from '../../src/supervisor/notify-helper-binaries.ts';
import {installNotifyHelper} from '../../src/supervisor/notify-helper.ts';
import {parseCredentials} from '../../src/supervisor/notify-socket.ts';
import {requireCommands} from '../helpers/system-packages.ts';
import {createTempDir} from '../helpers/temp-dir.ts';
import {waitFor} from '../helpers/wait-for.ts';

test(`the committed notify helpers are exactly what their assembly sources build (npm run gen:notify-helper)`, (t) => {
  if (!requireCommands(t, [{command: `as`, pkg: `binutils`}, {command: `aarch64-linux-gnu-as`, pkg: `binutils-aarch64-linux-gnu`}])) return;
  assert.equal(assembleNotifyHelper(`x64`).toString(`base64`), NOTIFY_HELPER_X64);
  assert.equal(assembleNotifyHelper(`arm64`).toString(`base64`), NOTIFY_HELPER_ARM64);
});

/** Runs a helper, sends `message` with python3, returns the frame it wrote after "BND\n" (not acknowledged). */
async function relayOnce(t: {after(fn: () => unknown): void}, argv: string[], socketPath: string, message: string): Promise<{data: string; control: Buffer; flags: number}> {
  const helper = spawn(argv[0]!, [...argv.slice(1), socketPath], {stdio: [`pipe`, `pipe`, `ignore`]});
  t.after(() => helper.kill(`SIGKILL`));
  let output = Buffer.alloc(0);
  helper.stdout.on(`data`, (chunk: Buffer) => (output = Buffer.concat([output, chunk])));
  await waitFor(() => output.toString(`latin1`).startsWith(`BND\n`), {what: `the helper to bind`});
  const sent = spawnSync(`python3`, [`-c`, `import socket, sys\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.sendto(sys.argv[2].encode(), sys.argv[1])`, socketPath, message]);
  assert.equal(sent.status, 0, String(sent.stderr));
  const frame = await waitFor(() => {
    const body = output.subarray(4);
    if (body.length < 12) return null;
    const dataBytes = body.readUInt32LE(0);
    const controlBytes = body.readUInt32LE(4);
    return body.length >= 12 + controlBytes + dataBytes ? {data: body.subarray(12 + controlBytes, 12 + controlBytes + dataBytes).toString(), control: body.subarray(12, 12 + controlBytes), flags: body.readUInt32LE(8)} : null;
  }, {what: `the relayed datagram`});
  return frame;
}

test(`the x64 helper binds the datagram socket and relays each datagram with the sender's credentials`, async (t) => {
  if (process.arch !== `x64` || !requireCommands(t, [{command: `python3`, pkg: `python3`}])) return;
  const dir = createTempDir(t);
  const helper = installNotifyHelper(dir);
  assert.equal(fs.statSync(helper).mode & 0o777, 0o500);
  assert.equal(installNotifyHelper(dir), helper, `installed once`);
  const socketPath = path.join(dir, `n.sock`);
  const frame = await relayOnce(t, [helper], socketPath, `READY=1\nSTATUS=up`);
  assert.equal(frame.data, `READY=1\nSTATUS=up`);
  const credentials = parseCredentials(frame.control);
  assert.equal(credentials?.uid, process.getuid?.());
  assert.ok((credentials?.pid ?? 0) > 0);
  assert.equal(frame.flags & 0x28, 0, `not truncated`);
});

test(`the arm64 helper does the same (under qemu-user)`, async (t) => {
  if (!requireCommands(t, [{command: `python3`, pkg: `python3`}, {command: `qemu-aarch64-static`, pkg: `qemu-user-static`}])) return;
  const dir = createTempDir(t);
  const helper = installNotifyHelper(dir, `arm64`);
  const frame = await relayOnce(t, [`qemu-aarch64-static`, helper], path.join(dir, `a.sock`), `READY=1`);
  assert.equal(frame.data, `READY=1`);
  assert.ok(parseCredentials(frame.control), `SCM_CREDENTIALS came along`);
});

test(`parseCredentials reads SCM_CREDENTIALS among other control messages and refuses malformed ones`, () => {
  const rights = Buffer.alloc(24);
  rights.writeBigUInt64LE(20n, 0);
  rights.writeInt32LE(1, 8);
  rights.writeInt32LE(1, 12);
  const credentials = Buffer.alloc(32);
  credentials.writeBigUInt64LE(28n, 0);
  credentials.writeInt32LE(1, 8);
  credentials.writeInt32LE(2, 12);
  credentials.writeInt32LE(4242, 16);
  credentials.writeUInt32LE(1000, 20);
  credentials.writeUInt32LE(1001, 24);
  assert.deepEqual(parseCredentials(Buffer.concat([rights, credentials])), {pid: 4242, uid: 1000, gid: 1001});
  assert.equal(parseCredentials(rights), null);
  const broken = Buffer.from(credentials);
  broken.writeBigUInt64LE(400n, 0);
  assert.equal(parseCredentials(broken), null);
  assert.equal(parseCredentials(Buffer.alloc(0)), null);
});
