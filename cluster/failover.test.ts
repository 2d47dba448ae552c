// Failover with real processes and a real etcd: `dirigent cluster`'s topology (3 control-plane replicas,
// 2 data planes, 2 workers of the simulated runtime), a steady warm load and a stream of cold starts, and
// SIGKILL of the leader. What a client must see: no failed warm invocation, every queued cold request
// served, a new leader within the lease TTL plus one second that adopts every sandbox under its id; and
// nothing about sandboxes in etcd.
import test from 'ava';
import { Etcd3 } from 'etcd3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminClient } from './admin-client.js';
import { DistributedCluster } from './cluster-launcher.js';
import { until } from '../runtime/fixtures/until.js';
import { etcdMissingReason } from './fixtures/etcd.js';
import { startSteadyLoad } from './fixtures/steady-load.js';

const LEASE_TTL_S = 2;
const COLD_FUNCTIONS = 6;
/** Between first calls of the cold functions, ms. */
const COLD_EVERY_MS = 400;

const etcdMissing = etcdMissingReason();
if (etcdMissing) console.log(`# failover tests skipped: ${etcdMissing}`);
const serial = etcdMissing ? test.serial.skip : test.serial;

let cluster: DistributedCluster;
let dataDir: string;
const output: string[] = [];

test.before(async () => {
  if (etcdMissing) return;
  dataDir = await mkdtemp(join(tmpdir(), 'dirigent-failover-'));
  cluster = await DistributedCluster.start({ dataDir, controlPlanes: 3, dataPlanes: 2, workers: 2, runtime: 'simulated', ports: 'free', leaseTtlS: LEASE_TTL_S, restart: false, onOutput: (line) => output.push(line) });
});

test.after.always(async () => {
  process.stderr.write(`DEBUG after start ${performance.now()}\n`);
  await cluster?.stop();
  process.stderr.write(`DEBUG after stopped ${performance.now()}\n`);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

test.afterEach.always((t) => {
  if (!t.passed) t.log(output.slice(-60).join('\n'));
});

const adminOf = (name: string) => new AdminClient({ adminUrl: String(cluster.byName(name).ready.admin) });
const invokeUrls = () => cluster.of('data-plane').map((dp) => `http://${String(dp.ready.invoke)}`);

async function sandboxIds(client: AdminClient, name: string): Promise<string[]> {
  const view = (await client.getFunction(name)) as unknown as { status: { sandboxes: { sandboxId: string; phase: string }[] } | null };
  return (view.status?.sandboxes ?? []).filter((s) => s.phase === 'ready').map((s) => s.sandboxId).sort();
}

serial('SIGKILL of the leader under warm load and cold starts: a new leader adopts every sandbox, no warm request fails, queued cold requests are served', async (t) => {
  const leader = await until('a leader', () => cluster.leader(), 15_000, 100);
  const followers = cluster.of('control-plane').filter((p) => p.name !== leader.name);
  // A follower forwards the admin API to the leader.
  const viaFollower = adminOf(followers[0]!.name);
  await viaFollower.createFunction({ name: 'warm', runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' }, concurrency: 8, scaling: { minScale: 2, maxScale: 2 } });
  for (let i = 1; i <= COLD_FUNCTIONS; i++) await viaFollower.createFunction({ name: `cold${i}`, runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' }, queueTimeoutMs: 15_000 });
  await until('warm has 2 ready sandboxes', async () => ((await sandboxIds(viaFollower, 'warm')).length === 2 ? true : undefined), 15_000);
  const before = await sandboxIds(viaFollower, 'warm');
  await until('both data planes route to warm', async () => {
    const answers = await Promise.all(invokeUrls().map((url) => fetch(`${url}/invoke/warm`, { method: 'POST', body: 'x' }).then((r) => r.status)));
    return answers.every((s) => s === 200) ? true : undefined;
  }, 10_000);

  const load = startSteadyLoad({ targets: invokeUrls(), path: '/invoke/warm', ratePerSec: 200, connections: 16 });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const killedAt = performance.now();
  cluster.byName(leader.name).child.process.kill('SIGKILL');

  // A stream of cold starts across the gap: each function's first call, every COLD_EVERY_MS.
  const cold = Array.from({ length: COLD_FUNCTIONS }, (_, i) =>
    new Promise((resolve) => setTimeout(resolve, i * COLD_EVERY_MS)).then(async () => {
      const started = performance.now();
      const response = await fetch(`${invokeUrls()[i % 2]!}/invoke/cold${i + 1}`, { method: 'POST', body: 'cold', signal: AbortSignal.timeout(20_000) });
      await response.text();
      return { status: response.status, coldStart: response.headers.get('x-dirigent-cold-start'), startedMs: Math.round(started - killedAt), tookMs: Math.round(performance.now() - started) };
    }),
  );

  // The new leader: polled every 50 ms on the remaining replicas.
  let next: { name: string; term: number } | undefined;
  for (let waited = 0; next === undefined && waited < 15_000; waited += 50) {
    next = await cluster.leader();
    if (next?.name === leader.name) next = undefined;
    if (next === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const electedMs = performance.now() - killedAt;
  t.truthy(next, 'a new leader');
  t.true(next!.term > leader.term, `term ${next!.term} > ${leader.term}`);
  t.true(electedMs <= LEASE_TTL_S * 1000 + 1000 + 500, `serving as leader ${Math.round(electedMs)} ms after the kill (lease ${LEASE_TTL_S} s + 1 s, + 0.5 s for etcd's expiry sweep)`);

  const coldResults = await Promise.all(cold);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const answers = await load.stop();
  t.log(`new leader ${next!.name} (term ${next!.term}) serving ${Math.round(electedMs)} ms after the kill; warm: ${answers.length} requests; cold: ${JSON.stringify(coldResults)}`);

  const failed = answers.filter((a) => a.status !== 200);
  t.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${answers.length} warm requests failed`);
  t.true(answers.length >= 200 * 3, `${answers.length} warm requests sent`);
  for (const result of coldResults) t.like(result, { status: 200, coldStart: 'true' });

  const nextAdmin = adminOf(next!.name);
  t.deepEqual(await sandboxIds(nextAdmin, 'warm'), before, 'every sandbox adopted under its id, none created');
  const served = new Set(answers.map((a) => a.sandbox));
  t.deepEqual([...served].sort(), before, 'every warm answer came from a live sandbox of the function');
  const status = (await nextAdmin.status()) as { term: number; reconstruction: { phase: string; sandboxesAdopted: number; workersMissing: string[] } };
  t.is(status.term, next!.term);
  t.like(status.reconstruction, { phase: 'serving', workersMissing: [] });
  t.true(status.reconstruction.sandboxesAdopted >= 2);

  // Desired state only in etcd: no key or value names a sandbox.
  const etcd = new Etcd3({ hosts: cluster.etcdEndpoint });
  try {
    const entries = await etcd.getAll().prefix('dirigent/').strings();
    const keys = Object.keys(entries);
    t.true(keys.every((key) => /^dirigent\/(functions|workers|dataplanes|replicas|leader)\//.test(key)), keys.join(', '));
    t.false(Object.values(entries).some((value) => /warm-\d+-\d+|cold\d-\d+-\d+/.test(value)), 'no sandbox id stored');
  } finally {
    etcd.close();
  }
});

serial('followers answer /readyz as followers of the leader and forward the admin API; status lists every replica', async (t) => {
  const leader = await until('a leader', () => cluster.leader(), 15_000, 100);
  for (const replica of cluster.of('control-plane')) {
    if (replica.child.process.exitCode !== null || replica.child.process.signalCode !== null) continue;
    const text = await (await fetch(`${String(replica.ready.admin)}/readyz`)).text();
    t.regex(text, replica.name === leader.name ? /^leader \(term \d+\)/ : new RegExp(`^follower \\(leader: ${leader.name}, term ${leader.term}\\)`));
    const replicas = await adminOf(replica.name).replicas();
    t.deepEqual(replicas.map((r) => r.id), ['cp1', 'cp2', 'cp3']);
    t.is(replicas.filter((r) => r.role === 'leader').length, 1);
  }
});
