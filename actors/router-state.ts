// The router's state (see actors/router.ts for what the router does): its phases, its slots and queue, the
// counters it reports, and the one way to derive a next state from a current one. The router's steps build a
// new state rather than change the one they own (`ActorKind.step`): it is small, a new one costs ~30-45 ns
// (`changed`), and its arrays are copied only where a step changes them.

import type { Effect, ReplyTo } from './actor.js';
import { EMPTY_TOTALS } from './invocation-totals.js';
import type { Endpoint, Invocation, InvocationFailureCode, LoadBalancingPolicy, RouterMessage, RoutingConfig } from './messages.js';
import { updater } from './updater.js';

/** The term of a set looked up before any update was seen (leader terms start at 1). */
export const UNKNOWN_TERM = 0;

/** The router's validated configuration (`RouterConfig` with its defaults applied). */
export interface RouterSettings {
  readonly dataplaneId: string;
  readonly policy: LoadBalancingPolicy;
  /** ms. */
  readonly tickMs: number;
  /** ms. */
  readonly resyncTimeoutMs: number;
  readonly shard: number;
  readonly shards: number;
  readonly home: (functionName: string) => number;
}

export type RouterPhase =
  /** No update and no snapshot yet: requests wait for the function actor's answer. */
  | { readonly kind: 'unheard' }
  /**
   * Routing with the endpoint set of `version`, as numbered by the leader of `term` (`UNKNOWN_TERM`: not known).
   * `failure`: why the function cannot start sandboxes, from the latest snapshot (null: it can).
   */
  | { readonly kind: 'known'; readonly term: number; readonly version: number; readonly routing: RoutingConfig; readonly failure: string | null };

export type SyncState =
  | { readonly kind: 'idle' }
  /**
   * `fn.getEndpoints` is outstanding; its reply counts as of `term`. `again`: another gap appeared meanwhile,
   * so ask once more after the reply.
   */
  | { readonly kind: 'asking'; readonly term: number; readonly again: boolean }
  /** A gap was seen and the ask failed: the next request asks again. */
  | { readonly kind: 'stale' }
  /** An unheard function's lookup failed; `rt.lookup` (or the next request) asks again. */
  | { readonly kind: 'retrying' };

export type SlotPhase =
  /** Listed by the control plane and healthy: gets requests. */
  | { readonly kind: 'serving' }
  /**
   * Removed by the control plane: no new requests; `fn.drained` once in-flight is 0. `closed`: it broke earlier
   * and its sandbox actor was already told `sb.close`.
   */
  | { readonly kind: 'draining'; readonly closed: boolean }
  /** Failed under a request and told `sb.close`: no new requests; forgotten once the control plane removes it. */
  | { readonly kind: 'broken' };

export interface SandboxSlot {
  readonly endpoint: Endpoint;
  /** Requests sent to its sandbox actor and not yet released. */
  readonly inFlight: number;
  readonly phase: SlotPhase;
  /** `RouterState.adds` when it was added: later than a waiting request's `addsSeen` means a cold start. */
  readonly addSeq: number;
}

export interface Waiting {
  readonly invocation: Invocation;
  readonly replyTo: ReplyTo;
  /** ms. Its deadline is `enqueuedAt + routing.queueTimeoutMs` of the routing in force. */
  readonly enqueuedAt: number;
  /** `RouterState.adds` when it was queued. */
  readonly addsSeen: number;
}

export interface RouterState {
  readonly name: string;
  readonly phase: RouterPhase;
  /** Highest leader term seen in an update (`UNKNOWN_TERM`: none yet). */
  readonly highestTerm: number;
  readonly sync: SyncState;
  /** Sorted by sandbox id: the stable order round-robin walks; one slot per sandbox id. */
  readonly sandboxes: readonly SandboxSlot[];
  /** FIFO, oldest first. */
  readonly queue: readonly Waiting[];
  /** Endpoints added so far (a sequence number for `addSeq`). */
  readonly adds: number;
  /** Sandbox id of the last choice, for round-robin. */
  readonly cursor: string | null;
  /** Whether an `rt.tick` is scheduled. */
  readonly ticking: boolean;
  /** The moment of highest demand (in flight + queued) since the last `as.metric`: what the next report carries. */
  readonly peakInFlight: number;
  readonly peakQueued: number;
  /** When the scheduled `rt.expire` is due, ms; null when none is. */
  readonly expireAt: number | null;
  /** Queue length at the last `as.backlog` since the queue was last empty (0: not told). */
  readonly backlogTold: number;
  /** A `rt.backlog` report is scheduled (0 ms) and will carry the queue length of its moment. */
  readonly backlogPending: boolean;
  /** The last `fn.load` told the function of busy sandboxes (so the next one, even empty, is sent). */
  readonly loadReported: boolean;
  /** Requests sent to sandbox actors (the `invocations` of `totals`). */
  readonly dispatched: number;
  /** Requests the router answered itself (404, 413, 429, 503, 504). */
  readonly rejected: number;
  /** `rejected` by HTTP status, as reported in `totals`. */
  readonly rejectedByStatus: Readonly<Record<string, number>>;
  /** `rejected` at the last `as.metric`: a rejection since then is news for the autoscaler even when idle. */
  readonly rejectedReported: number;
  /** Requests sent to a sandbox created after they were queued. */
  readonly coldStarts: number;
  /** Sum of the cold starts' queue times, ms. */
  readonly coldStartMsSum: number;
  /** Cumulative counts of cold starts by queue time: `COLD_START_BUCKETS_MS`, then +Inf. */
  readonly coldStartBuckets: readonly number[];
}

export type Effects = Effect<RouterMessage>[];
export type FailureCode = InvocationFailureCode;

export function initialRouterState(name: string): RouterState {
  return {
    name,
    phase: { kind: 'unheard' },
    highestTerm: UNKNOWN_TERM,
    sync: { kind: 'idle' },
    sandboxes: [],
    queue: [],
    adds: 0,
    cursor: null,
    ticking: false,
    peakInFlight: 0,
    peakQueued: 0,
    expireAt: null,
    backlogTold: 0,
    backlogPending: false,
    loadReported: false,
    dispatched: 0,
    rejected: 0,
    rejectedByStatus: {},
    rejectedReported: 0,
    coldStarts: 0,
    coldStartMsSum: 0,
    coldStartBuckets: EMPTY_TOTALS.coldStartMsBuckets,
  };
}

/**
 * `state` with `changes`; a field absent from `changes` keeps its value (no RouterState field holds undefined).
 * Steps run per request, and V8 spreads an object of this many fields about 20 times slower than it builds a
 * literal (~0.65 µs against ~30 ns), so `updater` compiles the literal from the fields of the initial state.
 */
export const changed: (state: RouterState, changes: Partial<RouterState>) => RouterState = updater(initialRouterState(''));

export function slotWith(slot: SandboxSlot, inFlight: number, phase: SlotPhase): SandboxSlot {
  return { endpoint: slot.endpoint, inFlight, phase, addSeq: slot.addSeq };
}

export function withSlot(state: RouterState, index: number, slot: SandboxSlot): RouterState {
  const sandboxes = state.sandboxes.slice();
  sandboxes[index] = slot;
  return changed(state, { sandboxes });
}

/** A serving sandbox with a free slot. */
export function isFree(slot: SandboxSlot): boolean {
  return slot.phase.kind === 'serving' && hasFreeSlot(slot);
}

/** Gets requests (busy or not): one that will free a slot in time. */
export function isServing(slot: SandboxSlot): boolean {
  return slot.phase.kind === 'serving';
}


export function hasFreeSlot(slot: SandboxSlot): boolean {
  return slot.inFlight < slot.endpoint.concurrency;
}

/** Still in the control plane's set (serving, or broken but not yet removed). */
export function isListed(slot: SandboxSlot): boolean {
  return slot.phase.kind !== 'draining';
}

/** Its sandbox actor was already told `sb.close`. */
export function isClosed(slot: SandboxSlot): boolean {
  return slot.phase.kind === 'broken' || (slot.phase.kind === 'draining' && slot.phase.closed);
}

export function totalInFlight(state: RouterState): number {
  let sum = 0;
  for (const slot of state.sandboxes) sum += slot.inFlight;
  return sum;
}

/** Where `sandboxId` is in the sorted slots, or where it would go. */
export function indexOf(slots: readonly SandboxSlot[], sandboxId: string): number {
  let lo = 0;
  let hi = slots.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((slots[mid]?.endpoint.sandboxId ?? '') < sandboxId) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

