import test from 'ava';
import type { AskResult, Effect, ReplyTo, Step, StepContext } from './actor.js';
import {
  BACKOFF_INITIAL_MS,
  BACKOFF_MAX_MS,
  DRAIN_GRACE_MS,
  PLACE_TIMEOUT_MS,
  RETRY_SCALE_MS,
  SandboxTransitionError,
  functionKind,
  routingConfigOf,
  sandboxTemplateOf,
  toDraining,
  toGone,
  toReady,
  type FunctionState,
  type SandboxRecord,
} from './function.js';
import { parseFunctionSpec, type FunctionSpec } from './function-spec.js';
import {
  autoscalerAddress,
  functionAddress,
  schedulerAddress,
  type Endpoint,
  type EndpointSnapshot,
  type FunctionMessage,
  type FunctionStatus,
  type PlaceReply,
  type RouterUpdate,
  type SandboxReport,
} from './messages.js';

const TERM = 7;
const ASKER: ReplyTo = { origin: 9, id: 1 };

function makeSpec(patch: Record<string, unknown> = {}): FunctionSpec {
  const parsed = parseFunctionSpec({ name: 'f', runtime: 'simulated', source: { kind: 'builtin', workload: 'empty' }, timeoutMs: 2000, ...patch });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.spec;
}

function fresh(dataplanes: readonly string[] = [], spec = makeSpec()): FunctionState {
  return functionKind.init(functionAddress('f'), { spec, term: TERM, dataplanes }, 0);
}

type Result = Step<FunctionState, FunctionMessage>;

function step(state: FunctionState, message: FunctionMessage, options: { now?: number; asked?: boolean } = {}): { state: FunctionState; effects: readonly Effect<FunctionMessage>[] } {
  const ctx: StepContext = { now: options.now ?? 0, self: functionAddress('f'), random: () => 0.5, ...(options.asked ? { replyTo: ASKER } : {}) };
  const result: Result = functionKind.step(state, message, ctx);
  return { state: result.state, effects: result.effects ?? [] };
}

/** `kind:id <- type` for each send, for compact assertions. */
function sends(effects: readonly Effect<FunctionMessage>[]): string[] {
  return effects.flatMap((e) => (e.type === 'send' ? [`${e.to.kind}:${e.to.id} <- ${(e.message as { type: string }).type}`] : []));
}

function sent<T>(effects: readonly Effect<FunctionMessage>[], type: string): T[] {
  return effects.flatMap((e) => (e.type === 'send' && (e.message as { type: string }).type === type ? [e.message as T] : []));
}

function placeAsk(effects: readonly Effect<FunctionMessage>[]): { sandboxIds: readonly string[]; answer: (result: AskResult) => FunctionMessage } {
  const asks = effects.filter((e) => e.type === 'ask');
  const ask = asks[0];
  if (asks.length !== 1 || ask?.type !== 'ask') throw new Error(`expected one ask, got ${asks.length}`);
  const message = ask.message as { type: string; sandboxIds: readonly string[] };
  if (message.type !== 'sch.place' || ask.to !== schedulerAddress || ask.timeoutMs !== PLACE_TIMEOUT_MS) throw new Error('expected a sch.place ask');
  return { sandboxIds: message.sandboxIds, answer: ask.then };
}

const endpoint = (sandboxId: string, nodeId: string, version = 1): Endpoint => ({ sandboxId, nodeId, address: `${nodeId}:9000`, concurrency: 1, version });

/** Scales a fresh function to `n` ready sandboxes, placed on nodes n0, n1, ... in turn. */
function withReady(n: number, dataplanes: readonly string[] = []): FunctionState {
  let state = step(fresh(dataplanes), { type: 'fn.configure', spec: makeSpec() }).state;
  if (n === 0) return state;
  const scaled = step(state, { type: 'fn.scale', desired: n, reason: 'test' });
  const { sandboxIds, answer } = placeAsk(scaled.effects);
  const placements = sandboxIds.map((sandboxId, i) => ({ sandboxId, nodeId: `n${i % 3}` }));
  state = step(scaled.state, answer({ ok: true, value: { placements } satisfies PlaceReply })).state;
  for (const { sandboxId, nodeId } of placements) state = step(state, { type: 'fn.sandboxReady', sandboxId, endpoint: endpoint(sandboxId, nodeId) }).state;
  return state;
}

const phases = (state: FunctionState): Record<string, SandboxRecord['phase']> =>
  Object.fromEntries([...state.sandboxes.values()].map((r) => [r.sandboxId, r.phase]));

test('the first fn.configure spawns the autoscaler, pushes a snapshot and replies the status', (t) => {
  const spec = makeSpec();
  const first = step(fresh(), { type: 'fn.configure', spec }, { asked: true });
  t.deepEqual(first.effects[0], { type: 'spawn', address: autoscalerAddress('f'), init: { config: spec.scaling, containerConcurrency: 1 } });
  t.deepEqual(sends(first.effects), ['autoscaler:f <- as.configure', 'router:f <- rt.snapshot']);
  t.deepEqual(sent(first.effects, 'rt.snapshot'), [{ type: 'rt.snapshot', term: TERM, snapshot: { functionName: 'f', version: 1, endpoints: [], routing: routingConfigOf(spec), failure: null } }]);
  const reply = first.effects.find((e) => e.type === 'reply');
  t.like(reply, { type: 'reply', to: ASKER, value: { name: 'f', specVersion: 1, desired: 0, endpointVersion: 1, deleting: false } });

  const updated = step(first.state, { type: 'fn.configure', spec: { ...spec, version: 2, queueDepth: 5 } });
  t.false(updated.effects.some((e) => e.type === 'spawn'));
  t.deepEqual(sends(updated.effects), ['autoscaler:f <- as.configure', 'router:f <- rt.snapshot']);
  t.is(sent<{ snapshot: EndpointSnapshot }>(updated.effects, 'rt.snapshot')[0]?.snapshot.routing.queueDepth, 5);
  t.is(updated.state.endpointVersion, 2);

  const stale = step(updated.state, { type: 'fn.configure', spec }, { asked: true });
  t.is(stale.state.spec.version, 2, 'an older spec is a late duplicate');
  t.deepEqual(sends(stale.effects), []);
});

test('a spec for another function is refused', (t) => {
  const result = step(fresh(), { type: 'fn.configure', spec: makeSpec({ name: 'g' }) }, { asked: true });
  t.like(result.effects[0], { type: 'fail', error: { code: 'NAME_MISMATCH' } });
  t.throws(() => functionKind.init(functionAddress('g'), { spec: makeSpec(), term: 1 }, 0), { instanceOf: TypeError });
});

test('scale up from 0: placement for unique ids, then node.create with the template on each placed node', (t) => {
  const spec = makeSpec({ cpuMilli: 250, memoryMiB: 64 });
  const configured = step(fresh([], spec), { type: 'fn.configure', spec }).state;
  const scaled = step(configured, { type: 'fn.scale', desired: 3, reason: 'backlog' });
  const ask = scaled.effects.find((e) => e.type === 'ask');
  t.like(ask, { message: { type: 'sch.place', functionName: 'f', request: { cpuMilli: 250, memoryMiB: 64 }, sandboxIds: ['f-7-0', 'f-7-1', 'f-7-2'] } });

  // A repeated decision does not ask twice while the placement is out; a higher one asks for the difference.
  const again = step(scaled.state, { type: 'fn.scale', desired: 3, reason: 'tick' });
  t.false(again.effects.some((e) => e.type === 'ask'));
  const more = step(again.state, { type: 'fn.scale', desired: 5, reason: 'tick' });
  t.deepEqual(placeAsk(more.effects).sandboxIds, ['f-7-3', 'f-7-4']);

  const { answer } = placeAsk(scaled.effects);
  const placed = step(more.state, answer({ ok: true, value: { placements: [{ sandboxId: 'f-7-0', nodeId: 'a' }, { sandboxId: 'f-7-1', nodeId: 'b' }, { sandboxId: 'f-7-2', nodeId: 'a' }] } }), { now: 5 });
  t.deepEqual(sends(placed.effects), ['node:a <- node.create', 'node:b <- node.create', 'node:a <- node.create']);
  t.deepEqual(sent(placed.effects, 'node.create')[0], { type: 'node.create', term: TERM, sandboxId: 'f-7-0', template: sandboxTemplateOf(spec) });
  t.deepEqual(phases(placed.state), { 'f-7-0': 'creating', 'f-7-1': 'creating', 'f-7-2': 'creating' });
  t.is(placed.state.placing.size, 1, 'the second request is still out');
});

test('sandboxReady makes it ready: one delta with the endpoint, and the autoscaler hears the ready count', (t) => {
  const state = withReady(0);
  const scaled = step(state, { type: 'fn.scale', desired: 1, reason: 't' });
  const placed = step(scaled.state, placeAsk(scaled.effects).answer({ ok: true, value: { placements: [{ sandboxId: 'f-7-0', nodeId: 'a' }] } }));
  const ready = step(placed.state, { type: 'fn.sandboxReady', sandboxId: 'f-7-0', endpoint: endpoint('f-7-0', 'a') }, { now: 40 });
  t.deepEqual(sends(ready.effects), ['router:f <- rt.delta', 'autoscaler:f <- as.ready']);
  t.deepEqual(sent(ready.effects, 'rt.delta'), [{ type: 'rt.delta', term: TERM, functionName: 'f', version: 2, add: [endpoint('f-7-0', 'a')], remove: [] }]);
  t.deepEqual(sent(ready.effects, 'as.ready'), [{ type: 'as.ready', ready: 1 }]);
  t.like(ready.state.sandboxes.get('f-7-0'), { phase: 'ready', since: 40 });

  const repeated = step(ready.state, { type: 'fn.sandboxReady', sandboxId: 'f-7-0', endpoint: endpoint('f-7-0', 'a') });
  t.deepEqual(repeated.effects, [], 'a repeated report is not announced twice');
});

test('a sandbox nobody wants is deleted on its node', (t) => {
  const unknown = step(withReady(1), { type: 'fn.sandboxReady', sandboxId: 'x-1-0', endpoint: endpoint('x-1-0', 'n9') });
  t.deepEqual(sends(unknown.effects), ['node:n9 <- node.delete']);

  // Evicted while it was being created, then reported ready anyway.
  const scaled = step(withReady(0), { type: 'fn.scale', desired: 1, reason: 't' });
  const placed = step(scaled.state, placeAsk(scaled.effects).answer({ ok: true, value: { placements: [{ sandboxId: 'f-7-0', nodeId: 'a' }] } }));
  const down = step(placed.state, { type: 'fn.scale', desired: 0, reason: 't' });
  t.deepEqual(sends(down.effects), ['node:a <- node.delete']);
  const late = step(down.state, { type: 'fn.sandboxReady', sandboxId: 'f-7-0', endpoint: endpoint('f-7-0', 'a') });
  t.deepEqual(sends(late.effects), ['node:a <- node.delete']);
  t.is(late.state.sandboxes.get('f-7-0')?.phase, 'gone');
});

test('a placement shortfall creates what was placed and retries the rest after a named timer', (t) => {
  const scaled = step(withReady(0), { type: 'fn.scale', desired: 3, reason: 't' });
  const short = step(scaled.state, placeAsk(scaled.effects).answer({ ok: true, value: { placements: [{ sandboxId: 'f-7-0', nodeId: 'a' }], shortfall: 'no room' } }));
  t.deepEqual(sends(short.effects), ['node:a <- node.create']);
  t.like(short.effects.find((e) => e.type === 'schedule'), { afterMs: RETRY_SCALE_MS, message: { type: 'fn.retryScale' }, timer: 'retryScale' });
  const retry = step(short.state, { type: 'fn.retryScale' });
  t.deepEqual(placeAsk(retry.effects).sandboxIds, ['f-7-3', 'f-7-4'], 'new ids: the unplaced ones are never reused');
});

test('a failed placement ask abandons its ids and retries', (t) => {
  const scaled = step(withReady(0), { type: 'fn.scale', desired: 2, reason: 't' });
  const failed = step(scaled.state, placeAsk(scaled.effects).answer({ ok: false, error: { code: 'ASK_TIMEOUT', message: 'slow' } }));
  t.deepEqual(sent(failed.effects, 'sch.abandon'), [{ type: 'sch.abandon', functionName: 'f', sandboxIds: ['f-7-0', 'f-7-1'] }]);
  t.true(failed.effects.some((e) => e.type === 'schedule' && e.timer === 'retryScale'));
  t.is(failed.state.placing.size, 0);
});

test('placements that arrive after demand fell are released, not created', (t) => {
  const scaled = step(withReady(0), { type: 'fn.scale', desired: 3, reason: 't' });
  const fell = step(scaled.state, { type: 'fn.scale', desired: 1, reason: 't' });
  t.deepEqual(fell.effects, [], 'nothing to evict: the placement is still out');
  const placements = ['f-7-0', 'f-7-1', 'f-7-2'].map((sandboxId) => ({ sandboxId, nodeId: 'a' }));
  const placed = step(fell.state, placeAsk(scaled.effects).answer({ ok: true, value: { placements } }));
  t.deepEqual(sends(placed.effects), ['node:a <- node.create', 'scheduler:cluster <- sch.release', 'scheduler:cluster <- sch.release']);
  t.false(placed.effects.some((e) => e.type === 'schedule'));
});

test('scale down with no data plane known deletes ready sandboxes at once, newest first', (t) => {
  // f-7-0 and f-7-1 are placed at t=0, f-7-2 at t=50: the newest goes first, then the lower id of the older two.
  const grown = step(withReady(2), { type: 'fn.scale', desired: 3, reason: 't' }, { now: 50 });
  let state = step(grown.state, placeAsk(grown.effects).answer({ ok: true, value: { placements: [{ sandboxId: 'f-7-2', nodeId: 'n2' }] } }), { now: 50 }).state;
  state = step(state, { type: 'fn.sandboxReady', sandboxId: 'f-7-2', endpoint: endpoint('f-7-2', 'n2') }, { now: 60 }).state;
  const down = step(state, { type: 'fn.scale', desired: 1, reason: 'stable' }, { now: 100 });
  t.deepEqual(sends(down.effects), ['router:f <- rt.delta', 'node:n2 <- node.delete', 'node:n0 <- node.delete', 'autoscaler:f <- as.ready']);
  t.like(sent(down.effects, 'rt.delta')[0], { remove: ['f-7-0', 'f-7-2'], add: [] });
  t.deepEqual(phases(down.state), { 'f-7-0': 'gone', 'f-7-1': 'ready', 'f-7-2': 'gone' });

  const deleted = step(down.state, { type: 'fn.sandboxDeleted', sandboxId: 'f-7-2', nodeId: 'n2' });
  t.deepEqual(sent(deleted.effects, 'sch.release'), [{ type: 'sch.release', functionName: 'f', sandboxId: 'f-7-2', nodeId: 'n2' }]);
  t.false(deleted.state.sandboxes.has('f-7-2'));
  t.deepEqual(sends(deleted.effects), ['scheduler:cluster <- sch.release'], 'no replacement: it was asked for');
});

test('scale down with data planes drains on every one of them before deleting', (t) => {
  const state = withReady(2, ['dp1', 'dp2']);
  const down = step(state, { type: 'fn.scale', desired: 1, reason: 'stable' });
  t.deepEqual(sends(down.effects), ['router:f <- rt.delta', 'autoscaler:f <- as.ready']);
  t.like(down.effects.find((e) => e.type === 'schedule'), { afterMs: 2000 + DRAIN_GRACE_MS, message: { type: 'fn.drainTimeout', sandboxId: 'f-7-0' }, timer: 'drain:f-7-0' });
  t.like(down.state.sandboxes.get('f-7-0'), { phase: 'draining', waitingFor: ['dp1', 'dp2'] });

  const one = step(down.state, { type: 'fn.drained', sandboxId: 'f-7-0', dataplaneId: 'dp2' });
  t.deepEqual(one.effects, []);
  t.like(one.state.sandboxes.get('f-7-0'), { phase: 'draining', waitingFor: ['dp1'] });
  const both = step(one.state, { type: 'fn.drained', sandboxId: 'f-7-0', dataplaneId: 'dp1' });
  t.deepEqual(both.effects.map((e) => e.type), ['cancel', 'send']);
  t.deepEqual(sends(both.effects), ['node:n0 <- node.delete']);
  t.is(both.state.sandboxes.get('f-7-0')?.phase, 'gone');
  t.deepEqual(step(both.state, { type: 'fn.drainTimeout', sandboxId: 'f-7-0' }).effects, [], 'a late timer does nothing');
});

test('a drain that never completes is cut short by the drain timeout', (t) => {
  const down = step(withReady(1, ['dp1']), { type: 'fn.scale', desired: 0, reason: 'idle' });
  const timeout = step(down.state, { type: 'fn.drainTimeout', sandboxId: 'f-7-0' });
  t.deepEqual(sends(timeout.effects), ['node:n0 <- node.delete']);
  t.is(timeout.state.sandboxes.get('f-7-0')?.phase, 'gone');
});

test('a data plane that leaves is no longer waited for', (t) => {
  const down = step(withReady(1, ['dp1', 'dp2']), { type: 'fn.scale', desired: 0, reason: 'idle' });
  const fewer = step(down.state, { type: 'fn.dataplanes', ids: ['dp2', 'dp3'] });
  t.like(fewer.state.sandboxes.get('f-7-0'), { phase: 'draining', waitingFor: ['dp2'] });
  t.deepEqual(sends(fewer.effects), ['router:f <- rt.snapshot'], 'dp3 joined: it gets the full set');
  const none = step(fewer.state, { type: 'fn.dataplanes', ids: [] });
  t.deepEqual(sends(none.effects), ['node:n0 <- node.delete']);
});

test('a failed sandbox is dropped, released and replaced', (t) => {
  const failed = step(withReady(2), { type: 'fn.sandboxFailed', sandboxId: 'f-7-1', nodeId: 'n1', reason: 'exit 1' });
  t.deepEqual(sends(failed.effects), ['router:f <- rt.delta', 'scheduler:cluster <- sch.release', 'autoscaler:f <- as.ready']);
  t.like(sent(failed.effects, 'rt.delta')[0], { remove: ['f-7-1'] });
  t.deepEqual(placeAsk(failed.effects).sandboxIds, ['f-7-2']);
  t.false(failed.state.sandboxes.has('f-7-1'));
});

/** Places the one sandbox `effects` ask for on node a at `now`, and fails its creation at `now + 100` ms. */
function failOnce(state: FunctionState, effects: readonly Effect<FunctionMessage>[], now: number): { state: FunctionState; effects: readonly Effect<FunctionMessage>[] } {
  const { sandboxIds, answer } = placeAsk(effects);
  const placed = step(state, answer({ ok: true, value: { placements: sandboxIds.map((sandboxId) => ({ sandboxId, nodeId: 'a' })) } }), { now });
  let result = placed;
  for (const sandboxId of sandboxIds) result = step(result.state, { type: 'fn.sandboxFailed', sandboxId, nodeId: 'a', reason: 'SANDBOX_CREATE_FAILED: cannot load the module' }, { now: now + 100 });
  return result;
}

const statusOf = (state: FunctionState, now = 0): FunctionStatus => (step(state, { type: 'fn.status' }, { now, asked: true }).effects[0] as { value: FunctionStatus }).value;
const snapshots = (effects: readonly Effect<FunctionMessage>[]): EndpointSnapshot[] => sent<{ snapshot: EndpointSnapshot }>(effects, 'rt.snapshot').map((m) => m.snapshot);

test('a creation failure is counted, the function is failed with its cause, and the next attempt waits out a backoff of 10 s doubling to 5 min', (t) => {
  const scaled = step(withReady(0), { type: 'fn.scale', desired: 1, reason: 't' });
  const failed = failOnce(scaled.state, scaled.effects, 0);
  t.deepEqual(sends(failed.effects), ['scheduler:cluster <- sch.release', 'router:f <- rt.snapshot']);
  t.false(failed.effects.some((e) => e.type === 'ask'));
  t.like(failed.effects.find((e) => e.type === 'schedule'), { afterMs: BACKOFF_INITIAL_MS, timer: 'retryScale' });
  t.deepEqual(snapshots(failed.effects)[0]?.failure, 'function f (version 1) cannot start: SANDBOX_CREATE_FAILED: cannot load the module', 'the routers answer 503 with it');
  t.like(statusOf(failed.state, 100), {
    state: 'failed',
    stateReason: 'function f (version 1) cannot start: SANDBOX_CREATE_FAILED: cannot load the module (1 failed creation(s); next attempt in 10 s)',
    failures: { count: 1, lastError: 'SANDBOX_CREATE_FAILED: cannot load the module', lastAt: 100, backoffMs: 10_000, retryAt: 10_100 },
  });

  // Demand during the backoff asks for nothing; it only sets the retry for when the backoff ends.
  const demand = step(failed.state, { type: 'fn.scale', desired: 2, reason: 't' }, { now: 4100 });
  t.false(demand.effects.some((e) => e.type === 'ask'));
  t.like(demand.effects.find((e) => e.type === 'schedule'), { afterMs: 6000, timer: 'retryScale' });

  let state = demand.state;
  let now = 10_100;
  const delays: number[] = [];
  for (let attempt = 0; attempt < 7; attempt++) {
    const retry = step(state, { type: 'fn.retryScale' }, { now });
    const again = failOnce(retry.state, retry.effects, now);
    const schedule = again.effects.find((e) => e.type === 'schedule');
    if (schedule?.type !== 'schedule') throw new Error('no retry scheduled');
    delays.push(schedule.afterMs);
    t.deepEqual(snapshots(again.effects), [], 'the same cause again: the routers already have it');
    state = again.state;
    now += 100 + schedule.afterMs;
  }
  t.deepEqual(delays, [20_000, 40_000, 80_000, 160_000, BACKOFF_MAX_MS, BACKOFF_MAX_MS, BACKOFF_MAX_MS]);
  t.is(statusOf(state).failures?.count, 1 + 2 * 7, 'one at first, then each attempt asked for the 2 wanted');
});

test('sandboxes asked for together that fail together are one failed attempt', (t) => {
  const scaled = step(withReady(0), { type: 'fn.scale', desired: 3, reason: 't' });
  const failed = failOnce(scaled.state, scaled.effects, 0);
  t.like(statusOf(failed.state).failures, { count: 3, backoffMs: BACKOFF_INITIAL_MS, retryAt: BACKOFF_INITIAL_MS + 100 });
});

test('a successful start or an update clears the failures: the function is active and creates at once', (t) => {
  const scaled = step(withReady(0), { type: 'fn.scale', desired: 1, reason: 't' });
  const failed = failOnce(scaled.state, scaled.effects, 0);

  const retry = step(failed.state, { type: 'fn.retryScale' }, { now: 10_100 });
  const { sandboxIds, answer } = placeAsk(retry.effects);
  const placed = step(retry.state, answer({ ok: true, value: { placements: [{ sandboxId: sandboxIds[0]!, nodeId: 'a' }] } }), { now: 10_100 });
  const started = step(placed.state, { type: 'fn.sandboxReady', sandboxId: sandboxIds[0]!, endpoint: endpoint(sandboxIds[0]!, 'a') }, { now: 10_200 });
  t.deepEqual(sends(started.effects), ['router:f <- rt.snapshot', 'autoscaler:f <- as.ready'], 'the snapshot lifts the failure and adds the endpoint');
  t.like(snapshots(started.effects)[0], { failure: null, endpoints: [endpoint(sandboxIds[0]!, 'a')] });
  t.like(statusOf(started.state), { state: 'active', stateReason: null, failures: null });

  const updated = step(failed.state, { type: 'fn.configure', spec: { ...makeSpec(), version: 2 } }, { now: 500 });
  t.like(statusOf(updated.state), { state: 'active', failures: null });
  t.deepEqual(placeAsk(updated.effects).sandboxIds, ['f-7-1'], 'no backoff after an update');
  t.deepEqual(snapshots(updated.effects).map((snapshot) => snapshot.failure), [null]);
});

test('deleting a failed function sends the routers no snapshot after rt.deleted', (t) => {
  const scaled = step(withReady(0), { type: 'fn.scale', desired: 1, reason: 't' });
  const failed = failOnce(scaled.state, scaled.effects, 0);
  const deleted = step(failed.state, { type: 'fn.delete' });
  t.deepEqual(sends(deleted.effects), ['autoscaler:f <- as.stop', 'router:f <- rt.deleted']);
});

test('a sandbox that served and then failed is no creation failure: it is replaced at once', (t) => {
  const crashed = step(withReady(1), { type: 'fn.sandboxFailed', sandboxId: 'f-7-0', nodeId: 'n0', reason: 'exit 1' });
  t.is(statusOf(crashed.state).failures, null);
  t.deepEqual(placeAsk(crashed.effects).sandboxIds, ['f-7-1'], 'replaced at once');
});

test('a lost node drops its sandboxes without releasing them, and they are recreated', (t) => {
  const state = withReady(3);
  const lost = step(state, { type: 'fn.nodeLost', nodeId: 'n1' });
  t.deepEqual(sends(lost.effects), ['router:f <- rt.delta', 'autoscaler:f <- as.ready']);
  t.deepEqual(placeAsk(lost.effects).sandboxIds, ['f-7-3']);
  t.deepEqual(Object.keys(phases(lost.state)), ['f-7-0', 'f-7-2']);
});

test('endpoint versions are consecutive across snapshots and deltas, and fn.getEndpoints gives the full set', (t) => {
  const versions: number[] = [];
  const record = (effects: readonly Effect<FunctionMessage>[]): void => {
    for (const m of sent<{ version: number }>(effects, 'rt.delta')) versions.push(m.version);
    for (const m of sent<{ snapshot: EndpointSnapshot }>(effects, 'rt.snapshot')) versions.push(m.snapshot.version);
  };
  let state = fresh();
  for (const message of [
    { type: 'fn.configure', spec: makeSpec() },
    { type: 'fn.scale', desired: 2, reason: 't' },
  ] as FunctionMessage[]) {
    const r = step(state, message);
    record(r.effects);
    state = r.state;
    if (message.type === 'fn.scale') {
      const placed = step(state, placeAsk(r.effects).answer({ ok: true, value: { placements: [{ sandboxId: 'f-7-0', nodeId: 'a' }, { sandboxId: 'f-7-1', nodeId: 'b' }] } }));
      state = placed.state;
    }
  }
  for (const message of [
    { type: 'fn.sandboxReady', sandboxId: 'f-7-0', endpoint: endpoint('f-7-0', 'a') },
    { type: 'fn.sandboxReady', sandboxId: 'f-7-1', endpoint: endpoint('f-7-1', 'b') },
    { type: 'fn.sandboxReady', sandboxId: 'f-7-1', endpoint: endpoint('f-7-1', 'b') },
    { type: 'fn.configure', spec: makeSpec({ version: 2 }) },
    { type: 'fn.sandboxFailed', sandboxId: 'f-7-0', nodeId: 'a', reason: 'oom' },
  ] as FunctionMessage[]) {
    const r = step(state, message);
    record(r.effects);
    state = r.state;
  }
  t.deepEqual(versions, [1, 2, 3, 4, 5]);
  const got = step(state, { type: 'fn.getEndpoints' }, { asked: true });
  t.like(got.effects[0], { type: 'reply', value: { functionName: 'f', version: 5, endpoints: [endpoint('f-7-1', 'b')] } });
});

test('fn.delete drains and deletes everything, stops the autoscaler, and stops once nothing is left', (t) => {
  let state = withReady(2, ['dp1']);
  const scaled = step(state, { type: 'fn.scale', desired: 3, reason: 't' });
  state = step(scaled.state, placeAsk(scaled.effects).answer({ ok: true, value: { placements: [{ sandboxId: 'f-7-2', nodeId: 'n2' }] } })).state;

  const deleting = step(state, { type: 'fn.delete' }, { asked: true });
  t.deepEqual(sends(deleting.effects), ['router:f <- rt.delta', 'autoscaler:f <- as.stop', 'node:n2 <- node.delete', 'router:f <- rt.deleted']);
  t.like(sent(deleting.effects, 'rt.delta')[0], { remove: ['f-7-0', 'f-7-1'] });
  t.like(deleting.effects.at(-1), { type: 'reply', value: { deleting: true } });
  t.deepEqual(phases(deleting.state), { 'f-7-0': 'draining', 'f-7-1': 'draining', 'f-7-2': 'gone' });
  t.is(deleting.state.desired, 0);

  t.deepEqual(step(deleting.state, { type: 'fn.scale', desired: 5, reason: 't' }).effects, [], 'no scaling while deleting');
  t.like(step(deleting.state, { type: 'fn.configure', spec: makeSpec() }, { asked: true }).effects[0], { type: 'fail', error: { code: 'FUNCTION_DELETING' } });

  state = deleting.state;
  for (const id of ['f-7-0', 'f-7-1']) state = step(state, { type: 'fn.drained', sandboxId: id, dataplaneId: 'dp1' }).state;
  state = step(state, { type: 'fn.sandboxDeleted', sandboxId: 'f-7-0', nodeId: 'n0' }).state;
  state = step(state, { type: 'fn.sandboxDeleted', sandboxId: 'f-7-2', nodeId: 'n2' }).state;
  const last = step(state, { type: 'fn.sandboxDeleted', sandboxId: 'f-7-1', nodeId: 'n1' });
  t.deepEqual(last.effects.map((e) => e.type), ['send', 'log', 'stop']);
});

test('fn.delete waits for an outstanding placement and releases it', (t) => {
  const scaled = step(withReady(0), { type: 'fn.scale', desired: 1, reason: 't' });
  const deleting = step(scaled.state, { type: 'fn.delete' });
  t.false(deleting.effects.some((e) => e.type === 'stop'));
  const placed = step(deleting.state, placeAsk(scaled.effects).answer({ ok: true, value: { placements: [{ sandboxId: 'f-7-0', nodeId: 'a' }] } }));
  t.deepEqual(sends(placed.effects), ['scheduler:cluster <- sch.release']);
  t.is(placed.effects.at(-1)?.type, 'stop');
});

/** What workers report of sandboxes of f, the i-th on node n<i>. */
function reportsOf(...sandboxIds: string[]): SandboxReport[] {
  return sandboxIds.map((sandboxId, i) => ({ sandboxId, functionName: 'f', nodeId: `n${i}`, endpoint: endpoint(sandboxId, `n${i}`), resources: { cpuMilli: 100, memoryMiB: 128 }, createdAt: 10, version: 1 }));
}

test('fn.adopt takes reported sandboxes as ready, pushes a snapshot and keeps them wanted', (t) => {
  const reports = reportsOf('f-3-0', 'f-3-1');
  const other = { ...reports[0]!, sandboxId: 'g-3-0', functionName: 'g' };
  const configured = step(fresh(), { type: 'fn.configure', spec: makeSpec() }).state;
  const adopted = step(configured, { type: 'fn.adopt', sandboxes: [...reports, other] });
  t.deepEqual(sends(adopted.effects), ['router:f <- rt.snapshot', 'autoscaler:f <- as.ready']);
  t.like(sent<{ snapshot: EndpointSnapshot }>(adopted.effects, 'rt.snapshot')[0]?.snapshot, { version: 2, endpoints: [endpoint('f-3-0', 'n0'), endpoint('f-3-1', 'n1')] });
  t.deepEqual(sent(adopted.effects, 'as.ready'), [{ type: 'as.ready', ready: 2 }]);
  t.is(adopted.state.desired, 2);
  t.false(adopted.effects.some((e) => e.type === 'ask'));

  const status = step(adopted.state, { type: 'fn.status' }, { asked: true }).effects[0];
  t.like(status, { type: 'reply', value: { ready: 2, creating: 0, desired: 2 } });
});

test('a function rebuilt by a new leader announces nothing until configured, adopts what the workers list, then routes to it and holds scale-down one stable window', (t) => {
  const reports = reportsOf('f-3-0', 'f-3-1');
  const spec = makeSpec();
  const rebuilt = functionKind.init(functionAddress('f'), { spec, term: TERM, rebuilt: true }, 0);
  // During the wait a sandbox that the old leader was creating becomes ready: it reaches this actor, which
  // does not want it.
  const late = step(rebuilt, { type: 'fn.sandboxReady', sandboxId: 'f-3-9', endpoint: endpoint('f-3-9', 'n2') });
  t.deepEqual(sends(late.effects), ['node:n2 <- node.delete']);
  const adopted = step(late.state, { type: 'fn.adopt', sandboxes: reports });
  t.deepEqual(sends(adopted.effects), [], 'nothing is announced before the first configure');
  t.like(adopted.state, { desired: 2, counts: { creating: 0, ready: 2, draining: 0, gone: 0 } });
  const configured = step(adopted.state, { type: 'fn.configure', spec }, { now: 500 });
  t.deepEqual(sends(configured.effects), ['autoscaler:f <- as.hold', 'autoscaler:f <- as.configure', 'router:f <- rt.snapshot', 'autoscaler:f <- as.ready']);
  t.deepEqual(sent(configured.effects, 'as.hold'), [{ type: 'as.hold', untilMs: 500 + spec.scaling.stableWindowMs }]);
  t.like(sent<{ term: number; snapshot: EndpointSnapshot }>(configured.effects, 'rt.snapshot')[0], { term: TERM, snapshot: { version: 1, endpoints: [endpoint('f-3-0', 'n0'), endpoint('f-3-1', 'n1')] } });
  t.false(configured.effects.some((e) => e.type === 'ask'), 'nothing is created');
  // A function started afresh holds nothing.
  t.deepEqual(sent(step(fresh(), { type: 'fn.configure', spec }).effects, 'as.hold'), []);
});

test('a function rebuilt with adopted sandboxes older than its stored spec replaces them from its first configure', (t) => {
  const report = (sandboxId: string, version: number): SandboxReport => ({ sandboxId, functionName: 'f', nodeId: 'n0', endpoint: endpoint(sandboxId, 'n0', version), resources: { cpuMilli: 100, memoryMiB: 128 }, createdAt: 10, version });
  const spec = rolledSpec(2);
  const rebuilt = functionKind.init(functionAddress('f'), { spec, term: TERM, rebuilt: true }, 0);
  const adopted = step(rebuilt, { type: 'fn.adopt', sandboxes: [report('f-3-0', 1), report('f-3-1', 2)] });
  t.like(adopted.state, { desired: 2, counts: { ready: 2 }, outdated: { ready: 1 } });
  t.deepEqual(adopted.effects.filter((e) => e.type === 'ask' || e.type === 'send'), [], 'nothing placed or announced before the configure');
  const configured = step(adopted.state, { type: 'fn.configure', spec }, { now: 500 });
  t.deepEqual(placeAsk(configured.effects).sandboxIds, ['f-7-0'], 'one of version 2 for the one of version 1');
  t.like(sent<{ snapshot: EndpointSnapshot }>(configured.effects, 'rt.snapshot')[0]?.snapshot, { endpoints: [endpoint('f-3-0', 'n0', 1), endpoint('f-3-1', 'n0', 2)] }, 'the old one serves meanwhile');
  t.like(statusOf(configured.state), { state: 'updating', outdated: 1 });
});

test('impossible phase transitions throw', (t) => {
  const creating: SandboxRecord = { phase: 'creating', sandboxId: 's', nodeId: 'n', version: 1, createdAt: 0, since: 0 };
  const gone = toGone(creating, 1);
  t.throws(() => toDraining(creating, [], 1), { instanceOf: SandboxTransitionError, message: /creating to draining/ });
  t.throws(() => toReady(gone, endpoint('s', 'n'), 2), { instanceOf: SandboxTransitionError });
  t.throws(() => toGone(gone, 2), { instanceOf: SandboxTransitionError });
  t.is(toDraining(toReady(creating, endpoint('s', 'n'), 1), ['dp'], 2).phase, 'draining');
  const error = t.throws(() => toReady(gone, endpoint('s', 'n'), 2));
  t.is((error as SandboxTransitionError).code, 'IMPOSSIBLE_TRANSITION');
});

test('the summary is small JSON', (t) => {
  const summary = functionKind.summary?.(withReady(2));
  t.deepEqual(summary, { name: 'f', term: TERM, specVersion: 1, version: 1, desired: 2, creating: 0, ready: 2, draining: 0, gone: 0, outdated: 0, failures: 0, placing: 0, endpointVersion: 3, dataplanes: 0, deleting: false });
  t.notThrows(() => JSON.stringify(summary));
});


test('scale down evicts the sandboxes the data planes report idle, busy ones last', (t) => {
  // Three ready at t=0: without load the newest-first rule would evict f-7-2 and then f-7-1.
  let state = withReady(3);
  state = step(state, { type: 'fn.load', dataplaneId: 'dp1', inFlight: { 'f-7-2': 3 } }).state;
  state = step(state, { type: 'fn.load', dataplaneId: 'dp2', inFlight: { 'f-7-1': 1 } }).state;
  const down = step(state, { type: 'fn.scale', desired: 1, reason: 'stable' }, { now: 100 });
  t.deepEqual(phases(down.state), { 'f-7-0': 'gone', 'f-7-1': 'gone', 'f-7-2': 'ready' }, 'the idle one, then the less busy one');
  // A data plane that leaves takes its report with it.
  const left = step(state, { type: 'fn.dataplanes', ids: ['dp2'] });
  t.deepEqual([...left.state.load.keys()], ['dp2']);
});

// ---- Versions: rollouts ---------------------------------------------------------------------------

/** `spec` as an update that changed the sandbox template makes it. */
const rolledSpec = (version: number, patch: Record<string, unknown> = {}): FunctionSpec => ({ ...makeSpec(patch), version, templateVersion: version });

/** Places what `effects` ask for on node b, and reports each ready. */
function startAll(state: FunctionState, effects: readonly Effect<FunctionMessage>[], now = 0): { state: FunctionState; effects: Effect<FunctionMessage>[] } {
  const { sandboxIds, answer } = placeAsk(effects);
  let result = step(state, answer({ ok: true, value: { placements: sandboxIds.map((sandboxId) => ({ sandboxId, nodeId: 'b' })) } }), { now });
  const all: Effect<FunctionMessage>[] = [...result.effects];
  for (const sandboxId of sandboxIds) {
    result = step(result.state, { type: 'fn.sandboxReady', sandboxId, endpoint: endpoint(sandboxId, 'b', 2) }, { now });
    all.push(...result.effects);
  }
  return { state: result.state, effects: all };
}

test('an update of the template starts sandboxes of the new version; each one ready drains one of the old', (t) => {
  const state = withReady(2, ['dp1']);
  const updated = step(state, { type: 'fn.configure', spec: rolledSpec(2, { memoryMiB: 256 }) }, { asked: true });
  const { sandboxIds, answer } = placeAsk(updated.effects);
  t.deepEqual(sandboxIds, ['f-7-2', 'f-7-3'], 'as many as desired, of the new version');
  t.like(statusOf(updated.state), { version: 2, state: 'updating', outdated: 2, ready: 2 });
  t.like((updated.effects.find((e) => e.type === 'reply') as { value: FunctionStatus }).value, { version: 2, state: 'updating' });

  const placed = step(updated.state, answer({ ok: true, value: { placements: [{ sandboxId: 'f-7-2', nodeId: 'b' }, { sandboxId: 'f-7-3', nodeId: 'b' }] } }));
  t.like(sent<{ template: { version: number; memoryMiB: number } }>(placed.effects, 'node.create')[0]?.template, { version: 2, memoryMiB: 256 });
  const first = step(placed.state, { type: 'fn.sandboxReady', sandboxId: 'f-7-2', endpoint: endpoint('f-7-2', 'b', 2) });
  t.deepEqual(sent<RouterUpdate>(first.effects, 'rt.delta'), [{ type: 'rt.delta', term: TERM, functionName: 'f', version: 5, add: [endpoint('f-7-2', 'b', 2)], remove: ['f-7-0'] }], 'in one delta: one in, one out');
  t.like(statusOf(first.state), { state: 'updating', outdated: 1, draining: 1 });
  const second = step(first.state, { type: 'fn.sandboxReady', sandboxId: 'f-7-3', endpoint: endpoint('f-7-3', 'b', 2) });
  t.like(sent<RouterUpdate>(second.effects, 'rt.delta')[0], { add: [endpoint('f-7-3', 'b', 2)], remove: ['f-7-1'] });
  t.like(statusOf(second.state), { version: 2, state: 'active', outdated: 0, ready: 2, draining: 2 });
  t.deepEqual(
    statusOf(second.state).sandboxes.map((s) => `${s.sandboxId} v${s.version} ${s.phase}`),
    ['f-7-0 v1 draining', 'f-7-1 v1 draining', 'f-7-2 v2 ready', 'f-7-3 v2 ready'],
  );
});

test('a scaling-only update restarts nothing', (t) => {
  const state = withReady(2, ['dp1']);
  const spec = { ...makeSpec({ scaling: { maxScale: 5 } }), version: 2 };
  const updated = step(state, { type: 'fn.configure', spec });
  t.false(updated.effects.some((e) => e.type === 'ask'));
  t.deepEqual(sends(updated.effects), ['autoscaler:f <- as.configure', 'router:f <- rt.snapshot']);
  t.like(statusOf(updated.state), { version: 1, specVersion: 2, state: 'active', outdated: 0, ready: 2 });
});

test('sandboxes of the old version still being created are deleted at once; at zero scale there is nothing to roll', (t) => {
  const scaled = step(withReady(0), { type: 'fn.scale', desired: 1, reason: 't' });
  const placed = step(scaled.state, placeAsk(scaled.effects).answer({ ok: true, value: { placements: [{ sandboxId: 'f-7-0', nodeId: 'a' }] } }));
  const updated = step(placed.state, { type: 'fn.configure', spec: rolledSpec(2) });
  t.deepEqual(sends(updated.effects), ['autoscaler:f <- as.configure', 'node:a <- node.delete', 'router:f <- rt.snapshot']);
  t.deepEqual(placeAsk(updated.effects).sandboxIds, ['f-7-1']);

  const idle = step(withReady(0), { type: 'fn.configure', spec: rolledSpec(2) });
  t.false(idle.effects.some((e) => e.type === 'ask'));
  t.like(statusOf(idle.state), { version: 2, state: 'active' });
});

test('a rollout whose new version cannot start leaves the old one serving, and says so', (t) => {
  const updated = step(withReady(1, ['dp1']), { type: 'fn.configure', spec: rolledSpec(2) });
  const failed = failOnce(updated.state, updated.effects, 0);
  t.like(statusOf(failed.state, 100), { state: 'failed', ready: 1, outdated: 1 });
  t.regex(statusOf(failed.state, 100).stateReason ?? '', /version 2\) cannot start: .*; 1 sandbox\(es\) of an older version still serve$/);
  t.is(failed.state.sandboxes.get('f-7-0')?.phase, 'ready');
});

test('scale to zero, or a delete, during a rollout takes the old sandboxes too', (t) => {
  const updated = step(withReady(2, ['dp1']), { type: 'fn.configure', spec: rolledSpec(2) });
  const zero = step(updated.state, { type: 'fn.scale', desired: 0, reason: 't' });
  t.deepEqual(phases(zero.state), { 'f-7-0': 'draining', 'f-7-1': 'draining' });
  const deleted = step(updated.state, { type: 'fn.delete' });
  t.deepEqual(phases(deleted.state), { 'f-7-0': 'draining', 'f-7-1': 'draining' });
});

test('adopted sandboxes of an older version are replaced by the current one', (t) => {
  const spec = rolledSpec(3);
  const configured = step(fresh(['dp1'], spec), { type: 'fn.configure', spec }).state;
  const report = (sandboxId: string, version: number): SandboxReport => ({ sandboxId, functionName: 'f', nodeId: 'n0', endpoint: endpoint(sandboxId, 'n0', version), resources: { cpuMilli: 100, memoryMiB: 128 }, createdAt: 10, version });
  const adopted = step(configured, { type: 'fn.adopt', sandboxes: [report('f-3-0', 2), report('f-3-1', 3)] });
  t.like(statusOf(adopted.state), { version: 3, desired: 2, ready: 2, outdated: 1, state: 'updating' });
  t.deepEqual(placeAsk(adopted.effects).sandboxIds, ['f-7-0'], 'one of version 3 for the one of version 2');
  const replaced = startAll(adopted.state, adopted.effects);
  t.like(statusOf(replaced.state), { state: 'active', outdated: 0, ready: 2, draining: 1 });
  t.is(replaced.state.sandboxes.get('f-3-0')?.phase, 'draining');
});
