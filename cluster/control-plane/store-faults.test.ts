// A store that fails its writes (a full disk under the file store, etcd unreachable, a fenced write after a lost
// lease): a create, update or delete answers 503 STORE_FAILED with the cause and changes nothing, so the answer
// never claims a change the next leader would not find; once the store writes again, the same change succeeds.
// A real control plane and a simulated worker on loopback; the memory store's writes fail on demand.
import test from 'ava';
import { WorkerDaemon } from '../worker/daemon.js';
import { ControlPlane } from './control-plane.js';

const TOKEN = 'store-faults-token';
const quiet = () => undefined;

test.serial('writes that fail: 503 STORE_FAILED naming the cause, and nothing changed; the same change succeeds once the store writes again', async (t) => {
  const plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store: { kind: 'memory' }, shards: 1, onLog: quiet });
  t.teardown(() => plane.stop());
  const worker = await WorkerDaemon.start({ id: 'w1', controlPlane: plane.clusterAddress, token: TOKEN, host: '127.0.0.1', runtime: 'simulated', nodes: 1, capacity: { cpuMilli: 4000, memoryMiB: 8192, slots: 10 }, shards: 1, onLog: quiet });
  t.teardown(() => worker.stop());
  for (let i = 0; i < 500 && (await plane.nodes()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));

  const store = plane.store as { put: typeof plane.store.put; delete: typeof plane.store.delete };
  const { put, delete: remove } = store;
  const full = () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
  const spec = { name: 'kept', runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' } };

  store.put = full;
  t.like(await plane.createFunction(spec), { ok: false, status: 503, code: 'STORE_FAILED' });
  t.regex(((await plane.createFunction(spec)) as { message: string }).message, /ENOSPC: no space left on device/);
  t.deepEqual(await plane.listFunctions(), [], 'not created');
  store.put = put;
  t.true((await plane.createFunction(spec)).ok);

  store.put = full;
  t.like(await plane.updateFunction('kept', { memoryMiB: 256 }), { ok: false, status: 503, code: 'STORE_FAILED' });
  const unchanged = await plane.getFunction('kept');
  t.true(unchanged.ok && unchanged.value.spec.memoryMiB !== 256, 'not updated');
  store.put = put;

  store.delete = full;
  t.like(await plane.deleteFunction('kept'), { ok: false, status: 503, code: 'STORE_FAILED' });
  t.true((await plane.getFunction('kept')).ok, 'not deleted');
  store.delete = remove;
  t.true((await plane.deleteFunction('kept')).ok);
  t.deepEqual(await plane.listFunctions(), []);
});
