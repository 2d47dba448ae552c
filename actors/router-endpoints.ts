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
// Unknown functions. The first request for a function the router has never heard of waits while the router
// asks the function actor. No such actor (or a null reply) answers every waiting request 404; a failed ask
// answers them 503. Either way the router then stops, so that names that do not exist leave no actor behind
// (a later request asks again). For a function it knows, a failed resync keeps the set it has and marks it
// stale: the next request asks again (no timer; an idle function needs no fresh set).

import type { AskResult, StepContext } from './actor.js';
import type { DataPlaneSandboxInit } from './dp-sandbox.js';
import { functionAddress, type DataPlaneSandboxMessage, type Endpoint, type EndpointSnapshot, type FunctionMessage, type RouterMessage, type RoutingConfig } from './messages.js';
import { admitWaiting, dispatchWaiting, rejectAll, trimQueue } from './router-queue.js';
import { sandboxActor, selfAddress, share } from './router-replicas.js';
import { changed, indexOf, isListed, slotWith, UNKNOWN_TERM, withSlot, type Effects, type RouterSettings, type RouterState, type SandboxSlot } from './router-state.js';

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

export function onDelta(state: RouterState, delta: Extract<RouterMessage, { type: 'rt.delta' }>, ctx: StepContext, fx: Effects, settings: RouterSettings): RouterState {
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

export function resync(state: RouterState, fx: Effects, settings: RouterSettings): RouterState {
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

export function onResynced(state: RouterState, message: Extract<RouterMessage, { type: 'rt.resynced' }>, ctx: StepContext, fx: Effects, settings: RouterSettings): RouterState {
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
export function replaceSet(state: RouterState, term: number, snapshot: EndpointSnapshot, ctx: StepContext, fx: Effects, settings: RouterSettings): RouterState {
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


/** The control plane lists `endpoint`: add it, or take back a draining one; broken ones stay out. */
function list(state: RouterState, listed: Endpoint, routing: RoutingConfig, fx: Effects, settings: RouterSettings): RouterState {
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
function unlist(state: RouterState, sandboxId: string, fx: Effects, settings: RouterSettings): RouterState {
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
export function finishDrain(state: RouterState, index: number, fx: Effects, settings: RouterSettings): RouterState {
  const slot = state.sandboxes[index];
  if (slot === undefined || slot.phase.kind !== 'draining' || slot.inFlight > 0) return state;
  fx.push(drained(state.name, slot.endpoint.sandboxId, settings));
  if (!slot.phase.closed) fx.push(toSandbox(state.name, slot, { type: 'sb.close' }, settings));
  return changed(state, { sandboxes: state.sandboxes.filter((_, i) => i !== index) });
}


function drained(name: string, sandboxId: string, settings: RouterSettings): Effects[number] {
  const message: FunctionMessage = { type: 'fn.drained', sandboxId, dataplaneId: settings.dataplaneId };
  return { type: 'send', to: functionAddress(name), message };
}

export function toSandbox(name: string, slot: SandboxSlot, message: DataPlaneSandboxMessage, settings: RouterSettings): Effects[number] {
  return { type: 'send', to: sandboxActor(name, slot.endpoint.sandboxId, settings), message };
}
