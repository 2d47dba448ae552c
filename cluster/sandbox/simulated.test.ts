import test from 'ava';
import { ManualClock } from './manual-clock.js';
import type { InvokeResponse, Sandbox } from './runtime.js';
import { SandboxError } from './runtime.js';
import type { LatencyDistribution } from './simulated.js';
import { SimulatedRuntime } from './simulated.js';
import { fixture, request, spec, text } from './testing.js';

const trace = { kind: 'builtin', workload: 'trace' } as const;

/** A small seeded generator (mulberry32), so runs repeat exactly. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function setup(creationLatency: LatencyDistribution, random: () => number = seeded(1)) {
  const clock = new ManualClock();
  return { clock, rt: new SimulatedRuntime({ creationLatency, random, clock }) };
}

/** Settles `promise` into a record so a test can look at it without awaiting. */
function watch<T>(promise: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

test('fixed creation latency is spent on the injected clock', async (t) => {
  const { clock, rt } = setup({ kind: 'fixed', ms: 50 });
  const creating = watch(rt.create(spec('s1', trace)));
  await clock.advance(49);
  t.false(creating.settled);
  t.deepEqual(rt.list(), []);
  await clock.advance(1);
  await turn();
  t.true(creating.settled);
  t.is(creating.value?.id, 's1');
  t.deepEqual(rt.list(), [{ sandboxId: 's1', functionName: 'fn' }]);
});

test('uniform creation latency is min + random * (max - min)', async (t) => {
  const { clock, rt } = setup({ kind: 'uniform', minMs: 100, maxMs: 500 }, () => 0.25);
  const creating = watch(rt.create(spec('s2', trace)));
  await clock.advance(199);
  t.false(creating.settled);
  await clock.advance(1);
  await turn();
  t.true(creating.settled);
});

test('zero latency resolves before any timer turn', async (t) => {
  const { rt } = setup({ kind: 'fixed', ms: 0 });
  const first = await Promise.race([rt.create(spec('s3', trace)), turn().then(() => 'timer turn')]);
  t.not(first, 'timer turn');
});

test('trace holds the request for the requested time without using the CPU', async (t) => {
  const { clock, rt } = setup({ kind: 'fixed', ms: 0 });
  const sandbox = await rt.create(spec('s4', trace, { timeoutMs: 60_000 }));
  const cpuBefore = process.cpuUsage();
  const answer = watch(sandbox.invoke(request('/', '', { requested_cpu: '30000', requested_memory: '2048' })));
  await clock.advance(29_999);
  t.false(answer.settled);
  await clock.advance(1);
  await turn();
  t.true(answer.settled);
  const body = JSON.parse(text(answer.value!.body)) as Record<string, unknown>;
  t.deepEqual(body, { Status: 'OK', Function: 'fn', MachineName: 's4', ExecutionTime: 30_000_000 });
  const cpu = process.cpuUsage(cpuBefore);
  t.true(cpu.user + cpu.system < 500_000, `30 simulated seconds cost ${cpu.user + cpu.system} us of CPU`);
});

test('1000 sandboxes are created quickly', async (t) => {
  const { clock, rt } = setup({ kind: 'uniform', minMs: 100, maxMs: 500 }, seeded(42));
  const started = performance.now();
  const creating = Array.from({ length: 1000 }, (_, i) => rt.create(spec(`bulk-${i}`, { kind: 'builtin', workload: 'empty' })));
  await clock.advance(500);
  const sandboxes: Sandbox[] = await Promise.all(creating);
  const elapsedMs = performance.now() - started;
  t.is(rt.list().length, 1000);
  t.true(elapsedMs < 2_000, `took ${elapsedMs} ms`);
  const answer = await sandboxes[999]!.invoke(request('/'));
  t.is(text(answer.body), 'OK');
  await rt.close();
  t.deepEqual(rt.list(), []);
});

test('invocations that hold nothing arm no timer; a hold arms one and leaves none behind', async (t) => {
  const { clock, rt } = setup({ kind: 'fixed', ms: 0 });
  let armed = 0;
  const setTimer = clock.setTimer.bind(clock);
  clock.setTimer = (ms, fn) => (armed++, setTimer(ms, fn));
  const empty = await rt.create(spec('e1', { kind: 'builtin', workload: 'empty' }));
  const echo = await rt.create(spec('e2', { kind: 'builtin', workload: 'echo' }));
  const traced = await rt.create(spec('e3', trace));
  t.is(text((await empty.invoke(request('/'))).body), 'OK');
  t.is(text((await echo.invoke(request('/', 'hi', { 'content-type': 'text/plain' }))).body), 'hi');
  t.like(JSON.parse(text((await traced.invoke(request('/'))).body)), { Status: 'OK', ExecutionTime: 0 });
  t.is((await traced.invoke(request('/', '', { requested_cpu: '500', workload: 'empty' }))).status, 200);
  // invokeNow answers those with the response itself, no promise.
  const now = empty.invokeNow!(request('/'));
  t.false(now instanceof Promise);
  t.is(text((now as InvokeResponse).body), 'OK');
  t.is(armed, 0);

  const holding = traced.invokeNow!(request('/', '', { requested_cpu: '100' }));
  t.true(holding instanceof Promise);
  const held = watch(holding as Promise<InvokeResponse>);
  t.is(armed, 1);
  await clock.advance(100);
  await turn();
  t.like(JSON.parse(text(held.value!.body)), { ExecutionTime: 100_000 });
  t.is(clock.pending(), 0);
});

test('an invocation past its timeout answers SANDBOX_TIMEOUT and the sandbox stays', async (t) => {
  const { clock, rt } = setup({ kind: 'fixed', ms: 0 });
  const sandbox = await rt.create(spec('s5', trace, { timeoutMs: 1_000 }));
  const answer = watch(sandbox.invoke(request('/', '', { requested_cpu: '5000' })));
  await clock.advance(1_000);
  await turn();
  t.true(answer.settled);
  t.is((answer.error as SandboxError).code, 'SANDBOX_TIMEOUT');
  t.is(clock.pending(), 0);
  t.is((await sandbox.invoke(request('/', 'x'))).status, 200);
  t.is(rt.list().length, 1);
});

test('destroy ends held invocations and pending creations', async (t) => {
  const { clock, rt } = setup({ kind: 'fixed', ms: 10 });
  const starting = watch(rt.create(spec('s6', trace)));
  await rt.destroy('s6');
  await turn();
  t.is((starting.error as SandboxError).code, 'SANDBOX_CREATE_FAILED');

  const creating = rt.create(spec('s7', trace));
  await clock.advance(10);
  const sandbox = await creating;
  const held = watch(sandbox.invoke(request('/', '', { requested_cpu: '100' })));
  await rt.destroy('s7');
  await rt.destroy('s7');
  await turn();
  t.is((held.error as SandboxError).code, 'SANDBOX_GONE');
  t.is(clock.pending(), 0);
  const gone = await t.throwsAsync(sandbox.invoke(request('/')), { instanceOf: SandboxError });
  t.is(gone?.code, 'SANDBOX_GONE');
});

test('a caller abort ends a held invocation', async (t) => {
  const { rt } = setup({ kind: 'fixed', ms: 0 });
  const sandbox = await rt.create(spec('s8', trace));
  const caller = new AbortController();
  const held = sandbox.invoke(request('/', '', { requested_cpu: '100' }), caller.signal);
  caller.abort();
  const error = await t.throwsAsync(held, { instanceOf: SandboxError });
  t.is(error?.code, 'SANDBOX_ABORTED');
});

test('only builtin sources and valid latencies are accepted', async (t) => {
  const { rt } = setup({ kind: 'fixed', ms: 0 });
  const thread = await t.throwsAsync(rt.create(spec('s9', { kind: 'thread', module: fixture('handler.mjs') })), { instanceOf: SandboxError });
  t.is(thread?.code, 'UNSUPPORTED_SOURCE');
  const proc = await t.throwsAsync(rt.create(spec('s10', { kind: 'process', command: 'true' })), { instanceOf: SandboxError });
  t.is(proc?.code, 'UNSUPPORTED_SOURCE');
  const badLatency = t.throws(() => setup({ kind: 'uniform', minMs: 10, maxMs: 5 }), { instanceOf: SandboxError });
  t.is(badLatency?.code, 'INVALID_SPEC');
  t.regex(badLatency?.message ?? '', /maxMs=5/);
});
