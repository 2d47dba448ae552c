// The worker daemon: an ActorRuntime whose shards run sandboxes (module.ts), one `node` actor per
// simulated or real node, and a link to the control plane. On every (re)connection each node actor
// registers again, so a restarted control plane finds its nodes (and then their sandboxes) again.
import { randomUUID } from 'node:crypto';
import { nodeAddress, type NodeCapacity } from '../../actors/messages.js';
import { ActorRuntime, defaultLog, type LogLevel } from '../../runtime/index.js';
import { ControlPlaneLink } from '../control-plane-link.js';
import type { PoolSettings } from '../sandbox/index.js';
import type { WorkerOptions } from './module.js';

export interface WorkerDaemonConfig {
  readonly id: string;
  /** `host:port` of the control plane's cluster listener; with replicas, every replica's, comma-separated. */
  readonly controlPlane: string;
  readonly token: string;
  /** Interface the invocation servers listen on. */
  readonly host: string;
  /** Where data planes reach this worker's sandboxes; default host. */
  readonly advertise?: string;
  readonly runtime: WorkerOptions['runtime'];
  /** Node actors hosted here (more than 1 only to simulate a large cluster on one machine). */
  readonly nodes?: number;
  readonly capacity: NodeCapacity;
  /** ms */
  readonly heartbeatMs?: number;
  readonly shards?: number;
  /** Creation latency of simulated sandboxes, ms. */
  readonly simulatedLatencyMs?: number;
  /**
   * Started generic sandboxes to keep per memory class (thread and process runtimes; default none). Their
   * memory is taken off the node's capacity before it registers: `capMiB` is reserved, never placed.
   */
  readonly pool?: PoolSettings;
  readonly onLog?: (level: LogLevel, text: string) => void;
}

/** Kinds that live in the control plane. */
const CONTROL_PLANE_KINDS = ['scheduler', 'function', 'autoscaler'];

export class WorkerDaemon {
  private constructor(
    readonly runtime: ActorRuntime,
    private readonly link: ControlPlaneLink,
    readonly nodeIds: readonly string[],
  ) {}

  static async start(config: WorkerDaemonConfig): Promise<WorkerDaemon> {
    const log = config.onLog ?? defaultLog;
    const count = config.nodes ?? 1;
    const nodeIds = count === 1 ? [config.id] : Array.from({ length: count }, (_, i) => `${config.id}-${i}`);
    const pool = config.runtime === 'simulated' || config.pool === undefined || config.pool.sizes.every((s) => s.count === 0) ? undefined : config.pool;
    const capacity = { ...config.capacity, memoryMiB: config.capacity.memoryMiB - (pool?.capMiB ?? 0) };
    if (capacity.memoryMiB < 1) throw new Error(`worker ${config.id}: the pool's memory cap (${pool?.capMiB} MiB) leaves nothing of the node's ${config.capacity.memoryMiB} MiB for sandboxes`);
    const options: WorkerOptions = {
      runtime: config.runtime,
      token: config.token,
      host: config.host,
      advertise: config.advertise,
      simulatedLatency: { kind: 'fixed', ms: config.simulatedLatencyMs ?? 0 },
      nodeIds,
      ...(pool === undefined ? {} : { pool }),
    };
    const runtime = await ActorRuntime.start({
      shards: config.shards,
      modules: [{ url: new URL('./module.js', import.meta.url).href, options }],
      remoteKinds: CONTROL_PLANE_KINDS,
      onLog: log,
    });
    // One incarnation per run of the daemon: a restart is told from a reconnection by it (see sch.register).
    const incarnation = randomUUID();
    for (const nodeId of nodeIds) runtime.spawn(nodeAddress(nodeId), { nodeId, capacity, runtime: config.runtime, heartbeatMs: config.heartbeatMs, incarnation });
    const link = new ControlPlaneLink(runtime, {
      controlPlane: config.controlPlane,
      token: config.token,
      role: 'worker',
      id: config.id,
      info: { nodes: nodeIds },
      remoteKinds: CONTROL_PLANE_KINDS,
      log,
      onConnected: () => {
        for (const nodeId of nodeIds) runtime.tell(nodeAddress(nodeId), { type: 'node.start' });
      },
    });
    try {
      await link.start();
    } catch (error) {
      link.close();
      await runtime.stop();
      throw error;
    }
    return new WorkerDaemon(runtime, link, nodeIds);
  }

  async stop(): Promise<void> {
    this.link.close();
    await this.runtime.stop();
  }
}
