import net from 'node:net';

/**
 * Every proxy socket, on both sides, reads into this one buffer (net's `onread`), and each read is
 * copied out at once into a Buffer of its own length (from Node's allocation pool when small).
 * Compared with 'data' events this skips, per read, a 64 KiB allocation that is then shrunk, an
 * ArrayBuffer to track and free, and the Readable stream's bookkeeping (push, 'data', and a
 * process.nextTick to maybe read more): about 3 µs of CPU per proxied request on each side here.
 * Each chunk handed on owns its bytes, so a chunk queued for a slow peer, kept as a partial head or
 * relayed by a WebSocket is never overwritten by the next read (the reads of all connections happen
 * one at a time, on this thread, from the event loop: never inside a write or another callback).
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** Called with each read, copied out of the shared buffer; returns false to stop reading (as socket.pause()). */
export type ReadCallback = (chunk: Buffer) => boolean;

/** `onread` options for net.connect(): reads into the shared buffer, handed on copied. */
export function sharedReadOptions(onChunk: ReadCallback): net.OnReadOpts {
  return {buffer: READ_BUFFER, callback: (length) => onChunk(copyOut(length))};
}

function copyOut(length: number): Buffer {
  const chunk = Buffer.allocUnsafe(length);
  READ_BUFFER.copy(chunk, 0, 0, length);
  return chunk;
}

/**
 * The fields net.Socket keeps its `onread` buffer and callback in. Node takes `onread` only from
 * net.connect() / new net.Socket(), not for the sockets a net.Server accepts, so they are found on a
 * socket created with `onread` (by their descriptions) and set on an accepted one the same way the
 * constructor sets them. Null when this Node keeps them otherwise: the caller then reads with 'data'.
 */
const ONREAD_FIELDS = findOnreadFields();

function findOnreadFields(): {buffer: symbol; callback: symbol; generator: symbol} | null {
  const probe = new net.Socket({onread: {buffer: READ_BUFFER, callback: () => true}});
  const symbols = Object.getOwnPropertySymbols(probe);
  const named = (description: string) => symbols.find((symbol) => symbol.description === description);
  const buffer = named(`kBuffer`);
  const callback = named(`kBufferCb`);
  const generator = named(`kBufferGen`);
  const record = probe as unknown as Record<symbol, unknown>;
  if (buffer === undefined || callback === undefined || generator === undefined) return null;
  if (record[buffer] !== READ_BUFFER || typeof record[callback] !== `function` || record[generator] !== null) return null;
  return {buffer, callback, generator};
}

type StreamHandle = {useUserBuffer?: (buffer: Uint8Array) => void; reading?: boolean};

/**
 * Makes a socket accepted by a server created with `pauseOnConnect: true` read into the shared
 * buffer, then starts reading. Returns false (and starts nothing) when this Node does not allow it:
 * the caller then listens to 'data' and resumes the socket itself.
 */
export function readAcceptedIntoSharedBuffer(socket: net.Socket, onChunk: ReadCallback): boolean {
  const fields = ONREAD_FIELDS;
  const handle = (socket as unknown as {_handle: StreamHandle | null})._handle;
  if (fields === null || handle === null || typeof handle.useUserBuffer !== `function` || handle.reading === true) return false;
  const record = socket as unknown as Record<symbol, unknown>;
  if (record[fields.buffer] !== null || record[fields.generator] !== null) return false;
  handle.useUserBuffer(READ_BUFFER);
  record[fields.buffer] = READ_BUFFER;
  record[fields.callback] = (length: number) => onChunk(copyOut(length));
  socket.resume();
  return true;
}

/** Whether accepted sockets read into the shared buffer on this Node (for tests). */
export const ACCEPTED_SOCKETS_USE_SHARED_BUFFER = ONREAD_FIELDS !== null;
