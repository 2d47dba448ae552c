// Shared by the data-plane benchmarks (warm.ts, ws.ts, coldstart.ts): the three real roles in this
// process (each an ActorRuntime with its own shard threads, talking over loopback TCP as in production),
// a bounded HTTP/1.1 request, and the statistics every benchmark reports.
import http, { type IncomingHttpHeaders } from 'node:http';
import { cpus } from 'node:os';
import { ControlPlane } from '../cluster/control-plane/control-plane.js';
import { DataPlane } from '../cluster/data-plane/data-plane.js';
import type { PoolSettings } from '../cluster/sandbox/index.js';
import { WorkerDaemon } from '../cluster/worker/daemon.js';
import { until } from '../runtime/fixtures/until.js';

export { until };

export const TOKEN = 'bench';
export const quiet = (): undefined => undefined;

export interface BenchCluster {
  readonly plane: ControlPlane;
  readonly worker: WorkerDaemon;
  readonly dp: DataPlane;
  /** Port of the data plane's HTTP/1.1 + WebSocket front. */
  readonly port: number;
  stop(): Promise<void>;
}

export interface BenchClusterOptions {
  readonly dataPlaneShards: number;
  readonly workerShards?: number;
  readonly runtime: 'simulated' | 'thread' | 'process';
  /** Sandbox slots of the one node, sandboxes. */
  readonly slots?: number;
  /** The worker's heartbeat period, ms (the daemon's default when absent). */
  readonly heartbeatMs?: number;
  /** The worker's pool of started sandboxes (none when absent). */
  readonly pool?: PoolSettings;
}

/** Control plane (1 shard), one worker node, one data plane; resolves once the node and the data plane registered. */
export async function startCluster(options: BenchClusterOptions): Promise<BenchCluster> {
  const plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store: { kind: 'memory' }, shards: 1, onLog: quiet });
  let worker: WorkerDaemon | undefined;
  let dp: DataPlane | undefined;
  const stop = async () => {
    await dp?.stop();
    await worker?.stop();
    await plane.stop();
  };
  try {
    worker = await WorkerDaemon.start({
      id: 'w1',
      controlPlane: plane.clusterAddress,
      token: TOKEN,
      host: '127.0.0.1',
      runtime: options.runtime,
      capacity: { cpuMilli: 1_000_000, memoryMiB: 1_000_000, slots: options.slots ?? 1000 },
      shards: options.workerShards ?? 1,
      ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
      ...(options.pool === undefined ? {} : { pool: options.pool }),
      onLog: quiet,
    });
    dp = await DataPlane.start({ id: 'dp1', controlPlane: plane.clusterAddress, token: TOKEN, host: '127.0.0.1', httpPort: 0, shards: options.dataPlaneShards, onLog: quiet });
    await until('the worker node to register', async () => ((await plane.nodes()).length === 1 ? true : undefined), 10_000);
    await until('the data plane to register', () => (plane.listDataplanes().some((d) => d.connected) ? true : undefined), 10_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { plane, worker, dp, port: Number(dp.invokeAddress.split(':')[1]), stop };
}

/**
 * A function whose sandboxes all exist before the measurement and stay: min = max scale, and a concurrency no
 * benchmark reaches (so no request ever waits in the cold-start queue). The autoscaler applies minScale only
 * at its first tick (not at creation), so the tick is short; with min = max it can change nothing anyway.
 */
export async function deployPinned(cluster: BenchCluster, name: string, runtime: 'simulated' | 'thread', sandboxes: number): Promise<void> {
  const hour = 3_600_000;
  const created = await cluster.plane.createFunction({
    name,
    runtime,
    source: { kind: 'builtin', workload: 'empty' },
    cpuMilli: 1,
    memoryMiB: 64,
    concurrency: 10_000,
    scaling: { minScale: sandboxes, maxScale: sandboxes, tickMs: 200, stableWindowMs: hour, panicWindowMs: hour, keepAliveMs: hour },
  });
  if (!created.ok) throw new Error(`cannot deploy ${name}: ${created.message}`);
  await until(`${sandboxes} ready sandboxes of ${name}`, async () => {
    const view = await cluster.plane.getFunction(name);
    return view.ok && view.value.status?.ready === sandboxes ? true : undefined;
  }, 30_000);
  // Ready at the control plane is not yet routed by the data plane (the endpoint set travels after it, later on a
  // loaded machine): a request sent in between waits for it and is flagged a cold start. Wait for a warm answer.
  await until(`a warm answer from ${name}`, async () => ((await post(cluster.port, `/invoke/${name}`, '')).headers['x-dirigent-cold-start'] === 'false' ? true : undefined), 10_000);
}

/** Sandbox ids of a function, sorted: equal before and after a run means no sandbox was created during it. */
export async function sandboxIds(cluster: BenchCluster, name: string): Promise<string> {
  const view = await cluster.plane.getFunction(name);
  if (!view.ok || view.value.status === null) throw new Error(`no status for ${name}`);
  return view.value.status.sandboxes.map((s) => `${s.sandboxId}:${s.phase}`).sort().join(',');
}

export interface HttpResult {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** Client-side time from sending the request to the end of the response, ms. */
  readonly ms: number;
}

/** One POST on a fresh connection, bounded by timeoutMs (ms), with any extra `headers`. */
export function post(port: number, path: string, body: string, timeoutMs = 10_000, headers: Readonly<Record<string, string>> = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, agent: false, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - started });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`no response to POST ${path} within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(body);
  });
}

/** A few requests that must all be warm 200s (checked by the x-dirigent-cold-start header). */
export async function assertWarm(port: number, name: string, count = 5): Promise<void> {
  for (let i = 0; i < count; i++) {
    const r = await post(port, `/invoke/${name}`, '');
    if (r.status !== 200) throw new Error(`${name}: status ${r.status}: ${r.body.toString()}`);
    if (r.headers['x-dirigent-cold-start'] !== 'false') throw new Error(`${name}: x-dirigent-cold-start is ${String(r.headers['x-dirigent-cold-start'])}, want false`);
  }
}


export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile of an ascending array; q in 0..1. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const round = (value: number, digits = 0): number => {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
};

/** A benchmark that is still running `ms` from now exits with an error (code 2), saying so. */
export function exitIfStillRunningAfter(bench: string, ms: number): void {
  setTimeout(() => {
    console.error(`${bench}: still running after ${ms / 1000} s; giving up`);
    process.exit(2);
  }, ms).unref();
}

/** A positive integer from the environment, or the default; a bad value names the variable. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name}=${JSON.stringify(raw)} must be a positive integer`);
  return value;
}

/**
 * Cores kept busy by everything on the machine over `ms` (ms) before a benchmark starts: on a shared
 * machine, what the benchmark did not have. 0..number of cores.
 */
export async function busyCores(ms = 1000): Promise<number> {
  const sample = () => cpus().reduce((acc, cpu) => ({ idle: acc.idle + cpu.times.idle, total: acc.total + cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq + cpu.times.idle }), { idle: 0, total: 0 });
  const a = sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = sample();
  const total = b.total - a.total;
  return total > 0 ? round(((total - (b.idle - a.idle)) / total) * cpus().length, 2) : NaN;
}
