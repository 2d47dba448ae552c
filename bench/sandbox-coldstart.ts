// Cold starts from the pool of started generic sandboxes (stem cells) against fresh starts, for the thread
// and the process runtime, end to end as an HTTP client sees them: a control plane, one worker and a data
// plane, all real (in this process, over loopback). One JSON line per runtime, with its same-run baseline:
// the same cluster with the pool disabled.
//
// 1. One at a time: CALLS functions (builtin `empty`, 128 MiB, scale 0..1) each invoked once; before each
//    pooled call the pool is full again (a cold start every few seconds, as the pool is sized for).
//    Phases of each call, from the response: `x-dirigent-sandbox-start-ms` is the worker's create (take a
//    stem and specialise it, or start fresh); the data plane's `queue` time minus that is the control-plane
//    round trips (data plane -> autoscaler -> function -> scheduler -> node, and the endpoint back); the
//    client's time minus `queue` is the invocation itself through the data plane and the worker. Each is a
//    function's first call ever, so the data plane also looks the function up first (one more round trip).
//    Then the same for CALLS cold starts of one function that scaled to zero in between (`FromZero`).
// 2. Burst: BURST functions whose first calls arrive together, with a pool of BURST per worker (and the
//    fresh baseline), p50/p99/max; then the same burst against the default pool of 2 (degrades, never fails).
// 3. Warm p99 while the pool refills after the burst, against warm p99 with a full, quiet pool.
// Run: npm run bench:sandbox-coldstart   (SANDBOX_COLDSTART_CALLS default 10, SANDBOX_COLDSTART_BURST 15,
//   SANDBOX_COLDSTART_RUNTIMES default thread,process)
import http from 'node:http';
import { ControlPlane } from '../cluster/control-plane/control-plane.js';
import { DataPlane } from '../cluster/data-plane/data-plane.js';
import type { PoolSettings } from '../cluster/sandbox/index.js';
import { WorkerDaemon } from '../cluster/worker/daemon.js';
import { HEADER_SANDBOX_START, HEADER_SANDBOX_START_MS } from '../cluster/worker/module.js';
import { busyCores, envInt, exitIfStillRunningAfter, percentile, post, quiet, round, TOKEN, until } from './cluster.js';

const CALLS = envInt('SANDBOX_COLDSTART_CALLS', 10);
const BURST = envInt('SANDBOX_COLDSTART_BURST', 15);
const RUNTIMES = (process.env.SANDBOX_COLDSTART_RUNTIMES ?? 'thread,process').split(',') as ('thread' | 'process')[];
/** Warm calls measured per warm phase. */
const WARM_CALLS = 300;
const MEMORY_MIB = 128;

interface Cluster {
  readonly plane: ControlPlane;
  readonly port: number;
  stop(): Promise<void>;
}

/** A cluster for `use`, stopped after it whatever happens. */
async function withCluster<T>(runtime: 'thread' | 'process', pool: PoolSettings | undefined, use: (cluster: Cluster) => Promise<T>): Promise<T> {
  const cluster = await startCluster(runtime, pool);
  try {
    return await use(cluster);
  } finally {
    await cluster.stop();
  }
}

async function startCluster(runtime: 'thread' | 'process', pool: PoolSettings | undefined): Promise<Cluster> {
  const plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store: { kind: 'memory' }, shards: 1, onLog: quiet });
  const worker = await WorkerDaemon.start({
    id: 'w1',
    controlPlane: plane.clusterAddress,
    token: TOKEN,
    host: '127.0.0.1',
    runtime,
    capacity: { cpuMilli: 1_000_000, memoryMiB: 1_000_000, slots: 1000 },
    shards: 1,
    heartbeatMs: 50,
    ...(pool === undefined ? {} : { pool }),
    onLog: quiet,
  });
  const dp = await DataPlane.start({ id: 'dp1', controlPlane: plane.clusterAddress, token: TOKEN, host: '127.0.0.1', httpPort: 0, shards: 2, onLog: quiet });
  await until('the node and the data plane to register', async () => ((await plane.nodes()).length === 1 && plane.listDataplanes().some((d) => d.connected) ? true : undefined), 10_000);
  return {
    plane,
    port: Number(dp.invokeAddress.split(':')[1]),
    stop: async () => {
      await dp.stop();
      await worker.stop();
      await plane.stop();
    },
  };
}

/** Until the worker's heartbeat says its pool is full (bounded). */
async function poolFull(cluster: Cluster): Promise<void> {
  // A take reaches the scheduler up to ~150 ms later (the worker coalesces pool reports over 100 ms, then the
  // 50 ms heartbeat): a report read sooner may still say full.
  await new Promise((resolve) => setTimeout(resolve, 250));
  await until('the pool to be full', async () => {
    const pool = (await cluster.plane.nodes())[0]?.pool;
    return pool === undefined || pool.idle >= pool.target ? true : undefined;
  }, 60_000);
}

async function deploy(cluster: Cluster, runtime: 'thread' | 'process', names: readonly string[], extra: Record<string, unknown> = {}): Promise<void> {
  for (const name of names) {
    const created = await cluster.plane.createFunction({ name, runtime, source: { kind: 'builtin', workload: 'empty' }, cpuMilli: 1, memoryMiB: MEMORY_MIB, scaling: { minScale: 0, maxScale: 1, keepAliveMs: 600_000 }, ...extra });
    if (!created.ok) throw new Error(`cannot deploy ${name}: ${created.message}`);
  }
}

interface Call {
  readonly ms: number;
  readonly start: string;
  readonly createMs: number;
  readonly queueMs: number;
}

async function firstCall(cluster: Cluster, name: string): Promise<Call> {
  const r = await post(cluster.port, `/invoke/${name}`, '', 30_000);
  if (r.status !== 200) throw new Error(`${name}: status ${r.status}: ${r.body.toString()}`);
  if (r.headers['x-dirigent-cold-start'] !== 'true') throw new Error(`${name}: not a cold start`);
  const queue = /queue;dur=([\d.]+)/.exec(String(r.headers['server-timing']))?.[1];
  return { ms: r.ms, start: String(r.headers[HEADER_SANDBOX_START]), createMs: Number(r.headers[HEADER_SANDBOX_START_MS]), queueMs: Number(queue) };
}

const p = (values: readonly number[], q: number) => round(percentile([...values].sort((a, b) => a - b), q), 1);

/** One cold start at a time; `refill`: wait for a full pool before each. */
async function oneAtATime(cluster: Cluster, runtime: 'thread' | 'process', tag: string, refill: boolean): Promise<Call[]> {
  const names = Array.from({ length: CALLS }, (_, i) => `${tag}-${i}`);
  await deploy(cluster, runtime, names);
  const calls: Call[] = [];
  for (const name of names) {
    if (refill) await poolFull(cluster);
    else await new Promise((resolve) => setTimeout(resolve, 100));
    calls.push(await firstCall(cluster, name));
  }
  return calls;
}

/**
 * Cold starts of one function that scaled to zero between calls: the data plane knows it already, so no
 * lookup of the function precedes the cold start (as for a function's first call ever).
 */
async function fromZero(cluster: Cluster, runtime: 'thread' | 'process', refill: boolean): Promise<Call[]> {
  await deploy(cluster, runtime, ['idle'], { scaling: { minScale: 0, maxScale: 1, tickMs: 200, stableWindowMs: 1000, panicWindowMs: 400, keepAliveMs: 200 } });
  const calls: Call[] = [];
  for (let i = 0; i < CALLS; i++) {
    await until('idle to scale to zero', async () => {
      const view = await cluster.plane.getFunction('idle');
      return view.ok && view.value.status?.sandboxes.length === 0 ? true : undefined;
    }, 30_000);
    if (refill) await poolFull(cluster);
    calls.push(await firstCall(cluster, 'idle'));
  }
  return calls;
}

/** BURST first calls at once. */
async function burst(cluster: Cluster, runtime: 'thread' | 'process', tag: string): Promise<Call[]> {
  const names = Array.from({ length: BURST }, (_, i) => `${tag}-${i}`);
  await deploy(cluster, runtime, names);
  await poolFull(cluster);
  return Promise.all(names.map((name) => firstCall(cluster, name)));
}

/** p99 of WARM_CALLS sequential warm calls on one kept-alive connection, ms. */
async function warmP99(port: number, name: string): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const times: number[] = [];
  try {
    for (let i = 0; i < WARM_CALLS; i++) {
      const started = performance.now();
      await new Promise<void>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: `/invoke/${name}`, agent }, (res) => {
          res.resume().on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`warm call answered ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end();
      });
      times.push(performance.now() - started);
    }
  } finally {
    agent.destroy();
  }
  return p(times, 0.99);
}

function summary(calls: readonly Call[]) {
  const pooled = calls.filter((c) => c.start === 'pool').length;
  return {
    p50Ms: p(calls.map((c) => c.ms), 0.5),
    p99Ms: p(calls.map((c) => c.ms), 0.99),
    maxMs: round(Math.max(...calls.map((c) => c.ms)), 1),
    fromPool: pooled,
    fresh: calls.length - pooled,
    // Phases, p50 over the calls, ms.
    createP50Ms: p(calls.map((c) => c.createMs), 0.5),
    controlPlaneP50Ms: p(calls.map((c) => c.queueMs - c.createMs), 0.5),
    invokeP50Ms: p(calls.map((c) => c.ms - c.queueMs), 0.5),
  };
}

exitIfStillRunningAfter('bench:sandbox-coldstart', 20 * 60_000);
const busyBefore = await busyCores();
for (const runtime of RUNTIMES) {
  const { pool, poolFromZero, poolBurstDefault } = await withCluster(runtime, { sizes: [{ memoryMiB: MEMORY_MIB, count: 2 }], capMiB: 4096 }, async (pooled) => ({
    pool: summary(await oneAtATime(pooled, runtime, 'one', true)),
    poolFromZero: summary(await fromZero(pooled, runtime, true)),
    poolBurstDefault: summary(await burst(pooled, runtime, 'burst2')),
  }));
  // The burst pool: a stem per call, and a warm function to measure while it refills.
  const { poolBurst, warm } = await withCluster(runtime, { sizes: [{ memoryMiB: MEMORY_MIB, count: BURST }], capMiB: 4096 }, async (big) => {
    await deploy(big, runtime, ['warm']);
    await post(big.port, '/invoke/warm', '', 30_000);
    await poolFull(big);
    const warmQuietP99Ms = await warmP99(big.port, 'warm');
    const poolBurst = summary(await burst(big, runtime, 'burst'));
    const warmRefillP99Ms = await warmP99(big.port, 'warm');
    return { poolBurst, warm: { warmQuietP99Ms, warmRefillP99Ms } };
  });
  const { freshOne, freshFromZero, freshBurst } = await withCluster(runtime, undefined, async (fresh) => ({
    freshOne: summary(await oneAtATime(fresh, runtime, 'one', false)),
    freshFromZero: summary(await fromZero(fresh, runtime, false)),
    freshBurst: summary(await burst(fresh, runtime, 'burst')),
  }));
  process.stdout.write(
    `${JSON.stringify({
      bench: 'sandbox-coldstart',
      runtime,
      [`${runtime}ColdStartP50Ms`]: pool.p50Ms,
      [`${runtime}ColdStartP99Ms`]: pool.p99Ms,
      [`${runtime}ColdStartFreshP50Ms`]: freshOne.p50Ms,
      [`${runtime}ColdStartFreshP99Ms`]: freshOne.p99Ms,
      [`${runtime}ColdStartFromZeroP50Ms`]: poolFromZero.p50Ms,
      [`${runtime}ColdStartFromZeroFreshP50Ms`]: freshFromZero.p50Ms,
      pool,
      fresh: freshOne,
      poolFromZero,
      freshFromZero,
      [`burst${BURST}Pool${BURST}`]: poolBurst,
      [`burst${BURST}Pool2`]: poolBurstDefault,
      [`burst${BURST}Fresh`]: freshBurst,
      ...warm,
      calls: CALLS,
      busyCoresBefore: busyBefore,
    })}\n`,
  );
}
process.exit(0);
