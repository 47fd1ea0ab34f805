// Keep-alive load on a proxy port for the tests that count failed requests across a deploy, a pause or
// a switch hold: `clients` connections loop on `/` (the fixture app answers with its release id) until
// stop(), the end of the test or `maxMs` (loadSwitch).
import http from 'node:http';
import type {TestContext} from 'node:test';
import {httpGet} from './http.ts';
import {loadSwitch} from './load-switch.ts';
import {waitFor} from './wait-for.ts';

export type KeepAliveLoad = {
  /** Answers 200 by body (the release that answered). */
  served: Map<string, number>;
  /** Every other answer (`HTTP <status>: <body>`) and every error. */
  failures: string[];
  /** All 200 answers so far. */
  answered(): number;
  /** Resolves once `release` answered `count` more requests than when called. */
  servedMore(release: string, count?: number): Promise<void>;
  stop(): Promise<void>;
};

export function startKeepAliveLoad(t: TestContext, port: number, options: {clients?: number; maxMs?: number} = {}): KeepAliveLoad {
  const clients = options.clients ?? 8;
  const agent = new http.Agent({keepAlive: true, maxSockets: clients});
  t.after(() => agent.destroy());
  const load = loadSwitch(t, options.maxMs ?? 30_000);
  const served = new Map<string, number>();
  const failures: string[] = [];
  const loops = Array.from({length: clients}, async () => {
    while (load.on()) {
      try {
        const result = await httpGet(port, `/`, {agent});
        if (result.status === 200) served.set(result.body.trim(), (served.get(result.body.trim()) ?? 0) + 1);
        else failures.push(`HTTP ${result.status}: ${result.body.trim()}`);
      } catch (error) {
        failures.push(String(error));
      }
    }
  });
  return {
    served,
    failures,
    answered: () => [...served.values()].reduce((a, b) => a + b, 0),
    servedMore: async (release, count = 50) => {
      const from = served.get(release) ?? 0;
      await waitFor(() => (served.get(release) ?? 0) >= from + count, {what: `${count} more requests answered by ${release}`});
    },
    stop: async () => {
      load.stop();
      await Promise.all(loops);
    },
  };
}
