// The router's tests, router.ts's part: the router kind as a whole: its status, its config, its address.
import test from 'ava';
import { NAME, SELF, ep, snapshot, delta, Script } from './fixtures/router-script.js';
import { autoscalerAddress, type LoadBalancingPolicy, type RouterStatus } from './messages.js';
import { routerKind } from './router.js';

test('rt.status describes the router', (t) => {
  const s = new Script();
  s.step(snapshot(4, [ep('a'), ep('b', 2)]));
  s.invoke();
  s.invoke();
  s.step(delta(5, [], ['a']));
  s.invoke();
  s.invoke();
  const fx = s.step({ type: 'rt.status' }, { origin: 1, id: 99 });
  const status: RouterStatus = { functionName: NAME, known: true, version: 5, endpoints: 1, inFlight: 3, queued: 1, draining: 1 };
  t.deepEqual(fx.find((e) => e.type === 'reply'), { type: 'reply', to: { origin: 1, id: 99 }, value: status });
});

test('a bad config names the value and its unit', (t) => {
  t.throws(() => routerKind({ dataplaneId: 'dp1', policy: 'least-in-flight', tickMs: 0 }), { message: /tickMs .* ms, got 0/ });
  t.throws(() => routerKind({ dataplaneId: 'dp1', policy: 'fastest' as LoadBalancingPolicy }), { message: /policy must be one of .* got "fastest"/ });
});

test('the router is virtual and colocated through its address', (t) => {
  const kind = routerKind({ dataplaneId: 'dp1', policy: 'random' });
  t.is(kind.kind, 'router');
  t.true(kind.virtual);
  t.is(SELF.key, autoscalerAddress(NAME).key);
});
