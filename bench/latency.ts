// Latency at the loads real functions see: open-loop warm invocations of an `empty` sandbox at a few fixed rates
// (default 50, 1 000 and 10 000 req/s), over HTTP/1.1 keep-alive and over the /ws WebSocket API, against the bare
// uWS server (bench/bare-uws.js: "ok" over HTTP, an echo over WebSocket) at the same rates in the same run.
// Prints one JSON line per rate and transport:
//   {"bench":"latency","rate","transport","p50Ms","p99Ms","p999Ms","bareP50Ms","bareP99Ms","bareP999Ms",...}
// Run: npm run bench:latency
//   BENCH_RUNS (default 3)          runs of every measurement, interleaved bare / data plane; the JSON has medians
//   LATENCY_SECONDS (default 10)    recorded period of one run, s (at least LOW_RATE_SAMPLES requests are recorded
//                                   per run, so 50 req/s runs for 20 s)
//   LATENCY_RATES (default 50,1000,10000)  offered loads, req/s
//   LATENCY_RUNTIME (default simulated)    sandbox runtime: `simulated` (the builtin runs on the worker's shard
//                                   thread) or `thread` (one more hop: a worker thread per sandbox)
//   LATENCY_OUT_DIR (default: none)  writes latency-by-rate.svg there (p50 and p99 against the rate, both targets)
//
// Method: bench/loadgen.c, the open-loop C generator of bench:warm (request k due at k / rate, latency from the
// due time, one request at a time per keep-alive connection), in HTTP mode or in WebSocket mode (one masked text
// frame `{"id":1,"function":"empty"}` per request). Connections per rate: `connections()` below, few enough that at
// 50 req/s every request finds its connection idle for ~20 ms (the idle path this benchmark is about), enough
// that at 10 000 req/s none waits for a connection. The cluster is the in-process one of bench:warm (control
// plane, one worker, a data plane with 2 shards; each role an ActorRuntime with its own threads over loopback
// TCP), the function pinned to one sandbox (min = max scale) so that every call is warm; the generator checks
// `x-dirigent-cold-start: false` on every data-plane response and the sandbox set is compared around each run.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileLoadgen, loadgen, startBare, type LoadResult, type LoadSpec } from './children.js';
import { xySvg, type XySeries } from '../cluster/experiments/svg-xy.js';
import { busyCores, deployPinned, envInt, exitIfStillRunningAfter, median, round, sandboxIds, startCluster } from './cluster.js';

const RUNS = envInt('BENCH_RUNS', 3);
const SECONDS = envInt('LATENCY_SECONDS', 10);
const RATES = (process.env.LATENCY_RATES ?? '50,1000,10000').split(',').map((r) => {
  const rate = Number(r);
  if (!Number.isInteger(rate) || rate < 1 || rate > 100_000) throw new Error(`LATENCY_RATES: ${JSON.stringify(r)} must be an integer 1..100000 (req/s)`);
  return rate;
});
const RUNTIME = process.env.LATENCY_RUNTIME ?? 'simulated';
if (RUNTIME !== 'simulated' && RUNTIME !== 'thread') throw new Error(`LATENCY_RUNTIME=${JSON.stringify(RUNTIME)} must be simulated or thread`);
const FUNCTION = 'empty';
const TRANSPORTS = ['http', 'ws'] as const;
type Transport = (typeof TRANSPORTS)[number];
/** Requests recorded per run at least: p99.9 needs a thousand. */
const LOW_RATE_SAMPLES = 1000;
/** Unrecorded start of every run, ms (JIT, connection set-up; see bench/warm.ts on the first seconds). */
const WARMUP_MS = 2000;
const DATA_PLANE_SHARDS = 2;

/** Keep-alive connections of the generator at `rate` req/s: 1 at 50/s, 4 at 1 000/s, 34 at 10 000/s. */
function connections(rate: number): number {
  return Math.min(64, Math.max(1, Math.ceil(rate / 300)));
}

function durationMs(rate: number): number {
  return Math.max(SECONDS * 1000, Math.ceil((LOW_RATE_SAMPLES / rate) * 1000));
}

const totalMs = RATES.reduce((a, rate) => a + (durationMs(rate) + WARMUP_MS + 2500) * 2 * TRANSPORTS.length * RUNS, 0);
exitIfStillRunningAfter('bench:latency', totalMs + 120_000);

const busyCoresBefore = await busyCores();
const dir = await mkdtemp(join(tmpdir(), 'bench-latency-'));
const stops: (() => Promise<void>)[] = [];
try {
  const generator = await compileLoadgen(dir, 'bench:latency');
  const bare = await startBare();
  stops.push(bare.stop);
  const cluster = await startCluster({ dataPlaneShards: DATA_PLANE_SHARDS, runtime: RUNTIME });
  stops.push(cluster.stop);
  await deployPinned(cluster, FUNCTION, RUNTIME, 1);
  const sandboxes = await sandboxIds(cluster, FUNCTION);

  const spec = (port: number, transport: Transport, rate: number, bareTarget: boolean): LoadSpec => ({
    port,
    path: transport === 'ws' ? '/ws' : bareTarget ? '/' : `/invoke/${FUNCTION}`,
    rate,
    durationMs: durationMs(rate),
    warmupMs: WARMUP_MS,
    connections: connections(rate),
    ...(transport === 'ws' ? { websocketFunction: FUNCTION } : {}),
  });
  const points = new Map<string, [number, number][]>();
  const plot = (label: string, rate: number, ms: number) => {
    if (ms > 0) points.set(label, [...(points.get(label) ?? []), [rate, ms]]);
  };
  for (const rate of RATES) {
    for (const transport of TRANSPORTS) {
      const runs: LoadResult[] = [];
      const bareRuns: LoadResult[] = [];
      // Interleaved, so that a slower minute of a shared machine hits both alike.
      for (let run = 0; run < RUNS; run++) {
        bareRuns.push(await loadgen(generator, spec(bare.port, transport, rate, true)));
        const result = await loadgen(generator, spec(cluster.port, transport, rate, false));
        if (result.coldStarts > 0 || result.warm !== result.recorded || (await sandboxIds(cluster, FUNCTION)) !== sandboxes) {
          throw new Error(`${transport} at ${rate}/s saw cold starts or responses without the warm header: ${JSON.stringify(result)}`);
        }
        runs.push(result);
      }
      const med = (rs: LoadResult[], f: (r: LoadResult) => number) => round(median(rs.map(f)), 3);
      for (const q of ['p50', 'p99'] as const) {
        plot(`data plane ${transport} ${q}`, rate, med(runs, (r) => r[`${q}Ms`]));
        plot(`bare uWS ${transport} ${q}`, rate, med(bareRuns, (r) => r[`${q}Ms`]));
      }
      console.log(
        JSON.stringify({
          bench: 'latency',
          rate,
          transport,
          p50Ms: med(runs, (r) => r.p50Ms),
          p99Ms: med(runs, (r) => r.p99Ms),
          p999Ms: med(runs, (r) => r.p999Ms),
          bareP50Ms: med(bareRuns, (r) => r.p50Ms),
          bareP99Ms: med(bareRuns, (r) => r.p99Ms),
          bareP999Ms: med(bareRuns, (r) => r.p999Ms),
          achievedRps: med(runs, (r) => r.achievedRps),
          errors: runs.reduce((a, r) => a + r.errors + r.unanswered, 0),
          bareErrors: bareRuns.reduce((a, r) => a + r.errors + r.unanswered, 0),
          lateReleasePct: med(runs, (r) => (100 * r.lateReleases) / Math.max(1, r.recorded)),
          connections: connections(rate),
          runtime: RUNTIME,
          shards: DATA_PLANE_SHARDS,
          seconds: durationMs(rate) / 1000,
          runs: RUNS,
          cores: availableParallelism(),
          busyCoresBefore,
        }),
      );
    }
  }
  const outDir = process.env.LATENCY_OUT_DIR;
  if (outDir !== undefined && outDir !== '') {
    await mkdir(outDir, { recursive: true });
    const series: XySeries[] = [...points].map(([label, pts]) => ({ label, points: pts, dashed: label.startsWith('bare') }));
    const file = join(outDir, 'latency-by-rate.svg');
    await writeFile(file, xySvg({ title: `Warm calls of an empty ${RUNTIME} sandbox, open loop`, xLabel: 'offered rate, requests per second', yLabel: 'latency from the due time, ms', series }));
    console.error(`bench:latency: plot: ${file}`);
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.error(`bench:latency: stopping: ${(error as Error).message}`));
  await rm(dir, { recursive: true, force: true });
}
