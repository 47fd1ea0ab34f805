// A reported hang: after a proxied WebSocket's client left and the app server then stopped listening,
// the next HTTP request to the proxy was said to hang instead of getting a 502. It does not reproduce:
// these cases guard it, for each way a client can leave (close handshake, FIN without a close frame,
// its socket destroyed) and for a fresh and a keep-alive client connection. What does stay open is the
// app's side of a WebSocket whose client sent only a FIN: the proxy relays the half-close (the app sees
// `end`), and the pair closes when the app closes its side, so an app's `server.close(callback)` waits
// for that socket like for any other open connection.
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import {test} from 'node:test';
import {waitFor} from '../helpers/wait-for.ts';
import {addTarget, connectWebSocket, request, startApp, startProxy} from './harness.ts';

// A hang fails the test at this deadline instead of holding up the suite.
const HANG_DEADLINE_MS = 20_000;

for (const leave of [`close handshake`, `FIN without a close frame`, `socket destroyed`] as const) {
  for (const keepAlive of [false, true]) {
    test(`after a WebSocket client left (${leave}) and the app stopped listening, the next requests get a 502 (${keepAlive ? `keep-alive` : `new`} client connection)`, {timeout: HANG_DEADLINE_MS}, async (t) => {
      const proxy = await startProxy(t);
      const app = await startApp(t, `blue`);
      const target = addTarget(proxy, app, `r1`);
      proxy.setActiveTargets([target]);
      const agent = keepAlive ? new http.Agent({keepAlive: true, maxSockets: 1}) : false;
      t.after(() => (agent === false ? undefined : agent.destroy()));
      // A keep-alive client connection and a pooled app connection exist before the WebSocket.
      assert.equal((await request(proxy.address.port, {agent})).status, 200);

      const ws = await connectWebSocket(t, proxy.address.port);
      await waitFor(() => ws.messages.includes(`hello from blue`));
      const [appSide] = app.wsSockets as Set<net.Socket>;
      assert.ok(appSide !== undefined);
      let appSawEnd = false;
      appSide.once(`end`, () => (appSawEnd = true));
      if (leave === `close handshake`) {
        ws.close(1000);
        assert.equal((await ws.closed).code, 1000);
        assert.deepEqual(app.wsCloseCodes, [1000]);
      } else {
        if (leave === `FIN without a close frame`) ws.socket.end();
        else ws.socket.destroy();
        // The client's FIN reaches the app; the app keeps its side open (as this test app does).
        await waitFor(() => appSawEnd, {what: `the app to see the client's FIN`});
        assert.equal(target.connections.websocket, 1);
      }

      app.server.close();
      await waitFor(() => !app.server.listening, {what: `the app to stop listening`});
      for (const attempt of [1, 2]) {
        const response = await request(proxy.address.port, {agent});
        assert.deepEqual([response.status, response.body, response.headers.connection], [502, `Bad gateway\n`, `close`], `request ${attempt}`);
      }
      assert.ok(target.stats.errors >= 2);

      // The app closes its side: the WebSocket ends on the proxy too, nothing stays counted.
      appSide.destroy();
      await waitFor(() => target.connections.websocket === 0 && target.connections.http === 0, {what: `the WebSocket to be gone from its target`});
      if (leave === `FIN without a close frame`) await ws.closed;
    });
  }
}
