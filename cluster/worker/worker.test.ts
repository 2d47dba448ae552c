import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { functionAddress, nodeAddress, schedulerAddress, type Endpoint, type SandboxReport, type SandboxTemplate, type SourceCheck } from '../../actors/messages.js';
import { connectFrames } from '../../runtime/frames.js';
import { shardOf } from '../../runtime/hash.js';
import { ActorRuntime } from '../../runtime/runtime.js';
import { SandboxClient, SandboxClientError } from './invoke-client.js';
import { parseWorkerOptions, toSandboxSpec, WorkerError } from './module.js';
import { CHECK_TIMEOUT_MS } from '../../actors/node.js';

const WORKER = new URL('./module.js', import.meta.url).href;
const FAKE_CONTROL_PLANE = new URL('./fixtures/fake-control-plane.js', import.meta.url).href;
const TOKEN = 'worker-test-token';
/** Tests run from dist/cluster/worker/; the sandbox fixtures stay in the source tree. */
const HANDLER = fileURLToPath(new URL('../../../cluster/sandbox/fixtures/handler.mjs', import.meta.url));
const SERVER = fileURLToPath(new URL('../../../cluster/sandbox/fixtures/server.mjs', import.meta.url));
const fixture = (path: string): string => fileURLToPath(new URL(`../../../cluster/${path}`, import.meta.url));

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const request = (path: string, body = '', headers: Record<string, string> = {}) => ({ method: 'POST', path, headers, body: encoder.encode(body) });

type Recorded = { type: string; [field: string]: unknown };

interface Worker {
  runtime: ActorRuntime;
  logs: string[];
  received(functionName: string): Promise<Recorded[]>;
  /** Polls until `probe` answers something, at most `withinMs`. */
  until<T>(what: string, probe: () => Promise<T | undefined>, withinMs?: number): Promise<T>;
  /** Spawns and starts a node; resolves with the address it registered. */
  startNode(nodeId: string, heartbeatMs?: number): Promise<string>;
  /** Waits for the function's next message of this type about this sandbox. */
  waitFor(functionName: string, type: string, sandboxId: string): Promise<Recorded>;
}

async function startWorker(t: ExecutionContext, runtime: 'simulated' | 'thread' | 'process', shards = 1, extra: { manualClock?: number; simulatedLatency?: unknown } = {}): Promise<Worker> {
  const logs: string[] = [];
  const actors = await ActorRuntime.start({
    shards,
    modules: [
      { url: WORKER, options: { runtime, token: TOKEN, simulatedLatency: extra.simulatedLatency } },
      { url: FAKE_CONTROL_PLANE },
    ],
    onLog: (level, text) => logs.push(`${level} ${text}`),
    ...(extra.manualClock === undefined ? {} : { manualClock: extra.manualClock }),
  });
  t.teardown(() => actors.stop());
  const received = (name: string) => actors.ask<Recorded[]>(functionAddress(name), { type: 'test.received' });
  const until = async <T>(what: string, probe: () => Promise<T | undefined>, withinMs = 5000): Promise<T> => {
    const deadline = Date.now() + withinMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out after ${withinMs} ms waiting for ${what}; logs:\n${logs.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return {
    runtime: actors,
    logs,
    received,
    until,
    async startNode(nodeId, heartbeatMs = 5000) {
      actors.spawn(nodeAddress(nodeId), { nodeId, capacity: { cpuMilli: 4000, memoryMiB: 4096, slots: 10 }, runtime, heartbeatMs });
      actors.tell(nodeAddress(nodeId), { type: 'node.start' });
      const registration = await until(`${nodeId} to register`, async () =>
        (await actors.ask<Recorded[]>(schedulerAddress, { type: 'test.received' })).find((m) => m.type === 'sch.register' && m.nodeId === nodeId),
      );
      return registration.address as string;
    },
    waitFor: (name, type, sandboxId) => until(`${type} ${sandboxId}`, async () => (await received(name)).find((m) => m.type === type && m.sandboxId === sandboxId)),
  };
}

function template(name: string, source: SandboxTemplate['source'], overrides: Partial<SandboxTemplate> = {}): SandboxTemplate {
  return { name, runtime: 'simulated', source, cpuMilli: 100, memoryMiB: 64, concurrency: 4, timeoutMs: 5000, env: {}, version: 1, ...overrides };
}

/** A node id whose actor lands on the given shard. */
function nodeOnShard(shard: number, shards: number): string {
  for (let i = 0; i < 1000; i++) if (shardOf(nodeAddress(`node-${i}`), shards) === shard) return `node-${i}`;
  throw new Error(`no node id on shard ${shard}`);
}

function threadCount(): number {
  return Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
}

test('options: defaults, then validation naming the option', (t) => {
  t.deepEqual(parseWorkerOptions({ runtime: 'simulated', token: 't' }), { runtime: 'simulated', token: 't', host: '127.0.0.1', advertise: '127.0.0.1', simulatedLatency: { kind: 'fixed', ms: 0 }, nodeIds: [] });
  t.like(parseWorkerOptions({ runtime: 'simulated', token: 't', host: '0.0.0.0', advertise: 'w1' }), { host: '0.0.0.0', advertise: 'w1' });
  const bad: [unknown, RegExp][] = [
    [undefined, /\(options\)=undefined/],
    [{ runtime: 'docker', token: 't' }, /runtime="docker" must be 'thread', 'process' or 'simulated'/],
    [{ runtime: 'thread', token: '' }, /token="" must be a non-empty string/],
    [{ runtime: 'thread', token: 't', host: '' }, /host="" must be/],
    [{ runtime: 'thread', token: 't', advertise: '' }, /advertise="" must be/],
    [{ runtime: 'simulated', token: 't', simulatedLatency: { kind: 'fixed', ms: -1 } }, /simulatedLatency=.*creationLatency.ms=-1/],
  ];
  for (const [options, message] of bad) t.is(t.throws(() => parseWorkerOptions(options), { instanceOf: WorkerError, message })?.code, 'INVALID_WORKER_OPTIONS');
});

test('a template maps onto the sandbox spec', (t) => {
  const spec = toSandboxSpec('sb1', { ...template('f', { kind: 'process', command: 'srv', args: ['-v'] }), env: { A: '1' } });
  t.deepEqual(spec, { sandboxId: 'sb1', functionName: 'f', runtime: { kind: 'process', command: 'srv', args: ['-v'] }, memoryMiB: 64, cpuMilli: 100, concurrency: 4, timeoutMs: 5000, env: { A: '1' } });
});

test.serial('bad worker options fail the runtime start, naming the option', async (t) => {
  const error = await t.throwsAsync(ActorRuntime.start({ shards: 1, modules: [{ url: WORKER, options: { runtime: 'docker', token: TOKEN } }], onLog: () => undefined }));
  t.regex(error?.message ?? '', /worker option runtime="docker"/);
});

test.serial('simulated: creation latency is drawn on the shard clock (a manual clock here)', async (t) => {
  const worker = await startWorker(t, 'simulated', 1, { manualClock: 0, simulatedLatency: { kind: 'fixed', ms: 1000 } });
  const address = await worker.startNode('n');
  worker.runtime.tell(nodeAddress('n'), { type: 'node.create', term: 1, sandboxId: 'slow', template: template('f', { kind: 'builtin', workload: 'echo' }) });
  await worker.until('the creation to start', async () => ((await worker.runtime.inspect(nodeAddress('n'))).state as { creating: number }).creating === 1 || undefined);
  await worker.runtime.advance(999);
  t.deepEqual(await worker.received('f'), []);
  await worker.runtime.advance(1);
  t.like(await worker.waitFor('f', 'fn.sandboxReady', 'slow'), { endpoint: { sandboxId: 'slow', nodeId: 'n', address, concurrency: 4 } });
});

test.serial('simulated: nodes on two shards register their own addresses, create, serve, list and delete sandboxes', async (t) => {
  const worker = await startWorker(t, 'simulated', 2);
  const [n0, n1] = [nodeOnShard(0, 2), nodeOnShard(1, 2)];
  const [a0, a1] = await Promise.all([worker.startNode(n0, 50), worker.startNode(n1)]);
  t.regex(a0, /^127\.0\.0\.1:\d+$/);
  t.not(a0, a1, 'each shard serves its own sandboxes');

  worker.runtime.tell(nodeAddress(n0), { type: 'node.create', term: 1, sandboxId: 'echo-1', template: template('echo-fn', { kind: 'builtin', workload: 'echo' }) });
  worker.runtime.tell(nodeAddress(n1), { type: 'node.create', term: 1, sandboxId: 'trace-1', template: template('trace-fn', { kind: 'builtin', workload: 'trace' }) });
  const ready = await worker.waitFor('echo-fn', 'fn.sandboxReady', 'echo-1');
  t.deepEqual(ready.endpoint as Endpoint, { sandboxId: 'echo-1', nodeId: n0, address: a0, concurrency: 4, version: 1 });
  t.is(((await worker.waitFor('trace-fn', 'fn.sandboxReady', 'trace-1')).endpoint as Endpoint).address, a1);

  const c0 = await SandboxClient.connect(a0, TOKEN);
  const c1 = await SandboxClient.connect(a1, TOKEN);
  t.teardown(() => (c0.close(), c1.close()));
  const echoed = await c0.invoke('echo-1', request('/x', 'hello', { 'content-type': 'text/plain' }), 2000);
  t.is(echoed.status, 200);
  t.is(echoed.headers['content-type'], 'text/plain');
  t.is(decoder.decode(echoed.body), 'hello');
  const traced = await c1.invoke('trace-1', request('/', '', { requested_cpu: '20', function: 'trace-fn' }), 2000);
  const body = JSON.parse(decoder.decode(traced.body)) as { Status: string; Function: string; MachineName: string; ExecutionTime: number };
  t.like(body, { Status: 'OK', Function: 'trace-fn', MachineName: 'trace-1' });
  t.true(body.ExecutionTime >= 19_000, `ExecutionTime ${body.ExecutionTime} us`);
  // A sandbox is served only by the server of the shard that created it.
  t.is((await t.throwsAsync(c1.invoke('echo-1', request('/'), 2000), { instanceOf: SandboxClientError }))?.code, 'SANDBOX_GONE');

  t.deepEqual(
    (await worker.runtime.ask<SandboxReport[]>(nodeAddress(n0), { type: 'node.list' })).map((r) => [r.sandboxId, r.functionName, r.nodeId, r.endpoint.address]),
    [['echo-1', 'echo-fn', n0, a0]],
  );
  await worker.until('a heartbeat counting the sandbox', async () =>
    (await worker.runtime.ask<Recorded[]>(schedulerAddress, { type: 'test.received' })).find((m) => m.type === 'sch.heartbeat' && m.nodeId === n0 && m.sandboxes === 1),
  );

  worker.runtime.tell(nodeAddress(n0), { type: 'node.delete', term: 1, sandboxId: 'echo-1' });
  t.like(await worker.waitFor('echo-fn', 'fn.sandboxDeleted', 'echo-1'), { nodeId: n0 });
  t.is((await t.throwsAsync(c0.invoke('echo-1', request('/'), 2000), { instanceOf: SandboxClientError }))?.code, 'SANDBOX_GONE');
  t.deepEqual(await worker.runtime.ask(nodeAddress(n0), { type: 'node.list' }), []);
  t.is((await worker.runtime.ask<SandboxReport[]>(nodeAddress(n1), { type: 'node.list' })).length, 1);
});

test.serial('simulated: many requests in flight on one connection; results come back as they complete', async (t) => {
  const worker = await startWorker(t, 'simulated');
  const address = await worker.startNode('n');
  worker.runtime.tell(nodeAddress('n'), { type: 'node.create', term: 1, sandboxId: 'tr', template: template('tr', { kind: 'builtin', workload: 'trace' }) });
  worker.runtime.tell(nodeAddress('n'), { type: 'node.create', term: 1, sandboxId: 'em', template: template('em', { kind: 'builtin', workload: 'empty' }) });
  await worker.waitFor('tr', 'fn.sandboxReady', 'tr');
  await worker.waitFor('em', 'fn.sandboxReady', 'em');
  const client = await SandboxClient.connect(address, TOKEN);
  t.teardown(() => client.close());

  const order: string[] = [];
  const slow = client.invoke('tr', request('/', '', { requested_cpu: '200' }), 2000).then((r) => (order.push('slow'), r));
  const fast = Array.from({ length: 100 }, () => client.invoke('em', request('/'), 2000).then((r) => (order.push('fast'), r)));
  t.is(client.inFlight, 101);
  const responses = await Promise.all([slow, ...fast]);
  t.true(responses.every((r) => r.status === 200));
  t.is(order.at(-1), 'slow', 'the slow invocation does not hold up the fast ones behind it');
  t.is(decoder.decode(responses[1]!.body), 'OK');
  t.is(client.inFlight, 0);

  // A client deadline shorter than the work: INVOKE_TIMEOUT here, and the late result is dropped.
  const late = await t.throwsAsync(client.invoke('tr', request('/', '', { requested_cpu: '100' }), 20), { instanceOf: SandboxClientError });
  t.is(late?.code, 'INVOKE_TIMEOUT');
  // The sandbox's own deadline (timeoutMs of the template).
  worker.runtime.tell(nodeAddress('n'), { type: 'node.create', term: 1, sandboxId: 'short', template: template('tr', { kind: 'builtin', workload: 'trace' }, { timeoutMs: 50 }) });
  await worker.waitFor('tr', 'fn.sandboxReady', 'short');
  t.is((await t.throwsAsync(client.invoke('short', request('/', '', { requested_cpu: '500' }), 2000), { instanceOf: SandboxClientError }))?.code, 'SANDBOX_TIMEOUT');
  t.is((await client.invoke('em', request('/'), 2000)).status, 200);
});

test.serial('bad peers: a wrong token is refused, bad frames are answered or cut, and closing mid-invocation harms nothing', async (t) => {
  const worker = await startWorker(t, 'simulated');
  const address = await worker.startNode('n');
  worker.runtime.tell(nodeAddress('n'), { type: 'node.create', term: 1, sandboxId: 'tr', template: template('tr', { kind: 'builtin', workload: 'trace' }) });
  await worker.waitFor('tr', 'fn.sandboxReady', 'tr');
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];

  t.is(((await t.throwsAsync(SandboxClient.connect(address, 'wrong'))) as { code?: string }).code, 'CONNECT_REFUSED');

  // Closing with invocations in flight, over and over.
  for (let round = 0; round < 5; round++) {
    const client = await SandboxClient.connect(address, TOKEN);
    const pending = [client.invoke('tr', request('/', '', { requested_cpu: '100' }), 2000), client.invoke('tr', request('/'), 2000)];
    client.close();
    for (const outcome of await Promise.allSettled(pending)) t.is(outcome.status === 'rejected' ? (outcome.reason as SandboxClientError).code : 'resolved', 'CONNECTION_CLOSED');
  }

  // A raw peer: a request with a malformed field gets BAD_REQUEST; a frame without an id closes that connection only.
  const { connection } = await connectFrames({ host, port, hello: { token: TOKEN, role: 'test', id: 'raw' } });
  const frames: unknown[] = [];
  connection.onFrame((frame) => frames.push(frame));
  connection.send({ i: 7, s: 'tr', m: 'GET', p: '/', h: { n: 1 }, b: new Uint8Array() });
  await worker.until('a BAD_REQUEST answer', async () => (frames.length > 0 ? true : undefined), 2000);
  t.deepEqual(frames[0], { i: 7, e: { code: 'BAD_REQUEST', message: 'h.n must be a string' } });
  connection.send({ hello: 'again' });
  await worker.until('the connection to close', async () => (connection.isClosed ? true : undefined), 2000);

  const client = await SandboxClient.connect(address, TOKEN);
  t.teardown(() => client.close());
  t.is((await client.invoke('tr', request('/'), 2000)).status, 200, 'the worker serves on');
  t.deepEqual(
    (await worker.runtime.ask<SandboxReport[]>(nodeAddress('n'), { type: 'node.list' })).map((r) => r.sandboxId),
    ['tr'],
  );
});

test.serial('thread: builtin and module sandboxes serve; a runaway handler times out and the node reports the sandbox failed', async (t) => {
  const threadsBefore = threadCount();
  const worker = await startWorker(t, 'thread');
  const address = await worker.startNode('n');
  const node = nodeAddress('n');
  worker.runtime.tell(node, { type: 'node.create', term: 1, sandboxId: 'empty-1', template: template('empty', { kind: 'builtin', workload: 'empty' }, { runtime: 'thread' }) });
  worker.runtime.tell(node, { type: 'node.create', term: 1, sandboxId: 'mod-1', template: template('mod', { kind: 'thread', module: HANDLER }, { runtime: 'thread', timeoutMs: 300 }) });
  worker.runtime.tell(node, { type: 'node.create', term: 1, sandboxId: 'missing-1', template: template('missing', { kind: 'thread', module: '/nonexistent/handler.mjs' }, { runtime: 'thread' }) });
  await worker.waitFor('empty', 'fn.sandboxReady', 'empty-1');
  await worker.waitFor('mod', 'fn.sandboxReady', 'mod-1');
  t.regex((await worker.waitFor('missing', 'fn.sandboxFailed', 'missing-1')).reason as string, /^SANDBOX_CREATE_FAILED: /);

  const client = await SandboxClient.connect(address, TOKEN);
  t.teardown(() => client.close());
  const empty = await client.invoke('empty-1', request('/'), 5000);
  t.is(decoder.decode(empty.body), 'OK');
  const hello = await client.invoke('mod-1', request('/hello', 'world'), 5000);
  t.is(hello.status, 200);
  t.is(decoder.decode(hello.body), 'hello world');
  t.is((await client.invoke('mod-1', request('/nope'), 5000)).status, 404);

  t.is((await t.throwsAsync(client.invoke('mod-1', request('/spin'), 5000), { instanceOf: SandboxClientError }))?.code, 'SANDBOX_TIMEOUT');
  t.regex((await worker.waitFor('mod', 'fn.sandboxFailed', 'mod-1')).reason as string, /timeoutMs=300/);
  t.is((await t.throwsAsync(client.invoke('mod-1', request('/hello'), 5000), { instanceOf: SandboxClientError }))?.code, 'SANDBOX_GONE');
  t.deepEqual(
    (await worker.runtime.ask<SandboxReport[]>(node, { type: 'node.list' })).map((r) => r.sandboxId),
    ['empty-1'],
  );

  const stopping = Date.now();
  await worker.runtime.stop();
  // The shard threads exit by themselves (well inside the runtime's 5 s grace) only if no sandbox is left.
  t.true(Date.now() - stopping < 4000, `stop took ${Date.now() - stopping} ms`);
  await worker.until('the sandbox threads to go', async () => (threadCount() <= threadsBefore ? true : undefined), 3000);
});

test.serial('thread: a source check loads the module once in a throwaway thread: ok, or why it does not start; nothing is kept', async (t) => {
  const threadsBefore = threadCount();
  const worker = await startWorker(t, 'thread', 1, { manualClock: 0 });
  await worker.startNode('n');
  const threadsWithWorker = threadCount();
  const check = (module: string) => worker.runtime.ask<SourceCheck>(nodeAddress('n'), { type: 'node.check', template: template('f', { kind: 'thread', module }, { runtime: 'thread' }) }, 15_000);
  t.deepEqual(await check(HANDLER), { outcome: 'ok' });
  const failures: [string, RegExp][] = [
    ['/nonexistent/handler.mjs', /^SANDBOX_CREATE_FAILED: cannot load the module: Cannot find module '\/nonexistent\/handler.mjs'/],
    [fixture('sandbox/fixtures/broken.mjs'), /^SANDBOX_CREATE_FAILED: cannot load the module: cannot initialise: missing configuration$/],
    [fixture('sandbox/fixtures/no-handler.mjs'), /exports neither a 'handler' nor a default function$/],
    [fixture('fixtures/syntax-error.mjs'), /^SANDBOX_CREATE_FAILED: cannot load the module: .*(Unexpected token|missing \))/],
  ];
  for (const [module, reason] of failures) {
    const result = await check(module);
    t.is(result.outcome, 'failed', module);
    t.regex(result.outcome === 'failed' ? result.reason : '', reason);
    t.notRegex(result.outcome === 'failed' ? result.reason : '', /check\./, 'the throwaway id is not in the reason');
  }
  // A load that does not finish is cut at the bound (on the shard's clock, manual here) and left undecided.
  // The earlier checks' threads end asynchronously: a new thread proves that this check (and its timer) started.
  await worker.until('the earlier check threads to go', async () => (threadCount() <= threadsWithWorker ? true : undefined));
  const hanging = check(fixture('fixtures/hanging.mjs'));
  await worker.until('the check to start', async () => (threadCount() > threadsWithWorker ? true : undefined));
  await worker.runtime.advance(CHECK_TIMEOUT_MS);
  t.deepEqual(await hanging, { outcome: 'timeout', afterMs: CHECK_TIMEOUT_MS });
  t.deepEqual(await worker.runtime.ask(nodeAddress('n'), { type: 'node.list' }), []);
  t.deepEqual(await worker.received('f'), [], 'the function hears of no sandbox');
  await worker.runtime.stop();
  await worker.until('the check threads to go', async () => (threadCount() <= threadsBefore ? true : undefined), 3000);
});

test.serial('process: a sandbox process that exits on its own becomes fn.sandboxFailed', async (t) => {
  const worker = await startWorker(t, 'process');
  const address = await worker.startNode('n');
  const source: SandboxTemplate['source'] = { kind: 'process', command: process.execPath, args: [SERVER] };
  worker.runtime.tell(nodeAddress('n'), { type: 'node.create', term: 1, sandboxId: 'srv', template: template('srv', source, { runtime: 'process', env: { GREETING: 'hi' } }) });
  await worker.waitFor('srv', 'fn.sandboxReady', 'srv');
  const client = await SandboxClient.connect(address, TOKEN);
  t.teardown(() => client.close());
  const pong = await client.invoke('srv', request('/', 'ping'), 5000);
  t.is(decoder.decode(pong.body), 'pong ping');
  t.is(pong.headers['x-env'], 'hi');
  await t.throwsAsync(client.invoke('srv', request('/crash'), 5000), { instanceOf: SandboxClientError });
  t.regex((await worker.waitFor('srv', 'fn.sandboxFailed', 'srv')).reason as string, /exited with code 3/);
  t.deepEqual(await worker.runtime.ask(nodeAddress('n'), { type: 'node.list' }), []);
});
