// The Dirigent-compatibility port (compat-front.ts) over real sockets: HTTP/1.1 on node:http and h2c on
// node:http2, told apart per connection on one port. Fake routers (fixtures/fake-routers.ts) for the edge's
// rules; a small real cluster (control plane, simulated worker, real routers) for the loader's own headers
// against the `trace` workload.
import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type IncomingHttpStatusHeader } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { routerReplicaAddress } from '../../actors/messages.js';
import { ControlPlane } from '../control-plane/control-plane.js';
import { WorkerDaemon } from '../worker/daemon.js';
import { DataPlane } from './data-plane.js';
import { errorOf, request, startHarness, until, type Harness } from './fixtures/harness.js';
import { DRAIN_MS } from './shard.js';

/**
 * What Dirigent's loader sends with every invocation (vhive-serverless/loader, pkg/driver/clients/http_client.go:
 * POST, Host = the function, an empty body), plus what Go's client adds itself.
 */
function loaderHeaders(fn: string, cpuMs: number): Record<string, string> {
  return { workload: 'trace', function: fn, requested_cpu: String(cpuMs), requested_memory: '1', multiplier: '0', io_percentage: '0', 'user-agent': 'Go-http-client/1.1', 'accept-encoding': 'gzip', 'content-length': '0' };
}

async function startCompat(t: ExecutionContext, maxBodyBytes?: number): Promise<Harness & { compat: number }> {
  const harness = await startHarness(t, { compatPort: 0, ...(maxBodyBytes === undefined ? {} : { maxBodyBytes }) });
  return { ...harness, compat: Number(harness.dp.compatAddress!.split(':')[1]) };
}

interface H2Result {
  readonly status: number;
  readonly headers: IncomingHttpHeaders & IncomingHttpStatusHeader;
  readonly body: Buffer;
}

function connectH2(t: ExecutionContext, port: number, options: http2.SecureClientSessionOptions = {}): ClientHttp2Session {
  const session = http2.connect(`http://127.0.0.1:${port}`, options);
  session.on('error', () => undefined); // a failed session fails its streams, which the test sees
  t.teardown(() => session.destroy());
  return session;
}

function h2request(session: ClientHttp2Session, headers: Record<string, string>, body?: string | Buffer): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), 5000);
    let head: IncomingHttpHeaders & IncomingHttpStatusHeader = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (head = h));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) });
    });
    stream.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    if (body !== undefined) stream.end(body);
  });
}

/** Writes `parts` (5 ms apart), then returns everything read until the server closes (at most `withinMs`). */
function raw(port: number, parts: (string | Buffer)[], options: { end?: boolean; withinMs?: number } = {}): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let received = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, options.withinMs ?? 2000);
    socket.once('connect', async () => {
      for (const part of parts) {
        if (socket.destroyed) return;
        socket.write(part);
        await new Promise((r) => setTimeout(r, 5));
      }
      if (options.end) socket.end();
    });
    socket.on('data', (d) => (received += d.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: received, closedByServer: !timedOut });
    });
    socket.on('error', reject);
  });
}

const seenHeaders = (headers: IncomingHttpHeaders): Record<string, string> => JSON.parse(String(headers['x-headers'])) as Record<string, string>;

test.serial('HTTP/1.1 on the compat port: underscore header names reach the function, by path and by Host, on kept-alive connections', async (t) => {
  const { compat, dp } = await startCompat(t);
  t.not(dp.compatAddress, dp.invokeAddress);
  const byPath = await request(compat, { method: 'POST', path: '/invoke/echo/a?b=1', headers: { ...loaderHeaders('echo', 20), 'content-length': 5 }, body: 'hello' });
  t.is(byPath.status, 200);
  t.is(byPath.body.toString(), 'hello');
  t.is(byPath.headers['x-path'], '/a?b=1');
  t.like(seenHeaders(byPath.headers), { requested_cpu: '20', requested_memory: '1', io_percentage: '0', function: 'echo' });
  t.is(byPath.headers['x-dirigent-queue-ms'], '3');
  t.is(byPath.headers['x-dirigent-sandbox'], 'sb-1');
  t.regex(String(byPath.headers['server-timing']), /^queue;dur=3\.000, total;dur=\d+\.\d{3}$/);

  // Dirigent's way: POST / with the function as the Host header.
  const byHost = await request(compat, { method: 'POST', path: '/', headers: { host: 'echo', ...loaderHeaders('echo', 20) } });
  t.is(byHost.status, 200);
  t.is(byHost.headers['x-path'], '/');
  t.is(seenHeaders(byHost.headers).requested_cpu, '20');
  for (const host of ['echo:8081', 'echo.default.example.com']) t.is((await request(compat, { path: '/x', headers: { host } })).status, 200, host);
  const unknown = await request(compat, { path: '/', headers: { host: 'nope' } });
  t.is(unknown.status, 404);
  t.is(errorOf(unknown).code, 'UNKNOWN_FUNCTION');
  const ipHost = await request(compat, { path: '/', headers: { host: '127.0.0.1:8081' } });
  t.is(ipHost.status, 404);
  // Absolute-form: its authority names the function, as a Host header would.
  const absolute = await raw(compat, ['GET http://echo:8081/p?q=1 HTTP/1.1\r\nHost: ignored\r\nConnection: close\r\n\r\n']);
  t.regex(absolute.text, /^HTTP\/1\.1 200 /);
  t.regex(absolute.text, /x-path: \/p\?q=1/i);

  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const results = [];
  for (let i = 0; i < 20; i++) results.push(await request(compat, { method: 'POST', path: '/', headers: { host: 'echo', requested_cpu: String(i) }, body: `n${i}`, agent }));
  t.deepEqual(results.map((r) => r.body.toString()), Array.from({ length: 20 }, (_, i) => `n${i}`));
  t.deepEqual(results.map((r) => seenHeaders(r.headers).requested_cpu), Array.from({ length: 20 }, (_, i) => String(i)));
  t.true(results.slice(1).every((r) => r.reused), 'requests after the first reuse the connection');
  const head = await request(compat, { method: 'HEAD', path: '/invoke/echo', agent });
  t.is(head.status, 200);
  t.is(head.body.length, 0);
  const big = await request(compat, { path: '/invoke/big', headers: { 'x-size': 4 * 1024 * 1024 }, agent, timeoutMs: 10_000 });
  t.is(big.body.length, 4 * 1024 * 1024);
  t.true((await request(compat, { path: '/invoke/echo', agent })).reused);

  // Two requests in the connection's first packet: the sniffed bytes go back whole.
  const pipelined = await raw(compat, ['GET /invoke/echo/1 HTTP/1.1\r\nHost: x\r\nrequested_cpu: 1\r\n\r\nGET /invoke/echo/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
  t.deepEqual([...pipelined.text.matchAll(/x-path: (\/\d)/gi)].map((m) => m[1]), ['/1', '/2']);
});

test.serial('HTTP/1.1 failures map to statuses with JSON bodies; bodies over the limit get 413 early', async (t) => {
  const { compat } = await startCompat(t, 1000);
  for (const [fn, status, code] of [
    ['missing', 404, 'UNKNOWN_FUNCTION'],
    ['full', 429, 'QUEUE_FULL'],
    ['busy', 503, 'NO_CAPACITY'],
    ['late', 504, 'DEADLINE_PASSED'],
    ['broken', 502, 'SANDBOX_FAILED'],
    ['crash', 502, 'ROUTING_FAILED'],
  ] as const) {
    const r = await request(compat, { method: 'POST', path: '/', headers: { host: fn }, body: 'x' });
    t.is(r.status, status, fn);
    t.is(r.headers['content-type'], 'application/json', fn);
    t.is(r.headers['retry-after'], status === 429 ? '1' : undefined, fn);
    t.is(errorOf(r).code, code, fn);
    t.regex(String(r.headers['server-timing']), /queue;dur=.*total;dur=/, fn);
  }
  const teapot = await request(compat, { path: '/invoke/status', headers: { 'x-status': '418' } });
  t.is(teapot.status, 418);
  t.is((await request(compat, { path: '/invoke/nocontent' })).status, 204);
  const asyncOff = await request(compat, { method: 'POST', path: '/async/echo', body: 'x' });
  t.is(asyncOff.status, 501, 'no asyncDir: the async API is off, as on the uWS port');
  t.is((await request(compat, { method: 'DELETE', path: '/async/echo' })).headers.allow, 'GET, POST');

  const declared = await raw(compat, ['POST /invoke/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n']);
  t.regex(declared.text, /^HTTP\/1\.1 413 /);
  t.regex(declared.text, /connection: close/i);
  t.regex(declared.text, /"code":"BODY_TOO_LARGE"/);
  t.true(declared.closedByServer);
  // With Expect: 100-continue the client is told no before it sends the body.
  const expect = await raw(compat, ['POST /invoke/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n']);
  t.regex(expect.text, /^HTTP\/1\.1 413 /);
  const chunked = await raw(compat, ['POST /invoke/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', `258\r\n${'y'.repeat(600)}\r\n`, `258\r\n${'y'.repeat(600)}\r\n`]);
  t.regex(chunked.text, /^HTTP\/1\.1 413 /);
  const continued = await new Promise<number>((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port: compat, method: 'POST', path: '/invoke/echo', headers: { expect: '100-continue', 'content-length': 3 }, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    r.on('continue', () => r.end('abc'));
    r.on('error', reject);
  });
  t.is(continued, 200);
  t.is((await request(compat, { method: 'POST', path: '/invoke/echo', body: 'z'.repeat(1000) })).body.length, 1000);
});

test.serial('h2c with prior knowledge on the same port: by path and by :authority, underscore headers, many streams, failures', async (t) => {
  const { compat } = await startCompat(t, 1024);
  const session = connectH2(t, compat);
  const byPath = await h2request(session, { ':method': 'POST', ':path': '/invoke/echo/x?y=1', 'content-type': 'text/plain' }, 'over h2');
  t.is(byPath.status, 200);
  t.is(byPath.body.toString(), 'over h2');
  t.is(byPath.headers['x-path'], '/x?y=1');
  t.is(byPath.headers['x-dirigent-cold-start'], 'false');
  t.regex(String(byPath.headers['server-timing']), /^queue;dur=3\.000, total;dur=/);
  t.false(Object.keys(seenHeaders(byPath.headers)).some((name) => name.startsWith(':')), 'pseudo-headers stay at the edge');

  const loader = await h2request(session, { ':method': 'POST', ':path': '/', ':authority': 'echo', ...loaderHeaders('echo', 20) });
  t.is(loader.status, 200);
  t.like(seenHeaders(loader.headers), { requested_cpu: '20', requested_memory: '1', function: 'echo' });

  const byAuthority = await Promise.all(Array.from({ length: 20 }, (_, i) => h2request(session, { ':method': 'POST', ':path': `/n/${i}`, ':authority': 'echo.default.example.com' }, `s${i}`)));
  t.deepEqual(byAuthority.map((r) => r.body.toString()), Array.from({ length: 20 }, (_, i) => `s${i}`));
  t.is(byAuthority[3]?.headers['x-path'], '/n/3');

  const missing = await h2request(session, { ':method': 'GET', ':path': '/', ':authority': 'nope' });
  t.is(missing.status, 404);
  t.is(JSON.parse(missing.body.toString()).error.code, 'UNKNOWN_FUNCTION');
  t.is((await h2request(session, { ':method': 'GET', ':path': '/invoke/late' })).status, 504);
  t.is((await h2request(session, { ':method': 'POST', ':path': '/invoke/echo' }, Buffer.alloc(4096))).status, 413);
  // A stream reset mid-body, and one reset while its answer is pending.
  const reset = session.request({ ':method': 'POST', ':path': '/invoke/echo' }, { endStream: false });
  reset.on('error', () => undefined);
  reset.write('partial');
  reset.close(http2.constants.NGHTTP2_CANCEL);
  const abandoned = session.request({ ':method': 'POST', ':path': '/invoke/slow' });
  abandoned.on('error', () => undefined);
  abandoned.end('x');
  setTimeout(() => abandoned.close(http2.constants.NGHTTP2_CANCEL), 20);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is((await h2request(session, { ':method': 'POST', ':path': '/invoke/echo' }, 'session still fine')).body.toString(), 'session still fine');

  // The preface arriving one byte at a time is still recognised.
  const split = connectH2(t, compat, {
    createConnection: () => {
      const socket = connect(compat, '127.0.0.1');
      const write = socket.write.bind(socket) as (data: Buffer) => boolean;
      let first = true;
      socket.write = ((data: Buffer, ...rest: unknown[]) => {
        if (!first || !Buffer.isBuffer(data)) return write(data);
        first = false;
        void (async () => {
          for (let i = 0; i < data.length; i++) {
            write(data.subarray(i, i + 1));
            await new Promise((r) => setTimeout(r, 1));
          }
          (rest.find((r) => typeof r === 'function') as (() => void) | undefined)?.();
        })();
        return true;
      }) as typeof socket.write;
      return socket;
    },
  });
  t.is((await h2request(split, { ':method': 'POST', ':path': '/invoke/echo' }, 'byte by byte')).body.toString(), 'byte by byte');
});

test.serial('bad bytes never crash the front: garbage gets 400 and a close, broken prefaces and CONNECT are answered or closed', async (t) => {
  const { compat, logs } = await startCompat(t);
  const garbage = await raw(compat, [Buffer.from([0, 1, 2, 3, 0xff, 0x0d, 0x0a, 0x0d, 0x0a])]);
  t.regex(garbage.text, /^HTTP\/1\.1 400 /);
  t.true(garbage.closedByServer);
  const badLength = await raw(compat, ['POST /invoke/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n']);
  t.regex(badLength.text, /^HTTP\/1\.1 400 /);
  const badTarget = await raw(compat, ['GET nowhere HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n']);
  t.regex(badTarget.text, /^HTTP\/1\.1 400 /);
  const connectMethod = await raw(compat, ['CONNECT echo:443 HTTP/1.1\r\nHost: echo:443\r\n\r\n']);
  t.regex(connectMethod.text, /^HTTP\/1\.1 405 /);
  t.true(connectMethod.closedByServer);
  // The preface, then bytes that are no HTTP/2 frames: node:http2 ends the session.
  const brokenH2 = await raw(compat, ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'this is not a frame, not at all'], { withinMs: 3000 });
  t.true(brokenH2.closedByServer);
  // Half a preface, then the client ends: nothing to answer, the connection is closed.
  const halfPreface = await raw(compat, ['PRI * HTTP/2'], { end: true });
  t.is(halfPreface.text, '');
  t.true(halfPreface.closedByServer);
  // Clients going away mid-body and mid-answer.
  await new Promise<void>((resolve) => {
    const r = http.request({ host: '127.0.0.1', port: compat, method: 'POST', path: '/invoke/slow', headers: { 'x-delay-ms': '100', 'content-length': 10 }, agent: false });
    r.on('error', () => resolve());
    r.write('half');
    setTimeout(() => {
      r.destroy();
      resolve();
    }, 30);
  });
  await new Promise<void>((resolve) => {
    const r = http.request({ host: '127.0.0.1', port: compat, method: 'POST', path: '/invoke/slow', headers: { 'x-delay-ms': '100' }, agent: false });
    r.on('error', () => resolve());
    r.end('whole');
    setTimeout(() => {
      r.destroy();
      resolve();
    }, 30);
  });
  await new Promise((resolve) => setTimeout(resolve, 250)); // the answers arrive after the aborts
  t.is((await request(compat, { method: 'POST', path: '/', headers: { host: 'echo' }, body: 'alive' })).body.toString(), 'alive');
  const session = connectH2(t, compat);
  t.is((await h2request(session, { ':method': 'POST', ':path': '/invoke/echo' }, 'alive too')).body.toString(), 'alive too');
  t.false(logs.some((l) => l.startsWith('error')), logs.join('\n'));
});

test.serial('stop drains: HTTP/1.1 and h2c requests still pending after DRAIN_MS are answered 503, kept-alive connections and sessions close, and it is idempotent', async (t) => {
  const { compat, dp } = await startCompat(t);
  const agent = new http.Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  await request(compat, { path: '/invoke/echo', agent });
  const session = connectH2(t, compat);
  await h2request(session, { ':method': 'GET', ':path': '/invoke/echo' });
  const pendingH1 = request(compat, { method: 'POST', path: '/invoke/hang', body: 'x', timeoutMs: 10_000 });
  const pendingH2 = h2request(session, { ':method': 'POST', ':path': '/invoke/hang' }, 'x');
  // Both must be pending in the router before the stop (a fixed sleep was too short on a loaded machine).
  const seen = async () => (await Promise.all([0, 1].map((shard) => dp.runtime.ask<number>(routerReplicaAddress('hang', shard), { type: 'fake.calls' })))).reduce((a, b) => a + b, 0);
  await until('both hanging requests to reach a router replica', async () => ((await seen()) >= 2 ? true : undefined), 10_000);
  const started = Date.now();
  await Promise.all([dp.stop(), dp.stop()]);
  // The compat front drains for DRAIN_MS (these requests hang for ever), the uWS fronts have nothing in flight.
  t.true(Date.now() - started < DRAIN_MS + 3000, `stop took ${Date.now() - started} ms`);
  const [h1, h2] = await Promise.all([pendingH1, pendingH2]);
  t.is(h1.status, 503);
  t.is(errorOf(h1).code, 'UNAVAILABLE');
  t.is(h1.headers.connection, 'close');
  t.is(h2.status, 503);
  await until('the h2c session to close', () => (session.closed ? true : undefined), 3000);
  await t.throwsAsync(request(compat, { path: '/invoke/echo', timeoutMs: 1000 }));
});

test.serial('the control plane hears both addresses', async (t) => {
  const { dp, cp } = await startCompat(t);
  t.deepEqual(cp.hellos[0]?.info, { invokeAddress: dp.invokeAddress, shards: 2, compatAddress: dp.compatAddress });
});

test.serial("the loader's exact headers reach the real trace workload over HTTP/1.1 and h2c on the compat port", async (t) => {
  const token = 'compat-test-token';
  const logs: string[] = [];
  const onLog = (level: string, text: string) => logs.push(`${level} ${text}`);
  const plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token, store: { kind: 'memory' }, shards: 1, onLog });
  t.teardown(() => plane.stop());
  const worker = await WorkerDaemon.start({ id: 'w1', controlPlane: plane.clusterAddress, token, host: '127.0.0.1', runtime: 'simulated', capacity: { cpuMilli: 8000, memoryMiB: 8192, slots: 8 }, shards: 1, simulatedLatencyMs: 20, onLog });
  t.teardown(() => worker.stop());
  const dp = await DataPlane.start({ id: 'dp1', controlPlane: plane.clusterAddress, token, host: '127.0.0.1', httpPort: 0, compatPort: 0, shards: 2, tuning: { tickMs: 100 }, onLog });
  t.teardown(() => dp.stop());
  await until('the node and the data plane to register', async () => ((await plane.nodes()).length === 1 && plane.listDataplanes().some((d) => d.connected) ? true : undefined));
  const created = await plane.createFunction({ name: 'trace-fn', runtime: 'simulated', source: { kind: 'builtin', workload: 'trace' }, scaling: { tickMs: 100 } });
  t.true(created.ok, JSON.stringify(created));
  const compat = Number(dp.compatAddress!.split(':')[1]);

  const overH1 = await request(compat, { method: 'POST', path: '/', headers: { host: 'trace-fn', ...loaderHeaders('trace-fn', 20) }, timeoutMs: 15_000 });
  t.is(overH1.status, 200, `${overH1.body.toString()}\n${logs.join('\n')}`);
  const h1Body = JSON.parse(overH1.body.toString()) as { Status: string; Function: string; ExecutionTime: number };
  t.like(h1Body, { Status: 'OK', Function: 'trace-fn' });
  t.true(h1Body.ExecutionTime >= 20_000, `ExecutionTime ${h1Body.ExecutionTime} us for requested_cpu 20 (ms)`);

  const session = connectH2(t, compat);
  const h2Headers = loaderHeaders('trace-fn', 30);
  delete h2Headers['content-length'];
  const overH2 = await h2request(session, { ':method': 'POST', ':path': '/', ':authority': 'trace-fn', ...h2Headers }, '');
  t.is(overH2.status, 200, overH2.body.toString());
  const h2Body = JSON.parse(overH2.body.toString()) as { Status: string; ExecutionTime: number };
  t.is(h2Body.Status, 'OK');
  t.true(h2Body.ExecutionTime >= 30_000, `ExecutionTime ${h2Body.ExecutionTime} us for requested_cpu 30 (ms)`);
});
