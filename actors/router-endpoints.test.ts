// The router's tests, router-endpoints.ts's part: the endpoint set (snapshots, deltas, terms and resyncs),
// draining, and functions the router has not heard of.
import test from 'ava';
import type { AskResult, Effect, ReplyTo } from './actor.js';
import type { DataPlaneSandboxInit } from './dp-sandbox.js';
import { NAME, ROUTING, ep, snapshot, delta, released, Script, sends, invokes, closes, drainedIds, spawned, replies, toAutoscaler, asks, timers, stops, backlogTimers, BACKLOG_SCHEDULE } from './fixtures/router-script.js';
import { dataPlaneSandboxAddress, functionAddress, routerAddress, type RouterMessage } from './messages.js';
import { BACKLOG_TIMER, EXPIRE_TIMER, LOOKUP_PATIENCE_MS, LOOKUP_RETRY_MS, LOOKUP_TIMER, TICK_TIMER } from './router.js';

test('a snapshot spawns one sandbox actor per endpoint and a warm request goes straight to one', (t) => {
  const s = new Script();
  const fx = s.step(snapshot(1, [ep('b'), ep('a')]));
  const spawns = fx.flatMap((e) => (e.type === 'spawn' ? [e] : []));
  t.deepEqual(
    spawns.map((e) => e.address),
    [dataPlaneSandboxAddress(NAME, 'b'), dataPlaneSandboxAddress(NAME, 'a')],
  );
  const init: DataPlaneSandboxInit = { functionName: NAME, endpoint: ep('b'), timeoutMs: 5000, router: routerAddress(NAME) };
  t.deepEqual(spawns[0]?.init, init);
  t.deepEqual(s.ids(), ['a:serving:0', 'b:serving:0'], 'kept in id order');

  const { replyTo, fx: invoked } = s.invoke();
  t.deepEqual(invokes(invoked), [`a#${replyTo.id} warm 0`]);
  t.deepEqual(replies(invoked), [], 'the sandbox actor answers, not the router');
  t.deepEqual(timers(invoked), [`${TICK_TIMER} +2000`]);
  t.deepEqual(s.ids(), ['a:serving:1', 'b:serving:0']);
});

test('a delta applies only on top of version - 1; older ones are ignored; a gap asks for a snapshot', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a')]));
  t.deepEqual(spawned(s.step(delta(2, [ep('b')]))), ['b']);
  t.deepEqual(s.step(delta(2, [ep('c')])), [], 'a repeated version changes nothing');
  t.deepEqual(s.step(delta(1, [], ['a'])), [], 'an older version changes nothing');

  const gap = s.step(delta(4, [ep('d')]));
  t.deepEqual(spawned(gap), [], 'a delta past a gap is not applied');
  const [ask] = asks(gap);
  t.deepEqual(ask?.to, functionAddress(NAME));
  t.deepEqual(ask?.message, { type: 'fn.getEndpoints' });
  t.is(ask?.timeoutMs, 5000);
  t.deepEqual(asks(s.step(delta(5, []))), [], 'one ask at a time');

  const resynced = ask!.then({ ok: true, value: { functionName: NAME, version: 5, endpoints: [ep('a'), ep('b'), ep('d')], routing: ROUTING } });
  const applied = s.step(resynced);
  t.deepEqual(spawned(applied), ['d']);
  t.is(asks(applied).length, 1, 'a gap seen while asking asks once more');
  t.deepEqual(s.state.phase, { kind: 'known', term: 1, version: 5, routing: ROUTING, failure: null });
  t.deepEqual(s.ids(), ['a:serving:0', 'b:serving:0', 'd:serving:0']);
  t.deepEqual(spawned(s.step(delta(6, [ep('e')]))), ['e'], 'deltas apply again after the resync');
});

test('updates of an older term are ignored; a newer term replaces the set even with a lower version', (t) => {
  const s = new Script();
  s.step(snapshot(10, [ep('a')], 2));
  for (const old of [snapshot(11, [ep('b')], 1), delta(11, [ep('b')], [], 1), { type: 'rt.deleted', term: 1, functionName: NAME } as RouterMessage]) {
    const fx = s.step(old);
    t.deepEqual(
      fx.map((e) => e.type),
      ['log'],
      `${old.type} of term 1 only logs`,
    );
  }
  t.deepEqual(s.step(snapshot(9, [ep('b')], 2)).map((e) => e.type), ['log'], 'a snapshot older than the set held is ignored');
  t.deepEqual(s.ids(), ['a:serving:0']);

  const fx = s.step(snapshot(1, [ep('b')], 3));
  t.deepEqual(spawned(fx), ['b']);
  t.deepEqual(drainedIds(fx), ['a@dp1'], 'an idle sandbox missing from a snapshot drains at once');
  t.deepEqual(closes(fx), ['a']);
  t.deepEqual(s.state.phase, { kind: 'known', term: 3, version: 1, routing: ROUTING, failure: null });
});

test('a delta of a new term is not applied on top of the old numbering: it resyncs', (t) => {
  const s = new Script();
  s.step(snapshot(7, [ep('a')], 1));
  const fx = s.step(delta(8, [ep('b')], [], 2));
  t.deepEqual(spawned(fx), []);
  const [ask] = asks(fx);
  t.truthy(ask);
  t.is(s.state.highestTerm, 2);
  // The new leader numbers from 1: the reply counts as of term 2, so it replaces version 7 of term 1.
  s.step(ask!.then({ ok: true, value: { functionName: NAME, version: 2, endpoints: [ep('a'), ep('b')], routing: ROUTING } }));
  t.deepEqual(s.state.phase, { kind: 'known', term: 2, version: 2, routing: ROUTING, failure: null });
  t.deepEqual(s.ids(), ['a:serving:0', 'b:serving:0']);
});

test('a set looked up before any update takes the term of the first delta that continues it', (t) => {
  const s = new Script();
  const [ask] = asks(s.invoke().fx);
  s.step(ask!.then({ ok: true, value: { functionName: NAME, version: 4, endpoints: [], routing: ROUTING } }));
  t.is(s.state.phase.kind === 'known' ? s.state.phase.term : -1, 0);
  const fx = s.step(delta(5, [ep('a')], [], 3));
  t.deepEqual(asks(fx), [], 'no second lookup on the cold-start path');
  t.deepEqual(spawned(fx), ['a']);
  t.is(invokes(fx).length, 1);
  t.deepEqual(s.state.phase, { kind: 'known', term: 3, version: 5, routing: ROUTING, failure: null });
});

test('repeated adds never duplicate an endpoint', (t) => {
  const s = new Script();
  t.deepEqual(spawned(s.step(snapshot(1, [ep('a'), ep('a')]))), ['a']);
  t.deepEqual(spawned(s.step(delta(2, [ep('a'), ep('b'), ep('b')]))), ['b']);
  t.deepEqual(spawned(s.step(snapshot(3, [ep('b'), ep('a')]))), []);
  t.deepEqual(s.ids(), ['a:serving:0', 'b:serving:0']);
});

test('a removed sandbox gets no new request, and drains: fn.drained and sb.close once its in-flight is 0', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a', 2), ep('b', 2)]));
  s.invoke();
  s.invoke();
  const removed = s.step(delta(2, [], ['a']));
  t.deepEqual([...drainedIds(removed), ...closes(removed)], [], 'a request is still in flight on a');
  t.deepEqual(s.ids(), ['a:draining:1', 'b:serving:1']);
  t.deepEqual(invokes(s.invoke().fx).map((line) => line.split('#')[0]), ['b'], 'a tie, but a is draining');
  const fx = s.step(released('a'));
  t.deepEqual(drainedIds(fx), ['a@dp1']);
  t.deepEqual(sends(fx, 'function')[0]?.to, functionAddress(NAME));
  t.deepEqual(closes(fx), ['a']);
  t.deepEqual(s.ids(), ['b:serving:2'], 'forgotten once drained');
  const unknown = s.step(delta(3, [], ['zz']));
  t.deepEqual(drainedIds(unknown), ['zz@dp1'], 'nothing in flight on a sandbox this router never knew');
  t.deepEqual(s.step(released('a')), [], 'a late release of a forgotten sandbox is ignored');
});

test('a re-listed draining sandbox serves again, without a second actor', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a', 2)]));
  s.invoke();
  s.step(delta(2, [], ['a']));
  const fx = s.step(delta(3, [ep('a', 2)]));
  t.deepEqual(spawned(fx), []);
  t.deepEqual(s.ids(), ['a:serving:1']);
});

test('a failed release drops the sandbox from routing and closes its actor; it stays out until removed', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a'), ep('b')]));
  const first = s.invoke();
  t.deepEqual(invokes(first.fx), [`a#${first.replyTo.id} warm 0`]);
  const fx = s.step(released('a', true));
  t.deepEqual(closes(fx), ['a']);
  t.deepEqual(s.ids(), ['a:broken:0', 'b:serving:0']);
  t.deepEqual(invokes(s.invoke().fx).map((line) => line.split('#')[0]), ['b']);
  t.deepEqual(invokes(s.invoke().fx), [], 'a is not used again: the request waits');
  t.deepEqual(spawned(s.step(snapshot(2, [ep('a'), ep('b')]))), [], 'still listed: still out, no new actor');
  t.deepEqual(s.ids(), ['a:broken:0', 'b:serving:1']);
  const removed = s.step(delta(3, [], ['a']));
  t.deepEqual(drainedIds(removed), ['a@dp1']);
  t.deepEqual(closes(removed), [], 'closed once only');
  t.deepEqual(s.ids(), ['b:serving:1']);
});

test('rt.deleted answers waiting requests 404, closes every sandbox actor and stops', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a'), ep('b')]));
  s.invoke();
  s.invoke();
  s.step(released('b', true));
  const waiting = s.invoke();
  s.now = 30;
  const fx = s.step({ type: 'rt.deleted', term: 1, functionName: NAME });
  t.deepEqual(replies(fx), [`#${waiting.replyTo.id} 404 UNKNOWN_FUNCTION 30`]);
  t.deepEqual(closes(fx), ['a'], 'b was closed when it broke');
  t.true(stops(fx));
});

function lookup(result: AskResult): { s: Script; fx: Effect<RouterMessage>[]; asked: ReplyTo[] } {
  const s = new Script();
  const first = s.invoke();
  const [ask] = asks(first.fx);
  must(ask !== undefined, 'the first request asks the function actor');
  const second = s.invoke();
  must(asks(second.fx).length === 0, 'one ask for all waiting requests');
  must(backlogTimers([...first.fx, ...second.fx]).length === 0, 'no backlog report while the function is unheard of');
  must(toAutoscaler([...first.fx, ...second.fx]).length === 0, 'nothing to the autoscaler while the function is unheard of');
  s.now = 20;
  return { s, fx: s.step(ask.then(result)), asked: [first.replyTo, second.replyTo] };
}

function must(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(what);
}

test('a function that does not exist answers every waiting request 404, and the router stops', (t) => {
  for (const result of [{ ok: false, error: { code: 'NO_SUCH_ACTOR', message: 'no actor function:f' } }, { ok: true, value: null }] as AskResult[]) {
    const { fx, asked } = lookup(result);
    t.deepEqual(replies(fx), asked.map((r) => `#${r.id} 404 UNKNOWN_FUNCTION 20`));
    t.deepEqual(toAutoscaler(fx), [], 'no autoscaler for a function that does not exist');
    t.deepEqual(timers(fx), [], 'no backlog report (nor any other timer) is left behind');
    t.true(stops(fx));
  }
});

test('a router that looked its function up takes the leader\'s term from the reply, and then refuses an older leader\'s late updates', (t) => {
  const { s } = lookup({ ok: true, value: { functionName: NAME, version: 4, endpoints: [ep('a'), ep('b')], routing: ROUTING, term: 2 } });
  t.is(s.state.highestTerm, 2);
  t.like(s.state.phase, { kind: 'known', term: 2, version: 4 });
  s.step(snapshot(9, [], 1));
  s.step(delta(5, [], ['a'], 1));
  t.deepEqual(s.ids(), ['a:serving:1', 'b:serving:1'], 'the old leader\'s snapshot and delta change nothing (each still serves a request that waited)');
});

test('a router that has not heard of its function tells the autoscaler nothing, even if rt.backlog arrives', (t) => {
  const s = new Script();
  const first = s.invoke();
  const second = s.invoke();
  t.is(s.state.queue.length, 2);
  t.deepEqual(backlogTimers([...first.fx, ...second.fx]), [], 'waiting for the lookup schedules no report');
  t.false(s.state.backlogPending);
  const stray = s.step({ type: 'rt.backlog' });
  t.deepEqual(toAutoscaler(stray), []);
  t.deepEqual(timers(stray), []);
  t.false(stops(stray), 'still asking for its waiting requests');
  t.is(s.state.queue.length, 2);
  t.true(stops(new Script().step({ type: 'rt.backlog' })), 'an idle router of an unheard function stops');
});

test('a failed lookup (no leader reachable) is tried again every LOOKUP_RETRY_MS; the requests are served once it answers', (t) => {
  const { s, fx, asked } = lookup({ ok: false, error: { code: 'PEER_UNAVAILABLE', message: 'no connected process hosts function:f' } });
  t.deepEqual(replies(fx), [], 'nobody is answered yet');
  t.deepEqual(timers(fx), [`${LOOKUP_TIMER} +${LOOKUP_RETRY_MS}`]);
  t.false(stops(fx));
  s.now = 20 + LOOKUP_RETRY_MS;
  const [again] = asks(s.step({ type: 'rt.lookup' }));
  must(again !== undefined, 'the timer asks again');
  const served = s.step(again.then({ ok: true, value: { functionName: NAME, version: 1, endpoints: [ep('a'), ep('b')], routing: ROUTING, term: 3 } }));
  t.is(invokes(served).length, asked.length, 'every waiting request dispatched');
});

test('a lookup that keeps failing answers 503 once the oldest request waited LOOKUP_PATIENCE_MS, and the router stops', (t) => {
  const { s, asked } = lookup({ ok: false, error: { code: 'ASK_TIMEOUT', message: 'no reply' } });
  let fx: Effect<RouterMessage>[] = [];
  for (let at = 20 + LOOKUP_RETRY_MS; fx.length === 0 || !stops(fx); at += LOOKUP_RETRY_MS) {
    s.now = at;
    const [ask] = asks(s.step({ type: 'rt.lookup' }));
    must(ask !== undefined && at < LOOKUP_PATIENCE_MS + 1000, 'asks until its patience runs out');
    fx = s.step(ask.then({ ok: false, error: { code: 'ASK_TIMEOUT', message: 'no reply' } }));
  }
  t.deepEqual(replies(fx), asked.map((r) => `#${r.id} 503 NO_CAPACITY ${s.now}`));
  t.true(s.now >= LOOKUP_PATIENCE_MS - LOOKUP_RETRY_MS);
  t.deepEqual(toAutoscaler(fx), []);
  t.deepEqual(timers(fx), []);
});

test('requests that waited for the lookup get the function limits, then the warm sandboxes', (t) => {
  const s = new Script();
  const asked = [s.invoke(), s.invoke(500), s.invoke(), s.invoke(), s.invoke(), s.invoke()].map((r) => ({ id: r.replyTo.id, ask: asks(r.fx)[0] }));
  t.deepEqual(s.state.sandboxes, []);
  s.now = 20;
  const fx = s.step(asked[0]!.ask!.then({ ok: true, value: { functionName: NAME, version: 1, endpoints: [ep('a')], routing: ROUTING } }));
  t.deepEqual(replies(fx), [`#${asked[1]!.id} 413 BODY_TOO_LARGE 20`, `#${asked[5]!.id} 429 QUEUE_FULL 20`]);
  t.deepEqual(invokes(fx), [`a#${asked[0]!.id} warm 20`], 'the sandbox was there before: no cold start');
  t.is(s.state.queue.length, 3);
  t.deepEqual(toAutoscaler(fx), [], 'the backlog is reported by the timer, not by the lookup step');
  t.deepEqual(backlogTimers(fx), [BACKLOG_SCHEDULE]);
  t.deepEqual(timers(fx), [`${BACKLOG_TIMER} +0`, `${TICK_TIMER} +2000`, `${EXPIRE_TIMER} +980`], 'deadlines count from arrival');
  t.deepEqual(toAutoscaler(s.step({ type: 'rt.backlog' })), ['as.backlog dp1 inFlight=1 queued=3'], 'everything that waited for the lookup, in one report');
});

test('an update for a function never heard of asks for the full set; a router with nothing to do stops', (t) => {
  const s = new Script();
  const fx = s.step(delta(3, [ep('a')]));
  t.deepEqual(spawned(fx), []);
  const [ask] = asks(fx);
  t.false(stops(fx));
  s.step(ask!.then({ ok: true, value: { functionName: NAME, version: 3, endpoints: [ep('a')], routing: ROUTING } }));
  t.deepEqual(s.ids(), ['a:serving:0']);
  t.true(stops(new Script().step(released('x'))), 'e.g. a late release after rt.deleted');
});

test('a known function keeps its set when a resync fails, and the next request asks again', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a')]));
  const [ask] = asks(s.step(delta(3, [])));
  const fx = s.step(ask!.then({ ok: false, error: { code: 'ASK_TIMEOUT', message: 'no reply' } }));
  t.deepEqual(fx.map((e) => e.type), ['log']);
  t.false(stops(fx));
  t.is(s.state.sync.kind, 'stale');
  const next = s.invoke();
  t.is(asks(next.fx).length, 1);
  t.deepEqual(invokes(next.fx), [`a#${next.replyTo.id} warm 0`], 'served with the set held meanwhile');
});
