// One role per process, as `dirigent control-plane|data-plane|worker` runs it (and as docker-compose
// and `dirigent up` start it). Config: typed defaults, then DIRIGENT_* environment, then flags, then
// validation naming the value and its unit. Each role prints one JSON line `{"ready": role, ...}` on
// stdout once it serves, logs on stderr, and stops cleanly on SIGINT/SIGTERM.
import { availableParallelism, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { intFlag, UsageError, type CliValues } from './flags.js';
import { startAdminApi } from './control-plane/admin-api.js';
import { ControlPlane } from './control-plane/control-plane.js';
import { DataPlane } from './data-plane/index.js';
import { WorkerDaemon } from './worker/daemon.js';
import type { LoadBalancingPolicy } from '../actors/messages.js';
import { PLACEMENT_POLICIES, type PlacementPolicy } from '../actors/placement.js';
import { LOAD_BALANCING_POLICIES } from '../actors/router.js';
import { defaultLog } from '../runtime/index.js';

const env = (name: string): string | undefined => process.env[`DIRIGENT_${name}`];

function pick(values: CliValues, flag: keyof CliValues, envName: string, fallback: string): string {
  const value = values[flag];
  return typeof value === 'string' ? value : (env(envName) ?? fallback);
}

function port(values: CliValues, flag: string, envName: string, fallback: number): number {
  const raw = (values as Record<string, unknown>)[flag] ?? env(envName);
  return raw === undefined ? fallback : intFlag({ [flag]: raw }, flag, '(TCP port)', 0, 65535)!;
}

function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${what} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

function token(values: CliValues): string {
  const value = pick(values, 'token', 'TOKEN', '');
  if (value.length < 8) throw new UsageError('a cluster token of at least 8 characters is required: --token or DIRIGENT_TOKEN');
  return value;
}

function ready(role: string, details: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ready: role, ...details })}\n`);
}

/** Resolves when the process is asked to stop. */
function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (signal: string) => resolve(signal);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}

export async function startControlPlaneRole(values: CliValues) {
  const host = pick(values, 'host', 'HOST', '127.0.0.1');
  const storeSpec = pick(values, 'store', 'STORE', `file:${join(pick(values, 'data-dir', 'DATA_DIR', '.dirigent'), 'store')}`);
  const store = storeSpec === 'memory' ? ({ kind: 'memory' } as const) : storeSpec.startsWith('file:') ? ({ kind: 'file', dir: resolve(storeSpec.slice(5)) } as const) : undefined;
  if (store === undefined) throw new UsageError(`--store must be memory or file:<dir>, got ${JSON.stringify(storeSpec)}`);
  const policy = oneOf(pick(values, 'policy', 'PLACEMENT', 'kubernetes'), PLACEMENT_POLICIES, '--policy (placement)') as PlacementPolicy;
  const plane = await ControlPlane.start({
    host,
    clusterPort: port(values, 'cluster-port', 'CLUSTER_PORT', 9090),
    token: token(values),
    store,
    shards: intFlag(values, 'shards', 'threads', 1, 256),
    placement: policy,
  });
  try {
    const admin = await startAdminApi(plane, {
      host,
      port: port(values, 'admin-port', 'ADMIN_PORT', 9091),
      adminToken: values['admin-token'] ?? env('ADMIN_TOKEN'),
    });
    return { plane, admin };
  } catch (error) {
    await plane.stop();
    throw error;
  }
}

export async function runRole(role: 'control-plane' | 'data-plane' | 'worker', values: CliValues): Promise<void> {
  const stopping = stopSignal();
  let stop: () => Promise<void>;
  switch (role) {
    case 'control-plane': {
      const { plane, admin } = await startControlPlaneRole(values);
      ready(role, { cluster: plane.clusterAddress, admin: admin.url, term: plane.term });
      stop = async () => {
        await admin.close();
        await plane.stop();
      };
      break;
    }
    case 'data-plane': {
      const dataDir = pick(values, 'data-dir', 'DATA_DIR', '.dirigent');
      const dataplane = await DataPlane.start({
        id: pick(values, 'id', 'ID', 'dp1'),
        controlPlane: pick(values, 'control-plane', 'CONTROL_PLANE', '127.0.0.1:9090'),
        token: token(values),
        host: pick(values, 'host', 'HOST', '127.0.0.1'),
        httpPort: port(values, 'invoke-port', 'INVOKE_PORT', 8080),
        // HTTP/1.1 (underscore header names included, as Dirigent's loader sends them) and h2c on one port.
        compatPort: port(values, 'compat-port', 'COMPAT_PORT', 8081),
        shards: intFlag(values, 'shards', 'threads', 1, 256),
        policy: oneOf(pick(values, 'policy', 'LOAD_BALANCING', 'least-in-flight'), LOAD_BALANCING_POLICIES, '--policy (load balancing)') as LoadBalancingPolicy,
        asyncDir: resolve(dataDir, 'async'),
      });
      ready(role, { invoke: dataplane.invokeAddress, compat: dataplane.compatAddress, id: dataplane.id });
      stop = () => dataplane.stop();
      break;
    }
    case 'worker': {
      const worker = await WorkerDaemon.start({
        id: pick(values, 'id', 'ID', 'w1'),
        controlPlane: pick(values, 'control-plane', 'CONTROL_PLANE', '127.0.0.1:9090'),
        token: token(values),
        host: pick(values, 'host', 'HOST', '127.0.0.1'),
        runtime: oneOf(pick(values, 'runtime', 'RUNTIME', 'thread'), ['thread', 'process', 'simulated'] as const, '--runtime'),
        nodes: intFlag(values, 'nodes', 'nodes', 1, 10_000),
        capacity: {
          cpuMilli: intFlag(values, 'cpu', 'millicores', 1) ?? availableParallelism() * 1000,
          memoryMiB: intFlag(values, 'memory', 'MiB', 1) ?? Math.floor(totalmem() / 2 / 1024 / 1024),
          slots: intFlag(values, 'slots', 'sandboxes', 1, 1_000_000) ?? 64,
        },
        shards: intFlag(values, 'shards', 'threads', 1, 256),
        simulatedLatencyMs: intFlag(values, 'simulated-latency-ms', 'ms', 0, 600_000),
      });
      ready(role, { id: worker.nodeIds });
      stop = () => worker.stop();
      break;
    }
  }
  const signal = await stopping;
  defaultLog('info', `${role}: ${signal}, stopping`);
  await stop();
}
