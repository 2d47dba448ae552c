// The data plane's router of one function (kind `router`, virtual, id = the function's name): it holds the
// endpoint set the control plane pushes, one `dpsandbox` actor per endpoint with its concurrency slots, and
// the bounded FIFO cold-start queue. A request with a free slot goes straight to a sandbox actor, which answers
// the edge; otherwise it waits, and the autoscaler hears of the backlog at once.
//
// Endpoint set. Updates carry the leader's term and a version. An update of an older term than the highest
// seen is ignored. A snapshot replaces the set unless it is older than the set held (same term, lower
// version); a snapshot of a newer term always replaces (a new leader may number versions afresh). A delta
// applies only on top of `version - 1` of the same term; any other gap asks the function actor for a snapshot
// (`fn.getEndpoints`). That reply carries the leader's term (counted as the highest term seen when asking if
// it does not), and if another gap shows up while asking, the router asks again once the reply is in. Leader terms start at 1:
// a set looked up before any update was seen has term 0 (unknown) and takes the term of the first delta that
// continues its numbering (every leader starts with a snapshot, so a delta never crosses a change of leader).
// Removing a sandbox (by delta, or by its absence from a snapshot) stops new requests to it at once; when
// its in-flight count is 0 the router tells the function `fn.drained` and closes the sandbox actor. A
// removal of a sandbox the router does not know is acknowledged with `fn.drained` at once (also when the delta
// that removes it arrives across a version gap), so the control plane never waits on a data plane that had
// nothing in flight. A sandbox released with `failed` (broken) is
// closed and gets no more requests; it is forgotten once the control plane removes it, and a set that still
// lists it meanwhile does not bring it back.
//
// Replicas. A data plane with several shards runs a router per function on every shard (`routerReplicaAddress`),
// each fronting its shard's connections. A replica holds its share of each sandbox's slots (`slotShare`: an even
// split, the remainder to the lowest ranks counted from the home shard, where `routerAddress` lands) in sandbox
// actors on its own shard, and reports as a data plane of its own (`dataplaneId`, e.g. `dp1#1`). The home replica
// hears the control plane and relays every update once (`relayed`); a replica whose share is 0 (the function's
// concurrency is below the shard count) forwards every request to the home replica (`rt.forwarded`).
//
// Requests. Over `maxBodyBytes`: 413 at once. A free slot (by the policy, over serving sandboxes in id order):
// sent to its sandbox actor. Otherwise queued, FIFO, up to `queueDepth` (then 429). Waiting requests take slots
// as they free up or arrive; `coldStart` is true when the slot is on a sandbox added after the request was
// queued. At `enqueuedAt + queueTimeoutMs` a request still waiting gets 503 if the function is at its max scale
// with every slot busy (more waiting would not help), else 504, which says `coldStart`: it waited for a scale-up.
//
// Failed functions. A snapshot carries the function's `failure` (it cannot start sandboxes: see actors/function.ts).
// While it is set and no sandbox is serving, nothing will free a slot: queued requests and new ones are answered
// 503 FUNCTION_FAILED with the reason at once, instead of a 504 at their deadline. Those new ones still count as
// demand in the next metrics report (queued, for an instant), so the autoscaler keeps wanting a sandbox and the
// function tries again when its backoff ends. With sandboxes serving (an older version, during a failed rollout),
// requests wait for their slots as usual.
//
// Unknown functions. The first request for a function the router has never heard of waits while the router
// asks the function actor. No such actor (or a null reply) answers every waiting request 404; a failed ask
// answers them 503. Either way the router then stops, so that names that do not exist leave no actor behind
// (a later request asks again). For a function it knows, a failed resync keeps the set it has and marks it
// stale: the next request asks again (no timer; an idle function needs no fresh set).
//
// Backlog rule (`as.backlog`): told at once when the queue becomes non-empty, and again each time
// the queue reaches twice the length last told, until it empties. "At once" is a 0 ms timer, so that
// requests arriving in the same burst (one event-loop turn) are reported together: 50 requests arriving
// together are one report of 50, and the autoscaler sizes the scale-from-zero by the whole backlog.
// A burst growing over time costs about log2(n) + 1 messages, and the autoscaler never sees less than half
// the real backlog between ticks; reports after the first say `grown` (the autoscaler sizes a queue that grew
// over time more carefully than one that formed at once: actors/autoscaler.ts, BACKLOG_GROWTH);
// `as.metric` carries the peak counts of every tick. Counts are disjoint: `inFlight` is requests at sandboxes,
// `queued` is requests waiting here.
//
// Metrics (`as.metric`): every `tickMs` while anything is in flight or queued, and at the first tick that finds
// both at 0 a final report of zeros, after which ticking stops until the next request. Each report carries the
// PEAK in-flight and queued counts since the previous report, not a sample at the tick: a sample taken in the
// gap between short requests reads 0 however busy the function is, which starves the autoscaler of the load.
// Each report also carries `averageInFlight`, the demand by Little's law over the report period, which the
// autoscaler sizes by (actors/autoscaler.ts says why): the TIME-WEIGHTED average of the requests at sandboxes
// (request-ms / ms, as Knative's queue-proxy measures it), scaled up by arrivals / dispatches when more requests
// arrived than went to a sandbox. At sandboxes, the average is throughput x time in the sandbox; when the
// sandboxes cannot keep up it is capped at their slots, and arrivals / dispatches restores the offered rate:
// 50 req/s of a 100 ms call on one sandbox reads 1 x 50 / 10 = 5. The queue itself is not counted: its length
// under saturation grows without bound (counted as concurrency, as Knative does, it asked for a sandbox per
// waiting request: 36, then 78, then 155 for that load), and while no sandbox serves, its wait for a cold start
// says nothing of how many sandboxes the load needs (the backlog report sizes the scale from zero). What the
// queue left at the tick adds the sandboxes that drain it within one period (`littleDemand`).
// Every report also carries `totals`, the router's cumulative counters since it started: requests handed to a
// sandbox, cold starts with a histogram of their queue times (`COLD_START_BUCKETS_MS`), and requests it answered
// itself with an error, by status. As they ride on every report, the final report after a busy period carries
// the final counts; a rejection while idle (nothing in flight or queued) starts the ticking too, so that it is
// reported. The counters live in this actor's state only: a restarted router (or data plane) counts from 0 again,
// and the autoscaler takes any decrease for such a reset. Requests for a function the router never learns of
// (404, or 503 when the lookup fails) and those answered 404 at `rt.deleted` go unreported: the router stops
// right after.

import { assertNever, type ActorKind, type Address, type AskResult, type Effect, type ReplyTo, type Step, type StepContext } from './actor.js';
import type { DataPlaneSandboxInit } from './dp-sandbox.js';
import { defaultFunctionSpec } from './function-spec.js';
import { EMPTY_TOTALS, observeColdStart } from './invocation-totals.js';
import {
  autoscalerAddress,
  dataPlaneSandboxAddress,
  functionAddress,
  INVOCATION_FAILURES,
  routerAddress,
  routerReplicaAddress,
  type AutoscalerMessage,
  type DataPlaneSandboxMessage,
  type Endpoint,
  type EndpointSnapshot,
  type FunctionMessage,
  type Invocation,
  type InvocationFailureCode,
  type InvocationOutcome,
  type InvocationTotals,
  type LoadBalancingPolicy,
  type RouterMessage,
  type RouterStatus,
  type RouterUpdate,
  type RoutingConfig,
} from './messages.js';

/** Period of `as.metric` while busy, ms (Dirigent's and Knative's 2 s). */
export const DEFAULT_TICK_MS = 2000;
/**
 * A lookup of a function never heard of that fails (no leader reachable: a failover, a restart) is tried again
 * after LOOKUP_RETRY_MS while its oldest request has waited less than LOOKUP_PATIENCE_MS (the default queue
 * timeout); after that the waiting requests get 503. ms.
 */
export const LOOKUP_RETRY_MS = 250;
export const LOOKUP_PATIENCE_MS = 10_000;
export const LOOKUP_TIMER = 'rt.lookup';
/** How long the router waits for `fn.getEndpoints`, ms. */
export const DEFAULT_RESYNC_TIMEOUT_MS = 5000;
/**
 * Most requests that wait for the first answer about a function never heard of (requests). The function's own
 * `queueDepth` is not known yet; once it is, requests beyond it are answered 429.
 */
export const UNHEARD_QUEUE_DEPTH = defaultFunctionSpec.queueDepth;

/** The term of a set looked up before any update was seen (leader terms start at 1). */
export const UNKNOWN_TERM = 0;

export const EXPIRE_TIMER = 'rt.expire';
export const BACKLOG_TIMER = 'rt.backlog';
export const TICK_TIMER = 'rt.tick';

export interface RouterConfig {
  /** This data plane's id, as the control plane knows it (in `as.metric`, `as.backlog` and `fn.drained`). */
  readonly dataplaneId: string;
  readonly policy: LoadBalancingPolicy;
  /** Period of `as.metric` while busy, ms. Default `DEFAULT_TICK_MS`. */
  readonly tickMs?: number;
  /** Timeout of `fn.getEndpoints`, ms. Default `DEFAULT_RESYNC_TIMEOUT_MS`. */
  readonly resyncTimeoutMs?: number;
  /** This replica's data-plane shard and the shard count (default 0 of 1): see `routerReplicaAddress`. */
  readonly shard?: number;
  readonly shards?: number;
  /** The shard a function's `routerAddress` lands on, its home (default: 0). */
  readonly home?: (functionName: string) => number;
}

interface Settings {
  readonly dataplaneId: string;
  readonly policy: LoadBalancingPolicy;
  readonly tickMs: number;
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
  /** Requests at sandboxes integrated over time since `periodStart` (request-ms), up to `areaAt` (ms). */
  readonly area: number;
  readonly areaAt: number;
  /** Start of the current `as.metric` period, ms. */
  readonly periodStart: number;
  /** Requests that arrived since `periodStart`. */
  readonly arrived: number;
  /** `dispatched` at `periodStart`. */
  readonly periodDispatched: number;
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

type Effects = Effect<RouterMessage>[];
type FailureCode = InvocationFailureCode;
const STATUS = INVOCATION_FAILURES;

export const LOAD_BALANCING_POLICIES: readonly LoadBalancingPolicy[] = ['least-in-flight', 'random', 'round-robin', 'power-of-two'];

export function routerKind(config: RouterConfig): ActorKind<RouterState, RouterMessage> {
  const settings = validate(config);
  return {
    kind: 'router',
    virtual: true,
    init: (address) => initialRouterState(address.id),
    step: (state, message, ctx) => step(state, message, ctx, settings),
    summary,
  };
}

function validate(config: RouterConfig): Settings {
  const tickMs = config.tickMs ?? DEFAULT_TICK_MS;
  const resyncTimeoutMs = config.resyncTimeoutMs ?? DEFAULT_RESYNC_TIMEOUT_MS;
  if (config.dataplaneId === '') throw new RangeError('router: dataplaneId must be non-empty, got ""');
  if (!LOAD_BALANCING_POLICIES.includes(config.policy)) throw new RangeError(`router: policy must be one of ${LOAD_BALANCING_POLICIES.join(', ')}, got ${JSON.stringify(config.policy)}`);
  if (!(tickMs > 0) || !Number.isFinite(tickMs)) throw new RangeError(`router: tickMs must be a positive number of ms, got ${tickMs}`);
  if (!(resyncTimeoutMs > 0) || !Number.isFinite(resyncTimeoutMs)) {
    throw new RangeError(`router: resyncTimeoutMs must be a positive number of ms, got ${resyncTimeoutMs}`);
  }
  const shards = config.shards ?? 1;
  const shard = config.shard ?? 0;
  if (!Number.isInteger(shards) || shards < 1) throw new RangeError(`router: shards must be an integer >= 1, got ${shards}`);
  if (!Number.isInteger(shard) || shard < 0 || shard >= shards) throw new RangeError(`router: shard must be an integer in 0..${shards - 1}, got ${shard}`);
  return { dataplaneId: config.dataplaneId, policy: config.policy, tickMs, resyncTimeoutMs, shard, shards, home: config.home ?? (() => 0) };
}

function initialRouterState(name: string): RouterState {
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
    area: 0,
    areaAt: 0,
    periodStart: 0,
    arrived: 0,
    periodDispatched: 0,
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

/** The cumulative counters `as.metric` carries. */
export function routerTotals(state: RouterState): InvocationTotals {
  return {
    invocations: state.dispatched,
    coldStarts: state.coldStarts,
    coldStartMsSum: state.coldStartMsSum,
    coldStartMsBuckets: state.coldStartBuckets,
    rejected: state.rejectedByStatus,
  };
}

export function routerStatus(state: RouterState): RouterStatus {
  return {
    functionName: state.name,
    known: state.phase.kind === 'known',
    version: state.phase.kind === 'known' ? state.phase.version : 0,
    endpoints: state.sandboxes.filter((s) => s.phase.kind === 'serving').length,
    inFlight: totalInFlight(state),
    queued: state.queue.length,
    draining: state.sandboxes.filter((s) => s.phase.kind === 'draining').length,
  };
}

function summary(state: RouterState): unknown {
  return {
    ...routerStatus(state),
    term: state.phase.kind === 'known' ? state.phase.term : null,
    broken: state.sandboxes.filter((s) => s.phase.kind === 'broken').length,
    sync: state.sync.kind,
    dispatched: state.dispatched,
    rejected: state.rejected,
    coldStarts: state.coldStarts,
  };
}

// ---- The step ------------------------------------------------------------------------------------

function step(given: RouterState, message: RouterMessage, ctx: StepContext, settings: Settings): Step<RouterState, RouterMessage> {
  const fx: Effects = [];
  // The demand held since the last step, integrated before this message changes it.
  const state = accrued(given, ctx.now);
  let next: RouterState;
  switch (message.type) {
    case 'rt.snapshot':
      if (message.term < state.highestTerm) return ignored(state, `${message.type} of term ${message.term} < ${state.highestTerm}`);
      relay(state.name, message, fx, settings);
      next = replaceSet(changed(state, { highestTerm: message.term }), message.term, message.snapshot, ctx, fx, settings);
      break;
    case 'rt.delta':
      if (message.term < state.highestTerm) return ignored(state, `${message.type} of term ${message.term} < ${state.highestTerm}`);
      relay(state.name, message, fx, settings);
      next = onDelta(changed(state, { highestTerm: message.term }), message, ctx, fx, settings);
      break;
    case 'rt.deleted': {
      if (message.term < state.highestTerm) return ignored(state, `${message.type} of term ${message.term} < ${state.highestTerm}`);
      relay(state.name, message, fx, settings);
      next = rejectAll(state, 'UNKNOWN_FUNCTION', `function ${state.name} was deleted`, ctx, fx);
      for (const slot of next.sandboxes) if (!isClosed(slot)) fx.push(toSandbox(next.name, slot, { type: 'sb.close' }, settings));
      fx.push({ type: 'stop' });
      return { state: next, effects: fx };
    }
    case 'rt.invoke':
      if (ctx.replyTo === undefined) {
        fx.push({ type: 'log', level: 'warn', text: 'dropped rt.invoke that was not asked: nobody to answer' });
        return { state, effects: fx };
      }
      next = onInvoke(changed(state, { arrived: state.arrived + 1 }), message.invocation, ctx.replyTo, ctx, fx, settings);
      break;
    case 'rt.forwarded':
      next = onInvoke(changed(state, { arrived: state.arrived + 1 }), message.invocation, message.replyTo, ctx, fx, settings);
      break;
    case 'rt.released':
      next = onReleased(state, message.sandboxId, message.count, message.failed, ctx, fx, settings);
      break;
    case 'rt.resynced':
      next = onResynced(state, message, ctx, fx, settings);
      break;
    case 'rt.tick': {
      const busy = state.peakInFlight > 0 || state.peakQueued > 0;
      const averageInFlight = littleDemand(state, ctx.now);
      next = changed(state, {
        ticking: busy,
        peakInFlight: totalInFlight(state),
        peakQueued: state.queue.length,
        rejectedReported: state.rejected,
        area: 0,
        periodStart: ctx.now,
        arrived: 0,
        periodDispatched: state.dispatched,
      });
      if (next.phase.kind === 'known') {
        fx.push(
          toAutoscaler(next.name, {
            type: 'as.metric',
            dataplaneId: settings.dataplaneId,
            inFlight: state.peakInFlight,
            queued: state.peakQueued,
            averageInFlight,
            totals: routerTotals(state),
          }),
        );
      }
      // Per-sandbox load for the function's scale-down choice: sent while any sandbox is busy, and once
      // more when none is, so the function never keeps a stale picture.
      if (next.phase.kind === 'known') {
        const load: Record<string, number> = {};
        let busySandboxes = 0;
        for (const slot of state.sandboxes) {
          if (slot.inFlight > 0) {
            load[slot.endpoint.sandboxId] = slot.inFlight;
            busySandboxes += 1;
          }
        }
        if (busySandboxes > 0 || state.loadReported) {
          fx.push({ type: 'send', to: functionAddress(next.name), message: { type: 'fn.load', dataplaneId: settings.dataplaneId, inFlight: load } satisfies FunctionMessage });
          next = changed(next, { loadReported: busySandboxes > 0 });
        }
      }
      // A period with load is followed by one more report (zeros if the load is gone), then ticking stops.
      if (busy) fx.push({ type: 'schedule', afterMs: settings.tickMs, message: { type: 'rt.tick' }, timer: TICK_TIMER });
      break;
    }
    case 'rt.backlog':
      next = changed(state, { backlogPending: false });
      if (next.queue.length > 0 && next.phase.kind === 'known') {
        const grown = next.backlogTold > 0;
        fx.push(toAutoscaler(next.name, { type: 'as.backlog', dataplaneId: settings.dataplaneId, inFlight: totalInFlight(next), queued: next.queue.length, ...(grown ? { grown } : {}) }));
        next = changed(next, { backlogTold: next.queue.length });
      }
      break;
    case 'rt.expire':
      next = expire(changed(state, { expireAt: null }), ctx, fx);
      break;
    case 'rt.status':
      if (ctx.replyTo) fx.push({ type: 'reply', to: ctx.replyTo, value: routerStatus(state) });
      next = state;
      break;
    case 'rt.lookup':
      next = state.sync.kind === 'retrying' ? resync(changed(state, { sync: { kind: 'idle' } }), fx, settings) : state;
      break;
    default:
      return assertNever(message, 'router message');
  }
  return { state: settle(next, ctx, fx, settings), effects: fx };
}

function ignored(state: RouterState, what: string): Step<RouterState, RouterMessage> {
  return { state, effects: [{ type: 'log', level: 'debug', text: `ignored ${what}` }] };
}

/**
 * The bookkeeping every step ends with: stop an idle router of an unheard function, tell the autoscaler of a
 * backlog, keep the metrics tick and the deadline timer in step with the state.
 */
function settle(state: RouterState, ctx: StepContext, fx: Effects, settings: Settings): RouterState {
  const phase = state.phase;
  if (phase.kind === 'unheard') {
    // Invariant: an unheard router with waiting requests is asking or about to ask again, so this is the end of
    // its business.
    if (state.queue.length === 0 && state.sync.kind !== 'asking') fx.push({ type: 'stop' });
    return state;
  }
  let next = state;
  const inFlight = totalInFlight(next);
  if (inFlight + next.queue.length > next.peakInFlight + next.peakQueued) next = changed(next, { peakInFlight: inFlight, peakQueued: next.queue.length });
  // After the peak is taken: requests turned away here were demand too.
  if (phase.failure !== null && next.queue.length > 0 && !next.sandboxes.some(isServing)) next = rejectAll(next, 'FUNCTION_FAILED', phase.failure, ctx, fx);
  const queued = next.queue.length;
  if (queued === 0) {
    next = next.backlogTold === 0 ? next : changed(next, { backlogTold: 0 });
  } else if (!next.backlogPending && (next.backlogTold === 0 || queued >= 2 * next.backlogTold)) {
    fx.push({ type: 'schedule', afterMs: 0, message: { type: 'rt.backlog' }, timer: BACKLOG_TIMER });
    next = changed(next, { backlogPending: true });
  }
  if (!next.ticking && (queued > 0 || inFlight > 0 || next.rejected !== next.rejectedReported)) {
    fx.push({ type: 'schedule', afterMs: settings.tickMs, message: { type: 'rt.tick' }, timer: TICK_TIMER });
    // A new period: nothing was in flight before this step, so nothing was integrated since the last one.
    next = changed(next, { ticking: true, area: 0, periodStart: ctx.now, arrived: 0, periodDispatched: next.dispatched });
  }
  const head = next.queue[0];
  const due = head === undefined ? null : head.enqueuedAt + phase.routing.queueTimeoutMs;
  if (due !== next.expireAt) {
    fx.push(
      due === null
        ? { type: 'cancel', timer: EXPIRE_TIMER }
        : { type: 'schedule', afterMs: Math.max(0, due - ctx.now), message: { type: 'rt.expire' }, timer: EXPIRE_TIMER },
    );
    next = changed(next, { expireAt: due });
  }
  return next;
}

// ---- Endpoint set ------------------------------------------------------------------------------------

function onDelta(state: RouterState, delta: Extract<RouterMessage, { type: 'rt.delta' }>, ctx: StepContext, fx: Effects, settings: Settings): RouterState {
  const phase = state.phase;
  if (phase.kind === 'known' && (delta.term === phase.term || phase.term === UNKNOWN_TERM)) {
    if (delta.version <= phase.version) return state;
    if (delta.version === phase.version + 1) {
      let next: RouterState = changed(state, { phase: { ...phase, term: delta.term, version: delta.version } });
      for (const sandboxId of delta.remove) next = unlist(next, sandboxId, fx, settings);
      for (const endpoint of delta.add) next = list(next, endpoint, phase.routing, fx, settings);
      return dispatchWaiting(next, ctx, fx, settings);
    }
  }
  // A version gap, a new leader's numbering, or no set to apply it to. Removed sandboxes this router does not
  // hold are drained here already (the function would otherwise wait for its drain timeout); held ones drain
  // once the fresh set leaves them out.
  for (const sandboxId of delta.remove) {
    const slot = state.sandboxes[indexOf(state.sandboxes, sandboxId)];
    if (slot?.endpoint.sandboxId !== sandboxId) fx.push(drained(state.name, sandboxId, settings));
  }
  return resync(state, fx, settings);
}

function resync(state: RouterState, fx: Effects, settings: Settings): RouterState {
  if (state.sync.kind === 'asking') return state.sync.again ? state : changed(state, { sync: { ...state.sync, again: true } });
  const message: FunctionMessage = { type: 'fn.getEndpoints' };
  fx.push({ type: 'ask', to: functionAddress(state.name), message, timeoutMs: settings.resyncTimeoutMs, then: toResynced });
  return changed(state, { sync: { kind: 'asking', term: state.highestTerm, again: false } });
}

/** An unknown function (no such actor, or a null reply) becomes `snapshot: null` without `error`. */
function toResynced(result: AskResult): RouterMessage {
  if (!result.ok) {
    return result.error.code === 'NO_SUCH_ACTOR'
      ? { type: 'rt.resynced', snapshot: null }
      : { type: 'rt.resynced', snapshot: null, error: `${result.error.code}: ${result.error.message}` };
  }
  if (result.value === null || result.value === undefined) return { type: 'rt.resynced', snapshot: null };
  const { term, ...snapshot } = result.value as Partial<EndpointSnapshot> & { term?: unknown };
  if (!Array.isArray(snapshot.endpoints) || typeof snapshot.version !== 'number' || snapshot.routing === undefined) {
    return { type: 'rt.resynced', snapshot: null, error: `BAD_REPLY: fn.getEndpoints answered ${JSON.stringify(result.value)}` };
  }
  return { type: 'rt.resynced', snapshot: snapshot as EndpointSnapshot, ...(typeof term === 'number' ? { term } : {}) };
}

function onResynced(state: RouterState, message: Extract<RouterMessage, { type: 'rt.resynced' }>, ctx: StepContext, fx: Effects, settings: Settings): RouterState {
  const sync = state.sync;
  if (sync.kind !== 'asking') {
    fx.push({ type: 'log', level: 'debug', text: 'ignored rt.resynced: not asking' });
    return state;
  }
  const idle: RouterState = changed(state, { sync: { kind: 'idle' } });
  if (message.snapshot !== null) {
    const term = Math.max(sync.term, message.term ?? 0);
    if (term < state.highestTerm) {
      fx.push({ type: 'log', level: 'debug', text: `ignored rt.resynced of term ${term} < ${state.highestTerm}` });
      return sync.again ? resync(idle, fx, settings) : idle;
    }
    const next = replaceSet(changed(idle, { highestTerm: term }), term, message.snapshot, ctx, fx, settings);
    return sync.again ? resync(next, fx, settings) : next;
  }
  if (idle.phase.kind === 'known') {
    // Keep routing with the set held: a transient failure, or a leader still rebuilding its function actors,
    // must not cut a live function off; `rt.deleted` is what removes a function.
    fx.push({ type: 'log', level: 'warn', text: `resync of ${state.name} failed (${message.error ?? 'no such function'}); keeping version ${idle.phase.version}` });
    return changed(idle, { sync: { kind: 'stale' } });
  }
  if (message.error === undefined) return rejectAll(idle, 'UNKNOWN_FUNCTION', `no function named ${state.name}`, ctx, fx);
  const oldest = idle.queue[0];
  if (oldest !== undefined && ctx.now - oldest.enqueuedAt + LOOKUP_RETRY_MS < LOOKUP_PATIENCE_MS) {
    fx.push({ type: 'log', level: 'debug', text: `lookup of ${state.name} failed (${message.error}); trying again in ${LOOKUP_RETRY_MS} ms` });
    fx.push({ type: 'schedule', afterMs: LOOKUP_RETRY_MS, message: { type: 'rt.lookup' }, timer: LOOKUP_TIMER });
    return changed(idle, { sync: { kind: 'retrying' } });
  }
  return rejectAll(idle, 'NO_CAPACITY', `the endpoints of ${state.name} are unknown: ${message.error}`, ctx, fx);
}

/** Apply a full set numbered `snapshot.version` by the leader of `term`, unless the set held is newer. */
function replaceSet(state: RouterState, term: number, snapshot: EndpointSnapshot, ctx: StepContext, fx: Effects, settings: Settings): RouterState {
  const phase = state.phase;
  if (phase.kind === 'known' && (term < phase.term || (term === phase.term && snapshot.version < phase.version))) {
    fx.push({ type: 'log', level: 'debug', text: `ignored snapshot v${snapshot.version} of term ${term}: holding v${phase.version} of term ${phase.term}` });
    return state;
  }
  let next: RouterState = changed(state, { phase: { kind: 'known', term, version: snapshot.version, routing: snapshot.routing, failure: snapshot.failure ?? null } });
  // A new leader never heard of the requests waiting here: `settle` tells its autoscaler at once.
  if (phase.kind === 'known' && term > phase.term && next.backlogTold > 0) next = changed(next, { backlogTold: 0 });
  const listed = new Set(snapshot.endpoints.map((e) => e.sandboxId));
  for (const slot of state.sandboxes) if (!listed.has(slot.endpoint.sandboxId) && isListed(slot)) next = unlist(next, slot.endpoint.sandboxId, fx, settings);
  for (const endpoint of snapshot.endpoints) next = list(next, endpoint, snapshot.routing, fx, settings);
  if (phase.kind !== 'unheard') return dispatchWaiting(next, ctx, fx, settings);
  return trimQueue(dispatchWaiting(admitWaiting(next, snapshot.routing, ctx, fx), ctx, fx, settings), snapshot.routing, ctx, fx);
}

/**
 * Requests queued before the routing was known: apply its body limit now. They waited for the lookup, not for
 * the sandboxes just learnt of to be created, so those do not count as cold starts for them.
 */
function admitWaiting(state: RouterState, routing: RoutingConfig, ctx: StepContext, fx: Effects): RouterState {
  const kept: Waiting[] = [];
  for (const waiting of state.queue) {
    if (waiting.invocation.body.byteLength <= routing.maxBodyBytes) kept.push({ ...waiting, addsSeen: state.adds });
    else fx.push(answer(waiting.replyTo, 'BODY_TOO_LARGE', limitMessage(state.name, 'BODY_TOO_LARGE', routing), ctx.now - waiting.enqueuedAt));
  }
  return changed(state, { ...countRejected(state, 'BODY_TOO_LARGE', state.queue.length - kept.length), queue: kept });
}

/** Requests queued before the routing was known and still waiting beyond its queue depth: the newest get 429. */
function trimQueue(state: RouterState, routing: RoutingConfig, ctx: StepContext, fx: Effects): RouterState {
  const overflow = state.queue.slice(routing.queueDepth);
  if (overflow.length === 0) return state;
  for (const waiting of overflow) fx.push(answer(waiting.replyTo, 'QUEUE_FULL', limitMessage(state.name, 'QUEUE_FULL', routing), ctx.now - waiting.enqueuedAt));
  return changed(state, { ...countRejected(state, 'QUEUE_FULL', overflow.length), queue: state.queue.slice(0, routing.queueDepth) });
}

/** The control plane lists `endpoint`: add it, or take back a draining one; broken ones stay out. */
function list(state: RouterState, listed: Endpoint, routing: RoutingConfig, fx: Effects, settings: Settings): RouterState {
  // This replica's share of the sandbox's slots (all of them with one data-plane shard).
  const endpoint = settings.shards === 1 ? listed : { ...listed, concurrency: share(state.name, listed.concurrency, settings) };
  const index = indexOf(state.sandboxes, endpoint.sandboxId);
  const slot = state.sandboxes[index];
  if (slot !== undefined && slot.endpoint.sandboxId === endpoint.sandboxId) {
    if (slot.phase.kind !== 'draining') return state;
    return withSlot(state, index, slotWith(slot, slot.inFlight, slot.phase.closed ? { kind: 'broken' } : { kind: 'serving' }));
  }
  const init: DataPlaneSandboxInit = { functionName: state.name, endpoint, timeoutMs: routing.timeoutMs, router: selfAddress(state.name, settings) };
  fx.push({ type: 'spawn', address: sandboxActor(state.name, endpoint.sandboxId, settings), init });
  const added: SandboxSlot = { endpoint, inFlight: 0, phase: { kind: 'serving' }, addSeq: state.adds + 1 };
  return changed(state, { adds: state.adds + 1, sandboxes: [...state.sandboxes.slice(0, index), added, ...state.sandboxes.slice(index)] });
}

/** The control plane no longer lists `sandboxId`: route nothing more to it and drain it. */
function unlist(state: RouterState, sandboxId: string, fx: Effects, settings: Settings): RouterState {
  const index = indexOf(state.sandboxes, sandboxId);
  const slot = state.sandboxes[index];
  if (slot === undefined || slot.endpoint.sandboxId !== sandboxId) {
    fx.push(drained(state.name, sandboxId, settings));
    return state;
  }
  if (slot.phase.kind === 'draining') return state;
  return finishDrain(withSlot(state, index, slotWith(slot, slot.inFlight, { kind: 'draining', closed: slot.phase.kind === 'broken' })), index, fx, settings);
}

/** A draining slot with nothing in flight is done: tell the function, close the sandbox actor, forget it. */
function finishDrain(state: RouterState, index: number, fx: Effects, settings: Settings): RouterState {
  const slot = state.sandboxes[index];
  if (slot === undefined || slot.phase.kind !== 'draining' || slot.inFlight > 0) return state;
  fx.push(drained(state.name, slot.endpoint.sandboxId, settings));
  if (!slot.phase.closed) fx.push(toSandbox(state.name, slot, { type: 'sb.close' }, settings));
  return changed(state, { sandboxes: state.sandboxes.filter((_, i) => i !== index) });
}

// ---- Requests ------------------------------------------------------------------------------------------

function onInvoke(state: RouterState, invocation: Invocation, replyTo: ReplyTo, ctx: StepContext, fx: Effects, settings: Settings): RouterState {
  const phase = state.phase;
  if (phase.kind === 'unheard') {
    if (state.queue.length >= UNHEARD_QUEUE_DEPTH) {
      return reject(state, replyTo, 'QUEUE_FULL', `${UNHEARD_QUEUE_DEPTH} requests already wait for ${state.name} to be looked up`, 0, fx);
    }
    const queued = enqueue(state, invocation, replyTo, ctx);
    return queued.sync.kind === 'asking' ? queued : resync(queued, fx, settings);
  }
  const routing = phase.routing;
  if (share(state.name, routing.concurrency, settings) === 0) {
    fx.push(forwarded(state.name, invocation, replyTo, settings));
    return state;
  }
  if (invocation.body.byteLength > routing.maxBodyBytes) {
    return reject(state, replyTo, 'BODY_TOO_LARGE', `${limitMessage(state.name, 'BODY_TOO_LARGE', routing)}, got ${invocation.body.byteLength} bytes`, 0, fx);
  }
  const next = state.sync.kind === 'stale' ? resync(state, fx, settings) : state;
  const index = next.queue.length === 0 ? pick(next, settings.policy, ctx.random) : undefined;
  if (index !== undefined) return dispatch(next, index, invocation, replyTo, false, 0, fx, settings);
  if (phase.failure !== null && !next.sandboxes.some(isServing)) {
    // Demand all the same: see "Failed functions" above.
    const rejected = reject(next, replyTo, 'FUNCTION_FAILED', phase.failure, 0, fx);
    return rejected.peakQueued >= 1 ? rejected : changed(rejected, { peakQueued: 1 });
  }
  if (next.queue.length >= routing.queueDepth) return reject(next, replyTo, 'QUEUE_FULL', limitMessage(state.name, 'QUEUE_FULL', routing), 0, fx);
  return enqueue(next, invocation, replyTo, ctx);
}

function enqueue(state: RouterState, invocation: Invocation, replyTo: ReplyTo, ctx: StepContext): RouterState {
  return changed(state, { queue: [...state.queue, { invocation, replyTo, enqueuedAt: ctx.now, addsSeen: state.adds }] });
}

function onReleased(state: RouterState, sandboxId: string, count: number, failed: boolean, ctx: StepContext, fx: Effects, settings: Settings): RouterState {
  const index = indexOf(state.sandboxes, sandboxId);
  const slot = state.sandboxes[index];
  // Releases of a sandbox already forgotten (e.g. after rt.deleted, by a fresh router) mean nothing.
  if (slot === undefined || slot.endpoint.sandboxId !== sandboxId) return state;
  let phase = slot.phase;
  if (failed && phase.kind === 'serving') {
    fx.push({ type: 'log', level: 'warn', text: `sandbox ${sandboxId} failed: no more requests to it` });
    fx.push(toSandbox(state.name, slot, { type: 'sb.close' }, settings));
    phase = { kind: 'broken' };
  }
  const next = withSlot(state, index, slotWith(slot, Math.max(0, slot.inFlight - count), phase));
  return dispatchWaiting(finishDrain(next, index, fx, settings), ctx, fx, settings);
}

/** Hand waiting requests, oldest first, to free slots. */
function dispatchWaiting(state: RouterState, ctx: StepContext, fx: Effects, settings: Settings): RouterState {
  if (state.phase.kind !== 'known' || state.queue.length === 0) return state;
  if (share(state.name, state.phase.routing.concurrency, settings) === 0) {
    for (const waiting of state.queue) fx.push(forwarded(state.name, waiting.invocation, waiting.replyTo, settings));
    return changed(state, { queue: [] });
  }
  let next = state;
  let taken = 0;
  for (const waiting of state.queue) {
    const index = pick(next, settings.policy, ctx.random);
    if (index === undefined) break;
    const slot = next.sandboxes[index];
    const coldStart = slot !== undefined && slot.addSeq > waiting.addsSeen;
    next = dispatch(next, index, waiting.invocation, waiting.replyTo, coldStart, ctx.now - waiting.enqueuedAt, fx, settings);
    taken += 1;
  }
  return taken === 0 ? next : changed(next, { queue: state.queue.slice(taken) });
}

function dispatch(state: RouterState, index: number, invocation: Invocation, replyTo: ReplyTo, coldStart: boolean, queuedMs: number, fx: Effects, settings: Settings): RouterState {
  const slot = state.sandboxes[index];
  if (slot === undefined) throw new Error(`router ${state.name}: no sandbox at index ${index}`);
  fx.push(toSandbox(state.name, slot, { type: 'sb.invoke', invocation, replyTo, coldStart, queuedMs }, settings));
  // One new state per request, not one per field changed: this runs per request.
  const sandboxes = state.sandboxes.slice();
  sandboxes[index] = slotWith(slot, slot.inFlight + 1, slot.phase);
  if (!coldStart) return changed(state, { sandboxes, cursor: slot.endpoint.sandboxId, dispatched: state.dispatched + 1 });
  return changed(state, {
    sandboxes,
    cursor: slot.endpoint.sandboxId,
    dispatched: state.dispatched + 1,
    coldStarts: state.coldStarts + 1,
    coldStartMsSum: state.coldStartMsSum + queuedMs,
    coldStartBuckets: observeColdStart(state.coldStartBuckets, queuedMs),
  });
}

/** Answer every waiting request whose deadline has passed: 503 at max scale with every slot busy, else 504. */
function expire(state: RouterState, ctx: StepContext, fx: Effects): RouterState {
  const phase = state.phase;
  if (phase.kind !== 'known') return state;
  const { queueTimeoutMs, maxScale } = phase.routing;
  const listed = state.sandboxes.filter(isListed);
  const atMaxScale = listed.length >= maxScale && !listed.some(hasFreeSlot);
  const code: FailureCode = atMaxScale ? 'NO_CAPACITY' : 'DEADLINE_PASSED';
  let expired = 0;
  for (const waiting of state.queue) {
    if (waiting.enqueuedAt + queueTimeoutMs > ctx.now) break;
    const queuedMs = ctx.now - waiting.enqueuedAt;
    fx.push(
      atMaxScale
        ? answer(waiting.replyTo, code, `${state.name} is at its max scale (${maxScale} sandboxes) and no slot freed within ${queueTimeoutMs} ms`, queuedMs)
        : answer(waiting.replyTo, code, `no sandbox of ${state.name} was free within ${queueTimeoutMs} ms`, queuedMs, true),
    );
    expired += 1;
  }
  return expired === 0 ? state : changed(state, { ...countRejected(state, code, expired), queue: state.queue.slice(expired) });
}

function rejectAll(state: RouterState, code: FailureCode, message: string, ctx: StepContext, fx: Effects): RouterState {
  for (const waiting of state.queue) fx.push(answer(waiting.replyTo, code, message, ctx.now - waiting.enqueuedAt));
  return changed(state, { ...countRejected(state, code, state.queue.length), queue: [] });
}

function reject(state: RouterState, replyTo: ReplyTo, code: FailureCode, message: string, queuedMs: number, fx: Effects): RouterState {
  fx.push(answer(replyTo, code, message, queuedMs));
  return changed(state, countRejected(state, code, 1));
}

/** The counters after `count` more requests answered `code` by the router. */
function countRejected(state: RouterState, code: FailureCode, count: number): Pick<RouterState, 'rejected' | 'rejectedByStatus'> {
  if (count === 0) return { rejected: state.rejected, rejectedByStatus: state.rejectedByStatus };
  const status = String(STATUS[code]);
  return { rejected: state.rejected + count, rejectedByStatus: { ...state.rejectedByStatus, [status]: (state.rejectedByStatus[status] ?? 0) + count } };
}

/** `coldStart`: the request waited for a scale-up (below max scale, so sandboxes were on their way). */
function answer(replyTo: ReplyTo, code: FailureCode, message: string, queuedMs: number, coldStart = false): Effect<RouterMessage> {
  const outcome: InvocationOutcome = { ok: false, status: STATUS[code], code, message, queuedMs, ...(coldStart ? { coldStart } : {}) };
  return { type: 'reply', to: replyTo, value: outcome };
}

function limitMessage(name: string, code: 'BODY_TOO_LARGE' | 'QUEUE_FULL', routing: RoutingConfig): string {
  return code === 'BODY_TOO_LARGE'
    ? `the body limit of ${name} is ${routing.maxBodyBytes} bytes`
    : `the queue of ${name} is full (${routing.queueDepth} requests)`;
}

// ---- Policies --------------------------------------------------------------------------------------------

/**
 * Index (into `state.sandboxes`) of the serving sandbox to use, or undefined when every slot is busy. Runs per
 * request: it walks the slots without building the list of free ones (`nthFree` indexes that list).
 */
function pick(state: RouterState, policy: LoadBalancingPolicy, random: () => number): number | undefined {
  const slots = state.sandboxes;
  let free = 0;
  let first = -1;
  let least = -1;
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i]!;
    if (!isFree(slot)) continue;
    free += 1;
    if (first < 0) first = i;
    // Ties go to the first in id order, so light load stays on few sandboxes.
    if (least < 0 || slot.inFlight < slots[least]!.inFlight) least = i;
  }
  if (free === 0) return undefined;
  switch (policy) {
    case 'least-in-flight':
      return least;
    case 'random':
      return nthFree(slots, Math.floor(random() * free));
    case 'round-robin': {
      // The first free sandbox after the last one chosen, in id order: adds and removals do not reset the walk.
      const cursor = state.cursor;
      if (cursor !== null) {
        for (let i = 0; i < slots.length; i++) if (isFree(slots[i]!) && slots[i]!.endpoint.sandboxId > cursor) return i;
      }
      return first;
    }
    case 'power-of-two': {
      if (free === 1) return first;
      const one = Math.floor(random() * free);
      let two = Math.floor(random() * (free - 1));
      if (two >= one) two += 1;
      const a = nthFree(slots, one);
      const b = nthFree(slots, two);
      if (a === undefined || b === undefined) return a ?? b;
      return slots[b]!.inFlight < slots[a]!.inFlight ? b : a;
    }
    default:
      return assertNever(policy, 'load-balancing policy');
  }
}

/** A serving sandbox with a free slot. */
function isFree(slot: SandboxSlot): boolean {
  return slot.phase.kind === 'serving' && hasFreeSlot(slot);
}

/** Gets requests (busy or not): one that will free a slot in time. */
function isServing(slot: SandboxSlot): boolean {
  return slot.phase.kind === 'serving';
}

/** Index of the `n`th (from 0) free sandbox, in id order. */
function nthFree(slots: readonly SandboxSlot[], n: number): number | undefined {
  for (let i = 0, seen = 0; i < slots.length; i++) {
    if (!isFree(slots[i]!)) continue;
    if (seen === n) return i;
    seen += 1;
  }
  return undefined;
}

// ---- Small helpers ----------------------------------------------------------------------------------------

function hasFreeSlot(slot: SandboxSlot): boolean {
  return slot.inFlight < slot.endpoint.concurrency;
}

/** Still in the control plane's set (serving, or broken but not yet removed). */
function isListed(slot: SandboxSlot): boolean {
  return slot.phase.kind !== 'draining';
}

/** Its sandbox actor was already told `sb.close`. */
function isClosed(slot: SandboxSlot): boolean {
  return slot.phase.kind === 'broken' || (slot.phase.kind === 'draining' && slot.phase.closed);
}

/**
 * The period's demand by Little's law (requests; see the header): the time-weighted average at sandboxes times
 * arrivals / dispatches (at least 1; a period with arrivals and no dispatch counts as one dispatch), plus what
 * draining the queue left at the tick within one period takes (queued x mean time at a sandbox / period: a
 * load the sandboxes just match would otherwise never work off the queue a cold start left), at most the
 * period's peak. A period of no length (a tick at the instant ticking began) has no average: its peak stands in.
 */
export function littleDemand(state: RouterState, now: number): number {
  const peak = state.peakInFlight + state.peakQueued;
  const periodMs = now - state.periodStart;
  if (periodMs <= 0) return peak;
  const dispatched = Math.max(1, state.dispatched - state.periodDispatched);
  const saturation = Math.max(1, state.arrived / dispatched);
  // The queue left at the tick, drained within one period: queued x (time at a sandbox per request) / period.
  const drain = (state.queue.length * (state.area / dispatched)) / periodMs;
  return Math.min((state.area / periodMs) * saturation + drain, peak);
}

/** `state` with its requests at sandboxes since `areaAt` integrated up to `now` (ms). */
function accrued(state: RouterState, now: number): RouterState {
  if (now <= state.areaAt) return state;
  return changed(state, { area: state.area + totalInFlight(state) * (now - state.areaAt), areaAt: now });
}

function totalInFlight(state: RouterState): number {
  let sum = 0;
  for (const slot of state.sandboxes) sum += slot.inFlight;
  return sum;
}

/** Where `sandboxId` is in the sorted slots, or where it would go. */
function indexOf(slots: readonly SandboxSlot[], sandboxId: string): number {
  let lo = 0;
  let hi = slots.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((slots[mid]?.endpoint.sandboxId ?? '') < sandboxId) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * `state` with `changes`. Every field is listed rather than spread: steps run per request, and V8 spreads an
 * object of this many fields about 25 times slower than it builds a literal (~0.65 µs against ~25 ns). A field
 * absent from `changes` keeps its value (no RouterState field holds undefined). A field added to RouterState
 * must be added here (the return type makes the compiler say so unless it is optional).
 */
function changed(state: RouterState, changes: Partial<RouterState>): RouterState {
  const c = changes;
  return {
    name: c.name === undefined ? state.name : c.name,
    phase: c.phase === undefined ? state.phase : c.phase,
    highestTerm: c.highestTerm === undefined ? state.highestTerm : c.highestTerm,
    sync: c.sync === undefined ? state.sync : c.sync,
    sandboxes: c.sandboxes === undefined ? state.sandboxes : c.sandboxes,
    queue: c.queue === undefined ? state.queue : c.queue,
    adds: c.adds === undefined ? state.adds : c.adds,
    cursor: c.cursor === undefined ? state.cursor : c.cursor,
    ticking: c.ticking === undefined ? state.ticking : c.ticking,
    peakInFlight: c.peakInFlight === undefined ? state.peakInFlight : c.peakInFlight,
    peakQueued: c.peakQueued === undefined ? state.peakQueued : c.peakQueued,
    area: c.area === undefined ? state.area : c.area,
    areaAt: c.areaAt === undefined ? state.areaAt : c.areaAt,
    periodStart: c.periodStart === undefined ? state.periodStart : c.periodStart,
    arrived: c.arrived === undefined ? state.arrived : c.arrived,
    periodDispatched: c.periodDispatched === undefined ? state.periodDispatched : c.periodDispatched,
    expireAt: c.expireAt === undefined ? state.expireAt : c.expireAt,
    backlogTold: c.backlogTold === undefined ? state.backlogTold : c.backlogTold,
    backlogPending: c.backlogPending === undefined ? state.backlogPending : c.backlogPending,
    loadReported: c.loadReported === undefined ? state.loadReported : c.loadReported,
    dispatched: c.dispatched === undefined ? state.dispatched : c.dispatched,
    rejected: c.rejected === undefined ? state.rejected : c.rejected,
    rejectedByStatus: c.rejectedByStatus === undefined ? state.rejectedByStatus : c.rejectedByStatus,
    rejectedReported: c.rejectedReported === undefined ? state.rejectedReported : c.rejectedReported,
    coldStarts: c.coldStarts === undefined ? state.coldStarts : c.coldStarts,
    coldStartMsSum: c.coldStartMsSum === undefined ? state.coldStartMsSum : c.coldStartMsSum,
    coldStartBuckets: c.coldStartBuckets === undefined ? state.coldStartBuckets : c.coldStartBuckets,
  };
}

/** `slot` with its in-flight count and phase replaced (a literal, not a spread: see `changed`). */
function slotWith(slot: SandboxSlot, inFlight: number, phase: SlotPhase): SandboxSlot {
  return { endpoint: slot.endpoint, inFlight, phase, addSeq: slot.addSeq };
}

function withSlot(state: RouterState, index: number, slot: SandboxSlot): RouterState {
  const sandboxes = state.sandboxes.slice();
  sandboxes[index] = slot;
  return changed(state, { sandboxes });
}

function drained(name: string, sandboxId: string, settings: Settings): Effect<RouterMessage> {
  const message: FunctionMessage = { type: 'fn.drained', sandboxId, dataplaneId: settings.dataplaneId };
  return { type: 'send', to: functionAddress(name), message };
}

function toSandbox(name: string, slot: SandboxSlot, message: DataPlaneSandboxMessage, settings: Settings): Effect<RouterMessage> {
  return { type: 'send', to: sandboxActor(name, slot.endpoint.sandboxId, settings), message };
}

// ---- Replicas (several data-plane shards) ------------------------------------------------------------

/** This replica's sandbox actor of `sandboxId`: on this replica's shard. */
function sandboxActor(name: string, sandboxId: string, settings: Settings): Address {
  return dataPlaneSandboxAddress(name, sandboxId, settings.shards === 1 ? undefined : settings.shard);
}

function selfAddress(name: string, settings: Settings): Address {
  return settings.shards === 1 ? routerAddress(name) : routerReplicaAddress(name, settings.shard);
}

/** This replica's slots of a sandbox of `name` with `concurrency` slots (all of them with one shard: no lookup). */
function share(name: string, concurrency: number, settings: Settings): number {
  if (settings.shards === 1) return concurrency;
  const rank = (settings.shard - settings.home(name) + settings.shards) % settings.shards;
  return slotShare(concurrency, rank, settings.shards);
}

/**
 * The slots of a sandbox with `concurrency` slots held by the replica of rank `rank`: an even split over the
 * shards, the remainder to the lowest ranks. 0 past `concurrency` when it is below the shard count: those
 * replicas forward every request to the home replica, which always has a share.
 */
export function slotShare(concurrency: number, rank: number, shards: number): number {
  return Math.floor(concurrency / shards) + (rank < concurrency % shards ? 1 : 0);
}

function forwarded(name: string, invocation: Invocation, replyTo: ReplyTo, settings: Settings): Effect<RouterMessage> {
  return { type: 'send', to: routerReplicaAddress(name, settings.home(name)), message: { type: 'rt.forwarded', invocation, replyTo } };
}

/** What the control plane tells the replica on the key's shard goes on to every other shard's replica. */
function relay(name: string, update: RouterUpdate, fx: Effects, settings: Settings): void {
  if (settings.shards === 1 || update.relayed) return;
  const copy: RouterUpdate = { ...update, relayed: true };
  for (let shard = 0; shard < settings.shards; shard++) if (shard !== settings.shard) fx.push({ type: 'send', to: routerReplicaAddress(name, shard), message: copy });
}

function toAutoscaler(name: string, message: AutoscalerMessage): Effect<RouterMessage> {
  return { type: 'send', to: autoscalerAddress(name), message };
}
