// The end-to-end part of bench/coldstart.ts: cold starts as an HTTP client sees them, for the `thread` and the
// `process` runtime, from the pool of started generic sandboxes (stem cells) and, the same-run baseline, fresh
// (the same cluster with the pool disabled). A control plane, one worker and a data plane with 2 shards, all
// real, in this process (bench/pool-cluster.ts). Each run deploys `calls` functions (builtin `empty`, 128 MiB,
// scale 0..1, a keep-alive longer than the run) and invokes each once, one at a time, on a fresh HTTP/1.1
// connection; every call must be a cold start answered 200. With the pool, each call waits for a full pool
// first (a cold start every few hundred ms, as the pool is sized for). The functions are deleted after each run
// (and their sandboxes awaited), so runs do not add up threads or processes. Reported: medians over runs of each
// run's p50 and p99. Then `burst` first calls of new functions at once, with a pool of `burst` stems and fresh.
//
// Baseline for the thread runtime alone: ThreadRuntime.create (fresh) plus the first invocation, no cluster.
import { ThreadRuntime } from '../cluster/sandbox/index.js';
import { median, round, until } from './cluster.js';
import { burst as burstOf, oneAtATime, p, poolOf, withPoolCluster, type PoolCluster, type PoolRuntime } from './pool-cluster.js';

/** Pause between two baseline creations, so that each one is measured alone, ms. */
const GAP_MS = 50;

/** p50 and p99 (medians over runs) of one-at-a-time first calls, ms. */
async function oneAtATimeRuns(cluster: PoolCluster, runtime: PoolRuntime, runs: number, calls: number, pooled: boolean): Promise<{ p50: number; p99: number; fresh: number }> {
  const p50s: number[] = [];
  const p99s: number[] = [];
  let fresh = 0;
  for (let run = 0; run < runs; run++) {
    const tag = `cold-${run}`;
    const done = await oneAtATime(cluster, runtime, tag, calls, pooled);
    fresh += done.filter((c) => c.start !== 'pool').length;
    p50s.push(p(done.map((c) => c.ms), 0.5));
    p99s.push(p(done.map((c) => c.ms), 0.99));
    for (let i = 0; i < calls; i++) {
      const deleted = await cluster.plane.deleteFunction(`${tag}-${i}`);
      if (!deleted.ok) throw new Error(`cannot delete ${tag}-${i}: ${deleted.message}`);
    }
    await until('the deleted functions\u2019 sandboxes to be gone', async () => ((await cluster.plane.nodes()).every((n) => n.sandboxes === 0) ? true : undefined), 30_000);
  }
  return { p50: round(median(p50s), 1), p99: round(median(p99s), 1), fresh };
}

/** The JSON fields of one runtime: `<runtime>ColdStartP50Ms` and the rest. */
export async function measureColdStarts(runtime: PoolRuntime, runs: number, calls: number, burst: number): Promise<Record<string, number>> {
  const pooled = await withPoolCluster(runtime, poolOf(2), (cluster) => oneAtATimeRuns(cluster, runtime, runs, calls, true));
  const fresh = await withPoolCluster(runtime, undefined, (cluster) => oneAtATimeRuns(cluster, runtime, runs, calls, false));
  const burstPooled = await withPoolCluster(runtime, poolOf(burst), (cluster) => burstOf(cluster, runtime, 'burst', burst));
  const burstFresh = await withPoolCluster(runtime, undefined, (cluster) => burstOf(cluster, runtime, 'burst', burst));
  return {
    [`${runtime}ColdStartP50Ms`]: pooled.p50,
    [`${runtime}ColdStartP99Ms`]: pooled.p99,
    // Pooled calls that found the pool empty all the same (0 unless the machine could not refill in time).
    [`${runtime}ColdStartNotFromPool`]: pooled.fresh,
    [`${runtime}ColdStartFreshP50Ms`]: fresh.p50,
    [`${runtime}ColdStartFreshP99Ms`]: fresh.p99,
    [`${runtime}Burst${burst}P99Ms`]: p(burstPooled.map((c) => c.ms), 0.99),
    [`${runtime}Burst${burst}FreshP99Ms`]: p(burstFresh.map((c) => c.ms), 0.99),
  };
}

/** p50 of ThreadRuntime.create (fresh) + the first invocation of builtin `empty`, ms. */
export async function threadSandboxBaseline(count: number): Promise<number> {
  const runtime = new ThreadRuntime();
  const times: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      const sandbox = await runtime.create({
        sandboxId: `baseline-${i}`,
        functionName: 'baseline',
        runtime: { kind: 'builtin', workload: 'empty' },
        memoryMiB: 64,
        cpuMilli: 1,
        concurrency: 1,
        timeoutMs: 10_000,
      });
      const response = await sandbox.invoke({ method: 'POST', path: '/', headers: {}, body: new Uint8Array(0) });
      times.push(performance.now() - started);
      if (response.status !== 200) throw new Error(`baseline sandbox answered ${response.status}`);
      await runtime.destroy(sandbox.id);
      await new Promise((resolve) => setTimeout(resolve, GAP_MS));
    }
  } finally {
    await runtime.close();
  }
  return round(median(times), 1);
}
