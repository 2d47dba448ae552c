// Real pooled sandboxes: thread and process runtimes with a pool of stems, specialised by cold starts.
// What is proven: a cold start of a pooled class takes a stem (`start: 'pool'`), others start fresh; a stem
// serves one sandbox and is never handed out again; the function sees its own environment and nothing of
// the host's; the memory class's limit is the one the sandbox runs under.
import test from 'ava';
import { ProcessRuntime } from './process.js';
import type { PoolSettings, PoolStats } from './pool.js';
import type { SandboxRuntime } from './runtime.js';
import { eventually, fixture, processGone, request, spec, text } from './testing.js';
import { ThreadRuntime } from './thread.js';

// The host holds a secret no sandbox may see (a stand-in for the cluster token in a worker's environment).
process.env['DIRIGENT_TEST_SECRET'] = 'host-only';

const POOL: PoolSettings = { sizes: [{ memoryMiB: 128, count: 1 }], capMiB: 200, idleDelayMs: 0 };

/** Waits (bounded) until the pool holds `idle` stems. */
async function filled(rt: { poolStats(): PoolStats | null }, idle = 1): Promise<boolean> {
  return eventually(() => (rt.poolStats()?.classes[0]?.idle ?? 0) >= idle, 20_000);
}

function closing<R extends SandboxRuntime>(t: { teardown(fn: () => Promise<void>): void }, rt: R): R {
  t.teardown(() => rt.close());
  return rt;
}

const json = (body: Uint8Array) => JSON.parse(text(body)) as Record<string, unknown>;

test.serial('thread: a cold start takes a pooled stem; its env is the function\u2019s alone; another class starts fresh', async (t) => {
  const rt = closing(t, new ThreadRuntime({ pool: POOL }));
  t.true(await filled(rt), 'the pool fills');
  const pooled = await rt.create(spec('tp1', { kind: 'thread', module: fixture('env.mjs') }, { memoryMiB: 128, env: { GREETING: 'hi' } }));
  t.is(pooled.start, 'pool');
  t.true((pooled.startMs ?? -1) >= 0);
  const seen = json((await pooled.invoke(request('/'))).body);
  t.deepEqual(seen['env'], { GREETING: 'hi' }, 'nothing of the host\u2019s environment');
  const limit = seen['heapLimitMiB'] as number;
  t.true(limit >= 128 && limit < 256, `heap limit of the 128 MiB class, got ${limit} MiB`);
  t.like(rt.poolStats(), { fromPool: 1, fresh: 0 });

  const other = await rt.create(spec('tp2', { kind: 'thread', module: fixture('env.mjs') }, { memoryMiB: 256 }));
  t.is(other.start, 'fresh', 'no pool for 256 MiB');
  const otherSeen = json((await other.invoke(request('/'))).body);
  t.true((otherSeen['heapLimitMiB'] as number) >= 256, 'created with its own limit');
  t.deepEqual(otherSeen['env'], {});

  // The refill brings a new thread; the first one is never handed out again, even once destroyed.
  t.true(await filled(rt), 'refilled');
  await rt.destroy('tp1');
  const next = await rt.create(spec('tp3', { kind: 'thread', module: fixture('env.mjs') }, { memoryMiB: 128 }));
  t.is(next.start, 'pool');
  const nextSeen = json((await next.invoke(request('/'))).body);
  t.not(nextSeen['threadId'], seen['threadId'], 'another thread');
  t.deepEqual(nextSeen['env'], {}, 'nothing left over from the previous function');
  t.like(rt.poolStats(), { fromPool: 2, fresh: 1 });
});

test.serial('thread: a module that fails to load fails the creation and uses up its stem', async (t) => {
  const rt = closing(t, new ThreadRuntime({ pool: POOL }));
  t.true(await filled(rt));
  const error = await t.throwsAsync(rt.create(spec('tb1', { kind: 'thread', module: fixture('broken.mjs') }, { memoryMiB: 128 })));
  t.regex(error?.message ?? '', /cannot load the module/);
  t.deepEqual(rt.list(), []);
  t.true(await filled(rt), 'refilled with a new stem');
  const ok = await rt.create(spec('tb2', { kind: 'builtin', workload: 'echo' }, { memoryMiB: 128 }));
  t.is(ok.start, 'pool');
  t.is(text((await ok.invoke(request('/', 'x'))).body), 'x');
});

test.serial('process: builtin workloads and `node <script>` run in pooled stems as main, with the function\u2019s env, argv and limit', async (t) => {
  const rt = closing(t, new ProcessRuntime({ pool: POOL }));
  t.true(await filled(rt));
  const builtin = await rt.create(spec('pp1', { kind: 'builtin', workload: 'echo' }, { memoryMiB: 128 }));
  t.is(builtin.start, 'pool');
  t.is(text((await builtin.invoke(request('/', 'abc'))).body), 'abc');

  t.true(await filled(rt), 'refilled');
  const script = await rt.create(spec('pp2', { kind: 'process', command: 'node', args: [fixture('env-server.cjs'), '--flag', 'x'] }, { memoryMiB: 128, env: { GREETING: 'hi' } }));
  t.is(script.start, 'pool');
  const seen = json((await script.invoke(request('/'))).body);
  const env = seen['env'] as Record<string, string>;
  t.deepEqual(Object.keys(env).sort(), ['DIRIGENT_FUNCTION', 'DIRIGENT_MEMORY_MIB', 'DIRIGENT_SANDBOX_ID', 'GREETING', 'PATH', 'PORT']);
  t.like(env, { GREETING: 'hi', DIRIGENT_SANDBOX_ID: 'pp2', DIRIGENT_MEMORY_MIB: '128' });
  t.deepEqual(seen['argv'], [fixture('env-server.cjs'), '--flag', 'x']);
  t.is(seen['connected'], false, 'no IPC channel to the worker');
  const limit = seen['heapLimitMiB'] as number;
  t.true(limit >= 128 && limit < 256, `heap limit of the 128 MiB class, got ${limit} MiB`);

  // Not a Node script this runtime's stems can run: fresh, as before.
  const shell = await rt.create(spec('pp3', { kind: 'process', command: process.execPath, args: ['--no-warnings', fixture('env-server.cjs')] }, { memoryMiB: 128 }));
  t.is(shell.start, 'fresh');
  t.like(rt.poolStats(), { fromPool: 2, fresh: 1 });

  // A taken stem is the sandbox's for life: destroying the sandbox ends the process.
  const pid = seen['pid'] as number;
  await rt.destroy('pp2');
  t.true(await eventually(() => processGone(pid)), 'the stem process is gone');
});

test.serial('process: a pooled script that exits at once fails the creation with its output', async (t) => {
  const rt = closing(t, new ProcessRuntime({ pool: POOL }));
  t.true(await filled(rt));
  const error = await t.throwsAsync(rt.create(spec('pe1', { kind: 'process', command: 'node', args: [fixture('broken.mjs')] }, { memoryMiB: 128 })));
  t.regex(error?.message ?? '', /exited with code 1/);
  t.deepEqual(rt.list(), []);
});
