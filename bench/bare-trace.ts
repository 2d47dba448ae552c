// Entry point, not a library: `node bare-trace.js` serves Dirigent's registration and the trace function with
// no orchestration at all, on one port: `POST /registerService` answers its own address, and any other request
// is the loader's trace function, answered after the requested run time (requested_cpu, ms) with the JSON the
// trace function answers. The trace benchmark's baseline: what the client and loopback HTTP cost by themselves.
// Prints `{"ready":"bare-trace","address":"127.0.0.1:<port>"}` once it listens; stops on SIGTERM.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const server = http.createServer((req, res) => {
  const started = performance.now();
  req.resume();
  req.on('end', () => {
    if (req.url === '/registerService') {
      const address = server.address();
      res.end(typeof address === 'object' && address !== null ? `127.0.0.1:${address.port}` : '');
      return;
    }
    const ms = Number(req.headers['requested_cpu'] ?? 0);
    const fn = String(req.headers['function'] ?? '');
    setTimeout(() => {
      const body = JSON.stringify({ Status: 'OK', Function: fn, MachineName: 'bare', ExecutionTime: Math.round((performance.now() - started) * 1000) });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    }, Number.isFinite(ms) && ms > 0 ? ms : 0);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ ready: 'bare-trace', address: typeof address === 'object' && address !== null ? `127.0.0.1:${address.port}` : '' })}\n`);
});
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
});
