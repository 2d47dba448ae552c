// What `/readyz` of a leader means: the cluster can take a function and run it. It answers 503 saying what is
// missing until a worker and a data plane are connected, and Dirigent's form registration (whose reply is the
// addresses to invoke at) is refused with 503 and a message until a data plane is, never a 200 with an empty
// body. Real admin API, real worker and data plane on loopback.
import test from 'ava';
import { DataPlane } from '../data-plane/data-plane.js';
import { WorkerDaemon } from '../worker/daemon.js';
import { soleReplica, startAdminApi } from './admin-api.js';
import { ControlPlane } from './control-plane.js';

const TOKEN = 'readiness-test-token';
const quiet = () => undefined;

/** Polls `probe` every 20 ms until it answers true; fails after `ms` (generous: the machine is shared). */
async function until(what: string, probe: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const registration = new URLSearchParams([['name', 'early'], ['image', 'echo'], ['port_forwarding', '80'], ['port_forwarding', 'tcp'], ['requested_cpu', '10'], ['requested_memory', '16'], ['scaling_upper_bound', '1'], ['scaling_lower_bound', '0']]);

test.serial('/readyz is 503 until a worker and a data plane are connected; registration before a data plane is a 503 with a message', async (t) => {
  const plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store: { kind: 'memory' }, shards: 1, onLog: quiet });
  t.teardown(() => plane.stop());
  const api = await startAdminApi(soleReplica(plane), { host: '127.0.0.1', port: 0, registrationRuntime: 'simulated' });
  t.teardown(() => api.close());
  const readyz = async () => {
    const response = await fetch(`${api.url}/readyz`);
    return { status: response.status, text: await response.text() };
  };
  const register = async () => {
    const response = await fetch(`${api.url}/registerService`, { method: 'POST', body: registration, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    return { status: response.status, text: await response.text() };
  };

  await until('the leader serving', async () => plane.isServing);
  t.deepEqual(await readyz(), { status: 503, text: `leader (term ${plane.term}), waiting for a data plane and a worker to connect\n` });
  // /healthz only says the process answers.
  t.is((await fetch(`${api.url}/healthz`)).status, 200);

  const worker = await WorkerDaemon.start({ id: 'w1', controlPlane: plane.clusterAddress, token: TOKEN, host: '127.0.0.1', runtime: 'simulated', nodes: 1, capacity: { cpuMilli: 4000, memoryMiB: 8192, slots: 10 }, shards: 1, onLog: quiet });
  t.teardown(() => worker.stop());
  await until('the worker connected', async () => plane.status().workers === 1);
  t.deepEqual(await readyz(), { status: 503, text: `leader (term ${plane.term}), waiting for a data plane to connect\n` });
  const early = await register();
  t.is(early.status, 503);
  t.regex(early.text, /no data plane has registered yet/);
  t.deepEqual(await plane.listFunctions(), [], 'the refused registration created nothing');

  const dp = await DataPlane.start({ id: 'dp1', controlPlane: plane.clusterAddress, token: TOKEN, host: '127.0.0.1', httpPort: 0, shards: 1, onLog: quiet });
  t.teardown(() => dp.stop());
  await until('/readyz 200', async () => (await readyz()).status === 200);
  t.deepEqual(await readyz(), { status: 200, text: `leader (term ${plane.term})\n` });
  const registered = await register();
  t.is(registered.status, 200);
  t.not(registered.text, '', 'the addresses to invoke at');
  t.true(registered.text.split(';').every((address) => /^[\w.-]+:\d+$/.test(address)), registered.text);
});
