// The scheduler actor (control plane, one per cluster): the node table, placement and allocation accounting.
// Placement scores the control plane's own record of what it placed (every sandbox from `sch.place` until its
// `sch.release`, creating ones included), not Dirigent's heartbeat CPU/memory percentages, which lag by 5 s.
//
// Failure detection: a named timer checks every `checkEveryMs`; a node silent for more than
// `heartbeatTimeoutMs` is declared dead, its allocations are dropped and every function that had a sandbox
// there gets `fn.nodeLost` (and recreates them elsewhere). A dead node that heartbeats again is alive with no
// allocations. A node that registers while it still has allocations restarted: its sandboxes died with the
// worker process, so it is treated like a lost node first.
//
// Runtimes: each node registers the sandbox runtime of its worker, and a sandbox that needs one (a module needs
// `thread`, a command `process`) is placed only on nodes that run it. `sch.feasible` answers at deploy whether
// any live node could ever hold a sandbox (runtime, capacity when empty), so that a function nothing can run is
// refused then, not left to fail at every creation.

import { assertNever, type ActorError, type ActorKind, type Effect, type Step, type StepContext } from './actor.js';
import type { SandboxRuntimeKind } from './function-spec.js';
import {
  functionAddress,
  type Feasibility,
  type FunctionMessage,
  type NodeCapacity,
  type NodeView,
  type PlaceReply,
  type PoolReport,
  type Resources,
  type SandboxReport,
  type SandboxRequest,
  type SchedulerMessage,
} from './messages.js';
import { placeMany, type NodeView as PlacementNode, type PlacementPolicy, type RoundRobinCursor } from './placement.js';

export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 15_000;
export const DEFAULT_CHECK_EVERY_MS = 5000;

export interface SchedulerInit {
  /** The leader's term, returned to registering workers. */
  readonly term: number;
  /** Default `kubernetes`. */
  readonly policy?: PlacementPolicy;
  /** A node silent for longer than this is dead, ms. Default 15 000 (Dirigent). */
  readonly heartbeatTimeoutMs?: number;
  /** Period of the heartbeat check, ms. Default 5000. */
  readonly checkEveryMs?: number;
}

export interface NodeEntry {
  readonly nodeId: string;
  /** `host:port` of the worker. */
  readonly address: string;
  readonly capacity: NodeCapacity;
  /** The sandbox runtime of the node's worker. */
  readonly runtime: SandboxRuntimeKind;
  /** Sum over this node's allocations. */
  readonly allocated: NodeCapacity;
  /** Sandboxes the worker said it runs in its last heartbeat. */
  readonly reportedSandboxes: number;
  readonly schedulable: boolean;
  readonly alive: boolean;
  /** Last registration or heartbeat, ms. */
  readonly lastSeen: number;
  /** The run of the worker that registered it (see `sch.register`). */
  readonly incarnation: string;
  /** Its pool of started generic sandboxes, from the last heartbeat; shown, never placed (see PoolReport). */
  readonly pool?: PoolReport;
}

export interface Allocation {
  readonly functionName: string;
  readonly nodeId: string;
  readonly resources: Resources;
}

export interface SchedulerState {
  readonly term: number;
  readonly policy: PlacementPolicy;
  readonly heartbeatTimeoutMs: number;
  readonly checkEveryMs: number;
  readonly nodes: ReadonlyMap<string, NodeEntry>;
  /** By sandbox id (unique across functions and terms). */
  readonly allocations: ReadonlyMap<string, Allocation>;
  readonly cursor: RoundRobinCursor;
  /** Whether the heartbeat check timer runs (from the first registration on). */
  readonly checking: boolean;
}

const CHECK_TIMER = 'checkHeartbeats';
const NOTHING: NodeCapacity = { cpuMilli: 0, memoryMiB: 0, slots: 0 };

export function initialSchedulerState(init: SchedulerInit): SchedulerState {
  return {
    term: init.term,
    policy: init.policy ?? 'kubernetes',
    heartbeatTimeoutMs: init.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
    checkEveryMs: init.checkEveryMs ?? DEFAULT_CHECK_EVERY_MS,
    nodes: new Map(),
    allocations: new Map(),
    cursor: null,
    checking: false,
  };
}

export const schedulerKind: ActorKind<SchedulerState, SchedulerMessage> = {
  kind: 'scheduler',
  init(address, arg) {
    const init = arg as SchedulerInit | undefined;
    if (typeof init?.term !== 'number') throw new TypeError(`scheduler ${address.id}: init needs { term }`);
    return initialSchedulerState(init);
  },
  step(state, message, ctx) {
    const w = new Work(state, ctx);
    handle(w, message);
    return w.commit();
  },
  summary(state) {
    const nodes = [...state.nodes.values()];
    return {
      term: state.term,
      policy: state.policy,
      nodes: nodes.length,
      alive: nodes.filter((node) => node.alive).length,
      schedulable: nodes.filter((node) => node.alive && node.schedulable).length,
      allocations: state.allocations.size,
    };
  },
};

class Work {
  readonly nodes: Map<string, NodeEntry>;
  readonly allocations: Map<string, Allocation>;
  cursor: RoundRobinCursor;
  checking: boolean;
  readonly effects: Effect<SchedulerMessage>[] = [];

  constructor(
    readonly base: SchedulerState,
    readonly ctx: StepContext,
  ) {
    // The tables are updated in place: copying tens of thousands of allocations on every heartbeat and
    // placement made this actor the cluster's bottleneck (~1.2 ms a step at 10k sandboxes). Nothing else
    // holds a scheduler state, so the step stays deterministic; the host keeps only the returned state.
    this.nodes = base.nodes as Map<string, NodeEntry>;
    this.allocations = base.allocations as Map<string, Allocation>;
    this.cursor = base.cursor;
    this.checking = base.checking;
  }

  reply(value: unknown): void {
    if (this.ctx.replyTo) this.effects.push({ type: 'reply', to: this.ctx.replyTo, value });
  }

  log(level: 'info' | 'warn', text: string): void {
    this.effects.push({ type: 'log', level, text });
  }

  commit(): Step<SchedulerState, SchedulerMessage> {
    const state: SchedulerState = { ...this.base, nodes: this.nodes, allocations: this.allocations, cursor: this.cursor, checking: this.checking };
    return { state, effects: this.effects };
  }
}

function handle(w: Work, message: SchedulerMessage): void {
  switch (message.type) {
    case 'sch.register':
      return register(w, message);
    case 'sch.heartbeat': {
      const node = w.nodes.get(message.nodeId);
      if (node === undefined) return w.log('warn', `heartbeat from unregistered node ${message.nodeId} ignored`);
      if (!node.alive) w.log('info', `node ${node.nodeId} is back after being declared dead`);
      w.nodes.set(node.nodeId, { ...node, alive: true, lastSeen: w.ctx.now, reportedSandboxes: message.sandboxes, ...(message.pool === undefined ? {} : { pool: message.pool }) });
      return;
    }
    case 'sch.setSchedulable': {
      const node = w.nodes.get(message.nodeId);
      if (node === undefined) return w.log('warn', `sch.setSchedulable for unknown node ${message.nodeId} ignored`);
      w.nodes.set(node.nodeId, { ...node, schedulable: message.schedulable });
      return;
    }
    case 'sch.deregister':
      if (!w.nodes.has(message.nodeId)) return;
      loseNode(w, message.nodeId, 'deregistered');
      w.nodes.delete(message.nodeId);
      return;
    case 'sch.place':
      return place(w, message.functionName, message.request, message.sandboxIds);
    case 'sch.release':
      return release(w, message.functionName, message.sandboxId);
    case 'sch.abandon':
      for (const sandboxId of message.sandboxIds) release(w, message.functionName, sandboxId);
      return;
    case 'sch.adopt':
      return adopt(w, message.sandboxes);
    case 'sch.feasible':
      return w.reply(feasibility(w.nodes.values(), message.request));
    case 'sch.nodes':
      return w.reply(nodeViews(w));
    case 'sch.checkHeartbeats':
      for (const node of [...w.nodes.values()]) {
        if (node.alive && w.ctx.now - node.lastSeen > w.base.heartbeatTimeoutMs) {
          loseNode(w, node.nodeId, `no heartbeat for ${w.ctx.now - node.lastSeen} ms`);
          const lost = w.nodes.get(node.nodeId);
          if (lost !== undefined) w.nodes.set(node.nodeId, { ...lost, alive: false });
        }
      }
      w.effects.push(scheduleCheck(w.base.checkEveryMs));
      return;
    default:
      return assertNever(message, 'scheduler message');
  }
}

function register(w: Work, message: Extract<SchedulerMessage, { type: 'sch.register' }>): void {
  const { nodeId, capacity, address, runtime, incarnation } = message;
  const known = w.nodes.get(nodeId);
  // The same run of the worker registering again (it reconnected, or a retry crossed a success) keeps its
  // allocations: after a leader change they were adopted from what it lists. Another run restarted: all gone.
  const same = known !== undefined && known.incarnation === incarnation;
  if (known !== undefined && !same && known.allocated.slots > 0) loseNode(w, nodeId, 'registered again (worker restarted)');
  w.nodes.set(nodeId, {
    nodeId,
    address,
    capacity,
    runtime,
    incarnation,
    allocated: same ? known.allocated : NOTHING,
    reportedSandboxes: same ? known.reportedSandboxes : 0,
    // A cordon is the operator's decision and survives a worker restart.
    schedulable: known?.schedulable ?? true,
    alive: true,
    lastSeen: w.ctx.now,
  });
  w.log('info', `node ${nodeId} (${runtime}) registered at ${address} with ${capacity.cpuMilli} millicores, ${capacity.memoryMiB} MiB, ${capacity.slots} slots`);
  if (!w.checking) {
    w.checking = true;
    w.effects.push(scheduleCheck(w.base.checkEveryMs));
  }
  w.reply({ term: w.base.term });
}

function place(w: Work, functionName: string, request: SandboxRequest, sandboxIds: readonly string[]): void {
  if (!(Number.isFinite(request.cpuMilli) && request.cpuMilli >= 0 && Number.isFinite(request.memoryMiB) && request.memoryMiB >= 0)) {
    const error: ActorError = { code: 'BAD_REQUEST', message: `sandbox request must have cpuMilli >= 0 millicores and memoryMiB >= 0 MiB, got ${JSON.stringify(request)}` };
    if (w.ctx.replyTo) w.effects.push({ type: 'fail', to: w.ctx.replyTo, error });
    return;
  }
  // A repeated id (a retried ask) keeps its earlier placement instead of taking a second slot.
  const placements: { sandboxId: string; nodeId: string }[] = [];
  const fresh: string[] = [];
  for (const sandboxId of sandboxIds) {
    const existing = w.allocations.get(sandboxId);
    if (existing !== undefined && existing.functionName === functionName) placements.push({ sandboxId, nodeId: existing.nodeId });
    else if (existing === undefined && !fresh.includes(sandboxId)) fresh.push(sandboxId);
  }
  const candidates: PlacementNode[] = [...w.nodes.values()].map((node) => ({
    id: node.nodeId,
    schedulable: node.alive && node.schedulable,
    capacity: node.capacity,
    allocated: node.allocated,
    runtime: node.runtime,
  }));
  const result = placeMany(w.base.policy, candidates, request, fresh.length, { random: w.ctx.random, cursor: w.cursor });
  // The allocation records resources only: what a release gives back.
  const resources: Resources = { cpuMilli: request.cpuMilli, memoryMiB: request.memoryMiB };
  w.cursor = result.cursor;
  result.nodeIds.forEach((nodeId, i) => {
    const sandboxId = fresh[i];
    if (sandboxId === undefined) return;
    allocate(w, sandboxId, { functionName, nodeId, resources });
    placements.push({ sandboxId, nodeId });
  });
  const reply: PlaceReply = result.unplaced
    ? { placements, shortfall: `${result.unplaced.count} of ${sandboxIds.length} not placed: ${result.unplaced.reason.message}` }
    : { placements };
  w.reply(reply);
}

function adopt(w: Work, reports: Extract<SchedulerMessage, { type: 'sch.adopt' }>['sandboxes']): void {
  for (const report of reports) {
    if (!w.nodes.has(report.nodeId)) {
      w.log('warn', `sandbox ${report.sandboxId} reported on unregistered node ${report.nodeId}: not recorded`);
      continue;
    }
    const previous = w.allocations.get(report.sandboxId);
    if (previous !== undefined) release(w, previous.functionName, report.sandboxId);
    allocate(w, report.sandboxId, { functionName: report.functionName, nodeId: report.nodeId, resources: report.resources });
  }
}

/**
 * Whether a live node could ever hold one sandbox like `request`: one that runs its runtime and, empty, has the
 * CPU and memory it asks for. What is allocated now does not count (it is freed in time); cordons do not either
 * (an operator lifts them). `nodeId`: the first such node by id.
 */
export function feasibility(nodes: Iterable<NodeEntry>, request: SandboxRequest): Feasibility {
  const alive = [...nodes].filter((node) => node.alive).sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  if (alive.length === 0) return { ok: false, code: 'NO_WORKER', message: 'no worker is connected to the control plane' };
  const running = request.runtime === undefined ? alive : alive.filter((node) => node.runtime === request.runtime);
  if (running.length === 0) {
    const runtimes = [...new Set(alive.map((node) => node.runtime))].sort().join(' and ');
    return { ok: false, code: 'NO_WORKER_FOR_RUNTIME', message: `no connected worker runs ${request.runtime} sandboxes (the ${alive.length} connected node(s) run ${runtimes})` };
  }
  const fit = running.find((node) => request.cpuMilli <= node.capacity.cpuMilli && request.memoryMiB <= node.capacity.memoryMiB);
  if (fit === undefined) {
    const memoryMiB = Math.max(...running.map((node) => node.capacity.memoryMiB));
    const cpuMilli = Math.max(...running.map((node) => node.capacity.cpuMilli));
    return {
      ok: false,
      code: 'NO_NODE_FITS',
      message: `no node can hold a sandbox of ${request.memoryMiB} MiB and ${request.cpuMilli} millicores: the largest node has ${memoryMiB} MiB, and the most CPU any has is ${cpuMilli} millicores`,
    };
  }
  return { ok: true, nodeId: fit.nodeId };
}

/** Drops every allocation on the node and tells each function concerned, once, in name order. */
function loseNode(w: Work, nodeId: string, why: string): void {
  const functions = new Set<string>();
  for (const [sandboxId, allocation] of [...w.allocations]) {
    if (allocation.nodeId !== nodeId) continue;
    w.allocations.delete(sandboxId);
    functions.add(allocation.functionName);
  }
  const node = w.nodes.get(nodeId);
  if (node !== undefined) w.nodes.set(nodeId, { ...node, allocated: NOTHING });
  w.log('warn', `node ${nodeId} lost (${why}): ${functions.size} function(s) had sandboxes there`);
  for (const name of [...functions].sort()) {
    const lost: FunctionMessage = { type: 'fn.nodeLost', nodeId };
    w.effects.push({ type: 'send', to: functionAddress(name), message: lost });
  }
}

function allocate(w: Work, sandboxId: string, allocation: Allocation): void {
  w.allocations.set(sandboxId, allocation);
  adjust(w, allocation, +1);
}

/** Idempotent: releasing an unknown id (or another function's) changes nothing. */
function release(w: Work, functionName: string, sandboxId: string): void {
  const allocation = w.allocations.get(sandboxId);
  if (allocation === undefined || allocation.functionName !== functionName) return;
  w.allocations.delete(sandboxId);
  adjust(w, allocation, -1);
}

function adjust(w: Work, allocation: Allocation, sign: 1 | -1): void {
  const node = w.nodes.get(allocation.nodeId);
  if (node === undefined) return;
  const allocated: NodeCapacity = {
    cpuMilli: node.allocated.cpuMilli + sign * allocation.resources.cpuMilli,
    memoryMiB: node.allocated.memoryMiB + sign * allocation.resources.memoryMiB,
    slots: node.allocated.slots + sign,
  };
  w.nodes.set(node.nodeId, { ...node, allocated });
}

function nodeViews(w: Work): NodeView[] {
  return [...w.nodes.values()]
    .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0))
    .map((node) => ({
      nodeId: node.nodeId,
      address: node.address,
      capacity: node.capacity,
      allocated: node.allocated,
      sandboxes: node.reportedSandboxes,
      schedulable: node.schedulable,
      alive: node.alive,
      heartbeatAgeMs: w.ctx.now - node.lastSeen,
      ...(node.pool === undefined ? {} : { pool: node.pool }),
    }));
}

function scheduleCheck(everyMs: number): Effect<SchedulerMessage> {
  return { type: 'schedule', afterMs: everyMs, message: { type: 'sch.checkHeartbeats' }, timer: CHECK_TIMER };
}
