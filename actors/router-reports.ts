// Backlog rule (`as.backlog`): told at once when the queue becomes non-empty, and again each time
// the queue reaches twice the length last told, until it empties. "At once" is a 0 ms timer, so that
// requests arriving in the same burst (one event-loop turn) are reported together: 50 requests arriving
// together are one report of 50, and the autoscaler sizes the scale-from-zero by the whole backlog.
// A burst growing over time costs about log2(n) + 1 messages, and the autoscaler never sees less than half
// the real backlog between ticks;
// `as.metric` carries the peak counts of every tick. Counts are disjoint: `inFlight` is requests at sandboxes,
// `queued` is requests waiting here.
//
// Metrics (`as.metric`): every `tickMs` while anything is in flight or queued, and at the first tick that finds
// both at 0 a final report of zeros, after which ticking stops until the next request. Each report carries the
// PEAK in-flight and queued counts since the previous report, not a sample at the tick: a sample taken in the
// gap between short requests reads 0 however busy the function is, which starves the autoscaler of the load.
// Every report also carries `totals`, the router's cumulative counters since it started: requests handed to a
// sandbox, cold starts with a histogram of their queue times (`COLD_START_BUCKETS_MS`), and requests it answered
// itself with an error, by status. As they ride on every report, the final report after a busy period carries
// the final counts; a rejection while idle (nothing in flight or queued) starts the ticking too, so that it is
// reported. The counters live in this actor's state only: a restarted router (or data plane) counts from 0 again,
// and the autoscaler takes any decrease for such a reset. Requests for a function the router never learns of
// (404, or 503 when the lookup fails) and those answered 404 at `rt.deleted` go unreported: the router stops
// right after.

import type { Effect } from './actor.js';
import { autoscalerAddress, functionAddress, type AutoscalerMessage, type FunctionMessage, type InvocationTotals, type RouterMessage } from './messages.js';
import { changed, totalInFlight, type Effects, type RouterSettings, type RouterState } from './router-state.js';

/** Period of `as.metric` while busy, ms (Dirigent's and Knative's 2 s). */
export const DEFAULT_TICK_MS = 2000;
export const BACKLOG_TIMER = 'rt.backlog';
export const TICK_TIMER = 'rt.tick';

/** `rt.tick`: the peak counts of the period to the autoscaler, the per-sandbox load to the function. */
export function onTick(state: RouterState, fx: Effects, settings: RouterSettings): RouterState {
  const busy = state.peakInFlight > 0 || state.peakQueued > 0;
  let next = changed(state, { ticking: busy, peakInFlight: totalInFlight(state), peakQueued: state.queue.length, rejectedReported: state.rejected });
  if (next.phase.kind === 'known') {
    fx.push(
      toAutoscaler(next.name, {
        type: 'as.metric',
        dataplaneId: settings.dataplaneId,
        inFlight: state.peakInFlight,
        queued: state.peakQueued,
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
  return next;
}

/** `rt.backlog`: the queue length of this moment to the autoscaler. */
export function onBacklog(state: RouterState, fx: Effects, settings: RouterSettings): RouterState {
  let next = changed(state, { backlogPending: false });
  if (next.queue.length > 0 && next.phase.kind === 'known') {
    fx.push(toAutoscaler(next.name, { type: 'as.backlog', dataplaneId: settings.dataplaneId, inFlight: totalInFlight(next), queued: next.queue.length }));
    next = changed(next, { backlogTold: next.queue.length });
  }
  return next;
}

/** The demand of this moment, if it is the period's peak. */
export function trackPeak(state: RouterState, inFlight: number): RouterState {
  return inFlight + state.queue.length > state.peakInFlight + state.peakQueued ? changed(state, { peakInFlight: inFlight, peakQueued: state.queue.length }) : state;
}

/** Schedules the backlog report and the metrics tick the state calls for (the rules above). */
export function scheduleReports(state: RouterState, inFlight: number, fx: Effects, settings: RouterSettings): RouterState {
  let next = state;
  const queued = next.queue.length;
  if (queued === 0) {
    next = next.backlogTold === 0 ? next : changed(next, { backlogTold: 0 });
  } else if (!next.backlogPending && (next.backlogTold === 0 || queued >= 2 * next.backlogTold)) {
    fx.push({ type: 'schedule', afterMs: 0, message: { type: 'rt.backlog' }, timer: BACKLOG_TIMER });
    next = changed(next, { backlogPending: true });
  }
  if (!next.ticking && (queued > 0 || inFlight > 0 || next.rejected !== next.rejectedReported)) {
    fx.push({ type: 'schedule', afterMs: settings.tickMs, message: { type: 'rt.tick' }, timer: TICK_TIMER });
    next = changed(next, { ticking: true });
  }
  return next;
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

function toAutoscaler(name: string, message: AutoscalerMessage): Effect<RouterMessage> {
  return { type: 'send', to: autoscalerAddress(name), message };
}
