// The thread-sandbox part of bench/coldstart.ts: end-to-end cold starts as a client sees them. A control
// plane, a worker with the `thread` runtime and a data plane (all real, in this process, over loopback);
// each run deploys `calls` functions (builtin `empty`, scale 0..1, a keep-alive longer than the run) and
// invokes each once, one at a time, on a fresh HTTP/1.1 connection: every call finds no sandbox, so it
// queues in the data plane, the autoscaler asks for one, the scheduler places it, the worker starts a
// piscina thread and loads the workload, the endpoint reaches the data plane, and the call runs. The
// latency is the client's time for that request, which must answer 200 with `x-dirigent-cold-start: true`.
// Functions are deleted after each run (and their threads awaited), so runs do not add up threads.
//
// Baseline in the same run: the sandbox runtime alone (ThreadRuntime.create plus the first invocation, no
// cluster): the part of a cold start that orchestration cannot remove.
import { ThreadRuntime } from '../cluster/sandbox/index.js';
import { median, percentile, post, round, startCluster, until } from './cluster.js';

export interface ThreadColdStartResult {
  readonly threadColdStartP50Ms: number;
  readonly threadColdStartP99Ms: number;
  /** Cold starts measured (all runs). */
  readonly threadColdStarts: number;
  /** Baseline: ThreadRuntime.create + first invocation, p50, ms. */
  readonly threadSandboxP50Ms: number;
  readonly threadColdStartRuns: number;
}

/** Pause between two cold starts, so that each one is measured alone, ms. */
const GAP_MS = 50;

export async function measureThreadColdStarts(runs: number, calls: number): Promise<ThreadColdStartResult> {
  const p50s: number[] = [];
  const p99s: number[] = [];
  let measured = 0;
  // The data plane with its default shard count on this machine (2 cores: 2), the worker and control plane with 1.
  const cluster = await startCluster({ dataPlaneShards: 2, runtime: 'thread' });
  try {
    for (let run = 0; run < runs; run++) {
      const names = Array.from({ length: calls }, (_, i) => `cold-${run}-${i}`);
      for (const name of names) {
        const created = await cluster.plane.createFunction({
          name,
          runtime: 'thread',
          source: { kind: 'builtin', workload: 'empty' },
          cpuMilli: 1,
          memoryMiB: 64,
          scaling: { minScale: 0, maxScale: 1, keepAliveMs: 600_000 },
        });
        if (!created.ok) throw new Error(`cannot deploy ${name}: ${created.message}`);
      }
      // The data plane learns of each function on its first request (an endpoint lookup), which is part of a
      // real first call; the functions only need to exist on the control plane now.
      const latencies: number[] = [];
      for (const name of names) {
        const r = await post(cluster.port, `/invoke/${name}`, '', 15_000);
        if (r.status !== 200) throw new Error(`${name}: status ${r.status}: ${r.body.toString()}`);
        if (r.headers['x-dirigent-cold-start'] !== 'true') throw new Error(`${name}: x-dirigent-cold-start is ${String(r.headers['x-dirigent-cold-start'])}, want true`);
        latencies.push(r.ms);
        measured += 1;
        await new Promise((resolve) => setTimeout(resolve, GAP_MS));
      }
      latencies.sort((a, b) => a - b);
      p50s.push(percentile(latencies, 0.5));
      p99s.push(percentile(latencies, 0.99));
      for (const name of names) {
        const deleted = await cluster.plane.deleteFunction(name);
        if (!deleted.ok) throw new Error(`cannot delete ${name}: ${deleted.message}`);
      }
      await until('the deleted functions\u2019 sandboxes to be gone', async () => ((await cluster.plane.nodes()).every((n) => n.sandboxes === 0) ? true : undefined), 20_000);
    }
  } finally {
    await cluster.stop();
  }
  return {
    threadColdStartP50Ms: round(median(p50s), 1),
    threadColdStartP99Ms: round(median(p99s), 1),
    threadColdStarts: measured,
    threadSandboxP50Ms: round(await sandboxBaseline(calls), 1),
    threadColdStartRuns: runs,
  };
}

/** p50 of ThreadRuntime.create + the first invocation of builtin `empty`, ms. */
async function sandboxBaseline(count: number): Promise<number> {
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
  return median(times);
}
