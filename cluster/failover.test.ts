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
import { request } from './data-plane/fixtures/harness.js';
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
  cluster = await DistributedCluster.start({
    dataDir,
    controlPlanes: 3,
    dataPlanes: 2,
    workers: 2,
    runtime: 'simulated',
    ports: 'free',
    leaseTtlS: LEASE_TTL_S,
    restart: false,
    // A node silent for 3 s is dead (heartbeats every 500 ms), so that worker loss is seen within a test.
    extraArgs: { 'control-plane': ['--heartbeat-timeout-ms', '3000'], worker: ['--heartbeat-ms', '500'] },
    onOutput: (line) => {
      if (!line.startsWith('[etcd]')) output.push(line);
    },
  });
});

test.after.always(async () => {
  await cluster?.stop();
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

/** `count` POSTs to `path` spread over the data planes, in parallel; their statuses and serving sandboxes. */
async function burst(path: string, count: number, headers: Record<string, string> = {}, urls = invokeUrls()): Promise<{ status: number; sandbox: string | null }[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const response = await fetch(`${urls[i % urls.length]!}${path}`, { method: 'POST', body: `b${i}`, headers, signal: AbortSignal.timeout(15_000) });
      await response.text();
      return { status: response.status, sandbox: response.headers.get('x-dirigent-sandbox') };
    }),
  );
}

serial('Dirigent registration through a follower answers both data planes\' addresses, and each routes by Host', async (t) => {
  const leader = await until('a leader', () => cluster.leader(), 15_000, 100);
  const follower = cluster.of('control-plane').find((p) => p.child.process.exitCode === null && p.child.process.signalCode === null && p.name !== leader.name)!;
  const form = new URLSearchParams([['name', 'loader'], ['image', 'docker.io/cvetkovic/dirigent_empty_function:latest'], ['port_forwarding', '80'], ['port_forwarding', 'tcp'], ['requested_cpu', '10'], ['requested_memory', '16'], ['scaling_upper_bound', '2'], ['scaling_lower_bound', '0']]);
  const response = await fetch(`${String(follower.ready.admin)}/registerService`, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const body = await response.text();
  t.is(response.status, 200, body);
  const compat = cluster.of('data-plane').map((dp) => String(dp.ready.compat));
  t.is(body, compat.join(';'));
  for (const address of body.split(';')) {
    // fetch() may not set Host; Dirigent's loader does.
    const answer = await request(Number(address.split(':')[1]), { method: 'POST', path: '/', body: 'hi', headers: { host: 'loader' }, timeoutMs: 15_000 });
    t.is(answer.status, 200, `through ${address}`);
  }
});

serial('a lost worker: its sandboxes are recreated on the other and no answer comes from a dead one; it comes back under its id', async (t) => {
  const leader = await until('a leader', () => cluster.leader(), 15_000, 100);
  const client = new AdminClient({ adminUrl: leader.adminUrl });
  await client.createFunction({ name: 'spread', runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' }, concurrency: 4, scaling: { minScale: 4, maxScale: 4 } });
  const nodeOf = async () => {
    const view = (await client.getFunction('spread')) as unknown as { status: { sandboxes: { sandboxId: string; nodeId: string; phase: string }[] } };
    return view.status.sandboxes.filter((s) => s.phase === 'ready');
  };
  await until('4 ready on both workers', async () => {
    const ready = await nodeOf();
    return ready.length === 4 && new Set(ready.map((s) => s.nodeId)).size === 2 ? true : undefined;
  }, 15_000, 100);
  cluster.byName('w2').child.process.kill('SIGKILL');
  const recovered = await until('4 ready, all on w1', async () => {
    const ready = await nodeOf();
    return ready.length === 4 && ready.every((s) => s.nodeId === 'w1') ? ready : undefined;
  }, 15_000, 200);
  const live = new Set(recovered.map((s) => s.sandboxId));
  const answers = await burst('/invoke/spread', 40);
  t.deepEqual(answers.filter((a) => a.status !== 200), []);
  t.true(answers.every((a) => a.sandbox !== null && live.has(a.sandbox)), 'only live sandboxes answer');

  await cluster.restart('w2');
  await until('w2 alive again', async () => ((await client.nodes()).some((n) => n.nodeId === 'w2' && n.alive === true) ? true : undefined), 15_000, 200);
  t.pass();
});

serial('a lost data plane is dropped and its registration kept; the other serves; when it returns it is routed to again', async (t) => {
  const leader = await until('a leader', () => cluster.leader(), 15_000, 100);
  const client = new AdminClient({ adminUrl: leader.adminUrl });
  await client.createFunction({ name: 'steady', runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' }, concurrency: 8, scaling: { minScale: 1, maxScale: 1 } });
  await until('steady served by both data planes', async () => ((await burst('/invoke/steady', 4)).every((a) => a.status === 200) ? true : undefined), 15_000, 200);
  cluster.byName('dp2').child.process.kill('SIGKILL');
  await until('dp2 disconnected', async () => ((await client.dataplanes()).find((d) => d.id === 'dp2')?.connected === false ? true : undefined), 10_000, 100);
  t.deepEqual((await client.dataplanes()).map((d) => d.id).sort(), ['dp1', 'dp2'], 'the registration stays');
  const dp1 = [`http://${String(cluster.byName('dp1').ready.invoke)}`];
  t.deepEqual((await burst('/invoke/steady', 20, {}, dp1)).filter((a) => a.status !== 200), []);

  const back = await cluster.restart('dp2');
  await until('dp2 connected', async () => ((await client.dataplanes()).find((d) => d.id === 'dp2')?.connected === true ? true : undefined), 10_000, 100);
  const answers = await until('dp2 routes to warm', async () => {
    const result = await burst('/invoke/steady', 10, {}, [`http://${String(back.ready.invoke)}`]);
    return result.every((a) => a.status === 200) ? result : undefined;
  }, 10_000, 200);
  t.is(answers.length, 10);
  t.true((await client.dataplanes()).every((d) => d.connected));
});
