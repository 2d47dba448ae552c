// `dirigent cluster`: the distributed topology as local processes on loopback, without Docker: etcd (from
// the binary on PATH, or an existing one), control-plane replicas campaigning on it, data planes and
// workers given every replica's address. The same topology as docker-compose.yml; used by the failover
// tests and `npm run bench:failover`, and by people without Docker who want to kill a leader and watch.
//
// A child that exits unexpectedly (killed, crashed, or a replica that could not lead) is started again after
// RESTART_DELAY_MS, as compose's `restart: unless-stopped` would; a control-plane replica comes back as a
// follower, a worker under its stable id (its surviving sandboxes are adopted).
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { join, resolve } from 'node:path';
import { freePort } from '../runtime/net.js';
import { startEtcd, type EtcdProcess } from './etcd-process.js';
import { intFlag, type CliValues } from './flags.js';
import { runUntilStopped, startChild, stopChild, workerRuntimeFlag, type Child } from './launcher.js';
import { DEFAULT_HOST, DEFAULT_RUNTIME_KIND, DISTRIBUTED, PORTS, type RuntimeKind } from '../actors/settings.js';

export interface DistributedClusterConfig {
  readonly host?: string;
  readonly controlPlanes?: number;
  readonly dataPlanes?: number;
  readonly workers?: number;
  readonly runtime?: RuntimeKind;
  readonly dataDir: string;
  readonly token?: string;
  /** Client URL of a running etcd; absent: one is started from PATH, its data under `dataDir`. */
  readonly etcd?: string;
  /** `default`: admin 9091.., cluster 9190.., invoke 8080/8082.., compat 8081/8083..; `free`: free ports (tests). */
  readonly ports?: 'default' | 'free';
  readonly leaseTtlS?: number;
  /** Extra flags per role (e.g. `--nodes 100` for workers in a benchmark). */
  readonly extraArgs?: { readonly 'control-plane'?: readonly string[]; readonly 'data-plane'?: readonly string[]; readonly worker?: readonly string[] };
  /** Restart children that exit unexpectedly (default true). */
  readonly restart?: boolean;
  readonly onOutput?: (line: string) => void;
  /** Bound on each child's start, ms. */
  readonly startTimeoutMs?: number;
}

export interface ClusterProcess {
  readonly name: string;
  readonly role: 'control-plane' | 'data-plane' | 'worker';
  readonly args: readonly string[];
  /** What its ready line said (admin URL, invoke address...). */
  ready: Record<string, unknown>;
  child: Child;
  restarts: number;
}

const RESTART_DELAY_MS = 1000;
/** Bound on one readiness probe, ms. */
const PROBE_MS = 500;
const BASE = { admin: PORTS.admin, cluster: DISTRIBUTED.clusterPortBase, invoke: PORTS.invoke } as const;

export class DistributedCluster {
  private stopping = false;
  private readonly restartTimers = new Set<NodeJS.Timeout>();

  private constructor(
    readonly token: string,
    readonly etcdEndpoint: string,
    private readonly etcd: EtcdProcess | undefined,
    readonly processes: ClusterProcess[],
    private readonly config: DistributedClusterConfig,
  ) {}

  static async start(config: DistributedClusterConfig): Promise<DistributedCluster> {
    const host = config.host ?? DEFAULT_HOST;
    const token = config.token ?? randomBytes(18).toString('base64url');
    const dataDir = resolve(config.dataDir);
    mkdirSync(dataDir, { recursive: true });
    const onOutput = config.onOutput ?? ((line: string) => process.stderr.write(`${line}\n`));
    const etcd = config.etcd === undefined ? await startEtcd({ dataDir: join(dataDir, 'etcd'), onOutput: (line) => onOutput(`[etcd] ${line}`) }) : undefined;
    const etcdEndpoint = config.etcd ?? etcd!.endpoint;
    const port = async (base: number, i: number) => (config.ports === 'free' ? freePort(host) : base + i);
    const controlPlanes = config.controlPlanes ?? DISTRIBUTED.controlPlaneReplicas;
    const replicas: { name: string; args: string[] }[] = [];
    for (let i = 0; i < controlPlanes; i++) {
      const name = `cp${i + 1}`;
      const args = ['control-plane', '--id', name, '--host', host, '--cluster-port', String(await port(BASE.cluster, i)), '--admin-port', String(await port(BASE.admin, i)), '--store', `etcd:${etcdEndpoint}`, ...(config.leaseTtlS ? ['--lease-ttl-s', String(config.leaseTtlS)] : []), ...(config.extraArgs?.['control-plane'] ?? [])];
      replicas.push({ name, args });
    }
    const clusterAddresses = replicas.map(({ args }) => `${host}:${args[args.indexOf('--cluster-port') + 1]}`).join(',');
    const dataplanes: { name: string; args: string[] }[] = [];
    for (let i = 0; i < (config.dataPlanes ?? DISTRIBUTED.dataPlanes); i++) {
      const name = `dp${i + 1}`;
      dataplanes.push({ name, args: ['data-plane', '--id', name, '--host', host, '--control-plane', clusterAddresses, '--invoke-port', String(await port(BASE.invoke, 2 * i)), '--compat-port', String(await port(BASE.invoke + 1, 2 * i)), '--data-dir', join(dataDir, name), ...(config.extraArgs?.['data-plane'] ?? [])] });
    }
    const workers = Array.from({ length: config.workers ?? DISTRIBUTED.workers }, (_, i) => ({ name: `w${i + 1}`, args: ['worker', '--id', `w${i + 1}`, '--host', host, '--control-plane', clusterAddresses, '--runtime', config.runtime ?? DEFAULT_RUNTIME_KIND, ...(config.extraArgs?.worker ?? [])] }));

    const cluster = new DistributedCluster(token, etcdEndpoint, etcd, [], config);
    try {
      // Replicas first: data planes and workers wait for a leader when they start.
      await cluster.launch(replicas, 'control-plane', onOutput);
      await cluster.launch([...dataplanes, ...workers], undefined, onOutput);
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  private async launch(specs: { name: string; args: string[] }[], only: ClusterProcess['role'] | undefined, onOutput: (line: string) => void): Promise<void> {
    const timeoutMs = this.config.startTimeoutMs ?? 30_000;
    const results = await Promise.allSettled(
      specs.map(async ({ name, args }) => {
        const { child, ready } = await startChild(name, args, this.token, onOutput, timeoutMs);
        const entry: ClusterProcess = { name, role: (only ?? args[0]) as ClusterProcess['role'], args, ready, child, restarts: 0 };
        this.processes.push(entry);
        this.supervise(entry, onOutput);
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private supervise(entry: ClusterProcess, onOutput: (line: string) => void): void {
    void entry.child.exited.then(() => {
      if (this.stopping || this.config.restart === false) return;
      const code = entry.child.process.exitCode ?? entry.child.process.signalCode;
      onOutput(`[${entry.name}] exited (${String(code)}); restarting in ${RESTART_DELAY_MS} ms`);
      const timer = setTimeout(() => {
        this.restartTimers.delete(timer);
        if (this.stopping) return;
        startChild(entry.name, [...entry.args], this.token, onOutput, this.config.startTimeoutMs ?? 30_000).then(
          ({ child, ready }) => {
            if (this.stopping) return void stopChild(child);
            entry.child = child;
            entry.ready = ready;
            entry.restarts += 1;
            this.supervise(entry, onOutput);
          },
          (error: Error) => onOutput(`[${entry.name}] could not be restarted: ${error.message}`),
        );
      }, RESTART_DELAY_MS);
      this.restartTimers.add(timer);
    });
  }

  /** Starts a process that exited (killed by hand or by a test) again with its arguments; resolves when it is ready. */
  async restart(name: string): Promise<ClusterProcess> {
    const entry = this.byName(name);
    if (entry.child.process.exitCode === null && entry.child.process.signalCode === null) throw new Error(`${name} is still running`);
    const { child, ready } = await startChild(entry.name, [...entry.args], this.token, this.config.onOutput ?? ((line) => process.stderr.write(`${line}\n`)), this.config.startTimeoutMs ?? 30_000);
    entry.child = child;
    entry.ready = ready;
    entry.restarts += 1;
    return entry;
  }

  byName(name: string): ClusterProcess {
    const entry = this.processes.find((p) => p.name === name);
    if (entry === undefined) throw new Error(`no process named ${name}`);
    return entry;
  }

  of(role: ClusterProcess['role']): ClusterProcess[] {
    return this.processes.filter((p) => p.role === role).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The replica that answers `/readyz` with `leader`, with its term (bounded probes). */
  async leader(): Promise<{ name: string; term: number; adminUrl: string } | undefined> {
    for (const replica of this.of('control-plane')) {
      const adminUrl = String(replica.ready.admin);
      const term = /^leader \(term (\d+)\)/.exec(await readyz(adminUrl));
      if (term) return { name: replica.name, term: Number(term[1]), adminUrl };
    }
    return undefined;
  }

  /** Children first (workers, data planes, replicas), then etcd. Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.restartTimers) clearTimeout(timer);
    for (const role of ['worker', 'data-plane', 'control-plane'] as const) await Promise.all(this.of(role).map((p) => stopChild(p.child)));
    await this.etcd?.stop();
  }
}

/**
 * A replica's /readyz text ('' when it does not answer within PROBE_MS). One connection per probe, closed after
 * it: polling a replica that was just killed must not leave pooled sockets behind.
 */
function readyz(adminUrl: string): Promise<string> {
  return new Promise((resolve) => {
    const req = httpGet(`${adminUrl}/readyz`, { agent: false, timeout: PROBE_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve(text));
      res.on('error', () => resolve(''));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(''));
  });
}

/** The CLI's `dirigent cluster`: start, print each process and the URLs, run until Ctrl-C. */
export async function startDistributedCluster(values: CliValues): Promise<void> {
  const runtime = workerRuntimeFlag(values);
  const started = performance.now();
  const cluster = await DistributedCluster.start({
    host: values.host ?? '127.0.0.1',
    controlPlanes: intFlag(values, 'control-planes', 'replicas', 1, 9) ?? DISTRIBUTED.controlPlaneReplicas,
    dataPlanes: intFlag(values, 'data-planes', 'data planes', 1, 8) ?? DISTRIBUTED.dataPlanes,
    workers: intFlag(values, 'workers', 'workers', 1, 64) ?? DISTRIBUTED.workers,
    runtime,
    dataDir: values['data-dir'] ?? '.dirigent-cluster',
    token: values.token ?? process.env.DIRIGENT_TOKEN,
    etcd: values.store?.startsWith('etcd:') ? values.store.slice(5) : undefined,
    leaseTtlS: intFlag(values, 'lease-ttl-s', 's', 2, 60),
  });
  const leader = await cluster.leader();
  const lines = [`dirigent cluster is up in ${Math.round(performance.now() - started)} ms; etcd ${cluster.etcdEndpoint}${leader ? `; leader ${leader.name} (term ${leader.term})` : ''}`];
  for (const p of cluster.processes) {
    const r = p.ready;
    const where = p.role === 'control-plane' ? `admin ${String(r.admin)}  cluster ${String(r.cluster)}` : p.role === 'data-plane' ? `invoke http://${String(r.invoke)}  compat http://${String(r.compat)}` : `nodes ${String(r.id)}`;
    lines.push(`  ${p.name.padEnd(4)} pid ${String(p.child.process.pid).padEnd(8)} ${p.role.padEnd(14)} ${where}`);
  }
  const firstAdmin = String(cluster.of('control-plane')[0]!.ready.admin);
  lines.push(`Admin API: any replica (followers forward to the leader), e.g. dirigent status --admin ${firstAdmin}`);
  lines.push(`Console: ${firstAdmin}/console (any replica serves it; its views come from the leader)`);
  lines.push('To see a failover: kill -9 <pid of the leader>; `dirigent status` shows the new leader and term. Killed processes restart after 1 s.');
  lines.push('Press Ctrl-C to stop.', '');
  process.stdout.write(values.json ? `${JSON.stringify({ etcd: cluster.etcdEndpoint, console: `${firstAdmin}/console`, processes: cluster.processes.map((p) => ({ name: p.name, role: p.role, pid: p.child.process.pid, ...p.ready })) })}\n` : lines.join('\n'));
  await runUntilStopped(cluster);
}
