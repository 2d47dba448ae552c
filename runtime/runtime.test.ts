import test from 'ava';
import type { Address, AskResult } from '../actors/actor.js';
import { ActorRuntime, type RuntimeOptions } from './runtime.js';
import { addressKey, fnv1a, shardOf } from './hash.js';
import type { LogLevel } from './host.js';

const kinds = { url: new URL('./fixtures/test-kinds.js', import.meta.url).href };

async function startRuntime(t: { teardown(fn: () => Promise<void>): void }, options: RuntimeOptions = {}): Promise<{ runtime: ActorRuntime; logs: string[] }> {
  const logs: string[] = [];
  const runtime = await ActorRuntime.start({
    shards: 2,
    modules: [kinds],
    onLog: (level: LogLevel, text: string) => logs.push(`${level} ${text}`),
    ...options,
  });
  t.teardown(() => runtime.stop());
  return { runtime, logs };
}

/** Addresses whose keys land on the wanted shard (found by search, bounded). */
function addressOnShard(kind: string, shard: number, shards: number, prefix = 'a'): Address {
  for (let i = 0; i < 10_000; i++) {
    const address = { kind, id: `${prefix}${i}` };
    if (shardOf(address, shards) === shard) return address;
  }
  throw new Error('no address found');
}

test('shard placement is a stable hash of the colocation key', (t) => {
  t.is(fnv1a(''), 0x811c9dc5);
  t.is(fnv1a('a'), 0xe40c292c);
  const a = { kind: 'router', id: 'f1', key: 'fn:f1' };
  const b = { kind: 'sandbox', id: 'sb-9', key: 'fn:f1' };
  for (const shards of [1, 2, 3, 8]) t.is(shardOf(a, shards), shardOf(b, shards));
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[shardOf({ kind: 'x', id: String(i) }, 4)]! += 1;
  for (const count of counts) t.true(count > 800 && count < 1200, `uneven spread ${counts.join(',')}`);
});

test('a pinned address goes to its shard (modulo the count), whatever its key hashes to; its name ignores the pin', (t) => {
  const plain = { kind: 'router', id: 'f1', key: 'fn:f1' };
  for (const shard of [0, 1, 2, 5]) t.is(shardOf({ ...plain, shard }, 3), shard % 3);
  t.is(shardOf({ ...plain, shard: 2 }, 1), 0);
  t.is(addressKey({ ...plain, shard: 1 }), addressKey(plain));
});

test.serial('an actor lives on the shard its key hashes to, and a colocated actor shares it', async (t) => {
  const { runtime } = await startRuntime(t);
  const one = { kind: 'counter', id: 'one', key: 'shared' };
  const two = { kind: 'counter', id: 'two', key: 'shared' };
  await runtime.ask(one, { type: 'get' });
  await runtime.ask(two, { type: 'get' });
  const [i1, i2] = await Promise.all([runtime.inspect(one), runtime.inspect(two)]);
  t.is(i1.stats.shard, runtime.shardOf(one));
  t.is(i2.stats.shard, i1.stats.shard);
});

test.serial('tell and ask reach actors on every shard; virtual actors spawn on first message', async (t) => {
  const { runtime } = await startRuntime(t);
  for (let shard = 0; shard < 2; shard++) {
    const address = addressOnShard('counter', shard, 2);
    runtime.tell(address, { type: 'inc', by: 5 });
    runtime.tell(address, { type: 'inc' });
    t.is(await runtime.ask<number>(address, { type: 'get' }), 6);
  }
  t.deepEqual(await runtime.ask(addressOnShard('echo', 1, 2), { hello: [1, 2, 3] }), { hello: [1, 2, 3] });
});

test.serial('explicit spawn passes the init argument; non-virtual kinds and unknown kinds answer NO_SUCH_ACTOR', async (t) => {
  const { runtime } = await startRuntime(t);
  const missing = await t.throwsAsync(runtime.ask({ kind: 'account', id: 'bob' }, { type: 'get' }));
  t.is((missing as { code?: string }).code, 'NO_SUCH_ACTOR');
  runtime.spawn({ kind: 'account', id: 'bob' }, 42);
  t.is(await runtime.ask<number>({ kind: 'account', id: 'bob' }, { type: 'get' }), 42);
  const unknown = await t.throwsAsync(runtime.ask({ kind: 'nope', id: 'x' }, {}));
  t.is((unknown as { code?: string }).code, 'NO_SUCH_ACTOR');
  t.regex(unknown!.message, /unknown actor kind/);
});

test.serial('messages from one sender to one receiver arrive in order, locally and across threads', async (t) => {
  const { runtime } = await startRuntime(t);
  const target = addressOnShard('counter', 0, 2, 'target');
  const sameShard = addressOnShard('relay', 0, 2, 'near');
  const otherShard = addressOnShard('relay', 1, 2, 'far');
  const n = 5000;
  for (let seq = 0; seq < n; seq++) runtime.tell(target, { type: 'record', from: 'client', seq });
  runtime.tell(sameShard, { type: 'burst', to: target, from: 'near', n });
  runtime.tell(otherShard, { type: 'burst', to: target, from: 'far', n });
  const expected = Array.from({ length: n }, (_, i) => i);
  let seen: Record<string, number[]> = {};
  for (let attempt = 0; attempt < 100; attempt++) {
    seen = await runtime.ask<Record<string, number[]>>(target, { type: 'log' });
    if ((seen.near?.length ?? 0) === n && (seen.far?.length ?? 0) === n) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.deepEqual(seen.client, expected);
  t.deepEqual(seen.near, expected);
  t.deepEqual(seen.far, expected);
});

test.serial('an ask without a reply times out with ASK_TIMEOUT (manual clock, client and actor side)', async (t) => {
  const { runtime } = await startRuntime(t, { manualClock: 0 });
  const pending = runtime.ask({ kind: 'silent', id: 's' }, 'hello?', 500);
  let settled = false;
  pending.catch(() => undefined).finally(() => (settled = true));
  await runtime.ask({ kind: 'echo', id: 'e' }, 'sync'); // the silent actor has surely received it by now
  await runtime.advance(499);
  t.false(settled);
  await runtime.advance(1);
  const error = await t.throwsAsync(pending);
  t.is((error as { code?: string }).code, 'ASK_TIMEOUT');

  const asker = addressOnShard('relay', 0, 2, 'asker');
  runtime.tell(asker, { type: 'askOther', to: addressOnShard('silent', 1, 2), message: 'x', timeoutMs: 300 });
  runtime.tell(asker, { type: 'askOther', to: addressOnShard('echo', 1, 2), message: 'pong', timeoutMs: 300 });
  await runtime.ask(asker, { type: 'results' }); // both asks sent
  await waitFor(async () => (await runtime.ask<{ results: AskResult[] }>(asker, { type: 'results' })).results.length === 1);
  await runtime.advance(300);
  await waitFor(async () => (await runtime.ask<{ results: AskResult[] }>(asker, { type: 'results' })).results.length === 2);
  const { results } = await runtime.ask<{ results: AskResult[] }>(asker, { type: 'results' });
  t.deepEqual(results[0], { ok: true, value: 'pong' });
  t.is(results[1]!.ok ? 'ok' : results[1]!.error.code, 'ASK_TIMEOUT');
});

test.serial('a real-clock ask timeout rejects and a late reply is dropped', async (t) => {
  const { runtime } = await startRuntime(t);
  const started = Date.now();
  const error = await t.throwsAsync(runtime.ask({ kind: 'silent', id: 'q' }, 'x', 50));
  t.is((error as { code?: string }).code, 'ASK_TIMEOUT');
  t.true(Date.now() - started < 2000);
});

test.serial('scheduled messages fire on the injected clock; named timers replace each other', async (t) => {
  const { runtime } = await startRuntime(t, { manualClock: 1000 });
  const actor = { kind: 'relay', id: 'timers' };
  runtime.tell(actor, { type: 'remind', afterMs: 100, note: 'a' });
  runtime.tell(actor, { type: 'remind', afterMs: 300, note: 'b' });
  runtime.tell(actor, { type: 'remind', afterMs: 200, note: 'b' }); // replaces the 300 ms timer named b
  await runtime.ask(actor, { type: 'results' });
  await runtime.advance(250);
  await waitFor(async () => (await runtime.ask<{ notes: string[] }>(actor, { type: 'results' })).notes.length === 2);
  await runtime.advance(1000);
  const { notes } = await runtime.ask<{ notes: string[] }>(actor, { type: 'results' });
  t.deepEqual(notes, ['a@1100', 'b@1200']);
});

test.serial('service calls return their outcome to the actor as a message', async (t) => {
  const { runtime } = await startRuntime(t);
  const actor = { kind: 'relay', id: 'caller' };
  runtime.tell(actor, { type: 'call', service: 'double', input: 21 });
  runtime.tell(actor, { type: 'call', service: 'failing', input: null });
  runtime.tell(actor, { type: 'call', service: 'absent', input: null });
  await waitFor(async () => (await runtime.ask<{ results: AskResult[] }>(actor, { type: 'results' })).results.length === 3);
  const { results } = await runtime.ask<{ results: AskResult[] }>(actor, { type: 'results' });
  const outcomes = results.map((r) => (r.ok ? r.value : r.error.code)).sort();
  t.deepEqual(outcomes, [42, 'INVOKE_FAILED', 'NO_SUCH_SERVICE'].sort());
});

test.serial('a crashing actor is restarted with fresh state, the error is logged with its address, the shard keeps running', async (t) => {
  const { runtime, logs } = await startRuntime(t);
  const actor = { kind: 'crashy', id: 'c1' };
  runtime.tell(actor, { type: 'inc' });
  runtime.tell(actor, { type: 'inc' });
  t.is(await runtime.ask<number>(actor, { type: 'get' }), 2);
  const crash = await t.throwsAsync(runtime.ask(actor, { type: 'boom' }));
  t.is((crash as { code?: string }).code, 'ACTOR_CRASHED');
  t.is(await runtime.ask<number>(actor, { type: 'get' }), 0);
  t.true(logs.some((line) => line.startsWith('error') && line.includes('crashy:c1') && line.includes('boom requested')));
  const inspected = await runtime.inspect(actor);
  t.is(inspected.stats.restarts, 1);
  // Other actors on the same shard are unaffected.
  const neighbour = addressOnShard('counter', runtime.shardOf(actor), 2, 'n');
  runtime.tell(neighbour, { type: 'inc' });
  t.is(await runtime.ask<number>(neighbour, { type: 'get' }), 1);
});

test.serial('an actor with the stop policy is stopped on a crash and its queued asks fail', async (t) => {
  const { runtime, logs } = await startRuntime(t);
  const actor = { kind: 'fragile', id: 'f1' };
  runtime.spawn(actor);
  const crash = runtime.ask(actor, { type: 'boom' });
  const queued = runtime.ask(actor, { type: 'get' });
  t.is(((await t.throwsAsync(crash)) as { code?: string }).code, 'ACTOR_CRASHED');
  t.is(((await t.throwsAsync(queued)) as { code?: string }).code, 'ACTOR_STOPPED');
  t.is(((await t.throwsAsync(runtime.ask(actor, { type: 'get' }))) as { code?: string }).code, 'NO_SUCH_ACTOR');
  t.true(logs.some((line) => line.includes('fragile:f1') && line.includes('stopped')));
});

test.serial('repeated crashes beyond the restart intensity stop the actor', async (t) => {
  const { runtime } = await startRuntime(t);
  const actor = { kind: 'crashy', id: 'storm' };
  for (let i = 0; i < 11; i++) runtime.tell(actor, { type: 'boom' });
  runtime.tell(actor, { type: 'inc' });
  const stats = await waitFor(async () => {
    const shards = await runtime.stats();
    return shards.reduce((sum, s) => sum + s.restarts, 0) >= 11 ? shards : undefined;
  });
  t.truthy(stats);
  // Virtual: the next message starts a fresh incarnation.
  t.is(await runtime.ask<number>(actor, { type: 'get' }), 0);
});

test.serial('idle actors are passivated on the manual clock and respawn fresh on demand', async (t) => {
  const { runtime } = await startRuntime(t, { manualClock: 0, passivationSweepMs: 250 });
  const actor = { kind: 'sleepy', id: 'z' };
  runtime.tell(actor, { type: 'inc' });
  t.is(await runtime.ask<number>(actor, { type: 'get' }), 1);
  await runtime.advance(500);
  t.truthy(await runtime.inspect(actor));
  await runtime.advance(750);
  t.is(((await t.throwsAsync(runtime.inspect(actor))) as { code?: string }).code, 'NO_SUCH_ACTOR');
  t.is(await runtime.ask<number>(actor, { type: 'get' }), 0);
});

test.serial('an actor that stops itself drops nothing: queued messages go to its next incarnation', async (t) => {
  const { runtime } = await startRuntime(t);
  const actor = { kind: 'relay', id: 'quitter' };
  runtime.tell(actor, { type: 'quit' });
  runtime.tell(actor, { type: 'note', note: 'after' });
  await waitFor(async () => (await runtime.ask<{ notes: string[] }>(actor, { type: 'results' })).notes.length === 1);
  t.pass();
});

test.serial('stats count processed messages, restarts and actors; listing pages cover every actor once', async (t) => {
  const { runtime } = await startRuntime(t);
  const n = 137;
  await Promise.all(Array.from({ length: n }, (_, i) => runtime.ask({ kind: 'counter', id: `c${i}` }, { type: 'get' })));
  await Promise.all(Array.from({ length: 5 }, (_, i) => runtime.ask({ kind: 'echo', id: `e${i}` }, 'x')));
  const stats = await runtime.stats();
  t.is(stats.length, 2);
  t.is(stats.reduce((s, x) => s + (x.actorsByKind.counter ?? 0), 0), n);
  t.true(stats.reduce((s, x) => s + x.processed, 0) >= n + 5);
  t.true(stats.reduce((s, x) => s + x.histogram.count, 0) >= n + 5);

  const seen = new Set<string>();
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await runtime.listActors({ kind: 'counter', limit: 20, ...(cursor ? { cursor } : {}) });
    t.is(page.total, n);
    for (const item of page.items) {
      t.false(seen.has(item.address));
      seen.add(item.address);
      t.is(item.kind, 'counter');
      t.is(item.processed, 1);
    }
    cursor = page.next;
    pages += 1;
  } while (cursor !== undefined && pages < 100);
  t.is(seen.size, n);
  t.is(pages, Math.ceil(n / 20));
  const all = await runtime.listActors({ limit: 1000 });
  t.is(all.total, n + 5);

  const inspected = await runtime.inspect({ kind: 'counter', id: 'c7' });
  t.deepEqual(inspected.state, { count: 0 });
  t.is(inspected.stats.mailbox, 0);
  t.is(inspected.stats.processed, 1);
  await t.throwsAsync(runtime.listActors({ limit: 0 }), { message: /limit/ });
});

test.serial('100 000 asks across shards from the client and between actors: none lost', async (t) => {
  const { runtime } = await startRuntime(t, { askTimeoutMs: 30_000 });
  const total = 100_000;
  const replies = await Promise.all(Array.from({ length: total }, (_, i) => runtime.ask<number>({ kind: 'echo', id: `e${i % 1000}` }, i)));
  let wrong = 0;
  for (let i = 0; i < total; i++) if (replies[i] !== i) wrong += 1;
  t.is(wrong, 0);
  const stats = await runtime.stats();
  t.is(stats.reduce((s, x) => s + x.pendingAsks, 0), 0);
  t.true(stats.every((s) => s.batchesSent < s.crossSent), 'cross-thread envelopes are batched');
});

test.serial('stop ends every thread, fails pending asks, refuses new ones and leaves no handle open', async (t) => {
  const before = new Set(process.getActiveResourcesInfo());
  const runtime = await ActorRuntime.start({ shards: 3, modules: [kinds], onLog: () => undefined });
  await runtime.ask({ kind: 'counter', id: 'x' }, { type: 'get' });
  const pending = runtime.ask({ kind: 'silent', id: 'x' }, 'wait', 60_000);
  await runtime.stop();
  t.is(((await t.throwsAsync(pending)) as { code?: string }).code, 'RUNTIME_STOPPED');
  t.is(((await t.throwsAsync(runtime.ask({ kind: 'echo', id: 'y' }, 1))) as { code?: string }).code, 'RUNTIME_STOPPED');
  await runtime.stop(); // idempotent
  await new Promise((r) => setImmediate(r));
  const after = process.getActiveResourcesInfo().filter((r) => !before.has(r));
  t.deepEqual(after.filter((r) => r !== 'Immediate' && r !== 'Timeout'), []);
});

test.serial('a shard thread that fails or exits while starting makes start reject at once, and leaves no thread or handle', async (t) => {
  const before = new Set(process.getActiveResourcesInfo());
  for (const fixture of ['throw-at-load', 'exit-at-load']) {
    const started = performance.now();
    const logs: string[] = [];
    const onLog = (level: LogLevel, text: string) => logs.push(`${level} ${text}`);
    const error = await t.throwsAsync(ActorRuntime.start({ shards: 2, modules: [{ url: new URL(`./fixtures/${fixture}.js`, import.meta.url).href }], onLog }));
    t.is((error as { code?: string }).code, 'SHARD_START_FAILED', fixture);
    if (fixture === 'throw-at-load') {
      // The module's message for a person; its stack only in the debug log.
      t.regex(error!.message, /failed to start: this module fails to load$/);
      t.true(logs.some((line) => line.startsWith('debug') && line.includes('this module fails to load') && line.includes('\n    at ')));
    }
    // Not the 5 s a shutdown ask to a dead shard would wait (before, an exited shard made start hang for good).
    const tookMs = performance.now() - started;
    t.true(tookMs < 3000, `${fixture}: start rejected after ${tookMs} ms`);
  }
  await new Promise((r) => setImmediate(r));
  t.deepEqual(
    process.getActiveResourcesInfo().filter((r) => !before.has(r) && r !== 'Immediate' && r !== 'Timeout'),
    [],
  );
});

async function waitFor<T>(probe: () => Promise<T | undefined | false>, attempts = 200, delayMs = 10): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const value = await probe();
    if (value !== undefined && value !== false) return value as T;
    await new Promise((r) => setTimeout(r, delayMs));
  }
  throw new Error(`condition not met after ${attempts} attempts`);
}
