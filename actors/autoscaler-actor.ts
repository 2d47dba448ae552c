// The autoscaler actor (control plane): one per function, wrapping the pure KPA in autoscaler.ts. It keeps
// the latest report of every data plane, feeds their sum to the scaler, ticks on a named timer, and tells the
// function actor the sandbox count to converge to whenever that count changes.
//
// The observed concurrency is the sum over data planes of (inFlight + queued): autoscaler.ts sizes by all
// requests in the function, queued ones included, and takes the queued part as the backlog.
//
// Stale reports: a data plane repeats a non-zero report every METRIC_REPORT_INTERVAL_MS and sends one last 0
// when it goes idle. A data plane that dies or disconnects sends nothing more, and its last report would pin the
// count forever. So at each tick a report older than two report periods is dropped; the period is the slower of
// the tick and METRIC_REPORT_INTERVAL_MS, so that a short tick does not drop reports that are merely not due yet.
//
// Counters for the control plane's metrics: the `totals` an `as.metric` carries are kept per data plane apart
// from the load reports, and never dropped as stale (a data plane that went quiet still served what it served).
// They are cumulative since its router started; when any of them goes down, the router (or its data plane)
// restarted and counts from 0 again, so the totals held so far move into that data plane's offset, and the
// sum the status reports (offset + latest, over data planes) never decreases. A restart that counts past the
// old values before its first report goes unnoticed (that report's counts are taken as growth). The autoscaler
// also counts the `fn.scale` messages it sends (`decisions`).

import { assertNever, type ActorKind, type Effect, type Step, type StepContext } from './actor.js';
import type { AutoscalerConfig } from './autoscaler-config.js';
import { holdScaleDown, initialScalerState, onBacklog, recordObservation, tick, type Decision, type ScalerState } from './autoscaler.js';
import { EMPTY_TOTALS, addTotals, isReset, totalsProblem } from './invocation-totals.js';
import { functionAddress, type AutoscalerMessage, type AutoscalerStatus, type DecisionRecord, type FunctionMessage, type InvocationTotals } from './messages.js';

/** How often a data plane repeats a non-zero in-flight report, ms (Dirigent: 2 s). */
export const METRIC_REPORT_INTERVAL_MS = 2000;
/** Reports missed before a data plane's last report is dropped. */
export const STALE_AFTER_REPORTS = 2;

export interface AutoscalerInit {
  readonly config: AutoscalerConfig;
  /** Requests one sandbox runs at once (>= 1). */
  readonly containerConcurrency: number;
}

export interface DataplaneReport {
  /** Requests running on this data plane's sandboxes (peak of its report period). */
  readonly inFlight: number;
  /** Time-weighted average of inFlight + queued over its report period (requests, fractional). */
  readonly average: number;
  /** Requests waiting in its cold-start queue. */
  readonly queued: number;
  /** When it arrived, ms. */
  readonly at: number;
}

/** One data plane's request counters. */
export interface DataplaneCounters {
  /** Its latest `totals`, as reported (since its router last started). */
  readonly latest: InvocationTotals;
  /** What it had counted before its router's restarts: added to `latest` for the status. */
  readonly offset: InvocationTotals;
}

export interface AutoscalerActorState {
  /** The function's name (the actor's id). */
  readonly name: string;
  readonly config: AutoscalerConfig;
  readonly containerConcurrency: number;
  readonly scaler: ScalerState;
  /** Latest report per data plane id; stale ones are dropped at a tick. */
  readonly reports: ReadonlyMap<string, DataplaneReport>;
  /** Request counters per data plane id; kept when its report goes stale. */
  readonly counters: ReadonlyMap<string, DataplaneCounters>;
  /** `fn.scale` messages sent. */
  readonly decisions: number;
  /** Ready sandboxes, as the function actor last said. */
  readonly ready: number;
  /** Desired count last sent to the function; null before the first `fn.scale`. */
  readonly sent: number | null;
  readonly panic: boolean;
  /** e.g. `backlog -> 3 at 12000 ms`. */
  readonly lastDecision: string;
  /** The latest decisions (at most RECENT_DECISIONS), oldest first, with their inputs. */
  readonly recent: readonly DecisionRecord[];
  /** The windows as of the last tick (in-flight requests); null before the first tick. */
  readonly windows: { readonly stable: number; readonly panic: number; readonly bucket: number } | null;
  /** Whether the tick timer runs (from the first `as.configure` on). */
  readonly ticking: boolean;
}

const TICK_TIMER = 'tick';

/** Decisions kept for `dirigent describe` and the console. */
export const RECENT_DECISIONS = 8;



/** Age beyond which a data plane's report no longer counts, ms. */
export function staleAfterMs(config: AutoscalerConfig): number {
  return STALE_AFTER_REPORTS * Math.max(config.tickMs, METRIC_REPORT_INTERVAL_MS);
}

export function initialAutoscalerState(name: string, init: AutoscalerInit, now: number): AutoscalerActorState {
  return {
    name,
    config: init.config,
    containerConcurrency: init.containerConcurrency,
    scaler: initialScalerState(now),
    reports: new Map(),
    counters: new Map(),
    decisions: 0,
    ready: 0,
    sent: null,
    panic: false,
    lastDecision: 'none yet',
    recent: [],
    windows: null,
    ticking: false,
  };
}

export const autoscalerKind: ActorKind<AutoscalerActorState, AutoscalerMessage> = {
  kind: 'autoscaler',
  virtual: false,
  init(address, arg, now) {
    const init = arg as AutoscalerInit | undefined;
    if (init?.config === undefined || !isCount(init.containerConcurrency) || init.containerConcurrency < 1) {
      throw new TypeError(`autoscaler ${address.id}: init needs { config, containerConcurrency >= 1 }`);
    }
    return initialAutoscalerState(address.id, init, now);
  },
  step,
  summary(state) {
    return {
      name: state.name,
      desired: state.scaler.desired,
      sent: state.sent,
      ready: state.ready,
      panic: state.panic,
      observed: totals(state.reports).inFlight,
      observedAverage: round2(totals(state.reports).average),
      dataplanes: state.reports.size,
      lastDecision: state.lastDecision,
      decisions: state.decisions,
    };
  },
};

function step(state: AutoscalerActorState, message: AutoscalerMessage, ctx: StepContext): Step<AutoscalerActorState, AutoscalerMessage> {
  switch (message.type) {
    case 'as.configure': {
      if (!isCount(message.containerConcurrency) || message.containerConcurrency < 1) {
        return logOnly(state, `as.configure ignored: containerConcurrency must be an integer >= 1 requests, got ${message.containerConcurrency}`);
      }
      // A hold lasts at most one stable window of the config in force: a shorter window needs less history.
      const holdUntil = Math.min(state.scaler.holdUntil, ctx.now + message.config.stableWindowMs);
      const scaler = holdUntil === state.scaler.holdUntil ? state.scaler : { ...state.scaler, holdUntil };
      const next = { ...state, scaler, config: message.config, containerConcurrency: message.containerConcurrency, ticking: true };
      // Re-arm only when needed: re-arming on every update would postpone the tick each time.
      const arm = !state.ticking || state.config.tickMs !== message.config.tickMs;
      const tick: Effect<AutoscalerMessage>[] = arm ? [scheduleTick(next.config)] : [];
      // Bounds apply at once, not at the first tick (which may be a long tick away): a new function with
      // minScale gets its sandboxes now, and lowering maxScale scales down now.
      const current = state.sent ?? 0;
      const bounded = Math.min(Math.max(current, message.config.minScale), message.config.maxScale);
      if (bounded === current) return { state: next, effects: tick };
      const step = decided(next, { state: { ...next.scaler, desired: bounded }, desired: bounded, panic: next.panic, reason: bounded > current ? 'min-scale' : 'max-scale' }, ctx.now, { trigger: 'configure' });
      return { state: step.state, effects: [...tick, ...(step.effects ?? [])] };
    }
    case 'as.metric':
    case 'as.backlog': {
      if (!isCount(message.inFlight) || !isCount(message.queued)) {
        return logOnly(state, `${message.type} from ${message.dataplaneId} ignored: inFlight and queued must be integers >= 0, got ${message.inFlight}, ${message.queued}`);
      }
      const reported = message.type === 'as.metric' ? message.averageInFlight : undefined;
      if (reported !== undefined && !(Number.isFinite(reported) && reported >= 0)) {
        return logOnly(state, `as.metric from ${message.dataplaneId} ignored: averageInFlight must be a number >= 0 requests, got ${reported}`);
      }
      // A backlog report is a moment: the data plane's average stays that of its last period. A metric without an
      // average (an older data plane) counts its peak as its average.
      const average = message.type === 'as.metric' ? (reported ?? message.inFlight + message.queued) : (state.reports.get(message.dataplaneId)?.average ?? 0);
      const reports = new Map(state.reports).set(message.dataplaneId, { inFlight: message.inFlight, queued: message.queued, average, at: ctx.now });
      const sum = totals(reports);
      if (message.type === 'as.metric') {
        const scaler = recordObservation(state.scaler, state.config, sum.inFlight, ctx.now, sum.average);
        if (message.totals === undefined) return { state: { ...state, reports, scaler } };
        const problem = totalsProblem(message.totals);
        if (problem !== null) {
          const text = `as.metric from ${message.dataplaneId}: totals ignored (${problem})`;
          return { state: { ...state, reports, scaler }, effects: [{ type: 'log', level: 'warn', text }] };
        }
        const counters = new Map(state.counters).set(message.dataplaneId, nextCounters(state.counters.get(message.dataplaneId), message.totals));
        return { state: { ...state, reports, scaler, counters } };
      }
      const decision = onBacklog(
        state.scaler,
        state.config,
        { backlog: sum.queued, inFlight: sum.inFlight, ready: state.ready, containerConcurrency: state.containerConcurrency, grown: message.grown === true },
        ctx.now,
      );
      return decided({ ...state, reports }, decision, ctx.now, { trigger: 'backlog', backlog: sum.queued });
    }
    case 'as.tick': {
      const fresh = new Map([...state.reports].filter(([, report]) => ctx.now - report.at <= staleAfterMs(state.config)));
      const effects: Effect<AutoscalerMessage>[] = [];
      let scaler = state.scaler;
      if (fresh.size !== state.reports.size) {
        const dropped = [...state.reports.keys()].filter((id) => !fresh.has(id));
        effects.push({ type: 'log', level: 'debug', text: `dropped stale in-flight report(s) of ${dropped.join(', ')} (older than ${staleAfterMs(state.config)} ms)` });
        const sum = totals(fresh);
        scaler = recordObservation(scaler, state.config, sum.inFlight, ctx.now, sum.average);
      }
      const decision = tick(scaler, state.config, { ready: state.ready, containerConcurrency: state.containerConcurrency }, ctx.now);
      const windows = { stable: decision.stableAverage, panic: decision.panicAverage, bucket: decision.bucket };
      const result = decided({ ...state, reports: fresh, windows }, decision, ctx.now, { trigger: 'tick', stable: decision.stableAverage, panicWindow: decision.panicAverage });
      return { state: result.state, effects: [...effects, ...(result.effects ?? []), scheduleTick(state.config)] };
    }
    case 'as.ready':
      if (!isCount(message.ready)) return logOnly(state, `as.ready ignored: ready must be an integer >= 0, got ${message.ready}`);
      return { state: { ...state, ready: message.ready } };
    case 'as.hold':
      return { state: { ...state, scaler: holdScaleDown(state.scaler, message.untilMs) } };
    case 'as.status': {
      const stale = staleAfterMs(state.config);
      const fresh = [...state.reports.values()].filter((report) => ctx.now - report.at <= stale);
      const status: AutoscalerStatus = {
        desired: state.scaler.desired,
        ready: state.ready,
        panic: state.panic,
        observedInFlight: totals(state.reports).inFlight,
        observedAverage: round2(totals(state.reports).average),
        stableWindowAverage: state.windows === null ? null : round2(state.windows.stable),
        panicWindowAverage: state.windows === null ? null : round2(state.windows.panic),
        stableWindowMs: state.config.stableWindowMs,
        panicWindowMs: state.config.panicWindowMs,
        mode: state.scaler.mode.kind,
        recentDecisions: state.recent,
        queued: fresh.reduce((sum, report) => sum + report.queued, 0),
        lastDecision: state.lastDecision,
        decisions: state.decisions,
        totals: counterTotals(state.counters),
      };
      return { state, effects: ctx.replyTo ? [{ type: 'reply', to: ctx.replyTo, value: status }] : [] };
    }
    case 'as.stop':
      return { state: { ...state, ticking: false }, effects: [{ type: 'cancel', timer: TICK_TIMER }, { type: 'stop' }] };
    default:
      return assertNever(message, 'autoscaler message');
  }
}

/**
 * Records a decision and tells the function when the count differs from what it was last told. A decision is
 * kept in `recent` when it changes the count or its reason, so that a steady count does not push out the
 * decisions that led to it.
 */
function decided(
  state: AutoscalerActorState,
  decision: Decision,
  now: number,
  inputs: Pick<DecisionRecord, 'trigger' | 'stable' | 'panicWindow' | 'backlog'>,
): Step<AutoscalerActorState, AutoscalerMessage> {
  const last = state.recent.at(-1);
  const news = last === undefined || last.to !== decision.desired || last.reason !== decision.reason;
  const record: DecisionRecord = {
    at: now,
    from: state.scaler.desired,
    to: decision.desired,
    reason: decision.reason,
    panic: decision.panic,
    ready: state.ready,
    ...inputs,
    ...(inputs.stable === undefined ? {} : { stable: round2(inputs.stable) }),
    ...(inputs.panicWindow === undefined ? {} : { panicWindow: round2(inputs.panicWindow) }),
  };
  const next: AutoscalerActorState = {
    ...state,
    scaler: decision.state,
    panic: decision.panic,
    lastDecision: `${decision.reason} -> ${decision.desired} at ${now} ms`,
    recent: news ? [...state.recent, record].slice(-RECENT_DECISIONS) : state.recent,
  };
  if (decision.desired === state.sent) return { state: next };
  const scale: FunctionMessage = { type: 'fn.scale', desired: decision.desired, reason: decision.reason };
  return { state: { ...next, sent: decision.desired, decisions: state.decisions + 1 }, effects: [{ type: 'send', to: functionAddress(state.name), message: scale }] };
}

/** A data plane's counters after its report of `reported`: a decrease means its router restarted from 0. */
export function nextCounters(current: DataplaneCounters | undefined, reported: InvocationTotals): DataplaneCounters {
  if (current === undefined) return { latest: reported, offset: EMPTY_TOTALS };
  return { latest: reported, offset: isReset(current.latest, reported) ? addTotals(current.offset, current.latest) : current.offset };
}

/** The request counters over every data plane: what the control plane exports. */
export function counterTotals(counters: ReadonlyMap<string, DataplaneCounters>): InvocationTotals {
  let sum = EMPTY_TOTALS;
  for (const dp of counters.values()) sum = addTotals(addTotals(sum, dp.offset), dp.latest);
  return sum;
}

function scheduleTick(config: AutoscalerConfig): Effect<AutoscalerMessage> {
  return { type: 'schedule', afterMs: config.tickMs, message: { type: 'as.tick' }, timer: TICK_TIMER };
}

/** Sums over data planes: `inFlight` counts queued requests too (what the scaler sizes by); `average` likewise. */
function totals(reports: ReadonlyMap<string, DataplaneReport>): { readonly inFlight: number; readonly queued: number; readonly average: number } {
  let inFlight = 0;
  let queued = 0;
  let average = 0;
  for (const report of reports.values()) {
    inFlight += report.inFlight + report.queued;
    queued += report.queued;
    average += report.average;
  }
  return { inFlight, queued, average };
}

/** Two decimals: what a person reads of a fractional request count. */
function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

function isCount(value: number): boolean {
  return Number.isInteger(value) && value >= 0;
}

function logOnly(state: AutoscalerActorState, text: string): Step<AutoscalerActorState, AutoscalerMessage> {
  return { state, effects: [{ type: 'log', level: 'warn', text }] };
}
