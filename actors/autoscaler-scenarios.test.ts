// The pure scaler on the shapes of bench:autoscale's scenarios (issue 19), with Dirigent's defaults (2 s tick,
// 60 s stable window = 30 ticks, 6 s panic window = 3 ticks, 200 % panic threshold, 1 request per sandbox).
// Each report gives the peak and the time-weighted average in-flight count of a tick, as a router would for the
// load described; ready sandboxes follow the last decision (creation is instant here). Every expected count is
// worked out in the comment above it, from the load, not copied from the output.
import test from 'ava';
import { defaultAutoscalerConfig, type AutoscalerConfig } from './autoscaler-config.js';
import { GATHER_MS, initialScalerState, onBacklog, recordObservation, tick, type Decision, type ScalerState, type TickDecision } from './autoscaler.js';

const TICK = defaultAutoscalerConfig.tickMs;

class Load {
  state: ScalerState = initialScalerState(0);
  now = 0;
  constructor(readonly config: AutoscalerConfig = defaultAutoscalerConfig) {}

  /** A report of `backlog` requests queued with `ready` sandboxes, `afterMs` after the last tick; `grown`: a queue reported before. */
  backlog(backlog: number, inFlight: number, ready: number, afterMs: number, grown = false): Decision {
    const decision = onBacklog(this.state, this.config, { backlog, inFlight, ready, containerConcurrency: 1, grown }, this.now + afterMs);
    this.state = decision.state;
    return decision;
  }

  /** `ticks` ticks, each after a report of that tick's peak and average; ready = the last decision. */
  ticks(ticks: number, peak: number, average: number): TickDecision[] {
    const out: TickDecision[] = [];
    for (let i = 0; i < ticks; i++) {
      this.state = recordObservation(this.state, this.config, peak, this.now + TICK - 1, average);
      this.now += TICK;
      const decision = tick(this.state, this.config, { ready: this.state.desired, containerConcurrency: 1 }, this.now);
      this.state = decision.state;
      out.push(decision);
    }
    return out;
  }
}

const counts = (decisions: readonly Decision[]): number[] => decisions.map((d) => d.desired);
const repeat = (value: number, times: number): number[] => Array.from({ length: times }, () => value);
const peakMetric: AutoscalerConfig = { ...defaultAutoscalerConfig, peakWeightPercent: 100 };

test('steady 200 req/s of a 3 ms call: one sandbox by the average, six by the peak', (t) => {
  // Little's law: 200 req/s x 0.003 s = 0.6 requests in flight on average; arrivals clump, so a 2 s tick's peak
  // reads about 6. The first request finds no sandbox: a backlog of 1 asks for 1.
  const average = new Load();
  t.is(average.backlog(1, 1, 0, 0).desired, 1);
  // Every bucket is 0.6: stable and panic means 0.6 -> ceil(0.6 / 1) = 1; 1 < 200 % of 1 ready, no panic.
  const steady = average.ticks(35, 6, 0.6);
  t.deepEqual(counts(steady), repeat(1, 35));
  t.false(steady.some((d) => d.panic));

  // The metric before issue 19: every bucket is the peak 6. First tick: panic mean 6 -> 6 sandboxes >= 200 % of
  // 1 ready -> panic, count 6; after that 6 < 200 % of 6 ready, but both windows still ask for 6.
  const peak = new Load(peakMetric);
  peak.backlog(1, 1, 0, 0);
  const old = peak.ticks(35, 6, 0.6);
  t.deepEqual(counts(old), repeat(6, 35));
  t.true(old[0]!.panic);
});

test('a chance queue at one sandbox asks for one more for a panic window, without a panic', (t) => {
  const load = new Load();
  load.backlog(1, 1, 0, 0);
  load.ticks(5, 6, 0.6);
  // t = 10.5 s: a request waits behind the one running: want max(2 in flight, 1 ready + 1 queued) = 2. One
  // request waiting is not more than the 1 the ready sandbox runs, so no panic; the 2 are held for one panic
  // window (6 s, until 16.5 s).
  const chance = load.backlog(1, 2, 1, 500);
  t.is(chance.desired, 2);
  t.false(chance.panic);
  // Ticks at 12, 14 and 16 s are held at 2 (the windows want 1); at 18 s the hold is over: 1 (the scale-down
  // limit, floor(2 / 2) = 1, allows it).
  const after = load.ticks(4, 6, 0.6);
  t.deepEqual(counts(after), [2, 2, 2, 1]);
  t.deepEqual(after.map((d) => d.reason), ['hold', 'hold', 'hold', 'stable']);
});

test('steady 50 req/s of a 100 ms call: five sandboxes by the average, nine by the peak', (t) => {
  // 50 x 0.1 = 5 in flight on average; a tick's peak about 9. A cold start queues the first 5.
  const average = new Load();
  t.is(average.backlog(5, 5, 0, 0).desired, 5);
  t.deepEqual(counts(average.ticks(35, 9, 5)), repeat(5, 35));
  // The peak: ceil(9) = 9; 9 < 200 % of 5 ready, so no panic, but the stable window asks for 9 throughout.
  const peak = new Load(peakMetric);
  peak.backlog(5, 5, 0, 0);
  t.deepEqual(counts(peak.ticks(35, 9, 5)), repeat(9, 35));
});

test('a step from 10 to 400 req/s of a 100 ms call: the backlog reports size it at once, panic keeps it', (t) => {
  const load = new Load();
  load.backlog(1, 1, 0, 0);
  // 10 req/s x 0.1 s = 1 in flight on average (peak 3): 1 sandbox.
  t.deepEqual(counts(load.ticks(10, 3, 1)), repeat(1, 10));
  // At 20.1 s the load jumps to 400 req/s; the router reports its queue when it becomes non-empty and at each
  // doubling, with the ready count still 1 (new sandboxes take longer than these few ms):
  // queue 1: max(2, 1 + 1) = 2, and 1 waiting is not more than the 1 running: no panic;
  // queue q >= 2: max(1 + q, 1 + q) = 1 + q >= 200 % of 1 ready, and q > 1: a burst, panic.
  // The reports after the first are of a grown queue, capped at BACKLOG_GROWTH x the last count: 2 x 2 = 4 >= 3,
  // 2 x 3 = 6 >= 5, 18 >= 17, 34 >= 33: a queue that keeps doubling is not held back.
  const steps = [1, 2, 4, 8, 16, 32].map((q, i) => load.backlog(q, 1 + q, 1, 100 + i, i > 0));
  t.deepEqual(counts(steps), [2, 3, 5, 9, 17, 33]);
  t.deepEqual(steps.map((d) => d.panic), [false, true, true, true, true, true]);
  // Ticks at 22, 24, 26 s with 400 x 0.1 = 40 on average (peak 60). Panic window = the last 3 buckets:
  // (1 + 1 + 40) / 3 = 14, (1 + 40 + 40) / 3 = 27, then 40: 14 and 27 are below the panic peak 33, which
  // panic keeps; 40 raises it.
  const during = load.ticks(3, 60, 40);
  t.deepEqual(counts(during), [33, 33, 40]);
  t.deepEqual(during.map((d) => d.reason), ['panic-no-decrease', 'panic-no-decrease', 'panic']);
  // Back to 10 req/s. The panic condition (panic demand >= 200 % of ready) was last met at the backlog reports
  // (20.1 s): the ticks from 22 s on are calm, and the 30th calm tick (22 + 29 x 2 = 80 s) ends panic. Until then
  // the count stays at the panic peak 40 (27 ticks after 26 s: 28 ... 80 s).
  const back = load.ticks(27, 3, 1);
  t.deepEqual(counts(back.slice(0, 26)), repeat(40, 26));
  t.true(back.slice(0, 26).every((d) => d.panic));
  // At 80 s: stable mode. The stable window holds the last 30 buckets: the 3 of the step, the first one after
  // it (it starts at the 40 carried in: a report stands until the next) and 26 of 1: 186 / 30 = 6.2 -> 7, which
  // the scale-down limit floor(40 / 2) = 20 caps. Then (3 x 40 + 27) / 30 = 4.9 -> 5, capped at floor(20 / 2)
  // = 10; then (2 x 40 + 28) / 30 = 3.6 -> 4, capped at floor(10 / 2) = 5.
  t.false(back[26]!.panic);
  t.deepEqual(counts([back[26]!, ...load.ticks(2, 3, 1)]), [20, 10, 5]);
});

test('100 simultaneous first calls: 100 sandboxes at once; what arrives after the gathering waits for them', (t) => {
  const load = new Load();
  // The router reports at the end of its event-loop turn (40 queued), then at the doubling (80), then the rest
  // (100): each within GATHER_MS of the first ask, so each is sized one sandbox per request.
  const gathered = [40, 80, 100].map((q, i) => load.backlog(q, q, 0, i * 10, i > 0));
  t.deepEqual(counts(gathered), [40, 80, 100]);
  t.true(gathered.every((d) => d.reason === 'backlog'));
  // 200 queued after the gathering (requests that arrived during the cold start): the 100 coming take them.
  const late = load.backlog(200, 200, 0, GATHER_MS + 50, true);
  t.is(late.desired, 100);
  t.is(late.reason, 'starting-wait');
  // A tick while none is ready keeps the count asked for instead of sizing by the 200 in flight.
  const waiting = load.ticks(1, 200, 0);
  t.is(waiting[0]!.desired, 100);
});

test('a stream that queued during a cold start: sized by its demand once a sandbox serves, not one sandbox per waiting request', (t) => {
  // 50 req/s of a 100 ms call from zero; sandboxes take 500 ms to start.
  const load = new Load();
  // The first report (1 queued), then the doubling to 2 within GATHER_MS (10 ms): 1, 2.
  t.deepEqual(counts([load.backlog(1, 1, 0, 0), load.backlog(2, 2, 0, 10, true)]), [1, 2]);
  // Doublings later in the cold start (4 at 150 ms, 8 at 250 ms, 16 at 400 ms: past GATHER_MS) wait for the 2
  // asked for.
  const waiting = [4, 8, 16].map((q, i) => load.backlog(q, q, 0, [150, 250, 400][i]!, true));
  t.deepEqual(counts(waiting), [2, 2, 2]);
  t.true(waiting.every((d) => d.reason === 'starting-wait'));
  // At 520 ms both are ready and serve, and the queue doubles to 32: one sandbox per waiting request would be
  // 2 + 32 = 34; a grown queue gets at most BACKLOG_GROWTH x max(2 ready, 2 asked for) = 4.
  const grown = load.backlog(32, 34, 2, 520, true);
  t.is(grown.desired, 4);
  t.is(grown.reason, 'backlog-growth-limit');
  // The tick at 2 s: the router's demand for its period is 5 (Little's law) plus draining its queue, say 9 (peak
  // 40). Panic mean 9 -> 9 sandboxes >= 200 % of 4 ready: panic, 9; ideal 5, and 9 drains the queue.
  const tick = load.ticks(1, 40, 9)[0]!;
  t.is(tick.desired, 9);
  t.true(tick.panic);
});

test('on/off: 10 s at 5 in flight, 50 s idle: the count decays with the stable window, kept above 0 by the keep-alive', (t) => {
  const load = new Load();
  load.backlog(5, 5, 0, 0);
  t.deepEqual(counts(load.ticks(5, 9, 5)), repeat(5, 5));
  // Idle from 10 s. The first idle tick's bucket still starts at the gauges carried in (5 on average: a report
  // stands until the next), so it reads 5 like the 5 before it; after k zero buckets the stable mean is 6 x 5 /
  // (6 + k) (the window holds the buckets present, at most 30): ceil(30 / 7) = 5, 30 / 8 -> 4, 30 / 9 -> 4,
  // 30 / 10 = 3, 30 / 11 .. 30 / 14 -> 3, 30 / 15 = 2 ... 30 / 29 -> 2 (k = 9..23), 30 / 30 = 1 (k = 24).
  // Each step down is within floor(ready / 2).
  const off = load.ticks(25, 0, 0);
  t.deepEqual(counts(off), [5, 5, 4, 4, 3, 3, 3, 3, 3, ...repeat(2, 15), 1]);
  // At 60 s the load is back: 4 queued behind the 1 ready sandbox: max(5, 1 + 4) = 5, and 4 > 1: panic.
  const back = load.backlog(4, 5, 1, 100);
  t.is(back.desired, 5);
  t.true(back.panic);
});
