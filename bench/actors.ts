// Actor runtime throughput: shard-local delivery, cross-shard delivery and actor-to-actor asks,
// against plain nact on one thread measured in the same run. Prints one JSON line.
// The same three measurements run, interleaved, on a second runtime with the console's step-time counters
// off (RuntimeOptions.counters): `countersOff` and `countersCostPct` (what the counters cost, % of the
// rate without them; negative: within noise).
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
async function blast(runtime: ActorRuntime, pairs: [number, number][], tag: string): Promise<number> {
  const targets = pairs.map(([from, to], i) => ({ blaster: addressOn('blaster', from, `${tag}b${i}-`), sink: addressOn('sink', to, `${tag}s${i}-`) }));
  await Promise.all(targets.map((p) => runtime.ask(p.sink, { type: 'count' })));
  const started = performance.now();
  for (const p of targets) runtime.tell(p.blaster, { type: 'blast', to: p.sink, n: MESSAGES, chunk: CHUNK });
  await waitUntil(async () => (await Promise.all(targets.map((p) => runtime.ask<number>(p.sink, { type: 'count' })))).every((n) => n === MESSAGES));
  return (MESSAGES * pairs.length) / ((performance.now() - started) / 1000);
}

async function asks(runtime: ActorRuntime, tag: string): Promise<number> {
  const askers = Array.from({ length: SHARDS }, (_, shard) => ({ asker: addressOn('asker', shard, `${tag}a`), echo: addressOn('echo', (shard + 1) % SHARDS, `${tag}e`) }));
  const started = performance.now();
  for (const a of askers) runtime.tell(a.asker, { type: 'start', to: a.echo, total: ASKS, window: 2000 });
  await waitUntil(async () => {
    const progress = await Promise.all(askers.map((a) => runtime.ask<{ answered: number; failed: number }>(a.asker, { type: 'progress' })));
    if (progress.some((p) => p.failed > 0)) throw new Error('an ask failed');
    return progress.every((p) => p.answered === ASKS);
  });
  return (ASKS * askers.length) / ((performance.now() - started) / 1000);
}

const modules = [{ url: new URL('./bench-kinds.js', import.meta.url).href }];
// A progress ask waits behind up to a million queued messages: on a busy shared machine that took over the 5 s default.
const runtime = await ActorRuntime.start({ shards: SHARDS, modules, counters: true, askTimeoutMs: 60_000 });
const uncounted = await ActorRuntime.start({ shards: SHARDS, modules, counters: false, askTimeoutMs: 60_000 });
const results = { local: [] as number[], cross: [] as number[], asks: [] as number[], baseline: [] as number[] };
const off = { local: [] as number[], cross: [] as number[], asks: [] as number[] };
async function measure(target: ActorRuntime, into: typeof off, tag: string): Promise<void> {
  into.local.push(await blast(target, [[0, 0]], `l${tag}`));
  into.cross.push(await blast(target, Array.from({ length: SHARDS }, (_, s) => [s, (s + 1) % SHARDS] as [number, number]), `c${tag}`));
  into.asks.push(await asks(target, `q${tag}`));
}
try {
  for (let run = 0; run < RUNS; run++) {
    results.baseline.push(await nactBaseline());
    // Alternating which goes first, so that neither always runs on the warmer (or the busier) minute.
    if (run % 2 === 0) {
      await measure(runtime, results, `${run}`);
      await measure(uncounted, off, `${run}`);
    } else {
      await measure(uncounted, off, `${run}`);
      await measure(runtime, results, `${run}`);
    }
  }
} finally {
  await runtime.stop();
  await uncounted.stop();
}
const costPct = (on: number[], without: number[]) => Math.round((1000 * (median(without) - median(on))) / median(without)) / 10;
console.log(
  JSON.stringify({
    bench: 'actors',
    localMsgsPerSec: Math.round(median(results.local)),
    crossShardMsgsPerSec: Math.round(median(results.cross)),
    askRoundTripsPerSec: Math.round(median(results.asks)),
    singleNactBaselineMsgsPerSec: Math.round(median(results.baseline)),
    countersOff: { localMsgsPerSec: Math.round(median(off.local)), crossShardMsgsPerSec: Math.round(median(off.cross)), askRoundTripsPerSec: Math.round(median(off.asks)) },
    countersCostPct: { local: costPct(results.local, off.local), cross: costPct(results.cross, off.cross), asks: costPct(results.asks, off.asks) },
    shards: SHARDS,
    runs: RUNS,
  }),
);
