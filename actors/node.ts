// The node actor: one per worker host. It registers the node with the scheduler and heartbeats, creates
// and deletes sandboxes through the worker's sandbox services, tells each function actor how its sandboxes
// fare, and answers `node.list` so that a new leader can rebuild the actual state from the workers, and
// `node.logs` (through the worker's log service) for `dirigent logs`. At deploy it answers `node.check`: the
// worker starts the function's source once in a throwaway sandbox (`sandbox.check`). It registers with its
// worker's runtime (`thread`, `process`, `simulated`), which placement matches sources to.
// Pure: the sandbox runtime is reached only through `call` effects on the services named below, which the
// worker daemon (cluster/worker) provides on every shard.
//
// The address data planes use for this node's sandboxes comes from the `sandbox.address` service of the
// node actor's own shard (each shard runs its own invocation server), asked once on `node.start`. It is not
// an init argument because whoever spawns the actor cannot know which shard, hence which server, it lands on.

import { assertNever, type ActorError, type ActorKind, type AskResult, type Effect, type ReplyTo, type StepContext } from './actor.js';
import type { SandboxRuntimeKind } from './function-spec.js';
import {
  functionAddress,
  schedulerAddress,
  type Endpoint,
  type FunctionMessage,
  type NodeCapacity,
  type NodeMessage,
  type PoolReport,
  type SandboxReport,
  type SandboxTemplate,
  type SchedulerMessage,
} from './messages.js';
import { DirigentError } from './errors.js';

// ---- The services the worker daemon provides (names, inputs, outputs) ---------------------------

/** Resolves to the `host:port` of this shard's sandbox invocation server (string). */
export const SANDBOX_ADDRESS = 'sandbox.address';
/** Input `SandboxCreateInput`; resolves to `SandboxCreateOutput` once the sandbox can serve. */
export const SANDBOX_CREATE = 'sandbox.create';
/** Input `SandboxDestroyInput`; resolves once nothing of the sandbox runs (idempotent, never rejects). */
export const SANDBOX_DESTROY = 'sandbox.destroy';
/** Input `SandboxLogsInput`; resolves to `SandboxLogLine[]` (oldest first). */
export const SANDBOX_LOGS = 'sandbox.logs';
/** Input `SandboxCheckInput`; resolves to a `SourceCheck` once a throwaway sandbox started, failed or ran out of time. */
export const SANDBOX_CHECK = 'sandbox.check';
/**
 * Bound on a `sandbox.check`, ms: a module's imports or a command's start take well under it, and a deploy waits
 * for it. A source still starting then is neither refused nor vouched for.
 */
export const CHECK_TIMEOUT_MS = 5000;

export interface SandboxCreateInput {
  /** The node that owns the sandbox: runtime failures of it are told to `nodeAddress(nodeId)`. */
  readonly nodeId: string;
  readonly sandboxId: string;
  readonly template: SandboxTemplate;
}

export interface SandboxCreateOutput {
  /** `host:port` of the invocation server that serves the sandbox. */
  readonly address: string;
}

export interface SandboxDestroyInput {
  readonly sandboxId: string;
}

/**
 * The output of this node's sandboxes of one function, those it runs and those it ran recently: the worker
 * keeps a gone sandbox's lines for a while, which the node's table (live sandboxes only) cannot name.
 */
export interface SandboxLogsInput {
  readonly nodeId: string;
  readonly functionName: string;
  /** Lines written at or after this time, ms since the epoch. */
  readonly sinceMs: number;
  /** The newest this many lines. */
  readonly tail: number;
}

export interface SandboxCheckInput {
  readonly template: SandboxTemplate;
}

// ---- Configuration --------------------------------------------------------------------------------

export interface NodeInit {
  readonly nodeId: string;
  readonly capacity: NodeCapacity;
  /** The sandbox runtime of this node's worker: placement sends it only sources that runtime runs. */
  readonly runtime: SandboxRuntimeKind;
  /** Period of `sch.heartbeat`, ms. Default 5000 (Dirigent's). */
  readonly heartbeatMs?: number;
  /**
   * Names this run of the worker (the daemon draws one at start). The scheduler tells a node that registers
   * again after a reconnection (same incarnation: it keeps what it runs) from one that restarted (another).
   */
  readonly incarnation?: string;
}

export const DEFAULT_HEARTBEAT_MS = 5000;
/** Pause before a failed registration is tried again, ms. */
export const REGISTER_RETRY_MS = 1000;
/** How long to wait for the scheduler's answer to `sch.register`, ms. */
export const REGISTER_TIMEOUT_MS = 5000;

export class NodeInitError extends DirigentError<'INVALID_NODE_INIT'> {
  override name = 'NodeInitError';
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super('INVALID_NODE_INIT', message, options);
  }
}

/** Throws `NodeInitError` naming the first bad field, its value and unit. */
export function parseNodeInit(arg: unknown): Required<NodeInit> {
  const bad = (field: string, value: unknown, want: string): never => {
    throw new NodeInitError(`node init: ${field}=${JSON.stringify(value)} must be ${want}`);
  };
  if (arg === null || typeof arg !== 'object') return bad('(init)', arg, 'an object { nodeId, capacity, runtime, heartbeatMs? }');
  const init = arg as Partial<NodeInit>;
  if (typeof init.nodeId !== 'string' || init.nodeId === '') bad('nodeId', init.nodeId, 'a non-empty string');
  const capacity = init.capacity;
  if (capacity === null || typeof capacity !== 'object') return bad('capacity', capacity, 'an object { cpuMilli, memoryMiB, slots }');
  if (!Number.isFinite(capacity.cpuMilli) || capacity.cpuMilli <= 0) bad('capacity.cpuMilli', capacity.cpuMilli, '> 0 (millicores)');
  if (!Number.isFinite(capacity.memoryMiB) || capacity.memoryMiB <= 0) bad('capacity.memoryMiB', capacity.memoryMiB, '> 0 (MiB)');
  if (!Number.isInteger(capacity.slots) || capacity.slots < 1) bad('capacity.slots', capacity.slots, 'an integer >= 1 (sandboxes)');
  if (init.runtime !== 'thread' && init.runtime !== 'process' && init.runtime !== 'simulated') bad('runtime', init.runtime, "'thread', 'process' or 'simulated'");
  const heartbeatMs = init.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  if (!Number.isFinite(heartbeatMs) || heartbeatMs <= 0) bad('heartbeatMs', heartbeatMs, '> 0 (ms)');
  if (init.incarnation !== undefined && typeof init.incarnation !== 'string') bad('incarnation', init.incarnation, 'a string');
  return { nodeId: init.nodeId as string, capacity: { cpuMilli: capacity.cpuMilli, memoryMiB: capacity.memoryMiB, slots: capacity.slots }, runtime: init.runtime as SandboxRuntimeKind, heartbeatMs, incarnation: init.incarnation ?? '' };
}

// ---- State ----------------------------------------------------------------------------------------

export type SandboxEntry =
  /** `sandbox.create` is in flight. `deleteRequested`: a delete came meanwhile; destroy it once created. */
  | { readonly phase: 'creating'; readonly template: SandboxTemplate; readonly since: number; readonly deleteRequested: boolean }
  | { readonly phase: 'ready'; readonly template: SandboxTemplate; readonly endpoint: Endpoint; readonly createdAt: number }
  /** `sandbox.destroy` is in flight. */
  | { readonly phase: 'deleting'; readonly template: SandboxTemplate; readonly since: number };

export type Registration =
  | { readonly phase: 'idle' }
  /** Waiting for `sandbox.address`. */
  | { readonly phase: 'resolving' }
  /** Waiting for the scheduler's answer to `sch.register`. */
  | { readonly phase: 'registering' }
  | { readonly phase: 'registered'; readonly since: number };

export interface NodeState {
  readonly nodeId: string;
  readonly capacity: NodeCapacity;
  readonly runtime: SandboxRuntimeKind;
  readonly heartbeatMs: number;
  /** See NodeInit.incarnation. */
  readonly incarnation: string;
  /** `host:port` of the sandbox invocation server; null until `sandbox.address` answered. */
  readonly address: string | null;
  readonly registration: Registration;
  /** Highest leader term seen (0 before any); commands carrying an older one are refused. */
  readonly term: number;
  /**
   * Every sandbox not yet destroyed, by id. Mutated in place rather than copied per message: a simulated
   * node may hold thousands of sandboxes, and copying on each create would make a burst quadratic.
   */
  readonly sandboxes: Map<string, SandboxEntry>;
  /** The worker's pool of started generic sandboxes, as it last told (`node.pool`); sent with each heartbeat. */
  readonly pool?: PoolReport;
}

/** Internal results of the node's own effects; not part of the cluster protocol. */
export type NodeInternalMessage =
  | { readonly type: 'node.addressed'; readonly address: string | null; readonly error?: string }
  /** The outcome of `sandbox.logs` for the pending `node.logs` ask `replyTo`. */
  | { readonly type: 'node.logsRead'; readonly replyTo: ReplyTo; readonly result: AskResult }
  /** The outcome of `sandbox.check` for the pending `node.check` ask `replyTo`. */
  | { readonly type: 'node.checked'; readonly replyTo: ReplyTo; readonly result: AskResult };

export type NodeInput = NodeMessage | NodeInternalMessage;

type NodeEffect = Effect<NodeInput>;
type Result = { readonly state: NodeState; readonly effects?: readonly NodeEffect[] };

const REGISTER_TIMER = 'register';
const HEARTBEAT_TIMER = 'heartbeat';

// ---- Behaviour ------------------------------------------------------------------------------------

export function initialNodeState(arg: unknown): NodeState {
  const init = parseNodeInit(arg);
  return { ...init, address: null, registration: { phase: 'idle' }, term: 0, sandboxes: new Map() };
}

export function stepNode(state: NodeState, message: NodeInput, ctx: StepContext): Result {
  switch (message.type) {
    case 'node.start':
      return start(state);
    case 'node.addressed':
      return addressed(state, message);
    case 'node.registered':
      return registered(state, message, ctx.now);
    case 'node.heartbeat':
      return heartbeat(state);
    case 'node.create':
      return create(state, message, ctx.now);
    case 'node.created':
      return created(state, message, ctx.now);
    case 'node.delete':
      return remove(state, message, ctx);
    case 'node.deleted':
      return deleted(state, message.sandboxId);
    case 'node.sandboxFailed':
      return sandboxFailed(state, message.sandboxId, message.reason);
    case 'node.pool':
      return { state: { ...state, pool: message.pool } };
    case 'node.list':
      return { state, effects: ctx.replyTo ? [{ type: 'reply', to: ctx.replyTo, value: listReady(state) }] : [] };
    case 'node.logs':
      return readLogs(state, message, ctx.replyTo);
    case 'node.check':
      return checkSource(state, message.template, ctx.replyTo);
    case 'node.logsRead':
    case 'node.checked':
      return { state, effects: [message.result.ok ? { type: 'reply', to: message.replyTo, value: message.result.value } : { type: 'fail', to: message.replyTo, error: message.result.error }] };
    default: {
      // Messages come off the network: an unknown one is logged, never a crash (a restart would forget
      // every sandbox this node runs). The `never` keeps the switch exhaustive at compile time.
      const unknown: never = message;
      return ignore(state, 'warn', `unknown message ${JSON.stringify(unknown).slice(0, 120)}`);
    }
  }
}

function start(state: NodeState): Result {
  switch (state.registration.phase) {
    case 'resolving':
    case 'registering':
      return ignore(state, 'debug', `node.start ignored: registration already ${state.registration.phase}`);
    case 'idle':
    case 'registered':
      // Registered: the daemon restarted its transport; registering again is harmless and refreshes the scheduler.
      if (state.address === null) {
        return {
          state: { ...state, registration: { phase: 'resolving' } },
          effects: [
            { type: 'cancel', timer: REGISTER_TIMER },
            {
              type: 'call',
              service: SANDBOX_ADDRESS,
              input: undefined,
              then: (r) => (r.ok && typeof r.value === 'string' ? { type: 'node.addressed', address: r.value } : { type: 'node.addressed', address: null, error: r.ok ? `bad address ${JSON.stringify(r.value)}` : describe(r.error) }),
            },
          ],
        };
      }
      return register(state, state.address);
    default:
      return assertNever(state.registration, 'registration');
  }
}

function register(state: NodeState, address: string): Result {
  const message: SchedulerMessage = { type: 'sch.register', nodeId: state.nodeId, capacity: state.capacity, address, runtime: state.runtime, incarnation: state.incarnation };
  return {
    state: { ...state, address, registration: { phase: 'registering' } },
    effects: [
      { type: 'cancel', timer: REGISTER_TIMER },
      {
        type: 'ask',
        to: schedulerAddress,
        message,
        timeoutMs: REGISTER_TIMEOUT_MS,
        then: (r) => {
          const term = r.ok ? (r.value as { term?: unknown } | null)?.term : undefined;
          if (typeof term === 'number' && Number.isFinite(term)) return { type: 'node.registered', term };
          return { type: 'node.registered', term: null, error: r.ok ? `bad reply ${JSON.stringify(r.value)}` : describe(r.error) };
        },
      },
    ],
  };
}

function retryRegistration(state: NodeState, why: string): Result {
  return {
    state: { ...state, registration: { phase: 'idle' } },
    effects: [
      { type: 'log', level: 'warn', text: `${why}; retrying in ${REGISTER_RETRY_MS} ms` },
      { type: 'schedule', afterMs: REGISTER_RETRY_MS, message: { type: 'node.start' }, timer: REGISTER_TIMER },
    ],
  };
}

function addressed(state: NodeState, message: Extract<NodeInput, { type: 'node.addressed' }>): Result {
  if (state.registration.phase !== 'resolving') return ignore(state, 'debug', 'late node.addressed ignored');
  if (message.address === null) return retryRegistration(state, `cannot learn the sandbox address: ${message.error ?? 'unknown error'}`);
  return register(state, message.address);
}

function registered(state: NodeState, message: Extract<NodeMessage, { type: 'node.registered' }>, now: number): Result {
  if (state.registration.phase !== 'registering') return ignore(state, 'debug', 'late node.registered ignored');
  if (message.term === null) return retryRegistration(state, `registration with the scheduler failed: ${message.error ?? 'unknown error'}`);
  return {
    state: { ...state, term: Math.max(state.term, message.term), registration: { phase: 'registered', since: now } },
    effects: [
      { type: 'log', level: 'info', text: `registered at ${state.address} (term ${message.term})` },
      { type: 'schedule', afterMs: state.heartbeatMs, message: { type: 'node.heartbeat' }, timer: HEARTBEAT_TIMER },
    ],
  };
}

function heartbeat(state: NodeState): Result {
  // Unregistered (a re-registration failed): the heartbeat stops; the next registration restarts it.
  if (state.registration.phase !== 'registered') return { state };
  const message: SchedulerMessage = { type: 'sch.heartbeat', nodeId: state.nodeId, sandboxes: state.sandboxes.size, ...(state.pool === undefined ? {} : { pool: state.pool }) };
  return {
    state,
    effects: [
      { type: 'send', to: schedulerAddress, message },
      { type: 'schedule', afterMs: state.heartbeatMs, message: { type: 'node.heartbeat' }, timer: HEARTBEAT_TIMER },
    ],
  };
}

/** Accepts a command's term (raising the highest seen) or answers why it is refused. */
function checkTerm(state: NodeState, term: number): { state: NodeState } | { refused: string } {
  if (!Number.isFinite(term)) return { refused: `term ${JSON.stringify(term)} is not a number` };
  if (term < state.term) return { refused: `term ${term} is older than ${state.term}` };
  return { state: term > state.term ? { ...state, term } : state };
}

function create(state: NodeState, message: Extract<NodeMessage, { type: 'node.create' }>, now: number): Result {
  const checked = checkTerm(state, message.term);
  if ('refused' in checked) return ignore(state, 'warn', `node.create ${message.sandboxId} refused: ${checked.refused}`);
  const next = checked.state;
  const { sandboxId, template } = message;
  const existing = next.sandboxes.get(sandboxId);
  if (existing !== undefined) {
    switch (existing.phase) {
      case 'ready':
        // A repeated create (e.g. from a new leader that missed the answer): say ready again.
        return { state: next, effects: [tellFunction(existing.template.name, { type: 'fn.sandboxReady', sandboxId, endpoint: existing.endpoint })] };
      case 'creating':
        return ignore(next, 'debug', `node.create ${sandboxId}: already creating`);
      case 'deleting':
        return ignore(next, 'warn', `node.create ${sandboxId} ignored: the sandbox is being deleted`);
      default:
        return assertNever(existing, 'sandbox entry');
    }
  }
  const refusal =
    next.address === null ? 'NODE_NOT_STARTED: the node has no sandbox address yet' : next.sandboxes.size >= next.capacity.slots ? `NODE_FULL: all ${next.capacity.slots} slots are taken` : undefined;
  if (refusal !== undefined) {
    return { state: next, effects: [{ type: 'log', level: 'warn', text: `node.create ${sandboxId} refused: ${refusal}` }, failed(next, template.name, sandboxId, refusal)] };
  }
  next.sandboxes.set(sandboxId, { phase: 'creating', template, since: now, deleteRequested: false });
  const input: SandboxCreateInput = { nodeId: next.nodeId, sandboxId, template };
  return {
    state: next,
    effects: [
      {
        type: 'call',
        service: SANDBOX_CREATE,
        input,
        then: (r) => (r.ok ? { type: 'node.created', sandboxId, ok: true } : { type: 'node.created', sandboxId, ok: false, error: describe(r.error) }),
      },
    ],
  };
}

function created(state: NodeState, message: Extract<NodeMessage, { type: 'node.created' }>, now: number): Result {
  const { sandboxId } = message;
  const entry = state.sandboxes.get(sandboxId);
  if (entry === undefined && message.ok) {
    // Nobody waits for this sandbox (the actor restarted while it was created): never leave it running.
    return { state, effects: [{ type: 'log', level: 'warn', text: `node.created ${sandboxId} for an unknown sandbox; destroying it` }, destroy(sandboxId)] };
  }
  if (entry === undefined || entry.phase !== 'creating') return ignore(state, 'warn', `node.created ${sandboxId} ignored (${entry?.phase ?? 'unknown'})`);
  const name = entry.template.name;
  if (!message.ok) {
    state.sandboxes.delete(sandboxId);
    const reason = message.error ?? 'creation failed';
    if (entry.deleteRequested) return { state, effects: [{ type: 'log', level: 'info', text: `${sandboxId} failed while a delete waited: ${reason}` }, tellFunction(name, { type: 'fn.sandboxDeleted', sandboxId, nodeId: state.nodeId })] };
    return { state, effects: [{ type: 'log', level: 'warn', text: `creating ${sandboxId} failed: ${reason}` }, failed(state, name, sandboxId, reason)] };
  }
  if (entry.deleteRequested) {
    state.sandboxes.set(sandboxId, { phase: 'deleting', template: entry.template, since: now });
    return { state, effects: [destroy(sandboxId)] };
  }
  // Set on `node.start` before registering; a create before that is refused, so it is known here.
  const address = state.address ?? '';
  const endpoint: Endpoint = { sandboxId, nodeId: state.nodeId, address, concurrency: entry.template.concurrency, version: entry.template.version };
  state.sandboxes.set(sandboxId, { phase: 'ready', template: entry.template, endpoint, createdAt: now });
  return { state, effects: [tellFunction(name, { type: 'fn.sandboxReady', sandboxId, endpoint })] };
}

function remove(state: NodeState, message: Extract<NodeMessage, { type: 'node.delete' }>, ctx: StepContext): Result {
  const checked = checkTerm(state, message.term);
  if ('refused' in checked) return ignore(state, 'warn', `node.delete ${message.sandboxId} refused: ${checked.refused}`);
  const next = checked.state;
  const { sandboxId } = message;
  const entry = next.sandboxes.get(sandboxId);
  if (entry === undefined) {
    // Not running here (already deleted, failed, or never created): confirm to a function actor asking,
    // so that a repeated delete converges. Without a sender there is no function name to tell.
    const effects: NodeEffect[] = [{ type: 'log', level: 'debug', text: `node.delete ${sandboxId}: no such sandbox` }];
    if (ctx.sender?.kind === 'function') {
      const confirm: FunctionMessage = { type: 'fn.sandboxDeleted', sandboxId, nodeId: next.nodeId };
      effects.push({ type: 'send', to: ctx.sender, message: confirm });
    }
    return { state: next, effects };
  }
  switch (entry.phase) {
    case 'creating':
      next.sandboxes.set(sandboxId, { ...entry, deleteRequested: true });
      return { state: next };
    case 'ready':
      next.sandboxes.set(sandboxId, { phase: 'deleting', template: entry.template, since: ctx.now });
      return { state: next, effects: [destroy(sandboxId)] };
    case 'deleting':
      return { state: next };
    default:
      return assertNever(entry, 'sandbox entry');
  }
}

function deleted(state: NodeState, sandboxId: string): Result {
  const entry = state.sandboxes.get(sandboxId);
  if (entry === undefined || entry.phase !== 'deleting') return ignore(state, 'debug', `node.deleted ${sandboxId} ignored`);
  state.sandboxes.delete(sandboxId);
  return { state, effects: [tellFunction(entry.template.name, { type: 'fn.sandboxDeleted', sandboxId, nodeId: state.nodeId })] };
}

function sandboxFailed(state: NodeState, sandboxId: string, reason: string): Result {
  const entry = state.sandboxes.get(sandboxId);
  // Creating: the pending create call fails and reports it. Deleting: the delete reports it.
  if (entry === undefined || entry.phase !== 'ready') return ignore(state, 'debug', `node.sandboxFailed ${sandboxId} ignored (${entry?.phase ?? 'unknown'})`);
  state.sandboxes.delete(sandboxId);
  return { state, effects: [{ type: 'log', level: 'warn', text: `sandbox ${sandboxId} failed: ${reason}` }, failed(state, entry.template.name, sandboxId, reason)] };
}

/** The worker keeps the lines (and outlives a sandbox's entry here), so the node only forwards the ask. */
function readLogs(state: NodeState, message: Extract<NodeMessage, { type: 'node.logs' }>, replyTo: ReplyTo | undefined): Result {
  if (replyTo === undefined) return ignore(state, 'debug', 'node.logs without an ask to answer ignored');
  const input: SandboxLogsInput = { nodeId: state.nodeId, functionName: message.functionName, sinceMs: message.sinceMs, tail: message.tail };
  return { state, effects: [{ type: 'call', service: SANDBOX_LOGS, input, then: (result) => ({ type: 'node.logsRead', replyTo, result }) }] };
}

export function listReady(state: NodeState): SandboxReport[] {
  const reports: SandboxReport[] = [];
  for (const [sandboxId, entry] of state.sandboxes) {
    if (entry.phase !== 'ready') continue;
    reports.push({
      sandboxId,
      functionName: entry.template.name,
      nodeId: state.nodeId,
      endpoint: entry.endpoint,
      resources: { cpuMilli: entry.template.cpuMilli, memoryMiB: entry.template.memoryMiB },
      createdAt: entry.createdAt,
      version: entry.template.version,
    });
  }
  return reports;
}

/**
 * The check runs beside the node's sandboxes, not as one of them: it takes no slot and no id of the function's,
 * and the worker discards it whatever the outcome. The node only forwards the ask.
 */
function checkSource(state: NodeState, template: SandboxTemplate, replyTo: ReplyTo | undefined): Result {
  if (replyTo === undefined) return ignore(state, 'debug', 'node.check without an ask to answer ignored');
  const input: SandboxCheckInput = { template };
  return { state, effects: [{ type: 'call', service: SANDBOX_CHECK, input, then: (result) => ({ type: 'node.checked', replyTo, result }) }] };
}

/** `sandbox.destroy` never rejects, so any outcome means the sandbox is gone. */
function destroy(sandboxId: string): NodeEffect {
  const input: SandboxDestroyInput = { sandboxId };
  return { type: 'call', service: SANDBOX_DESTROY, input, then: () => ({ type: 'node.deleted', sandboxId }) };
}

function tellFunction(name: string, message: FunctionMessage): NodeEffect {
  return { type: 'send', to: functionAddress(name), message };
}

function failed(state: NodeState, name: string, sandboxId: string, reason: string): NodeEffect {
  return tellFunction(name, { type: 'fn.sandboxFailed', sandboxId, nodeId: state.nodeId, reason });
}

function ignore(state: NodeState, level: 'debug' | 'warn', text: string): Result {
  return { state, effects: [{ type: 'log', level, text }] };
}

function describe(error: ActorError): string {
  return `${error.code}: ${error.message}`;
}

export interface NodeSummary {
  readonly nodeId: string;
  readonly runtime: SandboxRuntimeKind;
  readonly address: string | null;
  readonly registration: Registration['phase'];
  readonly term: number;
  readonly capacity: NodeCapacity;
  readonly heartbeatMs: number;
  readonly creating: number;
  readonly ready: number;
  readonly deleting: number;
  readonly pool?: PoolReport;
}

export function summarizeNode(state: NodeState): NodeSummary {
  const counts = { creating: 0, ready: 0, deleting: 0 };
  for (const entry of state.sandboxes.values()) counts[entry.phase] += 1;
  return { nodeId: state.nodeId, runtime: state.runtime, address: state.address, registration: state.registration.phase, term: state.term, capacity: state.capacity, heartbeatMs: state.heartbeatMs, ...counts, ...(state.pool === undefined ? {} : { pool: state.pool }) };
}

export const nodeKind: ActorKind<NodeState, NodeInput> = {
  kind: 'node',
  init: (_address, arg) => initialNodeState(arg),
  step: stepNode,
  summary: summarizeNode,
};
