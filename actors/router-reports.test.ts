// The router's tests, router-reports.ts's part: backlog and metrics reports to the autoscaler, and load reports to the function.
import test from 'ava';
import type { Effect } from './actor.js';
import { NAME, ep, snapshot, delta, released, Script, sends, invokes, replies, toAutoscaler, timers, backlogTimers, BACKLOG_SCHEDULE } from './fixtures/router-script.js';
import { COLD_START_BUCKETS_MS, autoscalerAddress, type InvocationTotals, type RouterMessage } from './messages.js';
import { BACKLOG_TIMER, EXPIRE_TIMER, TICK_TIMER } from './router.js';

test('a request that queues schedules a 0 ms rt.backlog instead of telling the autoscaler in its own step', (t) => {
  t.is(BACKLOG_TIMER, 'rt.backlog');
  const s = new Script();
  s.step(snapshot(1, [ep('a')], 1, { queueDepth: 20 }));
  const served = s.invoke();
  t.deepEqual(toAutoscaler(served.fx), [], 'a request with a free slot is no backlog');
  t.deepEqual(backlogTimers(served.fx), []);

  const queued = s.invoke();
  t.deepEqual(toAutoscaler(queued.fx), [], 'not told inside the step that queues');
  t.deepEqual(backlogTimers(queued.fx), [BACKLOG_SCHEDULE], 'a named timer of 0 ms');
  t.true(s.state.backlogPending);
  t.is(s.state.backlogTold, 0);

  const fired = s.step({ type: 'rt.backlog' });
  t.deepEqual(sends(fired, 'autoscaler'), [
    { to: autoscalerAddress(NAME), message: { type: 'as.backlog', dataplaneId: 'dp1', inFlight: 1, queued: 1 } },
  ]);
  t.deepEqual(timers(fired), [], 'the report schedules nothing more');
  t.false(s.state.backlogPending);
  t.is(s.state.backlogTold, 1);
});

test('a snapshot of a new leader\'s term re-announces the backlog at once: the new autoscaler never heard it', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a')], 1, { queueDepth: 20 }));
  s.invoke();
  s.invoke();
  s.step({ type: 'rt.backlog' });
  t.is(s.state.backlogTold, 1);
  t.deepEqual(backlogTimers(s.step(snapshot(2, [ep('a')], 1))), [], 'the same leader knows it already');
  const newLeader = s.step(snapshot(1, [ep('a')], 2));
  t.deepEqual(backlogTimers(newLeader), [BACKLOG_SCHEDULE]);
  t.deepEqual(toAutoscaler(s.step({ type: 'rt.backlog' })), ['as.backlog dp1 inFlight=1 queued=1']);
});

test('a burst arriving together is one report with the whole backlog', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a')], 1, { queueDepth: 200 }));
  s.invoke();
  const burst: Effect<RouterMessage>[] = [];
  for (let i = 0; i < 50; i += 1) burst.push(...s.invoke().fx);
  t.is(s.state.queue.length, 50);
  t.deepEqual(toAutoscaler(burst), [], 'nothing is told while the burst arrives');
  t.deepEqual(backlogTimers(burst), [BACKLOG_SCHEDULE], 'one report is pending at a time: one timer for the burst');

  const fired = s.step({ type: 'rt.backlog' });
  t.deepEqual(toAutoscaler(fired), ['as.backlog dp1 inFlight=1 queued=50'], 'one report of 50 for 50 requests');
  t.deepEqual(backlogTimers(fired), []);

  // The doubling rule counts from what was told: 50, so the next report is due at 100.
  const more: Effect<RouterMessage>[] = [];
  for (let i = 0; i < 49; i += 1) more.push(...s.invoke().fx);
  t.is(s.state.queue.length, 99);
  t.deepEqual([...toAutoscaler(more), ...backlogTimers(more)], [], 'below twice the length told: nothing');
  const hundredth = s.invoke();
  t.deepEqual(toAutoscaler(hundredth.fx), []);
  t.deepEqual(backlogTimers(hundredth.fx), [BACKLOG_SCHEDULE], 'twice the length told: a report is scheduled');
  const later: Effect<RouterMessage>[] = [];
  for (let i = 0; i < 20; i += 1) later.push(...s.invoke().fx);
  t.deepEqual(backlogTimers(later), [], 'still pending: not scheduled twice');
  t.deepEqual(toAutoscaler(s.step({ type: 'rt.backlog' })), ['as.backlog dp1 inFlight=1 queued=120'], 'it carries the length when it fires');
  t.is(s.state.backlogTold, 120);
});

test('a backlog growing over time is told at once, then each time the queue doubles', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a')], 1, { queueDepth: 20 }));
  s.invoke();
  const told: string[] = [];
  for (let i = 1; i <= 9; i += 1) {
    const { fx } = s.invoke();
    t.deepEqual(toAutoscaler(fx), [], `#${i}: never inside the step that queues`);
    const scheduled = backlogTimers(fx);
    if (scheduled.length === 0) continue;
    t.deepEqual(scheduled, [BACKLOG_SCHEDULE]);
    // The timer fires before the next request arrives.
    told.push(...toAutoscaler(s.step({ type: 'rt.backlog' })).map((line) => `#${i} ${line}`));
  }
  t.deepEqual(told, [
    '#1 as.backlog dp1 inFlight=1 queued=1',
    '#2 as.backlog dp1 inFlight=1 queued=2',
    '#4 as.backlog dp1 inFlight=1 queued=4',
    '#8 as.backlog dp1 inFlight=1 queued=8',
  ]);
  const drained = s.step(delta(2, [ep('b', 9)]));
  t.deepEqual(toAutoscaler(drained), [], 'draining the queue tells nothing');
  t.deepEqual(backlogTimers(drained), []);
  t.is(s.state.queue.length, 0);
  t.is(s.state.backlogTold, 0, 'an empty queue forgets what was told');
  const again = s.invoke();
  t.deepEqual(toAutoscaler(again.fx), []);
  t.deepEqual(backlogTimers(again.fx), [BACKLOG_SCHEDULE], 'a new backlog after an empty queue is reported again');
  t.deepEqual(toAutoscaler(s.step({ type: 'rt.backlog' })), ['as.backlog dp1 inFlight=10 queued=1']);
});

test('a pending report carries the queue of its moment: shrunk, emptied, or emptied and refilled', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a')], 1, { queueDepth: 20 }));
  s.invoke();
  for (let i = 0; i < 3; i += 1) s.invoke();
  t.true(s.state.backlogPending);
  const freed = s.step(released('a'));
  t.is(invokes(freed).length, 1, 'one waiting request took the freed slot');
  t.deepEqual(backlogTimers(freed), []);
  t.deepEqual(toAutoscaler(s.step({ type: 'rt.backlog' })), ['as.backlog dp1 inFlight=1 queued=2'], 'shrunk: told 2, not 3');

  // Emptied before the timer fires: nothing is told, and the next backlog is reported afresh.
  const s2 = new Script();
  s2.step(snapshot(1, [ep('a')], 1, { queueDepth: 20 }));
  s2.invoke();
  t.deepEqual(backlogTimers(s2.invoke().fx), [BACKLOG_SCHEDULE]);
  s2.step(released('a'));
  t.is(s2.state.queue.length, 0);
  const empty = s2.step({ type: 'rt.backlog' });
  t.deepEqual(toAutoscaler(empty), [], 'the queue emptied before the timer fired: no report');
  t.deepEqual(backlogTimers(empty), []);
  t.false(s2.state.backlogPending);
  t.is(s2.state.backlogTold, 0);
  const next = s2.invoke();
  t.deepEqual(invokes(next.fx), [], 'a is busy again');
  t.deepEqual(backlogTimers(next.fx), [BACKLOG_SCHEDULE], 'a later backlog schedules a new report');
  t.deepEqual(toAutoscaler(s2.step({ type: 'rt.backlog' })), ['as.backlog dp1 inFlight=1 queued=1']);

  // Emptied and refilled before the timer fires: still one timer, one report of what waits when it fires.
  const s3 = new Script();
  s3.step(snapshot(1, [ep('a')], 1, { queueDepth: 20 }));
  s3.invoke();
  const fx: Effect<RouterMessage>[] = [...s3.invoke().fx];
  fx.push(...s3.step(released('a')));
  t.is(s3.state.queue.length, 0);
  for (let i = 0; i < 3; i += 1) fx.push(...s3.invoke().fx);
  t.deepEqual(backlogTimers(fx), [BACKLOG_SCHEDULE], 'the pending report covers the refill');
  t.deepEqual(toAutoscaler(fx), []);
  t.deepEqual(toAutoscaler(s3.step({ type: 'rt.backlog' })), ['as.backlog dp1 inFlight=1 queued=3']);
});

test('metrics go out every tick while busy, carrying the peak since the last report, then one final zero, then the ticks stop', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a')]));
  t.deepEqual(timers(s.invoke().fx), [`${TICK_TIMER} +2000`]);
  t.deepEqual(timers(s.invoke().fx), [`${BACKLOG_TIMER} +0`, `${EXPIRE_TIMER} +1000`], 'one tick timer at a time');
  s.now = 500;
  s.step(released('a'));
  t.deepEqual([s.state.queue.length, s.ids()], [0, ['a:serving:1']], 'the waiting request took the freed slot');
  s.now = 2000;
  let fx = s.step({ type: 'rt.tick' });
  t.deepEqual(toAutoscaler(fx), ['as.metric dp1 inFlight=1 queued=1'], 'the peak of the period (1 + 1 at 0 ms), not the sample at the tick (1 + 0)');
  t.deepEqual(timers(fx), [`${TICK_TIMER} +2000`]);
  s.now = 3000;
  s.step(released('a'));
  s.now = 4000;
  fx = s.step({ type: 'rt.tick' });
  t.deepEqual(toAutoscaler(fx), ['as.metric dp1 inFlight=1 queued=0'], 'idle at the tick, but a request was in flight during the period');
  t.deepEqual(timers(fx), [`${TICK_TIMER} +2000`], 'a period with load is followed by one more report');
  s.now = 6000;
  fx = s.step({ type: 'rt.tick' });
  t.deepEqual(toAutoscaler(fx), ['as.metric dp1 inFlight=0 queued=0'], 'the final report');
  t.deepEqual(timers(fx), [], 'no more ticks while idle');
  t.deepEqual(timers(s.invoke().fx), [`${TICK_TIMER} +2000`], 'busy again: ticking again');
});

test('requests that come and go entirely between two ticks still show in the next report', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a')]));
  s.invoke();
  s.now = 2000;
  t.deepEqual(toAutoscaler(s.step({ type: 'rt.tick' })), ['as.metric dp1 inFlight=1 queued=0']);
  s.now = 2100;
  s.step(released('a'));
  s.now = 2200;
  s.invoke();
  s.invoke();
  s.invoke();
  s.now = 2300;
  s.step(released('a'));
  s.step(released('a'));
  s.step(released('a'));
  t.deepEqual([s.state.queue.length, s.ids()], [0, ['a:serving:0']]);
  s.now = 4000;
  t.deepEqual(toAutoscaler(s.step({ type: 'rt.tick' })), ['as.metric dp1 inFlight=1 queued=2'], 'the busiest moment of the period, though idle at both ticks');
});

/** The `totals` of the `as.metric` among `fx`. */
function reportedTotals(fx: Effect<RouterMessage>[]): InvocationTotals | undefined {
  const metric = sends(fx, 'autoscaler').find((m) => m.message.type === 'as.metric');
  return metric?.message.totals as InvocationTotals | undefined;
}

/** Cumulative histogram counts: `counts[i]` at every bucket from `COLD_START_BUCKETS_MS` index `i` on. */
function buckets(...queuedMs: number[]): number[] {
  return [...COLD_START_BUCKETS_MS, Infinity].map((bound) => queuedMs.filter((ms) => ms <= bound).length);
}

test('every as.metric carries the cumulative totals: invocations, cold starts with their queue-time histogram, rejections by status', (t) => {
  t.deepEqual(COLD_START_BUCKETS_MS, [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]);
  const s = new Script();
  s.step(snapshot(1, []));
  const first = s.invoke();
  s.now = 250;
  s.invoke();
  s.invoke();
  s.invoke(101); // 413, counted
  s.invoke(); // 429: the queue holds 3
  s.now = 300;
  const fx = s.step(delta(2, [ep('a', 2)]));
  t.deepEqual(invokes(fx), [`a#${first.replyTo.id} cold 300`, `a#${first.replyTo.id + 1} cold 50`], 'two cold starts, one left waiting');
  s.now = 1250;
  s.step({ type: 'rt.expire' }); // the third waited its 1000 ms: 504
  s.step(released('a'));
  s.invoke(); // warm
  s.now = 2000;
  t.deepEqual(reportedTotals(s.step({ type: 'rt.tick' })), {
    invocations: 3,
    coldStarts: 2,
    coldStartMsSum: 350,
    coldStartMsBuckets: buckets(300, 50),
    rejected: { '413': 1, '429': 1, '504': 1 },
  });
  t.deepEqual(buckets(300, 50), [0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2], 'Prometheus le buckets: 50 ms counts from le=50 on, 300 ms from le=500 on');
  t.like(s.state, { dispatched: 3, rejected: 3, coldStarts: 2 });
  s.step(released('a'));
  s.step(released('a'));
  s.now = 4000;
  const last = s.step({ type: 'rt.tick' });
  t.deepEqual(toAutoscaler(last), ['as.metric dp1 inFlight=2 queued=0']);
  s.now = 6000;
  const final = s.step({ type: 'rt.tick' });
  t.deepEqual(toAutoscaler(final), ['as.metric dp1 inFlight=0 queued=0'], 'the final report of the period');
  t.like(reportedTotals(final), { invocations: 3, coldStarts: 2, coldStartMsSum: 350 }, 'still carries the totals, which never go down');
  t.deepEqual(timers(final), []);
});

test('a rejection while idle starts the ticking, so that the next report carries it', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a')]));
  const large = s.invoke(101);
  t.deepEqual(replies(large.fx), [`#${large.replyTo.id} 413 BODY_TOO_LARGE 0`]);
  t.deepEqual(timers(large.fx), [`${TICK_TIMER} +2000`], 'nothing in flight, but news for the autoscaler');
  s.now = 2000;
  const fx = s.step({ type: 'rt.tick' });
  t.deepEqual(toAutoscaler(fx), ['as.metric dp1 inFlight=0 queued=0']);
  t.like(reportedTotals(fx), { invocations: 0, rejected: { '413': 1 } });
  t.deepEqual(timers(fx), [], 'one report, then the ticks stop');
  t.deepEqual(timers(s.invoke(101).fx), [`${TICK_TIMER} +2000`], 'the next rejection ticks again');
});

test('each tick tells the function which sandboxes are busy, and once more when none is', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a'), ep('b')]));
  s.invoke();
  s.now = 2000;
  let fx = s.step({ type: 'rt.tick' });
  t.deepEqual(sends(fx, 'function').map((x) => x.message), [{ type: 'fn.load', dataplaneId: 'dp1', inFlight: { a: 1 } }]);
  s.step(released('a'));
  s.now = 4000;
  fx = s.step({ type: 'rt.tick' });
  t.deepEqual(sends(fx, 'function').map((x) => x.message), [{ type: 'fn.load', dataplaneId: 'dp1', inFlight: {} }], 'the picture is cleared');
  s.now = 6000;
  t.deepEqual(sends(s.step({ type: 'rt.tick' }), 'function'), [], 'then nothing while idle');
});
