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
import { busyCores, envInt, exitIfStillRunningAfter, post, until } from './cluster.js';
import { burst as burstOf, deploy, firstCall, oneAtATime as oneAtATimeOf, p, poolFull, poolOf, summary, withPoolCluster as withCluster, type Call, type PoolCluster as Cluster } from './pool-cluster.js';

const CALLS = envInt('SANDBOX_COLDSTART_CALLS', 10);
const BURST = envInt('SANDBOX_COLDSTART_BURST', 15);
const RUNTIMES = (process.env.SANDBOX_COLDSTART_RUNTIMES ?? 'thread,process').split(',') as ('thread' | 'process')[];
/** Warm calls measured per warm phase. */
const WARM_CALLS = 300;

const oneAtATime = (cluster: Cluster, runtime: 'thread' | 'process', tag: string, refill: boolean) => oneAtATimeOf(cluster, runtime, tag, CALLS, refill);
const burst = (cluster: Cluster, runtime: 'thread' | 'process', tag: string) => burstOf(cluster, runtime, tag, BURST);

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

exitIfStillRunningAfter('bench:sandbox-coldstart', 20 * 60_000);
const busyBefore = await busyCores();
for (const runtime of RUNTIMES) {
  const { pool, poolFromZero, poolBurstDefault } = await withCluster(runtime, poolOf(2), async (pooled) => ({
    pool: summary(await oneAtATime(pooled, runtime, 'one', true)),
    poolFromZero: summary(await fromZero(pooled, runtime, true)),
    poolBurstDefault: summary(await burst(pooled, runtime, 'burst2')),
  }));
  // The burst pool: a stem per call, and a warm function to measure while it refills.
  const { poolBurst, warm } = await withCluster(runtime, poolOf(BURST), async (big) => {
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
