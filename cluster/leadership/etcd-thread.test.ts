// The lease held by a thread of its own (etcd-thread.ts): a busy main thread keeps the leadership; a stuck one
// loses it; a partitioned leader still steps down before a successor is elected. Serial: two of these block
// the test's own main thread on purpose.
import test, { type ExecutionContext } from 'ava';
import { etcdMissingReason, sharedEtcd, stopSharedEtcd, uniquePrefix } from '../fixtures/etcd.js';
import { startTcpProxy } from '../fixtures/tcp-proxy.js';
import { ThreadedEtcdLeadership, type LeadershipEvents } from './index.js';

test.after.always(() => stopSharedEtcd());

const etcdMissing = etcdMissingReason();
if (etcdMissing) console.log(`# etcd lease-thread tests skipped: ${etcdMissing}`);
const etcdTest = etcdMissing ? test.skip : test.serial;

type Event = { type: 'elected'; term: number; at: number } | { type: 'deposed'; reason: string; at: number };

/** A replica whose events are recorded with the time they reached the main thread. */
async function replica(t: ExecutionContext, endpoint: string, prefix: string, id: string, stallMs?: number) {
  const events: Event[] = [];
  const leadership = new ThreadedEtcdLeadership({ endpoints: [endpoint], prefix, self: { id, adminUrl: `http://${id}:9091`, clusterAddress: `${id}:9090` }, ttlS: 2, stallMs });
  t.teardown(() => leadership.close());
  const handlers: LeadershipEvents = {
    elected: (term) => events.push({ type: 'elected', term, at: performance.now() }),
    deposed: (reason) => events.push({ type: 'deposed', reason, at: performance.now() }),
  };
  await leadership.start(handlers);
  const elected = () => events.filter((e): e is Extract<Event, { type: 'elected' }> => e.type === 'elected');
  const deposed = () => events.filter((e): e is Extract<Event, { type: 'deposed' }> => e.type === 'deposed');
  return { leadership, events, elected, deposed };
}

/** Polls `predicate` every 20 ms for at most `timeoutMs`. */
async function until(what: string, predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Keeps this thread busy, as a leader rebuilding 10 000 sandboxes is, for `ms`. */
function blockMainThread(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

etcdTest('a leader whose main thread is busy for longer than the lease TTL keeps the leadership; nobody else is elected', async (t) => {
  const { endpoint } = await sharedEtcd();
  const prefix = uniquePrefix('busy');
  const a = await replica(t, endpoint, prefix, 'cp1');
  await until('cp1 elected', () => a.elected().length === 1, 5000);
  const b = await replica(t, endpoint, prefix, 'cp2');
  await until('cp2 sees cp1 lead', () => b.leadership.leader()?.info.id === 'cp1', 5000);
  // 3 s: 1.5 lease TTLs, 6 keepalive periods, 150 main-thread checks missed.
  blockMainThread(3000);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.deepEqual(a.deposed(), [], 'the busy leader was not deposed');
  t.deepEqual(b.elected(), [], 'no other replica was elected');
  t.is(b.leadership.leader()?.term, a.elected()[0]!.term, 'the follower still sees the same term');
});

etcdTest('a main thread stuck for longer than stallMs loses the lease: the thread withholds keepalives, another replica leads with a higher term', async (t) => {
  const { endpoint } = await sharedEtcd();
  const prefix = uniquePrefix('stuck');
  const a = await replica(t, endpoint, prefix, 'cp1', 1000);
  await until('cp1 elected', () => a.elected().length === 1, 5000);
  const b = await replica(t, endpoint, prefix, 'cp2', 60_000);
  // Stuck for 1 s (stallMs), then 2 s of TTL and up to 0.5 s of etcd's expiry sweep, with room.
  blockMainThread(5000);
  await until('cp1 deposed', () => a.deposed().length === 1, 1000);
  await until('cp2 elected', () => b.elected().length === 1, 5000);
  t.true(b.elected()[0]!.term > a.elected()[0]!.term);
  // In this process both learn it after the block; what fences cp1 is that it stops at its first check.
  t.regex(a.deposed()[0]!.reason, /not proven|no longer leads|expired|deleted/);
});

etcdTest('a leader cut off from etcd steps down before another replica is elected, which takes a higher term', async (t) => {
  const { endpoint } = await sharedEtcd();
  const url = new URL(endpoint);
  const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
  t.teardown(() => proxy.close());
  const prefix = uniquePrefix('partition');
  const a = await replica(t, `http://${proxy.address}`, prefix, 'cp1');
  await until('cp1 elected', () => a.elected().length === 1, 5000);
  const b = await replica(t, endpoint, prefix, 'cp2');
  const cutAt = performance.now();
  proxy.cut();
  await until('cp2 elected', () => b.elected().length > 0, 8000);
  const deposed = a.deposed()[0];
  t.truthy(deposed, 'the partitioned leader stepped down');
  t.true(deposed!.at < b.elected()[0]!.at, `stepped down at +${Math.round(deposed!.at - cutAt)} ms, successor elected at +${Math.round(b.elected()[0]!.at - cutAt)} ms`);
  t.true(b.elected()[0]!.term > a.elected()[0]!.term);
  t.true(b.elected()[0]!.at - cutAt < 2000 + 1500, 'the successor leads within the TTL plus the expiry sweep');
});
