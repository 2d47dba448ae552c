import test from 'ava';
import type { ActorKind, Address, Effect } from './actor.js';
import { functionAddress, nodeAddress, schedulerAddress, type FunctionMessage, type SandboxReport, type SandboxTemplate, type SourceCheck } from './messages.js';
import { nodeKind, NodeInitError, parseNodeInit, summarizeNode, type NodeState, type SandboxCheckInput, type SandboxCreateInput } from './node.js';
import { Simulation } from '../runtime/sim.js';
import { DirigentError } from './errors.js';

// ---- Fakes: a scheduler that answers registrations, function actors that record what they get ------

interface FakeSchedulerState {
  /** Registrations to refuse before answering (with NOT_LEADER). */
  refuse: number;
  term: number;
  received: unknown[];
}

const fakeScheduler: ActorKind<FakeSchedulerState, { type: string }> = {
  kind: 'scheduler',
  init: (_address, arg) => ({ refuse: 0, term: 1, ...(arg as Partial<FakeSchedulerState>), received: [] }),
  step(state, message, ctx) {
    state.received.push(message);
    if (message.type !== 'sch.register' || ctx.replyTo === undefined) return { state };
    if (state.refuse > 0) {
      state.refuse -= 1;
      return { state, effects: [{ type: 'fail', to: ctx.replyTo, error: { code: 'NOT_LEADER', message: 'not the leader' } }] };
    }
    return { state, effects: [{ type: 'reply', to: ctx.replyTo, value: { term: state.term } }] };
  },
};

type FakeFunctionMessage = FunctionMessage | { type: 'test.send'; to: Address; message: unknown };

const fakeFunction: ActorKind<{ received: FunctionMessage[] }, FakeFunctionMessage> = {
  kind: 'function',
  virtual: true,
  init: () => ({ received: [] }),
  step(state, message) {
    if (message.type === 'test.send') return { state, effects: [{ type: 'send', to: message.to, message: message.message } satisfies Effect<FakeFunctionMessage>] };
    state.received.push(message);
    return { state };
  },
};

const NODE = nodeAddress('n1');
const ADDRESS = '10.0.0.1:7000';
const capacity = { cpuMilli: 4000, memoryMiB: 8192, slots: 3 };

function template(name = 'f', overrides: Partial<SandboxTemplate> = {}): SandboxTemplate {
  return { name, runtime: 'simulated', source: { kind: 'builtin', workload: 'empty' }, cpuMilli: 250, memoryMiB: 128, concurrency: 2, timeoutMs: 1000, env: {}, version: 1, ...overrides };
}

interface Harness {
  sim: Simulation;
  /** Service calls in order: `create <id>` / `destroy <id>` / `address`. */
  calls: string[];
  received(name?: string): FunctionMessage[];
  node(): NodeState;
  /** Starts the node and runs until it is registered. */
  start(): Promise<void>;
}

interface HarnessOptions {
  /** Sandbox ids whose creation fails. */
  failCreate?: string[];
  /** Number of `sandbox.address` calls that fail first. */
  failAddress?: number;
  /** Registrations the scheduler refuses first. */
  refuse?: number;
  slots?: number;
}

function harness(options: HarnessOptions = {}): Harness {
  const calls: string[] = [];
  let failAddress = options.failAddress ?? 0;
  const sim = new Simulation({
    kinds: [nodeKind, fakeScheduler, fakeFunction],
    quiet: ['node.heartbeat', 'sch.heartbeat'],
    services: {
      'sandbox.address': () => {
        calls.push('address');
        if (failAddress > 0) {
          failAddress -= 1;
          throw new DirigentError('WORKER_NOT_STARTED', 'server not listening');
        }
        return ADDRESS;
      },
      'sandbox.create': (input) => {
        const { sandboxId } = input as SandboxCreateInput;
        calls.push(`create ${sandboxId}`);
        if (options.failCreate?.includes(sandboxId)) return Promise.reject(new DirigentError('SANDBOX_CREATE_FAILED', 'no such module'));
        return Promise.resolve({ address: ADDRESS });
      },
      'sandbox.destroy': (input) => {
        calls.push(`destroy ${(input as { sandboxId: string }).sandboxId}`);
        return undefined;
      },
      'sandbox.check': (input) => {
        const { template } = input as SandboxCheckInput;
        calls.push(`check ${template.name}`);
        if (template.name === 'unreachable') return Promise.reject(new DirigentError('WORKER_NOT_STARTED', 'worker stopping'));
        return template.name === 'broken' ? { outcome: 'failed', reason: 'SANDBOX_CREATE_FAILED: cannot load the module' } : { outcome: 'ok' };
      },
    },
  });
  sim.spawn(schedulerAddress, { refuse: options.refuse ?? 0, term: 1 });
  sim.spawn(NODE, { nodeId: 'n1', capacity: { ...capacity, slots: options.slots ?? capacity.slots }, runtime: 'thread', heartbeatMs: 100 });
  return {
    sim,
    calls,
    received: (name = 'f') => sim.state<{ received: FunctionMessage[] }>(functionAddress(name))?.received ?? [],
    node: () => sim.state<NodeState>(NODE)!,
    start: async () => {
      sim.tell(NODE, { type: 'node.start' });
      await sim.run();
    },
  };
}

const schedulerLog = (sim: Simulation) => sim.state<FakeSchedulerState>(schedulerAddress)!.received;

// ---- Registration and heartbeats ----------------------------------------------------------------

test('node.start learns the sandbox address, registers, then heartbeats every heartbeatMs', async (t) => {
  const h = harness();
  await h.start();
  t.deepEqual(h.sim.transcript, [
    't=0 node:n1 <- node.start',
    `t=0 node:n1 <- node.addressed address=${ADDRESS} (from node:n1)`,
    `t=0 scheduler:cluster <- sch.register nodeId=n1 capacity={"cpuMilli":4000,"memoryMiB":8192,"slots":3} address=${ADDRESS} runtime=thread incarnation= (from node:n1)`,
    't=0 node:n1 <- node.registered term=1 (from node:n1)',
    `t=0 node:n1 log info: registered at ${ADDRESS} (term 1)`,
  ]);
  t.is(h.node().term, 1);
  await h.sim.advance(350);
  t.deepEqual(
    schedulerLog(h.sim).filter((m) => (m as { type: string }).type === 'sch.heartbeat'),
    [1, 2, 3].map(() => ({ type: 'sch.heartbeat', nodeId: 'n1', sandboxes: 0 })),
  );
  t.deepEqual(h.calls, ['address']);
});

test('the worker\'s pool report (node.pool) goes to the scheduler with the next heartbeats', async (t) => {
  const h = harness();
  await h.start();
  const pool = { idle: 1, target: 2, idleMiB: 7.5, capMiB: 256, fromPool: 3, fresh: 1 };
  h.sim.tell(nodeAddress('n1'), { type: 'node.pool', pool });
  await h.sim.advance(100);
  t.deepEqual(schedulerLog(h.sim).filter((m) => (m as { type: string }).type === 'sch.heartbeat').at(-1), { type: 'sch.heartbeat', nodeId: 'n1', sandboxes: 0, pool });
});

test('a refused registration is retried after 1000 ms; so is a failed address lookup', async (t) => {
  const h = harness({ refuse: 2, failAddress: 1 });
  await h.start();
  t.is(h.node().registration.phase, 'idle');
  await h.sim.advance(999);
  t.deepEqual(h.calls, ['address']);
  await h.sim.advance(1);
  t.deepEqual(h.calls, ['address', 'address']);
  t.is(h.node().registration.phase, 'idle', 'first registration refused');
  await h.sim.advance(1000);
  t.is(h.node().registration.phase, 'idle', 'second registration refused');
  await h.sim.advance(1000);
  t.deepEqual(h.node().registration, { phase: 'registered', since: 3000 });
  t.is(schedulerLog(h.sim).filter((m) => (m as { type: string }).type === 'sch.register').length, 3);
  t.true(h.sim.transcript.some((line) => line.includes('log warn: registration with the scheduler failed: NOT_LEADER: not the leader; retrying in 1000 ms')));
  t.deepEqual(h.calls, ['address', 'address'], 'the address is asked for once it is known, not per attempt');
});

test('node.start while registering is ignored; once registered it registers again', async (t) => {
  const h = harness();
  h.sim.tell(NODE, { type: 'node.start' });
  h.sim.tell(NODE, { type: 'node.start' });
  await h.sim.run();
  t.is(schedulerLog(h.sim).length, 1);
  await h.start();
  t.is(schedulerLog(h.sim).length, 2);
  t.is(h.node().registration.phase, 'registered');
});

// ---- Sandboxes ----------------------------------------------------------------------------------

test('node.create creates the sandbox and tells the function it is ready; node.list reports it', async (t) => {
  const h = harness();
  await h.start();
  h.sim.tell(NODE, { type: 'node.create', term: 1, sandboxId: 'sb1', template: template() });
  await h.sim.advance(10);
  const endpoint = { sandboxId: 'sb1', nodeId: 'n1', address: ADDRESS, concurrency: 2, version: 1 };
  t.deepEqual(h.received(), [{ type: 'fn.sandboxReady', sandboxId: 'sb1', endpoint }]);
  const reports = await h.sim.request<SandboxReport[]>(NODE, { type: 'node.list' });
  t.deepEqual(reports, [{ sandboxId: 'sb1', functionName: 'f', nodeId: 'n1', endpoint, resources: { cpuMilli: 250, memoryMiB: 128 }, createdAt: 0, version: 1 }]);
  await h.sim.advance(100);
  t.deepEqual(schedulerLog(h.sim).at(-1), { type: 'sch.heartbeat', nodeId: 'n1', sandboxes: 1 });
});

test('a repeated node.create is idempotent: one creation, and a ready sandbox is announced again', async (t) => {
  const h = harness();
  await h.start();
  const create = { type: 'node.create', term: 1, sandboxId: 'sb1', template: template() };
  h.sim.tell(NODE, create);
  h.sim.tell(NODE, create);
  await h.sim.run();
  t.is(h.received().length, 1);
  h.sim.tell(NODE, create);
  await h.sim.run();
  t.deepEqual(h.calls, ['address', 'create sb1']);
  t.deepEqual(
    h.received().map((m) => m.type),
    ['fn.sandboxReady', 'fn.sandboxReady'],
  );
});

test('a failed creation tells the function fn.sandboxFailed with the reason and forgets the sandbox', async (t) => {
  const h = harness({ failCreate: ['bad'] });
  await h.start();
  h.sim.tell(NODE, { type: 'node.create', term: 1, sandboxId: 'bad', template: template() });
  await h.sim.run();
  t.deepEqual(h.received(), [{ type: 'fn.sandboxFailed', sandboxId: 'bad', nodeId: 'n1', reason: 'SANDBOX_CREATE_FAILED: no such module' }]);
  t.is(h.node().sandboxes.size, 0);
});

test('commands with a term older than the highest seen are refused; a newer term is adopted', async (t) => {
  const h = harness();
  await h.start();
  h.sim.tell(NODE, { type: 'node.create', term: 5, sandboxId: 'sb1', template: template() });
  await h.sim.run();
  t.is(h.node().term, 5);
  h.sim.tell(NODE, { type: 'node.create', term: 4, sandboxId: 'sb2', template: template() });
  h.sim.tell(NODE, { type: 'node.delete', term: 4, sandboxId: 'sb1' });
  await h.sim.run();
  t.deepEqual(h.calls, ['address', 'create sb1']);
  t.true(h.sim.transcript.includes('t=0 node:n1 log warn: node.create sb2 refused: term 4 is older than 5'));
  t.true(h.sim.transcript.includes('t=0 node:n1 log warn: node.delete sb1 refused: term 4 is older than 5'));
  t.is(h.node().sandboxes.get('sb1')?.phase, 'ready');
});

test('node.delete destroys a ready sandbox, then tells fn.sandboxDeleted', async (t) => {
  const h = harness();
  await h.start();
  h.sim.tell(NODE, { type: 'node.create', term: 1, sandboxId: 'sb1', template: template() });
  await h.sim.run();
  h.sim.tell(NODE, { type: 'node.delete', term: 1, sandboxId: 'sb1' });
  await h.sim.run();
  t.deepEqual(h.calls, ['address', 'create sb1', 'destroy sb1']);
  t.deepEqual(h.received().at(-1), { type: 'fn.sandboxDeleted', sandboxId: 'sb1', nodeId: 'n1' });
  t.deepEqual(await h.sim.request(NODE, { type: 'node.list' }), []);
  t.is(h.node().sandboxes.size, 0);
});

test('a delete while the sandbox is being created destroys it once created, and it is never announced ready', async (t) => {
  const h = harness({ failCreate: ['sb2'] });
  await h.start();
  // Both commands are queued before the create's outcome comes back.
  h.sim.tell(NODE, { type: 'node.create', term: 1, sandboxId: 'sb1', template: template() });
  h.sim.tell(NODE, { type: 'node.delete', term: 1, sandboxId: 'sb1' });
  h.sim.tell(NODE, { type: 'node.create', term: 1, sandboxId: 'sb2', template: template() });
  h.sim.tell(NODE, { type: 'node.delete', term: 1, sandboxId: 'sb2' });
  await h.sim.run();
  t.deepEqual(h.calls, ['address', 'create sb1', 'create sb2', 'destroy sb1']);
  t.deepEqual(
    h.received().map((m) => `${m.type} ${'sandboxId' in m ? m.sandboxId : ''}`),
    ['fn.sandboxDeleted sb2', 'fn.sandboxDeleted sb1'],
    'a creation that failed while a delete waited counts as deleted',
  );
  t.is(h.node().sandboxes.size, 0);
});

test('node.sandboxFailed forgets a ready sandbox and tells fn.sandboxFailed; other phases and unknown ids are ignored', async (t) => {
  const h = harness();
  await h.start();
  h.sim.tell(NODE, { type: 'node.create', term: 1, sandboxId: 'sb1', template: template() });
  await h.sim.run();
  h.sim.tell(NODE, { type: 'node.sandboxFailed', sandboxId: 'sb1', reason: 'worker thread exited' });
  h.sim.tell(NODE, { type: 'node.sandboxFailed', sandboxId: 'ghost', reason: 'whatever' });
  await h.sim.run();
  t.deepEqual(h.received().at(-1), { type: 'fn.sandboxFailed', sandboxId: 'sb1', nodeId: 'n1', reason: 'worker thread exited' });
  t.is(h.received().length, 2);
  t.is(h.node().sandboxes.size, 0);
  // Failure reported while a creation is pending: the creation's own outcome decides.
  h.sim.tell(NODE, { type: 'node.create', term: 1, sandboxId: 'sb2', template: template() });
  h.sim.tell(NODE, { type: 'node.sandboxFailed', sandboxId: 'sb2', reason: 'early' });
  await h.sim.run();
  t.is(h.received().at(-1)?.type, 'fn.sandboxReady');
});

test('creates are refused before the node knows its address and beyond its slots', async (t) => {
  const h = harness({ slots: 1 });
  h.sim.tell(NODE, { type: 'node.create', term: 1, sandboxId: 'early', template: template() });
  await h.sim.run();
  t.deepEqual(h.received(), [{ type: 'fn.sandboxFailed', sandboxId: 'early', nodeId: 'n1', reason: 'NODE_NOT_STARTED: the node has no sandbox address yet' }]);
  await h.start();
  h.sim.tell(NODE, { type: 'node.create', term: 1, sandboxId: 'one', template: template() });
  h.sim.tell(NODE, { type: 'node.create', term: 1, sandboxId: 'two', template: template() });
  await h.sim.run();
  t.deepEqual(
    h.received().slice(1).map((m) => (m.type === 'fn.sandboxFailed' ? `${m.sandboxId} ${m.reason}` : `${m.type} ${'sandboxId' in m ? m.sandboxId : ''}`)),
    ['two NODE_FULL: all 1 slots are taken', 'fn.sandboxReady one'],
  );
  t.deepEqual(h.calls, ['address', 'create one']);
});

test('deleting an unknown sandbox confirms to the function actor that asked, and nobody else', async (t) => {
  const h = harness();
  await h.start();
  h.sim.tell(NODE, { type: 'node.delete', term: 1, sandboxId: 'gone' });
  h.sim.tell(functionAddress('g'), { type: 'test.send', to: NODE, message: { type: 'node.delete', term: 1, sandboxId: 'gone' } });
  await h.sim.run();
  t.deepEqual(h.received('g'), [{ type: 'fn.sandboxDeleted', sandboxId: 'gone', nodeId: 'n1' }]);
  t.deepEqual(h.calls, ['address']);
});

test('a create whose outcome arrives for an unknown sandbox (the actor restarted meanwhile) is destroyed', async (t) => {
  const h = harness();
  await h.start();
  h.sim.tell(NODE, { type: 'node.created', sandboxId: 'orphan', ok: true });
  await h.sim.run();
  t.deepEqual(h.calls, ['address', 'destroy orphan']);
  t.deepEqual(h.received(), []);
});

test('an unknown message is logged, not a crash', async (t) => {
  const h = harness();
  await h.start();
  h.sim.tell(NODE, { type: 'node.bogus' });
  await h.sim.run();
  t.deepEqual(h.sim.errors, []);
  t.regex(h.sim.transcript.at(-1) ?? '', /log warn: unknown message \{"type":"node.bogus"\}/);
  t.is(h.node().registration.phase, 'registered');
});

test('the summary counts sandboxes by phase (step driven directly)', (t) => {
  const ctx = { now: 0, self: NODE, random: () => 0 };
  let state = nodeKind.init(NODE, { nodeId: 'n1', capacity, runtime: 'thread', heartbeatMs: 100 }, 0);
  const step = (message: unknown) => (state = nodeKind.step(state, message as never, ctx).state);
  step({ type: 'node.start' });
  step({ type: 'node.addressed', address: ADDRESS });
  for (const sandboxId of ['a', 'b', 'c']) step({ type: 'node.create', term: 2, sandboxId, template: template() });
  step({ type: 'node.delete', term: 2, sandboxId: 'b' });
  t.like(summarizeNode(state), { address: ADDRESS, registration: 'registering', term: 2, creating: 3, ready: 0, deleting: 0 });
  step({ type: 'node.created', sandboxId: 'a', ok: true });
  step({ type: 'node.created', sandboxId: 'b', ok: true });
  t.deepEqual(summarizeNode(state), { nodeId: 'n1', runtime: 'thread', address: ADDRESS, registration: 'registering', term: 2, capacity, heartbeatMs: 100, creating: 1, ready: 1, deleting: 1 });
});

test('node.check runs the source check of the worker and answers its outcome; it creates, reserves and reports nothing', async (t) => {
  const h = harness();
  await h.start();
  t.deepEqual(await h.sim.request<SourceCheck>(NODE, { type: 'node.check', template: template('good') }), { outcome: 'ok' });
  t.deepEqual(await h.sim.request<SourceCheck>(NODE, { type: 'node.check', template: template('broken') }), { outcome: 'failed', reason: 'SANDBOX_CREATE_FAILED: cannot load the module' });
  const error = await t.throwsAsync(h.sim.request(NODE, { type: 'node.check', template: template('unreachable') }));
  t.regex(String(error?.message), /worker stopping/, 'a check that could not be made fails the ask');
  t.deepEqual(h.calls.filter((c) => c.startsWith('check')), ['check good', 'check broken', 'check unreachable']);
  t.is(h.node().sandboxes.size, 0);
  t.deepEqual(h.received('good'), []);
  t.deepEqual(h.received('broken'), []);
});

test('the init argument is validated; errors name the field, value and unit', (t) => {
  t.deepEqual(parseNodeInit({ nodeId: 'n', capacity, runtime: 'process' }), { nodeId: 'n', capacity, runtime: 'process', heartbeatMs: 5000, incarnation: '' });
  const cases: [unknown, RegExp][] = [
    [null, /\(init\)=null/],
    [{ capacity }, /nodeId=undefined must be a non-empty string/],
    [{ nodeId: 'n' }, /capacity=undefined/],
    [{ nodeId: 'n', capacity: { ...capacity, cpuMilli: 0 } }, /capacity.cpuMilli=0 must be > 0 \(millicores\)/],
    [{ nodeId: 'n', capacity: { ...capacity, memoryMiB: -1 } }, /capacity.memoryMiB=-1 must be > 0 \(MiB\)/],
    [{ nodeId: 'n', capacity: { ...capacity, slots: 1.5 } }, /capacity.slots=1.5 must be an integer >= 1/],
    [{ nodeId: 'n', capacity }, /runtime=undefined must be 'thread', 'process' or 'simulated'/],
    [{ nodeId: 'n', capacity, runtime: 'thread', heartbeatMs: 0 }, /heartbeatMs=0 must be > 0 \(ms\)/],
  ];
  for (const [arg, message] of cases) {
    const error = t.throws(() => parseNodeInit(arg), { instanceOf: NodeInitError, message });
    t.is(error?.code, 'INVALID_NODE_INIT');
  }
});
