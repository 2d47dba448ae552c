// The data plane's router of one function (kind `router`, virtual, id = the function's name): it holds the
// endpoint set the control plane pushes, one `dpsandbox` actor per endpoint with its concurrency slots, and
// the bounded FIFO cold-start queue. A request with a free slot goes straight to a sandbox actor, which answers
// the edge; otherwise it waits, and the autoscaler hears of the backlog at once.
//
// Its concerns live in files of their own, each opening with its part of the specification: the endpoint set and
// unknown functions (router-endpoints.ts), replicas on several data-plane shards (router-replicas.ts), requests,
// the queue and failed functions (router-queue.ts), backlog and metrics reports (router-reports.ts), the
// load-balancing policies (router-policies.ts) and the state with its one copy-with-changes (router-state.ts).
// This file holds the kind and the one `step`, which checks an update's term once, as raft's `Step` does before
// `stepLeader`/`stepFollower`, dispatches by message type, and ends every step with the same bookkeeping.

import { assertNever, type ActorKind, type Step, type StepContext } from './actor.js';
import type { LoadBalancingPolicy, RouterMessage, RouterStatus, RouterUpdate } from './messages.js';
import { DEFAULT_RESYNC_TIMEOUT_MS, onDelta, onResynced, replaceSet, resync, toSandbox } from './router-endpoints.js';
import { LOAD_BALANCING_POLICIES } from './settings.js';
import { expire, failIfHopeless, onInvoke, onReleased, rejectAll, scheduleExpiry } from './router-queue.js';
import { relay } from './router-replicas.js';
import { DEFAULT_TICK_MS, onBacklog, onTick, scheduleReports, trackPeak } from './router-reports.js';
import { changed, initialRouterState, isClosed, totalInFlight, type Effects, type RouterSettings, type RouterState } from './router-state.js';

export { LOOKUP_PATIENCE_MS, LOOKUP_RETRY_MS, LOOKUP_TIMER, DEFAULT_RESYNC_TIMEOUT_MS } from './router-endpoints.js';
export { EXPIRE_TIMER, UNHEARD_QUEUE_DEPTH } from './router-queue.js';
export { slotShare } from './router-replicas.js';
export { BACKLOG_TIMER, DEFAULT_TICK_MS, TICK_TIMER, routerTotals } from './router-reports.js';
export { UNKNOWN_TERM, type RouterPhase, type RouterState, type SandboxSlot, type SlotPhase, type SyncState, type Waiting } from './router-state.js';

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

function validate(config: RouterConfig): RouterSettings {
  const tickMs = config.tickMs ?? DEFAULT_TICK_MS;
  const resyncTimeoutMs = config.resyncTimeoutMs ?? DEFAULT_RESYNC_TIMEOUT_MS;
  if (config.dataplaneId === '') throw new RangeError('router: dataplaneId must be non-empty, got ""');
  if (!(LOAD_BALANCING_POLICIES as readonly string[]).includes(config.policy)) throw new RangeError(`router: policy must be one of ${LOAD_BALANCING_POLICIES.join(', ')}, got ${JSON.stringify(config.policy)}`);
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


function step(state: RouterState, message: RouterMessage, ctx: StepContext, settings: RouterSettings): Step<RouterState, RouterMessage> {
  const fx: Effects = [];
  if (isUpdate(message)) {
    // The one term check: an update from a leader older than one already heard is stale, whatever it says.
    if (message.term < state.highestTerm) return ignored(state, `${message.type} of term ${message.term} < ${state.highestTerm}`);
    relay(state.name, message, fx, settings);
    return stepUpdate(changed(state, { highestTerm: message.term }), message, ctx, fx, settings);
  }
  let next: RouterState;
  switch (message.type) {
    case 'rt.invoke':
      if (ctx.replyTo === undefined) {
        fx.push({ type: 'log', level: 'warn', text: 'dropped rt.invoke that was not asked: nobody to answer' });
        return { state, effects: fx };
      }
      next = onInvoke(state, message.invocation, ctx.replyTo, ctx, fx, settings);
      break;
    case 'rt.forwarded':
      next = onInvoke(state, message.invocation, message.replyTo, ctx, fx, settings);
      break;
    case 'rt.released':
      next = onReleased(state, message.sandboxId, message.count, message.failed, ctx, fx, settings);
      break;
    case 'rt.resynced':
      next = onResynced(state, message, ctx, fx, settings);
      break;
    case 'rt.tick':
      next = onTick(state, fx, settings);
      break;
    case 'rt.backlog':
      next = onBacklog(state, fx, settings);
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

function isUpdate(message: RouterMessage): message is RouterUpdate {
  return message.type === 'rt.snapshot' || message.type === 'rt.delta' || message.type === 'rt.deleted';
}

/** An update of the current term or a newer one (already counted as the highest seen, and relayed). */
function stepUpdate(state: RouterState, update: RouterUpdate, ctx: StepContext, fx: Effects, settings: RouterSettings): Step<RouterState, RouterMessage> {
  switch (update.type) {
    case 'rt.snapshot':
      return { state: settle(replaceSet(state, update.term, update.snapshot, ctx, fx, settings), ctx, fx, settings), effects: fx };
    case 'rt.delta':
      return { state: settle(onDelta(state, update, ctx, fx, settings), ctx, fx, settings), effects: fx };
    case 'rt.deleted': {
      const next = rejectAll(state, 'UNKNOWN_FUNCTION', `function ${state.name} was deleted`, ctx, fx);
      for (const slot of next.sandboxes) if (!isClosed(slot)) fx.push(toSandbox(next.name, slot, { type: 'sb.close' }, settings));
      fx.push({ type: 'stop' });
      return { state: next, effects: fx };
    }
    default:
      return assertNever(update, 'router update');
  }
}

function ignored(state: RouterState, what: string): Step<RouterState, RouterMessage> {
  return { state, effects: [{ type: 'log', level: 'debug', text: `ignored ${what}` }] };
}

/**
 * The bookkeeping every step ends with: stop an idle router of an unheard function, tell the autoscaler of a
 * backlog, keep the metrics tick and the deadline timer in step with the state.
/**
 * The bookkeeping every step ends with: stop an idle router of an unheard function, take the peak demand, turn
 * away what a failed function cannot serve, tell the autoscaler of a backlog, keep the metrics tick and the
 * deadline timer in step with the state.
 */
function settle(state: RouterState, ctx: StepContext, fx: Effects, settings: RouterSettings): RouterState {
  if (state.phase.kind === 'unheard') {
    // Invariant: an unheard router with waiting requests is asking or about to ask again, so this is the end of
    // its business.
    if (state.queue.length === 0 && state.sync.kind !== 'asking') fx.push({ type: 'stop' });
    return state;
  }
  const inFlight = totalInFlight(state);
  // After the peak is taken: requests turned away here were demand too.
  const next = failIfHopeless(trackPeak(state, inFlight), ctx, fx);
  return scheduleExpiry(scheduleReports(next, inFlight, fx, settings), ctx, fx);
}
