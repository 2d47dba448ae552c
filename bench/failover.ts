// Failover of the leader, end to end with real processes (`dirigent cluster`'s topology: etcd, 3 control-plane
// replicas, 2 data planes) and one worker simulating FAILOVER_NODES nodes that hold FAILOVER_SANDBOXES sandboxes.
// One JSON line:
//   reconstructMs  the new leader's rebuild, from its control plane starting under the won term to serving
//                  (status.reconstruction.tookMs): every node listed, every sandbox adopted, functions started;
//   failoverMs     SIGKILL of the leader -> the answer to a cold start sent at that instant (it waits in the
//                  data plane's queue until the new leader has rebuilt and scales the function);
//   electedMs      SIGKILL -> another replica answers /readyz as leader (rebuilding or serving);
//   failedWarm / warmSent  a steady open-loop warm load over both data planes across the failover;
//   cpuMs          CPU time (user + system, from /proc; Linux) each process spent from the kill to that answer:
//                  the work of a failover, which unlike its latency does not depend on how busy the machine is.
// Baselines from the same run: coldStartMs (a cold start with a live leader), leaseTtlMs (no successor can be
//   elected before the lease expires).
// Run: npm run bench:failover  (FAILOVER_NODES, FAILOVER_SANDBOXES, FAILOVER_WARM_RPS, FAILOVER_LEASE_TTL_S)
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminClient } from '../cluster/admin-client.js';
import { DistributedCluster } from '../cluster/cluster-launcher.js';
import { startSteadyLoad } from '../cluster/fixtures/steady-load.js';
import { until } from '../runtime/fixtures/until.js';
import { envInt } from './cluster.js';

const NODES = envInt('FAILOVER_NODES', 100);
const SANDBOXES = envInt('FAILOVER_SANDBOXES', 10_000);
const WARM_RPS = envInt('FAILOVER_WARM_RPS', 1000);
const LEASE_TTL_S = envInt('FAILOVER_LEASE_TTL_S', 2);
/** Sandboxes per function of the bulk: each function's scale is pinned (min = max). */
const PER_FUNCTION = 100;

/** Log lines are stamped with ms since the kill (negative before it). */
let killedAt = Infinity;
const dataDir = await mkdtemp(join(tmpdir(), 'dirigent-bench-failover-'));
const log: string[] = [];
// Info lines of the children (elections, reconstruction) are kept for the timeline printed at the end.
process.env.DIRIGENT_LOG ??= 'info';
const cluster = await DistributedCluster.start({
  dataDir,
  controlPlanes: 3,
  dataPlanes: 2,
  workers: 1,
  runtime: 'simulated',
  ports: 'free',
  leaseTtlS: LEASE_TTL_S,
  restart: false,
  extraArgs: { worker: ['--nodes', String(NODES), '--cpu', '1000000', '--memory', '4000000', '--slots', String(Math.ceil((SANDBOXES * 2) / NODES) + 10)] },
  onOutput: (line) => log.push(Number.isFinite(killedAt) ? `+${Math.round(performance.now() - killedAt)} ms ${line}` : line),
});

/** CPU time a process has used, ms (utime + stime of /proc/<pid>/stat, in ticks of 10 ms); NaN when unreadable. */
function cpuMsOf(pid: number | undefined): number {
  try {
    // Fields after the command name, which may contain spaces: its closing parenthesis ends it.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}
const cpuOfAll = () => new Map(cluster.processes.map((p) => [p.name, cpuMsOf(p.child.process.pid)]));

const spec = (name: string, extra: Record<string, unknown>) => ({ name, runtime: 'simulated', source: { kind: 'builtin', workload: 'empty' }, cpuMilli: 1, memoryMiB: 1, ...extra });
const coldStart = async (url: string) => {
  const started = performance.now();
  const response = await fetch(url, { method: 'POST', body: 'cold', signal: AbortSignal.timeout(30_000) });
  await response.text();
  if (response.status !== 200 || response.headers.get('x-dirigent-cold-start') !== 'true') throw new Error(`cold start answered ${response.status}, cold-start ${response.headers.get('x-dirigent-cold-start')}`);
  return performance.now() - started;
};

try {
  const leader = await until('a leader', () => cluster.leader(), 30_000, 100);
  const admin = new AdminClient({ adminUrl: leader.adminUrl });
  await until(`${NODES} nodes`, async () => ((await admin.nodes()).length >= NODES ? true : undefined), 60_000, 200);
  const functions = Math.ceil(SANDBOXES / PER_FUNCTION);
  for (let i = 0; i < functions; i++) {
    const count = Math.min(PER_FUNCTION, SANDBOXES - i * PER_FUNCTION);
    await admin.createFunction(spec(`bulk${i}`, { scaling: { minScale: count, maxScale: count } }));
  }
  await admin.createFunction(spec('warm', { concurrency: 100, scaling: { minScale: 4, maxScale: 4 } }));
  await admin.createFunction(spec('before', {}));
  await admin.createFunction(spec('after', { queueTimeoutMs: 30_000 }));
  await until(`${SANDBOXES} sandboxes ready`, async () => {
    const ready = (await admin.listFunctions()).reduce((sum, f) => sum + (f.status?.ready ?? 0), 0);
    return ready >= SANDBOXES + 4 ? true : undefined;
  }, 120_000, 500);
  const invoke = cluster.of('data-plane').map((dp) => `http://${String(dp.ready.invoke)}`);
  const coldStartMs = await coldStart(`${invoke[0]!}/invoke/before`);

  const load = startSteadyLoad({ targets: invoke, path: '/invoke/warm', ratePerSec: WARM_RPS, connections: 64 });
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const cpuBefore = cpuOfAll();
  const killed = performance.now();
  killedAt = killed;
  cluster.byName(leader.name).child.process.kill('SIGKILL');
  // When another replica says it leads (rebuilding or serving), polled every 50 ms alongside the cold start.
  const elected = (async () => {
    for (let waited = 0; waited < 30_000; waited += 50) {
      const found = await cluster.leader();
      if (found && found.name !== leader.name) return performance.now() - killed;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return NaN;
  })();
  await coldStart(`${invoke[1]!}/invoke/after`);
  const failoverMs = performance.now() - killed;
  const cpuMs = Object.fromEntries([...cpuOfAll()].filter(([name]) => name !== leader.name).map(([name, ms]) => [name, ms - cpuBefore.get(name)!]));
  const electedMs = await elected;
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const answers = await load.stop();

  const next = await until('the new leader', async () => {
    const found = await cluster.leader();
    return found && found.name !== leader.name ? found : undefined;
  }, 10_000, 100);
  // The failover as the replicas logged it (stderr), for reading the JSON line's numbers against.
  for (const line of log) if (/elected|leading under|serving after|stepped down|connected to the control plane|listed/.test(line)) process.stderr.write(`${line}\n`);
  const status = (await new AdminClient({ adminUrl: next.adminUrl }).status()) as { reconstruction: { tookMs: number; sandboxesAdopted: number } };
  process.stdout.write(
    `${JSON.stringify({
      bench: 'failover',
      sandboxes: status.reconstruction.sandboxesAdopted,
      nodes: NODES,
      reconstructMs: status.reconstruction.tookMs,
      failoverMs: Math.round(failoverMs),
      electedMs: Math.round(electedMs),
      failedWarm: answers.filter((a) => a.status !== 200).length,
      warmSent: answers.length,
      warmRps: Math.round(answers.length / (answers.at(-1)!.sentAtMs / 1000)),
      coldStartMs: Math.round(coldStartMs),
      cpuMs,
      leaseTtlMs: LEASE_TTL_S * 1000,
      term: next.term,
    })}\n`,
  );
} catch (error) {
  process.stderr.write(`${log.slice(-40).join('\n')}\n`);
  throw error;
} finally {
  await cluster.stop();
  await rm(dataDir, { recursive: true, force: true });
}
