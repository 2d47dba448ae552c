// The whole invocation path with real roles on loopback: a control plane, a worker with simulated
// sandboxes, and a data plane with the real routers and sandbox actors (module.ts).
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane } from '../control-plane/control-plane.js';
import { WorkerDaemon } from '../worker/daemon.js';
import { routerReplicaAddress } from '../../actors/messages.js';
import { DataPlane } from './data-plane.js';
import { errorOf, request, TestWs, until } from './fixtures/harness.js';

const TOKEN = 'e2e-token';

interface Cluster {
  plane: ControlPlane;
  dp: DataPlane;
  port: number;
  logs: string[];
}

async function startCluster(t: ExecutionContext): Promise<Cluster> {
  const logs: string[] = [];
  const onLog = (level: string, text: string) => logs.push(`${level} ${text}`);
  const dir = await mkdtemp(join(tmpdir(), 'dp-e2e-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store: { kind: 'memory' }, shards: 1, onLog });
  t.teardown(() => plane.stop());
  const worker = await WorkerDaemon.start({ id: 'w1', controlPlane: plane.clusterAddress, token: TOKEN, host: '127.0.0.1', runtime: 'simulated', capacity: { cpuMilli: 8000, memoryMiB: 8192, slots: 20 }, shards: 1, simulatedLatencyMs: 50, onLog });
  t.teardown(() => worker.stop());
  const dp = await DataPlane.start({ id: 'dp1', controlPlane: plane.clusterAddress, token: TOKEN, host: '127.0.0.1', httpPort: 0, compatPort: 0, shards: 2, asyncDir: dir, tuning: { tickMs: 100 }, onLog });
  t.teardown(() => dp.stop());
  await until('the node to register', async () => ((await plane.nodes()).length === 1 ? true : undefined));
  await until('the data plane to register', () => (plane.listDataplanes().some((d) => d.id === 'dp1' && d.connected) ? true : undefined));
  return { plane, dp, port: Number(dp.invokeAddress.split(':')[1]), logs };
}

test.serial('cold then warm over HTTP/1.1, by path and by Host; unknown functions 404; the same over WebSocket, h2c and async', async (t) => {
  const { plane, dp, port, logs } = await startCluster(t);
  t.deepEqual(plane.listDataplanes(), [{ id: 'dp1', invokeAddress: dp.invokeAddress, compatAddress: dp.compatAddress, connected: true }]);
  const created = await plane.createFunction({ name: 'hello', runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' }, scaling: { tickMs: 100 } });
  t.true(created.ok, JSON.stringify(created));

  const cold = await request(port, { method: 'POST', path: '/invoke/hello/x', headers: { 'content-type': 'text/plain' }, body: 'first', timeoutMs: 15_000 });
  t.is(cold.status, 200, `${cold.body.toString()}\n${logs.join('\n')}`);
  t.is(cold.body.toString(), 'first');
  t.is(cold.headers['content-type'], 'text/plain');
  t.is(cold.headers['x-dirigent-cold-start'], 'true');
  t.true(Number(cold.headers['x-dirigent-queue-ms']) >= 40, `queued ${String(cold.headers['x-dirigent-queue-ms'])} ms for a 50 ms creation`);
  t.regex(String(cold.headers['x-dirigent-sandbox']), /^hello-/);

  const warm = await request(port, { method: 'POST', path: '/', headers: { host: 'hello' }, body: 'second' });
  t.is(warm.status, 200);
  t.is(warm.body.toString(), 'second');
  t.is(warm.headers['x-dirigent-cold-start'], 'false');

  const unknown = await request(port, { method: 'POST', path: '/invoke/nobody', body: 'x', timeoutMs: 10_000 });
  t.is(unknown.status, 404);
  t.is(errorOf(unknown).code, 'UNKNOWN_FUNCTION');

  const ws = await TestWs.open(t, port);
  for (let i = 0; i < 10; i++) ws.send(JSON.stringify({ id: i, function: 'hello', body: `ws${i}` }));
  await ws.waitFrames(10);
  t.deepEqual(
    ws.json().map((r) => r.body).sort(),
    Array.from({ length: 10 }, (_, i) => `ws${i}`),
  );

  const session = http2.connect(`http://${dp.compatAddress}`);
  t.teardown(() => session.destroy());
  const h2 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/', ':authority': 'hello' });
    let status = 0;
    let body = '';
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (d: Buffer) => (body += d.toString()));
    stream.on('end', () => resolve({ status, body }));
    stream.on('error', reject);
    stream.end('over h2');
  });
  t.deepEqual(h2, { status: 200, body: 'over h2' });

  const accepted = await request(port, { method: 'POST', path: '/async/hello', body: 'later' });
  t.is(accepted.status, 202);
  const id = (JSON.parse(accepted.body.toString()) as { id: string }).id;
  const job = await until('the async job', async () => {
    const r = JSON.parse((await request(port, { path: `/async/${id}` })).body.toString()) as { status: string; response?: { body: string } };
    return r.status === 'done' ? r : undefined;
  });
  t.is(Buffer.from(job.response!.body, 'base64').toString(), 'later');
});

test.serial('two shards: each serves its own connections from its router replica and share of the slots; a removed sandbox drains from both', async (t) => {
  const { plane, dp, port, logs } = await startCluster(t);
  // Concurrency 4 on one pinned sandbox: 2 slots per shard. The timeout sets the drain timeout (timeoutMs + grace),
  // far past this test's waits: a replica that never reported `fn.drained` would show as a sandbox still there.
  const created = await plane.createFunction({ name: 'split', runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' }, concurrency: 4, timeoutMs: 60_000, scaling: { minScale: 1, maxScale: 1, tickMs: 100 } });
  t.true(created.ok, JSON.stringify(created));
  await until('the sandbox to be ready', async () => {
    const view = await plane.getFunction('split');
    return view.ok && view.value.status?.ready === 1 ? true : undefined;
  });
  // A connection of its own per request: the kernel spreads them over both shards.
  const answers = await Promise.all(Array.from({ length: 24 }, (_, i) => request(port, { method: 'POST', path: '/invoke/split', body: `r${i}`, timeoutMs: 15_000 })));
  t.deepEqual(answers.map((a) => a.status), answers.map(() => 200), logs.join('\n'));
  t.deepEqual(answers.map((a) => a.body.toString()), answers.map((_, i) => `r${i}`));
  const replicas = await Promise.all([0, 1].map((shard) => dp.runtime.inspect(routerReplicaAddress('split', shard))));
  const served = replicas.map((r) => (r.state as { dispatched: number; endpoints: number }).dispatched);
  t.true(served.every((n) => n > 0), `both replicas served (${served.join(' + ')})`);
  t.is(served[0]! + served[1]!, 24);

  const sandboxes = async () => {
    const view = await plane.getFunction('split');
    return view.ok ? (view.value.status?.sandboxes ?? []).map((s) => s.phase) : [];
  };
  t.deepEqual(await sandboxes(), ['ready']);
  // Scale to zero: the sandbox is removed from both replicas' sets, and deleted once both report it drained.
  const updated = await plane.updateFunction('split', { scaling: { minScale: 0, stableWindowMs: 1000, panicWindowMs: 200, keepAliveMs: 500 } });
  t.true(updated.ok, JSON.stringify(updated));
  await until('the sandbox to be drained and deleted', async () => ((await sandboxes()).length === 0 ? true : undefined), 15_000);
  t.false(logs.some((line) => line.includes('not drained')), logs.join('\n'));
});
