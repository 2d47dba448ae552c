import test from 'ava';
import { normaliseHandlerResult } from './handler-result.js';
import type { SandboxSpec } from './runtime.js';
import { lineSplitter, LogRing, SandboxError, validateSpec } from './runtime.js';
import { request, spec, text } from './testing.js';
import type { WorkloadContext } from './workloads.js';
import { realWorkloadContext, runWorkload } from './workloads.js';

/** A context whose clock moves only when the workload occupies it; records what it was asked to hold. */
function fakeContext(memoryLimitMiB = 512): { ctx: WorkloadContext; held: [number, number][] } {
  let nowMs = 1_000;
  const held: [number, number][] = [];
  const ctx: WorkloadContext = {
    machineName: 'sandbox-1',
    functionName: 'fn',
    memoryLimitMiB,
    now: () => nowMs,
    occupy: async (ms, memoryMiB) => {
      held.push([ms, memoryMiB]);
      nowMs += ms;
    },
  };
  return { ctx, held };
}

test('trace answers the loader JSON with ExecutionTime in microseconds', async (t) => {
  const { ctx, held } = fakeContext();
  const answer = await runWorkload('trace', request('/', '', { requested_cpu: '250', requested_memory: '64', multiplier: '155', function: 'f-42', workload: 'trace' }), ctx);
  t.is(answer.status, 200);
  t.is(answer.headers['content-type'], 'application/json');
  t.is(text(answer.body), '{"Status":"OK","Function":"f-42","MachineName":"sandbox-1","ExecutionTime":250000}');
  t.deepEqual(held, [[250, 64]]);
});

test('trace caps memory at the sandbox limit and defaults missing headers', async (t) => {
  const { ctx, held } = fakeContext(128);
  const capped = JSON.parse(text((await runWorkload('trace', request('/', '', { requested_cpu: '1.5', requested_memory: '4096' }), ctx)).body)) as Record<string, unknown>;
  t.like(capped, { Function: 'fn', ExecutionTime: 1500 });
  await runWorkload('trace', request('/'), ctx);
  t.deepEqual(held, [
    [1.5, 128],
    [0, 0],
  ]);
});

test("trace skips the work for workload 'empty' and rejects bad numbers with 400", async (t) => {
  const { ctx, held } = fakeContext();
  const empty = JSON.parse(text((await runWorkload('trace', request('/', '', { requested_cpu: '500', workload: 'empty' }), ctx)).body)) as Record<string, unknown>;
  t.is(empty['ExecutionTime'], 0);
  const bad = await runWorkload('trace', request('/', '', { requested_cpu: '-3' }), ctx);
  t.is(bad.status, 400);
  t.regex(text(bad.body), /requested_cpu="-3"/);
  t.deepEqual(held, []);
});

test('trace in a real context spins for the requested time', async (t) => {
  const ctx = realWorkloadContext('host-a', 'fn', 64);
  const cpuBefore = process.cpuUsage();
  const answer = await runWorkload('trace', request('/', '', { requested_cpu: '40', requested_memory: '16' }), ctx);
  const cpu = process.cpuUsage(cpuBefore);
  const body = JSON.parse(text(answer.body)) as { ExecutionTime: number; MachineName: string };
  t.is(body.MachineName, 'host-a');
  t.true(body.ExecutionTime >= 40_000 && body.ExecutionTime < 1_000_000, `ExecutionTime ${body.ExecutionTime} us`);
  // It burns CPU rather than sleeping (which would cost ~0). Only a quarter of the 40 ms is required: on a
  // loaded 2-core machine the spinning thread is preempted for part of its wall-clock time.
  t.true(cpu.user + cpu.system >= 10_000, `spent ${cpu.user + cpu.system} us of CPU`);
});

test('echo returns the body and content type; empty answers a non-empty 200', async (t) => {
  const { ctx } = fakeContext();
  const echoed = await runWorkload('echo', request('/', '{"a":1}', { 'content-type': 'application/json' }), ctx);
  t.is(echoed.status, 200);
  t.is(text(echoed.body), '{"a":1}');
  t.is(echoed.headers['content-type'], 'application/json');
  t.is((await runWorkload('echo', request('/', 'raw'), ctx)).headers['content-type'], 'application/octet-stream');
  const empty = await runWorkload('empty', request('/'), ctx);
  t.is(empty.status, 200);
  t.is(text(empty.body), 'OK');
});

test('handler results are normalised into responses', (t) => {
  const cases: [unknown, number, Record<string, string>, string][] = [
    ['hi', 200, { 'content-type': 'text/plain; charset=utf-8' }, 'hi'],
    [undefined, 200, {}, ''],
    [{ a: 1 }, 200, { 'content-type': 'application/json' }, '{"a":1}'],
    [[1, 2], 200, { 'content-type': 'application/json' }, '[1,2]'],
    [{ status: 201, headers: { 'X-Id': 7 }, body: 'made' }, 201, { 'x-id': '7', 'content-type': 'text/plain; charset=utf-8' }, 'made'],
    [{ status: 204 }, 204, {}, ''],
    [{ status: 200, headers: { 'Content-Type': 'text/html' }, body: '<p>' }, 200, { 'content-type': 'text/html' }, '<p>'],
    // Not a response shape: an extra key, so the whole object is the JSON body.
    [{ status: 200, extra: true }, 200, { 'content-type': 'application/json' }, '{"status":200,"extra":true}'],
  ];
  for (const [value, status, headers, body] of cases) {
    const response = normaliseHandlerResult(value);
    t.is(response.status, status, JSON.stringify(value));
    t.deepEqual(response.headers, headers, JSON.stringify(value));
    t.is(text(response.body), body, JSON.stringify(value));
  }
  t.deepEqual([...normaliseHandlerResult(new Uint8Array([9])).body], [9]);
});

test('validateSpec names the bad field, value and unit', (t) => {
  const good = spec('v1', { kind: 'builtin', workload: 'echo' });
  t.notThrows(() => validateSpec(good));
  const cases: [Partial<SandboxSpec>, RegExp][] = [
    [{ sandboxId: '' }, /sandboxId="" must be a non-empty string/],
    [{ memoryMiB: 0 }, /memoryMiB=0 must be an integer >= 1 \(MiB\)/],
    [{ cpuMilli: -1 }, /cpuMilli=-1 must be > 0 \(millicores\)/],
    [{ concurrency: 1.5 }, /concurrency=1.5/],
    [{ timeoutMs: Number.NaN }, /timeoutMs=null must be > 0 \(ms\)/],
    [{ env: { A: 1 as unknown as string } }, /env.A=1 must be a string/],
    [{ runtime: { kind: 'builtin', workload: 'fib' as 'echo' } }, /runtime.workload="fib"/],
    [{ runtime: { kind: 'process', command: '' } }, /runtime.command=""/],
  ];
  for (const [override, message] of cases) {
    const error = t.throws(() => validateSpec({ ...good, ...override }), { instanceOf: SandboxError });
    t.is(error?.code, 'INVALID_SPEC');
    t.regex(error?.message ?? '', message);
  }
});

test('the log ring keeps the newest lines and splits streams into lines', (t) => {
  const ring = new LogRing({ lines: 3, bytes: 1024, lineChars: 5 });
  const lines = lineSplitter((line) => ring.push('stdout', line, 0));
  lines.write('a\nb');
  lines.write('b\r\nc\nabcdefgh\ntail');
  t.deepEqual(ring.lines(), ['bb', 'c', 'abcde...']);
  lines.end();
  t.deepEqual(ring.lines(), ['c', 'abcde...', 'tail']);
});
