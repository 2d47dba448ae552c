import test from 'ava';
import { seededRandom } from '../../runtime/random.js';
import { formatAzureTrace, parseAzureTrace } from './azure-trace.js';
import { synthesizeTrace } from './synth.js';

const fraction = <T>(xs: readonly T[], p: (x: T) => boolean) => xs.filter(p).length / xs.length;

test('the same seed gives the same trace, another seed another; the files parse back', (t) => {
  const a = synthesizeTrace({ functions: 20, minutes: 30, random: seededRandom(7) });
  t.deepEqual(synthesizeTrace({ functions: 20, minutes: 30, random: seededRandom(7) }), a);
  t.notDeepEqual(synthesizeTrace({ functions: 20, minutes: 30, random: seededRandom(8) }), a);
  const again = parseAzureTrace(formatAzureTrace(a));
  t.deepEqual(again, a);
  t.true(a.every((f) => f.invocations.length === 30));
});

test('the drawn functions follow the paper: about half under 1 s on average, rates over orders of magnitude', (t) => {
  const fns = synthesizeTrace({ functions: 4000, minutes: 60, random: seededRandom(1) });
  const underOneSecond = fraction(fns, (f) => f.durations.average < 1000);
  t.true(underOneSecond > 0.5 && underOneSecond < 0.62, `under 1 s: ${underOneSecond}`);
  const daily = fns.map((f) => f.durations.count);
  t.true(Math.abs(fraction(daily, (d) => d <= 24) - 0.45) < 0.04, 'about 45 % at most once an hour');
  t.true(Math.abs(fraction(daily, (d) => d <= 1440) - 0.81) < 0.04, 'about 81 % at most once a minute');
  t.true(Math.max(...daily) / Math.min(...daily) > 1e5, 'five orders of magnitude and more');
  const memory = fns.map((f) => f.memory.average).sort((x, y) => x - y);
  const median = memory[memory.length / 2]!;
  t.true(median > 120 && median < 160, `median memory ${median} MB (Burr fit: ~140)`);
  for (const f of fns) {
    const d = f.durations;
    t.true(d.p0 <= d.p1 && d.p1 <= d.p25 && d.p25 <= d.p50 && d.p50 <= d.p75 && d.p75 <= d.p99 && d.p99 <= d.p100 && d.p0 >= 1 && d.p100 <= 60_000);
    t.true(f.memory.p1 <= f.memory.p100 && f.memory.p1 >= 1);
  }
});

test('timer functions are periodic; others have bursty minutes', (t) => {
  const fns = synthesizeTrace({ functions: 3000, minutes: 240, random: seededRandom(2) });
  const timers = fns.filter((f) => f.trigger === 'timer');
  t.true(timers.length > 300);
  for (const f of timers) {
    const at = f.invocations.flatMap((c, m) => (c > 0 ? [m] : []));
    t.true(f.invocations.every((c) => c <= 1));
    const gaps = new Set(at.slice(1).map((m, i) => m - at[i]!));
    t.true(gaps.size <= 1, 'one period');
  }
  // A busy non-timer function: the variance of its minute counts exceeds the mean (Poisson alone: equal).
  const busy = fns.filter((f) => f.trigger !== 'timer' && f.invocations.reduce((a, b) => a + b, 0) / 240 > 20);
  t.true(busy.length > 10);
  const overdispersed = busy.filter((f) => {
    const mean = f.invocations.reduce((a, b) => a + b, 0) / f.invocations.length;
    const variance = f.invocations.reduce((a, c) => a + (c - mean) ** 2, 0) / f.invocations.length;
    return variance > 2 * mean;
  });
  t.true(overdispersed.length / busy.length > 0.5, `${overdispersed.length} of ${busy.length} bursty`);
});

test('bad sizes are refused with the range', (t) => {
  t.throws(() => synthesizeTrace({ functions: 0, minutes: 1, random: seededRandom(1) }), { message: /functions must be an integer in 1\.\.100000, got 0/ });
  t.throws(() => synthesizeTrace({ functions: 1, minutes: 1441, random: seededRandom(1) }), { message: /minutes must be an integer in 1\.\.1440/ });
});
