// Knative's KPA on concurrency, as pure functions of (state, config, input, now): the autoscaler actor feeds
// in the data planes' in-flight sums and a tick, and gets back the sandbox count to converge to. Nothing here
// reads a clock, sleeps or draws randomness; `now` is in ms from the host's injected clock.
//
// Dirigent's defects fixed here:
// - scale from zero asks for ceil(backlog / target) sandboxes at once, not 1 first and the rest a tick later;
// - a backlog gets a decision at once (`onBacklog`), without waiting for the next tick;
// - the windows are whole ticks of the configured tick (`windowTicks`), not a fixed bucket count;
// - scale to zero also waits for `keepAliveMs` without any in-flight request, not only for an all-zero window.
// Issue 19 (fits the load): the windows average the demand, not each tick's peak (below); a queue is sized one
// sandbox per request only while it is gathered as a burst (`GATHER_MS`); no raise while sandboxes asked for
// are still starting (STARTING_WAIT); one request waiting behind one sandbox is no panic (`onBacklog`).
//
// Bucketing: every tick closes one bucket. Each data-plane report carries two figures of its report period:
// the PEAK in-flight count and the AVERAGE demand (the time-weighted average at sandboxes, Knative's queue-proxy
// metric, corrected for saturation by arrivals / dispatches: Little's law; actors/router-reports.ts). Their
// sums over data planes are gauges: a reported value stands until the next report, so a bucket starts at the
// values carried in from the previous one, and the bucket keeps the max of each gauge over the tick. The bucket
// holds average + (peak - average) * peakWeightPercent / 100: by default the average (0 %).
// Why the average: the peak (this port's metric before issue 19, still 100 %) counts a burst shorter than a tick
// as if it lasted the whole tick. 200 req/s of a 3 ms call needs 0.6 sandboxes by Little's law, but a 2 s peak
// of that load reads 5-10 (arrivals clump, a GC pause queues a few), so the stable window asked for 10 times the
// sandboxes needed, and their creation load fed the next peaks. The average does not under-count a burst either:
// arrivals beyond what the sandboxes take scale it up, and a burst that needs sandboxes at once is sized by its
// backlog (`onBacklog`), not by the windows.
// After a scale to zero the window is emptied and restarts with the first non-zero bucket (as Knative's buckets
// do when no pod reports), and averages run over the buckets present. Otherwise a minute of recorded zeros
// would dilute the first burst after an idle period and undo the backlog-sized scale-from-zero a tick later.

import { assertNever } from './actor.js';
import { MAX_SCALE_LIMIT, defaultAutoscalerConfig, type AutoscalerConfig } from './autoscaler-config.js';

export type ScalerMode =
  | { readonly kind: 'stable' }
  /**
   * `peak`: the highest count decided since panic began (sandboxes), which the count never drops below while
   * panicking. `calmTicks`: consecutive ticks without the panic condition; panic ends at one stable window.
   */
  | { readonly kind: 'panic'; readonly peak: number; readonly calmTicks: number };

export interface ScalerState {
  /** Closed buckets, oldest first, at most one stable window: in-flight requests of each tick (see the header). */
  readonly buckets: readonly number[];
  /** Max of the peak in-flight gauge seen so far in the open bucket (requests). */
  readonly bucketMax: number;
  /** Max of the average in-flight gauge seen so far in the open bucket (requests). */
  readonly bucketAverage: number;
  /** Latest in-flight sum reported (requests, the sum of the reports' peaks); stands until the next report. */
  readonly inFlight: number;
  /** Latest sum of the reports' time-weighted averages (requests, fractional); stands until the next report. */
  readonly average: number;
  /** When the in-flight sum last fell to 0 (ms); null while requests are in flight. */
  readonly idleSince: number | null;
  readonly mode: ScalerMode;
  /** Latest decided sandbox count (0 before the first decision). */
  readonly desired: number;
  /** The count may not decrease before this time (ms); see `holdScaleDown`. */
  readonly holdUntil: number;
  /**
   * When the current queue was first reported (ms): the start of its gathering (`GATHER_MS`); null before any
   * backlog report.
   */
  readonly burstSince: number | null;
}

/** What decided the count, for logs and transcripts. */
export type ScaleReason =
  /** Stable-window demand. */
  | 'stable'
  /** Panic-window demand. */
  | 'panic'
  /** Panic mode keeps its peak: the count never decreases while panicking. */
  | 'panic-no-decrease'
  /** Requests waiting with no sandbox: sized by the backlog (`onBacklog`, or a tick with no ready sandbox). */
  | 'backlog'
  /**
   * More demand while sandboxes asked for are still starting (ready below the last decision): decided once
   * they are ready (see `GATHER_MS` and `STARTING_WAIT`).
   */
  | 'starting-wait'
  /** A queue that grew over time, sized at most BACKLOG_GROWTH x max(ready, last decision). */
  | 'backlog-growth-limit'
  /** Capped at ready * maxScaleUpRate. */
  | 'scale-up-limit'
  /** Floored at floor(ready / maxScaleDownRate). */
  | 'scale-down-limit'
  /** Would scale to zero, but requests were in flight less than keepAliveMs ago. */
  | 'keep-alive'
  /** No decrease before `holdUntil` (leader reconstruction, or a recent backlog decision). */
  | 'hold'
  | 'min-scale'
  | 'max-scale';

export interface Decision {
  readonly state: ScalerState;
  /** Sandboxes the function should have (ready plus being created). */
  readonly desired: number;
  readonly panic: boolean;
  readonly reason: ScaleReason;
}

export interface TickDecision extends Decision {
  /** Mean of the stable window's buckets (in-flight requests). */
  readonly stableAverage: number;
  /** Mean of the panic window's buckets (in-flight requests). */
  readonly panicAverage: number;
  /** The bucket this tick closed (in-flight requests), and the two gauges it was made of. */
  readonly bucket: number;
  readonly bucketPeak: number;
  readonly bucketAverage: number;
}

export interface TickInput {
  /** Sandboxes ready to take requests. */
  readonly ready: number;
  /** Requests one sandbox runs at once (>= 1). */
  readonly containerConcurrency: number;
}

export interface BacklogInput {
  /** Requests queued with no sandbox to take them (a part of `inFlight`). */
  readonly backlog: number;
  /** All in-flight requests of the function, queued ones included: the sum `recordObservation` receives. */
  readonly inFlight: number;
  /** Sandboxes ready to take requests. */
  readonly ready: number;
  /** Requests one sandbox runs at once (>= 1). */
  readonly containerConcurrency: number;
  /**
   * The queue was reported before and has doubled since (it grew over time), rather than just formed (the
   * requests of one event-loop turn: a burst). Default false. See `BACKLOG_GROWTH`.
   */
  readonly grown?: boolean;
}

export type ConfigValidation =
  | { readonly ok: true; readonly config: AutoscalerConfig }
  | { readonly ok: false; readonly errors: readonly string[] };

/** Longest stable window accepted, ms (Knative's limit: one hour). */
export const MAX_STABLE_WINDOW_MS = 3_600_000;

/** Shortest tick accepted, ms: below this the timer and message overhead dominate the decision. */
export const MIN_TICK_MS = 100;

/**
 * A queue is a burst while it is being gathered: its reports within this long of its first (ms) size the count
 * one sandbox per waiting request, at once. The router reports a queue at the end of the event-loop turn in
 * which it formed (`grown` absent) and again each time it doubles (`grown`), so a burst spread over a few turns,
 * or over a few data planes, is gathered whole: 100 simultaneous first calls get 100 sandboxes, and a step
 * from 10 to 400 req/s of a 100 ms call gets its doublings 2, 3, 5, 9, 17, ... within a few ms.
 * After the gathering, a queue that keeps growing is a stream, not a burst: it asks for nothing more while
 * sandboxes asked for are still starting (`starting-wait`), and then for at most BACKLOG_GROWTH x max(ready,
 * last decision) per report. Sizing it one sandbox per waiting request asked for rate x creation time: 200 req/s
 * of a 1 ms call over a cold start slowed to 1 s by the creations themselves asked for 200 sandboxes, and
 * 50 req/s of a 100 ms call went 19, 48, 88, 167 as each round of creations slowed the sandboxes that served.
 */
// 100 ms: at 50 ms, bench:autoscale's 100 simultaneous first calls (100 connections opened together) reached a
// loaded data plane over more than the window, and only 53 were gathered; a stream of r req/s over the window
// asks for r / 10 sandboxes at most (20 at 200 req/s), which the stable window then takes back down.
export const GATHER_MS = 100;

/** See `GATHER_MS`: the most a grown queue's report multiplies max(ready, last decision) by. */
export const BACKLOG_GROWTH = 2;

// STARTING_WAIT. A tick does not raise the count while sandboxes it asked for are still starting (some ready,
// fewer than the last decision): creating sandboxes costs the CPU the ready ones serve with (50 ms each for a
// thread sandbox, on the same cores), so while they start the ready ones fall behind, and the windows read
// that as more demand. Waiting costs at most one creation time; a new burst is still sized at once by its
// backlog report, and a scale from zero (none ready) by the backlog.

export function initialScalerState(now: number): ScalerState {
  // Idle since creation: a function is not scaled to zero sooner than keepAliveMs after the scaler starts.
  return { buckets: [], bucketMax: 0, bucketAverage: 0, inFlight: 0, average: 0, idleSince: now, mode: { kind: 'stable' }, desired: 0, holdUntil: now, burstSince: null };
}

/** The windows in whole ticks: ceil(window / tick), at least 1. */
export function windowTicks(config: AutoscalerConfig): { readonly stable: number; readonly panic: number } {
  return {
    stable: Math.max(1, Math.ceil(config.stableWindowMs / config.tickMs)),
    panic: Math.max(1, Math.ceil(config.panicWindowMs / config.tickMs)),
  };
}

/**
 * A data-plane report of the function's in-flight sums (requests, summed over data planes by the caller): the
 * peak `inFlight` and the time-weighted `average` of the report periods. A report without an average (an older
 * data plane) counts its peak as its average. An average above the peak is taken as the peak (it cannot be).
 * Takes `config` only so that every entry point has the same (state, config, input, now) shape.
 */
export function recordObservation(state: ScalerState, config: AutoscalerConfig, inFlight: number, now: number, average: number = inFlight): ScalerState {
  requireCount('inFlight', inFlight);
  if (!Number.isFinite(average) || average < 0) throw new RangeError(`average must be a number >= 0 requests, got ${average}`);
  const mean = Math.min(average, inFlight);
  const idleSince = inFlight > 0 ? null : (state.idleSince ?? now);
  return { ...state, inFlight, average: mean, bucketMax: Math.max(state.bucketMax, inFlight), bucketAverage: Math.max(state.bucketAverage, mean), idleSince };
}

/** The open bucket's value: between its average (0 %) and its peak (100 %) by `peakWeightPercent`. */
export function bucketValue(state: ScalerState, config: AutoscalerConfig): number {
  return state.bucketAverage + ((state.bucketMax - state.bucketAverage) * config.peakWeightPercent) / 100;
}

/** One decision period: close the open bucket, average the windows, decide the sandbox count. */
export function tick(state: ScalerState, config: AutoscalerConfig, input: TickInput, now: number): TickDecision {
  requireCount('ready', input.ready);
  const sandboxesFor = sizer(config, input.containerConcurrency);
  const ticks = windowTicks(config);
  const bucket = bucketValue(state, config);
  const windowStarted = state.buckets.length > 0 || state.bucketMax > 0;
  const buckets = windowStarted ? [...state.buckets, bucket].slice(-ticks.stable) : state.buckets;
  const stableAverage = mean(buckets);
  const panicAverage = mean(buckets.slice(-ticks.panic));

  // With no ready sandbox every in-flight request is backlog; the windows may not show it yet. Past the
  // gathering of a scale from zero, the count asked for stands (see GATHER_MS).
  const gathering = state.burstSince === null || now - state.burstSince <= GATHER_MS;
  const backlogWant = input.ready === 0 ? (gathering ? sandboxesFor(state.inFlight) : Math.min(sandboxesFor(state.inFlight), Math.max(state.desired, 1))) : 0;
  const stableWant = sandboxesFor(stableAverage);
  const panicWant = sandboxesFor(panicAverage);
  const overThreshold = input.ready > 0 && panicWant >= (config.panicThresholdPercent / 100) * input.ready;

  const mode = nextMode(state.mode, overThreshold, Math.max(input.ready, state.desired), ticks.stable);
  let pick: Pick;
  switch (mode.kind) {
    case 'stable':
      pick = rateLimited(
        backlogWant > stableWant ? { count: backlogWant, reason: 'backlog' } : { count: stableWant, reason: 'stable' },
        input.ready,
        config,
      );
      break;
    case 'panic': {
      const wanted = rateLimited(
        backlogWant > panicWant ? { count: backlogWant, reason: 'backlog' } : { count: panicWant, reason: 'panic' },
        input.ready,
        config,
      );
      pick = wanted.count >= mode.peak ? wanted : { count: mode.peak, reason: 'panic-no-decrease' };
      break;
    }
    default:
      assertNever(mode, 'scaler mode');
  }

  // STARTING_WAIT: no increase while sandboxes asked for are still starting (ready below the last decision).
  if (input.ready > 0 && input.ready < state.desired && pick.count > state.desired) pick = { count: state.desired, reason: 'starting-wait' };
  if (pick.count === 0 && (input.ready > 0 || state.desired > 0) && !idleFor(state, config.keepAliveMs, now)) {
    pick = { count: 1, reason: 'keep-alive' };
  }
  pick = held(pick, state, input.ready, now);
  pick = withinBounds(pick, config);

  const next: ScalerState = {
    ...state,
    buckets: pick.count === 0 ? [] : buckets,
    bucketMax: state.inFlight,
    bucketAverage: state.average,
    mode: raisePeak(mode, pick.count),
    desired: pick.count,
  };
  return {
    state: next,
    desired: pick.count,
    panic: mode.kind === 'panic',
    reason: pick.reason,
    stableAverage,
    panicAverage,
    bucket,
    bucketPeak: state.bucketMax,
    bucketAverage: state.bucketAverage,
  };
}

/**
 * Requests are queued with no sandbox to take them: decide at once instead of at the next tick.
 * Asks for enough sandboxes for all in-flight requests, and at least `ready` plus enough for the backlog (ready
 * sandboxes may be busy below target); never decreases the count. The decision is then held for one panic
 * window, because the tick's averages take that long to take the burst in and would otherwise cancel the
 * sandboxes just asked for.
 */
export function onBacklog(state: ScalerState, config: AutoscalerConfig, input: BacklogInput, now: number): Decision {
  requireCount('backlog', input.backlog);
  requireCount('ready', input.ready);
  if (input.backlog > input.inFlight) {
    throw new RangeError(`backlog (${input.backlog} requests) exceeds inFlight (${input.inFlight} requests)`);
  }
  const sandboxesFor = sizer(config, input.containerConcurrency);
  // The backlog is a moment, not a period: it moves the peak gauge, and leaves the average to the next report.
  const observed = recordObservation(state, config, input.inFlight, now, state.average);
  const queueWant = Math.max(sandboxesFor(input.inFlight), input.ready + sandboxesFor(input.backlog));
  // A queue that just formed starts a gathering (GATHER_MS); a grown one after it is a stream.
  const grown = input.grown === true && state.burstSince !== null;
  const burstSince = grown ? state.burstSince : now;
  // With nothing asked for yet (or left), any queue is sized as a burst.
  const stream = grown && state.desired > 0 && now - (state.burstSince ?? now) > GATHER_MS;
  const growthCap = BACKLOG_GROWTH * Math.max(input.ready, state.desired);
  let pick: Pick;
  if (stream && input.ready < state.desired) pick = { count: Math.min(queueWant, state.desired), reason: 'starting-wait' };
  else if (stream && queueWant > growthCap) pick = rateLimited({ count: growthCap, reason: 'backlog-growth-limit' }, input.ready, config);
  else pick = rateLimited({ count: queueWant, reason: 'backlog' }, input.ready, config);
  const want = pick.count;
  const floor = Math.max(input.ready, state.desired);
  if (pick.count < floor) pick = { count: floor, reason: 'hold' };
  pick = withinBounds(pick, config);

  // A backlog that needs at least the panic threshold of the ready count is a burst: enter panic now, as
  // the next tick would, so that the stable window (still full of the calm before) cannot scale it back down.
  // Only when more requests wait than the ready sandboxes run: at 1 ready sandbox, any one request waiting
  // behind another reaches a 200 % threshold, and at 200 req/s of a 3 ms call that happens every few seconds
  // by chance alone; a panic holds its count for a stable window, so such chance queues added up to a
  // standing over-provisioning. The sandboxes the backlog asks for are still asked for.
  const runnable = input.ready * input.containerConcurrency;
  const burst = input.ready > 0 && input.backlog > runnable && want * 100 >= config.panicThresholdPercent * input.ready;
  const mode = burst && observed.mode.kind !== 'panic' ? ({ kind: 'panic', peak: pick.count, calmTicks: 0 } as const) : raisePeak(observed.mode, pick.count);
  const holdUntil = Math.max(state.holdUntil, now + windowTicks(config).panic * config.tickMs);
  const next: ScalerState = { ...observed, mode, desired: pick.count, holdUntil, burstSince };
  return { state: next, desired: pick.count, panic: mode.kind === 'panic', reason: pick.reason };
}

/**
 * No decrease below the ready count or the last decision before `untilMs` (ms). A new leader calls this with
 * now + one stable window: its windows are empty, and they would otherwise read as no demand.
 */
export function holdScaleDown(state: ScalerState, untilMs: number): ScalerState {
  return { ...state, holdUntil: Math.max(state.holdUntil, untilMs) };
}

/**
 * Merges `partial` onto Dirigent's defaults and checks every field. Fields set to `undefined` keep their
 * default. Each error names the field, the rule with its unit, and the value given.
 */
export function validateAutoscalerConfig(partial: unknown): ConfigValidation {
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial)) {
    return { ok: false, errors: [`autoscaler config must be an object, got ${show(partial)}`] };
  }
  const errors: string[] = [];
  const given = partial as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...defaultAutoscalerConfig };
  for (const [key, value] of Object.entries(given)) {
    if (!Object.hasOwn(defaultAutoscalerConfig, key)) {
      errors.push(`unknown field ${JSON.stringify(key)}; known fields: ${Object.keys(defaultAutoscalerConfig).join(', ')}`);
    } else if (value !== undefined) {
      merged[key] = value;
    }
  }

  const valid = new Set<string>();
  const check = (field: keyof AutoscalerConfig, ok: (value: number) => boolean, rule: string): void => {
    const value = merged[field];
    if (typeof value === 'number' && Number.isFinite(value) && ok(value)) valid.add(field);
    else errors.push(`${field} must be ${rule}, got ${show(value)}`);
  };
  check('tickMs', (v) => Number.isInteger(v) && v >= MIN_TICK_MS, `an integer >= ${MIN_TICK_MS} ms`);
  check('stableWindowMs', (v) => Number.isInteger(v) && v >= 1 && v <= MAX_STABLE_WINDOW_MS, `an integer between 1 and ${MAX_STABLE_WINDOW_MS} ms`);
  check('panicWindowMs', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1 ms');
  check('panicThresholdPercent', (v) => v > 100, 'a number > 100 %');
  check('maxScaleUpRate', (v) => v >= 1, 'a number >= 1 (factor of the ready count per tick)');
  check('maxScaleDownRate', (v) => v > 1, 'a number > 1 (divisor of the ready count per tick)');
  check('targetUtilizationPercent', (v) => v > 0 && v <= 100, 'a number > 0 and <= 100 %');
  check('minScale', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0 sandboxes');
  check('maxScale', (v) => Number.isInteger(v) && v >= 1 && v <= MAX_SCALE_LIMIT, `an integer between 1 and ${MAX_SCALE_LIMIT} sandboxes`);
  check('keepAliveMs', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0 ms');
  check('peakWeightPercent', (v) => v >= 0 && v <= 100, 'a number between 0 and 100 %');

  // Cross-field rules, only between fields that passed on their own.
  const num = (field: keyof AutoscalerConfig): number => merged[field] as number;
  const both = (a: keyof AutoscalerConfig, b: keyof AutoscalerConfig): boolean => valid.has(a) && valid.has(b);
  if (both('stableWindowMs', 'tickMs') && num('stableWindowMs') < num('tickMs')) {
    errors.push(`stableWindowMs must be >= tickMs (${num('tickMs')} ms), got ${num('stableWindowMs')}`);
  }
  if (both('panicWindowMs', 'tickMs') && num('panicWindowMs') < num('tickMs')) {
    errors.push(`panicWindowMs must be >= tickMs (${num('tickMs')} ms), got ${num('panicWindowMs')}`);
  }
  if (both('panicWindowMs', 'stableWindowMs') && num('panicWindowMs') > num('stableWindowMs')) {
    errors.push(`panicWindowMs must be <= stableWindowMs (${num('stableWindowMs')} ms), got ${num('panicWindowMs')}`);
  }
  if (both('minScale', 'maxScale') && num('minScale') > num('maxScale')) {
    errors.push(`minScale must be <= maxScale (${num('maxScale')} sandboxes), got ${num('minScale')}`);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, config: Object.freeze(merged as unknown as AutoscalerConfig) };
}

interface Pick {
  readonly count: number;
  readonly reason: ScaleReason;
}

function nextMode(mode: ScalerMode, overThreshold: boolean, panicFloor: number, stableTicks: number): ScalerMode {
  switch (mode.kind) {
    case 'stable':
      return overThreshold ? { kind: 'panic', peak: panicFloor, calmTicks: 0 } : mode;
    case 'panic': {
      if (overThreshold) return { ...mode, calmTicks: 0 };
      const calmTicks = mode.calmTicks + 1;
      return calmTicks >= stableTicks ? { kind: 'stable' } : { ...mode, calmTicks };
    }
    default:
      return assertNever(mode, 'scaler mode');
  }
}

/**
 * In panic the peak follows every final decision (a hold or onBacklog may exceed the panic demand); otherwise
 * a later tick in the same panic could fall back below it.
 */
function raisePeak(mode: ScalerMode, count: number): ScalerMode {
  return mode.kind === 'panic' && count > mode.peak ? { ...mode, peak: count } : mode;
}

/** Rate limits relative to the ready count; with none ready there is nothing to be relative to. */
function rateLimited(pick: Pick, ready: number, config: AutoscalerConfig): Pick {
  if (ready === 0) return pick;
  const up = Math.ceil(ready * config.maxScaleUpRate);
  const down = Math.floor(ready / config.maxScaleDownRate);
  if (pick.count > up) return { count: up, reason: 'scale-up-limit' };
  if (pick.count < down) return { count: down, reason: 'scale-down-limit' };
  return pick;
}

function held(pick: Pick, state: ScalerState, ready: number, now: number): Pick {
  const floor = Math.max(ready, state.desired);
  return now < state.holdUntil && pick.count < floor ? { count: floor, reason: 'hold' } : pick;
}

function withinBounds(pick: Pick, config: AutoscalerConfig): Pick {
  if (pick.count < config.minScale) return { count: config.minScale, reason: 'min-scale' };
  if (pick.count > config.maxScale) return { count: config.maxScale, reason: 'max-scale' };
  return pick;
}

function idleFor(state: ScalerState, keepAliveMs: number, now: number): boolean {
  return state.idleSince !== null && now - state.idleSince >= keepAliveMs;
}

/**
 * Sandboxes needed for a number of in-flight requests at the target of containerConcurrency *
 * targetUtilizationPercent / 100 requests per sandbox. Computed as requests * 100 / (concurrency * percent) so
 * that exact multiples stay exact: 21 requests at a target of 0.7 is 21 / 0.7 = 30.000000000000004 in floating
 * point, and ceil would ask for 31 sandboxes.
 */
function sizer(config: AutoscalerConfig, containerConcurrency: number): (requests: number) => number {
  if (!Number.isInteger(containerConcurrency) || containerConcurrency < 1) {
    throw new RangeError(`containerConcurrency must be an integer >= 1 requests, got ${containerConcurrency}`);
  }
  const percentPerSandbox = containerConcurrency * config.targetUtilizationPercent;
  return (requests) => Math.ceil((requests * 100) / percentPerSandbox);
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((sum, v) => sum + v, 0) / values.length;
}

function requireCount(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`${name} must be an integer >= 0, got ${value}`);
}

function show(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint' || value === undefined) return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
