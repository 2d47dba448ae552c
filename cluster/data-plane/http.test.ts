// The HTTP/1.1 front over real sockets, on fake routers (fixtures/fake-routers.ts) and a fake control plane.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { errorOf, request, startHarness, until } from './fixtures/harness.js';
import { DRAIN_MS, parseDataPlaneOptions } from './shard.js';

test.serial('POST /invoke/<fn>/<rest>: method, path, query, headers and body reach the sandbox; its answer comes back with timing headers', async (t) => {
  const { port } = await startHarness(t);
  const r = await request(port, { method: 'PUT', path: '/invoke/echo/a/b?x=1&y=2', headers: { 'content-type': 'text/plain', 'x-custom': 'v', connection: 'keep-alive' }, body: 'hello' });
  t.is(r.status, 200);
  t.is(r.body.toString(), 'hello');
  t.is(r.headers['x-method'], 'PUT');
  t.is(r.headers['x-path'], '/a/b?x=1&y=2');
  const seen = JSON.parse(String(r.headers['x-headers'])) as Record<string, string>;
  t.is(seen['x-custom'], 'v');
  t.is(seen['content-type'], 'text/plain');
  t.false('connection' in seen, 'hop-by-hop headers stay at the edge');
  t.is(r.headers['x-dirigent-queue-ms'], '3');
  t.is(r.headers['x-dirigent-cold-start'], 'false');
  t.is(r.headers['x-dirigent-sandbox'], 'sb-1');
  t.regex(String(r.headers['server-timing']), /^queue;dur=3\.000, total;dur=\d+\.\d{3}$/);

  const root = await request(port, { path: '/invoke/echo' });
  t.is(root.headers['x-path'], '/', 'no rest: the sandbox sees /');
  t.is(root.headers['x-method'], 'GET');
  const cold = await request(port, { method: 'POST', path: '/invoke/cold', body: 'x' });
  t.is(cold.headers['x-dirigent-cold-start'], 'true');
  t.is(cold.headers['x-dirigent-queue-ms'], '250');
  t.is(cold.headers['x-dirigent-sandbox'], 'sb-cold');
});

test.serial('every failure maps to its status with a JSON error body and timing headers, never 200', async (t) => {
  const { port } = await startHarness(t);
  const cases: [string, number, string][] = [
    ['missing', 404, 'UNKNOWN_FUNCTION'],
    ['huge', 413, 'BODY_TOO_LARGE'],
    ['full', 429, 'QUEUE_FULL'],
    ['busy', 503, 'NO_CAPACITY'],
    ['late', 504, 'DEADLINE_PASSED'],
    ['broken', 502, 'SANDBOX_FAILED'],
    ['crash', 502, 'ROUTING_FAILED'],
    ['bad', 502, 'ROUTING_FAILED'],
    ['weird', 502, 'BAD_SANDBOX_RESPONSE'],
  ];
  for (const [fn, status, code] of cases) {
    const r = await request(port, { method: 'POST', path: `/invoke/${fn}`, body: 'x' });
    t.is(r.status, status, fn);
    t.is(r.headers['content-type'], 'application/json', fn);
    t.is(errorOf(r).code, code, fn);
    t.truthy(errorOf(r).message, fn);
    t.regex(String(r.headers['server-timing']), /queue;dur=.*total;dur=/, fn);
    // A full queue says when to come back (RFC 9110 Retry-After, seconds); other failures do not.
    t.is(r.headers['retry-after'], status === 429 ? '1' : undefined, fn);
  }
  const broken = await request(port, { method: 'POST', path: '/invoke/broken' });
  t.is(broken.headers['x-dirigent-queue-ms'], '7');
  t.is(broken.headers['x-dirigent-sandbox'], 'sb-bad');
  // A sandbox's own error statuses are its answer, passed through as they are.
  const teapot = await request(port, { path: '/invoke/status', headers: { 'x-status': '418' } });
  t.is(teapot.status, 418);
  t.is(teapot.body.toString(), 'status 418');
  const noContent = await request(port, { path: '/invoke/nocontent' });
  t.is(noContent.status, 204);
  t.is(noContent.body.length, 0);
});

test.serial('paths the edge refuses without asking a router', async (t) => {
  const { port } = await startHarness(t);
  for (const path of ['/invoke/', '/invoke', '/invoke/Not_A_Name/x', `/invoke/${'a'.repeat(64)}`]) {
    const r = await request(port, { path });
    t.is(r.status, 404, path);
    t.is(errorOf(r).code, 'UNKNOWN_FUNCTION', path);
  }
  const method = await request(port, { method: 'DELETE', path: '/async/echo' });
  t.is(method.status, 405);
  t.is(method.headers.allow, 'GET, POST');
  const noHost = await request(port, { path: '/anything', headers: { host: '127.0.0.1:1234' } });
  t.is(noHost.status, 404);
  t.regex(errorOf(noHost).message, /Host header "127\.0\.0\.1:1234" names no function/);
  const badLength = await rawExchange(port, 'POST /invoke/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n');
  // uWS itself drops such a request (it closes the connection unanswered); either way it is never served.
  t.true(badLength === '' || badLength.startsWith('HTTP/1.1 400'), badLength);
});

test.serial('Dirigent-compatible routing: the Host header names the function on any path', async (t) => {
  const { port } = await startHarness(t);
  const bare = await request(port, { method: 'POST', path: '/some/path?q=1', headers: { host: 'echo' }, body: 'by host' });
  t.is(bare.status, 200);
  t.is(bare.body.toString(), 'by host');
  t.is(bare.headers['x-path'], '/some/path?q=1', 'the path goes to the sandbox as it is');
  const withPort = await request(port, { path: '/', headers: { host: 'echo:8080' } });
  t.is(withPort.status, 200);
  const knative = await request(port, { path: '/', headers: { host: 'echo.default.example.com' } });
  t.is(knative.status, 200, 'the first label of a dotted host');
  const unknown = await request(port, { path: '/', headers: { host: 'nope' } });
  t.is(unknown.status, 404);
  t.is(errorOf(unknown).code, 'UNKNOWN_FUNCTION');
});

test.serial('bodies over the limit get 413 early: by content-length before reading, and mid-stream for chunked bodies', async (t) => {
  const { port, dp } = await startHarness(t, { maxBodyBytes: 1000 });
  // Headers only: the 413 must come without a byte of the body sent.
  const declared = await rawExchange(port, 'POST /invoke/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n');
  t.regex(declared, /^HTTP\/1\.1 413 /);
  t.regex(declared, /\r\ncontent-type: application\/json\r\n(?:.+\r\n)*connection: close\r\n/i, 'every header on a line of its own');
  t.regex(declared, /"code":"BODY_TOO_LARGE"/);
  const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/invoke/echo', agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    r.on('error', reject);
    r.write('y'.repeat(600));
    // The second chunk crosses the limit: the answer must come without waiting for the end of the body.
    setTimeout(() => r.write('y'.repeat(600)), 20);
    setTimeout(() => r.destroy(), 3000);
  });
  t.is(chunked.status, 413);
  const exact = await request(port, { method: 'POST', path: '/invoke/echo', body: 'z'.repeat(1000) });
  t.is(exact.status, 200);
  t.is(exact.body.length, 1000);
  t.true(dp.connected);
});

test.serial('HTTP/1.1 keep-alive: many requests on one connection; HEAD; large bodies stream back whole', async (t) => {
  const { port } = await startHarness(t);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const results = [];
  for (let i = 0; i < 20; i++) results.push(await request(port, { method: 'POST', path: '/invoke/echo', body: `n${i}`, agent }));
  t.deepEqual(results.map((r) => r.body.toString()), Array.from({ length: 20 }, (_, i) => `n${i}`));
  t.true(results.slice(1).every((r) => r.reused), 'requests after the first reuse the connection');
  const head = await request(port, { method: 'HEAD', path: '/invoke/echo', agent });
  t.is(head.status, 200);
  t.is(head.body.length, 0);
  const big = await request(port, { path: '/invoke/big', headers: { 'x-size': 8 * 1024 * 1024 }, agent, timeoutMs: 10_000 });
  t.is(big.status, 200);
  t.is(big.body.length, 8 * 1024 * 1024);
  t.true(big.body.every((b) => b === 120));
  const after = await request(port, { method: 'POST', path: '/invoke/echo', body: 'still fine', agent });
  t.is(after.body.toString(), 'still fine');
  t.true(after.reused);
});

test.serial('response headers from a sandbox are filtered: no header injection, no hop-by-hop, our own content-length', async (t) => {
  const { port } = await startHarness(t);
  const r = await request(port, { path: '/invoke/inject' });
  t.is(r.status, 200);
  t.is(r.headers['x-fine'], 'yes');
  t.false('x-evil' in r.headers);
  t.false('set-cookie' in r.headers);
  t.not(r.headers['content-length'], '999');
  t.not(r.headers.connection, 'close');
});

test.serial('an aborted request is never written to, and the shard carries on', async (t) => {
  const { port, logs } = await startHarness(t);
  await new Promise<void>((resolve) => {
    const r = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/invoke/slow', headers: { 'x-delay-ms': '150' }, agent: false });
    r.on('error', () => resolve());
    r.end('bye');
    setTimeout(() => {
      r.destroy();
      resolve();
    }, 30);
  });
  await new Promise((resolve) => setTimeout(resolve, 300)); // the answer arrives after the abort
  const r = await request(port, { method: 'POST', path: '/invoke/echo', body: 'alive' });
  t.is(r.body.toString(), 'alive');
  t.false(logs.some((l) => l.startsWith('error')), logs.join('\n'));
});

test.serial('stop drains: a request still pending after DRAIN_MS is answered 503, kept-alive connections close, and it is idempotent', async (t) => {
  const { port, dp } = await startHarness(t);
  const agent = new http.Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  await request(port, { path: '/invoke/echo', agent });
  const hanging = request(port, { method: 'POST', path: '/invoke/hang', body: 'x', timeoutMs: 10_000 });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const started = Date.now();
  await Promise.all([dp.stop(), dp.stop()]);
  // The uWS fronts drain for DRAIN_MS (the request hangs for ever), then answer it; no shard waits beyond.
  t.true(Date.now() - started < DRAIN_MS + 3000, `stop took ${Date.now() - started} ms`);
  const answer = await hanging;
  t.is(answer.status, 503);
  t.is(errorOf(answer).code, 'UNAVAILABLE');
  await t.throwsAsync(request(port, { path: '/invoke/echo', timeoutMs: 1000 }));
});

test.serial('the control plane hears the invocation address and the link reconnects', async (t) => {
  const { dp, cp } = await startHarness(t);
  t.is(cp.hellos.length, 1);
  t.deepEqual(cp.hellos[0]?.info, { invokeAddress: dp.invokeAddress, shards: 2 });
  t.is(cp.hellos[0]?.role, 'dataplane');
  t.is(cp.hellos[0]?.id, 'dp-test');
  cp.disconnectAll();
  await until('the data plane to reconnect', () => (cp.hellos.length >= 2 ? true : undefined));
});

test.serial('every shard listens on the same port', async (t) => {
  const { port, dp } = await startHarness(t, { shards: 2 });
  t.is(dp.runtime.shards, 2);
  // Fresh connections spread over the shards' sockets; all of them answer.
  const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => request(port, { method: 'POST', path: '/invoke/echo', body: String(i) })));
  t.deepEqual(answers.map((a) => a.body.toString()), Array.from({ length: 16 }, (_, i) => String(i)));
});

/** Writes raw bytes, returns everything read until the server closes (at most 2 s). */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let received = '';
    const timer = setTimeout(() => socket.destroy(), 2000);
    socket.on('data', (d) => (received += d.toString()));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on('error', reject);
  });
}

test('options are validated, naming the option and its unit', (t) => {
  const base = { dataplaneId: 'd', token: 't', host: '127.0.0.1', httpPort: 8080, policy: 'least-in-flight' };
  t.is(parseDataPlaneOptions(base).maxBodyBytes, 6 * 1024 * 1024);
  t.throws(() => parseDataPlaneOptions({ ...base, httpPort: 0 }), { message: /httpPort=0 must be an integer in 1\.\.65535 \(port\)/ });
  t.throws(() => parseDataPlaneOptions({ ...base, policy: 'fastest' }), { message: /policy="fastest" must be one of least-in-flight/ });
  t.throws(() => parseDataPlaneOptions({ ...base, maxBodyBytes: -1 }), { message: /maxBodyBytes=-1 .*\(bytes\)/ });
  t.throws(() => parseDataPlaneOptions({ ...base, token: '' }), { message: /token="" must be a non-empty string/ });
});

test('the uWS JavaScript fallback is refused loudly', (t) => {
  const uws = fileURLToPath(new URL('./uws.js', import.meta.url));
  const script = `import(${JSON.stringify(uws)}).then((m) => { try { m.loadNativeUws(); console.log('loaded'); } catch (e) { console.log(e.code + ' ' + e.message); } });`;
  const fallback = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, UWS_USE_FALLBACK: '1' }, encoding: 'utf8', timeout: 20_000 });
  t.regex(fallback.stdout, /UWS_NOT_NATIVE .*UWS_USE_FALLBACK/);
  const native = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, UWS_USE_FALLBACK: '' }, encoding: 'utf8', timeout: 20_000 });
  t.regex(native.stdout, /^loaded/m);
});

test('after stop nothing keeps the process alive: no handle left, no abort, with connections open on every front', (t) => {
  const script = fileURLToPath(new URL('./fixtures/start-stop.js', import.meta.url));
  const started = Date.now();
  const run = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000 });
  t.is(run.signal, null, `killed by ${run.signal}: ${run.stderr}`);
  t.is(run.status, 0, run.stderr);
  t.regex(run.stdout, /^stopped$/m);
  t.true(Date.now() - started < 15_000, `the process took ${Date.now() - started} ms to end`);
});
