// The router's tests, router-policies.ts's part: the load-balancing policies.
import test from 'ava';
import { ep, snapshot, released, Script, sends } from './fixtures/router-script.js';
import type { Endpoint, LoadBalancingPolicy } from './messages.js';

/** Runs `steps` (invocations `+`, or releases `-id`) and returns the sandbox chosen for each invocation. */
function choices(policy: LoadBalancingPolicy, endpoints: Endpoint[], steps: string[], randoms: number[] = []): string[] {
  const s = new Script({ policy });
  s.randoms = [...randoms];
  s.step(snapshot(1, endpoints));
  const chosen: string[] = [];
  for (const item of steps) {
    if (item === '+') chosen.push(sends(s.invoke().fx, 'dpsandbox')[0]?.to.id ?? 'queued');
    else s.step(released(item.slice(1)));
  }
  return chosen;
}

test('least-in-flight takes the sandbox with fewest requests, ties in id order', (t) => {
  const three = [ep('c', 2), ep('a', 2), ep('b', 2)];
  t.deepEqual(choices('least-in-flight', three, ['+', '+', '+', '+', '-b', '+', '+', '+', '+']), ['a', 'b', 'c', 'a', 'b', 'b', 'c', 'queued']);
});

test('random draws from the free sandboxes with ctx.random', (t) => {
  const three = [ep('a'), ep('b'), ep('c')];
  t.deepEqual(choices('random', three, ['+', '+', '+', '+'], [0.7, 0.99, 0.2]), ['c', 'b', 'a', 'queued']);
});

test('round-robin walks the id order, skipping full sandboxes and wrapping', (t) => {
  const three = [ep('c'), ep('a'), ep('b')];
  t.deepEqual(choices('round-robin', three, ['+', '+', '-a', '+', '-b', '-c', '+', '+']), ['a', 'b', 'c', 'a', 'b']);
  const roomy = [ep('a', 3), ep('b', 3)];
  t.deepEqual(choices('round-robin', roomy, ['+', '+', '+', '+']), ['a', 'b', 'a', 'b'], 'it rotates even when the last one has room');
});

test('power-of-two draws two distinct free sandboxes and takes the less loaded', (t) => {
  const three = [ep('a', 3), ep('b', 3), ep('c', 3)];
  // Draws (first, second): (a, c) tie -> a, the first drawn; (a, b) -> b; (c, a) -> c.
  t.deepEqual(choices('power-of-two', three, ['+', '+', '+'], [0, 0.9, 0, 0, 0.9, 0]), ['a', 'b', 'c']);
  // (a, b) tie -> a; (a, b) -> b; (b, a) tie -> b; (a, b) -> a, as b is full; then both are full.
  t.deepEqual(choices('power-of-two', [ep('a', 2), ep('b', 2)], ['+', '+', '+', '+', '+'], [0, 0, 0, 0, 0.5, 0]), ['a', 'b', 'b', 'a', 'queued']);
});
