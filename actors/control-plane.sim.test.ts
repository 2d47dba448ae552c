// End-to-end scenarios of the control plane's three actor kinds (function, autoscaler, scheduler) in the
// deterministic simulation, with a fake worker node kind and a fake data-plane router kind defined here.
import test from 'ava';
import type { ActorKind, AskResult, Effect } from './actor.js';
import { autoscalerKind } from './autoscaler-actor.js';
import { functionKind } from './function.js';
import { parseFunctionSpec, type FunctionSpec } from './function-spec.js';
import {
  autoscalerAddress,
  functionAddress,
  nodeAddress,
  routerAddress,
  schedulerAddress,
  type AutoscalerMessage,
  type Endpoint,
  type EndpointSnapshot,
  type FunctionMessage,
  type FunctionStatus,
  type NodeCapacity,
  type NodeMessage,
  type NodeView,
  type RouterUpdate,
  type SandboxReport,
  type SchedulerMessage,
} from './messages.js';
import type { PlacementPolicy } from './placement.js';
import { schedulerKind } from './scheduler.js';
import { Simulation } from '../runtime/sim.js';

// ---- Fake worker node ------------------------------------------------------------------------------

/** Sandbox creation time on the fake worker, ms. */
const CREATE_MS = 100;
const HEARTBEAT_MS = 5000;
const capacity: NodeCapacity = { cpuMilli: 4000, memoryMiB: 4096, slots: 8 };

type FakeNodeMessage =
  | NodeMessage
  /** Test controls: the worker dies silently (no heartbeats, no answers), or one sandbox fails. */
  | { readonly type: 'test.crash' }
  | { readonly type: 'test.fail'; readonly sandboxId: string };

interface FakeSandbox {
  readonly functionName: string;
  readonly ready: boolean;
  readonly createdAt: number;
  /** Template version. */
  readonly version: number;
}

interface FakeNodeState {
  readonly nodeId: string;
  readonly alive: boolean;
  readonly sandboxes: Readonly<Record<string, FakeSandbox>>;
  /** Every node.create received, in order (to check that adoption creates nothing). */
  readonly creates: readonly string[];
}

const endpointOf = (sandboxId: string, nodeId: string, version: number): Endpoint => ({ sandboxId, nodeId, address: `${nodeId}:9000`, concurrency: 1, version });

function without<T>(record: Readonly<Record<string, T>>, key: string): Record<string, T> {
  const copy = { ...record };
  delete copy[key];
  return copy;
}

/** Answers node.create with fn.sandboxReady after CREATE_MS, node.delete with fn.sandboxDeleted; registers and heartbeats. */
const fakeNode: ActorKind<FakeNodeState, FakeNodeMessage> = {
  kind: 'node',
  init: (address, arg) => ({ nodeId: address.id, alive: true, sandboxes: (arg as { sandboxes?: Record<string, FakeSandbox> } | undefined)?.sandboxes ?? {}, creates: [] }),
  step(state, message, ctx) {
    if (!state.alive) return { state };
    const toFunction = (name: string, m: FunctionMessage): Effect<FakeNodeMessage> => ({ type: 'send', to: functionAddress(name), message: m });
    switch (message.type) {
      case 'node.start': {
        const register: SchedulerMessage = { type: 'sch.register', nodeId: state.nodeId, capacity, address: `${state.nodeId}:10010`, runtime: 'simulated', incarnation: 'i1' };
        return { state, effects: [{ type: 'send', to: schedulerAddress, message: register }, { type: 'schedule', afterMs: HEARTBEAT_MS, message: { type: 'node.heartbeat' }, timer: 'hb' }] };
      }
      case 'node.heartbeat': {
        const beat: SchedulerMessage = { type: 'sch.heartbeat', nodeId: state.nodeId, sandboxes: Object.keys(state.sandboxes).length };
        return { state, effects: [{ type: 'send', to: schedulerAddress, message: beat }, { type: 'schedule', afterMs: HEARTBEAT_MS, message: { type: 'node.heartbeat' }, timer: 'hb' }] };
      }
      case 'node.create': {
        const sandboxes = { ...state.sandboxes, [message.sandboxId]: { functionName: message.template.name, ready: false, createdAt: ctx.now, version: message.template.version } };
        return {
          state: { ...state, sandboxes, creates: [...state.creates, message.sandboxId] },
          effects: [{ type: 'schedule', afterMs: CREATE_MS, message: { type: 'node.created', sandboxId: message.sandboxId, ok: true } }],
        };
      }
      case 'node.created': {
        const sandbox = state.sandboxes[message.sandboxId];
        if (sandbox === undefined) return { state };
        return {
          state: { ...state, sandboxes: { ...state.sandboxes, [message.sandboxId]: { ...sandbox, ready: true } } },
          effects: [toFunction(sandbox.functionName, { type: 'fn.sandboxReady', sandboxId: message.sandboxId, endpoint: endpointOf(message.sandboxId, state.nodeId, sandbox.version) })],
        };
      }
      case 'node.delete': {
        const sandbox = state.sandboxes[message.sandboxId];
        if (sandbox === undefined) return { state };
        return {
          state: { ...state, sandboxes: without(state.sandboxes, message.sandboxId) },
          effects: [toFunction(sandbox.functionName, { type: 'fn.sandboxDeleted', sandboxId: message.sandboxId, nodeId: state.nodeId })],
        };
      }
      case 'node.list': {
        const reports: SandboxReport[] = Object.entries(state.sandboxes).map(([sandboxId, s]) => ({
          sandboxId,
          functionName: s.functionName,
          nodeId: state.nodeId,
          endpoint: endpointOf(sandboxId, state.nodeId, s.version),
          resources: { cpuMilli: 100, memoryMiB: 128 },
          createdAt: s.createdAt,
          version: s.version,
        }));
        return { state, effects: ctx.replyTo ? [{ type: 'reply', to: ctx.replyTo, value: reports }] : [] };
      }
      case 'test.crash':
        return { state: { ...state, alive: false }, effects: [{ type: 'cancel', timer: 'hb' }] };
      case 'test.fail': {
        const sandbox = state.sandboxes[message.sandboxId];
        if (sandbox === undefined) return { state };
        return {
          state: { ...state, sandboxes: without(state.sandboxes, message.sandboxId) },
          effects: [toFunction(sandbox.functionName, { type: 'fn.sandboxFailed', sandboxId: message.sandboxId, nodeId: state.nodeId, reason: 'exit code 1' })],
        };
      }
      case 'node.logs':
        return { state, effects: ctx.replyTo ? [{ type: 'reply', to: ctx.replyTo, value: [] }] : [] };
      case 'node.sandboxFailed':
      case 'node.pool':
      case 'node.deleted':
      case 'node.registered':
      case 'node.check':
        return { state };
    }
  },
};

// ---- Fake data-plane router ---------------------------------------------------------------------------

type FakeRouterMessage =
  | RouterUpdate
  /** Internal: the answer to fn.getEndpoints after a version gap. */
  | { readonly type: 'test.resynced'; readonly result: AskResult }
  /** Test controls: lose the next update on the wire; stop (or resume) answering drains. */
  | { readonly type: 'test.dropNext' }
  | { readonly type: 'test.holdDrains'; readonly hold: boolean };

interface FakeRouterState {
  readonly version: number;
  readonly endpoints: Readonly<Record<string, Endpoint>>;
  /** Versions of the updates applied, in order ('s' marks a snapshot). */
  readonly applied: readonly string[];
  /** Broken invariants seen: a duplicated add, a removal of an unknown endpoint, an update from the past. */
  readonly violations: readonly string[];
  readonly resyncs: number;
  readonly dropNext: boolean;
  readonly holdDrains: boolean;
  readonly deleted: boolean;
}

/** The data planes this router answers drains for (it stands for both). */
const DATAPLANES = ['dp1', 'dp2'];

/** Applies snapshots and deltas like a data plane would, checks their invariants, and answers drains at once. */
const fakeRouter: ActorKind<FakeRouterState, FakeRouterMessage> = {
  kind: 'router',
  virtual: true,
  init: () => ({ version: 0, endpoints: {}, applied: [], violations: [], resyncs: 0, dropNext: false, holdDrains: false, deleted: false }),
  step(state, message, ctx) {
    const fn = functionAddress(ctx.self.id);
    const snapshot = (s: FakeRouterState, snap: EndpointSnapshot): FakeRouterState => ({
      ...s,
      version: snap.version,
      endpoints: Object.fromEntries(snap.endpoints.map((e) => [e.sandboxId, e])),
      applied: [...s.applied, `s${snap.version}`],
      violations: snap.version < s.version ? [...s.violations, `snapshot ${snap.version} after ${s.version}`] : s.violations,
    });
    switch (message.type) {
      case 'test.dropNext':
        return { state: { ...state, dropNext: true } };
      case 'test.holdDrains':
        return { state: { ...state, holdDrains: message.hold } };
      case 'test.resynced':
        return { state: message.result.ok ? { ...snapshot(state, message.result.value as EndpointSnapshot), resyncs: state.resyncs + 1 } : state };
      case 'rt.snapshot':
        if (state.dropNext) return { state: { ...state, dropNext: false } };
        return { state: snapshot(state, message.snapshot) };
      case 'rt.deleted':
        return { state: { ...state, deleted: true, endpoints: {} } };
      case 'rt.delta': {
        if (state.dropNext) return { state: { ...state, dropNext: false } };
        if (message.version <= state.version) return { state: { ...state, violations: [...state.violations, `delta ${message.version} after ${state.version}`] } };
        if (message.version !== state.version + 1) {
          // A gap: some update was lost. Ask for the full set.
          return { state, effects: [{ type: 'ask', to: fn, message: { type: 'fn.getEndpoints' } satisfies FunctionMessage, timeoutMs: 1000, then: (result) => ({ type: 'test.resynced', result }) }] };
        }
        const violations = [...state.violations];
        const endpoints = { ...state.endpoints };
        for (const e of message.add) {
          if (endpoints[e.sandboxId] !== undefined) violations.push(`duplicate add ${e.sandboxId} in ${message.version}`);
          endpoints[e.sandboxId] = e;
        }
        for (const id of message.remove) {
          if (endpoints[id] === undefined) violations.push(`remove of unknown ${id} in ${message.version}`);
          delete endpoints[id];
        }
        const drains: Effect<FakeRouterMessage>[] = state.holdDrains
          ? []
          : message.remove.flatMap((sandboxId) => DATAPLANES.map((dataplaneId) => ({ type: 'send' as const, to: fn, message: { type: 'fn.drained', sandboxId, dataplaneId } satisfies FunctionMessage })));
        return { state: { ...state, version: message.version, endpoints, violations, applied: [...state.applied, `${message.version}`] }, effects: drains };
      }
    }
  },
};

// ---- Harness -----------------------------------------------------------------------------------------

function makeSpec(scaling: Record<string, number> = {}): FunctionSpec {
  const parsed = parseFunctionSpec({
    name: 'f',
    runtime: 'simulated',
    source: { kind: 'builtin', workload: 'empty' },
    timeoutMs: 2000,
    scaling: { stableWindowMs: 10_000, panicWindowMs: 4000, keepAliveMs: 10_000, ...scaling },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.spec;
}

interface Cluster {
  readonly sim: Simulation;
  /** The spec the function actor was spawned with. */
  readonly spec: FunctionSpec;
  status(): Promise<FunctionStatus>;
  nodes(): Promise<NodeView[]>;
  router(): FakeRouterState;
  node(id: string): FakeNodeState;
  /** Sandbox ids running on the fake workers, sorted. */
  running(): string[];
}

async function cluster(options: { nodes?: readonly string[]; spec?: FunctionSpec; policy?: PlacementPolicy; term?: number; existing?: Record<string, Record<string, FakeSandbox>> } = {}): Promise<Cluster> {
  const sim = new Simulation({ kinds: [functionKind, autoscalerKind, schedulerKind, fakeNode, fakeRouter], quiet: ['as.tick', 'sch.checkHeartbeats', 'sch.heartbeat', 'node.heartbeat'] });
  const term = options.term ?? 1;
  sim.spawn(schedulerAddress, { term, policy: options.policy ?? 'kubernetes' });
  for (const nodeId of options.nodes ?? ['a', 'b', 'c']) {
    sim.spawn(nodeAddress(nodeId), { sandboxes: options.existing?.[nodeId] ?? {} });
    sim.tell(nodeAddress(nodeId), { type: 'node.start' } satisfies NodeMessage);
  }
  const spec = options.spec ?? makeSpec();
  sim.spawn(functionAddress('f'), { spec, term, dataplanes: DATAPLANES });
  await sim.run();
  return {
    sim,
    spec,
    status: () => sim.request<FunctionStatus>(functionAddress('f'), { type: 'fn.status' }),
    nodes: () => sim.request<NodeView[]>(schedulerAddress, { type: 'sch.nodes' }),
    router: () => sim.state<FakeRouterState>(routerAddress('f')) ?? fakeRouter.init(routerAddress('f'), undefined, 0),
    node: (id) => {
      const state = sim.state<FakeNodeState>(nodeAddress(id));
      if (state === undefined) throw new Error(`no node ${id}`);
      return state;
    },
    running: () =>
      sim
        .list('node')
        .flatMap((address) => Object.entries(sim.state<FakeNodeState>(address)?.sandboxes ?? {}).filter(([, s]) => s.ready).map(([id]) => id))
        .sort(),
  };
}

const configure = (c: Cluster, spec = c.spec): Promise<FunctionStatus> => c.sim.request<FunctionStatus>(functionAddress('f'), { type: 'fn.configure', spec } satisfies FunctionMessage);
const tellAutoscaler = (c: Cluster, message: AutoscalerMessage): void => c.sim.tell(autoscalerAddress('f'), message);

/** The router's endpoint ids; they must equal the function's ready sandboxes and what the workers run. */
const routed = (c: Cluster): string[] => Object.keys(c.router().endpoints).sort();
const readyIds = (status: FunctionStatus): string[] => status.sandboxes.filter((s) => s.phase === 'ready').map((s) => s.sandboxId);

// ---- Scenarios ---------------------------------------------------------------------------------------

test('cold start: a backlog scales 0 -> 3 through placement, creation on the nodes and endpoint deltas', async (t) => {
  const c = await cluster();
  t.like(await configure(c), { name: 'f', desired: 0, endpointVersion: 1 });
  tellAutoscaler(c, { type: 'as.backlog', dataplaneId: 'dp1', inFlight: 0, queued: 3 });
  await c.sim.run();
  t.like(await c.status(), { desired: 3, creating: 3, ready: 0 });
  await c.sim.advance(CREATE_MS);

  const status = await c.status();
  t.like(status, { desired: 3, creating: 0, ready: 3, endpointVersion: 4 });
  t.deepEqual(readyIds(status), ['f-1-0', 'f-1-1', 'f-1-2']);
  t.deepEqual(routed(c), readyIds(status));
  t.deepEqual(c.running(), readyIds(status));
  t.deepEqual(
    (await c.nodes()).map((n) => n.allocated.slots),
    [1, 1, 1],
    'kubernetes scoring spreads the three over the three nodes',
  );
  t.deepEqual(c.router().applied, ['s1', '2', '3', '4']);
  t.deepEqual(c.router().violations, []);
  t.like(await c.sim.request(autoscalerAddress('f'), { type: 'as.status' }), { desired: 3, ready: 3 });
  t.deepEqual(c.sim.errors, []);
});

test('scale to zero after the keep-alive drains on every data plane, then deletes and releases', async (t) => {
  const c = await cluster();
  await configure(c);
  tellAutoscaler(c, { type: 'as.backlog', dataplaneId: 'dp1', inFlight: 0, queued: 2 });
  await c.sim.advance(1000);
  tellAutoscaler(c, { type: 'as.metric', dataplaneId: 'dp1', inFlight: 2, queued: 0 });
  await c.sim.advance(1000);
  tellAutoscaler(c, { type: 'as.metric', dataplaneId: 'dp1', inFlight: 0, queued: 0 });
  await c.sim.advance(9000);
  t.like(await c.status(), { ready: 1 }, 'one is kept alive for 10 s after the last request');
  await c.sim.advance(3000);

  t.like(await c.status(), { desired: 0, creating: 0, ready: 0, draining: 0, sandboxes: [] });
  t.deepEqual(c.running(), []);
  t.deepEqual(routed(c), []);
  t.deepEqual((await c.nodes()).map((n) => n.allocated.slots), [0, 0, 0]);
  t.deepEqual(c.router().violations, []);
  const drained = c.sim.transcript.filter((line) => line.includes('fn.drained'));
  t.is(drained.length, 4, 'each of the two sandboxes was drained by both data planes');
  const order = c.sim.transcript.filter((line) => /fn\.drained sandboxId=f-1-0|node\.delete .*sandboxId=f-1-0/.test(line)).map((l) => l.split(' <- ')[1]?.split(' ')[0]);
  t.deepEqual(order, ['fn.drained', 'fn.drained', 'node.delete'], 'deleted only after both drains');
});

test('a drain that never completes is cut short after the request timeout plus a grace', async (t) => {
  const c = await cluster();
  await configure(c);
  tellAutoscaler(c, { type: 'as.backlog', dataplaneId: 'dp1', inFlight: 0, queued: 1 });
  await c.sim.advance(CREATE_MS);
  c.sim.tell(routerAddress('f'), { type: 'test.holdDrains', hold: true } satisfies FakeRouterMessage);
  // Straight from the function's point of view: the autoscaler (here, the script) wants 0.
  c.sim.tell(functionAddress('f'), { type: 'fn.scale', desired: 0, reason: 'test' } satisfies FunctionMessage);
  await c.sim.run();
  t.like(await c.status(), { draining: 1 });
  await c.sim.advance(2999);
  t.like(await c.status(), { draining: 1 }, 'still waiting at 2999 ms');
  await c.sim.advance(1);
  t.deepEqual(c.running(), [], 'deleted at timeoutMs (2000) + 1000 ms');
  t.true(c.sim.transcript.some((line) => line.includes('not drained by dp1, dp2 within 3000 ms')));
});

test('a failed sandbox is replaced on another node', async (t) => {
  const c = await cluster({ policy: 'round-robin', spec: makeSpec({ minScale: 2 }) });
  await configure(c);
  await c.sim.advance(2000 + CREATE_MS);
  t.deepEqual((await c.status()).sandboxes.map((s) => `${s.sandboxId}@${s.nodeId}`), ['f-1-0@a', 'f-1-1@b']);

  c.sim.tell(nodeAddress('a'), { type: 'test.fail', sandboxId: 'f-1-0' } satisfies FakeNodeMessage);
  await c.sim.advance(CREATE_MS);
  const status = await c.status();
  t.deepEqual(status.sandboxes.map((s) => `${s.sandboxId}@${s.nodeId}:${s.phase}`), ['f-1-1@b:ready', 'f-1-2@c:ready']);
  t.deepEqual(routed(c), ['f-1-1', 'f-1-2']);
  t.deepEqual((await c.nodes()).map((n) => n.allocated.slots), [0, 1, 1], 'the failed one was released');
  t.deepEqual(c.router().violations, []);
});

test('a node that stops heartbeating is declared dead and its sandboxes are recreated elsewhere', async (t) => {
  const c = await cluster({ spec: makeSpec({ minScale: 3 }) });
  await configure(c);
  await c.sim.advance(2000 + CREATE_MS);
  t.deepEqual(c.running(), ['f-1-0', 'f-1-1', 'f-1-2']);
  const onB = (await c.status()).sandboxes.filter((s) => s.nodeId === 'b').map((s) => s.sandboxId);
  t.is(onB.length, 1);

  c.sim.tell(nodeAddress('b'), { type: 'test.crash' } satisfies FakeNodeMessage);
  await c.sim.advance(10_000);
  t.like((await c.nodes())[1], { nodeId: 'b', alive: true }, 'not yet: 15 s have not passed');
  await c.sim.advance(10_000);

  const nodes = await c.nodes();
  t.like(nodes[1], { nodeId: 'b', alive: false, allocated: { slots: 0 } });
  const status = await c.status();
  t.like(status, { desired: 3, ready: 3 });
  t.true(status.sandboxes.every((s) => s.nodeId !== 'b'));
  t.false(readyIds(status).some((id) => onB.includes(id)));
  t.deepEqual(routed(c), readyIds(status));
  t.is(nodes.reduce((sum, n) => sum + n.allocated.slots, 0), 3);
  t.deepEqual(c.router().violations, []);
});

test('endpoint updates have consecutive versions and no duplicates; a lost update is healed by a snapshot', async (t) => {
  const c = await cluster({ spec: makeSpec({ minScale: 1 }) });
  await configure(c);
  await c.sim.advance(2000 + CREATE_MS);
  c.sim.tell(routerAddress('f'), { type: 'test.dropNext' } satisfies FakeRouterMessage);
  tellAutoscaler(c, { type: 'as.backlog', dataplaneId: 'dp1', inFlight: 1, queued: 2 });
  await c.sim.advance(CREATE_MS);

  const router = c.router();
  t.is(router.resyncs, 1, 'the gap after the lost delta made the router ask for the full set');
  const status = await c.status();
  t.is(router.version, status.endpointVersion);
  t.deepEqual(routed(c), readyIds(status));
  t.is(readyIds(status).length, 3);
  t.deepEqual(router.violations, []);

  // Versions sent by the function: every one exactly once, consecutively.
  const sentVersions = c.sim.transcript
    .filter((line) => line.startsWith('t=') && line.includes('router:f@fn:f <- rt.'))
    .map((line) => Number(/version=(\d+)/.exec(line)?.[1] ?? /"version":(\d+)/.exec(line)?.[1]));
  t.deepEqual(sentVersions, sentVersions.map((_, i) => i + 1));
});

test('deregistration deletes every sandbox and stops the function and its autoscaler', async (t) => {
  const c = await cluster({ spec: makeSpec({ minScale: 2 }) });
  await configure(c);
  await c.sim.advance(2000 + CREATE_MS);
  t.is(c.running().length, 2);

  t.deepEqual(await c.sim.request(functionAddress('f'), { type: 'fn.delete' } satisfies FunctionMessage), { deleting: true });
  await c.sim.advance(1000);
  t.deepEqual(c.sim.list('function'), []);
  t.deepEqual(c.sim.list('autoscaler'), []);
  t.deepEqual(c.running(), []);
  t.true(c.router().deleted);
  t.deepEqual((await c.nodes()).map((n) => n.allocated.slots), [0, 0, 0]);
  await c.sim.advance(30_000);
  t.false(c.sim.transcript.some((line) => line.includes('(dead letter)')), 'nothing keeps talking to the deleted function');
});

test('a new leader adopts the sandboxes found on the workers without creating any', async (t) => {
  const existing = {
    a: { 'f-1-0': { functionName: 'f', ready: true, createdAt: 0, version: 1 } },
    b: { 'f-1-1': { functionName: 'f', ready: true, createdAt: 0, version: 1 } },
  };
  const c = await cluster({ term: 2, existing, spec: makeSpec() });
  await configure(c);
  // Reconstruction, as the cluster layer will script it: list every node, then adopt in scheduler and function.
  const reports: SandboxReport[] = [];
  for (const nodeId of ['a', 'b', 'c']) reports.push(...(await c.sim.request<SandboxReport[]>(nodeAddress(nodeId), { type: 'node.list' })));
  c.sim.tell(schedulerAddress, { type: 'sch.adopt', sandboxes: reports } satisfies SchedulerMessage);
  c.sim.tell(functionAddress('f'), { type: 'fn.adopt', sandboxes: reports } satisfies FunctionMessage);
  tellAutoscaler(c, { type: 'as.hold', untilMs: c.sim.now() + 10_000 });
  await c.sim.run();

  const status = await c.status();
  t.like(status, { desired: 2, ready: 2, creating: 0, endpointVersion: 2 });
  t.deepEqual(routed(c), ['f-1-0', 'f-1-1']);
  t.deepEqual(c.router().applied, ['s1', 's2']);
  t.deepEqual((await c.nodes()).map((n) => n.allocated.slots), [1, 1, 0]);
  t.deepEqual(['a', 'b', 'c'].flatMap((id) => c.node(id).creates), []);
  t.like(await c.sim.request(autoscalerAddress('f'), { type: 'as.status' }), { ready: 2 });

  // New sandboxes of the new term get ids of that term.
  tellAutoscaler(c, { type: 'as.backlog', dataplaneId: 'dp1', inFlight: 2, queued: 1 });
  await c.sim.advance(CREATE_MS);
  t.deepEqual(readyIds(await c.status()), ['f-1-0', 'f-1-1', 'f-2-0']);
  t.like(await c.sim.request(functionAddress('f'), { type: 'fn.getEndpoints' }), { version: 3, endpoints: [{ sandboxId: 'f-1-0' }, { sandboxId: 'f-1-1' }, { sandboxId: 'f-2-0' }] });
});

test('more demand than capacity: placement falls short and is retried until capacity appears', async (t) => {
  const c = await cluster({ nodes: ['a'] });
  await configure(c);
  tellAutoscaler(c, { type: 'as.backlog', dataplaneId: 'dp1', inFlight: 0, queued: 10 });
  await c.sim.advance(CREATE_MS);
  t.like(await c.status(), { desired: 10, ready: 8 }, 'node a has 8 slots');
  t.true(c.sim.transcript.some((line) => line.includes('placed 8/10 sandbox(es): 2 of 10 not placed: 0/1 nodes fit: 1 no free slot')));

  c.sim.spawn(nodeAddress('d'), {});
  c.sim.tell(nodeAddress('d'), { type: 'node.start' } satisfies NodeMessage);
  await c.sim.advance(1000 + CREATE_MS);
  t.like(await c.status(), { desired: 10, ready: 10 });
  t.deepEqual((await c.nodes()).map((n) => [n.nodeId, n.allocated.slots]), [
    ['a', 8],
    ['d', 2],
  ]);
  t.deepEqual(c.router().violations, []);
});

