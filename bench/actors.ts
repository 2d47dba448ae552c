// Actor runtime throughput: shard-local delivery, cross-shard delivery and actor-to-actor asks,
// against plain nact on one thread measured in the same run. Prints one JSON line.
// Every run measures all three twice on the same runtime, back to back in alternating order: with the
// console's step-time counters on (the default; the headline numbers) and off (`ActorRuntime.setCounters`):
// `countersOff`, `countersCostPct` (what the counters cost, % of the rate without them; negative: noise) and
// `countersCostPctPaired` (the median of each run's own on/off difference, so slow drifts of a shared
// machine cancel). `cpuNsPerMsg` is this process's CPU time (every thread) per message or ask round trip,
// and `countersCpuCostPct` what the counters add to it. (Two runtimes, one counting and one not, were tried
// first: with both counting, the first-started one blasted 19-39 % slower, which one runtime avoids; and
// each run starts with an unrecorded round, since whichever went first after the nact baseline was slower.)
// Run: npm run bench:actors   (BENCH_MESSAGES, BENCH_ASKS, BENCH_RUNS, BENCH_SHARDS to change sizes)
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type * as NactTypes from 'nact';
import type { Address } from '../actors/actor.js';
import { ActorRuntime, shardOf } from '../runtime/index.js';

const nact = createRequire(import.meta.url)('nact') as typeof NactTypes;
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 1_000_000);
const ASKS = Number(process.env.BENCH_ASKS ?? 200_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SHARDS = Number(process.env.BENCH_SHARDS ?? 2);
const CHUNK = 1000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Plain nact: a sender actor dispatching CHUNK messages per turn to a counting actor, both on this thread. */
async function nactBaseline(): Promise<number> {
  const system = nact.start();
  let count = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const counter = nact.spawn(system, (state: number) => {
    count += 1;
    if (count === MESSAGES) done();
    return state;
  }, 'counter');
  const sender = nact.spawn(system, (remaining: number, _msg: unknown, ctx) => {
    const n = Math.min(CHUNK, remaining);
    for (let i = 0; i < n; i++) nact.dispatch(counter, { type: 'hit' });
    if (remaining - n > 0) nact.dispatch(ctx.self, 'continue');
    return remaining - n;
  }, 'sender', { initialState: MESSAGES });
  const started = performance.now();
  nact.dispatch(sender, 'go');
  await finished;
  const rate = MESSAGES / ((performance.now() - started) / 1000);
  nact.stop(system);
  return rate;
}

function addressOn(kind: string, shard: number, prefix: string): Address {
  for (let i = 0; i < 100_000; i++) {
    const address = { kind, id: `${prefix}${i}` };
    if (shardOf(address, SHARDS) === shard) return address;
  }
  throw new Error('no address');
}

async function waitUntil(probe: () => Promise<boolean>, limitMs = 120_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error('benchmark did not finish in time');
    await sleep(2);
  }
}

/** Each pair is (blaster on shard `from`, sink on shard `to`); returns delivered messages per second. */
interface Measured {
  /** Messages (or ask round trips) per second of wall time. */
  readonly rate: number;
  /** CPU time of this process (all threads) per message, ns. */
  readonly cpuNs: number;
}

async function measured(count: number, run: () => Promise<void>): Promise<Measured> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { rate: count / seconds, cpuNs: ((used.user + used.system) * 1000) / count };
}

async function blast(runtime: ActorRuntime, pairs: [number, number][], tag: string): Promise<Measured> {
  const targets = pairs.map(([from, to], i) => ({ blaster: addressOn('blaster', from, `${tag}b${i}-`), sink: addressOn('sink', to, `${tag}s${i}-`) }));
  await Promise.all(targets.map((p) => runtime.ask(p.sink, { type: 'count' })));
  return measured(MESSAGES * pairs.length, async () => {
    for (const p of targets) runtime.tell(p.blaster, { type: 'blast', to: p.sink, n: MESSAGES, chunk: CHUNK });
    await waitUntil(async () => (await Promise.all(targets.map((p) => runtime.ask<number>(p.sink, { type: 'count' })))).every((n) => n === MESSAGES));
  });
}

async function asks(runtime: ActorRuntime, tag: string): Promise<Measured> {
  const askers = Array.from({ length: SHARDS }, (_, shard) => ({ asker: addressOn('asker', shard, `${tag}a`), echo: addressOn('echo', (shard + 1) % SHARDS, `${tag}e`) }));
  return measured(ASKS * askers.length, async () => {
    for (const a of askers) runtime.tell(a.asker, { type: 'start', to: a.echo, total: ASKS, window: 2000 });
    await waitUntil(async () => {
      const progress = await Promise.all(askers.map((a) => runtime.ask<{ answered: number; failed: number }>(a.asker, { type: 'progress' })));
      if (progress.some((p) => p.failed > 0)) throw new Error('an ask failed');
      return progress.every((p) => p.answered === ASKS);
    });
  });
}

const modules = [{ url: new URL('./bench-kinds.js', import.meta.url).href }];
// A progress ask waits behind up to a million queued messages: on a busy shared machine that took over the 5 s default.
const runtime = await ActorRuntime.start({ shards: SHARDS, modules, counters: true, askTimeoutMs: 60_000 });
const results = { local: [] as Measured[], cross: [] as Measured[], asks: [] as Measured[], baseline: [] as number[] };
const off = { local: [] as Measured[], cross: [] as Measured[], asks: [] as Measured[] };
async function measure(counters: boolean, into: typeof off, tag: string): Promise<void> {
  const target = runtime;
  await target.setCounters(counters);
  into.local.push(await blast(target, [[0, 0]], `l${tag}`));
  into.cross.push(await blast(target, Array.from({ length: SHARDS }, (_, s) => [s, (s + 1) % SHARDS] as [number, number]), `c${tag}`));
  into.asks.push(await asks(target, `q${tag}`));
}
try {
  for (let run = 0; run < RUNS; run++) {
    results.baseline.push(await nactBaseline());
    // Unrecorded: the baseline's garbage and (in run 0) a cold JIT would otherwise slow whichever goes first.
    await measure(true, { local: [], cross: [], asks: [] }, `${run}warm`);
    // Alternating which goes first, so that neither always runs on the warmer (or the busier) minute.
    if (run % 2 === 0) {
      await measure(true, results, `${run}on`);
      await measure(false, off, `${run}off`);
    } else {
      await measure(false, off, `${run}off`);
      await measure(true, results, `${run}on`);
    }
  }
} finally {
  await runtime.stop();
}
const rate = (xs: Measured[]) => median(xs.map((x) => x.rate));
const cpu = (xs: Measured[]) => median(xs.map((x) => x.cpuNs));
const pct = (x: number) => Math.round(1000 * x) / 10;
const costPct = (on: Measured[], without: Measured[]) => pct((rate(without) - rate(on)) / rate(without));
const cpuCostPct = (on: Measured[], without: Measured[]) => pct((cpu(on) - cpu(without)) / cpu(without));
const kinds = ['local', 'cross', 'asks'] as const;
/** Median over runs of each run's own on/off difference: the two ran back to back, so slow drifts cancel. */
const pairedCostPct = (on: Measured[], without: Measured[]) => pct(median(on.map((x, i) => (without[i]!.rate - x.rate) / without[i]!.rate)));
console.log(
  JSON.stringify({
    bench: 'actors',
    localMsgsPerSec: Math.round(rate(results.local)),
    crossShardMsgsPerSec: Math.round(rate(results.cross)),
    askRoundTripsPerSec: Math.round(rate(results.asks)),
    singleNactBaselineMsgsPerSec: Math.round(median(results.baseline)),
    countersOff: { localMsgsPerSec: Math.round(rate(off.local)), crossShardMsgsPerSec: Math.round(rate(off.cross)), askRoundTripsPerSec: Math.round(rate(off.asks)) },
    countersCostPct: Object.fromEntries(kinds.map((k) => [k, costPct(results[k], off[k])])),
    countersCostPctPaired: Object.fromEntries(kinds.map((k) => [k, pairedCostPct(results[k], off[k])])),
    cpuNsPerMsg: Object.fromEntries(kinds.map((k) => [k, Math.round(cpu(results[k]))])),
    cpuNsPerMsgCountersOff: Object.fromEntries(kinds.map((k) => [k, Math.round(cpu(off[k]))])),
    countersCpuCostPct: Object.fromEntries(kinds.map((k) => [k, cpuCostPct(results[k], off[k])])),
    shards: SHARDS,
    runs: RUNS,
  }),
);
