// When each invocation of a trace is sent, and what it asks for: the in-vitro loader's specification generator
// (vhive-serverless/loader, pkg/generator/specification.go), with the random source injected.
//
// Arrivals, per function and per minute with N > 0 invocations: draw N gaps (exponential: Exp(1); uniform:
// U[0,1); equidistant: all equal), scale them to sum to exactly 60 s, and send the first invocation at the minute
// boundary, each next one a gap later (the last gap leads to the next minute). The `_shift` variants cut the
// minute's gaps at a uniform point and rotate them, so the first invocation is not at the boundary. A minute
// with no invocation is 60 s of silence. Functions are generated one after the other from one random stream for
// the gaps and another for run times and memory, as the loader does (both seeded with the same seed).
//
// Run time and memory, per invocation: a uniform quantile picks the two percentiles of the function's
// distribution that bracket it, and a uniform integer between them is the value (the loader's
// GenerateExecuteSpec / GenerateMemorySpec), clamped to 1..60 000 ms and 1..10 240 MiB.
//
// The random streams are ours (mulberry32, runtime/random.ts), not Go's math/rand: with the same seed the
// schedule differs from the loader's, its distribution does not.
import type { DurationStats, MemoryStats, TraceFunction } from './azure-trace.js';

export const IAT_DISTRIBUTIONS = ['exponential', 'uniform', 'equidistant', 'exponential_shift', 'uniform_shift', 'equidistant_shift'] as const;
export type IatDistribution = (typeof IAT_DISTRIBUTIONS)[number];

/** One minute, µs. */
export const MINUTE_US = 60_000_000;
/** The loader's bounds on a requested run time (ms) and memory (MiB). */
export const RUNTIME_MS = { min: 1, max: 60_000 } as const;
export const MEMORY_MIB = { min: 1, max: 10_240 } as const;
/** Redraws of a zero gap before giving up (the loader exits on one; a uniform draw of exactly 0 is ~2^-32). */
const ZERO_GAP_REDRAWS = 100;

/** Uniform in [0, 1). */
export type Random = () => number;

function gap(distribution: 'exponential' | 'uniform', random: Random): number {
  for (let i = 0; i < ZERO_GAP_REDRAWS; i++) {
    const u = random();
    const g = distribution === 'exponential' ? -Math.log(1 - u) : u;
    if (g > 0) return g;
  }
  throw new Error(`the random source gave ${ZERO_GAP_REDRAWS} zero gaps in a row`);
}

/**
 * The offsets of `count` invocations within one minute, µs from its start, ascending; every offset < 60 s.
 * Draws from `random` exactly as the loader draws from its IAT generator for that minute.
 */
export function minuteOffsetsUs(count: number, distribution: IatDistribution, random: Random): number[] {
  if (count === 0) return [];
  const shift = distribution.endsWith('_shift');
  const base = distribution.replace('_shift', '') as 'exponential' | 'uniform' | 'equidistant';
  const gaps = new Array<number>(count);
  if (base === 'equidistant') gaps.fill(MINUTE_US / count);
  else {
    let total = 0;
    for (let i = 0; i < count; i++) total += gaps[i] = gap(base, random);
    for (let i = 0; i < count; i++) gaps[i] = (gaps[i]! / total) * MINUTE_US;
  }
  // Unshifted: the first invocation at the boundary, then one per gap; the last gap ends the minute.
  let first = 0;
  let order = gaps;
  if (shift) {
    // Cut at a uniform point: the invocation after the cut comes first, the gaps wrap around the minute.
    const split = random() * MINUTE_US;
    let sum = 0;
    let i = 0;
    for (; i < count - 1; i++) {
      sum += gaps[i]!;
      if (sum > split) break;
    }
    if (i === count - 1) sum += gaps[i]!;
    first = sum - split;
    order = [...gaps.slice(i + 1), ...gaps.slice(0, i + 1)];
  }
  const offsets = new Array<number>(count);
  let at = first;
  for (let i = 0; i < count; i++) {
    offsets[i] = Math.min(at, MINUTE_US - 1);
    at += order[i]!;
  }
  return offsets;
}

/** A uniform integer in [min, max) (Go's `rand.Intn(max-min) + min` on the truncated bounds), or min when equal. */
function intBetween(random: Random, min: number, max: number): number {
  const lo = Math.trunc(min);
  const hi = Math.trunc(max);
  if (hi < lo) throw new Error(`percentiles out of order: ${min} > ${max}`);
  return hi === lo ? lo : lo + Math.floor(random() * (hi - lo));
}

/** Run time, ms, for the uniform quantile `q`; further draws from `random` as the loader's GenerateExecuteSpec. */
export function runtimeForQuantile(q: number, d: DurationStats, random: Random): number {
  if (q === 0) return Math.trunc(d.p0);
  if (q <= 0.01) return intBetween(random, d.p0, d.p1);
  if (q <= 0.25) return intBetween(random, d.p1, d.p25);
  if (q <= 0.5) return intBetween(random, d.p25, d.p50);
  if (q <= 0.75) return intBetween(random, d.p50, d.p75);
  if (q <= 0.99) return intBetween(random, d.p75, d.p99);
  return intBetween(random, d.p99, d.p100);
}

/** Memory, MiB, for the uniform quantile `q`, as the loader's GenerateMemorySpec. */
export function memoryForQuantile(q: number, m: MemoryStats, random: Random): number {
  if (q <= 0.01) return Math.trunc(m.p1);
  if (q <= 0.05) return intBetween(random, m.p1, m.p5);
  if (q <= 0.25) return intBetween(random, m.p5, m.p25);
  if (q <= 0.5) return intBetween(random, m.p25, m.p50);
  if (q <= 0.75) return intBetween(random, m.p50, m.p75);
  if (q <= 0.95) return intBetween(random, m.p75, m.p95);
  if (q <= 0.99) return intBetween(random, m.p95, m.p99);
  return intBetween(random, m.p99, m.p100);
}

const clamp = (x: number, r: { min: number; max: number }) => Math.min(r.max, Math.max(r.min, x));

export interface ScheduleOptions {
  /** Minutes of the execution phase. */
  readonly minutes: number;
  /** Minutes of the warm-up phase; with any, minute 0 of the trace is skipped, as the loader skips it. */
  readonly warmupMinutes: number;
  readonly distribution: IatDistribution;
  /** Independent streams for gaps and for run time and memory; the loader seeds both with its seed. */
  readonly iatRandom: Random;
  readonly specRandom: Random;
}

/** The loader's phases, as its CSV numbers them. */
export const PHASE = { warmup: 1, execution: 2 } as const;

/** Every invocation to send, sorted by time. Columns of one array each (a long trace has millions of rows). */
export interface Schedule {
  readonly count: number;
  /** µs from the start of the replay, trace time (before any compression). */
  readonly atUs: Float64Array;
  /** Index into the trace's functions. */
  readonly fn: Int32Array;
  /** Minute of the trace (0-based) and index within that minute: the loader's invocationID `min<m>.inv<i>`. */
  readonly minute: Int32Array;
  readonly index: Int32Array;
  readonly runtimeMs: Int32Array;
  readonly memoryMiB: Int32Array;
  readonly phase: Uint8Array;
  /** The trace minutes replayed: [first, first + warm-up + minutes). */
  readonly firstMinute: number;
  readonly totalMinutes: number;
}

/** The trace minutes a replay covers: minute 0 is skipped when there is a warm-up (the loader's profiling minute). */
export function replayedMinutes(options: Pick<ScheduleOptions, 'minutes' | 'warmupMinutes'>): { first: number; end: number } {
  const first = options.warmupMinutes > 0 ? 1 : 0;
  return { first, end: first + options.warmupMinutes + options.minutes };
}

export function buildSchedule(functions: readonly TraceFunction[], options: ScheduleOptions): Schedule {
  const { first, end } = replayedMinutes(options);
  const available = Math.min(...functions.map((f) => f.invocations.length));
  if (functions.length === 0) throw new RangeError('the trace has no functions');
  if (end > available) throw new RangeError(`the replay needs trace minutes ${first}..${end - 1}, but the trace has ${available} minute${available === 1 ? '' : 's'}`);
  const rows: { at: number; fn: number; minute: number; index: number; runtime: number; memory: number }[] = [];
  functions.forEach((f, fn) => {
    // Generated over every minute up to the end, so that a row's draws do not depend on where the replay starts.
    for (let minute = 0; minute < end; minute++) {
      const offsets = minuteOffsetsUs(f.invocations[minute]!, options.distribution, options.iatRandom);
      for (let index = 0; index < offsets.length; index++) {
        const runQ = options.specRandom();
        const memQ = options.specRandom();
        const runtime = clamp(runtimeForQuantile(runQ, f.durations, options.specRandom), RUNTIME_MS);
        const memory = clamp(memoryForQuantile(memQ, f.memory, options.specRandom), MEMORY_MIB);
        if (minute >= first) rows.push({ at: (minute - first) * MINUTE_US + offsets[index]!, fn, minute, index, runtime, memory });
      }
    }
  });
  rows.sort((a, b) => a.at - b.at || a.fn - b.fn || a.index - b.index);
  const n = rows.length;
  const schedule: Schedule = {
    count: n,
    atUs: new Float64Array(n),
    fn: new Int32Array(n),
    minute: new Int32Array(n),
    index: new Int32Array(n),
    runtimeMs: new Int32Array(n),
    memoryMiB: new Int32Array(n),
    phase: new Uint8Array(n),
    firstMinute: first,
    totalMinutes: end - first,
  };
  rows.forEach((r, i) => {
    schedule.atUs[i] = r.at;
    schedule.fn[i] = r.fn;
    schedule.minute[i] = r.minute;
    schedule.index[i] = r.index;
    schedule.runtimeMs[i] = r.runtime;
    schedule.memoryMiB[i] = r.memory;
    schedule.phase[i] = r.minute < first + options.warmupMinutes ? PHASE.warmup : PHASE.execution;
  });
  return schedule;
}

/** The loader's invocation id: `min<minute>.inv<index>`. */
export function invocationId(minute: number, index: number): string {
  return `min${minute}.inv${index}`;
}
