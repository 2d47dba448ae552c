// Where new sandboxes go and which ones go on scale-down, as pure functions over node and sandbox views.
// Scoring uses the control plane's own allocation accounting (what it has placed: allocated + this request),
// not Dirigent's heartbeat CPU/memory percentages, which lag by a heartbeat and ignore sandboxes being created.
// Every node order is by id (code-unit order, not locale), so the same inputs give the same choice everywhere.

import { assertNever } from './actor.js';

export interface Resources {
  /** CPU, millicores. */
  readonly cpuMilli: number;
  /** Memory, MiB. */
  readonly memoryMiB: number;
  /** Sandboxes; each sandbox takes one slot. */
  readonly slots: number;
}

export interface NodeView {
  readonly id: string;
  /** False for cordoned, draining or dead nodes: they take no new sandbox. */
  readonly schedulable: boolean;
  readonly capacity: Resources;
  /** Sum over the sandboxes placed on the node, those being created included. */
  readonly allocated: Resources;
  /** The sandbox runtime the node's worker runs (`thread`, `process`, `simulated`); absent: not known, any fits. */
  readonly runtime?: string;
}

/** What one sandbox asks for. */
export interface SandboxRequest {
  /** CPU, millicores. */
  readonly cpuMilli: number;
  /** Memory, MiB. */
  readonly memoryMiB: number;
  /** The runtime a node must run (a module needs `thread`, a command `process`); absent: any (builtins). */
  readonly runtime?: string;
}

export type PlacementPolicy =
  /** Uniform over the nodes that fit. */
  | 'random'
  /** The next node that fits after the previous pick, in id order. */
  | 'round-robin'
  /** Most free CPU and memory after placing (Kubernetes NodeResourcesLeastAllocated). */
  | 'least-allocated'
  /** CPU and memory fractions closest to each other after placing (Kubernetes NodeResourcesBalancedAllocation). */
  | 'balanced-allocation'
  /** least-allocated + balanced-allocation, each 0..100, as Kubernetes' default scoring sums them. */
  | 'kubernetes';

export const PLACEMENT_POLICIES: readonly PlacementPolicy[] = ['random', 'round-robin', 'least-allocated', 'balanced-allocation', 'kubernetes'];

/**
 * Round-robin position: the id of the node picked last, or null before the first pick. An id rather than an
 * index, so that nodes joining or leaving neither skip nor repeat anyone: the next pick is the first node that
 * fits with a greater id, wrapping around.
 */
export type RoundRobinCursor = string | null;

export interface PlacementInputs {
  /** Seeded random source in [0, 1); used by `random` only. */
  readonly random: () => number;
  /** Used and advanced by `round-robin` only; default: null (start from the lowest id). */
  readonly cursor?: RoundRobinCursor;
}

export type NodeMisfit = 'unschedulable' | 'runtime' | 'cpu' | 'memory' | 'slots';

export interface Unplaceable {
  /** `NO_NODES`: no node at all; `NO_FIT`: no node can take one more sandbox of this size. */
  readonly code: 'NO_NODES' | 'NO_FIT';
  /** Kubernetes-style summary, e.g. "0/3 nodes fit: 1 unschedulable, 2 insufficient memory". */
  readonly message: string;
}

export type PlaceOneResult =
  | { readonly ok: true; readonly nodeId: string; readonly cursor: RoundRobinCursor }
  | { readonly ok: false; readonly reason: Unplaceable };

export interface PlaceManyResult {
  /** Node id of each placed sandbox, in placement order; shorter than asked when capacity ran out. */
  readonly nodeIds: readonly string[];
  /** The nodes with `allocated` including the sandboxes just placed, in the order given. */
  readonly nodes: readonly NodeView[];
  readonly cursor: RoundRobinCursor;
  /** Present when fewer than `count` were placed: why the next one did not fit. */
  readonly unplaced?: { readonly count: number; readonly reason: Unplaceable };
}

/** Lifecycle phases of a sandbox, the same union as the sandbox messages use. */
export type SandboxPhase = 'creating' | 'ready' | 'draining' | 'gone' | 'failed';

export interface SandboxView {
  readonly id: string;
  readonly nodeId: string;
  /** Requests running in the sandbox now. */
  readonly inFlight: number;
  readonly state: SandboxPhase;
  /** Creation time, ms. */
  readonly createdAt: number;
}

/** Why `node` cannot take one more sandbox of this size; empty when it can. */
export function misfits(node: NodeView, request: SandboxRequest): readonly NodeMisfit[] {
  const found: NodeMisfit[] = [];
  if (!node.schedulable) found.push('unschedulable');
  if (request.runtime !== undefined && node.runtime !== undefined && node.runtime !== request.runtime) found.push('runtime');
  if (node.allocated.cpuMilli + request.cpuMilli > node.capacity.cpuMilli) found.push('cpu');
  if (node.allocated.memoryMiB + request.memoryMiB > node.capacity.memoryMiB) found.push('memory');
  if (node.allocated.slots + 1 > node.capacity.slots) found.push('slots');
  return found;
}

export function fits(node: NodeView, request: SandboxRequest): boolean {
  return misfits(node, request).length === 0;
}

/** Nodes that can take one more sandbox of this size, by id. */
export function feasibleNodes(nodes: readonly NodeView[], request: SandboxRequest): NodeView[] {
  return byId(nodes.filter((node) => fits(node, request)));
}

/**
 * Kubernetes least-allocated: per resource (capacity - allocated after placing) * 100 / capacity, averaged over
 * CPU and memory; 0..100, higher is emptier. A resource the node has none of scores 0 (full).
 */
export function leastAllocatedScore(node: NodeView, request: SandboxRequest): number {
  const free = (capacity: number, used: number): number => (capacity > 0 ? ((capacity - used) * 100) / capacity : 0);
  const after = allocatedAfter(node, request);
  return (free(node.capacity.cpuMilli, after.cpuMilli) + free(node.capacity.memoryMiB, after.memoryMiB)) / 2;
}

/**
 * Kubernetes balanced allocation: (1 - |cpu fraction - memory fraction|) * 100 after placing, fractions capped
 * at 1; 0..100, higher leaves less of one resource stranded. A resource the node has none of counts as full.
 */
export function balancedAllocationScore(node: NodeView, request: SandboxRequest): number {
  const fraction = (capacity: number, used: number): number => (capacity > 0 ? Math.min(1, used / capacity) : 1);
  const after = allocatedAfter(node, request);
  return (1 - Math.abs(fraction(node.capacity.cpuMilli, after.cpuMilli) - fraction(node.capacity.memoryMiB, after.memoryMiB))) * 100;
}

/** Kubernetes default scoring: least-allocated + balanced-allocation, 0..200. */
export function kubernetesScore(node: NodeView, request: SandboxRequest): number {
  return leastAllocatedScore(node, request) + balancedAllocationScore(node, request);
}

/** Picks a node for one sandbox of this size. */
export function placeOne(policy: PlacementPolicy, nodes: readonly NodeView[], request: SandboxRequest, inputs: PlacementInputs): PlaceOneResult {
  requireRequest(request);
  const cursor = inputs.cursor ?? null;
  const candidates = feasibleNodes(nodes, request);
  const first = candidates[0];
  if (first === undefined) return { ok: false, reason: unplaceable(nodes, request) };
  switch (policy) {
    case 'random': {
      const r = inputs.random();
      if (!(r >= 0 && r < 1)) throw new RangeError(`random source must return a number in [0, 1), got ${r}`);
      return { ok: true, nodeId: (candidates[Math.floor(r * candidates.length)] ?? first).id, cursor };
    }
    case 'round-robin': {
      const next = candidates.find((node) => cursor === null || node.id > cursor) ?? first;
      return { ok: true, nodeId: next.id, cursor: next.id };
    }
    case 'least-allocated':
      return { ok: true, nodeId: bestBy(candidates, first, (node) => leastAllocatedScore(node, request)).id, cursor };
    case 'balanced-allocation':
      return { ok: true, nodeId: bestBy(candidates, first, (node) => balancedAllocationScore(node, request)).id, cursor };
    case 'kubernetes':
      return { ok: true, nodeId: bestBy(candidates, first, (node) => kubernetesScore(node, request)).id, cursor };
    default:
      return assertNever(policy, 'placement policy');
  }
}

/**
 * Places `count` sandboxes one by one, adding each to its node's allocation before the next pick, so that a
 * batch spreads by the scores instead of piling onto the node that was emptiest at the start.
 */
export function placeMany(
  policy: PlacementPolicy,
  nodes: readonly NodeView[],
  request: SandboxRequest,
  count: number,
  inputs: PlacementInputs,
): PlaceManyResult {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be an integer >= 0 sandboxes, got ${count}`);
  let current = [...nodes];
  let cursor = inputs.cursor ?? null;
  const nodeIds: string[] = [];
  while (nodeIds.length < count) {
    const picked = placeOne(policy, current, request, { random: inputs.random, cursor });
    if (!picked.ok) return { nodeIds, nodes: current, cursor, unplaced: { count: count - nodeIds.length, reason: picked.reason } };
    nodeIds.push(picked.nodeId);
    cursor = picked.cursor;
    current = current.map((node) => (node.id === picked.nodeId ? { ...node, allocated: allocatedAfter(node, request) } : node));
  }
  return { nodeIds, nodes: current, cursor };
}

/**
 * Which sandboxes to remove on scale-down: idle ones first (no request is cut short or waits for a drain),
 * then the fewest in flight, then the newest (the older ones have warm caches), then by id. Sandboxes
 * draining, gone or failed are on their way out already and never picked; sandboxes still creating are, being idle and
 * newest, the first picked. Returns up to `count` sandbox ids.
 */
export function chooseEvictions(sandboxes: readonly SandboxView[], count: number): readonly string[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be an integer >= 0 sandboxes, got ${count}`);
  return sandboxes
    .filter((sandbox) => evictable(sandbox.state))
    .sort((a, b) => a.inFlight - b.inFlight || b.createdAt - a.createdAt || compareIds(a.id, b.id))
    .slice(0, count)
    .map((sandbox) => sandbox.id);
}

function evictable(phase: SandboxPhase): boolean {
  switch (phase) {
    case 'creating':
    case 'ready':
      return true;
    case 'draining':
    case 'gone':
    case 'failed':
      return false;
    default:
      return assertNever(phase, 'sandbox phase');
  }
}

function allocatedAfter(node: NodeView, request: SandboxRequest): Resources {
  return {
    cpuMilli: node.allocated.cpuMilli + request.cpuMilli,
    memoryMiB: node.allocated.memoryMiB + request.memoryMiB,
    slots: node.allocated.slots + 1,
  };
}

/** Highest score; `candidates` are in id order and only a strictly higher score replaces, so ties go to the lowest id. */
function bestBy(candidates: readonly NodeView[], first: NodeView, score: (node: NodeView) => number): NodeView {
  return candidates.reduce((best, node) => (score(node) > score(best) ? node : best), first);
}

function unplaceable(nodes: readonly NodeView[], request: SandboxRequest): Unplaceable {
  if (nodes.length === 0) return { code: 'NO_NODES', message: 'no nodes' };
  const counts: Record<NodeMisfit, number> = { unschedulable: 0, runtime: 0, cpu: 0, memory: 0, slots: 0 };
  for (const node of nodes) for (const misfit of misfits(node, request)) counts[misfit] += 1;
  const labels: Record<NodeMisfit, string> = {
    unschedulable: 'unschedulable',
    runtime: `not running ${request.runtime ?? 'that'} sandboxes`,
    cpu: 'insufficient cpu',
    memory: 'insufficient memory',
    slots: 'no free slot',
  };
  const parts = (Object.keys(counts) as NodeMisfit[]).filter((misfit) => counts[misfit] > 0).map((misfit) => `${counts[misfit]} ${labels[misfit]}`);
  return { code: 'NO_FIT', message: `0/${nodes.length} nodes fit: ${parts.join(', ')}` };
}

function requireRequest(request: SandboxRequest): void {
  if (!(Number.isFinite(request.cpuMilli) && request.cpuMilli >= 0 && Number.isFinite(request.memoryMiB) && request.memoryMiB >= 0)) {
    throw new RangeError(`sandbox request must have cpuMilli >= 0 millicores and memoryMiB >= 0 MiB, got ${JSON.stringify(request)}`);
  }
}

function byId(nodes: readonly NodeView[]): NodeView[] {
  return [...nodes].sort((a, b) => compareIds(a.id, b.id));
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
