// The router's tests, router-replicas.ts's part: replicas: one router per data-plane shard.
import test from 'ava';
import { NAME, ROUTING, ep, snapshot, delta, Script, sends, invokes } from './fixtures/router-script.js';
import { dataPlaneSandboxAddress, routerReplicaAddress, type RouterMessage } from './messages.js';
import { slotShare } from './router.js';

/** Replica `shard` of 2; the function's home is shard 0. */
const replica = (shard: number) => new Script({ shard, shards: 2, home: () => 0, dataplaneId: shard === 0 ? 'dp1' : 'dp1#1' });

test('slot shares: an even split over the shards, the remainder to the lowest ranks from home', (t) => {
  t.deepEqual([0, 1].map((rank) => slotShare(5, rank, 2)), [3, 2]);
  t.deepEqual([0, 1, 2].map((rank) => slotShare(1, rank, 3)), [1, 0, 0]);
  t.deepEqual([0, 1, 2].map((rank) => slotShare(10_000, rank, 3)), [3334, 3333, 3333]);
  t.is(slotShare(7, 0, 1), 7, 'one shard holds every slot');
});

test('the replica that hears the control plane relays every update once to the other shards', (t) => {
  const home = replica(0);
  const fx = home.step(snapshot(1, [ep('a', 5)]));
  const relayed = sends(fx, 'router');
  t.deepEqual(relayed.map((r) => r.to), [routerReplicaAddress(NAME, 1)]);
  t.like(relayed[0]?.message, { type: 'rt.snapshot', relayed: true });
  const other = replica(1);
  t.deepEqual(sends(other.step(relayed[0]!.message as RouterMessage), 'router'), [], 'a relayed copy goes no further');
  t.deepEqual(sends(home.step(delta(2, [], ['a'])), 'router').map((r) => r.message.type), ['rt.delta']);
  t.deepEqual(sends(home.step({ type: 'rt.deleted', term: 1, functionName: NAME }), 'router').map((r) => r.message.type), ['rt.deleted']);
});

test('each replica holds its share of every sandbox, in a sandbox actor on its own shard that releases to it', (t) => {
  const fx = replica(1).step(snapshot(1, [ep('a', 5)], 1, { concurrency: 5 }));
  const spawn = fx.find((e) => e.type === 'spawn');
  if (spawn?.type !== 'spawn') return t.fail('no spawn');
  t.deepEqual(spawn.address, dataPlaneSandboxAddress(NAME, 'a', 1));
  t.like(spawn.init, { endpoint: { sandboxId: 'a', concurrency: 2 }, router: routerReplicaAddress(NAME, 1) });
  const s = replica(1);
  s.step(snapshot(1, [ep('a', 5)], 1, { concurrency: 5 }));
  s.invoke();
  s.invoke();
  t.deepEqual(invokes(s.invoke().fx), [], 'the third request waits: this replica has 2 of the 5 slots');
});

test('a replica with no share (concurrency below the shard count) forwards to the home replica, which serves it', (t) => {
  const other = replica(1);
  other.step(snapshot(1, [ep('a')]));
  const { replyTo, fx } = other.invoke();
  const forwarded = sends(fx, 'router');
  t.deepEqual(forwarded.map((f) => f.to), [routerReplicaAddress(NAME, 0)]);
  t.like(forwarded[0]?.message, { type: 'rt.forwarded', replyTo });
  const home = replica(0);
  home.step(snapshot(1, [ep('a')]));
  t.deepEqual(invokes(home.step(forwarded[0]!.message as RouterMessage)), [`a#${replyTo.id} warm 0`], 'answered straight to the edge that asked the other replica');
  // Requests that waited for the set before the share was known are forwarded too.
  const unheard = replica(1);
  const early = unheard.invoke();
  const later = sends(unheard.step({ type: 'rt.resynced', snapshot: { functionName: NAME, version: 1, endpoints: [], routing: ROUTING, failure: null } }), 'router');
  t.deepEqual(later.map((f) => f.message.replyTo), [early.replyTo]);
});

test('a removal that arrives across a version gap drains a sandbox never held at once (the function waits for none)', (t) => {
  const s = replica(1);
  const fx = s.step(delta(5, [], ['x']));
  t.deepEqual(
    sends(fx, 'function').filter((m) => m.message.type === 'fn.drained').map((m) => m.message),
    [{ type: 'fn.drained', sandboxId: 'x', dataplaneId: 'dp1#1' }],
  );
});
