// Stem cells end to end: a control plane, a thread worker and a process worker that keep pools, and a data
// plane, all real (in this process, over loopback). A function's first call through the data plane is served
// by a pooled sandbox (its first response says `x-dirigent-sandbox-start: pool`), one of a class without a
// pool starts fresh; the function sees only its own environment; the pool shows in the node's status and in
// /metrics, and its memory cap is taken off the node's capacity.
import test from 'ava';
import { ControlPlane } from '../control-plane/control-plane.js';
import { renderControlPlaneMetrics } from '../control-plane/metrics.js';
import { DataPlane } from '../data-plane/data-plane.js';
import { request, until, type HttpResult } from '../data-plane/fixtures/harness.js';
import { WorkerDaemon } from './daemon.js';
import { HEADER_SANDBOX_START, HEADER_SANDBOX_START_MS } from './module.js';

const TOKEN = 'stem-cells-test-token';
const ENV_MODULE = new URL('../../../cluster/sandbox/fixtures/env.mjs', import.meta.url).pathname;
const ENV_SERVER = new URL('../../../cluster/sandbox/fixtures/env-server.cjs', import.meta.url).pathname;
const quiet = (): undefined => undefined;
const MEMORY_MIB = 100_000;
// 2 stems: the deploy's source check takes one, the first call the other.
const POOL = { sizes: [{ memoryMiB: 128, count: 2 }], capMiB: 200, idleDelayMs: 0 };

// A stand-in for what a worker's environment may hold and no function may see.
process.env['DIRIGENT_TEST_SECRET'] = 'host-only';

let plane: ControlPlane;
let workers: WorkerDaemon[] = [];
let dp: DataPlane;
let port: number;

test.before(async () => {
  plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store: { kind: 'memory' }, shards: 1, onLog: quiet });
  for (const runtime of ['thread', 'process'] as const) {
    workers.push(
      await WorkerDaemon.start({
        id: runtime,
        controlPlane: plane.clusterAddress,
        token: TOKEN,
        host: '127.0.0.1',
        runtime,
        capacity: { cpuMilli: 100_000, memoryMiB: MEMORY_MIB, slots: 50 },
        shards: 2,
        heartbeatMs: 100,
        pool: POOL,
        onLog: quiet,
      }),
    );
  }
  dp = await DataPlane.start({ id: 'dp1', controlPlane: plane.clusterAddress, token: TOKEN, host: '127.0.0.1', httpPort: 0, shards: 1, onLog: quiet });
  port = Number(dp.invokeAddress.split(':')[1]);
  await until('both nodes report a full pool', async () => ((await plane.nodes()).filter((n) => n.pool?.idle === 2).length === 2 ? true : undefined), 30_000);
  await until('the data plane to register', () => (plane.listDataplanes().some((d) => d.connected) ? true : undefined), 10_000);
});

test.after.always(async () => {
  await dp?.stop();
  for (const worker of workers) await worker.stop();
  await plane?.stop();
});

const invoke = (name: string): Promise<HttpResult> => request(port, { method: 'POST', path: `/invoke/${name}`, timeoutMs: 20_000 });

async function deploy(name: string, runtime: 'thread' | 'process', source: Record<string, unknown>, memoryMiB: number): Promise<void> {
  await until('the pool of its node to be full', async () => ((await plane.nodes()).find((n) => n.nodeId === runtime)?.pool?.idle === 2 ? true : undefined), 30_000);
  const created = await plane.createFunction({ name, runtime, source, memoryMiB, env: { GREETING: `hi ${name}` }, scaling: { minScale: 0, maxScale: 1, keepAliveMs: 600_000 } });
  if (!created.ok) throw new Error(`cannot deploy ${name}: ${created.message}`);
}

test.serial('thread: the first call is served by a pooled sandbox with the function\u2019s env only; later calls are plain', async (t) => {
  await deploy('thread-pooled', 'thread', { kind: 'thread', module: ENV_MODULE }, 128);
  const cold = await invoke('thread-pooled');
  t.is(cold.status, 200);
  t.is(cold.headers['x-dirigent-cold-start'], 'true');
  t.is(cold.headers[HEADER_SANDBOX_START], 'pool');
  t.regex(String(cold.headers[HEADER_SANDBOX_START_MS]), /^\d+\.\d{3}$/);
  t.deepEqual((JSON.parse(cold.body.toString()) as { env: unknown }).env, { GREETING: 'hi thread-pooled' });
  const warm = await invoke('thread-pooled');
  t.is(warm.headers['x-dirigent-cold-start'], 'false');
  t.is(warm.headers[HEADER_SANDBOX_START], undefined, 'only the first response says how the sandbox started');
});

test.serial('thread: a memory class without a pool starts fresh', async (t) => {
  await deploy('thread-big', 'thread', { kind: 'thread', module: ENV_MODULE }, 256);
  const cold = await invoke('thread-big');
  t.is(cold.status, 200);
  t.is(cold.headers[HEADER_SANDBOX_START], 'fresh');
});

test.serial('process: `node <script>` runs in a pooled process, with no line to the worker and none of its env', async (t) => {
  await deploy('process-pooled', 'process', { kind: 'process', command: 'node', args: [ENV_SERVER] }, 128);
  const cold = await invoke('process-pooled');
  t.is(cold.status, 200);
  t.is(cold.headers[HEADER_SANDBOX_START], 'pool');
  const seen = JSON.parse(cold.body.toString()) as { env: Record<string, string>; connected: boolean };
  t.is(seen.env['GREETING'], 'hi process-pooled');
  t.is(seen.env['DIRIGENT_TEST_SECRET'], undefined);
  t.deepEqual(Object.keys(seen.env).sort(), ['DIRIGENT_FUNCTION', 'DIRIGENT_MEMORY_MIB', 'DIRIGENT_SANDBOX_ID', 'GREETING', 'PATH', 'PORT']);
  t.false(seen.connected);
});

test.serial('the pools show in node status and /metrics; their cap is taken off the capacity placement sees', async (t) => {
  const nodes = await until('the heartbeats to carry the cold starts', async () => {
    const views = await plane.nodes();
    return views.find((n) => n.nodeId === 'thread')?.pool?.fresh === 2 && views.find((n) => n.nodeId === 'process')?.pool?.fromPool === 2 ? views : undefined;
  }, 10_000);
  for (const node of nodes) {
    t.is(node.capacity.memoryMiB, MEMORY_MIB - POOL.capMiB, `${node.nodeId}: capacity less the pool's cap`);
    t.like(node.pool, { target: 2, capMiB: 200 });
    t.true((node.pool?.idleMiB ?? -1) >= 0);
  }
  // Each deploy's source check and first call: two creations per function.
  t.like(nodes.find((n) => n.nodeId === 'thread')?.pool, { fromPool: 2, fresh: 2 });
  const metrics = await renderControlPlaneMetrics(plane);
  t.regex(metrics, /^dirigent_node_cold_starts_total\{node="thread",start="pool"\} 2$/m);
  t.regex(metrics, /^dirigent_node_cold_starts_total\{node="thread",start="fresh"\} 2$/m);
  t.regex(metrics, /^dirigent_node_pool_target_sandboxes\{node="process"\} 2$/m);
  t.regex(metrics, /^dirigent_node_pool_memory_cap_mib\{node="process"\} 200$/m);
});
