import test from 'ava';
import type { SandboxEvent } from './runtime.js';
import { SandboxError } from './runtime.js';
import { eventually, fixture, lines, osThreadCount, request, spec, text } from './testing.js';
import { ThreadRuntime } from './thread.js';

const handler = { kind: 'thread', module: fixture('handler.mjs') } as const;

function runtime(t: { teardown(fn: () => Promise<void>): void }): { rt: ThreadRuntime; events: SandboxEvent[] } {
  const rt = new ThreadRuntime();
  const events: SandboxEvent[] = [];
  rt.onEvent((e) => events.push(e));
  t.teardown(() => rt.close());
  return { rt, events };
}

test.serial('creates a sandbox from a user module and invokes its handler', async (t) => {
  const { rt } = runtime(t);
  const sandbox = await rt.create(spec('t1', handler, { env: { GREETING: 'hi' } }));
  t.deepEqual(rt.list(), [{ sandboxId: 't1', functionName: 'fn' }]);

  const hello = await sandbox.invoke(request('/hello', 'world'));
  t.is(hello.status, 200);
  t.is(text(hello.body), 'hello world');
  t.deepEqual(hello.headers, { 'x-calls': '1', 'content-type': 'text/plain; charset=utf-8' });

  const json = await sandbox.invoke(request('/json'));
  t.deepEqual(JSON.parse(text(json.body)), { method: 'POST', greeting: 'hi' });
  t.is(json.headers['content-type'], 'application/json');

  const bytes = await sandbox.invoke(request('/bytes'));
  t.deepEqual([...bytes.body], [1, 2, 3]);
  t.is((await sandbox.invoke(request('/nowhere'))).status, 404);
});

test.serial('a handler that throws answers 500 with its message and the sandbox lives on', async (t) => {
  const { rt, events } = runtime(t);
  const sandbox = await rt.create(spec('t2', handler));
  const failed = await sandbox.invoke(request('/throw'));
  t.is(failed.status, 500);
  t.is(text(failed.body), 'boom');
  t.is((await sandbox.invoke(request('/hello', 'again'))).status, 200);
  t.deepEqual(events, []);
  t.true(await eventually(() => lines(sandbox).includes('handler failed: boom')));
});

test.serial('console output of the user code is kept per sandbox', async (t) => {
  const { rt } = runtime(t);
  const sandbox = await rt.create(spec('t3', handler));
  await sandbox.invoke(request('/log'));
  // Lines travel on a different channel from responses, so they may land just after the answer.
  t.true(await eventually(() => lines(sandbox).length === 2));
  t.deepEqual(lines(sandbox), ['first line', 'second line']);
});

test.serial('concurrency lets that many invocations run inside one sandbox at once', async (t) => {
  const { rt } = runtime(t);
  const sandbox = await rt.create(spec('t4', handler, { concurrency: 2 }));
  const answers = await Promise.all([sandbox.invoke(request('/together')), sandbox.invoke(request('/together'))]);
  t.deepEqual(answers.map((a) => text(a.body)), ['together', 'together']);
});

test.serial('a runaway handler is killed at its timeout, the sandbox fails and the host survives', async (t) => {
  const { rt, events } = runtime(t);
  const sandbox = await rt.create(spec('t5', handler, { timeoutMs: 300, concurrency: 2 }));
  const hostTicks = { count: 0 };
  const ticker = setInterval(() => (hostTicks.count += 1), 20);
  t.teardown(() => clearInterval(ticker));

  const spinning = sandbox.invoke(request('/spin'));
  // Queued behind the spin on the same thread, so it dies with it.
  const bystander = sandbox.invoke(request('/hello'));
  const error = await t.throwsAsync(spinning, { instanceOf: SandboxError });
  t.is(error?.code, 'SANDBOX_TIMEOUT');
  const collateral = await t.throwsAsync(bystander, { instanceOf: SandboxError });
  t.is(collateral?.code, 'SANDBOX_CRASHED');
  t.deepEqual(events, [{ type: 'failed', sandboxId: 't5', reason: 'invocation exceeded timeoutMs=300 ms; worker killed' }]);
  t.true(hostTicks.count >= 5, `the host's event loop kept running while the handler spun (${hostTicks.count} ticks)`);
  t.deepEqual(rt.list(), []);
  const gone = await t.throwsAsync(sandbox.invoke(request('/hello')), { instanceOf: SandboxError });
  t.is(gone?.code, 'SANDBOX_GONE');
  await rt.destroy('t5');

  const replacement = await rt.create(spec('t5', handler));
  t.is((await replacement.invoke(request('/hello', 'back'))).status, 200);
});

test.serial('a handler allocating past the memory limit fails the sandbox, not the host', async (t) => {
  const { rt, events } = runtime(t);
  const sandbox = await rt.create(spec('t6', handler, { memoryMiB: 32, timeoutMs: 20_000 }));
  const error = await t.throwsAsync(sandbox.invoke(request('/alloc')), { instanceOf: SandboxError });
  t.is(error?.code, 'SANDBOX_CRASHED');
  t.regex(error?.message ?? '', /memory limit/);
  t.is(events.length, 1);
  t.like(events[0], { type: 'failed', sandboxId: 't6' });
  const other = await rt.create(spec('t6b', handler));
  t.is((await other.invoke(request('/hello'))).status, 200);
});

test.serial('create rejects a module that cannot be imported or exports no handler', async (t) => {
  const { rt } = runtime(t);
  const broken = await t.throwsAsync(rt.create(spec('t7', { kind: 'thread', module: fixture('broken.mjs') })), { instanceOf: SandboxError });
  t.is(broken?.code, 'SANDBOX_CREATE_FAILED');
  t.regex(broken?.message ?? '', /missing configuration/);
  const empty = await t.throwsAsync(rt.create(spec('t8', { kind: 'thread', module: fixture('no-handler.mjs') })), { instanceOf: SandboxError });
  t.is(empty?.code, 'SANDBOX_CREATE_FAILED');
  t.regex(empty?.message ?? '', /exports neither/);
  const missing = await t.throwsAsync(rt.create(spec('t9', { kind: 'thread', module: fixture('absent.mjs') })), { instanceOf: SandboxError });
  t.is(missing?.code, 'SANDBOX_CREATE_FAILED');
  t.deepEqual(rt.list(), []);
});

test.serial('create rejects bad specs and sources with stable codes', async (t) => {
  const { rt } = runtime(t);
  const relative = await t.throwsAsync(rt.create(spec('b1', { kind: 'thread', module: './handler.mjs' })), { instanceOf: SandboxError });
  t.is(relative?.code, 'INVALID_SPEC');
  const processSource = await t.throwsAsync(rt.create(spec('b2', { kind: 'process', command: 'true' })), { instanceOf: SandboxError });
  t.is(processSource?.code, 'UNSUPPORTED_SOURCE');
  await rt.create(spec('b3', handler));
  const duplicate = await t.throwsAsync(rt.create(spec('b3', handler)), { instanceOf: SandboxError });
  t.is(duplicate?.code, 'SANDBOX_EXISTS');
  await rt.close();
  const closed = await t.throwsAsync(rt.create(spec('b4', handler)), { instanceOf: SandboxError });
  t.is(closed?.code, 'RUNTIME_CLOSED');
});

test.serial('a caller that gives up gets SANDBOX_ABORTED and the sandbox keeps serving', async (t) => {
  const { rt, events } = runtime(t);
  const sandbox = await rt.create(spec('t10', handler, { concurrency: 2 }));
  const caller = new AbortController();
  // Alone, '/together' waits forever for a partner; the caller aborts instead.
  const pending = sandbox.invoke(request('/together'), caller.signal);
  caller.abort();
  const error = await t.throwsAsync(pending, { instanceOf: SandboxError });
  t.is(error?.code, 'SANDBOX_ABORTED');
  // The abandoned invocation is still inside; a partner releases both.
  t.is(text((await sandbox.invoke(request('/together'))).body), 'together');
  t.deepEqual(events, []);
});

test.serial('runs builtin workloads inside the worker', async (t) => {
  const { rt } = runtime(t);
  const sandbox = await rt.create(spec('t11', { kind: 'builtin', workload: 'trace' }));
  const answer = await sandbox.invoke(request('/', '', { requested_cpu: '20', requested_memory: '4', function: 'trace-fn' }));
  const body = JSON.parse(text(answer.body)) as { Status: string; Function: string; MachineName: string; ExecutionTime: number };
  t.like(body, { Status: 'OK', Function: 'trace-fn', MachineName: 't11' });
  t.true(body.ExecutionTime >= 20_000, `ExecutionTime ${body.ExecutionTime} us`);
});

test.serial('destroy is idempotent and leaves no worker threads', async (t) => {
  const { rt } = runtime(t);
  // Warm up once so lazily started process-wide threads are not counted as leaks.
  await rt.create(spec('warm', handler));
  await rt.destroy('warm');
  const before = osThreadCount();
  const sandboxes = await Promise.all(['d1', 'd2', 'd3'].map((id) => rt.create(spec(id, handler))));
  t.true(osThreadCount() >= before + 3);
  await Promise.all(['d1', 'd2', 'd3'].map((id) => rt.destroy(id)));
  await rt.destroy('d1');
  await rt.destroy('never-existed');
  t.deepEqual(rt.list(), []);
  t.true(await eventually(() => osThreadCount() <= before), `threads: ${osThreadCount()} now, ${before} before`);
  const gone = await t.throwsAsync(sandboxes[0]!.invoke(request('/hello')), { instanceOf: SandboxError });
  t.is(gone?.code, 'SANDBOX_GONE');
});
