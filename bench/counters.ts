// What the console's per-actor counters cost per message, isolated from the machine's noise: bench:actors and
// bench:warm compare whole runtimes with the counters on and off, and on a shared machine their runs differ by
// more than the 5 % bound between two halves with the same setting. Here the counter code alone is timed in a
// tight loop, and set against what one message costs the real runtime, measured in the same run:
//   - `nsPerMsgOff` / `nsPerMsgOn`: a loop doing what runtime/host.ts `drain` does around a trivial step, with
//     the counters off (the step, processed and last-message time) and on (the same plus the sampling check and,
//     for the sampled steps, two clock reads and two histogram updates: TIMED_ALWAYS, then one in TIMED_ONE_IN);
//   - `timedStepNs`: the two clock reads and two histogram updates of one sampled step;
//   - `counterNsPerMsg`: on minus off, per message (median of ROUNDS interleaved rounds' differences);
//     the loops are timed in CPU time, which a busy machine's other processes do not inflate;
//   - `runtimeNsPerMsg` / `runtimeCpuNsPerMsg`: wall and CPU time (all threads) per shard-local message of a
//     real ActorRuntime (2 shards, counters off), the same-run baseline; `counterCostPctOfCpu` / `...OfWall`:
//     counterNsPerMsg as a share of each.
// Run: npm run bench:counters   (BENCH_LOOP messages per loop, BENCH_ROUNDS rounds, BENCH_MESSAGES runtime messages)
import { performance } from 'node:perf_hooks';
import type { Address } from '../actors/actor.js';
import { monotonicUs } from '../runtime/clock.js';
import { ActorRuntime, shardOf } from '../runtime/index.js';
import { newHistogram, record, type Histogram } from '../runtime/stats.js';

const LOOP = Number(process.env.BENCH_LOOP ?? 5_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 300_000);
/** As runtime/host.ts: every step of an actor's first TIMED_ALWAYS, then one in TIMED_ONE_IN, is timed. */
const TIMED_ALWAYS = 32;
const TIMED_ONE_IN = 32;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Cell {
  state: number;
  processed: number;
  lastActiveAt: number;
  readonly histogram: Histogram;
}

/** A trivial step, as cheap as the counter it is compared with: the worst case for the counters' share. */
const step = (state: number, message: number): number => (state + message) | 0;

function runStep(cell: Cell, message: number, now: number): void {
  cell.state = step(cell.state, message);
  cell.processed += 1;
  cell.lastActiveAt = now;
}

function timedStep(cell: Cell, shard: Histogram, message: number, now: number): void {
  const startedUs = monotonicUs();
  runStep(cell, message, now);
  const us = monotonicUs() - startedUs;
  record(cell.histogram, us);
  record(shard, us);
}

/** ns per message of `drain`'s loop with the counters on or off. */
function drainLoop(counters: boolean): number {
  const cell: Cell = { state: 0, processed: 0, lastActiveAt: 0, histogram: newHistogram() };
  const shard = newHistogram();
  const now = Date.now();
  const started = process.cpuUsage();
  for (let i = 0; i < LOOP; i++) {
    if (counters && (cell.processed < TIMED_ALWAYS || (cell.processed & (TIMED_ONE_IN - 1)) === 0)) timedStep(cell, shard, 1, now);
    else runStep(cell, 1, now);
  }
  const ns = cpuNs(started) / LOOP;
  if (cell.state !== LOOP) throw new Error('the loop was optimised away');
  return ns;
}

/** ns of one sampled step's extra work: two clock reads and two histogram updates. */
function timedStepCost(): number {
  const a = newHistogram();
  const b = newHistogram();
  const n = Math.max(1, Math.floor(LOOP / 10));
  const started = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const startedUs = monotonicUs();
    const us = monotonicUs() - startedUs;
    record(a, us);
    record(b, us);
  }
  return cpuNs(started) / n;
}

/** CPU time of this process since `started`, ns: the loops run on this thread alone, and CPU time does not count the moments another process had the core (wall time would). */
function cpuNs(started: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(started);
  return (used.user + used.system) * 1000;
}

function addressOn(kind: string, shard: number, prefix: string, shards: number): Address {
  for (let i = 0; i < 100_000; i++) {
    const address = { kind, id: `${prefix}${i}` };
    if (shardOf(address, shards) === shard) return address;
  }
  throw new Error('no address');
}

/** Wall and CPU ns per shard-local message of a real runtime with the counters off (bench-kinds' blaster and sink). */
async function runtimeCost(runtime: ActorRuntime, tag: string): Promise<{ wallNs: number; cpuNs: number }> {
  const blaster = addressOn('blaster', 0, `${tag}b`, runtime.shards);
  const sink = addressOn('sink', 0, `${tag}s`, runtime.shards);
  await runtime.ask(sink, { type: 'count' });
  const cpu = process.cpuUsage();
  const started = performance.now();
  runtime.tell(blaster, { type: 'blast', to: sink, n: MESSAGES, chunk: 1000 });
  const deadline = Date.now() + 120_000;
  while ((await runtime.ask<number>(sink, { type: 'count' }, 60_000)) < MESSAGES) {
    if (Date.now() > deadline) throw new Error('the runtime did not deliver in time');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  const wallNs = ((performance.now() - started) * 1e6) / MESSAGES;
  const used = process.cpuUsage(cpu);
  return { wallNs, cpuNs: ((used.user + used.system) * 1000) / MESSAGES };
}

const on: number[] = [];
const off: number[] = [];
const timed: number[] = [];
drainLoop(true); // warm the JIT for both paths before anything is recorded
drainLoop(false);
for (let round = 0; round < ROUNDS; round++) {
  // Alternating which goes first, so that neither always runs in the busier moment.
  if (round % 2 === 0) {
    on.push(drainLoop(true));
    off.push(drainLoop(false));
  } else {
    off.push(drainLoop(false));
    on.push(drainLoop(true));
  }
  timed.push(timedStepCost());
}
const runtime = await ActorRuntime.start({ shards: 2, modules: [{ url: new URL('./bench-kinds.js', import.meta.url).href }], counters: false, askTimeoutMs: 60_000 });
const wall: number[] = [];
const cpu: number[] = [];
try {
  await runtimeCost(runtime, 'warm');
  for (let round = 0; round < 3; round++) {
    const cost = await runtimeCost(runtime, `r${round}`);
    wall.push(cost.wallNs);
    cpu.push(cost.cpuNs);
  }
} finally {
  await runtime.stop();
}
const round2 = (x: number) => Math.round(x * 100) / 100;
const counterNs = median(on.map((x, i) => x - off[i]!));
console.log(
  JSON.stringify({
    bench: 'counters',
    nsPerMsgOff: round2(median(off)),
    nsPerMsgOn: round2(median(on)),
    counterNsPerMsg: round2(counterNs),
    timedStepNs: round2(median(timed)),
    timedOneIn: TIMED_ONE_IN,
    runtimeNsPerMsg: round2(median(wall)),
    runtimeCpuNsPerMsg: round2(median(cpu)),
    counterCostPctOfCpu: round2((100 * counterNs) / median(cpu)),
    counterCostPctOfWall: round2((100 * counterNs) / median(wall)),
    loop: LOOP,
    rounds: ROUNDS,
    runtimeMessages: MESSAGES,
  }),
);
