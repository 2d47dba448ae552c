import test from 'ava';
import { seededRandom } from '../../runtime/random.js';
import { buildSchedule, IAT_DISTRIBUTIONS, memoryForQuantile, minuteOffsetsUs, MINUTE_US, PHASE, runtimeForQuantile } from './arrivals.js';
import { readAzureTrace } from './azure-trace.js';

const SLICE = new URL('../../../cluster/experiments/fixtures/example-slice', import.meta.url).pathname;

test('every distribution: N ascending offsets inside the minute; unshifted ones start at the boundary', (t) => {
  for (const distribution of IAT_DISTRIBUTIONS) {
    for (const count of [1, 2, 7, 500]) {
      const offsets = minuteOffsetsUs(count, distribution, seededRandom(count));
      t.is(offsets.length, count);
      t.true(offsets.every((o, i) => o >= 0 && o < MINUTE_US && (i === 0 || o >= offsets[i - 1]!)), `${distribution} ${count}`);
      if (!distribution.endsWith('_shift')) t.is(offsets[0], 0);
    }
  }
  t.deepEqual(minuteOffsetsUs(0, 'exponential', seededRandom(1)), []);
});

test('equidistant: gaps of 60 s / N', (t) => {
  t.deepEqual(minuteOffsetsUs(4, 'equidistant', seededRandom(1)), [0, 15e6, 30e6, 45e6]);
});

test('exponential and uniform gaps are scaled so that N gaps fill the minute exactly', (t) => {
  // With the unscaled draws known, the offsets are their running sums scaled by 60 s / total.
  for (const distribution of ['exponential', 'uniform'] as const) {
    const draws = Array.from({ length: 5 }, seededRandom(9));
    const gaps = draws.map((u) => (distribution === 'exponential' ? -Math.log(1 - u) : u));
    const total = gaps.reduce((a, b) => a + b, 0);
    const expected = gaps.slice(0, 4).reduce<number[]>((acc, g) => [...acc, acc.at(-1)! + (g / total) * MINUTE_US], [0]);
    const offsets = minuteOffsetsUs(5, distribution, seededRandom(9));
    offsets.forEach((o, i) => t.true(Math.abs(o - expected[i]!) < 1e-6, `${distribution} offset ${i}`));
  }
});

test('exponential gaps have a coefficient of variation near 1 (Poisson arrivals within the minute)', (t) => {
  const offsets = minuteOffsetsUs(20_000, 'exponential', seededRandom(3));
  const gaps = offsets.slice(1).map((o, i) => o - offsets[i]!);
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / gaps.length);
  t.true(Math.abs(sd / mean - 1) < 0.05, `cv ${sd / mean}`);
});

test('run time and memory come from the percentile bracket the quantile falls in', (t) => {
  const d = { average: 0, count: 1, minimum: 0, maximum: 0, p0: 10, p1: 20, p25: 30, p50: 40, p75: 50, p99: 60, p100: 70 };
  const m = { sampleCount: 1, average: 0, p1: 100, p5: 110, p25: 120, p50: 130, p75: 140, p95: 150, p99: 160, p100: 170 };
  const half = () => 0.5;
  t.is(runtimeForQuantile(0, d, half), 10);
  t.is(runtimeForQuantile(0.3, d, half), 35);
  t.is(runtimeForQuantile(0.995, d, half), 65);
  t.is(memoryForQuantile(0.005, m, half), 100);
  t.is(memoryForQuantile(0.9, m, half), 145);
  t.is(runtimeForQuantile(0.6, { ...d, p50: 40, p75: 40 }, half), 40);
});

test('the schedule of the example slice: counts per minute, phases, sorted, and the same for the same seed', async (t) => {
  const fns = await readAzureTrace(SLICE);
  const make = (seed: number) => buildSchedule(fns, { minutes: 6, warmupMinutes: 1, distribution: 'exponential', iatRandom: seededRandom(seed), specRandom: seededRandom(seed) });
  const s = make(42);
  // Minute 0 skipped (warm-up present); minute 1 warm-up; minutes 2..7 measured. fn0: 7 x 5; fn1-3: minutes 5-7, 3 x 5.
  t.is(s.count, 35 + 3 * 15);
  t.is(s.firstMinute, 1);
  t.is(s.totalMinutes, 7);
  for (let i = 0; i < s.count; i++) {
    t.true(i === 0 || s.atUs[i]! >= s.atUs[i - 1]!);
    t.is(Math.floor(s.atUs[i]! / MINUTE_US), s.minute[i]! - 1);
    t.is(s.phase[i], s.minute[i] === 1 ? PHASE.warmup : PHASE.execution);
    const fn = fns[s.fn[i]!]!;
    t.true(s.runtimeMs[i]! >= Math.trunc(fn.durations.p0) && s.runtimeMs[i]! <= fn.durations.p100);
    t.true(s.memoryMiB[i]! >= Math.trunc(fn.memory.p1) && s.memoryMiB[i]! <= fn.memory.p100);
  }
  const again = make(42);
  t.deepEqual([again.atUs, again.runtimeMs, again.memoryMiB], [s.atUs, s.runtimeMs, s.memoryMiB]);
  t.notDeepEqual(make(43).atUs, s.atUs);
});

test('a replay longer than the trace is refused, naming the minutes', async (t) => {
  const fns = await readAzureTrace(SLICE);
  t.throws(() => buildSchedule(fns, { minutes: 8, warmupMinutes: 1, distribution: 'uniform', iatRandom: seededRandom(1), specRandom: seededRandom(1) }), { instanceOf: RangeError, message: /needs trace minutes 1\.\.9, but the trace has 8 minutes/ });
});
