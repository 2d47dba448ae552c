// `dirigent trace synth`: a synthetic trace in the Azure Functions format (azure-trace.ts) whose functions are
// drawn from the distributions that "Serverless in the Wild" (Shahrad et al., USENIX ATC '20) reports for the
// 2019 Azure Functions workload. Pure and seeded: the same seed gives the same files.
//
// Where each number comes from ("paper" = the ATC '20 paper; "ours" = an assumption of this generator, where the
// paper gives a shape but no parameters):
// - Trigger of a function: the paper's share of functions per trigger group (Fig. 3: HTTP 55 %, timer 16 %,
//   queue 15 %, orchestration 7 %, event 2 %, others 5 %).
// - Invocation rate: log10(invocations per day) ~ Normal(1.60, 1.77), clamped to 1..10^8 a day. Fitted (ours) to
//   two points the paper states for applications (§3.2, Fig. 5): 45 % are invoked at most once an hour on
//   average, 81 % at most once a minute; the clamp spans the 8 orders of magnitude the paper reports.
// - Timer functions fire on a period (the paper: timers are the one trigger with regular inter-arrival
//   times, Fig. 6): one invocation every P minutes, P from {1, 5, 10, 15, 30, 60} (ours) so that their rate is
//   near the drawn one, at a random phase.
// - Other triggers: Poisson counts per minute around the rate, modulated by bursts (the paper: inter-arrival
//   times of many functions have a coefficient of variation above 1, Fig. 6). Bursts (ours): a burst starts in
//   a minute with probability 2 %, lasts a geometric number of minutes with mean 3, and multiplies the rate by
//   10; the calm rate is lowered so that the long-run mean stays the drawn rate.
// - Average run time: ln(seconds) ~ Normal(-0.38, 2.36), the log-normal fit the paper gives for function
//   average execution times (§3.4, Fig. 7), clamped to 1 ms..60 s (the loader's bounds): about half the
//   functions average under 1 s. Percentiles within a function: log-normal around that mean with a log
//   standard deviation uniform in 0.1..0.8 (ours).
// - Memory: the average allocated memory follows the Burr XII fit the paper gives for applications (§3.5,
//   Fig. 8: c = 11.652, k = 0.221, lambda = 107.08 MB), clamped to 1..10 240 MB; percentiles within a
//   function: log-normal spread with a log standard deviation uniform in 0.02..0.3 (ours).
import type { TraceFunction } from './azure-trace.js';
import type { Random } from './arrivals.js';

export interface SynthOptions {
  readonly functions: number;
  readonly minutes: number;
  readonly random: Random;
}

export const SYNTH_LIMITS = { functions: { min: 1, max: 100_000 }, minutes: { min: 1, max: 1440 } } as const;

const TRIGGERS: readonly (readonly [string, number])[] = [
  ['http', 0.55],
  ['timer', 0.16],
  ['queue', 0.15],
  ['orchestration', 0.07],
  ['event', 0.02],
  ['others', 0.05],
];
const LOG10_DAILY = { mean: 1.6, sd: 1.77, min: 0, max: 8 } as const;
const TIMER_PERIODS_MIN = [1, 5, 10, 15, 30, 60] as const;
const BURST = { startProbability: 0.02, meanMinutes: 3, multiplier: 10 } as const;
const LN_RUNTIME_S = { mean: -0.38, sd: 2.36 } as const;
const RUNTIME_MS = { min: 1, max: 60_000 } as const;
const BURR_MEMORY = { c: 11.652, k: 0.221, lambda: 107.08 } as const;
const MEMORY_MB = { min: 1, max: 10_240 } as const;
/** Standard normal quantiles of the trace's percentile columns (0 and 100 taken as 0.1 % and 99.9 %). */
const Z = { p0: -3.09, p1: -2.326, p5: -1.645, p25: -0.674, p50: 0, p75: 0.674, p95: 1.645, p99: 2.326, p100: 3.09 } as const;

function normal(random: Random): number {
  // Box-Muller; 1 - u keeps the logarithm finite.
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

function poisson(mean: number, random: Random): number {
  if (mean <= 0) return 0;
  if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * normal(random)));
  // Knuth: multiply uniforms until below e^-mean.
  const limit = Math.exp(-mean);
  let count = 0;
  for (let p = random(); p > limit; p *= random()) count++;
  return count;
}

const clamp = (x: number, r: { min: number; max: number }) => Math.min(r.max, Math.max(r.min, x));
const round3 = (x: number) => Math.round(x * 1000) / 1000;

function hex(random: Random, length: number): string {
  let s = '';
  while (s.length < length) s += Math.floor(random() * 16).toString(16);
  return s;
}

function pick<T>(weights: readonly (readonly [T, number])[], random: Random): T {
  let u = random() * weights.reduce((a, [, w]) => a + w, 0);
  for (const [value, w] of weights) if ((u -= w) < 0) return value;
  return weights[weights.length - 1]![0];
}

/** Per-minute counts of a function invoked `perDay` times a day on average. */
function minuteCounts(trigger: string, perDay: number, minutes: number, random: Random): number[] {
  const perMinute = perDay / 1440;
  if (trigger === 'timer') {
    // The period whose rate is nearest the drawn one (on a log scale), at a random phase.
    const period = TIMER_PERIODS_MIN.reduce((best, p) => (Math.abs(Math.log(1 / p / perMinute)) < Math.abs(Math.log(1 / best / perMinute)) ? p : best));
    const phase = Math.floor(random() * period);
    return Array.from({ length: minutes }, (_, m) => (m % period === phase ? 1 : 0));
  }
  const share = BURST.startProbability / (BURST.startProbability + 1 / BURST.meanMinutes);
  const calm = perMinute / (1 + (BURST.multiplier - 1) * share);
  let bursting = random() < share;
  return Array.from({ length: minutes }, () => {
    bursting = bursting ? random() >= 1 / BURST.meanMinutes : random() < BURST.startProbability;
    return poisson(bursting ? calm * BURST.multiplier : calm, random);
  });
}

export function synthesizeTrace(options: SynthOptions): TraceFunction[] {
  const { random } = options;
  for (const key of ['functions', 'minutes'] as const) {
    const r = SYNTH_LIMITS[key];
    if (!Number.isSafeInteger(options[key]) || options[key] < r.min || options[key] > r.max) throw new RangeError(`${key} must be an integer in ${r.min}..${r.max}, got ${options[key]}`);
  }
  return Array.from({ length: options.functions }, () => {
    const trigger = pick(TRIGGERS, random);
    const perDay = 10 ** clamp(LOG10_DAILY.mean + LOG10_DAILY.sd * normal(random), LOG10_DAILY);
    const averageMs = clamp(Math.exp(LN_RUNTIME_S.mean + LN_RUNTIME_S.sd * normal(random)) * 1000, RUNTIME_MS);
    const runSpread = 0.1 + 0.7 * random();
    // A log-normal with this mean: its median is mean * e^(-sd^2 / 2).
    const runMedian = averageMs * Math.exp(-(runSpread ** 2) / 2);
    const run = (z: number) => round3(clamp(runMedian * Math.exp(runSpread * z), RUNTIME_MS));
    const u = random();
    const memoryMb = clamp(BURR_MEMORY.lambda * ((1 - u) ** (-1 / BURR_MEMORY.k) - 1) ** (1 / BURR_MEMORY.c), MEMORY_MB);
    const memSpread = 0.02 + 0.28 * random();
    const mem = (z: number) => round3(clamp(memoryMb * Math.exp(memSpread * z), MEMORY_MB));
    const invocations = minuteCounts(trigger, perDay, options.minutes, random);
    return {
      hashOwner: hex(random, 64),
      hashApp: hex(random, 64),
      hashFunction: hex(random, 64),
      trigger,
      invocations,
      durations: {
        average: round3(averageMs),
        count: Math.max(1, Math.round(perDay)),
        minimum: run(Z.p0),
        maximum: run(Z.p100),
        p0: run(Z.p0),
        p1: run(Z.p1),
        p25: run(Z.p25),
        p50: run(Z.p50),
        p75: run(Z.p75),
        p99: run(Z.p99),
        p100: run(Z.p100),
      },
      memory: {
        sampleCount: Math.max(1, Math.round(perDay / 10)),
        average: round3(memoryMb),
        p1: mem(Z.p1),
        p5: mem(Z.p5),
        p25: mem(Z.p25),
        p50: mem(Z.p50),
        p75: mem(Z.p75),
        p95: mem(Z.p95),
        p99: mem(Z.p99),
        p100: mem(Z.p100),
      },
    };
  });
}
