// One role per process, as `dirigent control-plane|data-plane|worker` runs it (and as docker-compose,
// `dirigent up` and `dirigent cluster` start it). Config: typed defaults, then DIRIGENT_* environment, then
// flags, then validation naming the value and its unit (`--dry-run` stops there and prints the result).
// Each role prints one JSON line `{"ready": role, ...}` on stdout once it serves, logs on stderr, and stops
// cleanly on SIGINT/SIGTERM.
import { availableParallelism, hostname, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { intFlag, UsageError, type CliValues } from './flags.js';
import { parseAddressList } from './control-plane-link.js';
import { ControlPlaneReplica, type ReplicaConfig } from './control-plane/replica.js';
import { DataPlane, type DataPlaneConfig } from './data-plane/index.js';
import type { StoreConfig } from './store/index.js';
import { WorkerDaemon, type WorkerDaemonConfig } from './worker/daemon.js';
import type { PoolSettings } from './sandbox/index.js';
import { defaultFunctionSpec } from '../actors/function-spec.js';
import { PLACEMENT_POLICIES, type PlacementPolicy } from '../actors/placement.js';
import {
  DEFAULT_CONTROL_PLANE,
  DEFAULT_DATA_DIR,
  DEFAULT_HOST,
  DEFAULT_LOAD_BALANCING_POLICY,
  DEFAULT_RUNTIME_KIND,
  DISTRIBUTED,
  ENV,
  ENV_PREFIX,
  LOAD_BALANCING_POLICIES,
  PORTS,
  RUNTIME_KINDS,
} from '../actors/settings.js';
import { stopSignal } from './signals.js';
import { defaultLog } from '../runtime/index.js';

const env = (name: string): string | undefined => process.env[`${ENV_PREFIX}${name}`];

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
  if (value.length < 8) throw new UsageError(`a cluster token of at least 8 characters is required: --token or ${ENV.token}`);
  return value;
}

function ready(role: string, details: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ready: role, ...details })}\n`);
}

/** `memory`, `file:<dir>` or `etcd:<url>[,<url>...]`. */
export function parseStoreSpec(spec: string): StoreConfig {
  if (spec === 'memory') return { kind: 'memory' };
  if (spec.startsWith('file:') && spec.length > 5) return { kind: 'file', dir: resolve(spec.slice(5)) };
  if (spec.startsWith('etcd:')) {
    const endpoints = spec.slice(5).split(',').map((e) => e.trim()).filter(Boolean);
    const bad = endpoints.find((e) => !/^https?:\/\/[^/\s]+:\d{1,5}$/.test(e));
    if (endpoints.length > 0 && bad === undefined) return { kind: 'etcd', endpoints };
    throw new UsageError(`--store etcd: needs client URLs like ${DISTRIBUTED.exampleEtcdUrl}[,http://...], got ${JSON.stringify(spec.slice(5))}`);
  }
  throw new UsageError(`--store must be memory, file:<dir> or etcd:<url>[,<url>...], got ${JSON.stringify(spec)}`);
}

function controlPlaneAddresses(values: CliValues): string {
  const text = pick(values, 'control-plane', 'CONTROL_PLANE', DEFAULT_CONTROL_PLANE);
  try {
    parseAddressList(text);
  } catch (error) {
    throw new UsageError(`--control-plane: ${(error as Error).message}`);
  }
  return text;
}

/**
 * The host others reach a role at: --advertise, else --host unless that is a wildcard address (0.0.0.0, ::),
 * which nobody can connect to, and then this machine's hostname (a container's, under compose).
 */
function listenAndAdvertise(values: CliValues): { host: string; advertise: string } {
  const host = pick(values, 'host', 'HOST', DEFAULT_HOST);
  const advertise = values.advertise ?? env('ADVERTISE') ?? (host === '0.0.0.0' || host === '::' ? hostname() : host);
  if (advertise === '' || /[\s/:,]/.test(advertise)) throw new UsageError(`--advertise must be a host name or an IPv4 address, got ${JSON.stringify(advertise)}`);
  return { host, advertise };
}

export function controlPlaneConfig(values: CliValues): Omit<ReplicaConfig, 'onLog' | 'onFatal'> {
  return {
    id: pick(values, 'id', 'ID', 'cp1'),
    ...listenAndAdvertise(values),
    clusterPort: port(values, 'cluster-port', 'CLUSTER_PORT', PORTS.cluster),
    adminPort: port(values, 'admin-port', 'ADMIN_PORT', PORTS.admin),
    token: token(values),
    store: parseStoreSpec(pick(values, 'store', 'STORE', `file:${join(pick(values, 'data-dir', 'DATA_DIR', DEFAULT_DATA_DIR), 'store')}`)),
    leaseTtlS: intFlag({ 'lease-ttl-s': values['lease-ttl-s'] ?? env('LEASE_TTL_S') }, 'lease-ttl-s', 's', DISTRIBUTED.leaseTtlS.min, DISTRIBUTED.leaseTtlS.max),
    reconstructTimeoutMs: intFlag(values, 'reconstruct-timeout-ms', 'ms', 0, 600_000),
    heartbeatTimeoutMs: intFlag(values, 'heartbeat-timeout-ms', 'ms', 100, 3_600_000),
    adminToken: values['admin-token'] ?? env('ADMIN_TOKEN'),
    shards: intFlag(values, 'shards', 'threads', 1, 256),
    placement: oneOf(pick(values, 'policy', 'PLACEMENT', 'kubernetes'), PLACEMENT_POLICIES, '--policy (placement)') as PlacementPolicy,
  };
}

export function dataPlaneConfig(values: CliValues): DataPlaneConfig {
  return {
    id: pick(values, 'id', 'ID', 'dp1'),
    controlPlane: controlPlaneAddresses(values),
    token: token(values),
    ...listenAndAdvertise(values),
    httpPort: port(values, 'invoke-port', 'INVOKE_PORT', PORTS.invoke),
    // HTTP/1.1 (underscore header names included, as Dirigent's loader sends them) and h2c on one port.
    compatPort: port(values, 'compat-port', 'COMPAT_PORT', PORTS.compat),
    shards: intFlag(values, 'shards', 'threads', 1, 256),
    policy: oneOf(pick(values, 'policy', 'LOAD_BALANCING', DEFAULT_LOAD_BALANCING_POLICY), LOAD_BALANCING_POLICIES, '--policy (load balancing)'),
    asyncDir: resolve(pick(values, 'data-dir', 'DATA_DIR', DEFAULT_DATA_DIR), 'async'),
  };
}

export function workerConfig(values: CliValues): WorkerDaemonConfig {
  const config = workerFlags(values);
  const capMiB = config.pool?.sizes.some((s) => s.count > 0) && config.runtime !== 'simulated' ? config.pool.capMiB : 0;
  if (capMiB >= config.capacity.memoryMiB) {
    throw new UsageError(`--pool-memory-mib ${capMiB} MiB leaves nothing of the node's --memory ${config.capacity.memoryMiB} MiB for sandboxes (the pool's cap is taken off the capacity): lower it, or --pool 0`, 'INVALID_OPTION');
  }
  return config;
}

function workerFlags(values: CliValues): WorkerDaemonConfig {
  const addresses = listenAndAdvertise(values);
  return {
    // Listening on every interface (a container), a worker is known by the host it announces, so that the
    // replicas of one compose service (`--scale worker=5`) each have an id of their own, and keep it when
    // their container restarts.
    id: pick(values, 'id', 'ID', addresses.host === '0.0.0.0' || addresses.host === '::' ? addresses.advertise : 'w1'),
    controlPlane: controlPlaneAddresses(values),
    token: token(values),
    ...addresses,
    runtime: oneOf(pick(values, 'runtime', 'RUNTIME', DEFAULT_RUNTIME_KIND), RUNTIME_KINDS, '--runtime'),
    nodes: intFlag(values, 'nodes', 'nodes', 1, 10_000),
    capacity: {
      cpuMilli: intFlag(values, 'cpu', 'millicores', 1) ?? availableParallelism() * 1000,
      memoryMiB: intFlag(values, 'memory', 'MiB', 1) ?? Math.floor(totalmem() / 2 / 1024 / 1024),
      slots: intFlag(values, 'slots', 'sandboxes', 1, 1_000_000) ?? 64,
    },
    shards: intFlag(values, 'shards', 'threads', 1, 256),
    simulatedLatencyMs: intFlag(values, 'simulated-latency-ms', 'ms', 0, 600_000),
    heartbeatMs: intFlag(values, 'heartbeat-ms', 'ms', 10, 600_000),
    pool: poolConfig(values),
  };
}

/** Stems per class of `dirigent worker` and `up` when --pool is not given. */
export const DEFAULT_POOL_SIZE = 2;
/** Default of --pool-memory-mib, MiB: room for 2 process stems (~45 MiB each) of 2 classes, or many threads. */
export const DEFAULT_POOL_MEMORY_MIB = 256;

/**
 * `--pool N` (N stems of the default memory class) or `--pool <MiB>:<N>[,...]` (per class), and
 * `--pool-memory-mib` (their idle memory's cap); DIRIGENT_POOL and DIRIGENT_POOL_MEMORY_MIB alike.
 */
export function poolConfig(values: CliValues): PoolSettings {
  const text = pick(values, 'pool', 'POOL', String(DEFAULT_POOL_SIZE)).trim();
  const capMiB = intFlag({ 'pool-memory-mib': values['pool-memory-mib'] ?? env('POOL_MEMORY_MIB') }, 'pool-memory-mib', 'MiB', 0, 1_048_576) ?? DEFAULT_POOL_MEMORY_MIB;
  const wrong = () => new UsageError(`--pool must be N (0..64) or <MiB>:<N>[,<MiB>:<N>...] with MiB 1..65536 and N 0..64, got ${JSON.stringify(text)}`, 'INVALID_OPTION');
  const int = (raw: string | undefined, min: number, max: number): number => {
    const value = raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!(value >= min && value <= max)) throw wrong();
    return value;
  };
  const sizes = text.includes(':')
    ? text.split(',').map((part) => {
        const [memory, count, extra] = part.trim().split(':');
        if (extra !== undefined) throw wrong();
        return { memoryMiB: int(memory, 1, 65_536), count: int(count, 0, 64) };
      })
    : [{ memoryMiB: defaultFunctionSpec.memoryMiB, count: int(text, 0, 64) }];
  if (new Set(sizes.map((s) => s.memoryMiB)).size !== sizes.length) throw wrong();
  return { sizes, capMiB };
}

type Role = 'control-plane' | 'data-plane' | 'worker';

/** The role's resolved config with its secrets masked, as `--dry-run` prints it. */
export function roleConfig(role: Role, values: CliValues): Record<string, unknown> {
  const config: Record<string, unknown> = { ...(role === 'control-plane' ? controlPlaneConfig(values) : role === 'data-plane' ? dataPlaneConfig(values) : workerConfig(values)) };
  for (const secret of ['token', 'adminToken']) if (config[secret] !== undefined) config[secret] = '***';
  return config;
}

export async function startControlPlaneRole(values: CliValues, onFatal?: (error: Error) => void) {
  return ControlPlaneReplica.start({ ...controlPlaneConfig(values), onFatal });
}

export async function runRole(role: Role, values: CliValues): Promise<void> {
  if (values['dry-run']) return void process.stdout.write(`${JSON.stringify({ dryRun: role, config: roleConfig(role, values) })}\n`);
  const stopping = stopSignal();
  let starting = true;
  // A role still starting (waiting for an etcd or a control plane it cannot reach yet) has nothing to drain: a
  // signal then ends it at once, instead of being swallowed until a start that may never come.
  void stopping.then((signal) => {
    if (!starting) return;
    defaultLog('warn', `${role}: ${signal} while starting; exiting`);
    process.exit(0);
  });
  let stop: () => Promise<void>;
  switch (role) {
    case 'control-plane': {
      const { replica, admin } = await startControlPlaneRole(values, (error) => {
        defaultLog('error', `control-plane: ${error.message}; exiting so that a supervisor restarts this replica`);
        process.exit(1);
      });
      const leader = replica.leader();
      ready(role, { id: replica.replicaId, cluster: replica.self.clusterAddress, admin: admin.url, leadership: replica.leadership.kind, leader: leader?.info.id ?? null, term: leader?.term ?? null });
      stop = async () => {
        await replica.stop();
        await admin.close();
      };
      break;
    }
    case 'data-plane': {
      const dataplane = await DataPlane.start(dataPlaneConfig(values));
      ready(role, { invoke: dataplane.invokeAddress, compat: dataplane.compatAddress, id: dataplane.id });
      stop = () => dataplane.stop();
      break;
    }
    case 'worker': {
      const worker = await WorkerDaemon.start(workerConfig(values));
      ready(role, { id: worker.nodeIds });
      stop = () => worker.stop();
      break;
    }
  }
  starting = false;
  const signal = await stopping;
  defaultLog('info', `${role}: ${signal}, stopping`);
  await stop();
}
