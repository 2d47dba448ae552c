import test from 'ava';
import { ActorRuntime } from './runtime.js';
import { compareActors, mergePage, type ActorQuery } from './actor-query.js';
import type { ActorStats } from './stats.js';

const kinds = { url: new URL('./fixtures/test-kinds.js', import.meta.url).href };
const quiet = () => undefined;

/** Counter c<i> gets i+1 messages (its `get` included), so `processed` orders them by i. */
async function counters(runtime: ActorRuntime, n: number): Promise<void> {
  for (let i = 0; i < n; i++) for (let k = 0; k < i; k++) runtime.tell({ kind: 'counter', id: `c${i}` }, { type: 'inc' });
  await Promise.all(Array.from({ length: n }, (_, i) => runtime.ask({ kind: 'counter', id: `c${i}` }, { type: 'get' })));
}

test.serial('the Observer view pages every shard\'s actors in one order, busiest first, each actor once', async (t) => {
  const runtime = await ActorRuntime.start({ shards: 2, modules: [kinds], onLog: quiet, counters: true });
  t.teardown(() => runtime.stop());
  const n = 60;
  await counters(runtime, n);
  await runtime.ask({ kind: 'echo', id: 'e1' }, 'x');
  const seen: string[] = [];
  for (let offset = 0; offset < n; offset += 7) {
    const page = await runtime.topActors({ kind: 'counter', sort: 'processed', offset, limit: 7 });
    t.is(page.total, n);
    seen.push(...page.items.map((a) => a.address));
  }
  t.deepEqual(seen, Array.from({ length: n }, (_, i) => `counter/c${n - 1 - i}`));
  const byName = await runtime.topActors({ sort: 'address', offset: 0, limit: 1000 });
  t.is(byName.total, n + 1);

  // Each shard also sums its actors by kind, with step times.
  const stats = await runtime.stats();
  const counterKind = stats.flatMap((s) => s.kinds).filter((k) => k.kind === 'counter');
  t.is(counterKind.reduce((a, k) => a + k.actors, 0), n);
  t.is(counterKind.reduce((a, k) => a + k.processed, 0), (n * (n + 1)) / 2);
  // Step times are sampled: every step of an actor's first 32, then one in 32 (runtime/host.ts).
  const sampled = Array.from({ length: n }, (_, i) => Array.from({ length: i + 1 }, (_, k) => k < 32 || k % 32 === 0).filter(Boolean).length).reduce((a, b) => a + b, 0);
  t.is(counterKind.reduce((a, k) => a + k.histogram.count, 0), sampled);
  t.true(stats.every((s) => s.counters && s.shards === 2));

  // One actor by the name and shard a listing gives, with its state in one line.
  const top = (await runtime.topActors({ kind: 'counter', sort: 'processed', offset: 0, limit: 1 })).items[0]!;
  const inspected = await runtime.inspectName(top.shard, top.address);
  t.is(inspected.stats.processed, n);
  t.deepEqual(inspected.state, { count: n - 1 });
  t.is(inspected.line, `count=${n - 1}`);
  t.true(inspected.stats.p50Us >= 1 && inspected.stats.p50Us <= inspected.stats.p99Us);
  const missing = await t.throwsAsync(runtime.inspectName(top.shard, 'counter/nobody'));
  t.is((missing as { code?: string }).code, 'NO_SUCH_ACTOR');
  await t.throwsAsync(runtime.inspectName(7, top.address), { message: /shard must be an integer in 0..1/ });
});

test.serial('with the counters off, steps are not timed but processed, mailbox and restarts still count; they can be turned on live', async (t) => {
  const runtime = await ActorRuntime.start({ shards: 1, modules: [kinds], onLog: quiet, counters: false });
  t.teardown(() => runtime.stop());
  await counters(runtime, 5);
  const [shard] = await runtime.stats();
  t.false(shard!.counters);
  t.is(shard!.histogram.count, 0);
  t.is(shard!.processed, 15);
  const page = await runtime.topActors({ sort: 'processed', offset: 0, limit: 2 });
  t.deepEqual(page.items.map((a) => [a.address, a.processed, a.p99Us]), [
    ['counter/c4', 5, 0],
    ['counter/c3', 4, 0],
  ]);
  // Turned on while running: the steps from then on are timed.
  await runtime.setCounters(true);
  await counters(runtime, 2);
  const [after] = await runtime.stats();
  t.true(after!.counters);
  t.is(after!.histogram.count, 3);
});

test.serial('a watched actor keeps its recent messages, only while watched, at most 50', async (t) => {
  const runtime = await ActorRuntime.start({ shards: 1, modules: [kinds], onLog: quiet, manualClock: 1_000 });
  t.teardown(() => runtime.stop());
  const actor = { kind: 'counter', id: 'w' };
  await runtime.ask(actor, { type: 'get' });
  t.is((await runtime.inspectName(0, 'counter/w')).recent, undefined, 'nothing kept before anyone looks');
  t.deepEqual((await runtime.inspectName(0, 'counter/w', 10_000)).recent, []);
  for (let i = 0; i < 60; i++) runtime.tell(actor, { type: 'inc', by: i });
  await runtime.ask(actor, { type: 'get' });
  const recent = (await runtime.inspectName(0, 'counter/w')).recent!;
  t.is(recent.length, 50);
  t.deepEqual(recent.slice(0, 2).map((m) => m.message), ['inc by=11', 'inc by=12']);
  t.is(recent[49]!.message, 'get');
  t.is(recent[49]!.at, 1_000);
  // The watch lapses 10 s (manual time) after it was last renewed: the next message ends it.
  await runtime.advance(10_001);
  runtime.tell(actor, { type: 'inc' });
  await runtime.ask(actor, { type: 'get' });
  t.is((await runtime.inspectName(0, 'counter/w')).recent, undefined);
});

test.serial('10 000 actors: any page of any order answers with one page, exact at the far end', async (t) => {
  const runtime = await ActorRuntime.start({ shards: 2, modules: [kinds], onLog: quiet });
  t.teardown(() => runtime.stop());
  const n = 10_000;
  // Counter c<i> processes (i % 7) + 1 messages: many ties, broken by name.
  for (let i = 0; i < n; i++) for (let k = 0; k < i % 7; k++) runtime.tell({ kind: 'counter', id: `c${i}` }, { type: 'inc' });
  for (let start = 0; start < n; start += 1000) await Promise.all(Array.from({ length: 1000 }, (_, j) => runtime.ask({ kind: 'counter', id: `c${start + j}` }, { type: 'get' }, 30_000)));
  const expected = Array.from({ length: n }, (_, i) => ({ address: `counter/c${i}`, processed: (i % 7) + 1 })).sort((a, b) => b.processed - a.processed || (a.address < b.address ? -1 : 1));
  for (const offset of [0, 4321, n - 50]) {
    const started = performance.now();
    const page = await runtime.topActors({ kind: 'counter', sort: 'processed', offset, limit: 50 });
    t.log(`page at ${offset} of ${n}: ${Math.round(performance.now() - started)} ms`);
    t.is(page.total, n);
    t.deepEqual(page.items.map((a) => a.address), expected.slice(offset, offset + 50).map((a) => a.address));
  }
});

test('merging shards\' heads gives the exact page, ties broken by address, process and shard', (t) => {
  const actor = (address: string, mailbox: number, shard: number, process?: string): ActorStats => ({
    address, kind: 'k', mailbox, processed: 0, restarts: 0, meanUs: 0, p50Us: 0, p90Us: 0, p99Us: 0, lastActiveAt: 0, shard, ...(process ? { process } : {}),
  });
  const query: ActorQuery = { sort: 'mailbox', offset: 1, limit: 2 };
  const page = mergePage(
    [
      { total: 3, items: [actor('a', 9, 0), actor('b', 5, 0), actor('c', 5, 0)] },
      { total: 2, items: [actor('b', 5, 1, 'dataplane:dp1'), actor('b', 5, 1)] },
    ],
    query,
  );
  t.is(page.total, 5);
  t.deepEqual(page.items.map((a) => `${a.address}:${a.process ?? ''}:${a.shard}`), ['b::0', 'b::1']);
  t.true(compareActors('address')(actor('a', 0, 1), actor('a', 0, 0)) > 0);
});
