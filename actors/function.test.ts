import test from 'ava';
import type { AskResult, Effect, ReplyTo, Step, StepContext } from './actor.js';
import {
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
  type PlaceReply,
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

const endpoint = (sandboxId: string, nodeId: string): Endpoint => ({ sandboxId, nodeId, address: `${nodeId}:9000`, concurrency: 1 });

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
  t.deepEqual(sent(first.effects, 'rt.snapshot'), [{ type: 'rt.snapshot', term: TERM, snapshot: { functionName: 'f', version: 1, endpoints: [], routing: routingConfigOf(spec) } }]);
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

test('a sandbox that fails while being created is replaced only after the retry delay', (t) => {
  const scaled = step(withReady(0), { type: 'fn.scale', desired: 1, reason: 't' });
  const placed = step(scaled.state, placeAsk(scaled.effects).answer({ ok: true, value: { placements: [{ sandboxId: 'f-7-0', nodeId: 'a' }] } }));
  const failed = step(placed.state, { type: 'fn.sandboxFailed', sandboxId: 'f-7-0', nodeId: 'a', reason: 'NODE_FULL' });
  t.deepEqual(sends(failed.effects), ['scheduler:cluster <- sch.release']);
  t.false(failed.effects.some((e) => e.type === 'ask'));
  t.like(failed.effects.find((e) => e.type === 'schedule'), { afterMs: RETRY_SCALE_MS, timer: 'retryScale' });
  t.deepEqual(placeAsk(step(failed.state, { type: 'fn.retryScale' }).effects).sandboxIds, ['f-7-1']);
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
  return sandboxIds.map((sandboxId, i) => ({ sandboxId, functionName: 'f', nodeId: `n${i}`, endpoint: endpoint(sandboxId, `n${i}`), resources: { cpuMilli: 100, memoryMiB: 128 }, createdAt: 10 }));
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

test('impossible phase transitions throw', (t) => {
  const creating: SandboxRecord = { phase: 'creating', sandboxId: 's', nodeId: 'n', createdAt: 0, since: 0 };
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
  t.deepEqual(summary, { name: 'f', term: TERM, specVersion: 1, desired: 2, creating: 0, ready: 2, draining: 0, gone: 0, placing: 0, endpointVersion: 3, dataplanes: 0, deleting: false });
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
