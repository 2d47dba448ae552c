import test from 'ava';
import { defaultAutoscalerConfig, type AutoscalerConfig } from './autoscaler-config.js';
import {
  holdScaleDown,
  initialScalerState,
  onBacklog,
  recordObservation,
  tick,
  validateAutoscalerConfig,
  windowTicks,
  type BacklogInput,
  type Decision,
  type ScaleReason,
  type ScalerState,
  type TickDecision,
} from './autoscaler.js';

function config(partial: Partial<AutoscalerConfig> = {}): AutoscalerConfig {
  const result = validateAutoscalerConfig(partial);
  if (!result.ok) throw new Error(result.errors.join('; '));
  return result.config;
}

/** Drives the pure scaler with scripted time: ticks fall every tickMs, reports arrive right after a tick. */
class Script {
  state: ScalerState;
  now: number;
  constructor(
    readonly config: AutoscalerConfig = defaultAutoscalerConfig,
    start = 0,
  ) {
    this.state = initialScalerState(start);
    this.now = start;
  }

  observe(inFlight: number): this {
    this.state = recordObservation(this.state, this.config, inFlight, this.now);
    return this;
  }

  tick(ready: number, containerConcurrency = 1): TickDecision {
    this.now += this.config.tickMs;
    const decision = tick(this.state, this.config, { ready, containerConcurrency }, this.now);
    this.state = decision.state;
    return decision;
  }

  /** `ticks` ticks at a constant in-flight sum; `ready` is fixed, or follows the previous decision. */
  run(inFlight: number, ticks: number, ready: number | 'follow', containerConcurrency = 1): TickDecision[] {
    const decisions: TickDecision[] = [];
    for (let i = 0; i < ticks; i += 1) {
      this.observe(inFlight);
      decisions.push(this.tick(ready === 'follow' ? this.state.desired : ready, containerConcurrency));
    }
    return decisions;
  }

  backlog(input: BacklogInput, afterMs: number): Decision {
    const decision = onBacklog(this.state, this.config, input, this.now + afterMs);
    this.state = decision.state;
    return decision;
  }
}

function last<T>(items: readonly T[]): T {
  const item = items[items.length - 1];
  if (item === undefined) throw new Error('empty');
  return item;
}

const desiredOf = (decisions: readonly Decision[]): number[] => decisions.map((d) => d.desired);

test('windows are whole ticks of the configured tick', (t) => {
  const cases: { tickMs: number; stableWindowMs: number; panicWindowMs: number; stable: number; panic: number }[] = [
    { tickMs: 2000, stableWindowMs: 60_000, panicWindowMs: 6000, stable: 30, panic: 3 },
    { tickMs: 1000, stableWindowMs: 10_000, panicWindowMs: 3000, stable: 10, panic: 3 },
    { tickMs: 1500, stableWindowMs: 10_000, panicWindowMs: 2000, stable: 7, panic: 2 },
    { tickMs: 5000, stableWindowMs: 6000, panicWindowMs: 5000, stable: 2, panic: 1 },
  ];
  for (const c of cases) {
    const { stable, panic, ...partial } = c;
    t.deepEqual(windowTicks(config(partial)), { stable, panic }, JSON.stringify(partial));
  }
});

test('stable mode: a steady load gets ceil(load / target) sandboxes', (t) => {
  const cases: { name: string; load: number; containerConcurrency: number; targetUtilizationPercent: number; want: number }[] = [
    { name: 'one request per sandbox', load: 10, containerConcurrency: 1, targetUtilizationPercent: 100, want: 10 },
    { name: 'concurrency 4 rounds up', load: 10, containerConcurrency: 4, targetUtilizationPercent: 100, want: 3 },
    { name: '70 % of 1: exact multiple stays exact', load: 21, containerConcurrency: 1, targetUtilizationPercent: 70, want: 30 },
    { name: '70 % of 10', load: 7, containerConcurrency: 10, targetUtilizationPercent: 70, want: 1 },
  ];
  for (const c of cases) {
    const script = new Script(config({ targetUtilizationPercent: c.targetUtilizationPercent }));
    const decisions = script.run(c.load, 40, c.want, c.containerConcurrency);
    for (const d of decisions) {
      t.is(d.desired, c.want, c.name);
      t.is(d.reason, 'stable', c.name);
      t.false(d.panic, c.name);
    }
    t.is(last(decisions).stableAverage, c.load, c.name);
  }
});

test('the per-tick bucket keeps the max in-flight sum, and the last report carries into the next bucket', (t) => {
  const script = new Script(config({ minScale: 1 }));
  script.observe(3).observe(9).observe(2);
  t.is(script.tick(1).stableAverage, 9);
  // The next bucket starts at 2, the sum standing since the last report.
  t.is(script.tick(1).stableAverage, (9 + 2) / 2);
  // A report of 0 ends the bucket's 2 only from the report on: the bucket still saw 2.
  script.observe(0);
  t.is(script.tick(1).stableAverage, (9 + 2 + 2) / 3);
  t.is(script.tick(1).stableAverage, (9 + 2 + 2 + 0) / 4);
});

test('panic starts at 200 % of ready, the count never decreases in it, and it ends after a full stable window', (t) => {
  const script = new Script();
  script.run(10, 30, 10);

  // Load quadruples: panic window (10 + 10 + 40) / 3 = 20 >= 2 * 10 ready.
  script.observe(40);
  const entry = script.tick(10);
  t.true(entry.panic);
  t.is(entry.desired, 20);
  t.is(entry.reason, 'panic');

  // Still over the threshold: the panic window now says 30. While the 10 more asked for are starting (10
  // ready of 20), the count waits for them (STARTING_WAIT: their creation load is no measure of demand) ...
  script.observe(40);
  const starting = script.tick(10);
  t.true(starting.panic);
  t.is(starting.desired, 20);
  t.is(starting.reason, 'starting-wait');
  // ... and once they are ready it follows the panic window: its last 3 buckets are all 40 now, (40 + 40 + 40)
  // / 3 = 40 sandboxes, >= 200 % of the 20 ready.
  script.observe(40);
  const second = script.tick(20);
  t.true(second.panic);
  t.is(second.desired, 40);

  // 40 ready and the load falls back to 10: calm from here on, and the count stays at its peak.
  const calm = script.run(10, 30, 40);
  const inPanic = calm.slice(0, 29);
  t.true(inPanic.every((d) => d.panic), 'panic holds for 29 calm ticks');
  // The first calm bucket still saw the 40 carried in; after it the panic window falls, the count does not.
  t.deepEqual(desiredOf(inPanic), Array<number>(29).fill(40));
  t.is(inPanic[0]?.reason, 'panic');
  t.true(inPanic.slice(1).every((d) => d.reason === 'panic-no-decrease'));

  // The 30th calm tick completes a stable window (60 s) without the condition: back to stable mode, where
  // the count may fall, by at most half of the 40 ready.
  const exit = last(calm);
  t.false(exit.panic);
  t.is(exit.desired, 20);
  t.is(exit.reason, 'scale-down-limit');
});

test('a panic condition during the calm period restarts the stable window', (t) => {
  const script = new Script();
  script.run(10, 30, 10);
  script.observe(40);
  t.true(script.tick(10).panic);
  const calm1 = script.run(10, 20, 40);
  t.true(calm1.every((d) => d.panic));
  // 200 in flight against 40 ready: panic window (10 + 10 + 200) / 3 -> 74, not >= 80 yet; the next is.
  const burst = script.run(200, 2, 40);
  t.true(burst.every((d) => d.panic));
  const calm2 = script.run(10, 30, 200);
  t.true(calm2.slice(0, 29).every((d) => d.panic));
  t.false(last(calm2).panic);
});

test('rate limits are relative to the ready count', (t) => {
  const cases: { name: string; partial: Partial<AutoscalerConfig>; load: number; ready: number; want: number; reason: ScaleReason }[] = [
    { name: 'up: at most ready * maxScaleUpRate', partial: { maxScaleUpRate: 2 }, load: 100, ready: 5, want: 10, reason: 'scale-up-limit' },
    { name: 'up: default rate 1000', partial: {}, load: 5000, ready: 2, want: 2000, reason: 'scale-up-limit' },
    { name: 'up: fractional rate rounds up', partial: { maxScaleUpRate: 1.5 }, load: 100, ready: 3, want: 5, reason: 'scale-up-limit' },
    { name: 'up: none ready, sized by demand', partial: { maxScaleUpRate: 2 }, load: 100, ready: 0, want: 100, reason: 'stable' },
    { name: 'down: at least floor(ready / 2)', partial: {}, load: 1, ready: 16, want: 8, reason: 'scale-down-limit' },
    { name: 'down: rate 4', partial: { maxScaleDownRate: 4 }, load: 1, ready: 17, want: 4, reason: 'scale-down-limit' },
    { name: 'down: within the limit', partial: {}, load: 10, ready: 16, want: 10, reason: 'stable' },
  ];
  for (const c of cases) {
    const script = new Script(config(c.partial));
    script.observe(c.load);
    const d = script.tick(c.ready);
    t.is(d.desired, c.want, c.name);
    t.is(d.reason, c.reason, c.name);
  }
});

test('scale-down halves per tick at most, following the ready count', (t) => {
  const script = new Script(config({ keepAliveMs: 0 }));
  t.is(script.tick(16).desired, 8);
  t.deepEqual(desiredOf(script.run(0, 4, 'follow')), [4, 2, 1, 0]);
});

test('bounds clamp the count', (t) => {
  const cases: { name: string; partial: Partial<AutoscalerConfig>; load: number; ready: number; want: number; reason: ScaleReason }[] = [
    { name: 'minScale with no load', partial: { minScale: 3 }, load: 0, ready: 3, want: 3, reason: 'min-scale' },
    { name: 'minScale from nothing', partial: { minScale: 2 }, load: 0, ready: 0, want: 2, reason: 'min-scale' },
    { name: 'maxScale under load', partial: { maxScale: 5 }, load: 50, ready: 5, want: 5, reason: 'max-scale' },
    { name: 'maxScale from zero', partial: { maxScale: 4 }, load: 7, ready: 0, want: 4, reason: 'max-scale' },
    { name: 'within bounds', partial: { minScale: 1, maxScale: 10 }, load: 4, ready: 4, want: 4, reason: 'stable' },
  ];
  for (const c of cases) {
    const script = new Script(config(c.partial));
    script.observe(c.load);
    const d = script.tick(c.ready);
    t.is(d.desired, c.want, c.name);
    t.is(d.reason, c.reason, c.name);
  }
});

test('scale to zero needs an all-zero stable window and keepAliveMs without in-flight requests', (t) => {
  const cases: { name: string; keepAliveMs: number; firstZeroTick: number }[] = [
    // The last 1 carries into the first bucket after the report of 0; 30 zero buckets follow it.
    { name: 'keep-alive shorter than the stable window', keepAliveMs: 10_000, firstZeroTick: 31 },
    { name: 'keep-alive longer than the stable window', keepAliveMs: 90_000, firstZeroTick: 45 },
    { name: 'default keep-alive (60 s)', keepAliveMs: 60_000, firstZeroTick: 31 },
  ];
  for (const c of cases) {
    const script = new Script(config({ keepAliveMs: c.keepAliveMs }));
    script.run(1, 40, 1);
    const idle = script.run(0, 60, 'follow');
    const firstZero = idle.findIndex((d) => d.desired === 0) + 1;
    t.is(firstZero, c.firstZeroTick, c.name);
    t.true(idle.slice(0, firstZero - 1).every((d) => d.desired === 1), c.name);
    t.true(idle.slice(firstZero - 1).every((d) => d.desired === 0), c.name);
    const lastKept = idle[firstZero - 2];
    t.is(lastKept?.reason, c.keepAliveMs > 60_000 ? 'keep-alive' : 'stable', c.name);
  }
});

test('a fresh scaler counts as idle since it started: no scale to zero before keepAliveMs', (t) => {
  const script = new Script(config({ keepAliveMs: 10_000 }));
  const decisions = script.run(0, 6, 1);
  t.deepEqual(desiredOf(decisions), [1, 1, 1, 1, 0, 0]);
  t.is(decisions[0]?.reason, 'keep-alive');
});

test('scale from zero is sized by the backlog, not 1 first', (t) => {
  const cases: { name: string; partial: Partial<AutoscalerConfig>; backlog: number; containerConcurrency: number; want: number }[] = [
    { name: 'one per request', partial: {}, backlog: 7, containerConcurrency: 1, want: 7 },
    { name: 'concurrency 4', partial: {}, backlog: 7, containerConcurrency: 4, want: 2 },
    { name: '50 % utilisation', partial: { targetUtilizationPercent: 50 }, backlog: 3, containerConcurrency: 1, want: 6 },
    { name: 'capped by maxScale', partial: { maxScale: 4 }, backlog: 7, containerConcurrency: 1, want: 4 },
  ];
  for (const c of cases) {
    const script = new Script(config({ ...c.partial, keepAliveMs: 0 }));
    // Warm, then idle long enough to be scaled to zero.
    script.run(1, 10, 1);
    script.run(0, 40, 'follow');
    t.is(script.state.desired, 0, c.name);

    script.observe(c.backlog);
    const first = script.tick(0, c.containerConcurrency);
    t.is(first.desired, c.want, c.name);
    // Still being created: the next tick asks for the same, and so does the one after they are ready.
    script.observe(c.backlog);
    t.is(script.tick(0, c.containerConcurrency).desired, c.want, c.name);
    script.observe(c.backlog);
    t.is(script.tick(c.want, c.containerConcurrency).desired, c.want, c.name);
  }
});

test('with no ready sandbox a tick sizes by the backlog even when the window remembers less', (t) => {
  const script = new Script();
  script.run(1, 30, 1);
  // The only sandbox died; 9 requests wait. The stable window averages (29 + 9) / 30 -> 2.
  script.observe(9);
  const d = script.tick(0);
  t.is(d.desired, 9);
  t.is(d.reason, 'backlog');
});

test('onBacklog decides at once', (t) => {
  const cases: { name: string; desiredBefore: number; input: BacklogInput; partial: Partial<AutoscalerConfig>; want: number; reason: ScaleReason }[] = [
    { name: 'from zero', desiredBefore: 0, input: { backlog: 5, inFlight: 5, ready: 0, containerConcurrency: 1 }, partial: {}, want: 5, reason: 'backlog' },
    { name: 'from zero, concurrency 2', desiredBefore: 0, input: { backlog: 5, inFlight: 5, ready: 0, containerConcurrency: 2 }, partial: {}, want: 3, reason: 'backlog' },
    { name: 'ready ones full', desiredBefore: 2, input: { backlog: 4, inFlight: 6, ready: 2, containerConcurrency: 1 }, partial: {}, want: 6, reason: 'backlog' },
    { name: 'ready ones below target', desiredBefore: 2, input: { backlog: 2, inFlight: 3, ready: 2, containerConcurrency: 2 }, partial: {}, want: 3, reason: 'backlog' },
    { name: 'never below sandboxes being created', desiredBefore: 10, input: { backlog: 1, inFlight: 3, ready: 2, containerConcurrency: 1 }, partial: {}, want: 10, reason: 'hold' },
    { name: 'scale-up limit', desiredBefore: 2, input: { backlog: 18, inFlight: 20, ready: 2, containerConcurrency: 1 }, partial: { maxScaleUpRate: 2 }, want: 4, reason: 'scale-up-limit' },
    { name: 'maxScale', desiredBefore: 0, input: { backlog: 50, inFlight: 50, ready: 0, containerConcurrency: 1 }, partial: { maxScale: 8 }, want: 8, reason: 'max-scale' },
  ];
  for (const c of cases) {
    const script = new Script(config(c.partial));
    script.state = { ...script.state, desired: c.desiredBefore };
    const d = script.backlog(c.input, 500);
    t.is(d.desired, c.want, c.name);
    t.is(d.reason, c.reason, c.name);
    t.is(d.state.inFlight, c.input.inFlight, `${c.name}: the report is recorded`);
  }
});

test('a backlog decision is not undone by the next ticks while the windows catch up', (t) => {
  // Threshold 5000 %: no panic, so only the hold keeps the decision.
  const script = new Script(config({ panicThresholdPercent: 5000 }));
  script.run(1, 30, 1);
  const d = script.backlog({ backlog: 9, inFlight: 10, ready: 1, containerConcurrency: 1 }, 500);
  t.is(d.desired, 10);
  // Held for one panic window (3 ticks from the report at +500 ms: until +6500 ms).
  const held = script.run(10, 3, 1);
  t.deepEqual(desiredOf(held), [10, 10, 10]);
  t.true(held.every((h) => h.reason === 'hold'));
  // Then the stable window rules again: (27 * 1 + 4 * 10) / 30 = 2.23 -> 3, against 10 ready: at least 5.
  const after = script.tick(10);
  t.is(after.desired, 5);
  t.is(after.reason, 'scale-down-limit');
});

test('scale from zero through onBacklog: the ticks that follow agree with it', (t) => {
  const script = new Script();
  const d = script.backlog({ backlog: 5, inFlight: 5, ready: 0, containerConcurrency: 1 }, 300);
  t.is(d.desired, 5);
  t.deepEqual(desiredOf(script.run(5, 3, 0)), [5, 5, 5], 'while the sandboxes are created');
  t.deepEqual(desiredOf(script.run(5, 3, 5)), [5, 5, 5], 'once they are ready');
});

test('a backlog during panic raises the panic peak', (t) => {
  const script = new Script();
  script.run(10, 30, 10);
  script.observe(40);
  t.true(script.tick(10).panic);
  const d = script.backlog({ backlog: 60, inFlight: 100, ready: 20, containerConcurrency: 1 }, 100);
  t.is(d.desired, 100);
  t.true(d.panic);
  // Long after the backlog's hold, the panic still keeps its peak.
  const later = script.run(10, 10, 100);
  t.true(later.every((l) => l.panic && l.desired === 100));
});

test('holdScaleDown: no decrease before the given time', (t) => {
  const script = new Script(config({ keepAliveMs: 0 }));
  script.state = holdScaleDown(script.state, 10_000);
  const held = script.run(0, 4, 10);
  t.deepEqual(desiredOf(held), [10, 10, 10, 10]);
  t.true(held.every((h) => h.reason === 'hold'));
  t.is(script.tick(10).desired, 5, 'at 10 000 ms the hold is over');
  // A hold never shortens an earlier one.
  t.is(holdScaleDown(holdScaleDown(initialScalerState(0), 5000), 1000).holdUntil, 5000);
});

test('windows follow a non-default tick', (t) => {
  // 1 s tick: stable window 10 ticks, panic window 3 ticks.
  const script = new Script(config({ tickMs: 1000, stableWindowMs: 10_000, panicWindowMs: 3000, minScale: 1 }));
  script.run(2, 20, 2);
  const step = script.run(8, 5, 8);
  t.is(step[0]?.stableAverage, (9 * 2 + 8) / 10);
  t.is(step[0]?.panicAverage, (2 * 2 + 8) / 3);
  t.is(step[2]?.panicAverage, 8);
  t.is(step[4]?.stableAverage, (5 * 2 + 5 * 8) / 10);

  // Panic ends after 10 calm ticks (10 s), not Dirigent's fixed 30.
  script.run(8, 10, 8);
  script.observe(40);
  t.true(script.tick(8).panic);
  const calm = script.run(8, 10, 40);
  t.true(calm.slice(0, 9).every((d) => d.panic));
  t.false(last(calm).panic);
});

test('invalid inputs are bugs and throw', (t) => {
  const state = initialScalerState(0);
  t.throws(() => recordObservation(state, defaultAutoscalerConfig, -1, 0), { instanceOf: RangeError });
  t.throws(() => tick(state, defaultAutoscalerConfig, { ready: 1, containerConcurrency: 0 }, 0), { instanceOf: RangeError });
  t.throws(() => tick(state, defaultAutoscalerConfig, { ready: 1.5, containerConcurrency: 1 }, 0), { instanceOf: RangeError });
  t.throws(() => onBacklog(state, defaultAutoscalerConfig, { backlog: 3, inFlight: 2, ready: 0, containerConcurrency: 1 }, 0), {
    instanceOf: RangeError,
  });
});

test('config: defaults merged and accepted', (t) => {
  const cases: { name: string; partial: unknown; check: Partial<AutoscalerConfig> }[] = [
    { name: 'empty', partial: {}, check: defaultAutoscalerConfig },
    { name: 'undefined keeps the default', partial: { tickMs: undefined }, check: { tickMs: 2000 } },
    { name: 'cold-start sweep', partial: { stableWindowMs: 6000, panicWindowMs: 2000, maxScale: 1 }, check: { stableWindowMs: 6000, panicWindowMs: 2000, maxScale: 1, tickMs: 2000 } },
    { name: 'scale-up rate 1', partial: { maxScaleUpRate: 1 }, check: { maxScaleUpRate: 1 } },
    { name: 'min = max', partial: { minScale: 3, maxScale: 3 }, check: { minScale: 3, maxScale: 3 } },
  ];
  for (const c of cases) {
    const result = validateAutoscalerConfig(c.partial);
    if (!result.ok) {
      t.fail(`${c.name}: ${result.errors.join('; ')}`);
      continue;
    }
    t.like(result.config, c.check, c.name);
    t.true(Object.isFrozen(result.config), c.name);
  }
});

test('config: each error names the field, the rule with its unit, and the value', (t) => {
  const cases: { partial: unknown; errors: string[] }[] = [
    { partial: { tickMs: -5 }, errors: ['tickMs must be an integer >= 100 ms, got -5'] },
    { partial: { tickMs: 'fast' }, errors: ['tickMs must be an integer >= 100 ms, got "fast"'] },
    { partial: { tickMs: 150.5 }, errors: ['tickMs must be an integer >= 100 ms, got 150.5'] },
    { partial: { stableWindowMs: 7_200_000 }, errors: ['stableWindowMs must be an integer between 1 and 3600000 ms, got 7200000'] },
    { partial: { stableWindowMs: 1000 }, errors: ['stableWindowMs must be >= tickMs (2000 ms), got 1000', 'panicWindowMs must be <= stableWindowMs (1000 ms), got 6000'] },
    { partial: { panicWindowMs: 500 }, errors: ['panicWindowMs must be >= tickMs (2000 ms), got 500'] },
    { partial: { panicWindowMs: 70_000 }, errors: ['panicWindowMs must be <= stableWindowMs (60000 ms), got 70000'] },
    { partial: { panicThresholdPercent: 100 }, errors: ['panicThresholdPercent must be a number > 100 %, got 100'] },
    { partial: { maxScaleUpRate: 0.5 }, errors: ['maxScaleUpRate must be a number >= 1 (factor of the ready count per tick), got 0.5'] },
    { partial: { maxScaleDownRate: 1 }, errors: ['maxScaleDownRate must be a number > 1 (divisor of the ready count per tick), got 1'] },
    { partial: { targetUtilizationPercent: 0 }, errors: ['targetUtilizationPercent must be a number > 0 and <= 100 %, got 0'] },
    { partial: { targetUtilizationPercent: 150 }, errors: ['targetUtilizationPercent must be a number > 0 and <= 100 %, got 150'] },
    { partial: { minScale: -1 }, errors: ['minScale must be an integer >= 0 sandboxes, got -1'] },
    { partial: { maxScale: 0 }, errors: ['maxScale must be an integer between 1 and 2147483647 sandboxes, got 0'] },
    { partial: { maxScale: 2 ** 31 }, errors: ['maxScale must be an integer between 1 and 2147483647 sandboxes, got 2147483648'] },
    { partial: { minScale: 5, maxScale: 3 }, errors: ['minScale must be <= maxScale (3 sandboxes), got 5'] },
    { partial: { keepAliveMs: 1.5 }, errors: ['keepAliveMs must be an integer >= 0 ms, got 1.5'] },
    { partial: { keepAliveMs: Number.NaN }, errors: ['keepAliveMs must be an integer >= 0 ms, got NaN'] },
    { partial: { tickMs: 0, keepAliveMs: -1 }, errors: ['tickMs must be an integer >= 100 ms, got 0', 'keepAliveMs must be an integer >= 0 ms, got -1'] },
    {
      partial: { tickMS: 1000 },
      errors: [
        'unknown field "tickMS"; known fields: tickMs, stableWindowMs, panicWindowMs, panicThresholdPercent, maxScaleUpRate, maxScaleDownRate, targetUtilizationPercent, minScale, maxScale, keepAliveMs, peakWeightPercent',
      ],
    },
    { partial: null, errors: ['autoscaler config must be an object, got null'] },
    { partial: [], errors: ['autoscaler config must be an object, got []'] },
    { partial: 5, errors: ['autoscaler config must be an object, got 5'] },
  ];
  for (const c of cases) {
    const result = validateAutoscalerConfig(c.partial);
    t.deepEqual(result, { ok: false, errors: c.errors }, JSON.stringify(c.partial));
  }
});

test('a backlog burst over the panic threshold enters panic at once, so the calm stable window cannot undo it', (t) => {
  const cfg = config();
  let state = initialScalerState(0);
  // 30 s of 5 in flight with 5 ready: a calm stable window.
  for (let now = 2000; now <= 30_000; now += 2000) {
    state = recordObservation(state, cfg, 5, now - 1);
    state = tick(state, cfg, { ready: 5, containerConcurrency: 1 }, now).state;
  }
  // A burst needing 40 sandboxes: over 200 % of the 5 ready.
  const burst = onBacklog(state, cfg, { backlog: 35, inFlight: 40, ready: 5, containerConcurrency: 1 }, 30_500);
  t.true(burst.panic);
  t.is(burst.desired, 40);
  // The burst goes on at 40 in flight: the stable average (mostly the calm 5) would halve the count, panic keeps it.
  state = burst.state;
  for (let now = 32_000; now <= 40_000; now += 2000) {
    state = recordObservation(state, cfg, 40, now - 1);
    const decision = tick(state, cfg, { ready: 40, containerConcurrency: 1 }, now);
    t.true(decision.panic);
    t.true(decision.desired >= 40, `desired ${decision.desired} at ${now} ms`);
    state = decision.state;
  }
  // A small backlog (under the threshold) does not panic.
  t.false(onBacklog(initialScalerState(0), cfg, { backlog: 1, inFlight: 5, ready: 4, containerConcurrency: 1 }, 100).panic);
});
