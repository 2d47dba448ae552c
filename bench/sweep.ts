// `npm run bench:sweep`: the paper's cold-start sweep. At each rate, every call is a cold start: the calls go,
// open loop at that rate, each to its own `empty` function registered beforehand the loader's way with
// `cold_start_sweep=true` (upper bound 1) and never called before, so no sandbox exists for it when it arrives
// (the loader gets the same by re-invoking a function only after its keep-alive). End-to-end latency, p50 and p99,
// per rate; a fresh cluster of processes (bench/process-cluster.ts) for each rate. Every answer must say
// `x-dirigent-cold-start: true`. Prints one JSON line per runtime, with Dirigent's published containerd points
// as the reference, and writes the plot (latency against rate, like the paper's figure) to SWEEP_OUT_DIR.
//
// Environment: SWEEP_RUNTIMES (simulated,thread), SWEEP_RATES_SIMULATED (1,10,100,500,1000,2500,5000),
// SWEEP_RATES_THREAD (1,5,10,20,40), SWEEP_SECONDS (5: calls per rate = rate x seconds, at least 20),
// SWEEP_NODES (10), SWEEP_CREATION_MS (0: creation latency of a simulated sandbox), SWEEP_OUT_DIR, SWEEP_POOL (the
// thread worker's `--pool`, default `16:2`: two started sandboxes per worker shard in the 16 MiB class that the
// loader's registration asks for, `requested_memory=16`; the worker's own default class, 128 MiB, would never be
// used; `0` disables the pool, for the fresh baseline).
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { percentile } from '../cluster/experiments/metrics.js';
import { HttpSender, type SendResult } from '../cluster/experiments/sender.js';
import { xySvg, type XySeries } from '../cluster/experiments/svg-xy.js';
import { busyCores, envInt, exitIfStillRunningAfter, round } from './cluster.js';
import { startProcessCluster, type ProcessCluster } from './process-cluster.js';

const log = (line: string) => process.stderr.write(`${line}\n`);
const EMPTY_IMAGE = 'docker.io/cvetkovic/dirigent_empty_function:latest';
/** The loader's `requested_memory` for every function here, MiB; the thread worker's pool class by default. */
const REQUESTED_MEMORY_MIB = 16;
const POOL = process.env.SWEEP_POOL ?? `${REQUESTED_MEMORY_MIB}:2`;
const MIN_CALLS = 20;
/** p99 above this, or any failure, and the rate is past what the system carries, ms. */
const BOUND_MS = 1000;

/** Dirigent with containerd on 17 nodes and Knative, end to end p50 / p99 (ms) by cold starts per second (REFERENCE.md section 3). */
const PUBLISHED = {
  dirigent: { label: 'Dirigent, containerd (SOSP \'24)', p50: [[1, 170], [100, 180], [150, 230]], p99: [[1, 190], [100, 400], [150, 1050]] },
  knative: { label: 'Knative (SOSP \'24)', p50: [[1, 1800]], p99: [[1, 3300]] },
} as const;

/** Creation latency of a simulated sandbox, ms (0 by default: the sweep then measures orchestration alone). */
function creationMs(): number {
  const raw = process.env.SWEEP_CREATION_MS ?? '0';
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`SWEEP_CREATION_MS=${raw} must be an integer >= 0 (ms)`);
  return value;
}

function rates(name: string, fallback: readonly number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return [...fallback];
  const values = raw.split(',').map(Number);
  if (values.some((v) => !Number.isFinite(v) || v <= 0)) throw new Error(`${name}=${raw} must be rates > 0 separated by commas`);
  return values;
}

export interface SweepPoint {
  readonly rate: number;
  readonly calls: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly failed: number;
  /** Answers without `x-dirigent-cold-start: true`. */
  readonly warm: number;
  /** Calls sent per second, as achieved by the sender. */
  readonly sentRate: number;
}

async function registerAll(cluster: ProcessCluster, names: readonly string[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++]!;
      const form = new URLSearchParams([
        ['name', name],
        ['image', EMPTY_IMAGE],
        ['port_forwarding', '80'],
        ['port_forwarding', 'tcp'],
        ['requested_cpu', '10'],
        ['requested_memory', String(REQUESTED_MEMORY_MIB)],
        ['scaling_upper_bound', '1'],
        ['scaling_lower_bound', '0'],
        ['cold_start_sweep', 'true'],
      ]);
      const response = await fetch(`${cluster.adminUrl}/registerService`, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      if (response.status !== 200) throw new Error(`registering ${name}: HTTP ${response.status} ${await response.text()}`);
      await response.arrayBuffer().catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

async function sweepPoint(runtime: 'simulated' | 'thread', rate: number, seconds: number, nodes: number): Promise<SweepPoint> {
  const calls = Math.max(MIN_CALLS, Math.round(rate * seconds));
  const cluster = await startProcessCluster({ runtime, nodes, slots: Math.ceil(calls / nodes) + 100, simulatedLatencyMs: creationMs(), ...(runtime === 'thread' ? { pool: POOL } : {}), onOutput: () => undefined });
  try {
    const names = Array.from({ length: calls }, (_, i) => `s${i}`);
    const registering = performance.now();
    await registerAll(cluster, names);
    log(`${runtime} ${rate}/s: ${calls} functions registered in ${round((performance.now() - registering) / 1000, 1)} s`);
    const sender = new HttpSender({ maxSockets: 4096, maxPending: 100_000, timeoutMs: 30_000 });
    const results: SendResult[] = [];
    const t0 = performance.now() + 20;
    let sentLast = t0;
    await new Promise<void>((resolve) => {
      let next = 0;
      const pump = () => {
        const now = performance.now();
        while (next < calls && t0 + (next * 1000) / rate <= now) {
          sentLast = now;
          sender.send(cluster.invokeAddress, names[next++]!, {}, (r) => {
            results.push(r);
            if (results.length === calls) resolve();
          });
        }
        if (next < calls) setTimeout(pump, Math.max(0, t0 + (next * 1000) / rate - performance.now()));
      };
      setTimeout(pump, 20);
    });
    sender.close();
    const ok = results.filter((r) => r.status === 200);
    const latencies = Float64Array.from(ok.map((r) => r.responseTimeUs / 1000)).sort();
    const point = {
      rate,
      calls,
      p50Ms: round(percentile(latencies, 50), 2),
      p99Ms: round(percentile(latencies, 99), 2),
      failed: results.length - ok.length,
      warm: ok.filter((r) => r.coldStart !== true).length,
      sentRate: round((calls - 1) / Math.max(0.001, (sentLast - t0) / 1000), 1),
    };
    log(`${runtime} ${rate}/s: ${JSON.stringify(point)}`);
    return point;
  } finally {
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const runtimes = (process.env.SWEEP_RUNTIMES ?? 'simulated,thread').split(',') as ('simulated' | 'thread')[];
  for (const r of runtimes) if (r !== 'simulated' && r !== 'thread') throw new Error(`SWEEP_RUNTIMES: ${r} is not simulated or thread`);
  const seconds = envInt('SWEEP_SECONDS', 5);
  const nodes = envInt('SWEEP_NODES', 10);
  const plan = { simulated: rates('SWEEP_RATES_SIMULATED', [1, 10, 100, 500, 1000, 2500, 5000]), thread: rates('SWEEP_RATES_THREAD', [1, 5, 10, 20, 40]) };
  exitIfStillRunningAfter('bench:sweep', 60 * 60_000);
  const outDir = process.env.SWEEP_OUT_DIR ?? (await mkdtemp(join(tmpdir(), 'bench-sweep-')));
  await mkdir(outDir, { recursive: true });
  const busyBefore = await busyCores();
  const series: XySeries[] = [];
  for (const runtime of runtimes) {
    const points: SweepPoint[] = [];
    for (const rate of plan[runtime]) {
      const point = await sweepPoint(runtime, rate, seconds, nodes);
      points.push(point);
      // Past the bound by far: higher rates only take longer to fail.
      if (point.failed > point.calls / 2 || point.p99Ms > 10 * BOUND_MS) break;
    }
    const carried = points.filter((p) => p.failed === 0 && p.warm === 0 && p.p99Ms < BOUND_MS);
    const maxRateP99Under1s = carried.length === 0 ? 0 : Math.max(...carried.map((p) => p.rate));
    series.push({ label: `${runtime} p50`, points: points.filter((p) => p.failed < p.calls).map((p) => [p.rate, p.p50Ms] as const) }, { label: `${runtime} p99`, points: points.filter((p) => p.failed < p.calls).map((p) => [p.rate, p.p99Ms] as const) });
    process.stdout.write(`${JSON.stringify({ bench: 'sweep', runtime, maxRateP99Under1s, points, seconds, nodes, creationMs: runtime === 'simulated' ? creationMs() : null, pool: runtime === 'thread' ? POOL : null, cores: availableParallelism(), busyCoresBefore: busyBefore, dirigentContainerdSaturatesPerS: 150 })}\n`);
  }
  for (const p of [PUBLISHED.dirigent, PUBLISHED.knative]) series.push({ label: `${p.label} p50`, points: p.p50, dashed: true }, { label: `${p.label} p99`, points: p.p99, dashed: true });
  const plot = join(outDir, 'cold-start-sweep.svg');
  await writeFile(plot, xySvg({ title: 'Cold-start sweep: every call a cold start', xLabel: 'cold starts per second', yLabel: 'end-to-end latency, ms', series, yMark: { y: BOUND_MS, label: '1 s' } }));
  log(`plot: ${plot}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
