import test from 'ava';
import { SimulatedRuntime, type Sandbox } from '../sandbox/index.js';
import { SandboxClient, SandboxClientError } from './invoke-client.js';
import { serveInvocations } from './invoke-server.js';

const TOKEN = 'invoke-test-token';
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const request = (headers: Record<string, string> = {}, body = '') => ({ method: 'POST', path: '/', headers, body: encoder.encode(body) });
/** The real clock, as the simulated runtime's clock. */
const clock = { now: () => performance.now(), setTimer: (ms: number, fn: () => void) => setTimeout(fn, ms), clearTimer: (handle: unknown) => clearTimeout(handle as NodeJS.Timeout) };

/** An invocation server with one simulated `trace`, `echo` and `empty` sandbox each, and a client connected to it. */
async function setup(t: { teardown(fn: () => Promise<void> | void): void }) {
  const runtime = new SimulatedRuntime({ creationLatency: { kind: 'fixed', ms: 0 }, random: Math.random, clock });
  const sandboxes = new Map<string, Sandbox>();
  for (const workload of ['trace', 'echo', 'empty'] as const) {
    sandboxes.set(workload, await runtime.create({ sandboxId: workload, functionName: workload, runtime: { kind: 'builtin', workload }, memoryMiB: 64, cpuMilli: 100, concurrency: 100, timeoutMs: 10_000 }));
  }
  const server = await serveInvocations({ host: '127.0.0.1', port: 0, token: TOKEN, id: 'shard-0', lookup: (id) => sandboxes.get(id), log: () => undefined });
  const client = await SandboxClient.connect(server.address, TOKEN);
  t.teardown(async () => {
    client.close();
    await server.close();
    await runtime.close();
  });
  return { client };
}

const hold = (ms: number) => request({ requested_cpu: String(ms) });

/**
 * Runs `invoke` and expects INVOKE_TIMEOUT; answers the time it took, ms, from before the invocation (and its
 * deadline) was made: a thread preempted between the two on a busy machine would otherwise seem to time out early.
 */
async function timedOut(t: { is(a: unknown, b: unknown): void }, invoke: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  const error = await invoke().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.is(error instanceof SandboxClientError ? error.code : error, 'INVOKE_TIMEOUT');
  return performance.now() - started;
}

test('client deadlines: each in-flight invocation times out on its own, about on time, while others answer', async (t) => {
  const { client } = await setup(t);
  // All three awaited together, so that no invocation is left unawaited when an assertion fails.
  const [answered, short, shorter] = await Promise.all([
    client.invoke('trace', hold(300), 5_000),
    timedOut(t, () => client.invoke('trace', hold(2_000), 150)),
    timedOut(t, () => client.invoke('trace', hold(2_000), 40)),
  ]);
  // Swept, not timed one by one: late by at most the sweep interval (100 ms) plus scheduling.
  t.true(shorter >= 35 && shorter < 40 + 100 + 150, `40 ms deadline hit after ${shorter} ms`);
  t.true(short >= 145 && short < 150 + 100 + 150, `150 ms deadline hit after ${short} ms`);
  t.is(answered.status, 200);
  t.is(client.inFlight, 0);
  // The connection serves on, and answers come back whole.
  const echoed = await client.invoke('echo', request({ 'content-type': 'text/plain' }, 'hello'), 1_000);
  t.is(decoder.decode(echoed.body), 'hello');
  t.is(decoder.decode((await client.invoke('empty', request(), 1_000)).body), 'OK');
});

test('a result that comes after its deadline is refused, even before a sweep notices the deadline', async (t) => {
  const { client } = await setup(t);
  // The first invocation has the sweep due at 300 ms; the second's deadline is too close to it to move it.
  const [first] = await Promise.all([client.invoke('trace', hold(100), 300), timedOut(t, () => client.invoke('trace', hold(280), 250))]);
  t.is(first.status, 200);
  t.is(client.inFlight, 0);
});

test('closing the client fails what is in flight with CONNECTION_CLOSED', async (t) => {
  const { client } = await setup(t);
  const pending = [client.invoke('trace', hold(1_000), 60_000), client.invoke('empty', request(), 60_000)];
  client.close();
  for (const outcome of await Promise.allSettled(pending)) t.is(outcome.status === 'rejected' ? (outcome.reason as SandboxClientError).code : 'resolved', 'CONNECTION_CLOSED');
  t.is(client.inFlight, 0);
});
