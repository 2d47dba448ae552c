// End to end over a real local cluster as `dirigent up` starts it: the control plane in this process,
// the data plane and two thread-runtime workers as child processes, real HTTP and WebSocket clients.
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { AdminClient, type FunctionViewJson } from './admin-client.js';
import { errorOf, request, TestWs, until, type HttpResult } from './data-plane/fixtures/harness.js';
import { LocalCluster } from './launcher.js';

const HANDLER = new URL('../../cluster/fixtures/e2e-handler.mjs', import.meta.url).pathname;
const EXAMPLE = new URL('../../cluster/examples/hello.mjs', import.meta.url).pathname;
/** Fast windows so that scaling happens within a test: decisions every 200 ms, to zero after ~3 s idle. */
const FAST_SCALING = { tickMs: 200, stableWindowMs: 2000, panicWindowMs: 400, keepAliveMs: 1000 };

let cluster: LocalCluster;
let admin: AdminClient;
let port: number;
let dataDir: string;
const output: string[] = [];

test.before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'dirigent-e2e-'));
  cluster = await LocalCluster.start({ host: '127.0.0.1', adminPort: 0, invokePort: 0, compatPort: 0, dataDir, workers: 2, runtime: 'thread', onOutput: (line) => output.push(line) });
  admin = new AdminClient({ adminUrl: cluster.adminUrl });
  port = Number(new URL(cluster.invokeUrl).port);
  await until('two workers registered', async () => ((await admin.nodes()).length === 2 ? true : undefined), 15_000);
});

test.after.always(async () => {
  await cluster?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

const invoke = (name: string, body = '', path = '', timeoutMs = 15_000): Promise<HttpResult> =>
  request(port, { method: 'POST', path: `/invoke/${name}${path}`, body, timeoutMs, headers: { 'content-type': 'text/plain' } });

async function readyCount(name: string): Promise<number> {
  const view: FunctionViewJson = await admin.getFunction(name);
  return view.status?.ready ?? 0;
}

test.serial('deploy -> cold invoke -> warm invokes -> scale up under concurrency -> scale to zero -> delete', async (t) => {
  await admin.createFunction({ name: 'life', source: { kind: 'thread', module: HANDLER }, scaling: FAST_SCALING });
  const cold = await invoke('life', 'first');
  t.is(cold.status, 200);
  t.is(cold.body.toString(), 'first');
  t.is(cold.headers['x-dirigent-cold-start'], 'true');
  t.regex(String(cold.headers['server-timing']), /queue;dur=/);
  for (let i = 0; i < 5; i++) {
    const warm = await invoke('life', `warm ${i}`);
    t.is(warm.status, 200);
    t.is(warm.body.toString(), `warm ${i}`);
    t.is(warm.headers['x-dirigent-cold-start'], 'false');
  }
  // 6 concurrent requests held 5 s on concurrency-1 sandboxes scale the function up: at once when they reach the
  // data plane within the autoscaler's gathering (GATHER_MS), else by the data plane's next metric (demand by
  // Little's law, every 2 s) on a machine loaded enough to spread their arrival.
  const burst = await Promise.all(Array.from({ length: 6 }, () => invoke('life', '', '/sleep?ms=5000', 30_000)));
  t.true(burst.every((r) => r.status === 200));
  t.true((await readyCount('life')) >= 4, 'scaled up to the concurrency');
  t.true(new Set(burst.map((r) => r.headers['x-dirigent-sandbox'])).size >= 4, 'served by several sandboxes');
  // Idle: the autoscaler scales to zero after the keep-alive, and the sandboxes are deleted on the workers.
  await until('scale to zero', async () => ((await readyCount('life')) === 0 ? true : undefined), 30_000);
  const allocated = async () => (await admin.nodes()).reduce((sum, n) => sum + Number((n.allocated as { slots: number }).slots), 0);
  t.is(await until('sandboxes deleted on the workers', async () => ((await allocated()) === 0 ? 0 : undefined), 15_000), 0);
  await admin.deleteFunction('life');
  const gone = await invoke('life');
  t.is(gone.status, 404);
  t.is(errorOf(gone).code, 'UNKNOWN_FUNCTION');
});

test.serial('the shipped example module answers JSON', async (t) => {
  await admin.createFunction({ name: 'hello', source: { kind: 'thread', module: EXAMPLE } });
  const result = await invoke('hello', 'dirigent');
  t.is(result.status, 200);
  t.like(JSON.parse(result.body.toString()), { greeting: 'hello, dirigent!', method: 'POST', path: '/' });
  await admin.deleteFunction('hello');
});

test.serial('every error status: 404, 413, 429, 503, 504, 502 with a JSON error body', async (t) => {
  t.is(errorOf(await invoke('nosuchfunction')).code, 'UNKNOWN_FUNCTION');

  await admin.createFunction({ name: 'small', source: { kind: 'thread', module: HANDLER }, maxBodyBytes: 16 });
  const tooLarge = await invoke('small', 'x'.repeat(100));
  t.is(tooLarge.status, 413);
  t.is(errorOf(tooLarge).code, 'BODY_TOO_LARGE');

  // One sandbox at most, one request at a time, a queue of 1 with a 700 ms deadline.
  await admin.createFunction({ name: 'narrow', source: { kind: 'thread', module: HANDLER }, queueDepth: 1, queueTimeoutMs: 700, scaling: { maxScale: 1, minScale: 1 } });
  await until('narrow warm', async () => ((await readyCount('narrow')) === 1 ? true : undefined), 15_000);
  const holding = invoke('narrow', '', '/sleep?ms=2000');
  await new Promise((r) => setTimeout(r, 200));
  const waiting = invoke('narrow', '', '/sleep?ms=10');
  await new Promise((r) => setTimeout(r, 100));
  const refused = await invoke('narrow');
  t.is(refused.status, 429, 'queue full');
  t.is(errorOf(refused).code, 'QUEUE_FULL');
  const noCapacity = await waiting;
  t.is(noCapacity.status, 503, 'at max scale, no slot before the deadline');
  t.is(errorOf(noCapacity).code, 'NO_CAPACITY');
  t.is((await holding).status, 200);

  // A deadline shorter than a cold start: 504.
  await admin.createFunction({ name: 'hurried', source: { kind: 'thread', module: HANDLER }, queueTimeoutMs: 1 });
  const late = await invoke('hurried');
  t.is(late.status, 504);
  t.is(errorOf(late).code, 'DEADLINE_PASSED');
  t.is(late.headers['x-dirigent-cold-start'], 'true', 'it waited for a cold start');

  // A runaway handler is killed at its timeout: 502, and the sandbox is replaced.
  await admin.createFunction({ name: 'runaway', source: { kind: 'thread', module: HANDLER }, timeoutMs: 300 });
  t.is((await invoke('runaway', 'ok')).status, 200);
  const killed = await invoke('runaway', '', '/spin');
  t.is(killed.status, 502);
  t.is(errorOf(killed).code, 'SANDBOX_FAILED');
  const after = await until('a working sandbox again', async () => {
    const r = await invoke('runaway', 'alive');
    return r.status === 200 ? r : undefined;
  }, 15_000);
  t.is(after.body.toString(), 'alive');
  for (const name of ['small', 'narrow', 'hurried', 'runaway']) await admin.deleteFunction(name);
});

test.serial('WebSocket: many invocations multiplexed on one connection, JSON and msgpack', async (t) => {
  await admin.createFunction({ name: 'wsecho', source: { kind: 'builtin', workload: 'echo' }, concurrency: 8 });
  const ws = await TestWs.open(t, port);
  for (let id = 0; id < 20; id++) ws.send(JSON.stringify({ id, function: 'wsecho', body: `json ${id}` }));
  const packr = new Packr({ useRecords: false });
  for (let id = 20; id < 40; id++) ws.send(packr.pack({ id, function: 'wsecho', body: new TextEncoder().encode(`pack ${id}`) }));
  const frames = await ws.waitFrames(40, 15_000);
  const byId = new Map<number, { status: number; body: string }>();
  for (const frame of frames) {
    const reply = (frame.isBinary ? packr.unpack(frame.data) : JSON.parse(frame.data.toString())) as { id: number; status: number; body: string | Uint8Array };
    byId.set(reply.id, { status: reply.status, body: typeof reply.body === 'string' ? reply.body : Buffer.from(reply.body).toString() });
  }
  for (let id = 0; id < 40; id++) {
    t.is(byId.get(id)?.status, 200, `reply ${id}`);
    t.is(byId.get(id)?.body, id < 20 ? `json ${id}` : `pack ${id}`);
  }
  await admin.deleteFunction('wsecho');
});

test.serial('async: 202 with an id, then pending or the stored result', async (t) => {
  await admin.createFunction({ name: 'later', source: { kind: 'thread', module: HANDLER } });
  const accepted = await request(port, { method: 'POST', path: '/async/later/sleep?ms=300', body: '' });
  t.is(accepted.status, 202);
  const { id } = JSON.parse(accepted.body.toString()) as { id: string };
  const done = await until('the async result', async () => {
    const r = await request(port, { method: 'GET', path: `/async/${id}` });
    const body = JSON.parse(r.body.toString()) as { status: string; response?: { status: number; body: string } };
    return body.status === 'done' ? body : undefined;
  }, 15_000);
  t.is(done.response?.status, 200);
  t.is(Buffer.from(done.response!.body, 'base64').toString(), 'slept');
  t.is((await request(port, { method: 'GET', path: '/async/nonexistentjobid0' })).status, 404);
  const unknown = await request(port, { method: 'POST', path: '/async/nosuchfunction', body: '' });
  t.is(unknown.status, 404, 'a job for a function that does not exist is refused at once');
  t.is(errorOf(unknown).code, 'UNKNOWN_FUNCTION');
  await admin.deleteFunction('later');
});

test.serial('Dirigent compatibility: form registration answers the data-plane address; Host routing invokes', async (t) => {
  const form = new URLSearchParams([
    ['name', 'trace-fn'],
    ['image', 'docker.io/cvetkovic/dirigent_trace_function:latest'],
    ['port_forwarding', '80'],
    ['port_forwarding', 'tcp'],
    ['requested_cpu', '100'],
    ['requested_memory', '128'],
    ['scaling_upper_bound', '10'],
    ['scaling_lower_bound', '0'],
  ]);
  const registered = await fetch(`${cluster.adminUrl}/registerService`, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  t.is(registered.status, 200);
  // Byte-exact: the data plane's compatibility address (which takes the loader's underscore headers), no newline.
  t.is(await registered.text(), new URL(cluster.compatUrl).host);
  const duplicate = await fetch(`${cluster.adminUrl}/registerService`, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  t.is(duplicate.status, 409);
  const refused = await fetch(`${cluster.adminUrl}/registerService`, { method: 'POST', body: new URLSearchParams({ name: 'nginx', image: 'nginx:latest' }), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  t.is(refused.status, 400);
  t.regex(await refused.text(), /Runtimes here/);

  // The loader's request (vhive-serverless/loader http_client.go): POST /, Host = the function, headers with
  // underscores, which our uWS build drops unanswered; the compat port (node:http) serves them.
  const loaderHeaders = { host: 'trace-fn', workload: 'trace', function: 'trace-fn', requested_cpu: '20', requested_memory: '1', multiplier: '0', io_percentage: '0', 'user-agent': 'Go-http-client/1.1', 'accept-encoding': 'gzip', 'content-length': '0' };
  const traced = await request(Number(new URL(cluster.compatUrl).port), { method: 'POST', path: '/', headers: loaderHeaders, timeoutMs: 15_000 });
  t.is(traced.status, 200, traced.body.toString());
  const body = JSON.parse(traced.body.toString()) as { Status: string; Function: string; ExecutionTime: number };
  t.is(body.Status, 'OK');
  t.is(body.Function, 'trace-fn');
  t.true(body.ExecutionTime >= 20_000, `ExecutionTime ${body.ExecutionTime} is in microseconds: at least 20 000 for requested_cpu 20 (ms)`);
  await admin.deleteFunction('trace-fn');
});
