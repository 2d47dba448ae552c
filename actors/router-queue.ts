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

import type { Effect, ReplyTo, StepContext } from './actor.js';
import { defaultFunctionSpec } from './function-spec.js';
import { observeColdStart } from './invocation-totals.js';
import { failureStatus, type Invocation, type InvocationOutcome, type RouterMessage, type RoutingConfig } from './messages.js';
// router-endpoints.ts and this file call each other (a new set dispatches the queue; a request may resync):
// functions only, nothing either reads while the modules load.
import { finishDrain, resync, toSandbox } from './router-endpoints.js';
import { pick } from './router-policies.js';
import { forwarded, share } from './router-replicas.js';
import { changed, hasFreeSlot, indexOf, isListed, isServing, slotWith, withSlot, type Effects, type FailureCode, type RouterSettings, type RouterState, type Waiting } from './router-state.js';

/**
 * Most requests that wait for the first answer about a function never heard of (requests). The function's own
 * `queueDepth` is not known yet; once it is, requests beyond it are answered 429.
 */
export const UNHEARD_QUEUE_DEPTH = defaultFunctionSpec.queueDepth;

/** The timer set on the deadline of the oldest waiting request. */
export const EXPIRE_TIMER = 'rt.expire';

export function onInvoke(state: RouterState, invocation: Invocation, replyTo: ReplyTo, ctx: StepContext, fx: Effects, settings: RouterSettings): RouterState {
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

export function onReleased(state: RouterState, sandboxId: string, count: number, failed: boolean, ctx: StepContext, fx: Effects, settings: RouterSettings): RouterState {
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
export function dispatchWaiting(state: RouterState, ctx: StepContext, fx: Effects, settings: RouterSettings): RouterState {
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

function dispatch(state: RouterState, index: number, invocation: Invocation, replyTo: ReplyTo, coldStart: boolean, queuedMs: number, fx: Effects, settings: RouterSettings): RouterState {
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
export function expire(state: RouterState, ctx: StepContext, fx: Effects): RouterState {
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

export function rejectAll(state: RouterState, code: FailureCode, message: string, ctx: StepContext, fx: Effects): RouterState {
  for (const waiting of state.queue) fx.push(answer(waiting.replyTo, code, message, ctx.now - waiting.enqueuedAt));
  return changed(state, { ...countRejected(state, code, state.queue.length), queue: [] });
}

export function reject(state: RouterState, replyTo: ReplyTo, code: FailureCode, message: string, queuedMs: number, fx: Effects): RouterState {
  fx.push(answer(replyTo, code, message, queuedMs));
  return changed(state, countRejected(state, code, 1));
}

/** The counters after `count` more requests answered `code` by the router. */
export function countRejected(state: RouterState, code: FailureCode, count: number): Pick<RouterState, 'rejected' | 'rejectedByStatus'> {
  if (count === 0) return { rejected: state.rejected, rejectedByStatus: state.rejectedByStatus };
  const status = String(failureStatus(code));
  return { rejected: state.rejected + count, rejectedByStatus: { ...state.rejectedByStatus, [status]: (state.rejectedByStatus[status] ?? 0) + count } };
}

/** `coldStart`: the request waited for a scale-up (below max scale, so sandboxes were on their way). */
export function answer(replyTo: ReplyTo, code: FailureCode, message: string, queuedMs: number, coldStart = false): Effect<RouterMessage> {
  const outcome: InvocationOutcome = { ok: false, status: failureStatus(code), code, message, queuedMs, ...(coldStart ? { coldStart } : {}) };
  return { type: 'reply', to: replyTo, value: outcome };
}

function limitMessage(name: string, code: 'BODY_TOO_LARGE' | 'QUEUE_FULL', routing: RoutingConfig): string {
  return code === 'BODY_TOO_LARGE'
    ? `the body limit of ${name} is ${routing.maxBodyBytes} bytes`
    : `the queue of ${name} is full (${routing.queueDepth} requests)`;
}

/**
 * Requests queued before the routing was known: apply its body limit now. They waited for the lookup, not for
 * the sandboxes just learnt of to be created, so those do not count as cold starts for them.
 */
export function admitWaiting(state: RouterState, routing: RoutingConfig, ctx: StepContext, fx: Effects): RouterState {
  const kept: Waiting[] = [];
  for (const waiting of state.queue) {
    if (waiting.invocation.body.byteLength <= routing.maxBodyBytes) kept.push({ ...waiting, addsSeen: state.adds });
    else fx.push(answer(waiting.replyTo, 'BODY_TOO_LARGE', limitMessage(state.name, 'BODY_TOO_LARGE', routing), ctx.now - waiting.enqueuedAt));
  }
  return changed(state, { ...countRejected(state, 'BODY_TOO_LARGE', state.queue.length - kept.length), queue: kept });
}

/** Requests queued before the routing was known and still waiting beyond its queue depth: the newest get 429. */
export function trimQueue(state: RouterState, routing: RoutingConfig, ctx: StepContext, fx: Effects): RouterState {
  const overflow = state.queue.slice(routing.queueDepth);
  if (overflow.length === 0) return state;
  for (const waiting of overflow) fx.push(answer(waiting.replyTo, 'QUEUE_FULL', limitMessage(state.name, 'QUEUE_FULL', routing), ctx.now - waiting.enqueuedAt));
  return changed(state, { ...countRejected(state, 'QUEUE_FULL', overflow.length), queue: state.queue.slice(0, routing.queueDepth) });
}

/** With the function failed and no sandbox serving, nothing will free a slot: the queued get the reason now. */
export function failIfHopeless(state: RouterState, ctx: StepContext, fx: Effects): RouterState {
  const phase = state.phase;
  if (phase.kind !== 'known' || phase.failure === null || state.queue.length === 0 || state.sandboxes.some(isServing)) return state;
  return rejectAll(state, 'FUNCTION_FAILED', phase.failure, ctx, fx);
}

/** Keeps the `rt.expire` timer on the deadline of the oldest waiting request (none when nothing waits). */
export function scheduleExpiry(state: RouterState, ctx: StepContext, fx: Effects): RouterState {
  if (state.phase.kind !== 'known') return state;
  const head = state.queue[0];
  const due = head === undefined ? null : head.enqueuedAt + state.phase.routing.queueTimeoutMs;
  if (due === state.expireAt) return state;
  fx.push(
    due === null
      ? { type: 'cancel', timer: EXPIRE_TIMER }
      : { type: 'schedule', afterMs: Math.max(0, due - ctx.now), message: { type: 'rt.expire' }, timer: EXPIRE_TIMER },
  );
  return changed(state, { expireAt: due });
}
