import test from 'ava';
import type { ActorKind, Effect, ReplyTo, StepContext } from './actor.js';
import { METRIC_REPORT_INTERVAL_MS, autoscalerKind, staleAfterMs, type AutoscalerActorState } from './autoscaler-actor.js';
import { defaultAutoscalerConfig, type AutoscalerConfig } from './autoscaler-config.js';
import { EMPTY_TOTALS } from './invocation-totals.js';
import {
  COLD_START_BUCKETS_MS,
  autoscalerAddress,
  functionAddress,
  type AutoscalerMessage,
  type AutoscalerStatus,
  type FunctionMessage,
  type InvocationTotals,
} from './messages.js';
import { Simulation } from '../runtime/sim.js';

// Short windows so that scenarios take seconds of simulated time: tick 1 s, stable 6 s, panic 2 s, keep-alive 10 s.
const config: AutoscalerConfig = { ...defaultAutoscalerConfig, tickMs: 1000, stableWindowMs: 6000, panicWindowMs: 2000, keepAliveMs: 10_000 };
const ASKER: ReplyTo = { origin: 9, id: 1 };
const self = autoscalerAddress('f');

function fresh(overrides: Partial<AutoscalerConfig> = {}, containerConcurrency = 1): AutoscalerActorState {
  return autoscalerKind.init(self, { config: { ...config, ...overrides }, containerConcurrency }, 0);
}

function step(state: AutoscalerActorState, message: AutoscalerMessage, now = 0, asked = false): { state: AutoscalerActorState; effects: readonly Effect<AutoscalerMessage>[] } {
  const ctx: StepContext = { now, self, random: () => 0.5, ...(asked ? { replyTo: ASKER } : {}) };
  const result = autoscalerKind.step(state, message, ctx);
  return { state: result.state, effects: result.effects ?? [] };
}

const scales = (effects: readonly Effect<AutoscalerMessage>[]): unknown[] =>
  effects.flatMap((e) => (e.type === 'send' && e.to.kind === 'function' ? [e.message] : []));

function status(state: AutoscalerActorState, now = 0): AutoscalerStatus {
  const reply = step(state, { type: 'as.status' }, now, true).effects[0];
  if (reply?.type !== 'reply') throw new Error('no reply');
  return reply.value as AutoscalerStatus;
}

interface Scale {
  readonly at: number;
  readonly desired: number;
  readonly reason: string;
}

/** Stands in for the function actor: records each fn.scale and reports every sandbox ready at once. */
const fakeFunction: ActorKind<{ scales: readonly Scale[] }, FunctionMessage> = {
  kind: 'function',
  virtual: true,
  init: () => ({ scales: [] }),
  step(state, message, ctx) {
    if (message.type !== 'fn.scale') return { state };
    const ready: AutoscalerMessage = { type: 'as.ready', ready: message.desired };
    return {
      state: { scales: [...state.scales, { at: ctx.now, desired: message.desired, reason: message.reason }] },
      effects: [{ type: 'send', to: autoscalerAddress(ctx.self.id), message: ready }],
    };
  },
};

function simulation(overrides: Partial<AutoscalerConfig> = {}): Simulation {
  const sim = new Simulation({ kinds: [autoscalerKind, fakeFunction], quiet: ['as.tick'] });
  const merged = { ...config, ...overrides };
  sim.spawn(self, { config: merged, containerConcurrency: 1 });
  sim.tell(self, { type: 'as.configure', config: merged, containerConcurrency: 1 } satisfies AutoscalerMessage);
  return sim;
}

const scalesIn = (sim: Simulation): readonly Scale[] => sim.state<{ scales: readonly Scale[] }>(functionAddress('f'))?.scales ?? [];

test('init needs a config and a container concurrency of at least 1', (t) => {
  t.throws(() => autoscalerKind.init(self, undefined, 0), { instanceOf: TypeError });
  t.throws(() => autoscalerKind.init(self, { config, containerConcurrency: 0 }, 0), { instanceOf: TypeError });
  t.is(fresh().name, 'f');
});

test('the first as.configure starts the tick timer; later ones re-arm it only when the tick changes', (t) => {
  const first = step(fresh(), { type: 'as.configure', config, containerConcurrency: 1 });
  t.deepEqual(first.effects, [{ type: 'schedule', afterMs: 1000, message: { type: 'as.tick' }, timer: 'tick' }]);
  t.deepEqual(step(first.state, { type: 'as.configure', config: { ...config, maxScale: 9 }, containerConcurrency: 2 }).effects, []);
  t.like(step(first.state, { type: 'as.configure', config: { ...config, tickMs: 500 }, containerConcurrency: 1 }).effects[0], { type: 'schedule', afterMs: 500 });
});

test('a backlog is decided at once and sized by it; an unchanged decision is not sent again', (t) => {
  const first = step(fresh({}, 2), { type: 'as.backlog', dataplaneId: 'dp1', inFlight: 0, queued: 7 }, 100);
  t.deepEqual(scales(first.effects), [{ type: 'fn.scale', desired: 4, reason: 'backlog' }]);
  t.deepEqual(first.effects[0], { type: 'send', to: functionAddress('f'), message: { type: 'fn.scale', desired: 4, reason: 'backlog' } });
  const second = step(first.state, { type: 'as.backlog', dataplaneId: 'dp1', inFlight: 0, queued: 8 }, 120);
  t.deepEqual(scales(second.effects), []);
  t.is(status(second.state).desired, 4);
  // Within GATHER_MS of the first ask: still sized by the backlog.
  const other = step(second.state, { type: 'as.backlog', dataplaneId: 'dp2', inFlight: 1, queued: 2 }, 130);
  t.deepEqual(scales(other.effects), [{ type: 'fn.scale', desired: 6, reason: 'backlog' }], 'sized by the backlog of every data plane');
});

test('the observed concurrency is the sum over data planes of in-flight and queued requests', (t) => {
  let state = fresh();
  state = step(state, { type: 'as.metric', dataplaneId: 'dp1', inFlight: 3, queued: 1 }).state;
  state = step(state, { type: 'as.metric', dataplaneId: 'dp2', inFlight: 2, queued: 0 }).state;
  state = step(state, { type: 'as.metric', dataplaneId: 'dp1', inFlight: 1, queued: 0 }).state;
  t.is(status(state).observedInFlight, 3, 'the latest report of each data plane counts, not their history');
  t.is(state.scaler.inFlight, 3);
});

test('nonsense counts are ignored with a warning instead of crashing the actor', (t) => {
  const state = fresh();
  const bad = step(state, { type: 'as.metric', dataplaneId: 'dp1', inFlight: -1, queued: 0 });
  t.is(bad.state, state);
  t.like(bad.effects[0], { type: 'log', level: 'warn' });
  t.like(step(state, { type: 'as.ready', ready: 1.5 }).effects[0], { type: 'log', level: 'warn' });
});

test('as.status reports the decision, the ready count and panic; as.stop cancels the tick and stops', (t) => {
  let state = step(fresh(), { type: 'as.ready', ready: 2 }).state;
  state = step(state, { type: 'as.backlog', dataplaneId: 'dp1', inFlight: 2, queued: 3 }, 500).state;
  // A backlog needing 5 sandboxes with 2 ready is over the 200 % panic threshold: panic starts at once.
  t.deepEqual(status(state, 500), {
    desired: 5,
    ready: 2,
    panic: true,
    observedInFlight: 5,
    // A backlog report carries no average: the data plane's stands (none yet).
    observedAverage: 0,
    stableWindowAverage: null,
    panicWindowAverage: null,
    stableWindowMs: 6000,
    panicWindowMs: 2000,
    mode: 'panic',
    recentDecisions: [{ at: 500, from: 0, to: 5, reason: 'backlog', panic: true, ready: 2, trigger: 'backlog', backlog: 3 }],
    queued: 3,
    lastDecision: 'backlog -> 5 at 500 ms',
    decisions: 1,
    totals: EMPTY_TOTALS,
  });
  t.deepEqual(step(state, { type: 'as.stop' }).effects, [{ type: 'cancel', timer: 'tick' }, { type: 'stop' }]);
  t.deepEqual(autoscalerKind.summary?.(state), {
    name: 'f',
    desired: 5,
    sent: 5,
    ready: 2,
    panic: true,
    observed: 5,
    observedAverage: 0,
    dataplanes: 1,
    lastDecision: 'backlog -> 5 at 500 ms',
    decisions: 1,
  });
});

test('tick-driven scale-up: a tick sends the first decision and every change after it', async (t) => {
  const sim = simulation();
  await sim.advance(1000);
  t.deepEqual(scalesIn(sim), [{ at: 1000, desired: 0, reason: 'stable' }], 'the first decision is sent even when it is 0');
  sim.tell(self, { type: 'as.metric', dataplaneId: 'dp1', inFlight: 3, queued: 0 } satisfies AutoscalerMessage);
  await sim.advance(1000);
  t.deepEqual(scalesIn(sim).at(-1), { at: 2000, desired: 3, reason: 'stable' });
  sim.tell(self, { type: 'as.metric', dataplaneId: 'dp1', inFlight: 9, queued: 0 } satisfies AutoscalerMessage);
  await sim.advance(5000);
  // 9 in flight on 3 sandboxes is 3x the ready count: panic, which follows the 2 s panic window (6, then 9).
  t.deepEqual(scalesIn(sim).slice(2), [
    { at: 3000, desired: 6, reason: 'panic' },
    { at: 4000, desired: 9, reason: 'panic' },
  ], 'steady demand sends nothing new');
  t.true((await sim.request<AutoscalerStatus>(self, { type: 'as.status' })).panic);
});

test('scale to zero waits for the keep-alive after the last request', async (t) => {
  const sim = simulation();
  sim.tell(self, { type: 'as.backlog', dataplaneId: 'dp1', inFlight: 0, queued: 4 } satisfies AutoscalerMessage);
  await sim.advance(500);
  t.like(scalesIn(sim).at(-1), { at: 0, desired: 4, reason: 'backlog' });
  sim.tell(self, { type: 'as.metric', dataplaneId: 'dp1', inFlight: 4, queued: 0 } satisfies AutoscalerMessage);
  await sim.advance(2000);
  // Idle from t=2500 on: the count halves at most per tick, then holds at 1 for the keep-alive.
  sim.tell(self, { type: 'as.metric', dataplaneId: 'dp1', inFlight: 0, queued: 0 } satisfies AutoscalerMessage);
  await sim.advance(10_000);
  t.deepEqual(scalesIn(sim).map((s) => s.desired), [4, 3, 2, 1], 'down by the stable window, at most halving per tick');
  t.is((await sim.request<AutoscalerStatus>(self, { type: 'as.status' })).lastDecision, 'keep-alive -> 1 at 12000 ms');
  await sim.advance(20_000);
  t.deepEqual(scalesIn(sim).slice(4), [{ at: 13_000, desired: 0, reason: 'stable' }], 'the first tick 10 000 ms after the last request (t=2500), and no more');
});

test('a configure with a shorter stable window shortens a hold to one such window from now', async (t) => {
  const sim = simulation();
  sim.tell(self, { type: 'as.ready', ready: 3 } satisfies AutoscalerMessage);
  sim.tell(self, { type: 'as.hold', untilMs: 60_000 } satisfies AutoscalerMessage);
  await sim.advance(1000);
  sim.tell(self, { type: 'as.configure', config: { ...config, stableWindowMs: 2000, panicWindowMs: 1000 }, containerConcurrency: 1 } satisfies AutoscalerMessage);
  await sim.advance(5000);
  t.true(scalesIn(sim).some((s) => s.desired < 3 && s.at <= 4000), JSON.stringify(scalesIn(sim)));
});

test('a hold keeps the count up after reconstruction', async (t) => {
  const sim = simulation();
  sim.tell(self, { type: 'as.ready', ready: 3 } satisfies AutoscalerMessage);
  sim.tell(self, { type: 'as.hold', untilMs: 20_000 } satisfies AutoscalerMessage);
  await sim.advance(19_000);
  t.deepEqual(scalesIn(sim).map((s) => s.desired), [3], 'held at the ready count');
  await sim.advance(2000);
  t.deepEqual(scalesIn(sim)[1], { at: 20_000, desired: 1, reason: 'scale-down-limit' }, 'then down, at most halving');
});

test('a data plane that stops reporting has its report dropped after two report periods', async (t) => {
  t.is(staleAfterMs(config), 2 * METRIC_REPORT_INTERVAL_MS, 'a 1 s tick still waits for two 2 s report periods');
  t.is(staleAfterMs({ ...config, tickMs: 5000 }), 10_000);

  const sim = simulation();
  sim.tell(self, { type: 'as.metric', dataplaneId: 'dead', inFlight: 4, queued: 0 } satisfies AutoscalerMessage);
  for (let at = 0; at < 4000; at += 1000) {
    sim.tell(self, { type: 'as.metric', dataplaneId: 'alive', inFlight: 1, queued: 0 } satisfies AutoscalerMessage);
    await sim.advance(1000);
  }
  t.is((await sim.request<AutoscalerStatus>(self, { type: 'as.status' })).observedInFlight, 5, 'both count while fresh');
  sim.tell(self, { type: 'as.metric', dataplaneId: 'alive', inFlight: 1, queued: 0 } satisfies AutoscalerMessage);
  await sim.advance(1000);
  t.is((await sim.request<AutoscalerStatus>(self, { type: 'as.status' })).observedInFlight, 1, 'the silent one is dropped at the first tick after 4000 ms');
  t.true(sim.transcript.some((line) => line.includes('dropped stale in-flight report(s) of dead (older than 4000 ms)')));
  t.true(sim.transcript.every((line) => !line.includes('of alive')), 'a data plane that keeps reporting is never dropped');
});

test('as.stop stops the actor and its timer', async (t) => {
  const sim = simulation();
  await sim.advance(1000);
  sim.tell(self, { type: 'as.stop' } satisfies AutoscalerMessage);
  await sim.advance(10_000);
  t.deepEqual(sim.list('autoscaler'), []);
  t.is(scalesIn(sim).length, 1);
  t.is(sim.deadLetters, 0, 'no tick was left behind');
});

// ---- Counters for the control plane's metrics ----------------------------------------------------------------

/** Totals as a router reports them: `cold` lists the cold starts' queue times. */
function reported(invocations: number, cold: readonly number[] = [], rejected: Record<string, number> = {}): InvocationTotals {
  return {
    invocations,
    coldStarts: cold.length,
    coldStartMsSum: cold.reduce((a, b) => a + b, 0),
    coldStartMsBuckets: [...COLD_START_BUCKETS_MS, Infinity].map((bound) => cold.filter((ms) => ms <= bound).length),
    rejected,
  };
}

const metric = (dataplaneId: string, totals?: InvocationTotals, inFlight = 0, queued = 0): AutoscalerMessage =>
  totals === undefined ? { type: 'as.metric', dataplaneId, inFlight, queued } : { type: 'as.metric', dataplaneId, inFlight, queued, totals };

test('the totals of every data plane are summed; a metric without totals keeps the last ones', (t) => {
  let state = fresh();
  state = step(state, metric('dp1', reported(4, [120], { '429': 1 }))).state;
  state = step(state, metric('dp2', reported(2, [30, 7000], { '429': 2, '504': 1 }))).state;
  state = step(state, metric('dp1', undefined, 1)).state;
  t.deepEqual(status(state).totals, reported(6, [120, 30, 7000], { '429': 3, '504': 1 }));
  t.deepEqual(status(state).totals.coldStartMsBuckets, [0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 3, 3]);
});

test('a data plane whose totals go down restarted: what it had counted is kept, so the sums never decrease', (t) => {
  let state = fresh();
  state = step(state, metric('dp1', reported(5, [100], { '413': 2 }))).state;
  state = step(state, metric('dp2', reported(1))).state;
  state = step(state, metric('dp1', reported(7, [100], { '413': 2 }))).state;
  t.is(status(state).totals.invocations, 8);
  state = step(state, metric('dp1', reported(2))).state;
  t.deepEqual(status(state).totals, reported(10, [100], { '413': 2 }), 'dp1 counts from 0 again: 7 + 2, plus dp2');
  state = step(state, metric('dp1', reported(3, [40]))).state;
  t.deepEqual(status(state).totals, reported(11, [100, 40], { '413': 2 }));
  t.deepEqual(state.counters.get('dp1')?.offset, reported(7, [100], { '413': 2 }));
  state = step(state, metric('dp1', reported(3, [], { '413': 1 }))).state;
  t.deepEqual(status(state).totals, reported(14, [100, 40], { '413': 3 }), 'any counter going down is a restart, here the cold starts');
});

test('malformed totals are ignored with a warning; the load of the report still counts', (t) => {
  const state = step(fresh(), metric('dp1', reported(3))).state;
  const bad = step(state, { type: 'as.metric', dataplaneId: 'dp1', inFlight: 2, queued: 0, totals: { ...reported(1), coldStartMsBuckets: [1] } });
  t.like(bad.effects[0], { type: 'log', level: 'warn' });
  t.regex((bad.effects[0] as { text: string }).text, /coldStartMsBuckets must be 12 integers >= 0/);
  t.is(status(bad.state).observedInFlight, 2);
  t.is(status(bad.state).totals.invocations, 3);
});

test('a stale report stops counting towards the load and the queue, but its totals are kept', async (t) => {
  // Before the tick prunes it, a stale report is already out of `queued`.
  let state = step(fresh(), metric('dp1', reported(1), 1, 4), 0).state;
  t.is(status(state, 0).queued, 4);
  t.is(status(state, staleAfterMs(config) + 1).queued, 0);

  const sim = simulation();
  sim.tell(self, metric('dead', reported(9, [2500]), 2, 3));
  sim.tell(self, metric('alive', reported(1), 1, 1));
  await sim.advance(500);
  t.like(await sim.request<AutoscalerStatus>(self, { type: 'as.status' }), { observedInFlight: 7, queued: 4 });
  for (let at = 500; at < 6000; at += 1000) {
    sim.tell(self, metric('alive', reported(2), 0, 0));
    await sim.advance(1000);
  }
  const after = await sim.request<AutoscalerStatus>(self, { type: 'as.status' });
  t.like(after, { observedInFlight: 0, queued: 0 });
  t.deepEqual(after.totals, reported(11, [2500]), 'the silent data plane still served what it served');
  t.true(sim.transcript.some((line) => line.includes('dropped stale in-flight report(s) of dead')));
  state = step(state, metric('dp1', reported(1), 0, 0), 10_000).state;
  t.is(status(state, 10_000).queued, 0);
});

test('decisions count every fn.scale sent, not the decisions that change nothing', async (t) => {
  let state = fresh({}, 2);
  state = step(state, { type: 'as.backlog', dataplaneId: 'dp1', inFlight: 0, queued: 7 }, 100).state;
  state = step(state, { type: 'as.backlog', dataplaneId: 'dp1', inFlight: 0, queued: 8 }, 120).state;
  t.is(status(state).decisions, 1, 'the same count is not sent again');
  state = step(state, { type: 'as.backlog', dataplaneId: 'dp2', inFlight: 1, queued: 2 }, 130).state;
  t.is(status(state).decisions, 2);

  const sim = simulation();
  sim.tell(self, { type: 'as.backlog', dataplaneId: 'dp1', inFlight: 0, queued: 4 } satisfies AutoscalerMessage);
  sim.tell(self, metric('dp1', reported(4), 4, 0));
  await sim.advance(2500);
  sim.tell(self, metric('dp1', reported(4), 0, 0));
  await sim.advance(30_000);
  const sent = scalesIn(sim);
  t.deepEqual(sent.map((s) => s.desired), [4, 3, 2, 1, 0]);
  t.is((await sim.request<AutoscalerStatus>(self, { type: 'as.status' })).decisions, sent.length);
});

test('bounds apply at configure time: minScale sandboxes at once, a lowered maxScale scales down at once', (t) => {
  const first = autoscalerKind.step(autoscalerKind.init({ kind: 'autoscaler', id: 'f' }, { config: { ...defaultAutoscalerConfig, minScale: 3 }, containerConcurrency: 1 }, 0), { type: 'as.configure', config: { ...defaultAutoscalerConfig, minScale: 3 }, containerConcurrency: 1 }, { now: 0, self: { kind: 'autoscaler', id: 'f' }, random: () => 0 });
  t.like(first.effects?.find((e) => e.type === 'send'), { type: 'send', message: { type: 'fn.scale', desired: 3, reason: 'min-scale' } });
  const second = autoscalerKind.step(first.state, { type: 'as.configure', config: { ...defaultAutoscalerConfig, minScale: 0, maxScale: 1 }, containerConcurrency: 1 }, { now: 10, self: { kind: 'autoscaler', id: 'f' }, random: () => 0 });
  t.like(second.effects?.find((e) => e.type === 'send'), { type: 'send', message: { type: 'fn.scale', desired: 1, reason: 'max-scale' } });
  const third = autoscalerKind.step(second.state, { type: 'as.configure', config: { ...defaultAutoscalerConfig, maxScale: 1 }, containerConcurrency: 1 }, { now: 20, self: { kind: 'autoscaler', id: 'f' }, random: () => 0 });
  t.is(third.effects?.find((e) => e.type === 'send'), undefined, 'within bounds: nothing to say');
});
