// Two parts, one JSON line.
// 1. Sandbox creation throughput and scheduling latency of the control plane, end to end over its real
//    transport: request for sandboxes (fn.scale) -> placement -> worker node actors (simulated runtime,
//    0 ms creation) -> endpoint routable on the data-plane side.
// 2. Then (its cluster stopped first): end-to-end cold starts as an HTTP client sees them, through a real data
//    plane, for the `thread` and `process` runtimes, from the pool of started sandboxes and fresh (the pool
//    disabled, same run) (bench/e2e-coldstart.ts): threadColdStartP50Ms, threadColdStartP99Ms,
//    threadColdStartFreshP50Ms, the same for `process`, BURST first calls at once (`threadBurst15P99Ms`), and
//    the baseline threadSandboxP50Ms (a thread sandbox created and called once, no cluster).
// Run: npm run bench:coldstart   (COLDSTART_RATE sandboxes/s, COLDSTART_SECONDS, COLDSTART_NODES, COLDSTART_FUNCTIONS;
//   BENCH_RUNS runs of COLDSTART_THREAD_CALLS cold starts each, default 3 x 10; COLDSTART_BURST default 15;
//   COLDSTART_RUNTIMES default thread,process; COLDSTART_SECONDS=0 skips part 1)
import { functionAddress, routerAddress } from '../actors/messages.js';
import { ControlPlane } from '../cluster/control-plane/control-plane.js';
import { ControlPlaneLink } from '../cluster/control-plane-link.js';
import { WorkerDaemon } from '../cluster/worker/daemon.js';
import { ActorRuntime } from '../runtime/index.js';
import { busyCores, envInt } from './cluster.js';
import { measureColdStarts, threadSandboxBaseline } from './e2e-coldstart.js';

const RATE = Number(process.env.COLDSTART_RATE ?? 2500);
const SECONDS = Number(process.env.COLDSTART_SECONDS ?? 30);
const NODES = Number(process.env.COLDSTART_NODES ?? 100);
const FUNCTIONS = Number(process.env.COLDSTART_FUNCTIONS ?? 50);
const THREAD_RUNS = envInt('BENCH_RUNS', 3);
const THREAD_CALLS = envInt('COLDSTART_THREAD_CALLS', 10);
const BURST = envInt('COLDSTART_BURST', 15);
const RUNTIMES = (process.env.COLDSTART_RUNTIMES ?? 'thread,process').split(',').map((r) => {
  if (r !== 'thread' && r !== 'process') throw new Error(`COLDSTART_RUNTIMES: ${JSON.stringify(r)} is not thread or process`);
  return r;
});
/** Requests go out in batches every PERIOD_MS, ms. */
const PERIOD_MS = 20;
const TOKEN = 'bench';
const quiet = () => undefined;

const percentile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

/** Part 1: sandboxes asked for at RATE per s for SECONDS, and when each became routable. */
async function sandboxCreation(): Promise<Record<string, unknown>> {
  const plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store: { kind: 'memory' }, shards: 1, placement: 'least-allocated', heartbeatTimeoutMs: 60_000, onLog: quiet });
  const worker = await WorkerDaemon.start({
    id: 'sim',
    controlPlane: plane.clusterAddress,
    token: TOKEN,
    host: '127.0.0.1',
    runtime: 'simulated',
    nodes: NODES,
    capacity: { cpuMilli: 1_000_000, memoryMiB: 4_000_000, slots: Math.ceil((RATE * SECONDS * 2) / NODES) },
    shards: 1,
    onLog: quiet,
  });
  const dataplane = await ActorRuntime.start({ shards: 1, modules: [{ url: new URL('./coldstart-kinds.js', import.meta.url).href }], remoteKinds: ['function', 'autoscaler', 'scheduler'], onLog: quiet });
  const link = new ControlPlaneLink(dataplane, { controlPlane: plane.clusterAddress, token: TOKEN, role: 'dataplane', id: 'bench-dp', info: { invokeAddress: '127.0.0.1:1' }, remoteKinds: ['function', 'autoscaler', 'scheduler'], log: quiet });
  await link.start();

  try {
    for (let waited = 0; (await plane.nodes()).length < NODES && waited < 200; waited++) await new Promise((r) => setTimeout(r, 50));
    const names = Array.from({ length: FUNCTIONS }, (_, i) => `f${i}`);
    for (const name of names) {
      // Scale is driven by the benchmark: the autoscaler's first tick is an hour away, so it never interferes.
      const created = await plane.createFunction({ name, runtime: 'simulated', source: { kind: 'builtin', workload: 'empty' }, cpuMilli: 1, memoryMiB: 1, scaling: { tickMs: 3_600_000, stableWindowMs: 3_600_000, panicWindowMs: 3_600_000, keepAliveMs: 3_600_000 } });
      if (!created.ok) throw new Error(created.message);
    }
    const requestedAt = new Map<string, number[]>(names.map((n) => [n, []]));
    const desired = new Map<string, number>(names.map((n) => [n, 0]));
    const perBatch = (RATE * PERIOD_MS) / 1000;
    const started = Date.now();
    let next = 0;
    let carry = 0;
    for (let batch = 0; batch < (SECONDS * 1000) / PERIOD_MS; batch++) {
      carry += perBatch;
      const count = Math.floor(carry);
      carry -= count;
      const now = Date.now();
      const grown = new Set<string>();
      for (let i = 0; i < count; i++) {
        const name = names[next++ % names.length]!;
        desired.set(name, desired.get(name)! + 1);
        requestedAt.get(name)!.push(now);
        grown.add(name);
      }
      for (const name of grown) plane.runtime.tell(functionAddress(name), { type: 'fn.scale', desired: desired.get(name)!, reason: 'bench' });
      const wait = started + (batch + 1) * PERIOD_MS - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const total = [...desired.values()].reduce((a, b) => a + b, 0);
    const latencies: number[] = [];
    let lastArrival = 0;
    const drainDeadline = Date.now() + 60_000;
    for (;;) {
      const arrivals = await Promise.all(names.map((n) => dataplane.ask<number[]>(routerAddress(n), { type: 'bench.arrivals' }, 30_000)));
      const arrived = arrivals.reduce((a, b) => a + b.length, 0);
      if (arrived >= total || Date.now() > drainDeadline) {
        latencies.length = 0;
        names.forEach((name, i) => {
          const requested = requestedAt.get(name)!;
          arrivals[i]!.forEach((at, k) => {
            if (requested[k] !== undefined) latencies.push(at - requested[k]!);
            lastArrival = Math.max(lastArrival, at);
          });
        });
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    latencies.sort((a, b) => a - b);
    if (process.env.COLDSTART_DEBUG) {
      for (const [label, runtime] of [['control plane', plane.runtime], ['worker', worker.runtime], ['data plane', dataplane]] as const) {
        const page = await runtime.listActors({ limit: 1000 });
        const busiest = page.items.sort((a, b) => b.meanUs * b.processed - a.meanUs * a.processed).slice(0, 5);
        console.error(label, JSON.stringify(await runtime.stats().then((s) => s.map((x) => ({ processed: x.processed, mailbox: x.mailbox, dead: x.deadLetters })))));
        for (const a of busiest) console.error(`  ${a.address} processed=${a.processed} meanUs=${a.meanUs.toFixed(1)} totalMs=${((a.meanUs * a.processed) / 1000).toFixed(0)} mailbox=${a.mailbox}`);
      }
      const status = await plane.getFunction(names[0]!);
      if (status.ok) console.error(JSON.stringify({ ...status.value.status, sandboxes: undefined }));
    }
    const seconds = (lastArrival - started) / 1000;
    return {
      bench: 'coldstart',
      creationsPerSec: Math.round(latencies.length / seconds),
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      nodes: NODES,
      seconds: Math.round(seconds * 10) / 10,
      requested: total,
      ready: latencies.length,
      offeredPerSec: RATE,
      functions: FUNCTIONS,
    };
  } finally {
    link.close();
    await dataplane.stop();
    await worker.stop();
    await plane.stop();
  }
}

const controlPlaneResult = SECONDS > 0 ? await sandboxCreation() : {};
const busyBefore = await busyCores();
const endToEnd: Record<string, number> = {};
for (const runtime of RUNTIMES) Object.assign(endToEnd, await measureColdStarts(runtime, THREAD_RUNS, THREAD_CALLS, BURST));
console.log(JSON.stringify({ bench: 'coldstart', ...controlPlaneResult, ...endToEnd, threadSandboxP50Ms: await threadSandboxBaseline(THREAD_CALLS), coldStartRuns: THREAD_RUNS, coldStartCalls: THREAD_CALLS, busyCoresBefore: busyBefore }));
process.exit(0);
