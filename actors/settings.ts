// The settings every layer shares, in one place: defaults, ports, sandbox runtime kinds, load-balancing
// policies, the environment variables the roles read, and distributed mode's etcd, lease and replica
// settings. Plain data (this folder does no I/O): cluster/roles.ts and cluster/launcher.ts resolve a role's
// config against these (typed defaults, then DIRIGENT_* environment, then flags, then validation), and the
// CLI's help (cluster/flags.ts) prints these very values, so a default changed here changes everywhere.

/** Where a role listens unless told otherwise (loopback: nothing is exposed by default). */
export const DEFAULT_HOST = '127.0.0.1';

/** TCP ports. */
export const PORTS = {
  /** The control plane's cluster listener: workers and data planes connect here. */
  cluster: 9090,
  /** The admin API (and the console). */
  admin: 9091,
  /** The data plane's invocation port (uWS: HTTP/1.1 and WebSocket). */
  invoke: 8080,
  /** The data plane's Dirigent-compatible port (HTTP/1.1 and h2c). */
  compat: 8081,
} as const;

/** The state folder of `up` and of each role (relative to the working directory). */
export const DEFAULT_DATA_DIR = '.dirigent';

/** What a worker runs sandboxes on: worker threads, child processes, or nothing (a simulated latency). */
export const RUNTIME_KINDS = ['thread', 'process', 'simulated'] as const;
export type RuntimeKind = (typeof RUNTIME_KINDS)[number];
export const DEFAULT_RUNTIME_KIND: RuntimeKind = 'thread';

/** How a data-plane router picks a sandbox with a free slot (actors/router-policies.ts). */
export const LOAD_BALANCING_POLICIES = ['least-in-flight', 'random', 'round-robin', 'power-of-two'] as const;
export type LoadBalancingPolicy = (typeof LOAD_BALANCING_POLICIES)[number];
export const DEFAULT_LOAD_BALANCING_POLICY: LoadBalancingPolicy = 'least-in-flight';

/** Workers `dirigent up` starts. */
export const DEFAULT_UP_WORKERS = 2;

/** Distributed mode (`dirigent cluster`, `--store etcd:...`). */
export const DISTRIBUTED = {
  /** The leader's lease on etcd, s: its default and bounds (a failover takes about one TTL). */
  leaseTtlS: { default: 2, min: 2, max: 60 },
  /** Control-plane replicas `dirigent cluster` starts. */
  controlPlaneReplicas: 3,
  /** Data planes and workers `dirigent cluster` starts. */
  dataPlanes: 2,
  workers: 3,
  /** Replica i's cluster port is this + i, clear of the admin ports (`PORTS.admin` + i). */
  clusterPortBase: 9190,
  /** The prefix of every key dirigent writes to etcd. */
  etcdPrefix: 'dirigent/',
  /** An etcd client URL, as an example in messages. */
  exampleEtcdUrl: 'http://127.0.0.1:2379',
} as const;

/** Every environment variable is `DIRIGENT_` and one of these names (cluster/roles.ts reads them). */
export const ENV_PREFIX = 'DIRIGENT_';
export const ENV = {
  /** The cluster token (roles, `up`). */
  token: 'DIRIGENT_TOKEN',
  /** The admin API the CLI talks to, and its token. */
  admin: 'DIRIGENT_ADMIN',
  adminToken: 'DIRIGENT_ADMIN_TOKEN',
  /** The data plane `dirigent invoke` calls. */
  url: 'DIRIGENT_URL',
  /** `info` or `debug`: more log lines. */
  log: 'DIRIGENT_LOG',
} as const;

/** The admin API's URL on this machine with the default port. */
export const DEFAULT_ADMIN_URL = `http://${DEFAULT_HOST}:${PORTS.admin}`;
/** The data plane's invocation URL on this machine with the default port. */
export const DEFAULT_INVOKE_URL = `http://${DEFAULT_HOST}:${PORTS.invoke}`;
/** The control plane's cluster listener on this machine with the default port. */
export const DEFAULT_CONTROL_PLANE = `${DEFAULT_HOST}:${PORTS.cluster}`;
