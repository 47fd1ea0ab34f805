import net from 'node:net';
import {readEphemeralPortRange} from '../../src/system/proc.ts';

/**
 * A free port on 127.0.0.1 for configs that need a fixed port, chosen below the kernel's ephemeral
 * range so no outgoing connection of a parallel test can take it before the process binds it.
 */
export async function freePort(): Promise<number> {
  const ceiling = readEphemeralPortRange()?.from ?? 32_768;
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * (ceiling - 20_000));
    if (await canBind(port)) return port;
  }
  throw new Error(`No free port found below ${ceiling}`);
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once(`error`, () => resolve(false));
    server.listen(port, `127.0.0.1`, () => server.close(() => resolve(true)));
  });
}
