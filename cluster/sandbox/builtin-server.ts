// Entry point, not a library: `node builtin-server.js <empty|echo|trace>` serves one builtin workload over
// HTTP on 127.0.0.1:$PORT. The process runtime runs `builtin` sources with it; it reads the DIRIGENT_*
// variables that runtime sets.
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import type { BuiltinWorkload } from './runtime.js';
import { fromIncoming, toOutgoing } from './http-headers.js';
import { realWorkloadContext, runWorkload } from './workloads.js';

const WORKLOADS: readonly string[] = ['empty', 'echo', 'trace'] satisfies BuiltinWorkload[];

const workload = process.argv[2] ?? '';
const port = Number(process.env['PORT']);
const memoryMiB = Number(process.env['DIRIGENT_MEMORY_MIB'] ?? '1024');
if (!WORKLOADS.includes(workload) || !Number.isInteger(port) || port <= 0 || !(memoryMiB > 0)) {
  console.error(`usage: PORT=<port> [DIRIGENT_MEMORY_MIB=<MiB>] node builtin-server.js <${WORKLOADS.join('|')}>`);
  process.exit(2);
}

const ctx = realWorkloadContext(process.env['DIRIGENT_SANDBOX_ID'] ?? hostname(), process.env['DIRIGENT_FUNCTION'] ?? workload, memoryMiB);

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const request = { method: req.method ?? 'GET', path: req.url ?? '/', headers: fromIncoming(req.headers), body: new Uint8Array(Buffer.concat(chunks)) };
    runWorkload(workload as BuiltinWorkload, request, ctx).then(
      (response) => {
        res.writeHead(response.status, toOutgoing(response.headers, response.body.byteLength));
        res.end(response.body);
      },
      (error: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(error.message);
      },
    );
  });
});

server.listen(port, '127.0.0.1', () => console.log(`builtin ${workload} listening on 127.0.0.1:${port}`));
