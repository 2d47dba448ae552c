// The router's tests, router-queue.ts's part: requests and the queue: cold starts, limits, deadlines, failed functions.
import test from 'ava';
import type { Effect } from './actor.js';
import { NAME, ROUTING, ep, snapshot, delta, released, Script, invokes, replies, toAutoscaler, timers } from './fixtures/router-script.js';
import type { Endpoint, InvocationOutcome, RouterMessage } from './messages.js';
import { BACKLOG_TIMER, EXPIRE_TIMER, TICK_TIMER, routerTotals } from './router.js';

test('waiting requests drain in FIFO order onto a new endpoint as cold starts, with their queue time', (t) => {
  const s = new Script();
  s.step(snapshot(1, []));
  const first = s.invoke();
  t.deepEqual(timers(first.fx), [`${BACKLOG_TIMER} +0`, `${TICK_TIMER} +2000`, `${EXPIRE_TIMER} +1000`]);
  s.now = 100;
  const second = s.invoke();
  t.deepEqual(timers(second.fx), [], 'the backlog report is already pending; the deadline timer is the oldest request\'s');
  s.now = 250;
  const fx = s.step(delta(2, [ep('a', 2)]));
  t.deepEqual(invokes(fx), [`a#${first.replyTo.id} cold 250`, `a#${second.replyTo.id} cold 150`]);
  t.deepEqual(timers(fx), [`${EXPIRE_TIMER} cancel`]);
  t.is(s.state.queue.length, 0);
});

test('a request that gets a slot freed on a warm sandbox is no cold start, but reports its queue time', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a')]));
  s.invoke();
  const waiting = s.invoke();
  t.deepEqual(invokes(waiting.fx), []);
  s.now = 40;
  t.deepEqual(invokes(s.step(released('a'))), [`a#${waiting.replyTo.id} warm 40`]);
});

test('a release of several requests frees that many slots: that many waiting requests go out, oldest first', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a', 3)]));
  s.invoke();
  s.invoke();
  s.invoke();
  const waiting = [s.invoke(), s.invoke(), s.invoke()];
  t.is(s.state.queue.length, 3);
  t.deepEqual(invokes(s.step(released('a', false, 2))), waiting.slice(0, 2).map((w) => `a#${w.replyTo.id} warm 0`));
  t.is(s.state.queue.length, 1);
});

test('a full queue answers 429 QUEUE_FULL and a large body 413 at once', (t) => {
  const s = new Script();
  s.step(snapshot(1, []));
  for (let i = 0; i < 3; i += 1) t.deepEqual(replies(s.invoke().fx), []);
  const full = s.invoke();
  t.deepEqual(replies(full.fx), [`#${full.replyTo.id} 429 QUEUE_FULL 0`]);
  const large = s.invoke(101);
  t.deepEqual(replies(large.fx), [`#${large.replyTo.id} 413 BODY_TOO_LARGE 0`]);
  t.is(s.state.queue.length, 3);
  t.deepEqual(replies(s.invoke(100).fx), [`#${large.replyTo.id + 1} 429 QUEUE_FULL 0`], 'a body of exactly the limit is fine');
});

test('past its deadline a waiting request gets 504 (it waited for a cold start), or 503 when the function is at max scale (it waited for a slot)', (t) => {
  for (const [maxScale, expected] of [
    [4, '504 DEADLINE_PASSED'],
    [1, '503 NO_CAPACITY'],
  ] as const) {
    const cold = maxScale === 4 ? ' cold' : '';
    const s = new Script();
    s.step(snapshot(1, [ep('a')], 1, { maxScale }));
    s.invoke();
    const late = s.invoke();
    t.deepEqual(timers(late.fx), [`${BACKLOG_TIMER} +0`, `${EXPIRE_TIMER} +1000`]);
    s.now = 600;
    const later = s.invoke();
    s.now = 1000;
    const fx = s.step({ type: 'rt.expire' });
    t.deepEqual(replies(fx), [`#${late.replyTo.id} ${expected} 1000${cold}`], `maxScale ${maxScale}`);
    t.deepEqual(timers(fx), [`${EXPIRE_TIMER} +600`], 'the next deadline is armed');
    s.now = 1600;
    t.deepEqual(replies(s.step({ type: 'rt.expire' })), [`#${later.replyTo.id} ${expected} 1000${cold}`]);
    t.is(s.state.queue.length, 0);
  }
});

const failing = (version: number, endpoints: Endpoint[], failure: string | null): RouterMessage => ({
  type: 'rt.snapshot',
  term: 1,
  snapshot: { functionName: NAME, version, endpoints, routing: ROUTING, failure },
});

const messages = (fx: Effect<RouterMessage>[]): string[] => fx.flatMap((e) => (e.type === 'reply' && !(e.value as InvocationOutcome).ok ? [(e.value as { message: string }).message] : []));

test('a function that cannot start: waiting and new requests get 503 FUNCTION_FAILED with the cause at once, and still count as demand', (t) => {
  const s = new Script();
  s.step(snapshot(1, []));
  const waiting = s.invoke();
  t.deepEqual(replies(waiting.fx), [], 'waits for a sandbox');
  s.now = 150;
  const failed = s.step(failing(2, [], 'function f (version 1) cannot start: SyntaxError: Unexpected token'));
  t.deepEqual(replies(failed), [`#${waiting.replyTo.id} 503 FUNCTION_FAILED 150`], 'answered at once, not at its deadline');
  t.deepEqual(messages(failed), ['function f (version 1) cannot start: SyntaxError: Unexpected token']);
  t.deepEqual(timers(failed), [`${EXPIRE_TIMER} cancel`]);
  s.now = 300;
  const fresh = s.invoke();
  t.deepEqual(replies(fresh.fx), [`#${fresh.replyTo.id} 503 FUNCTION_FAILED 0`]);
  t.is(s.state.queue.length, 0);
  s.now = 2000;
  t.deepEqual(toAutoscaler(s.step({ type: 'rt.tick' })), ['as.metric dp1 inFlight=0 queued=1'], 'the turned-away requests are demand');
  s.now = 2100;
  s.invoke();
  s.now = 4000;
  t.deepEqual(toAutoscaler(s.step({ type: 'rt.tick' })), ['as.metric dp1 inFlight=0 queued=1'], 'for as long as they come');
  t.is(routerTotals(s.state).rejected['503'], 3);

  // It starts again: requests wait for (and get) a sandbox as before.
  s.step(failing(3, [], null));
  const queued = s.invoke();
  t.deepEqual(replies(queued.fx), []);
  t.deepEqual(invokes(s.step(delta(4, [ep('a')]))), [`a#${queued.replyTo.id} cold 0`]);
});

test('with sandboxes serving (an older version in a failed rollout), requests wait for their slots; when none is left, 503 at once', (t) => {
  const s = new Script();
  s.step(failing(1, [ep('a')], 'function f (version 2) cannot start: exit 1'));
  const first = s.invoke();
  t.deepEqual(invokes(first.fx), [`a#${first.replyTo.id} warm 0`]);
  const second = s.invoke();
  t.deepEqual(replies(second.fx), [], 'queued behind the busy sandbox');
  const removed = s.step(delta(2, [], ['a']));
  t.deepEqual(replies(removed), [`#${second.replyTo.id} 503 FUNCTION_FAILED 0`]);
});
