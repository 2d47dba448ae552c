import test from 'ava';
import type { ActorKind, Effect, ReplyTo, StepContext } from './actor.js';
import {
  functionAddress,
  schedulerAddress,
  type Feasibility,
  type FunctionMessage,
  type NodeCapacity,
  type NodeView,
  type PlaceReply,
  type SandboxReport,
  type SandboxRequest,
  type SchedulerMessage,
} from './messages.js';
import { schedulerKind, type SchedulerInit, type SchedulerState } from './scheduler.js';
import { Simulation } from '../runtime/sim.js';

const ASKER: ReplyTo = { origin: 9, id: 1 };
const small: NodeCapacity = { cpuMilli: 1000, memoryMiB: 1024, slots: 4 };
const request = { cpuMilli: 250, memoryMiB: 256 };

function fresh(init: Partial<SchedulerInit> = {}): SchedulerState {
  return schedulerKind.init(schedulerAddress, { term: 3, ...init }, 0);
}

function step(state: SchedulerState, message: SchedulerMessage, now = 0, random = () => 0.5): { state: SchedulerState; effects: readonly Effect<SchedulerMessage>[] } {
  const ctx: StepContext = { now, self: schedulerAddress, replyTo: ASKER, random };
  const result = schedulerKind.step(state, message, ctx);
  return { state: result.state, effects: result.effects ?? [] };
}

function replyOf<T>(effects: readonly Effect<SchedulerMessage>[]): T {
  const reply = effects.find((e) => e.type === 'reply');
  if (reply?.type !== 'reply') throw new Error('no reply');
  return reply.value as T;
}

function withNodes(ids: readonly string[], init: Partial<SchedulerInit> = {}, capacity = small): SchedulerState {
  let state = fresh(init);
  for (const nodeId of ids) state = step(state, { type: 'sch.register', nodeId, capacity, address: `${nodeId}:10010`, runtime: 'simulated', incarnation: 'i1' }).state;
  return state;
}

function place(state: SchedulerState, sandboxIds: readonly string[], functionName = 'f', now = 0): { state: SchedulerState; reply: PlaceReply } {
  const result = step(state, { type: 'sch.place', functionName, request, sandboxIds }, now);
  return { state: result.state, reply: replyOf<PlaceReply>(result.effects) };
}

const views = (state: SchedulerState, now = 0): NodeView[] => replyOf<NodeView[]>(step(state, { type: 'sch.nodes' }, now).effects);
const lostTo = (effects: readonly Effect<SchedulerMessage>[]): string[] =>
  effects.flatMap((e) => (e.type === 'send' && (e.message as { type: string }).type === 'fn.nodeLost' ? [`${e.to.id}:${(e.message as { nodeId: string }).nodeId}`] : []));

test('registration replies the term and starts the heartbeat check once', (t) => {
  const first = step(fresh({ checkEveryMs: 2000 }), { type: 'sch.register', nodeId: 'a', capacity: small, address: 'a:1', runtime: 'simulated', incarnation: 'i1' });
  t.deepEqual(replyOf(first.effects), { term: 3 });
  t.deepEqual(first.effects.filter((e) => e.type === 'schedule'), [{ type: 'schedule', afterMs: 2000, message: { type: 'sch.checkHeartbeats' }, timer: 'checkHeartbeats' }]);
  const second = step(first.state, { type: 'sch.register', nodeId: 'b', capacity: small, address: 'b:1', runtime: 'simulated', incarnation: 'i1' });
  t.false(second.effects.some((e) => e.type === 'schedule'));
  t.deepEqual(views(second.state, 700).map((v) => [v.nodeId, v.alive, v.schedulable, v.heartbeatAgeMs]), [
    ['a', true, true, 700],
    ['b', true, true, 700],
  ]);
});

test('placement records allocations per node and spreads by score', (t) => {
  const { state, reply } = place(withNodes(['a', 'b']), ['f-1', 'f-2', 'f-3']);
  t.deepEqual(reply, { placements: [{ sandboxId: 'f-1', nodeId: 'a' }, { sandboxId: 'f-2', nodeId: 'b' }, { sandboxId: 'f-3', nodeId: 'a' }] });
  t.deepEqual(views(state).map((v) => v.allocated), [
    { cpuMilli: 500, memoryMiB: 512, slots: 2 },
    { cpuMilli: 250, memoryMiB: 256, slots: 1 },
  ]);
  t.deepEqual(state.allocations.get('f-2'), { functionName: 'f', nodeId: 'b', resources: request });
});

test('resource exhaustion places what fits and says why the rest did not', (t) => {
  // Two nodes of 4 slots and 1000 millicores each: 8 sandboxes of 250 millicores and 256 MiB fit, the 9th and 10th do not.
  const ids = Array.from({ length: 10 }, (_, i) => `f-${i}`);
  const { state, reply } = place(withNodes(['a', 'b']), ids);
  t.is(reply.placements.length, 8);
  t.is(reply.shortfall, '2 of 10 not placed: 0/2 nodes fit: 2 insufficient cpu, 2 insufficient memory, 2 no free slot');
  t.is(state.allocations.size, 8);
  const none = place(fresh(), ['g-0']);
  t.deepEqual(none.reply, { placements: [], shortfall: '1 of 1 not placed: no nodes' });
});

test('release and abandon free capacity; a repeated id keeps its placement', (t) => {
  let { state } = place(withNodes(['a']), ['f-1', 'f-2', 'f-3', 'f-4']);
  const again = place(state, ['f-4', 'f-5']);
  t.deepEqual(again.reply.placements, [{ sandboxId: 'f-4', nodeId: 'a' }]);
  t.regex(again.reply.shortfall ?? '', /1 of 2 not placed/);

  state = step(state, { type: 'sch.release', functionName: 'g', sandboxId: 'f-1', nodeId: 'a' }).state;
  t.is(views(state)[0]?.allocated.slots, 4, "another function's release changes nothing");
  state = step(state, { type: 'sch.release', functionName: 'f', sandboxId: 'f-1', nodeId: 'a' }).state;
  state = step(state, { type: 'sch.release', functionName: 'f', sandboxId: 'f-1', nodeId: 'a' }).state;
  t.is(views(state)[0]?.allocated.slots, 3, 'release is idempotent');
  state = step(state, { type: 'sch.abandon', functionName: 'f', sandboxIds: ['f-2', 'f-3', 'nope'] }).state;
  t.deepEqual(views(state)[0]?.allocated, { cpuMilli: 250, memoryMiB: 256, slots: 1 });
});

test('a heartbeat\'s pool report shows in the node view; placement does not count it (the worker registered its capacity less the cap)', (t) => {
  let state = withNodes(['a']);
  const pool = { idle: 2, target: 2, idleMiB: 15, capMiB: 256, fromPool: 0, fresh: 0 };
  state = step(state, { type: 'sch.heartbeat', nodeId: 'a', sandboxes: 0, pool }, 10_000).state;
  t.deepEqual(views(state, 10_000)[0]?.pool, pool);
  t.deepEqual(views(state, 10_000)[0]?.allocated, { cpuMilli: 0, memoryMiB: 0, slots: 0 });
});

test('cordoned and dead nodes take no new sandbox', (t) => {
  let state = withNodes(['a', 'b']);
  state = step(state, { type: 'sch.setSchedulable', nodeId: 'a', schedulable: false }).state;
  t.deepEqual(place(state, ['f-1', 'f-2']).reply.placements.map((p) => p.nodeId), ['b', 'b']);
  state = step(state, { type: 'sch.heartbeat', nodeId: 'a', sandboxes: 0 }, 10_000).state;
  state = step(state, { type: 'sch.checkHeartbeats' }, 16_000).state;
  t.deepEqual(views(state, 16_000).map((v) => [v.nodeId, v.alive, v.schedulable]), [
    ['a', true, false],
    ['b', false, true],
  ]);
  t.deepEqual(place(state, ['f-3'], 'f', 16_000).reply, { placements: [], shortfall: '1 of 1 not placed: 0/2 nodes fit: 2 unschedulable' });
});

test('a sandbox that needs a runtime is placed only on nodes that run it', (t) => {
  let state = withNodes(['a', 'c']);
  state = step(state, { type: 'sch.register', nodeId: 'b', capacity: small, address: 'b:10010', runtime: 'thread', incarnation: 'i1' }).state;
  const result = step(state, { type: 'sch.place', functionName: 'f', request: { ...request, runtime: 'thread' }, sandboxIds: ['f-1-0', 'f-1-1', 'f-1-2', 'f-1-3', 'f-1-4'] });
  const reply = replyOf<PlaceReply>(result.effects);
  t.deepEqual([...new Set(reply.placements.map((p) => p.nodeId))], ['b']);
  t.is(reply.shortfall, '1 of 5 not placed: 0/3 nodes fit: 2 not running thread sandboxes, 1 insufficient cpu, 1 insufficient memory, 1 no free slot');
  t.is(replyOf<PlaceReply>(step(state, { type: 'sch.place', functionName: 'g', request, sandboxIds: ['g-1-0', 'g-1-1'] }).effects).placements.length, 2, 'a builtin goes anywhere');
});

test('sch.feasible: a live node of the runtime that could hold the sandbox when empty, or why there is none', (t) => {
  const feasible = (state: SchedulerState, req: SandboxRequest, now = 0): Feasibility => replyOf<Feasibility>(step(state, { type: 'sch.feasible', request: req }, now).effects);
  t.deepEqual(feasible(fresh(), request), { ok: false, code: 'NO_WORKER', message: 'no worker is connected to the control plane' });
  let state = withNodes(['b', 'a']);
  t.deepEqual(feasible(state, request), { ok: true, nodeId: 'a' });
  t.deepEqual(feasible(state, { ...request, runtime: 'thread' }), { ok: false, code: 'NO_WORKER_FOR_RUNTIME', message: 'no connected worker runs thread sandboxes (the 2 connected node(s) run simulated)' });
  t.deepEqual(feasible(state, { cpuMilli: 100, memoryMiB: 4096 }), {
    ok: false,
    code: 'NO_NODE_FITS',
    message: 'no node can hold a sandbox of 4096 MiB and 100 millicores: the largest node has 1024 MiB, and the most CPU any has is 1000 millicores',
  });
  // Capacity, not what is free now: a full node could still hold it once it frees up.
  state = place(state, ['f-1-0', 'f-1-1', 'f-1-2', 'f-1-3', 'f-1-4', 'f-1-5', 'f-1-6', 'f-1-7']).state;
  t.deepEqual(feasible(state, request), { ok: true, nodeId: 'a' });
  // A dead node does not count.
  const dead = step(step(state, { type: 'sch.heartbeat', nodeId: 'b', sandboxes: 0 }, 20_000).state, { type: 'sch.checkHeartbeats' }, 20_000).state;
  t.deepEqual(feasible(dead, request, 20_000), { ok: true, nodeId: 'b' });
});

test('a bad request fails the ask instead of crashing the scheduler', (t) => {
  const result = step(withNodes(['a']), { type: 'sch.place', functionName: 'f', request: { cpuMilli: -1, memoryMiB: 1 }, sandboxIds: ['f-1'] });
  t.like(result.effects[0], { type: 'fail', to: ASKER, error: { code: 'BAD_REQUEST' } });
});

test('round-robin goes around the nodes in id order across requests; random draws from the seeded source', (t) => {
  let state = withNodes(['c', 'a', 'b'], { policy: 'round-robin' });
  const first = place(state, ['f-1', 'f-2']);
  const second = place(first.state, ['f-3', 'f-4']);
  t.deepEqual([...first.reply.placements, ...second.reply.placements].map((p) => p.nodeId), ['a', 'b', 'c', 'a']);

  state = withNodes(['a', 'b', 'c'], { policy: 'random' });
  const picked = step(state, { type: 'sch.place', functionName: 'f', request, sandboxIds: ['f-1'] }, 0, () => 0.9);
  t.deepEqual(replyOf<PlaceReply>(picked.effects).placements, [{ sandboxId: 'f-1', nodeId: 'c' }]);
});

test('a node silent past the timeout is dead: allocations dropped, each function told once', (t) => {
  let state = withNodes(['a', 'b'], { heartbeatTimeoutMs: 15_000 });
  state = place(state, ['f-1', 'f-2']).state;
  state = place(state, ['g-1', 'g-2', 'g-3'], 'g').state;
  state = step(state, { type: 'sch.heartbeat', nodeId: 'a', sandboxes: 3 }, 10_000).state;
  const quiet = step(state, { type: 'sch.checkHeartbeats' }, 15_000);
  t.deepEqual(lostTo(quiet.effects), [], 'exactly the timeout is not yet dead');
  const check = step(quiet.state, { type: 'sch.checkHeartbeats' }, 15_001);
  t.deepEqual(lostTo(check.effects), ['f:b', 'g:b']);
  t.like(check.effects.at(-1), { type: 'schedule', message: { type: 'sch.checkHeartbeats' } });
  const [a, b] = views(check.state, 15_001);
  t.like(a, { alive: true, sandboxes: 3, heartbeatAgeMs: 5001 });
  t.like(b, { alive: false, allocated: { cpuMilli: 0, memoryMiB: 0, slots: 0 } });
  t.deepEqual([...check.state.allocations.values()].map((x) => x.nodeId), ['a', 'a', 'a']);
  t.deepEqual(lostTo(step(check.state, { type: 'sch.checkHeartbeats' }, 40_000).effects), ['f:a', 'g:a'], 'b is not lost twice');

  const back = step(check.state, { type: 'sch.heartbeat', nodeId: 'b', sandboxes: 0 }, 20_000);
  t.like(views(back.state, 20_000)[1], { alive: true, allocated: { slots: 0 }, heartbeatAgeMs: 0 });
  t.true(back.effects.some((e) => e.type === 'log' && e.text.includes('back')));
});

test('a node registering again under another incarnation while it holds allocations restarted: its sandboxes are lost; under the same one it keeps them', (t) => {
  let state = withNodes(['a', 'b']);
  state = step(state, { type: 'sch.setSchedulable', nodeId: 'a', schedulable: false }).state;
  state = place(state, ['f-1']).state;
  // The same run of the worker registering again (it reconnected to a new leader) keeps what it runs.
  const reconnected = step(state, { type: 'sch.register', nodeId: 'b', capacity: small, address: 'b:10010', runtime: 'simulated', incarnation: 'i1' }, 40);
  t.deepEqual(lostTo(reconnected.effects), []);
  t.like(views(reconnected.state, 40)[1], { allocated: { slots: 1 }, alive: true });
  const again = step(state, { type: 'sch.register', nodeId: 'b', capacity: { ...small, slots: 8 }, address: 'b:2', runtime: 'simulated', incarnation: 'i2' }, 50);
  t.deepEqual(lostTo(again.effects), ['f:b']);
  t.deepEqual(replyOf(again.effects), { term: 3 });
  t.like(views(again.state, 50)[1], { address: 'b:2', capacity: { slots: 8 }, allocated: { slots: 0 }, alive: true });
  const cordoned = step(again.state, { type: 'sch.register', nodeId: 'a', capacity: small, address: 'a:2', runtime: 'simulated', incarnation: 'i1' });
  t.deepEqual(lostTo(cordoned.effects), [], 'a node with nothing allocated loses nothing');
  t.false(views(cordoned.state)[0]?.schedulable, 'a cordon survives a worker restart');
});

test('deregistration forgets the node and tells the functions on it', (t) => {
  let state = place(withNodes(['a']), ['f-1']).state;
  const gone = step(state, { type: 'sch.deregister', nodeId: 'a' });
  t.deepEqual(lostTo(gone.effects), ['f:a']);
  t.deepEqual(views(gone.state), []);
  state = gone.state;
  t.is(state.allocations.size, 0);
  t.deepEqual(step(state, { type: 'sch.deregister', nodeId: 'a' }).effects, []);
});

test('adopt records allocations found on the workers', (t) => {
  const report = (sandboxId: string, nodeId: string): SandboxReport => ({
    sandboxId,
    functionName: 'f',
    nodeId,
    endpoint: { sandboxId, nodeId, address: `${nodeId}:9000`, concurrency: 1, version: 1 },
    resources: { cpuMilli: 100, memoryMiB: 200 },
    createdAt: 5,
    version: 1,
  });
  const adopted = step(withNodes(['a']), { type: 'sch.adopt', sandboxes: [report('f-1-0', 'a'), report('f-1-1', 'a'), report('f-1-0', 'a'), report('f-1-2', 'zz')] });
  t.deepEqual(views(adopted.state)[0]?.allocated, { cpuMilli: 200, memoryMiB: 400, slots: 2 }, 'a repeated report counts once');
  t.true(adopted.effects.some((e) => e.type === 'log' && e.text.includes('unregistered node zz')));
});

test('the summary is small JSON', (t) => {
  t.deepEqual(schedulerKind.summary?.(place(withNodes(['a', 'b']), ['f-1']).state), { term: 3, policy: 'kubernetes', nodes: 2, alive: 2, schedulable: 2, allocations: 1 });
});

/** Records the fn.nodeLost messages a function receives. */
const lostRecorder: ActorKind<{ lost: readonly string[] }, FunctionMessage> = {
  kind: 'function',
  virtual: true,
  init: () => ({ lost: [] }),
  step: (state, message, ctx) => ({ state: message.type === 'fn.nodeLost' ? { lost: [...state.lost, `${message.nodeId}@${ctx.now}`] } : state }),
};

test('heartbeat checking runs on its timer in a simulation', async (t) => {
  const sim = new Simulation({ kinds: [schedulerKind, lostRecorder], quiet: ['sch.heartbeat', 'sch.checkHeartbeats'] });
  sim.spawn(schedulerAddress, { term: 1 });
  for (const nodeId of ['a', 'b']) t.deepEqual(await sim.request(schedulerAddress, { type: 'sch.register', nodeId, capacity: small, address: nodeId, runtime: 'simulated', incarnation: 'i1' }), { term: 1 });
  const placed = await sim.request<PlaceReply>(schedulerAddress, { type: 'sch.place', functionName: 'f', request, sandboxIds: ['f-1', 'f-2'] });
  t.deepEqual(placed.placements.map((p) => p.nodeId), ['a', 'b']);
  // a heartbeats every 5 s; b never does. With checks every 5 s, b is found dead at the first check after 15 s.
  for (let at = 5000; at <= 30_000; at += 5000) {
    await sim.advance(5000);
    sim.tell(schedulerAddress, { type: 'sch.heartbeat', nodeId: 'a', sandboxes: 1 });
  }
  await sim.run();
  t.deepEqual(sim.state<{ lost: readonly string[] }>(functionAddress('f'))?.lost, ['b@20000']);
  const nodes = await sim.request<NodeView[]>(schedulerAddress, { type: 'sch.nodes' });
  t.deepEqual(nodes.map((n) => [n.nodeId, n.alive, n.allocated.slots]), [
    ['a', true, 1],
    ['b', false, 0],
  ]);
});
