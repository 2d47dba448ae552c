import test, { type ExecutionContext } from 'ava';
import { Etcd3 } from 'etcd3';
import { etcdMissingReason, sharedEtcd, stopSharedEtcd, uniquePrefix } from '../fixtures/etcd.js';
import { startTcpProxy } from '../fixtures/tcp-proxy.js';
import { etcdClientOptions, MemoryStore } from '../store/index.js';
import { EtcdLeadership, SingleLeadership, type LeaderView, type LeadershipEvents } from './index.js';

test.after.always(() => stopSharedEtcd());

const etcdMissing = etcdMissingReason();
if (etcdMissing) console.log(`# etcd leadership tests skipped: ${etcdMissing}`);
const etcdTest = etcdMissing ? test.skip : test;

/** Every event a replica saw, stamped with the monotonic time it arrived. */
function recorder() {
  const events: { type: 'elected' | 'deposed'; term?: number; reason?: string; at: number }[] = [];
  const waiters: (() => void)[] = [];
  const handlers: LeadershipEvents & { leader?: LeaderView } = {
    elected: (term) => {
      events.push({ type: 'elected', term, at: performance.now() });
      waiters.splice(0).forEach((wake) => wake());
    },
    deposed: (reason) => {
      events.push({ type: 'deposed', reason, at: performance.now() });
      waiters.splice(0).forEach((wake) => wake());
    },
  };
  /** Resolves once `predicate` holds, or rejects after `timeoutMs`. */
  const until = (predicate: () => boolean, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`condition not met within ${timeoutMs} ms: ${JSON.stringify(events)}`)), timeoutMs);
      const check = () => {
        if (predicate()) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  return { events, handlers, until, elected: () => events.filter((e) => e.type === 'elected') };
}

function replica(t: ExecutionContext, endpoint: string, prefix: string, id: string) {
  const client = new Etcd3(etcdClientOptions([endpoint]));
  const leadership = new EtcdLeadership({ client, prefix, self: { id, adminUrl: `http://${id}:9091`, clusterAddress: `${id}:9090` }, ttlS: 2 });
  t.teardown(async () => {
    await leadership.close();
    client.close();
  });
  return leadership;
}

test('single: always leader; each start takes the next term from its store', async (t) => {
  const store = new MemoryStore();
  const self = { id: 'cp', adminUrl: 'http://127.0.0.1:9091', clusterAddress: '127.0.0.1:9090' };
  for (const expected of [1, 2, 3]) {
    const r = recorder();
    const leadership = new SingleLeadership(store, self);
    await leadership.start(r.handlers);
    t.deepEqual(r.elected().map((e) => e.term), [expected]);
    t.deepEqual(leadership.leader(), { info: self, term: expected });
    await leadership.close();
  }
});

etcdTest('etcd: of three replicas exactly one leads; followers see it; when it resigns another leads at once with a higher term', async (t) => {
  const { endpoint } = await sharedEtcd();
  const prefix = uniquePrefix('election');
  const ids = ['cp1', 'cp2', 'cp3'];
  const recorders = ids.map(() => recorder());
  const leaderships = ids.map((id) => replica(t, endpoint, prefix, id));
  await Promise.all(leaderships.map((l, i) => l.start(recorders[i]!.handlers)));
  const firstIndex = recorders.findIndex((r) => r.elected().length === 1);
  t.true(firstIndex >= 0);
  t.is(recorders.filter((r) => r.elected().length > 0).length, 1, 'exactly one leader');
  const firstTerm = recorders[firstIndex]!.elected()[0]!.term!;
  for (const l of leaderships) t.deepEqual(l.leader()?.info.id ?? (await waitForView(l)), ids[firstIndex]);

  const resignedAt = performance.now();
  await leaderships[firstIndex]!.close();
  const others = recorders.filter((_, i) => i !== firstIndex);
  await Promise.race(others.map((r) => r.until(() => r.elected().length > 0, 5000)));
  const next = others.find((r) => r.elected().length > 0)!;
  const nextTerm = next.elected()[0]!.term!;
  t.true(nextTerm > firstTerm, `term ${nextTerm} > ${firstTerm}`);
  t.true(next.elected()[0]!.at - resignedAt < 1000, 'a resignation hands over without waiting for the lease');
  t.is(others.filter((r) => r.elected().length > 0).length, 1);
});

async function waitForView(leadership: EtcdLeadership): Promise<string | undefined> {
  for (let i = 0; i < 50 && leadership.leader() === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  return leadership.leader()?.info.id;
}

etcdTest('etcd: a leader cut off from etcd steps down before another replica is elected, which takes a higher term', async (t) => {
  const { endpoint } = await sharedEtcd();
  const url = new URL(endpoint);
  const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
  t.teardown(() => proxy.close());
  const prefix = uniquePrefix('partition');
  const a = recorder();
  const b = recorder();
  const partitioned = replica(t, `http://${proxy.address}`, prefix, 'cp1');
  await partitioned.start(a.handlers);
  t.is(a.elected().length, 1, 'the first replica leads');
  const follower = replica(t, endpoint, prefix, 'cp2');
  await follower.start(b.handlers);
  t.is(b.elected().length, 0);

  const cutAt = performance.now();
  proxy.cut();
  await b.until(() => b.elected().length > 0, 8000);
  const deposed = a.events.find((e) => e.type === 'deposed');
  t.truthy(deposed, 'the partitioned leader stepped down');
  t.true(deposed!.at < b.elected()[0]!.at, `stepped down at +${Math.round(deposed!.at - cutAt)} ms, successor elected at +${Math.round(b.elected()[0]!.at - cutAt)} ms`);
  t.true(b.elected()[0]!.term! > a.elected()[0]!.term!);
  t.true(b.elected()[0]!.at - cutAt < 2000 + 1500, 'the successor leads within the TTL plus the expiry sweep');
});
