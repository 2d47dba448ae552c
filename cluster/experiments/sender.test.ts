import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpSender, type SendResult } from './sender.js';

/** A node:http server; `handler` answers; counts connections. */
async function server(handler: http.RequestListener): Promise<{ address: string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const s = http.createServer(handler);
  s.on('connection', () => connections++);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(s.address() as AddressInfo).port}`,
    connections: () => connections,
    close: () => {
      s.closeAllConnections();
      return new Promise((resolve) => s.close(() => resolve()));
    },
  };
}

const send = (sender: HttpSender, address: string, host = 'f', headers: Record<string, string> = {}) => new Promise<SendResult>((resolve) => sender.send(address, host, headers, resolve));

test('the loader request: POST /, Host the function, headers as given; status, body and the cold-start flag come back', async (t) => {
  const seen: { method?: string; url?: string; headers?: http.IncomingHttpHeaders }[] = [];
  const s = await server((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers });
    res.setHeader('x-dirigent-cold-start', 'true');
    res.setHeader('x-dirigent-queue-ms', '12.5');
    res.end('{"Function":"f","ExecutionTime":5}');
  });
  const sender = new HttpSender({ maxSockets: 4, maxPending: 100, timeoutMs: 5000 });
  const r = await send(sender, s.address, 'trace-fn', { requested_cpu: '20', function: 'trace-fn' });
  t.like(r, { status: 200, body: '{"Function":"f","ExecutionTime":5}', coldStart: true, queueMs: 12.5 });
  t.true(r.responseTimeUs > 0 && r.startTimeUs > 1.7e15);
  t.like(seen[0], { method: 'POST', url: '/' });
  t.like(seen[0]!.headers, { host: 'trace-fn', requested_cpu: '20', 'content-length': '0' });
  sender.close();
  await s.close();
});

test('keep-alive: sequential and concurrent requests reuse at most maxSockets connections; chunked bodies are read', async (t) => {
  const s = await server((req, res) => {
    res.write('part one, ');
    setTimeout(() => res.end('part two'), 5);
  });
  const sender = new HttpSender({ maxSockets: 3, maxPending: 1000, timeoutMs: 5000 });
  for (let i = 0; i < 5; i++) t.is((await send(sender, s.address)).body, 'part one, part two');
  const many = await Promise.all(Array.from({ length: 30 }, () => send(sender, s.address)));
  t.true(many.every((r) => r.status === 200 && r.body === 'part one, part two'));
  t.true(s.connections() <= 3, `${s.connections()} connections`);
  sender.close();
  await s.close();
});

test('connection: close, a refused connection, a timeout and too many pending each end in one result', async (t) => {
  const s = await server((req, res) => {
    if (req.headers['mode'] === 'slow') return; // never answers
    res.setHeader('connection', 'close');
    res.statusCode = 503;
    res.end('busy');
  });
  const sender = new HttpSender({ maxSockets: 2, maxPending: 3, timeoutMs: 300 });
  t.like(await send(sender, s.address), { status: 503, body: 'busy' });
  t.like(await send(sender, s.address), { status: 503, body: 'busy' });
  const slow = await send(sender, s.address, 'f', { mode: 'slow' });
  t.is(slow.status, 0);
  t.regex(slow.error ?? '', /no answer within 300 ms/);
  const refused = await send(sender, '127.0.0.1:1');
  t.is(refused.status, 0);
  t.truthy(refused.error);
  const burst = await Promise.all(Array.from({ length: 5 }, () => send(sender, s.address, 'f', { mode: 'slow' })));
  t.is(burst.filter((r) => /more than 3 requests pending/.test(r.error ?? '')).length, 2);
  t.is(sender.pending, 0);
  sender.close();
  await s.close();
});
