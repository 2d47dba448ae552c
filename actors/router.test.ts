import test from 'ava';
import type { Address, AskResult, Effect, ReplyTo } from './actor.js';
import type { DataPlaneSandboxInit } from './dp-sandbox.js';
import {
  COLD_START_BUCKETS_MS,
  autoscalerAddress,
  dataPlaneSandboxAddress,
  functionAddress,
  routerAddress,
  routerReplicaAddress,
  type Endpoint,
  type InvocationOutcome,
  type InvocationTotals,
  type LoadBalancingPolicy,
  type RouterMessage,
  type RouterStatus,
  type RoutingConfig,
} from './messages.js';
import { BACKLOG_TIMER, EXPIRE_TIMER, LOOKUP_PATIENCE_MS, LOOKUP_RETRY_MS, LOOKUP_TIMER, TICK_TIMER, routerKind, routerTotals, slotShare, type RouterConfig, type RouterState } from './router.js';

const NAME = 'f';
const SELF = routerAddress(NAME);
const ROUTING: RoutingConfig = { concurrency: 1, queueDepth: 3, queueTimeoutMs: 1000, maxBodyBytes: 100, timeoutMs: 5000, maxScale: 4 };

const ep = (sandboxId: string, concurrency = 1): Endpoint => ({ sandboxId, nodeId: 'n1', address: `10.0.0.1:${sandboxId}`, concurrency, version: 1 });

const snapshot = (version: number, endpoints: Endpoint[], term = 1, routing: Partial<RoutingConfig> = {}): RouterMessage => ({
  type: 'rt.snapshot',
  term,
  snapshot: { functionName: NAME, version, endpoints, routing: { ...ROUTING, ...routing }, failure: null },
});

const delta = (version: number, add: Endpoint[], remove: string[] = [], term = 1): RouterMessage => ({
  type: 'rt.delta',
  term,
  functionName: NAME,
  version,
  add,
  remove,
});

const released = (sandboxId: string, failed = false, count = 1): RouterMessage => ({ type: 'rt.released', sandboxId, count, failed });

/** Drives one router's pure step with a manual clock, scripted random draws and numbered asks. */
class Script {
  state: RouterState;
  now = 0;
  /** Values `ctx.random` returns, in order; 0 once they run out. */
  randoms: number[] = [];
  private nextAsk = 1;
  private readonly kind;

  constructor(config: Partial<RouterConfig> = {}) {
    this.kind = routerKind({ dataplaneId: 'dp1', policy: 'least-in-flight', ...config });
    this.state = this.kind.init(SELF, undefined, 0);
  }

  step(message: RouterMessage, replyTo?: ReplyTo): Effect<RouterMessage>[] {
    const result = this.kind.step(this.state, message, { now: this.now, self: SELF, replyTo, random: () => this.randoms.shift() ?? 0 });
    this.state = result.state;
    return [...(result.effects ?? [])];
  }

  /** An `rt.invoke` asked by the edge: its reply token and the step's effects. */
  invoke(bodyBytes = 0): { replyTo: ReplyTo; fx: Effect<RouterMessage>[] } {
    const replyTo = { origin: 9, id: this.nextAsk++ };
    const fx = this.step({ type: 'rt.invoke', invocation: { method: 'POST', path: '/', headers: {}, body: new Uint8Array(bodyBytes) } }, replyTo);
    return { replyTo, fx };
  }

  ids(): string[] {
    return this.state.sandboxes.map((s) => `${s.endpoint.sandboxId}:${s.phase.kind}:${s.inFlight}`);
  }
}

type Sent = { to: Address; message: { type: string; [key: string]: unknown } };

function sends(fx: Effect<RouterMessage>[], kind?: string): Sent[] {
  return fx.flatMap((e) => (e.type === 'send' && (kind === undefined || e.to.kind === kind) ? [{ to: e.to, message: e.message as Sent['message'] }] : []));
}

/** `sb.invoke`s as `sandboxId#askId cold|warm queuedMs`. */
function invokes(fx: Effect<RouterMessage>[]): string[] {
  return sends(fx, 'dpsandbox')
    .filter((s) => s.message.type === 'sb.invoke')
    .map((s) => `${s.to.id}#${(s.message.replyTo as ReplyTo).id} ${s.message.coldStart ? 'cold' : 'warm'} ${s.message.queuedMs}`);
}

function closes(fx: Effect<RouterMessage>[]): string[] {
  return sends(fx, 'dpsandbox')
    .filter((s) => s.message.type === 'sb.close')
    .map((s) => s.to.id);
}

function drainedIds(fx: Effect<RouterMessage>[]): string[] {
  return sends(fx, 'function')
    .filter((s) => s.message.type === 'fn.drained')
    .map((s) => `${s.message.sandboxId as string}@${s.message.dataplaneId as string}`);
}

function spawned(fx: Effect<RouterMessage>[]): string[] {
  return fx.flatMap((e) => (e.type === 'spawn' ? [e.address.id] : []));
}

/** Replies as `askId status code`. */
function replies(fx: Effect<RouterMessage>[]): string[] {
  return fx.flatMap((e) => {
    if (e.type !== 'reply') return [];
    const outcome = e.value as InvocationOutcome;
    return [`#${e.to.id} ${outcome.ok ? outcome.status : `${outcome.status} ${outcome.code} ${outcome.queuedMs}${outcome.coldStart ? ' cold' : ''}`}`];
  });
}

function toAutoscaler(fx: Effect<RouterMessage>[]): string[] {
  return sends(fx, 'autoscaler').map(
    ({ message: m }) => `${m.type} ${m.dataplaneId as string} inFlight=${m.inFlight as number} queued=${m.queued as number}`,
  );
}

function asks(fx: Effect<RouterMessage>[]): Extract<Effect<RouterMessage>, { type: 'ask' }>[] {
  return fx.flatMap((e) => (e.type === 'ask' ? [e] : []));
}

function timers(fx: Effect<RouterMessage>[]): string[] {
  return fx.flatMap((e) => (e.type === 'schedule' ? [`${e.timer} +${e.afterMs}`] : e.type === 'cancel' ? [`${e.timer} cancel`] : []));
}

const stops = (fx: Effect<RouterMessage>[]): boolean => fx.some((e) => e.type === 'stop');

/** The `rt.backlog` timers a step schedules (the rule allows at most one per step). */
function backlogTimers(fx: Effect<RouterMessage>[]): Effect<RouterMessage>[] {
  return fx.filter((e) => e.type === 'schedule' && (e.timer === BACKLOG_TIMER || e.message.type === 'rt.backlog'));
}

/** What the backlog timer looks like: a 0 ms timer named `rt.backlog` carrying `{ type: 'rt.backlog' }`. */
const BACKLOG_SCHEDULE: Effect<RouterMessage> = { type: 'schedule', afterMs: 0, message: { type: 'rt.backlog' }, timer: BACKLOG_TIMER };

// ---- Endpoint set --------------------------------------------------------------------------------------

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

// ---- Policies --------------------------------------------------------------------------------------------

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

// ---- The queue ---------------------------------------------------------------------------------------------

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

/** The `averageInFlight` of the `as.metric` among `fx`. */
function averageOf(fx: Effect<RouterMessage>[]): unknown {
  return sends(fx, 'autoscaler').find((m) => m.message.type === 'as.metric')?.message['averageInFlight'];
}

test('each metric carries the time-weighted average of the requests at sandboxes over its period', (t) => {
  const s = new Script();
  s.step(snapshot(1, [ep('a')]));
  s.invoke();
  s.invoke();
  s.now = 500;
  s.step(released('a'));
  s.now = 2000;
  // 1 request at the sandbox all along (the second took the slot when the first left); the first started the
  // period, so 1 arrival and 1 dispatch count (the second's): 1 x 2000 / 2000 x max(1, 1 / 1) = 1. The 500 ms
  // the second waited in the queue is left out; no queue is left at the tick.
  t.is(averageOf(s.step({ type: 'rt.tick' })), 1);
  s.now = 3000;
  s.step(released('a'));
  s.now = 4000;
  // 1 request for 1000 ms of 2000.
  t.is(averageOf(s.step({ type: 'rt.tick' })), 0.5);
  s.now = 6000;
  t.is(averageOf(s.step({ type: 'rt.tick' })), 0, 'the final report');
  // Ticking again from idle: the new period starts with the request that starts it, not at the last tick.
  s.now = 9000;
  s.invoke();
  s.now = 10_000;
  s.step(released('a'));
  s.now = 11_000;
  t.is(averageOf(s.step({ type: 'rt.tick' })), 0.5, '1 request for 1000 ms of the 2000 since ticking began');
});

test('arrivals beyond what the sandboxes take scale the average up: Little\'s law under saturation', (t) => {
  const s = new Script({ tickMs: 1000 });
  s.step(snapshot(1, [ep('a')], 1, { queueDepth: 100, queueTimeoutMs: 60_000 }));
  s.invoke();
  s.now = 1000;
  s.step({ type: 'rt.tick' });
  // A 100 ms call at 50 req/s on one sandbox: each 100 ms one leaves and the next waiting one takes the slot,
  // while 5 arrive. Over the next 1000 ms: 50 arrivals, 10 dispatches, the sandbox busy all along.
  for (let i = 0; i < 50; i++) {
    s.now = 1000 + i * 20;
    s.invoke();
    if (i % 5 === 4) s.step(released('a'));
  }
  s.now = 2000;
  const fx = s.step({ type: 'rt.tick' });
  // At the sandbox: 1 x 1000 / 1000 = 1; arrivals / dispatches = 50 / 10 = 5: demand 5 (50 x 0.1 by Little's
  // law). Left in the queue at the tick: 40 (50 arrived, 10 went to the sandbox), each 100 ms at the sandbox
  // (1000 request-ms / 10 dispatches): draining them within the 1000 ms period takes 40 x 100 / 1000 = 4 more.
  t.is(averageOf(fx), 9);
});

test('requests waiting for a cold start are left out of the average', (t) => {
  const s = new Script();
  s.step(snapshot(1, []));
  s.invoke();
  s.now = 1000;
  s.step(delta(2, [ep('a')]));
  s.now = 1500;
  s.step(released('a'));
  s.now = 2000;
  const fx = s.step({ type: 'rt.tick' });
  // Queued for a cold start from 0 to 1000 ms (not counted), then running until 1500 ms: 1 x 500 / 2000.
  t.deepEqual(toAutoscaler(fx), ['as.metric dp1 inFlight=0 queued=1'], 'the peak (the first moment of demand 1) still shows the wait');
  t.is(averageOf(fx), 0.25);
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

// ---- Draining and failures ---------------------------------------------------------------------------------

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

// ---- Functions the router has not heard of -----------------------------------------------------------------

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

// ---- Replicas: one router per data-plane shard ------------------------------------------------------

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
