import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { functionAddress, routerReplicaAddress, type FunctionStatus, type SandboxReport } from '../../actors/messages.js';
import { openStore } from '../store/index.js';
import { DataPlane } from '../data-plane/data-plane.js';
import { request } from '../data-plane/fixtures/harness.js';
import { WorkerDaemon } from '../worker/daemon.js';
import { ControlPlane } from './control-plane.js';

const TOKEN = 'cp-test-token';
const quiet = () => undefined;

async function until<T>(probe: () => Promise<T | undefined | false>, what: string, attempts = 300, delayMs = 20): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const value = await probe();
    if (value !== undefined && value !== false) return value as T;
    await new Promise((r) => setTimeout(r, delayMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const echoSpec = (name: string) => ({ name, runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' } });

test.serial('a worker registers its nodes; sandboxes are placed, become ready and are deleted with the function', async (t) => {
  const plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store: { kind: 'memory' }, shards: 1, onLog: quiet });
  t.teardown(() => plane.stop());
  const worker = await WorkerDaemon.start({ id: 'w1', controlPlane: plane.clusterAddress, token: TOKEN, host: '127.0.0.1', runtime: 'simulated', nodes: 3, capacity: { cpuMilli: 4000, memoryMiB: 8192, slots: 50 }, shards: 1, onLog: quiet });
  t.teardown(() => worker.stop());
  await until(async () => (await plane.nodes()).length === 3, 'three nodes registered');

  const created = await plane.createFunction(echoSpec('hello'));
  t.true(created.ok);
  t.is((await plane.createFunction(echoSpec('hello'))).ok ? 200 : 409, 409);
  const writesBefore = plane.store.writes;
  plane.runtime.tell(functionAddress('hello'), { type: 'fn.scale', desired: 6, reason: 'test' });
  const status = await until(async () => {
    const s = await plane.runtime.ask<FunctionStatus>(functionAddress('hello'), { type: 'fn.status' });
    return s.ready === 6 ? s : undefined;
  }, 'six ready sandboxes');
  t.is(new Set(status.sandboxes.map((s) => s.nodeId)).size, 3, 'spread over the three nodes');
  t.is(plane.store.writes, writesBefore, 'no store write on a cold start');
  const nodes = await plane.nodes();
  t.is(nodes.reduce((sum, n) => sum + n.allocated.slots, 0), 6);

  const deleted = await plane.deleteFunction('hello');
  t.true(deleted.ok);
  await until(async () => (await plane.nodes()).every((n) => n.allocated.slots === 0), 'allocations released');
  await until(async () => {
    const lists = await Promise.all(worker.nodeIds.map((id) => worker.runtime.ask<unknown[]>({ kind: 'node', id }, { type: 'node.list' })));
    return lists.every((l) => l.length === 0);
  }, 'nothing left running on the workers');
  t.false((await plane.getFunction('hello')).ok);
});

test.serial('a deploy nothing here can run is refused with 422 naming the cause; a scaling-only update is not checked again', async (t) => {
  const plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store: { kind: 'memory' }, shards: 1, onLog: quiet });
  t.teardown(() => plane.stop());
  const refusal = async (input: unknown) => {
    const outcome = await plane.createFunction(input);
    return outcome.ok ? 'created' : `${outcome.status} ${outcome.code}: ${outcome.message}`;
  };
  t.is(await refusal(echoSpec('early')), '422 NO_WORKER: early cannot run here: no worker is connected to the control plane');

  const worker = await WorkerDaemon.start({ id: 'w1', controlPlane: plane.clusterAddress, token: TOKEN, host: '127.0.0.1', runtime: 'simulated', nodes: 2, capacity: { cpuMilli: 4000, memoryMiB: 8192, slots: 50 }, shards: 1, onLog: quiet });
  t.teardown(() => worker.stop());
  await until(async () => (await plane.nodes()).length === 2, 'two nodes registered');
  t.is(
    await refusal({ name: 'mod', source: { kind: 'thread', module: '/srv/handler.mjs' } }),
    '422 NO_WORKER_FOR_RUNTIME: mod cannot run here: a module runs on thread workers, and no connected worker runs thread sandboxes (the 2 connected node(s) run simulated)',
  );
  t.regex(await refusal({ name: 'cmd', source: { kind: 'process', command: 'python3' } }), /^422 NO_WORKER_FOR_RUNTIME: cmd cannot run here: a command runs on process workers/);
  t.is(
    await refusal({ ...echoSpec('big'), memoryMiB: 16_384 }),
    '422 NO_NODE_FITS: big cannot run here: no node can hold a sandbox of 16384 MiB and 100 millicores: the largest node has 8192 MiB, and the most CPU any has is 4000 millicores',
  );
  t.false((await plane.getFunction('big')).ok, 'nothing stored');
  t.is(plane.status().functions, 0);

  t.is(await refusal(echoSpec('ok')), 'created');
  const grown = await plane.updateFunction('ok', { memoryMiB: 16_384 });
  t.like(grown, { ok: false, status: 422, code: 'NO_NODE_FITS' });
  t.like(await plane.getFunction('ok'), { ok: true, value: { spec: { memoryMiB: 128, version: 1 } } }, 'a refused update changes nothing');
  const scaled = await plane.updateFunction('ok', { scaling: { maxScale: 3 } });
  t.like(scaled, { ok: true, value: { spec: { version: 2, templateVersion: 1 }, status: { version: 1, state: 'active' } } });
});

test.serial('a restarted control plane finds its functions in the file store and adopts running sandboxes from the workers', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dirigent-cp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = { kind: 'file' as const, dir };
  const first = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store, shards: 1, onLog: quiet });
  const port = Number(first.clusterAddress.split(':')[1]);
  const worker = await WorkerDaemon.start({ id: 'w1', controlPlane: first.clusterAddress, token: TOKEN, host: '127.0.0.1', runtime: 'simulated', nodes: 2, capacity: { cpuMilli: 4000, memoryMiB: 8192, slots: 50 }, shards: 1, onLog: quiet });
  t.teardown(() => worker.stop());
  await until(async () => (await first.nodes()).length === 2, 'nodes registered');
  t.true((await first.createFunction({ ...echoSpec('keep'), scaling: { minScale: 0 } })).ok);
  first.runtime.tell(functionAddress('keep'), { type: 'fn.scale', desired: 4, reason: 'test' });
  await until(async () => (await first.runtime.ask<FunctionStatus>(functionAddress('keep'), { type: 'fn.status' })).ready === 4, 'four ready');
  await first.stop();

  const second = await ControlPlane.start({ host: '127.0.0.1', clusterPort: port, token: TOKEN, store, shards: 1, onLog: quiet });
  t.teardown(() => second.stop());
  t.is(second.term, first.term + 1);
  const view = await second.getFunction('keep');
  t.true(view.ok, 'the function is back from the store');
  const status = await until(async () => {
    const s = await second.runtime.ask<FunctionStatus>(functionAddress('keep'), { type: 'fn.status' });
    return s.ready === 4 ? s : undefined;
  }, 'the four sandboxes adopted from the worker');
  t.is(status.creating, 0, 'nothing was recreated');
  t.is(second.status().reconstruction.sandboxesAdopted, 4);
  await until(async () => (await second.nodes()).length === 2, 'nodes registered again');
});

test.serial('after a restart, adopted sandboxes keep the version they run; those older than the stored spec are replaced', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dirigent-cp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = { kind: 'file' as const, dir };
  const first = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store, shards: 1, onLog: quiet });
  const port = Number(first.clusterAddress.split(':')[1]);
  const worker = await WorkerDaemon.start({ id: 'w1', controlPlane: first.clusterAddress, token: TOKEN, host: '127.0.0.1', runtime: 'simulated', capacity: { cpuMilli: 4000, memoryMiB: 8192, slots: 50 }, shards: 1, onLog: quiet });
  t.teardown(() => worker.stop());
  await until(async () => (await first.nodes()).length === 1, 'the node registered');
  t.true((await first.createFunction(echoSpec('roll'))).ok);
  first.runtime.tell(functionAddress('roll'), { type: 'fn.scale', desired: 2, reason: 'test' });
  const old = await until(async () => {
    const s = await first.runtime.ask<FunctionStatus>(functionAddress('roll'), { type: 'fn.status' });
    return s.ready === 2 ? s.sandboxes.map((sandbox) => sandbox.sandboxId) : undefined;
  }, 'two ready');
  await first.stop();
  // An update the previous leader stored but did not roll out.
  const stored = await openStore(store);
  const spec = (await stored.get('functions/roll')) as Record<string, unknown>;
  await stored.put('functions/roll', { ...spec, memoryMiB: 256, version: 2, templateVersion: 2 });
  await stored.close();

  const second = await ControlPlane.start({ host: '127.0.0.1', clusterPort: port, token: TOKEN, store, shards: 1, onLog: quiet });
  t.teardown(() => second.stop());
  const status = await until(async () => {
    // Through the admin operation: it waits for the new leader to rebuild its functions.
    const view = await second.getFunction('roll');
    const s = view.ok ? view.value.status : null;
    return s !== null && s.state === 'active' && s.ready === 2 && s.sandboxes.length === 2 ? s : undefined;
  }, 'the adopted sandboxes of version 1 replaced by two of version 2');
  t.like(status, { version: 2, outdated: 0 });
  t.true(status.sandboxes.every((sandbox) => sandbox.version === 2 && !old.includes(sandbox.sandboxId)), JSON.stringify(status.sandboxes));
  const running = await until(async () => {
    const reports = await worker.runtime.ask<SandboxReport[]>({ kind: 'node', id: 'w1' }, { type: 'node.list' });
    return reports.length === 2 ? reports : undefined;
  }, 'the old sandboxes deleted on the worker');
  t.deepEqual(running.map((r) => r.version), [2, 2]);
});

test.serial('after a control-plane restart, both router replicas of a two-shard data plane take the new term, serve, and drain', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dirigent-cp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = { kind: 'file' as const, dir };
  const first = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store, shards: 1, onLog: quiet });
  const clusterAddress = first.clusterAddress;
  const worker = await WorkerDaemon.start({ id: 'w1', controlPlane: clusterAddress, token: TOKEN, host: '127.0.0.1', runtime: 'simulated', capacity: { cpuMilli: 4000, memoryMiB: 8192, slots: 50 }, shards: 1, onLog: quiet });
  t.teardown(() => worker.stop());
  const dp = await DataPlane.start({ id: 'dp1', controlPlane: clusterAddress, token: TOKEN, host: '127.0.0.1', httpPort: 0, shards: 2, onLog: quiet });
  t.teardown(() => dp.stop());
  const port = Number(dp.invokeAddress.split(':')[1]);
  await until(async () => (await first.nodes()).length === 1 && first.listDataplanes().some((d) => d.connected), 'worker and data plane registered');
  t.true((await first.createFunction({ ...echoSpec('pair'), concurrency: 4, scaling: { minScale: 1, maxScale: 1 } })).ok);
  await until(async () => (await first.runtime.ask<FunctionStatus>(functionAddress('pair'), { type: 'fn.status' })).ready === 1, 'one ready');
  await first.stop();

  const second = await ControlPlane.start({ host: '127.0.0.1', clusterPort: Number(clusterAddress.split(':')[1]), token: TOKEN, store, shards: 1, onLog: quiet });
  t.teardown(() => second.stop());
  await until(async () => second.listDataplanes().some((d) => d.connected), 'the data plane reconnected');
  t.is(second.status().dataplanes, 1, 'one data plane, whatever its shard count');
  // Both replicas hold the new leader's term (the home replica relayed its snapshot), and serve.
  const terms = await until(async () => {
    const views = await Promise.all([0, 1].map((shard) => dp.runtime.inspect(routerReplicaAddress('pair', shard)).catch(() => undefined)));
    const held = views.map((v) => (v?.state as { term?: number } | undefined)?.term);
    return held.every((term) => term === second.term) ? held : undefined;
  }, 'both replicas on the new term');
  t.deepEqual(terms, [second.term, second.term]);
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => request(port, { method: 'POST', path: '/invoke/pair', body: `x${i}`, timeoutMs: 10_000 })));
  t.deepEqual(answers.map((a) => a.status), answers.map(() => 200));
  // The new leader waits for both replicas when the sandbox goes.
  const updated = await second.updateFunction('pair', { scaling: { minScale: 0, tickMs: 100, stableWindowMs: 1000, panicWindowMs: 200, keepAliveMs: 500 } });
  t.true(updated.ok, JSON.stringify(updated));
  await until(async () => ((await second.runtime.ask<FunctionStatus>(functionAddress('pair'), { type: 'fn.status' })).sandboxes.length === 0 ? true : undefined), 'drained and deleted', 500, 20);
});

test.serial('a data plane that connects while the new leader waits for its workers is held, not refused: it connects once and gets the new term\'s sets as the functions start', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dirigent-cp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = { kind: 'file' as const, dir };
  const first = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store, shards: 1, onLog: quiet });
  const clusterAddress = first.clusterAddress;
  const worker = await WorkerDaemon.start({ id: 'w1', controlPlane: clusterAddress, token: TOKEN, host: '127.0.0.1', runtime: 'simulated', capacity: { cpuMilli: 4000, memoryMiB: 8192, slots: 50 }, shards: 1, onLog: quiet });
  t.teardown(() => worker.stop());
  // A second registered worker that will not come back: the next leader waits for it until its bound.
  const gone = await WorkerDaemon.start({ id: 'w2', controlPlane: clusterAddress, token: TOKEN, host: '127.0.0.1', runtime: 'simulated', capacity: { cpuMilli: 4000, memoryMiB: 8192, slots: 50 }, shards: 1, onLog: quiet });
  const dpLog: string[] = [];
  const dp = await DataPlane.start({ id: 'dp1', controlPlane: clusterAddress, token: TOKEN, host: '127.0.0.1', httpPort: 0, shards: 1, onLog: (_level, text) => dpLog.push(text) });
  t.teardown(() => dp.stop());
  const port = Number(dp.invokeAddress.split(':')[1]);
  await until(async () => (await first.nodes()).length === 2 && first.listDataplanes().some((d) => d.connected), 'workers and data plane registered');
  t.true((await first.createFunction({ ...echoSpec('held'), concurrency: 4, scaling: { minScale: 1, maxScale: 1 } })).ok);
  await until(async () => (await first.runtime.ask<FunctionStatus>(functionAddress('held'), { type: 'fn.status' })).ready === 1, 'one ready');
  await gone.stop();
  await first.stop();

  const second = await ControlPlane.start({ host: '127.0.0.1', clusterPort: Number(clusterAddress.split(':')[1]), token: TOKEN, store, shards: 1, reconstructTimeoutMs: 1500, onLog: quiet });
  t.teardown(() => second.stop());
  const connected = () => dpLog.filter((line) => line.startsWith(`connected to the control plane at ${clusterAddress} (term ${second.term})`)).length;
  await until(async () => connected() === 1, 'the data plane connected to the new leader', 100, 20);
  t.is(second.status().reconstruction.phase, 'waiting', 'connected during the rebuild');
  t.false(second.listDataplanes().some((d) => d.connected), 'held: nothing is routed to it before the functions start');
  await second.whenServing();
  const term = await until(async () => {
    const view = await dp.runtime.inspect(routerReplicaAddress('held', 0)).catch(() => undefined);
    const held = (view?.state as { term?: number } | undefined)?.term;
    return held === second.term ? held : undefined;
  }, 'the router on the new term');
  t.is(term, second.term);
  t.true(second.listDataplanes().some((d) => d.connected));
  t.is((await request(port, { method: 'POST', path: '/invoke/held', body: 'x', timeoutMs: 10_000 })).status, 200);
  t.is(connected(), 1, 'one connection: never refused, never dropped');
});

test('Dirigent registration with no data plane registered is refused with 503 NO_DATAPLANE, not an empty 200, and creates nothing', async (t) => {
  const plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store: { kind: 'memory' }, shards: 1, onLog: quiet });
  t.teardown(() => plane.stop());
  const form = new URLSearchParams([['name', 'early'], ['image', 'echo'], ['port_forwarding', '80'], ['port_forwarding', 'tcp'], ['requested_cpu', '10'], ['requested_memory', '16'], ['scaling_upper_bound', '1'], ['scaling_lower_bound', '0']]);
  t.like(await plane.registerDirigent(form), { ok: false, status: 503, code: 'NO_DATAPLANE' });
  t.deepEqual(await plane.listFunctions(), []);
});
