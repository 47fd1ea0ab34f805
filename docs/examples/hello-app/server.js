// The example app deployed by `npm run demo`: answers every request with its release id.
'use strict';
const http = require('node:http');

const port = Number(process.env.ROLLBRIDGE_PORT);
const release = process.env.ROLLBRIDGE_RELEASE_ID;
const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(req.url === '/ping' ? 'pong\n' : `hello from release ${release} (pid ${process.pid})\n`);
});
server.listen(port, '127.0.0.1');
// Graceful stop: finish in-flight requests, close idle keep-alive connections, exit.
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
