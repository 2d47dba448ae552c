// Warm invocations through the data plane over HTTP/1.1, against a bare uWS hello-world measured in the
// same run as the ceiling. Prints one JSON line:
//   {"bench":"warm","rps","bareRps","ratio","p50Ms","p99Ms","shards",...}
// Run: npm run bench:warm
//   BENCH_RUNS (default 3)      runs of every measurement; the JSON reports medians
//   WARM_SECONDS (default 10)   length of one wrk run and of one half-load run, s
//   WARM_CONNECTIONS (default 256) wrk connections (the data plane's throughput still grows from 64 to 256;
//                               the bare server's barely moves)
//
// What runs where (one process, plus wrk and two small children):
//   - this process: per configuration, a control plane (1 shard), a worker (1 shard, one node) and a data
//     plane (1 or 2 shards), each an ActorRuntime with its own threads, talking over loopback TCP as in
//     production. The function is the builtin `empty`, deployed with minScale = maxScale so its sandbox
//     exists before the first request and no other is ever created.
//   - bench/bare-uws.js: the ceiling, a one-thread uWS app answering "ok" (a child process).
//   - wrk -t1 (peak throughput, closed loop) and bench/loadgen.c (latency at half the peak, open loop),
//     compiled with cc at the start (wrk and gcc are installed with apt-get when missing).
// The machine has 2 cores shared by wrk, the load generator, the data plane, the worker and the control
// plane (and, on a shared box, anything else running): the numbers are for that budget, not a data plane
// with cores of its own. `busyCoresBefore` is how many cores something else kept busy in the second
// before the run (0 on a quiet machine).
//
// Sandbox runtime: the headline numbers use `simulated` sandboxes, which run the builtin in the worker's
// shard thread with no further hop: what is measured is the data plane (uWS front, router and sandbox
// actors, the framed connection to the worker) plus one worker turn. `threadRps` is the same with a
// `thread` sandbox (a piscina worker per sandbox: one more thread hop per request).
//
// Console counters: in every run, each data-plane configuration is measured twice back to back (alternating
// which goes first), with the actor runtime's step-time counters on in every role (the default; the headline
// numbers) and off (`ActorRuntime.setCounters`): `rpsByShardsCountersOff`, `countersCostPct` (what the counters
// cost the reported configuration's throughput, % of the rate without them; from the medians) and
// `countersCostPctPaired` (the median of each run's own difference). `cpuUsPerRequest[CountersOff]`: CPU time
// of this process (every role's threads; wrk is apart) per request, µs.
//
// Warm only: the cold-start flag needs a sandbox added after the request was queued; the function's sandbox
// ids are compared before and after every run (none added means no request could be a cold start), a few
// requests before and after each run must answer `x-dirigent-cold-start: false`, and the load generator
// checks that header on every response of the half-load runs.
//
// Latency method: wrk2 is not packaged here, and closed-loop wrk latencies at peak measure queueing in wrk's
// own connections. p50Ms/p99Ms come from bench/loadgen.c, an open-loop generator in the manner of wrk2, at
// half the peak rate (of the configuration reported) on 64 keep-alive connections: request k is due at
// k / rate, requests leave in bursts of at most ~5, and latency runs from the due time, so server stalls,
// busy connections and the generator's own lateness are all charged (no coordinated omission). It is C so
// that requests leave when due, not in 1 ms bursts of ~45 (a Node timer's resolution), and with no GC pauses
// of its own; it costs more CPU than the Node generator it replaced (~55 % of a core against ~35 % at
// 46 k/s, mostly the kernel's, for a wake-up every few requests). The same generator against the bare server
// at the same rate, in every run, gives `bareP50Ms`/`bareP99Ms`: the floor of the machine and the generator.
// `lateReleasePct` is the share of requests the generator itself released more than 1 ms late (median of
// the data-plane runs).
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertWarm, busyCores, deployPinned, envInt, exitIfStillRunningAfter, median, round, sandboxIds, startCluster, type BenchCluster } from './cluster.js';
import { collect, compileLoadgen, ensureTool, loadgen, startBare, type LoadResult, type LoadSpec } from './children.js';

const RUNS = envInt('BENCH_RUNS', 3);
const SECONDS = envInt('WARM_SECONDS', 10);
const CONNECTIONS = envInt('WARM_CONNECTIONS', 256);
const SHARD_COUNTS = [1, 2] as const;
const FUNCTION = 'empty';
const PATH = `/invoke/${FUNCTION}`;
/** JIT warm-up before each target's first measured run, s. */
const WARMUP_SECONDS = 2;
const LOADGEN_CONNECTIONS = 64;
/**
 * Unrecorded start of every half-load run, ms. With 1 s, most first runs against the data plane recorded a
 * ~200 ms episode of 20-40 ms latencies about 2 s after the generator started (a fresh process every run; not
 * GC in the cluster's threads by --trace-gc, and not seen against the bare server; seen with the Node
 * generator bench/loadgen.c replaced), which alone set the p99.
 */
const LOADGEN_WARMUP_MS = 3000;
// Everything must be over by then, or the process exits with an error.
exitIfStillRunningAfter('bench:warm', (RUNS * SECONDS * 11 + 180) * 1000);

// ---- wrk -----------------------------------------------------------------------------------------

interface WrkResult {
  /** 2xx responses per second. */
  readonly rps: number;
  readonly requests: number;
  /** Non-2xx responses plus socket errors. */
  readonly errors: number;
}

/** A POST with an empty body on every request. */
const WRK_SCRIPT = 'wrk.method = "POST"\nwrk.headers["Content-Length"] = "0"\n';

async function wrk(script: string, port: number, path: string, seconds: number, connections: number): Promise<WrkResult> {
  // Asynchronous on purpose: the data plane under test has threads in this process that must not wait for us.
  const out = await collect(spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '-s', script, `http://127.0.0.1:${port}${path}`]), `wrk against ${path}`);
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)\b/.exec(out);
  if (!total) throw new Error(`cannot read wrk's output:\n${out}`);
  const unit = { us: 1e-6, ms: 1e-3, s: 1, m: 60 }[total[3] as 'us' | 'ms' | 's' | 'm'];
  const elapsed = Number(total[2]) * unit;
  const requests = Number(total[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket ? socket.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0;
  return { rps: (requests - non2xx) / elapsed, requests, errors: non2xx + socketErrors };
}

// ---- the benchmark ---------------------------------------------------------------------------------

interface Target {
  readonly label: string;
  readonly cluster: BenchCluster;
  readonly rps: number[];
  errors: number;
  /** With the counters off, and CPU time per request (µs) with them on and off. */
  readonly rpsOff: number[];
  readonly cpuUs: number[];
  readonly cpuUsOff: number[];
}

async function startTarget(label: string, shards: number, runtime: 'simulated' | 'thread'): Promise<Target> {
  const cluster = await startCluster({ dataPlaneShards: shards, runtime });
  try {
    await deployPinned(cluster, FUNCTION, runtime, 1);
    await assertWarm(cluster.port, FUNCTION);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return { label, cluster, rps: [], errors: 0, rpsOff: [], cpuUs: [], cpuUsOff: [] };
}

/** Step-time counters on or off in every role of a cluster (they all run in this process). */
async function setCounters(cluster: BenchCluster, on: boolean): Promise<void> {
  await Promise.all([cluster.plane.runtime, cluster.worker.runtime, cluster.dp.runtime].map((r) => r.setCounters(on)));
}

/** One wrk run against a data plane, with the warm-only checks around it. */
async function measureTarget(target: Target, script: string, seconds: number, record: boolean, counters = true): Promise<void> {
  const { cluster } = target;
  await setCounters(cluster, counters);
  const before = await sandboxIds(cluster, FUNCTION);
  const cpu = process.cpuUsage();
  const result = await wrk(script, cluster.port, PATH, seconds, CONNECTIONS);
  const used = process.cpuUsage(cpu);
  const after = await sandboxIds(cluster, FUNCTION);
  if (before !== after) throw new Error(`${target.label}: the sandboxes changed during the run (${before} -> ${after}): not every request was warm`);
  await assertWarm(cluster.port, FUNCTION, 3);
  if (result.errors > 0) console.error(`bench:warm: ${target.label}: ${result.errors} failed requests out of ${result.requests}`);
  target.errors += result.errors;
  await setCounters(cluster, true);
  if (!record) return;
  (counters ? target.rps : target.rpsOff).push(result.rps);
  (counters ? target.cpuUs : target.cpuUsOff).push((used.user + used.system) / Math.max(1, result.requests));
}

const busyCoresBefore = await busyCores();
ensureTool('wrk', 'wrk', 'bench:warm');
const dir = await mkdtemp(join(tmpdir(), 'bench-warm-'));
const script = join(dir, 'post.lua');
await writeFile(script, WRK_SCRIPT);
const stops: (() => Promise<void>)[] = [];
try {
  const generator = await compileLoadgen(dir, 'bench:warm');
  const bare = await startBare();
  stops.push(bare.stop);
  const bareRps: number[] = [];
  const targets: Target[] = [];
  for (const shards of SHARD_COUNTS) {
    const target = await startTarget(`simulated, ${shards} data-plane shard(s)`, shards, 'simulated');
    stops.push(target.cluster.stop);
    targets.push(target);
  }
  await wrk(script, bare.port, '/', WARMUP_SECONDS, CONNECTIONS);
  for (const target of targets) await measureTarget(target, script, WARMUP_SECONDS, false);
  // Interleaved, so that a slower minute of a shared machine hits every target alike.
  for (let run = 0; run < RUNS; run++) {
    const b = await wrk(script, bare.port, '/', SECONDS, CONNECTIONS);
    if (b.errors > 0) throw new Error(`the bare server failed ${b.errors} requests`);
    bareRps.push(b.rps);
    for (const target of targets) {
      // Counters on and off alternate which goes first from run to run.
      for (const counters of run % 2 === 0 ? [true, false] : [false, true]) await measureTarget(target, script, SECONDS, true, counters);
    }
  }
  const offMedians = targets.map((t) => median(t.rpsOff));
  const medians = targets.map((t) => median(t.rps));
  const bestIndex = medians[1]! > medians[0]! ? 1 : 0;
  const best = targets[bestIndex]!;
  const bestShards = SHARD_COUNTS[bestIndex]!;
  const rps = medians[bestIndex]!;

  const stopTarget = async (target: Target) => {
    stops.splice(stops.indexOf(target.cluster.stop), 1);
    await target.cluster.stop();
  };
  for (const target of targets) if (target !== best) await stopTarget(target);

  // Latency at half the peak of the reported configuration.
  const halfRate = Math.max(100, Math.round(rps / 2));
  const spec = (port: number, path: string): LoadSpec => ({ port, path, rate: halfRate, durationMs: SECONDS * 1000, warmupMs: LOADGEN_WARMUP_MS, connections: LOADGEN_CONNECTIONS });
  const half: LoadResult[] = [];
  const bareHalf: LoadResult[] = [];
  for (let run = 0; run < RUNS; run++) {
    bareHalf.push(await loadgen(generator, spec(bare.port, '/')));
    const before = await sandboxIds(best.cluster, FUNCTION);
    const result = await loadgen(generator, spec(best.cluster.port, PATH));
    if (result.coldStarts > 0 || result.warm !== result.recorded || (await sandboxIds(best.cluster, FUNCTION)) !== before) {
      throw new Error(`half-load run saw cold starts or unchecked responses: ${JSON.stringify(result)}`);
    }
    best.errors += result.errors + result.unanswered;
    half.push(result);
  }

  // The thread runtime, with the data-plane shard count found best above.
  await stopTarget(best);
  const thread = await startTarget(`thread, ${bestShards} data-plane shard(s)`, bestShards, 'thread');
  stops.push(thread.cluster.stop);
  await measureTarget(thread, script, WARMUP_SECONDS, false);
  for (let run = 0; run < RUNS; run++) await measureTarget(thread, script, SECONDS, true);

  console.log(
    JSON.stringify({
      bench: 'warm',
      rps: Math.round(rps),
      bareRps: Math.round(median(bareRps)),
      ratio: round(rps / median(bareRps), 3),
      p50Ms: round(median(half.map((h) => h.p50Ms)), 3),
      p99Ms: round(median(half.map((h) => h.p99Ms)), 3),
      shards: bestShards,
      halfLoadRps: halfRate,
      bareP50Ms: round(median(bareHalf.map((h) => h.p50Ms)), 3),
      bareP99Ms: round(median(bareHalf.map((h) => h.p99Ms)), 3),
      lateReleasePct: round(median(half.map((h) => (100 * h.lateReleases) / Math.max(1, h.recorded))), 2),
      rpsByShards: Object.fromEntries(SHARD_COUNTS.map((s, i) => [s, Math.round(medians[i]!)])),
      rpsByShardsCountersOff: Object.fromEntries(SHARD_COUNTS.map((s, i) => [s, Math.round(offMedians[i]!)])),
      countersCostPct: round((100 * (offMedians[bestIndex]! - rps)) / offMedians[bestIndex]!, 1),
      countersCostPctPaired: round(100 * median(best.rps.map((on, i) => (best.rpsOff[i]! - on) / best.rpsOff[i]!)), 1),
      cpuUsPerRequest: round(median(best.cpuUs), 2),
      cpuUsPerRequestCountersOff: round(median(best.cpuUsOff), 2),
      threadRps: Math.round(median(thread.rps)),
      errors: targets.reduce((a, t) => a + t.errors, 0) + thread.errors,
      runtime: 'simulated',
      connections: CONNECTIONS,
      seconds: SECONDS,
      runs: RUNS,
      cores: availableParallelism(),
      busyCoresBefore,
    }),
  );
} finally {
  for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.error(`bench:warm: stopping: ${(error as Error).message}`));
  await rm(dir, { recursive: true, force: true });
}
