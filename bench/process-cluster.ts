// A cluster of separate processes for the experiment benchmarks (trace, sweep): a control plane (memory store),
// one data plane and one worker simulating nodes, each a `dirigent` role started as dirigent up starts them
// (cluster/launcher.ts), so that the load generator in this process does not share an event loop with them.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChild, stopChild, type Child } from '../cluster/launcher.js';

export interface ProcessClusterOptions {
  readonly runtime: 'simulated' | 'thread';
  readonly nodes: number;
  /** Sandboxes per node at most. */
  readonly slots: number;
  /** Creation latency of a simulated sandbox, ms. */
  readonly simulatedLatencyMs?: number;
  /** The worker's `--pool` (started sandboxes per memory class, e.g. `16:2`); absent: the worker's default. */
  readonly pool?: string;
  readonly onOutput: (line: string) => void;
}

export interface ProcessCluster {
  readonly adminUrl: string;
  /** The data plane's uWS invocation address and its compatibility front, `host:port`. */
  readonly invokeAddress: string;
  readonly compatAddress: string;
  stop(): Promise<void>;
}

export async function startProcessCluster(options: ProcessClusterOptions): Promise<ProcessCluster> {
  const token = randomBytes(18).toString('base64url');
  const dir = await mkdtemp(join(tmpdir(), 'bench-cluster-'));
  const children: Child[] = [];
  const stop = async () => {
    await Promise.all([...children].reverse().map(stopChild));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const cp = await startChild('cp', ['control-plane', '--store', 'memory', '--admin-port', '0', '--cluster-port', '0'], token, options.onOutput, 60_000);
    children.push(cp.child);
    const common = ['--control-plane', String(cp.ready.cluster), '--host', '127.0.0.1'];
    const worker = ['worker', '--runtime', options.runtime, '--nodes', String(options.nodes), '--slots', String(options.slots), '--cpu', '1000000', '--memory', '1000000'];
    if (options.simulatedLatencyMs !== undefined) worker.push('--simulated-latency-ms', String(options.simulatedLatencyMs));
    if (options.pool !== undefined) worker.push('--pool', options.pool);
    const [dp, w] = await Promise.all([
      startChild('dp1', ['data-plane', '--invoke-port', '0', '--compat-port', '0', '--data-dir', dir, ...common], token, options.onOutput, 60_000),
      startChild('w1', [...worker, ...common], token, options.onOutput, 60_000),
    ]);
    children.push(dp.child, w.child);
    const adminUrl = String(cp.ready.admin);
    // Registration answers 503 until the data plane is known; the nodes must be there to place sandboxes.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const nodes = ((await (await fetch(`${adminUrl}/api/v1/nodes`)).json()) as { nodes: unknown[] }).nodes;
      const dataplanes = ((await (await fetch(`${adminUrl}/api/v1/dataplanes`)).json()) as { dataplanes: { connected: boolean }[] }).dataplanes;
      if (nodes.length === options.nodes && dataplanes.some((d) => d.connected)) break;
      if (Date.now() > deadline) throw new Error(`the cluster did not come up within 30 s: ${nodes.length} of ${options.nodes} nodes, data plane ${dataplanes.length > 0 ? 'known' : 'missing'}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { adminUrl, invokeAddress: String(dp.ready.invoke), compatAddress: String(dp.ready.compat), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
