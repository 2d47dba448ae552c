// The metrics Dirigent's paper plots for a trace replay (SOSP '24, Azure trace figures), from invocation records:
// - scheduling latency of an invocation = responseTime - actualDuration (the client's end-to-end time minus the
//   run time the function reported), ms;
// - per function, the mean of that over its successful invocations;
// - slowdown of a function = geometric mean of responseTime / requestedDuration over its successful invocations
//   whose ratio is >= 1.
// Only the execution phase counts (the warm-up's rows are dropped), and optionally its first `dropMinutes`
// trace minutes too (the paper drops the first 10). Failures are counted, not measured.
import { PHASE } from './arrivals.js';
import { minuteOf, type InvocationRecord } from './records.js';

export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

export interface RunMetrics {
  /** Rows measured (execution phase, after the dropped minutes). */
  readonly invocations: number;
  readonly failed: number;
  readonly connectionTimeouts: number;
  readonly functionTimeouts: number;
  /** null when the records do not say (the loader's own CSV). */
  readonly coldStarts: number | null;
  readonly functions: number;
  /** Per-invocation scheduling latency, ms. */
  readonly schedMs: Percentiles;
  /** Per-function mean scheduling latency, ms. */
  readonly perFunctionMeanMs: Percentiles;
  readonly slowdown: Percentiles;
  /** End to end, ms. */
  readonly responseMs: Percentiles;
  /** Scheduling latency of the calls served through a cold start, ms (NaN when none, or not recorded). */
  readonly coldStartSchedMs: Percentiles;
  /** What the data plane says those calls waited for their sandbox (`x-dirigent-queue-ms`), ms. */
  readonly coldStartQueueMs: Percentiles;
}

/** Sorted samples behind the percentiles, for CDF plots. */
export interface RunSamples {
  readonly schedMs: Float64Array;
  readonly perFunctionMeanMs: Float64Array;
  readonly slowdown: Float64Array;
}

export interface AnalyzeOptions {
  /** Execution-phase trace minutes to drop from the start, minutes. */
  readonly dropMinutes?: number;
}

/** The p-th percentile (0..100) of ascending `sorted`, interpolated linearly between ranks (numpy's default); NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const rank = (p / 100) * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

function percentiles(sorted: ArrayLike<number>): Percentiles {
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99) };
}

function sorted(values: number[]): Float64Array {
  return Float64Array.from(values).sort();
}

export function isFailure(r: InvocationRecord): boolean {
  return r.connectionTimeout || r.functionTimeout;
}

/** The rows a metric is computed over: execution phase, minus the first `dropMinutes` of it. */
export function measuredRows(records: readonly InvocationRecord[], options: AnalyzeOptions = {}): InvocationRecord[] {
  const execution = records.filter((r) => r.phase === PHASE.execution);
  const drop = options.dropMinutes ?? 0;
  if (drop <= 0) return execution;
  let first = Number.POSITIVE_INFINITY;
  for (const r of execution) first = Math.min(first, minuteOf(r.invocationID) ?? first);
  return execution.filter((r) => (minuteOf(r.invocationID) ?? Number.POSITIVE_INFINITY) >= first + drop);
}

export function analyze(records: readonly InvocationRecord[], options: AnalyzeOptions = {}): { metrics: RunMetrics; samples: RunSamples } {
  const rows = measuredRows(records, options);
  const sched: number[] = [];
  const response: number[] = [];
  const coldSched: number[] = [];
  const coldQueue: number[] = [];
  const byFunction = new Map<string, { schedSum: number; ok: number; logSlowdownSum: number; slowdowns: number }>();
  let connectionTimeouts = 0;
  let functionTimeouts = 0;
  let coldStarts = 0;
  let coldKnown = false;
  for (const r of rows) {
    const name = r.function ?? r.instance;
    let f = byFunction.get(name);
    if (f === undefined) byFunction.set(name, (f = { schedSum: 0, ok: 0, logSlowdownSum: 0, slowdowns: 0 }));
    if (r.coldStart !== undefined) {
      coldKnown = true;
      if (r.coldStart) coldStarts++;
    }
    if (r.connectionTimeout) connectionTimeouts++;
    else if (r.functionTimeout) functionTimeouts++;
    if (isFailure(r)) continue;
    const s = (r.responseTime - r.actualDuration) / 1000;
    sched.push(s);
    response.push(r.responseTime / 1000);
    if (r.coldStart === true) {
      coldSched.push(s);
      if (r.queueTime !== undefined) coldQueue.push(r.queueTime / 1000);
    }
    f.schedSum += s;
    f.ok++;
    const ratio = r.responseTime / r.requestedDuration;
    if (r.requestedDuration > 0 && ratio >= 1) {
      f.logSlowdownSum += Math.log(ratio);
      f.slowdowns++;
    }
  }
  const functions = [...byFunction.values()];
  const samples: RunSamples = {
    schedMs: sorted(sched),
    perFunctionMeanMs: sorted(functions.filter((f) => f.ok > 0).map((f) => f.schedSum / f.ok)),
    slowdown: sorted(functions.filter((f) => f.slowdowns > 0).map((f) => Math.exp(f.logSlowdownSum / f.slowdowns))),
  };
  return {
    metrics: {
      invocations: rows.length,
      failed: connectionTimeouts + functionTimeouts,
      connectionTimeouts,
      functionTimeouts,
      coldStarts: coldKnown ? coldStarts : null,
      functions: byFunction.size,
      schedMs: percentiles(samples.schedMs),
      perFunctionMeanMs: percentiles(samples.perFunctionMeanMs),
      slowdown: percentiles(samples.slowdown),
      responseMs: percentiles(sorted(response)),
      coldStartSchedMs: percentiles(sorted(coldSched)),
      coldStartQueueMs: percentiles(sorted(coldQueue)),
    },
    samples,
  };
}
