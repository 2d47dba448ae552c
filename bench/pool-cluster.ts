// Shared by the cold-start benchmarks (coldstart.ts, sandbox-coldstart.ts): a control plane, one `thread` or
// `process` worker with or without a pool of started generic sandboxes (stem cells), and a data plane with 2
// shards, all real (in this process, over loopback); and the ways they measure first calls of new functions.
import type { ControlPlane } from '../cluster/control-plane/control-plane.js';
import type { PoolSettings } from '../cluster/sandbox/index.js';
import { HEADER_SANDBOX_START, HEADER_SANDBOX_START_MS } from '../cluster/worker/module.js';
import { percentile, post, round, startCluster, until } from './cluster.js';

export type PoolRuntime = 'thread' | 'process';

/** Memory of every benchmark function, MiB: the default pool's class. */
export const MEMORY_MIB = 128;

export interface PoolCluster {
  readonly plane: ControlPlane;
  readonly port: number;
  stop(): Promise<void>;
}

/** A cluster for `use`, stopped after it whatever happens. `pool` undefined: no pool (every start fresh). */
export async function withPoolCluster<T>(runtime: PoolRuntime, pool: PoolSettings | undefined, use: (cluster: PoolCluster) => Promise<T>): Promise<T> {
  const cluster = await startPoolCluster(runtime, pool);
  try {
    return await use(cluster);
  } finally {
    await cluster.stop();
  }
}

/** `count` stems of the benchmark's class, and room for them. */
export const poolOf = (count: number): PoolSettings => ({ sizes: [{ memoryMiB: MEMORY_MIB, count }], capMiB: 4096 });

function startPoolCluster(runtime: PoolRuntime, pool: PoolSettings | undefined): Promise<PoolCluster> {
  return startCluster({ runtime, dataPlaneShards: 2, heartbeatMs: 50, ...(pool === undefined ? {} : { pool }) });
}

/** Until the worker's heartbeat says its pool is full (bounded). */
export async function poolFull(cluster: PoolCluster): Promise<void> {
  // A take reaches the scheduler up to ~150 ms later (the worker coalesces pool reports over 100 ms, then the
  // 50 ms heartbeat): a report read sooner may still say full.
  await new Promise((resolve) => setTimeout(resolve, 250));
  await until('the pool to be full', async () => {
    const pool = (await cluster.plane.nodes())[0]?.pool;
    return pool === undefined || pool.idle >= pool.target ? true : undefined;
  }, 60_000);
}

export async function deploy(cluster: PoolCluster, runtime: PoolRuntime, names: readonly string[], extra: Record<string, unknown> = {}): Promise<void> {
  for (const name of names) {
    const created = await cluster.plane.createFunction({ name, runtime, source: { kind: 'builtin', workload: 'empty' }, cpuMilli: 1, memoryMiB: MEMORY_MIB, scaling: { minScale: 0, maxScale: 1, keepAliveMs: 600_000 }, ...extra });
    if (!created.ok) throw new Error(`cannot deploy ${name}: ${created.message}`);
  }
}

export interface Call {
  /** The client's time, request sent to response read, ms. */
  readonly ms: number;
  /** `pool` or `fresh`. */
  readonly start: string;
  /** The worker's create, ms. */
  readonly createMs: number;
  /** The data plane's queue time (the request waited for its sandbox), ms. */
  readonly queueMs: number;
}

/** One request that must be a cold start answered 200, on a fresh connection. */
export async function firstCall(cluster: PoolCluster, name: string): Promise<Call> {
  const r = await post(cluster.port, `/invoke/${name}`, '', 30_000);
  if (r.status !== 200) throw new Error(`${name}: status ${r.status}: ${r.body.toString()}`);
  if (r.headers['x-dirigent-cold-start'] !== 'true') throw new Error(`${name}: not a cold start`);
  const queue = /queue;dur=([\d.]+)/.exec(String(r.headers['server-timing']))?.[1];
  return { ms: r.ms, start: String(r.headers[HEADER_SANDBOX_START]), createMs: Number(r.headers[HEADER_SANDBOX_START_MS]), queueMs: Number(queue) };
}

/** `calls` first calls of new functions, one at a time; `refill`: wait for a full pool before each. */
export async function oneAtATime(cluster: PoolCluster, runtime: PoolRuntime, tag: string, calls: number, refill: boolean): Promise<Call[]> {
  const names = Array.from({ length: calls }, (_, i) => `${tag}-${i}`);
  await deploy(cluster, runtime, names);
  const done: Call[] = [];
  for (const name of names) {
    if (refill) await poolFull(cluster);
    else await new Promise((resolve) => setTimeout(resolve, 100));
    done.push(await firstCall(cluster, name));
  }
  return done;
}

/** `count` first calls of new functions at once, the pool full before. */
export async function burst(cluster: PoolCluster, runtime: PoolRuntime, tag: string, count: number): Promise<Call[]> {
  const names = Array.from({ length: count }, (_, i) => `${tag}-${i}`);
  await deploy(cluster, runtime, names);
  await poolFull(cluster);
  return Promise.all(names.map((name) => firstCall(cluster, name)));
}

export const p = (values: readonly number[], q: number): number => round(percentile([...values].sort((a, b) => a - b), q), 1);

/** Percentiles of the calls and the p50 of their phases, ms. */
export function summary(calls: readonly Call[]) {
  const pooled = calls.filter((c) => c.start === 'pool').length;
  return {
    p50Ms: p(calls.map((c) => c.ms), 0.5),
    p99Ms: p(calls.map((c) => c.ms), 0.99),
    maxMs: round(Math.max(...calls.map((c) => c.ms)), 1),
    fromPool: pooled,
    fresh: calls.length - pooled,
    createP50Ms: p(calls.map((c) => c.createMs), 0.5),
    controlPlaneP50Ms: p(calls.map((c) => c.queueMs - c.createMs), 0.5),
    invokeP50Ms: p(calls.map((c) => c.ms - c.queueMs), 0.5),
  };
}
