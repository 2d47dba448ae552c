// The control-plane role: an ActorRuntime hosting the function, autoscaler and scheduler actors,
// the desired-state store, and the cluster listener that workers and data planes connect to.
// Operations here return values (expected outcomes), which the admin API maps to HTTP statuses.
import { isErrorCode, type ErrorCode } from '../../actors/errors.js';
import type { FunctionSpec } from '../../actors/function-spec.js';
import { parseDirigentRegistration, parseFunctionSpec, updateFunctionSpec } from '../../actors/function-spec.js';
import { sandboxRequestOf, sandboxTemplateOf, type FunctionInit } from '../../actors/function.js';
import { CHECK_TIMEOUT_MS } from '../../actors/node.js';
import {
  dataplaneReplicaId,
  autoscalerAddress,
  functionAddress,
  nodeAddress,
  schedulerAddress,
  type AutoscalerStatus,
  type Feasibility,
  type FunctionStatus,
  type NodeView,
  type SandboxReport,
  type SourceCheck,
} from '../../actors/messages.js';
import { assertNever } from '../../actors/actor.js';
import type { PlacementPolicy } from '../../actors/placement.js';
import { clampTail, mergeLogLines, type SandboxLogLine } from '../../actors/sandbox-logs.js';
import { ActorRuntime, defaultLog, type LogLevel } from '../../runtime/index.js';
import { listenFrames, type FrameConnection, type FrameServer, type FrameServerOptions } from '../../runtime/frames.js';
import { ClusterTransport } from '../../runtime/transport.js';
import { takeNextTerm } from '../leadership/index.js';
import { openStore, type Store, type StoreConfig } from '../store/index.js';
import { FunctionHistory } from './function-history.js';
import { ClusterInspector, type InspectionPeer } from './inspection.js';

function isStore(store: StoreConfig | Store): store is Store {
  return typeof (store as Store).get === 'function';
}

export interface ControlPlaneConfig {
  /** Where workers and data planes connect. */
  readonly host: string;
  /** 0 picks a free port. */
  readonly clusterPort: number;
  readonly token: string;
  /**
   * A cluster listener owned by someone else (a replica listens from its start, leading or not, so that its
   * port stays its own and followers can refuse with the leader's name): this incarnation serves its greeted
   * peers while it runs. Absent: the control plane listens on host:clusterPort itself.
   */
  readonly listener?: ClusterListener;
  /**
   * A runtime started with `startControlPlaneRuntime` ahead of time (a follower keeps one ready, so that a new
   * leader does not spend its first hundreds of ms starting threads); the incarnation owns and stops it.
   */
  readonly runtime?: ActorRuntime;
  /** A store to open, or an open one (used as is, and left open by `stop`: its owner closes it). */
  readonly store: StoreConfig | Store;
  /** This leader's term, from the leadership port; absent: the next term counted in the store (one replica). */
  readonly term?: number;
  /** After a leader change, how long to wait for the registered workers to list their sandboxes before serving, ms. */
  readonly reconstructTimeoutMs?: number;
  readonly shards?: number;
  readonly placement?: PlacementPolicy;
  /** A node silent for longer is dead, ms. */
  readonly heartbeatTimeoutMs?: number;
  readonly onLog?: (level: LogLevel, text: string) => void;
}

/** What serves a cluster listener: the peer handlers, and the term every welcome carries. */
export type ListenerHandlers = Pick<FrameServerOptions, 'accept' | 'accepted'> & { readonly term: number };

/** Greeted peers of a listener are handed to whoever `serve`s it (undefined: nobody, refuse them). */
export interface ClusterListener {
  readonly host: string;
  readonly port: number;
  serve(handlers: ListenerHandlers | undefined): void;
}

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly status: number; readonly code: ErrorCode; readonly message: string; readonly details?: unknown };

export interface DataPlaneInfo {
  readonly id: string;
  /** `host:port` where clients invoke functions through this data plane. */
  readonly invokeAddress: string;
  /** `host:port` of the Dirigent-compatibility front (HTTP/1.1 and h2c), when the data plane has one. */
  readonly compatAddress?: string;
  readonly connected: boolean;
}

/** A function's output merged over the nodes, and the nodes that did not answer (their lines are missing). */
export interface FunctionLogs {
  readonly lines: readonly SandboxLogLine[];
  readonly unreachable: readonly string[];
}

export interface FunctionView {
  readonly spec: FunctionSpec;
  readonly status: FunctionStatus | null;
  readonly autoscaler: AutoscalerStatus | null;
}

/** A greeted data plane, as it announced itself. */
interface JoiningDataplane {
  readonly connection: FrameConnection;
  readonly shards: number;
  readonly invokeAddress: string;
  readonly compatAddress?: string;
}

interface WorkerInfo {
  readonly nodes: readonly string[];
}

/** Rebuilding actual state after a leader change: from the leadership won to serving. */
export interface ReconstructionStatus {
  /** `waiting`: for the registered workers to list their sandboxes; functions are not started yet. */
  readonly phase: 'waiting' | 'serving';
  /** Workers registered in the store when this leader started. */
  readonly workersExpected: number;
  /** Workers whose nodes listed their sandboxes to this leader (during and after the wait). */
  readonly workersQueried: number;
  readonly sandboxesAdopted: number;
  /** Registered workers that had not listed when the wait ended. */
  readonly workersMissing: readonly string[];
  /** From the start of this leader to serving, ms (null while waiting). */
  readonly tookMs: number | null;
}

const ASK_MS = 5000;
/** How long a deploy waits for a worker's source check, ms: the worker's own bound, plus the way there and back. */
const CHECK_ASK_MS = CHECK_TIMEOUT_MS + 2000;
/** Most shards a data plane may announce (each is a data plane the control plane waits for). */
const MAX_DATAPLANE_SHARDS = 256;
const KEYS = { functions: 'functions/', workers: 'workers/', dataplanes: 'dataplanes/' } as const;
/** Default bound on the reconstruction wait, ms: workers reconnect within their retry backoff (<= 500 ms). */
export const RECONSTRUCT_TIMEOUT_MS = 3000;
/** Sandboxes adopted by functions per event-loop turn of the rebuild (~0.5 MB of messages to the shards, a few ms to pack). */
const SANDBOXES_PER_TURN = 2500;
/** Sandboxes per `sch.adopt` message. */
const ADOPT_CHUNK = 500;
/** Data planes that join within this of the first are announced to the functions together, ms. */
const JOIN_BATCH_MS = 20;

const fail = (status: number, code: ErrorCode, message: string, details?: unknown): Outcome<never> => ({ ok: false, status, code, message, details });

/** The actor runtime a control plane runs on: its shard threads with the control-plane kinds loaded, no actor yet. */
export function startControlPlaneRuntime(shards: number | undefined, log: (level: LogLevel, text: string) => void): Promise<ActorRuntime> {
  return ActorRuntime.start({ shards, modules: [{ url: new URL('./module.js', import.meta.url).href }], remoteKinds: ['node', 'router', 'dpsandbox'], onLog: log });
}

export class ControlPlane {
  private readonly functions = new Map<string, FunctionSpec>();
  private readonly nodeConnections = new Map<string, FrameConnection>();
  /** `shards`: how many router replicas report for it, each under its dataplaneReplicaId. */
  private readonly dataplanes = new Map<string, { connection: FrameConnection | undefined; invokeAddress: string; compatAddress?: string; shards: number }>();
  /** Data planes greeted during the rebuild: they join when the functions start. */
  private readonly joiningDataplanes = new Map<string, JoiningDataplane>();
  /** Worker registrations (desired state): id -> its node ids, as last announced. */
  private readonly workers = new Map<string, readonly string[]>();
  /** While waiting: what each worker's nodes listed, by worker id. */
  private readonly listed = new Map<string, SandboxReport[]>();
  /** Called whenever a worker listed while waiting: ends the wait once every registered worker has. */
  private checkWait: () => void = () => undefined;
  /** Ends the wait at once (stop). */
  private endWait: () => void = () => undefined;
  /** Ids of the workers connected now. */
  private readonly connectedWorkers = new Set<string>();
  /** The link of each connected worker, by worker id: what the console reads the worker's actors over. */
  private readonly workerConnections = new Map<string, FrameConnection>();
  /** The console's reader of every process's actors (see inspection.ts). */
  readonly inspector: ClusterInspector;
  /** Every peer connection accepted by this incarnation: `stop` destroys them (a listener may outlive it). */
  private readonly connections = new Set<FrameConnection>();
  /** Registered workers that had not listed when the wait ended. */
  private workersMissing: readonly string[] = [];
  private stopped = false;
  private joinTimer: NodeJS.Timeout | undefined;
  /** The last minutes of every function's counters, for the console's charts (sampled while this incarnation leads). */
  readonly history = new FunctionHistory(async () => {
    const views = await this.listFunctions();
    return new Map(views.map(({ spec, status, autoscaler }) => [spec.name, { invocations: autoscaler?.totals.invocations ?? 0, coldStarts: autoscaler?.totals.coldStarts ?? 0, ready: status?.ready ?? 0, inFlight: autoscaler?.observedInFlight ?? 0, queued: autoscaler?.queued ?? 0 }]));
  });
  private reconstruction: Omit<ReconstructionStatus, 'workersMissing'> = { phase: 'waiting', workersExpected: 0, workersQueried: 0, sandboxesAdopted: 0, tookMs: null };
  private markServing: () => void = () => undefined;
  /**
   * Set once the wait for the workers is over: from then on a worker's sandboxes are adopted as it lists them
   * and a data plane joins at once, while the functions are still being started (over several turns).
   */
  private waitOver = false;
  /** Data planes routed to whose frames wait until every function is configured. */
  private readonly heldDataplanes: FrameConnection[] = [];
  private joinedWhileStarting = false;
  /** Resolves once the functions run (reconstruction done, or stopped); admin operations wait for it. */
  private readonly serving: Promise<void>;

  private constructor(
    readonly runtime: ActorRuntime,
    readonly store: Store,
    private readonly ownsStore: boolean,
    private readonly transport: ClusterTransport,
    private readonly server: FrameServer,
    readonly term: number,
    private readonly log: (level: LogLevel, text: string) => void,
    /** When this incarnation started (leadership won), ms on the monotonic clock: `tookMs` counts from here. */
    private readonly startedAt: number,
  ) {
    this.serving = new Promise((resolve) => {
      this.markServing = resolve;
    });
    this.inspector = new ClusterInspector(runtime, transport, () => this.inspectionPeers());
  }

  /** The connected workers and data planes, as the console names their processes. */
  private inspectionPeers(): InspectionPeer[] {
    const peers: InspectionPeer[] = [];
    for (const [id, connection] of [...this.workerConnections].sort(([a], [b]) => (a < b ? -1 : 1))) if (!connection.isClosed) peers.push({ process: `worker:${id}`, connection });
    for (const [id, dp] of [...this.dataplanes].sort(([a], [b]) => (a < b ? -1 : 1))) if (dp.connection && !dp.connection.isClosed) peers.push({ process: `dataplane:${id}`, connection: dp.connection });
    return peers;
  }

  get clusterAddress(): string {
    return `${this.server.host}:${this.server.port}`;
  }

  /**
   * Listens at once and rebuilds in the background: loads desired state, waits (bounded) for the registered
   * workers to list their sandboxes, then configures every function with what was found (see `reconstruct`).
   * `whenServing` resolves once that is done; admin operations wait for it.
   */
  static async start(config: ControlPlaneConfig): Promise<ControlPlane> {
    const startedAt = performance.now();
    const log = config.onLog ?? defaultLog;
    const ownsStore = !isStore(config.store);
    const store = isStore(config.store) ? config.store : await openStore(config.store);
    const term = config.term ?? (await takeNextTerm(store));
    const runtime = config.runtime ?? (await startControlPlaneRuntime(config.shards, log));
    let plane: ControlPlane | undefined;
    const transport = new ClusterTransport(runtime, (address) => plane?.peersFor(address.kind, address.id) ?? [], new Set(['node', 'router', 'dpsandbox']));
    const handlers: ListenerHandlers = {
      term,
      accept: (connection, hello) => (plane ? plane.accept(connection, hello.role, hello.id, hello.info) : 'the control plane is starting'),
      accepted: (_connection, hello) => plane?.accepted(hello.role, hello.id, hello.info),
    };
    let server: FrameServer;
    if (config.listener) {
      const listener = config.listener;
      listener.serve(handlers);
      // Closing this incarnation's side: stop serving; its connections are destroyed by `stop`.
      server = { host: listener.host, port: listener.port, close: async () => listener.serve(undefined) };
    } else {
      server = await listenFrames({ host: config.host, port: config.clusterPort, token: config.token, role: 'control-plane', id: 'leader', info: { term }, accept: handlers.accept, accepted: handlers.accepted });
    }
    plane = new ControlPlane(runtime, store, ownsStore, transport, server, term, log, startedAt);
    runtime.spawn(schedulerAddress, { term, policy: config.placement, heartbeatTimeoutMs: config.heartbeatTimeoutMs });
    await plane.loadDesiredState();
    plane.reconstruct(config.reconstructTimeoutMs ?? RECONSTRUCT_TIMEOUT_MS).catch((error: Error) => {
      // Stopped mid-way (deposed, shut down): its asks fail with the runtime; anything else is a bug to see.
      if (!plane!.stopped) log('error', `term ${term}: reconstruction failed: ${error.stack ?? error.message}`);
    });
    return plane;
  }

  /** Resolves once reconstruction is done and the functions run. */
  whenServing(): Promise<void> {
    return this.serving;
  }

  get isServing(): boolean {
    return this.reconstruction.phase === 'serving';
  }

  /** Desired state only: function specs, data-plane and worker registrations. Sandboxes come from the workers. */
  private async loadDesiredState(): Promise<void> {
    // Read together: three round trips to etcd in sequence are on the failover's path.
    const [dataplanes, workers, functions] = await Promise.all([this.store.list(KEYS.dataplanes), this.store.list(KEYS.workers), this.store.list(KEYS.functions)]);
    for (const { value } of dataplanes) {
      const dp = value as { id: string; invokeAddress: string; compatAddress?: string };
      if (!this.dataplanes.has(dp.id)) this.dataplanes.set(dp.id, { connection: undefined, invokeAddress: dp.invokeAddress, compatAddress: dp.compatAddress, shards: 1 });
    }
    for (const { value } of workers) {
      const worker = value as { id: string; nodes: string[] };
      if (!this.workers.has(worker.id)) this.workers.set(worker.id, worker.nodes);
    }
    for (const { value } of functions) {
      const parsed = parseFunctionSpec(value);
      if (!parsed.ok) {
        this.log('error', `stored function is invalid and was skipped: ${JSON.stringify(parsed.errors)}`);
        continue;
      }
      this.functions.set(parsed.spec.name, parsed.spec);
      // Spawned now, configured once the workers have listed: a sandbox that the old leader was creating and
      // that becomes ready during the wait tells a live actor (which deletes it), not a dead letter.
      this.runtime.spawn(functionAddress(parsed.spec.name), { spec: parsed.spec, term: this.term, rebuilt: true } satisfies FunctionInit);
    }
    this.reconstruction = { ...this.reconstruction, workersExpected: this.workers.size };
  }

  /**
   * A new leader's rebuild: wait until every registered worker has listed its nodes' sandboxes (or the bound
   * passes); then each function (spawned by `loadDesiredState`) adopts its sandboxes and is configured, so
   * that its first endpoint snapshot, under this term, routes to exactly what runs, and its autoscaler holds
   * scale-down for one stable window; what no function wants is deleted. Workers that come later are adopted
   * as they connect.
   */
  private async reconstruct(timeoutMs: number): Promise<void> {
    const allListed = () => [...this.workers.keys()].every((id) => this.listed.has(id));
    if (!allListed()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.endWait = () => {
          clearTimeout(timer);
          resolve();
        };
        this.checkWait = () => {
          if (allListed()) this.endWait();
        };
      });
    }
    if (this.stopped) return;
    this.waitOver = true;
    const listedMs = Math.round(performance.now() - this.startedAt);
    const reports = [...this.listed.values()].flat();
    this.listed.clear();
    const missing = [...this.workers.keys()].filter((id) => !this.connectedWorkers.has(id));
    if (missing.length > 0) this.log('warn', `reconstruction: no answer from worker(s) ${missing.join(', ')} within ${timeoutMs} ms; their sandboxes are adopted if they come back`);
    const byFunction = this.adoptReports(reports);
    // Data planes that connected during the rebuild join now, before the functions start: each function's first
    // snapshot (pushed by its configure) goes to every one of them.
    for (const [id, joining] of this.joiningDataplanes) if (!joining.connection.isClosed) this.registerDataplane(id, joining, false);
    this.joiningDataplanes.clear();
    this.announceDataplanes();
    // Told, not asked: each function takes its sandboxes, then its configure pushes one full snapshot of this
    // term. Anything asked of a function later (admin calls, data-plane lookups) queues behind these.
    // Functions with the fewest live sandboxes first: those with none cannot serve a request until they scale
    // (their callers wait in the data planes' queues), while the others' routers keep serving with the sets
    // they hold. A few functions per event-loop turn, so that their adoptions (10 000 sandboxes: megabytes)
    // reach the shards in pieces and the first functions' scale-ups are not queued behind all of them.
    const order = [...this.functions.values()].sort((a, b) => (byFunction.get(a.name)?.length ?? 0) - (byFunction.get(b.name)?.length ?? 0));
    let told = 0;
    for (const spec of order) {
      const sandboxes = byFunction.get(spec.name);
      if (sandboxes) this.runtime.tell(functionAddress(spec.name), { type: 'fn.adopt', sandboxes });
      this.runtime.tell(functionAddress(spec.name), { type: 'fn.configure', spec });
      told += sandboxes?.length ?? 0;
      if (told >= SANDBOXES_PER_TURN) {
        told = 0;
        await new Promise((resolve) => setImmediate(resolve));
        if (this.stopped) return;
      }
    }
    // What the data planes sent meanwhile (lookups, loads, backlogs) reaches configured functions: after the configures.
    for (const connection of this.heldDataplanes.splice(0)) if (!connection.isClosed) this.transport.attach(connection);
    // One that joined while the functions were started missed the snapshots of those configured before it.
    if (this.joinedWhileStarting) this.announceDataplanes();
    this.reconstruction = { ...this.reconstruction, phase: 'serving', tookMs: Math.round(performance.now() - this.startedAt) };
    this.workersMissing = missing;
    this.log('info', `term ${this.term}: serving after ${this.reconstruction.tookMs} ms (workers listed after ${listedMs} ms); ${this.reconstruction.sandboxesAdopted} sandbox(es) adopted from ${this.reconstruction.workersQueried} worker(s), ${this.functions.size} function(s)`);
    this.markServing();
    if (!this.stopped) this.history.start();
  }

  private async startFunction(spec: FunctionSpec): Promise<FunctionStatus> {
    this.functions.set(spec.name, spec);
    this.runtime.spawn(functionAddress(spec.name), { spec, term: this.term, dataplanes: this.connectedDataplanes() } satisfies FunctionInit);
    return this.runtime.ask<FunctionStatus>(functionAddress(spec.name), { type: 'fn.configure', spec }, ASK_MS);
  }

  private peersFor(kind: string, id: string): FrameConnection[] {
    if (kind === 'node') {
      const connection = this.nodeConnections.get(id);
      return connection && !connection.isClosed ? [connection] : [];
    }
    if (kind === 'router' || kind === 'dpsandbox') {
      return [...this.dataplanes.values()].flatMap((dp) => (dp.connection && !dp.connection.isClosed ? [dp.connection] : []));
    }
    return [];
  }

  /** Ids of the connected data planes' router replicas: what draining sandboxes wait for. */
  private connectedDataplanes(): string[] {
    return [...this.dataplanes.entries()]
      .filter(([, dp]) => dp.connection && !dp.connection.isClosed)
      .flatMap(([id, dp]) => Array.from({ length: dp.shards }, (_, shard) => dataplaneReplicaId(id, shard)));
  }

  /** A greeted peer: workers announce their node ids, data planes their invocation address. */
  private accept(connection: FrameConnection, role: string, id: string, info: unknown): string | undefined {
    const refusal = this.acceptRole(connection, role, id, info);
    if (refusal === undefined) {
      this.connections.add(connection);
      connection.onClose(() => this.connections.delete(connection));
    }
    return refusal;
  }

  private acceptRole(connection: FrameConnection, role: string, id: string, info: unknown): string | undefined {
    if (role === 'worker') {
      const nodes = (info as WorkerInfo | undefined)?.nodes;
      if (!Array.isArray(nodes) || !nodes.every((n) => typeof n === 'string')) return 'a worker must announce its node ids';
      for (const nodeId of nodes) this.nodeConnections.set(nodeId, connection);
      this.transport.attach(connection);
      this.connectedWorkers.add(id);
      this.workerConnections.set(id, connection);
      connection.onClose(() => {
        if (this.workerConnections.get(id) === connection) this.workerConnections.delete(id);
        for (const nodeId of nodes) if (this.nodeConnections.get(nodeId) === connection) this.nodeConnections.delete(nodeId);
        if (![...this.nodeConnections.values()].includes(connection)) this.connectedWorkers.delete(id);
      });
      // A registration is desired state: the next leader waits for this worker to list its sandboxes.
      const known = this.workers.get(id);
      if (known === undefined || known.length !== nodes.length || known.some((n, i) => n !== nodes[i])) {
        this.workers.set(id, nodes);
        this.persist(`${KEYS.workers}${id}`, { id, nodes });
      }
      return undefined;
    }
    if (role === 'dataplane') {
      const { invokeAddress, compatAddress, shards = 1 } = (info ?? {}) as { invokeAddress?: unknown; compatAddress?: unknown; shards?: unknown };
      if (typeof invokeAddress !== 'string') return 'a data plane must announce its invocation address';
      if (id.includes('#')) return `a data plane id may not contain '#' (its shards report as <id>#<shard>), got ${JSON.stringify(id)}`;
      if (compatAddress !== undefined && typeof compatAddress !== 'string') return 'a compatibility address must be host:port';
      if (typeof shards !== 'number' || !Number.isInteger(shards) || shards < 1 || shards > MAX_DATAPLANE_SHARDS) return `a data plane's shard count must be an integer in 1..${MAX_DATAPLANE_SHARDS}`;
      const joining: JoiningDataplane = { connection, shards, invokeAddress, compatAddress };
      if (this.isServing) return void this.registerDataplane(id, joining, true);
      // No listener: its frames are held on the connection until `transport.attach` (the handshake's is replaced).
      connection.onFrame(undefined);
      if (this.waitOver) {
        // The functions are being started: routed to from now on, heard once all are configured (see `reconstruct`).
        this.registerDataplane(id, joining, false);
        this.joinedWhileStarting = true;
        return undefined;
      }
      // Until the functions run, a data plane's lookups would find no configured function: it is held (its frames
      // wait on the connection, nothing is routed to it) and joins as the functions start, so that their first
      // snapshot reaches it without a reconnection or a second round of snapshots.
      this.joiningDataplanes.set(id, joining);
      connection.onClose(() => {
        if (this.joiningDataplanes.get(id)?.connection === connection) this.joiningDataplanes.delete(id);
      });
      return undefined;
    }
    return `unknown role ${role}`;
  }

  /**
   * A data plane from now on: routed to, its registration stored, and its frames served (`hear`) or held until
   * the functions are configured (`heldDataplanes`, attached by `reconstruct`).
   */
  private registerDataplane(id: string, { connection, shards, invokeAddress, compatAddress }: JoiningDataplane, hear: boolean): void {
    const known = this.dataplanes.get(id);
    const registration = { invokeAddress, compatAddress };
    this.dataplanes.set(id, { connection, shards, ...registration });
    if (hear) this.transport.attach(connection);
    else this.heldDataplanes.push(connection);
    connection.onClose(() => {
      const current = this.dataplanes.get(id);
      if (current?.connection === connection) {
        this.dataplanes.set(id, { connection: undefined, shards, ...registration });
        this.announceDataplanes();
      }
    });
    if (known?.invokeAddress !== invokeAddress || known.compatAddress !== compatAddress) this.persist(`${KEYS.dataplanes}${id}`, { id, ...registration });
  }

  /** A registration write off the handshake's path; a failure is logged (the peer works, the next leader may not expect it). */
  private persist(key: string, value: unknown): void {
    this.store.put(key, value).catch((error: Error) => this.log('warn', `could not store ${key}: ${error.message}`));
  }

  /** After the welcome: ask a worker's nodes what they run; tell functions about a new data plane. */
  private accepted(role: string, id: string, info: unknown): void {
    if (role === 'worker') void this.reconstructFrom(id, (info as WorkerInfo).nodes);
    // One that joined during the rebuild is announced with the functions' start (see `reconstruct`).
    else if (role === 'dataplane' && this.isServing) this.announceJoin();
  }

  /** Draining sandboxes wait for every connected data plane, and only those (a dead one is never waited for). */
  private announceDataplanes(): void {
    const ids = this.connectedDataplanes();
    for (const name of this.functions.keys()) this.runtime.tell(functionAddress(name), { type: 'fn.dataplanes', ids });
  }

  /**
   * A joining data plane makes every function push its full set to all data planes; after a leader change they
   * all join within milliseconds, so joins are announced together, JOIN_BATCH_MS after the first (with 10 000
   * sandboxes, one round of snapshots instead of one per data plane).
   */
  private announceJoin(): void {
    if (this.joinTimer !== undefined) return;
    this.joinTimer = setTimeout(() => {
      this.joinTimer = undefined;
      if (!this.stopped) this.announceDataplanes();
    }, JOIN_BATCH_MS);
  }

  /** Rebuild actual state from what a worker runs: the store never holds sandboxes. */
  private async reconstructFrom(workerId: string, nodes: readonly string[]): Promise<void> {
    const reports = await this.listNodes(nodes);
    this.reconstruction = { ...this.reconstruction, workersQueried: this.reconstruction.workersQueried + 1 };
    if (!this.waitOver) {
      this.log('info', `term ${this.term}: worker ${workerId} listed ${reports.length} sandbox(es) ${Math.round(performance.now() - this.startedAt)} ms after the start`);
      // Functions start once every registered worker has listed (see `reconstruct`), with these sandboxes.
      this.listed.set(workerId, [...(this.listed.get(workerId) ?? []), ...reports]);
      this.checkWait();
      return;
    }
    for (const [name, sandboxes] of this.adoptReports(reports)) this.runtime.tell(functionAddress(name), { type: 'fn.adopt', sandboxes });
  }

  /** The ready sandboxes of `nodes`, as their node actors list them (a node that does not answer lists none). */
  private async listNodes(nodes: readonly string[]): Promise<SandboxReport[]> {
    const lists = await Promise.all(
      nodes.map((nodeId) =>
        this.runtime.ask<SandboxReport[]>(nodeAddress(nodeId), { type: 'node.list' }, ASK_MS).catch((error: Error) => {
          this.log('warn', `reconstruction: node ${nodeId} did not list its sandboxes: ${error.message}`);
          return [];
        }),
      ),
    );
    return lists.flat();
  }

  /**
   * Accounts `reports` with the scheduler, deletes the sandboxes of functions that no longer exist (nothing may
   * be left running), and returns the rest by function.
   */
  private adoptReports(reports: readonly SandboxReport[]): Map<string, SandboxReport[]> {
    const byFunction = new Map<string, SandboxReport[]>();
    if (reports.length === 0) return byFunction;
    this.reconstruction = { ...this.reconstruction, sandboxesAdopted: this.reconstruction.sandboxesAdopted + reports.length };
    // In pieces: one message of 10 000 reports is one pack of ~1 MB on this thread and one long step on the shard.
    // Only what the scheduler reads (endpoints and times are half of a report's bytes).
    const allocations = reports.map(({ sandboxId, functionName, nodeId, resources }) => ({ sandboxId, functionName, nodeId, resources }));
    for (let at = 0; at < allocations.length; at += ADOPT_CHUNK) this.runtime.tell(schedulerAddress, { type: 'sch.adopt', sandboxes: allocations.slice(at, at + ADOPT_CHUNK) });
    for (const report of reports) {
      if (this.functions.has(report.functionName)) {
        const list = byFunction.get(report.functionName);
        if (list) list.push(report);
        else byFunction.set(report.functionName, [report]);
      } else {
        this.runtime.tell(nodeAddress(report.nodeId), { type: 'node.delete', term: this.term, sandboxId: report.sandboxId });
      }
    }
    return byFunction;
  }

  // ---- Operations for the admin API ---------------------------------------------------------------

  async createFunction(input: unknown): Promise<Outcome<FunctionView>> {
    const parsed = parseFunctionSpec(input);
    if (!parsed.ok) return fail(400, 'INVALID_SPEC', parsed.errors.map((e) => `${e.field}: ${e.message}`).join('; '), parsed.errors);
    return this.create({ ...parsed.spec, version: 1, templateVersion: 1 });
  }

  /** Dirigent-compatible registration: replies with the data-plane addresses joined by ';'. */
  async registerDirigent(form: URLSearchParams, runtime: 'thread' | 'simulated' = 'thread'): Promise<Outcome<string>> {
    const parsed = parseDirigentRegistration(form, runtime);
    if (!parsed.ok) return fail(parsed.status, 'INVALID_REGISTRATION', parsed.message);
    await this.serving;
    // The reply is the addresses to invoke at: with none, a 200 would be an empty body the loader cannot use.
    if (this.dataplanes.size === 0) return fail(503, 'NO_DATAPLANE', 'no data plane has registered yet, so there is no address to invoke at; retry once one is up');
    const created = await this.create(parsed.spec);
    if (!created.ok) return created;
    // The loader sends its headers with underscores (requested_cpu), which the uWS front cannot take
    // (uWebSockets.js#1018 in the version we run): point it at the compatibility front when there is one.
    return { ok: true, value: [...this.dataplanes.values()].map((dp) => dp.compatAddress ?? dp.invokeAddress).join(';') };
  }

  private async create(spec: FunctionSpec): Promise<Outcome<FunctionView>> {
    await this.serving;
    if (this.functions.has(spec.name)) return fail(409, 'FUNCTION_EXISTS', `function ${spec.name} already exists`);
    const refused = await this.admit(spec);
    if (refused !== undefined) return refused;
    // Created by another request while this one was checked.
    if (this.functions.has(spec.name)) return fail(409, 'FUNCTION_EXISTS', `function ${spec.name} already exists`);
    this.functions.set(spec.name, spec);
    const unstored = await this.write(() => this.store.put(`${KEYS.functions}${spec.name}`, spec));
    if (unstored !== undefined) {
      this.functions.delete(spec.name);
      return unstored;
    }
    await this.startFunction(spec);
    return this.getFunction(spec.name);
  }

  async updateFunction(name: string, patch: unknown): Promise<Outcome<FunctionView>> {
    await this.serving;
    const current = this.functions.get(name);
    if (current === undefined) return fail(404, 'UNKNOWN_FUNCTION', `no function named ${name}`);
    const updated = updateFunctionSpec(current, patch);
    if (!updated.ok) return fail(400, 'INVALID_SPEC', updated.errors.map((e) => `${e.field}: ${e.message}`).join('; '), updated.errors);
    if (updated.spec.templateVersion !== current.templateVersion) {
      const refused = await this.admit(updated.spec);
      if (refused !== undefined) return refused;
      if (this.functions.get(name) !== current) return fail(409, 'CONCURRENT_UPDATE', `function ${name} changed while this update was checked; send it again`);
    }
    this.functions.set(name, updated.spec);
    const unstored = await this.write(() => this.store.put(`${KEYS.functions}${name}`, updated.spec));
    if (unstored !== undefined) {
      if (this.functions.get(name) === updated.spec) this.functions.set(name, current);
      return unstored;
    }
    await this.runtime.ask(functionAddress(name), { type: 'fn.configure', spec: updated.spec }, ASK_MS);
    return this.getFunction(name);
  }

  /**
   * What a deploy can know refused at once (422, naming the cause), instead of a function whose every creation
   * fails: no connected worker of the runtime its source needs, no node that could hold its sandbox, or a source
   * that does not start where it would run (a module that does not load, throws at load or has no handler; a
   * command that exits). The source is started once in a throwaway sandbox on a node that fits, bounded in time;
   * one still starting then, or a check that cannot be made, is accepted (and its creations tell the rest).
   */
  private async admit(spec: FunctionSpec): Promise<Outcome<never> | undefined> {
    const feasible = await this.runtime.ask<Feasibility>(schedulerAddress, { type: 'sch.feasible', request: sandboxRequestOf(spec) }, ASK_MS);
    if (!feasible.ok) {
      const needs = spec.source.kind === 'thread' ? 'a module runs on thread workers' : spec.source.kind === 'process' ? 'a command runs on process workers' : 'it needs a worker';
      return fail(422, feasible.code, `${spec.name} cannot run here: ${feasible.code === 'NO_WORKER_FOR_RUNTIME' ? `${needs}, and ` : ''}${feasible.message}`);
    }
    if (spec.source.kind === 'builtin') return undefined;
    let check: SourceCheck;
    try {
      check = await this.runtime.ask<SourceCheck>(nodeAddress(feasible.nodeId), { type: 'node.check', template: sandboxTemplateOf(spec) }, CHECK_ASK_MS);
    } catch (error) {
      this.log('warn', `${spec.name}: its source could not be checked on node ${feasible.nodeId} (${(error as Error).message}); accepted unchecked`);
      return undefined;
    }
    switch (check.outcome) {
      case 'ok':
        return undefined;
      case 'failed':
        return fail(422, 'SOURCE_FAILED', `${spec.name} does not start (tried on node ${feasible.nodeId}): ${check.reason}`);
      case 'timeout':
        this.log('warn', `${spec.name}: its source was still starting after ${check.afterMs} ms on node ${feasible.nodeId}; accepted unchecked`);
        return undefined;
      default:
        return assertNever(check, 'source check');
    }
  }

  /**
   * A change of desired state written to the store; a write that fails (a full disk, etcd unreachable, a lost
   * lease's fenced write) is 503 STORE_FAILED and the caller undoes its change: the answer never claims a
   * change the next leader would not find.
   */
  private async write(change: () => Promise<unknown>): Promise<Outcome<never> | undefined> {
    try {
      await change();
      return undefined;
    } catch (error) {
      this.log('warn', `a change of desired state could not be stored: ${(error as Error).message}`);
      return fail(503, 'STORE_FAILED', `the change could not be stored, so nothing changed: ${(error as Error).message}; retry`);
    }
  }

  async deleteFunction(name: string): Promise<Outcome<{ deleted: string }>> {
    await this.serving;
    const spec = this.functions.get(name);
    if (spec === undefined) return fail(404, 'UNKNOWN_FUNCTION', `no function named ${name}`);
    this.functions.delete(name);
    const unstored = await this.write(() => this.store.delete(`${KEYS.functions}${name}`));
    if (unstored !== undefined) {
      if (!this.functions.has(name)) this.functions.set(name, spec);
      return unstored;
    }
    await this.runtime.ask(functionAddress(name), { type: 'fn.delete' }, ASK_MS);
    return { ok: true, value: { deleted: name } };
  }

  async getFunction(name: string): Promise<Outcome<FunctionView>> {
    await this.serving;
    const spec = this.functions.get(name);
    if (spec === undefined) return fail(404, 'UNKNOWN_FUNCTION', `no function named ${name}`);
    const [status, autoscaler] = await Promise.all([
      this.runtime.ask<FunctionStatus>(functionAddress(name), { type: 'fn.status' }, ASK_MS).catch(() => null),
      this.runtime.ask<AutoscalerStatus>(autoscalerAddress(name), { type: 'as.status' }, ASK_MS).catch(() => null),
    ]);
    return { ok: true, value: { spec, status, autoscaler } };
  }

  async listFunctions(): Promise<FunctionView[]> {
    await this.serving;
    const views = await Promise.all([...this.functions.keys()].sort().map((name) => this.getFunction(name)));
    return views.flatMap((v) => (v.ok ? [v.value] : []));
  }

  /**
   * `dirigent logs`: lines written at or after `sinceMs` (ms since the epoch), the newest `tail`, merged by time.
   * Every live node is asked, not only those running the function now: a worker keeps the output of sandboxes
   * that are gone (scaled to zero, crashed), which is when a person most wants to read it.
   */
  async functionLogs(name: string, query: { readonly sinceMs: number; readonly tail?: number }): Promise<Outcome<FunctionLogs>> {
    if (!this.functions.has(name)) return fail(404, 'UNKNOWN_FUNCTION', `no function named ${name}`);
    const tail = clampTail(query.tail);
    const nodes = (await this.nodes()).filter((n) => n.alive);
    const answers = await Promise.all(
      nodes.map((n) =>
        this.runtime.ask<SandboxLogLine[]>(nodeAddress(n.nodeId), { type: 'node.logs', functionName: name, sinceMs: query.sinceMs, tail }, ASK_MS).then(
          (lines) => ({ nodeId: n.nodeId, lines }),
          () => ({ nodeId: n.nodeId, lines: undefined }),
        ),
      ),
    );
    const unreachable = answers.flatMap((a) => (a.lines === undefined ? [a.nodeId] : []));
    return { ok: true, value: { lines: mergeLogLines(answers.map((a) => a.lines ?? []), tail), unreachable } };
  }

  nodes(): Promise<NodeView[]> {
    return this.runtime.ask<NodeView[]>(schedulerAddress, { type: 'sch.nodes' }, ASK_MS);
  }

  /**
   * Cordon (`schedulable: false`: the console's drain) or uncordon a worker node: a cordoned node takes no new
   * sandbox; those it runs keep serving until scaled down or deleted. Logged, with who asked.
   */
  async setSchedulable(nodeId: string, schedulable: boolean, by: string): Promise<Outcome<NodeView>> {
    await this.serving;
    if (!(await this.nodes()).some((n) => n.nodeId === nodeId)) return fail(404, 'UNKNOWN_NODE', `no worker node named ${nodeId}`);
    this.runtime.tell(schedulerAddress, { type: 'sch.setSchedulable', nodeId, schedulable });
    this.log('info', `console action by ${by}: node ${nodeId} ${schedulable ? 'uncordoned (takes new sandboxes again)' : 'drained (cordoned: takes no new sandbox)'}`);
    const node = (await this.nodes()).find((n) => n.nodeId === nodeId);
    return node === undefined ? fail(404, 'UNKNOWN_NODE', `worker node ${nodeId} left meanwhile`) : { ok: true, value: node };
  }

  /** The console's scale action: the function's min and max sandbox counts (a spec update, stored). Logged. */
  async scaleFunction(name: string, scaling: { readonly minScale?: number; readonly maxScale?: number }, by: string): Promise<Outcome<FunctionView>> {
    const outcome = await this.updateFunction(name, { scaling });
    if (outcome.ok) this.log('info', `console action by ${by}: function ${name} scaled to ${JSON.stringify(scaling)}`);
    return outcome;
  }

  /** The console's restart action, for an actor of this process: it starts again from its init. Logged. */
  async restartActor(shard: number, name: string, by: string): Promise<Outcome<{ restarts: number }>> {
    try {
      const restarts = await this.runtime.restartActor(shard, name);
      this.log('warn', `console action by ${by}: actor ${name} on shard ${shard} restarted (restart ${restarts})`);
      return { ok: true, value: { restarts } };
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (!isErrorCode(code)) return fail(503, 'INTERNAL_ERROR', (error as Error).message);
      return fail(code === 'NO_SUCH_ACTOR' ? 404 : code === 'BAD_REQUEST' ? 400 : 503, code, (error as Error).message);
    }
  }

  /** A refused console action, in the log too: someone without the token tried to change the cluster. */
  logRefusedAction(what: string, by: string, why: string): void {
    this.log('warn', `console action refused for ${by}: ${what}: ${why}`);
  }

  listDataplanes(): DataPlaneInfo[] {
    return [...this.dataplanes.entries()].map(([id, dp]) => ({ id, invokeAddress: dp.invokeAddress, compatAddress: dp.compatAddress, connected: dp.connection !== undefined && !dp.connection.isClosed }));
  }

  status(): { term: number; leader: true; functions: number; dataplanes: number; workers: number; reconstruction: ReconstructionStatus } {
    return {
      term: this.term,
      leader: true,
      functions: this.functions.size,
      dataplanes: this.listDataplanes().filter((dp) => dp.connected).length,
      workers: this.connectedWorkers.size,
      reconstruction: { ...this.reconstruction, workersMissing: this.isServing ? this.workersMissing.filter((id) => !this.connectedWorkers.has(id)) : [...this.workers.keys()].filter((id) => !this.listed.has(id)) },
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.joinTimer);
    this.history.stop();
    this.transport.close();
    const closing = this.server.close();
    for (const connection of this.connections) connection.destroy();
    await closing;
    // The rebuild ends, and waiting admin calls go on and fail on the stopped runtime rather than hang.
    this.endWait();
    this.markServing();
    await this.runtime.stop();
    if (this.ownsStore) await this.store.close();
  }
}
