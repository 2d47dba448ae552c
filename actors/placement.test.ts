import test from 'ava';
import {
  PLACEMENT_POLICIES,
  balancedAllocationScore,
  chooseEvictions,
  feasibleNodes,
  kubernetesScore,
  leastAllocatedScore,
  misfits,
  placeMany,
  placeOne,
  type NodeMisfit,
  type NodeView,
  type PlacementPolicy,
  type Resources,
  type SandboxRequest,
  type SandboxView,
} from './placement.js';

const node = (id: string, capacity: Resources, allocated: Resources = { cpuMilli: 0, memoryMiB: 0, slots: 0 }, schedulable = true): NodeView => ({
  id,
  schedulable,
  capacity,
  allocated,
});

const medium: Resources = { cpuMilli: 4000, memoryMiB: 8192, slots: 10 };
const small: SandboxRequest = { cpuMilli: 500, memoryMiB: 1024 };

/** A random source that replays the given values. */
function replay(...values: number[]): () => number {
  let i = 0;
  return () => {
    const value = values[i % values.length];
    i += 1;
    if (value === undefined) throw new Error('replay needs values');
    return value;
  };
}

const noRandom = (): number => {
  throw new Error('this policy must not draw randomness');
};

test('filtering: a node must be schedulable, fit cpu and memory, and have a free slot', (t) => {
  const cases: { name: string; node: NodeView; misfits: NodeMisfit[] }[] = [
    { name: 'empty node', node: node('n', medium), misfits: [] },
    { name: 'cpu exactly full after placing', node: node('n', medium, { cpuMilli: 3500, memoryMiB: 0, slots: 0 }), misfits: [] },
    { name: 'cpu over', node: node('n', medium, { cpuMilli: 3501, memoryMiB: 0, slots: 0 }), misfits: ['cpu'] },
    { name: 'memory over', node: node('n', medium, { cpuMilli: 0, memoryMiB: 7169, slots: 0 }), misfits: ['memory'] },
    { name: 'no free slot', node: node('n', medium, { cpuMilli: 0, memoryMiB: 0, slots: 10 }), misfits: ['slots'] },
    { name: 'unschedulable', node: node('n', medium, undefined, false), misfits: ['unschedulable'] },
    {
      name: 'everything wrong',
      node: node('n', medium, { cpuMilli: 4000, memoryMiB: 8192, slots: 10 }, false),
      misfits: ['unschedulable', 'cpu', 'memory', 'slots'],
    },
  ];
  for (const c of cases) t.deepEqual(misfits(c.node, small), c.misfits, c.name);

  const nodes = [
    node('c', medium),
    node('a', medium),
    node('d', medium, undefined, false),
    node('b', medium, { cpuMilli: 3900, memoryMiB: 0, slots: 1 }),
  ];
  t.deepEqual(
    feasibleNodes(nodes, small).map((n) => n.id),
    ['a', 'c'],
    'in id order',
  );
  for (const policy of PLACEMENT_POLICIES) {
    const result = placeMany(policy, nodes, small, 20, { random: replay(0.99, 0.5, 0) });
    t.true(
      result.nodeIds.every((id) => id === 'a' || id === 'c'),
      `${policy} never picks an unfit node`,
    );
  }
});

// After placing `small`: a: cpu 2500/4000, memory 3072/8192; b: 1500, 7168; c: 3500, 7168; d: 2000, 4096.
const scored = [
  node('d', medium, { cpuMilli: 1500, memoryMiB: 3072, slots: 1 }),
  node('c', medium, { cpuMilli: 3000, memoryMiB: 6144, slots: 1 }),
  node('b', medium, { cpuMilli: 1000, memoryMiB: 6144, slots: 1 }),
  node('a', medium, { cpuMilli: 2000, memoryMiB: 2048, slots: 1 }),
];

test('scores follow the Kubernetes formulas over allocation plus this request', (t) => {
  const cases: { id: string; least: number; balanced: number }[] = [
    // least: ((4000 - 2500) / 4000 + (8192 - 3072) / 8192) * 100 / 2; balanced: (1 - |0.625 - 0.375|) * 100.
    { id: 'a', least: 50, balanced: 75 },
    { id: 'b', least: 37.5, balanced: 50 },
    { id: 'c', least: 12.5, balanced: 100 },
    { id: 'd', least: 50, balanced: 100 },
  ];
  for (const c of cases) {
    const n = scored.find((s) => s.id === c.id);
    if (n === undefined) throw new Error(c.id);
    t.is(leastAllocatedScore(n, small), c.least, c.id);
    t.is(balancedAllocationScore(n, small), c.balanced, c.id);
    t.is(kubernetesScore(n, small), c.least + c.balanced, c.id);
  }
});

test('each policy picks its node; score ties go to the lowest id', (t) => {
  const cases: { policy: PlacementPolicy; random: () => number; cursor: string | null; want: string; why: string }[] = [
    { policy: 'least-allocated', random: noRandom, cursor: null, want: 'a', why: 'a and d both score 50' },
    { policy: 'balanced-allocation', random: noRandom, cursor: null, want: 'c', why: 'c and d both score 100' },
    { policy: 'kubernetes', random: noRandom, cursor: null, want: 'd', why: 'd scores 150, a 125' },
    { policy: 'round-robin', random: noRandom, cursor: null, want: 'a', why: 'starts at the lowest id' },
    { policy: 'round-robin', random: noRandom, cursor: 'b', want: 'c', why: 'the next id after the cursor' },
    { policy: 'round-robin', random: noRandom, cursor: 'd', want: 'a', why: 'wraps around' },
    { policy: 'random', random: replay(0), cursor: null, want: 'a', why: '0 -> first by id' },
    { policy: 'random', random: replay(0.26), cursor: null, want: 'b', why: '0.26 * 4 -> second' },
    { policy: 'random', random: replay(0.999), cursor: null, want: 'd', why: 'just below 1 -> last' },
  ];
  for (const c of cases) {
    const result = placeOne(c.policy, scored, small, { random: c.random, cursor: c.cursor });
    t.like(result, { ok: true, nodeId: c.want }, `${c.policy}: ${c.why}`);
  }
  t.throws(() => placeOne('random', scored, small, { random: () => 1 }), { instanceOf: RangeError });
});

test('identical nodes: ties go to the lowest id whatever the input order', (t) => {
  const nodes = [node('n3', medium), node('n1', medium), node('n2', medium)];
  for (const policy of ['least-allocated', 'balanced-allocation', 'kubernetes', 'round-robin'] as const) {
    t.like(placeOne(policy, nodes, small, { random: noRandom }), { ok: true, nodeId: 'n1' }, policy);
    t.like(placeOne(policy, [...nodes].reverse(), small, { random: noRandom }), { ok: true, nodeId: 'n1' }, policy);
  }
});

test('placeMany accounts for each pick before the next, so a batch spreads', (t) => {
  const nodes = [node('a', medium), node('b', medium), node('c', medium)];
  const cases: { policy: PlacementPolicy; random: () => number; want: string[] }[] = [
    { policy: 'least-allocated', random: noRandom, want: ['a', 'b', 'c', 'a', 'b', 'c'] },
    { policy: 'kubernetes', random: noRandom, want: ['a', 'b', 'c', 'a', 'b', 'c'] },
    { policy: 'round-robin', random: noRandom, want: ['a', 'b', 'c', 'a', 'b', 'c'] },
    { policy: 'random', random: replay(0.9, 0.1, 0.5, 0.5), want: ['c', 'a', 'b', 'b', 'c', 'a'] },
    // Balanced allocation alone only evens out cpu against memory; with a request of the nodes' own shape every
    // node scores 100 and the batch packs onto the lowest id, as in Kubernetes, where it is never used alone.
    { policy: 'balanced-allocation', random: noRandom, want: ['a', 'a', 'a', 'a', 'a', 'a'] },
  ];
  const shaped: SandboxRequest = { cpuMilli: 500, memoryMiB: 1024 };
  for (const c of cases) {
    const result = placeMany(c.policy, nodes, shaped, 6, { random: c.random });
    t.deepEqual(result.nodeIds, c.want, c.policy);
    t.is(result.unplaced, undefined, c.policy);
    for (const n of result.nodes) {
      const placed = c.want.filter((id) => id === n.id).length;
      t.deepEqual(n.allocated, { cpuMilli: 500 * placed, memoryMiB: 1024 * placed, slots: placed }, `${c.policy}: ${n.id}`);
    }
  }
  t.is(placeMany('round-robin', nodes, small, 4, { random: noRandom }).cursor, 'a');
});

test('least-allocated fills the emptier node first when nodes start uneven', (t) => {
  const nodes = [node('a', medium, { cpuMilli: 2000, memoryMiB: 4096, slots: 4 }), node('b', medium)];
  const result = placeMany('least-allocated', nodes, small, 6, { random: noRandom });
  // b scores higher until it holds as much as a: 4 sandboxes there first, then alternating from a.
  t.deepEqual(result.nodeIds, ['b', 'b', 'b', 'b', 'a', 'b']);
});

test('round-robin keeps its place when nodes join or leave', (t) => {
  let nodes = [node('a', medium), node('b', medium), node('c', medium)];
  let cursor: string | null = null;
  const picks: string[] = [];
  const pick = (): void => {
    const result = placeOne('round-robin', nodes, small, { random: noRandom, cursor });
    if (!result.ok) throw new Error(result.reason.message);
    picks.push(result.nodeId);
    cursor = result.cursor;
  };
  pick(); // a
  pick(); // b
  nodes = [...nodes, node('bb', medium)]; // joins between b and c: its turn comes next, nobody is skipped
  pick(); // bb
  pick(); // c
  nodes = nodes.filter((n) => n.id !== 'a'); // a leaves: the turn wraps to the next one present
  pick(); // b
  nodes = nodes.filter((n) => n.id !== 'b'); // the node picked last leaves: its successor is still next
  pick(); // bb
  pick(); // c
  pick(); // bb
  t.deepEqual(picks, ['a', 'b', 'bb', 'c', 'b', 'bb', 'c', 'bb']);
});

test('round-robin skips nodes that do not fit without losing its place', (t) => {
  const nodes = [node('a', medium), node('b', medium, { cpuMilli: 4000, memoryMiB: 0, slots: 1 }), node('c', medium)];
  const result = placeMany('round-robin', nodes, small, 4, { random: noRandom });
  t.deepEqual(result.nodeIds, ['a', 'c', 'a', 'c']);
});

test('capacity runs out: fewer placements and the reason', (t) => {
  const two: Resources = { cpuMilli: 4000, memoryMiB: 8192, slots: 2 };
  const cases: { name: string; nodes: NodeView[]; request: SandboxRequest; count: number; placed: string[]; code: string; message: string }[] = [
    {
      name: 'slots',
      nodes: [node('a', two), node('b', two)],
      request: small,
      count: 5,
      placed: ['a', 'b', 'a', 'b'],
      code: 'NO_FIT',
      message: '0/2 nodes fit: 2 no free slot',
    },
    {
      name: 'memory',
      nodes: [node('a', medium), node('b', { cpuMilli: 4000, memoryMiB: 2048, slots: 10 })],
      request: { cpuMilli: 100, memoryMiB: 3000 },
      count: 4,
      placed: ['a', 'a'],
      code: 'NO_FIT',
      message: '0/2 nodes fit: 2 insufficient memory',
    },
    {
      name: 'mixed reasons',
      nodes: [node('a', medium, undefined, false), node('b', { cpuMilli: 100, memoryMiB: 8192, slots: 10 })],
      request: small,
      count: 1,
      placed: [],
      code: 'NO_FIT',
      message: '0/2 nodes fit: 1 unschedulable, 1 insufficient cpu',
    },
    { name: 'no nodes', nodes: [], request: small, count: 2, placed: [], code: 'NO_NODES', message: 'no nodes' },
  ];
  for (const c of cases) {
    const result = placeMany('kubernetes', c.nodes, c.request, c.count, { random: noRandom });
    t.deepEqual(result.nodeIds, c.placed, c.name);
    t.deepEqual(result.unplaced, { count: c.count - c.placed.length, reason: { code: c.code, message: c.message } }, c.name);
  }
  t.deepEqual(placeMany('random', [], small, 0, { random: noRandom }), { nodeIds: [], nodes: [], cursor: null }, 'nothing to place');
});

test('invalid requests and counts are bugs and throw', (t) => {
  t.throws(() => placeOne('kubernetes', [node('a', medium)], { cpuMilli: -1, memoryMiB: 0 }, { random: noRandom }), { instanceOf: RangeError });
  t.throws(() => placeMany('kubernetes', [node('a', medium)], small, 1.5, { random: noRandom }), { instanceOf: RangeError });
  t.throws(() => chooseEvictions([], -1), { instanceOf: RangeError });
});

const sandbox = (id: string, inFlight: number, createdAt: number, state: SandboxView['state'] = 'ready'): SandboxView => ({
  id,
  nodeId: 'n1',
  inFlight,
  state,
  createdAt,
});

test('eviction prefers idle, then fewest in flight, then newest; never draining, gone or failed', (t) => {
  const cases: { name: string; sandboxes: SandboxView[]; count: number; want: string[] }[] = [
    { name: 'idle first', sandboxes: [sandbox('busy', 2, 300), sandbox('idle-old', 0, 100), sandbox('idle-new', 0, 200)], count: 2, want: ['idle-new', 'idle-old'] },
    { name: 'then fewest in flight', sandboxes: [sandbox('x', 3, 100), sandbox('y', 1, 100), sandbox('z', 2, 100)], count: 2, want: ['y', 'z'] },
    { name: 'then newest', sandboxes: [sandbox('old', 1, 100), sandbox('new', 1, 500), sandbox('mid', 1, 300)], count: 2, want: ['new', 'mid'] },
    { name: 'then by id', sandboxes: [sandbox('s2', 0, 100), sandbox('s1', 0, 100)], count: 1, want: ['s1'] },
    {
      name: 'never draining, gone or failed',
      sandboxes: [sandbox('draining', 0, 900, 'draining'), sandbox('gone', 0, 800, 'gone'), sandbox('failed', 0, 700, 'failed'), sandbox('ready', 4, 100)],
      count: 2,
      want: ['ready'],
    },
    {
      name: 'sandboxes still creating go first: idle and newest',
      sandboxes: [sandbox('ready', 0, 100), sandbox('creating', 0, 200, 'creating')],
      count: 1,
      want: ['creating'],
    },
    { name: 'more asked than there are', sandboxes: [sandbox('a', 1, 1), sandbox('b', 0, 1)], count: 5, want: ['b', 'a'] },
    { name: 'none asked', sandboxes: [sandbox('a', 0, 1)], count: 0, want: [] },
  ];
  for (const c of cases) t.deepEqual(chooseEvictions(c.sandboxes, c.count), c.want, c.name);
});
