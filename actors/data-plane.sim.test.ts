// The data plane's two actor kinds in the deterministic simulation, against a fake function actor (answers
// fn.getEndpoints, records fn.drained), a fake autoscaler (records what it is told) and a fake invoke service.
// The test script plays the control plane by telling the router its endpoint updates.
//
// A held invocation is a promise the script resolves: the simulation waits for in-flight service calls only
// when nothing else is left to deliver, so a held call lets the script queue more messages behind it. The
// clock does not move while a call is held (`Simulation.advance` would wait for it first).
import test from 'ava';
import type { ActorKind } from './actor.js';
import { dataPlaneSandboxKind, type SandboxInvokeInput, type SandboxInvokeOutput } from './dp-sandbox.js';
import {
  functionAddress,
  routerAddress,
  type AutoscalerMessage,
  type Endpoint,
  type EndpointSnapshot,
  type FunctionMessage,
  type InvocationOutcome,
  type InvocationTotals,
  type RouterMessage,
  type RouterStatus,
  type RoutingConfig,
} from './messages.js';
import { routerKind } from './router.js';
import { Simulation } from '../runtime/sim.js';
import { DirigentError, type ErrorCode } from './errors.js';

const ROUTING: RoutingConfig = { concurrency: 1, queueDepth: 10, queueTimeoutMs: 10_000, maxBodyBytes: 1024, timeoutMs: 3000, maxScale: 10 };
const F = routerAddress('f');

const ep = (sandboxId: string): Endpoint => ({ sandboxId, nodeId: 'n1', address: `10.0.0.1:${sandboxId}`, concurrency: 1, version: 1 });
const snapshotOf = (version: number, endpoints: Endpoint[], routing: Partial<RoutingConfig> = {}): EndpointSnapshot => ({
  functionName: 'f',
  version,
  endpoints,
  routing: { ...ROUTING, ...routing },
  failure: null,
});
const invoke = (path = '/'): RouterMessage => ({ type: 'rt.invoke', invocation: { method: 'GET', path, headers: {}, body: new Uint8Array() } });

interface FakeFunctionState {
  readonly snapshot: EndpointSnapshot;
  readonly drained: readonly string[];
}

/** Not virtual: a function that was never spawned is NO_SUCH_ACTOR, as an unregistered one is. */
const fakeFunction: ActorKind<FakeFunctionState, FunctionMessage> = {
  kind: 'function',
  init: (_address, arg) => ({ snapshot: arg as EndpointSnapshot, drained: [] }),
  step(state, message, ctx) {
    if (message.type === 'fn.getEndpoints') return { state, effects: ctx.replyTo ? [{ type: 'reply', to: ctx.replyTo, value: state.snapshot }] : [] };
    if (message.type === 'fn.drained') return { state: { ...state, drained: [...state.drained, `${message.sandboxId}@${message.dataplaneId} t=${ctx.now}`] } };
    return { state };
  },
};

const fakeAutoscaler: ActorKind<{ readonly told: readonly string[]; readonly totals?: InvocationTotals }, AutoscalerMessage> = {
  kind: 'autoscaler',
  virtual: true,
  init: () => ({ told: [] }),
  step(state, message, ctx) {
    if (message.type !== 'as.metric' && message.type !== 'as.backlog') return { state };
    const told = [...state.told, `t=${ctx.now} ${message.type} ${message.dataplaneId} inFlight=${message.inFlight} queued=${message.queued}`];
    return { state: { told, totals: message.type === 'as.metric' ? message.totals : state.totals } };
  },
};

/** The fake invoke service: answers 200 with the path, fails with a code, or holds until the script releases it. */
class FakeSandboxes {
  readonly calls: string[] = [];
  private readonly failing = new Map<string, ErrorCode>();
  private readonly holds = new Map<string, Promise<void>>();

  fail(sandboxId: string, code: ErrorCode): void {
    this.failing.set(sandboxId, code);
  }

  /** Hold every call to `sandboxId` until the returned function is called. */
  hold(sandboxId: string): () => void {
    let release = (): void => undefined;
    this.holds.set(sandboxId, new Promise<void>((resolve) => (release = resolve)));
    return () => {
      this.holds.delete(sandboxId);
      release();
    };
  }

  readonly service = (raw: unknown): SandboxInvokeOutput | Promise<SandboxInvokeOutput> => {
    const input = raw as SandboxInvokeInput;
    this.calls.push(`${input.sandboxId} ${input.invocation.path} at ${input.address} within ${input.timeoutMs} ms`);
    const answer = (): SandboxInvokeOutput => {
      const code = this.failing.get(input.sandboxId);
      if (code !== undefined) throw new DirigentError(code, `sandbox ${input.sandboxId} is gone`);
      return { status: 200, headers: { 'x-sandbox': input.sandboxId }, body: new TextEncoder().encode(input.invocation.path) };
    };
    const held = this.holds.get(input.sandboxId);
    return held === undefined ? answer() : held.then(answer);
  };
}

function cluster(snapshot: EndpointSnapshot | null): { sim: Simulation; sandboxes: FakeSandboxes } {
  const sandboxes = new FakeSandboxes();
  const sim = new Simulation({
    kinds: [routerKind({ dataplaneId: 'dp1', policy: 'round-robin' }), dataPlaneSandboxKind(), fakeFunction, fakeAutoscaler],
    services: { 'sandbox.invoke': sandboxes.service },
  });
  if (snapshot !== null) sim.spawn(functionAddress('f'), snapshot);
  return { sim, sandboxes };
}

const told = (sim: Simulation): readonly string[] => sim.state<{ told: string[] }>({ kind: 'autoscaler', id: 'f', key: 'fn:f' })?.told ?? [];
/** The `totals` of the last `as.metric` the autoscaler got. */
const lastTotals = (sim: Simulation): InvocationTotals | undefined => sim.state<{ totals?: InvocationTotals }>({ kind: 'autoscaler', id: 'f', key: 'fn:f' })?.totals;
const drainedAt = (sim: Simulation): readonly string[] => sim.state<FakeFunctionState>(functionAddress('f'))?.drained ?? [];
const text = (outcome: InvocationOutcome): string => (outcome.ok ? new TextDecoder().decode(outcome.body) : outcome.message);

test('cold start: the first request waits, the autoscaler hears at once (by a 0 ms timer), ticks while it waits, and the new endpoint serves it', async (t) => {
  const { sim, sandboxes } = cluster(snapshotOf(1, []));
  const reply = sim.ask<InvocationOutcome>(F, invoke('/cold'), 60_000);
  await sim.advance(5000);
  sim.note('the control plane adds sandbox s1');
  sim.tell(F, { type: 'rt.delta', term: 1, functionName: 'f', version: 2, add: [ep('s1')], remove: [] });
  await sim.run();
  const outcome = await reply;
  t.like(outcome, { ok: true, status: 200, sandboxId: 's1', coldStart: true, queuedMs: 5000 });
  t.is(text(outcome), '/cold');
  await sim.advance(10_000);
  t.deepEqual(told(sim), [
    't=0 as.backlog dp1 inFlight=0 queued=1',
    't=2000 as.metric dp1 inFlight=0 queued=1',
    't=4000 as.metric dp1 inFlight=0 queued=1',
    't=6000 as.metric dp1 inFlight=0 queued=1',
    't=8000 as.metric dp1 inFlight=0 queued=0',
  ]);
  t.deepEqual(sandboxes.calls, ['s1 /cold at 10.0.0.1:s1 within 3000 ms']);
  t.deepEqual(
    lastTotals(sim),
    { invocations: 1, coldStarts: 1, coldStartMsSum: 5000, coldStartMsBuckets: [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1], rejected: {} },
    'the final report carries the final counts: one cold start that waited 5000 ms (le=5000 and up)',
  );
  t.deepEqual(sim.transcript, [
    't=0 router:f@fn:f <- rt.invoke invocation={"method":"GET","path":"/cold","headers":{},"body":{}}',
    't=0 function:f@fn:f <- fn.getEndpoints (from router:f@fn:f)',
    't=0 router:f@fn:f <- rt.resynced snapshot={"functionName":"f","version":1,"endpoints":[],"routing":{"… (from router:f@fn:f)',
    't=0 router:f@fn:f <- rt.backlog (from router:f@fn:f)',
    't=0 autoscaler:f@fn:f <- as.backlog dataplaneId=dp1 inFlight=0 queued=1 (from router:f@fn:f)',
    't=2000 router:f@fn:f <- rt.tick (from router:f@fn:f)',
    't=2000 autoscaler:f@fn:f <- as.metric dataplaneId=dp1 inFlight=0 queued=1 totals={"invocations":0,"coldStarts":0,"coldStartMsSum":0,"coldSta… (from router:f@fn:f)',
    't=4000 router:f@fn:f <- rt.tick (from router:f@fn:f)',
    't=4000 autoscaler:f@fn:f <- as.metric dataplaneId=dp1 inFlight=0 queued=1 totals={"invocations":0,"coldStarts":0,"coldStartMsSum":0,"coldSta… (from router:f@fn:f)',
    't=5000 # the control plane adds sandbox s1',
    't=5000 router:f@fn:f <- rt.delta term=1 functionName=f version=2 add=[{"sandboxId":"s1","nodeId":"n1","address":"10.0.0.1:s1","c… remove=[]',
    't=5000 dpsandbox:s1@fn:f <- sb.invoke invocation={"method":"GET","path":"/cold","headers":{},"body":{}} replyTo={"origin":0,"id":1} coldStart=true queuedMs=5000 (from router:f@fn:f)',
    't=5000 dpsandbox:s1@fn:f <- sb.done replyTo={"origin":0,"id":1} coldStart=true queuedMs=5000 result={"ok":true,"value":{"status":200,"headers":{"x-sandbox":"s1… invocation={"method":"GET","path":"/cold","headers":{},"body":{}} (from dpsandbox:s1@fn:f)',
    't=5000 dpsandbox:s1@fn:f <- sb.release (from dpsandbox:s1@fn:f)',
    't=5000 router:f@fn:f <- rt.released sandboxId=s1 count=1 failed=false (from dpsandbox:s1@fn:f)',
    't=6000 router:f@fn:f <- rt.tick (from router:f@fn:f)',
    't=6000 autoscaler:f@fn:f <- as.metric dataplaneId=dp1 inFlight=0 queued=1 totals={"invocations":1,"coldStarts":1,"coldStartMsSum":5000,"cold… (from router:f@fn:f)',
    't=8000 router:f@fn:f <- rt.tick (from router:f@fn:f)',
    't=8000 autoscaler:f@fn:f <- as.metric dataplaneId=dp1 inFlight=0 queued=0 totals={"invocations":1,"coldStarts":1,"coldStartMsSum":5000,"cold… (from router:f@fn:f)',
  ]);
});

test('a name with no function answers 404 UNKNOWN_FUNCTION and leaves no router behind', async (t) => {
  const { sim } = cluster(null);
  const outcome = await sim.request<InvocationOutcome>(routerAddress('nope'), invoke());
  t.like(outcome, { ok: false, status: 404, code: 'UNKNOWN_FUNCTION' });
  t.deepEqual(sim.list('router'), []);
  t.deepEqual(sim.errors, []);
});

test('a removed sandbox finishes its request before the function hears fn.drained, and new requests go elsewhere', async (t) => {
  const { sim, sandboxes } = cluster(snapshotOf(1, [ep('s1'), ep('s2')]));
  sim.tell(F, { type: 'rt.snapshot', term: 1, snapshot: snapshotOf(1, [ep('s1'), ep('s2')]) });
  const release = sandboxes.hold('s1');
  const first = sim.ask<InvocationOutcome>(F, invoke('/first'));
  const running = sim.run();
  t.deepEqual(sandboxes.calls, ['s1 /first at 10.0.0.1:s1 within 3000 ms'], 'held at s1');
  sim.tell(F, { type: 'rt.delta', term: 1, functionName: 'f', version: 2, add: [], remove: ['s1'] });
  const second = sim.ask<InvocationOutcome>(F, invoke('/second'));
  release();
  await running;
  t.like(await first, { ok: true, sandboxId: 's1' });
  t.like(await second, { ok: true, sandboxId: 's2', coldStart: false });
  t.deepEqual(drainedAt(sim), ['s1@dp1 t=0']);
  const doneAt = sim.transcript.findIndex((line) => line.includes('dpsandbox:s1@fn:f <- sb.done'));
  const drainedLine = sim.transcript.findIndex((line) => line.includes('function:f@fn:f <- fn.drained sandboxId=s1'));
  t.true(doneAt >= 0 && drainedLine > doneAt, 'fn.drained only after the request on s1 was answered');
  t.deepEqual(sim.list('dpsandbox').map((a) => a.id), ['s2'], 'the drained sandbox actor stopped');
  t.like(await sim.request<RouterStatus>(F, { type: 'rt.status' }), { version: 2, endpoints: 1, draining: 0, inFlight: 0, queued: 0 });
});

test('a broken sandbox answers 502 and is routed around until the control plane removes it', async (t) => {
  const { sim, sandboxes } = cluster(snapshotOf(1, [ep('s1'), ep('s2')]));
  sandboxes.fail('s1', 'SANDBOX_GONE');
  const failed = await sim.request<InvocationOutcome>(F, invoke('/a'));
  t.like(failed, { ok: false, status: 502, code: 'SANDBOX_FAILED', sandboxId: 's1' });
  t.regex(text(failed), /SANDBOX_GONE/);
  for (const path of ['/b', '/c', '/d']) t.like(await sim.request<InvocationOutcome>(F, invoke(path)), { ok: true, sandboxId: 's2' });
  t.deepEqual(sim.list('dpsandbox').map((a) => a.id), ['s2'], 'the broken sandbox actor closed');
  sim.tell(F, { type: 'rt.delta', term: 1, functionName: 'f', version: 2, add: [ep('s3')], remove: ['s1'] });
  await sim.run();
  t.deepEqual(drainedAt(sim), ['s1@dp1 t=0']);
  t.like(await sim.request<RouterStatus>(F, { type: 'rt.status' }), { version: 2, endpoints: 2, draining: 0 });
});

test('a sandbox whose worker cannot be connected to: its request is served by another sandbox, not answered 502', async (t) => {
  const { sim, sandboxes } = cluster(snapshotOf(1, [ep('s1'), ep('s2')]));
  sandboxes.fail('s1', 'CONNECTION_FAILED');
  // Round-robin places the first request on s1, which cannot be reached: s2 serves it.
  t.like(await sim.request<InvocationOutcome>(F, invoke('/a')), { ok: true, sandboxId: 's2' });
  t.deepEqual(sandboxes.calls.map((c) => c.split(' ').slice(0, 2).join(' ')), ['s1 /a', 's2 /a']);
  for (const path of ['/b', '/c']) t.like(await sim.request<InvocationOutcome>(F, invoke(path)), { ok: true, sandboxId: 's2' });
  t.deepEqual(sim.list('dpsandbox').map((a) => a.id), ['s2'], 'the unreachable sandbox actor closed');
});

test('when every sandbox is unreachable, a request waits for a new one instead of failing', async (t) => {
  const { sim, sandboxes } = cluster(snapshotOf(1, [ep('s1'), ep('s2')]));
  sandboxes.fail('s1', 'CONNECTION_FAILED');
  sandboxes.fail('s2', 'ECONNREFUSED');
  const reply = sim.ask<InvocationOutcome>(F, invoke('/a'), 60_000);
  await sim.advance(1000);
  t.is(sandboxes.calls.length, 2, 'tried once on each sandbox, then waits');
  sim.tell(F, { type: 'rt.delta', term: 1, functionName: 'f', version: 2, add: [ep('s3')], remove: ['s1', 's2'] });
  await sim.run();
  t.like(await reply, { ok: true, sandboxId: 's3' });
});

test('a request nobody can serve gets 504 at its deadline, or 503 when the function is at max scale', async (t) => {
  for (const [maxScale, status, code] of [
    [1, 504, 'DEADLINE_PASSED'],
    [0, 503, 'NO_CAPACITY'],
  ] as const) {
    const { sim } = cluster(snapshotOf(1, [], { maxScale, queueTimeoutMs: 1500 }));
    const reply = sim.ask<InvocationOutcome>(F, invoke(), 60_000);
    await sim.advance(1499);
    t.is((await sim.request<RouterStatus>(F, { type: 'rt.status' })).queued, 1, 'still waiting 1 ms before the deadline');
    await sim.advance(1);
    t.like(await reply, { ok: false, status, code, queuedMs: 1500 });
  }
});

test('a burst drains in arrival order; every request that waited for new sandboxes counts as a cold start', async (t) => {
  const { sim } = cluster(snapshotOf(1, []));
  const replies = ['/1', '/2', '/3', '/4', '/5'].map((path) => sim.ask<InvocationOutcome>(F, invoke(path)));
  await sim.advance(100);
  t.deepEqual(told(sim), ['t=0 as.backlog dp1 inFlight=0 queued=5'], 'queued during the lookup: told once, with all of them');
  t.is(sim.transcript.filter((line) => line.includes('router:f@fn:f <- rt.backlog')).length, 1, 'one backlog timer fired');
  sim.tell(F, { type: 'rt.delta', term: 1, functionName: 'f', version: 2, add: [ep('s1'), ep('s2')], remove: [] });
  await sim.run();
  const outcomes = await Promise.all(replies);
  t.deepEqual(
    outcomes.map((o) => (o.ok ? `${text(o)} ${o.sandboxId} ${o.coldStart ? 'cold' : 'warm'} ${o.queuedMs}` : o.code)),
    ['/1 s1 cold 100', '/2 s2 cold 100', '/3 s1 cold 100', '/4 s2 cold 100', '/5 s1 cold 100'],
  );
  t.like(await sim.request<InvocationOutcome>(F, invoke('/6')), { ok: true, coldStart: false, queuedMs: 0 });
});

const backlogTimersFired = (sim: Simulation): number => sim.transcript.filter((line) => line.includes('router:f@fn:f <- rt.backlog')).length;

test('50 requests arriving together at a function with no sandbox are one backlog report of 50', async (t) => {
  const { sim } = cluster(snapshotOf(1, [], { queueDepth: 100 }));
  sim.tell(F, { type: 'rt.snapshot', term: 1, snapshot: snapshotOf(1, [], { queueDepth: 100 }) });
  await sim.run();
  const replies = Array.from({ length: 50 }, (_, i) => sim.ask<InvocationOutcome>(F, invoke(`/${i}`), 60_000));
  await sim.run();
  t.deepEqual(told(sim), [], 'nothing is told while the burst is being queued');
  t.is((await sim.request<RouterStatus>(F, { type: 'rt.status' })).queued, 50);
  await sim.advance(0);
  t.deepEqual(told(sim), ['t=0 as.backlog dp1 inFlight=0 queued=50'], 'one report with the whole burst');
  t.is(backlogTimersFired(sim), 1);
  const backlogAt = sim.transcript.findIndex((line) => line.includes('as.backlog'));
  const lastInvokeAt = sim.transcript.findLastIndex((line) => line.includes('router:f@fn:f <- rt.invoke'));
  t.true(lastInvokeAt >= 0 && backlogAt > lastInvokeAt, 'the report comes after the last request of the burst');

  sim.tell(F, { type: 'rt.delta', term: 1, functionName: 'f', version: 2, add: [ep('s1'), ep('s2')], remove: [] });
  await sim.advance(100);
  const outcomes = await Promise.all(replies);
  t.true(outcomes.every((o) => o.ok && o.coldStart));
  t.deepEqual(told(sim), ['t=0 as.backlog dp1 inFlight=0 queued=50'], 'draining the queue tells nothing');
});

test('a backlog growing request by request is reported at once, then at each doubling', async (t) => {
  const { sim } = cluster(snapshotOf(1, [], { queueDepth: 100 }));
  sim.tell(F, { type: 'rt.snapshot', term: 1, snapshot: snapshotOf(1, [], { queueDepth: 100 }) });
  await sim.run();
  const replies: Promise<InvocationOutcome>[] = [];
  for (let i = 1; i <= 9; i += 1) {
    replies.push(sim.ask<InvocationOutcome>(F, invoke(`/${i}`), 60_000));
    await sim.advance(10);
  }
  t.deepEqual(told(sim), [
    't=0 as.backlog dp1 inFlight=0 queued=1',
    't=10 as.backlog dp1 inFlight=0 queued=2',
    't=30 as.backlog dp1 inFlight=0 queued=4',
    't=70 as.backlog dp1 inFlight=0 queued=8',
  ]);
  t.is(backlogTimersFired(sim), 4, 'a timer only when a report is due');

  sim.note('a burst of 8 more: 17 waiting, past twice the 8 told');
  for (let i = 10; i <= 17; i += 1) replies.push(sim.ask<InvocationOutcome>(F, invoke(`/${i}`), 60_000));
  await sim.advance(10);
  t.deepEqual(told(sim).slice(4), ['t=90 as.backlog dp1 inFlight=0 queued=17'], 'one report, with the queue as it is when the timer fires');

  sim.tell(F, { type: 'rt.delta', term: 1, functionName: 'f', version: 2, add: [ep('s1')], remove: [] });
  await sim.advance(10);
  t.true((await Promise.all(replies)).every((o) => o.ok));
  replies.length = 0;
  t.is(told(sim).filter((line) => line.includes('as.backlog')).length, 5, 'serving the queue tells nothing');
  const held = sim.ask<InvocationOutcome>(F, invoke('/held'), 60_000);
  await sim.advance(10);
  t.is(told(sim).filter((line) => line.includes('as.backlog')).length, 5, 'a request with a free slot is no backlog');
  t.like(await held, { ok: true, coldStart: false });
});

test('a function that does not exist tells the autoscaler nothing and leaves no timer behind', async (t) => {
  const { sim } = cluster(null);
  const replies = [0, 1, 2].map(() => sim.ask<InvocationOutcome>(routerAddress('nope'), invoke(), 60_000));
  await sim.advance(10_000);
  for (const outcome of await Promise.all(replies)) t.like(outcome, { ok: false, status: 404, code: 'UNKNOWN_FUNCTION' });
  t.deepEqual(sim.list('router'), []);
  t.deepEqual(sim.list('autoscaler'), [], 'no autoscaler was ever told');
  t.false(sim.transcript.some((line) => line.includes('rt.backlog') || line.includes('as.backlog') || line.includes('as.metric')));
  t.deepEqual(sim.errors, []);
});
