// One control-plane replica: the admin API, a campaign for the leadership, and, while it leads, a
// ControlPlane incarnation under the won term.
//
//   start:    open the store -> register this replica -> admin API -> campaign
//   elected:  ControlPlane.start({ term, store fenced by the term }) -> listens for workers and data planes,
//             rebuilds from them (ControlPlane.reconstruct), serves
//   deposed:  the incarnation stops at once (its cluster connections are closed first, so no command leaves
//             after this), then the replica campaigns again as a follower
//   follower: the admin API forwards to the leader; the cluster listener (bound at start, so that the port
//             stays this replica's) refuses workers and data planes with the leader's name, and they, given
//             every replica's address, go on to the next
//
// `single` leadership (the embedded `dirigent up`): one replica that is elected at start and never deposed.
import type { PlacementPolicy } from '../../actors/placement.js';
import { defaultLog, type ActorRuntime, type LogLevel } from '../../runtime/index.js';
import { listenFrames, type FrameServer } from '../../runtime/frames.js';
import { LEADER_KEY, ThreadedEtcdLeadership, SingleLeadership, type LeaderView, type Leadership, type ReplicaInfo } from '../leadership/index.js';
import { openStore, type EtcdStore, type Store, type StoreConfig } from '../store/index.js';
import { readiness, startAdminApi, type AdminApi, type AdminTarget, type ReplicaStatus } from './admin-api.js';
import { ControlPlane, startControlPlaneRuntime, type ClusterListener, type ListenerHandlers } from './control-plane.js';

export interface ReplicaConfig {
  /** Unique among the replicas; names it in status, logs and forwarded requests. */
  readonly id: string;
  /** Interface to listen on. */
  readonly host: string;
  /** The host the others reach it at (published while it leads, and in forwarded requests); default host. */
  readonly advertise?: string;
  /** Cluster listener (bound at start; served only while leading); 0 picks a free port. */
  readonly clusterPort: number;
  /** 0 picks a free port. */
  readonly adminPort: number;
  readonly token: string;
  /** `etcd` implies etcd leadership; `memory` and `file` one always-leading replica. */
  readonly store: StoreConfig;
  /** etcd lease TTL, s. */
  readonly leaseTtlS?: number;
  readonly adminToken?: string;
  readonly registrationRuntime?: 'thread' | 'simulated';
  readonly shards?: number;
  readonly placement?: PlacementPolicy;
  /** A node silent for longer is dead, ms. */
  readonly heartbeatTimeoutMs?: number;
  /** Bound on waiting for the registered workers after winning, ms. */
  readonly reconstructTimeoutMs?: number;
  readonly onLog?: (level: LogLevel, text: string) => void;
  /**
   * Won the leadership but could not start leading (a port taken, say): the replica has resigned so that
   * another can lead, and cannot go on usefully; the role exits and its supervisor restarts it.
   */
  readonly onFatal?: (error: Error) => void;
}

const REPLICAS_KEY = 'replicas/';
/** Bound on probing another replica's /readyz for the replica list, ms. */
const PROBE_TIMEOUT_MS = 500;

export class ControlPlaneReplica implements AdminTarget {
  private incarnation: ControlPlane | undefined;
  /** Leader transitions run one after another (a start must finish before the stop of the same term). */
  private transitions: Promise<void> = Promise.resolve();
  /** Term this replica currently holds, or undefined when it does not lead. */
  private leadingTerm: number | undefined;
  /** A started, empty actor runtime for the next incarnation (a warm standby: threads start in ~0.1-1 s). */
  private standby: Promise<ActorRuntime> | undefined;
  private stopped = false;

  private constructor(
    private readonly config: ReplicaConfig,
    readonly self: ReplicaInfo,
    readonly store: Store,
    readonly leadership: Leadership,
    private readonly listener: ClusterListener & { readonly server: FrameServer },
    private readonly log: (level: LogLevel, text: string) => void,
  ) {}

  get replicaId(): string {
    return this.self.id;
  }

  static async start(config: ReplicaConfig): Promise<{ replica: ControlPlaneReplica; admin: AdminApi }> {
    const log = config.onLog ?? defaultLog;
    const store = await openStore(config.store);
    let admin: AdminApi | undefined;
    let listener: (ClusterListener & { server: FrameServer }) | undefined;
    try {
      let replica: ControlPlaneReplica | undefined;
      listener = await startClusterListener(config, () => replica);
      // The admin API before the campaign: its URL is part of what the replica publishes when it leads.
      admin = await startAdminApi(
        { replicaId: config.id, plane: () => replica?.plane(), leader: () => replica?.leader(), replicas: async () => replica?.replicas() ?? [] },
        { host: config.host, port: config.adminPort, adminToken: config.adminToken, registrationRuntime: config.registrationRuntime },
      );
      const advertise = config.advertise ?? config.host;
      const self: ReplicaInfo = { id: config.id, adminUrl: `http://${advertise}:${admin.port}`, clusterAddress: `${advertise}:${listener.port}` };
      const etcd = config.store.kind === 'etcd' ? (store as EtcdStore) : undefined;
      // The lease on a thread of its own: a leader busy rebuilding must not miss its keepalives.
      const leadership =
        etcd && config.store.kind === 'etcd'
          ? new ThreadedEtcdLeadership({ endpoints: config.store.endpoints, prefix: etcd.prefix, self, ttlS: config.leaseTtlS, log: (level, text) => log(level, `${config.id}: ${text}`) })
          : new SingleLeadership(store, self);
      replica = new ControlPlaneReplica(config, self, store, leadership, listener, log);
      // A replica that may have to take over keeps a runtime ready; the embedded one leads at once anyway.
      if (etcd) replica.prepareStandby();
      await store.put(`${REPLICAS_KEY}${config.id}`, self);
      await leadership.start({
        elected: (term) => replica!.lead(term),
        deposed: (reason) => replica!.stepDown(reason),
        failed: (error) => {
          log('error', `${config.id}: ${error.message}`);
          replica!.stepDown(error.message);
          config.onFatal?.(error);
        },
      });
      // The embedded replica is elected during start: return once it serves, as `dirigent up` expects.
      await replica.transitions;
      if (leadership.kind === 'single' && replica.incarnation === undefined) throw new Error('the control plane failed to start; see the log above');
      return { replica, admin };
    } catch (error) {
      await admin?.close();
      await listener?.server.close();
      await store.close();
      throw error;
    }
  }

  plane(): ControlPlane | undefined {
    return this.incarnation;
  }

  leader(): LeaderView | undefined {
    return this.leadership.leader();
  }

  /** Every registered replica with its role as it answers now (this one without a probe). */
  async replicas(): Promise<ReplicaStatus[]> {
    const registered = (await this.store.list(REPLICAS_KEY)).map(({ value }) => value as ReplicaInfo);
    return Promise.all(
      registered.map(async (info): Promise<ReplicaStatus> => {
        if (info.id === this.self.id) {
          const leader = this.leader();
          const { text } = readiness(this.incarnation, leader, this.self.id);
          return { ...info, role: this.incarnation ? 'leader' : leader ? 'follower' : 'candidate', term: leader?.term ?? null, readiness: text };
        }
        return probe(info);
      }),
    );
  }

  private lead(term: number): void {
    this.leadingTerm = term;
    this.transitions = this.transitions.then(async () => {
      if (this.stopped || this.leadingTerm !== term) return;
      // Writes commit only while this term lasts: a deposed leader that has not noticed cannot overwrite.
      const store = this.config.store.kind === 'etcd' ? (this.store as EtcdStore).fenced(LEADER_KEY, term) : this.store;
      try {
        const runtime = await this.takeStandby();
        const plane = await ControlPlane.start({
          host: this.config.host,
          clusterPort: this.listener.port,
          listener: this.listener,
          runtime,
          token: this.config.token,
          store,
          term,
          shards: this.config.shards,
          placement: this.config.placement,
          heartbeatTimeoutMs: this.config.heartbeatTimeoutMs,
          reconstructTimeoutMs: this.config.reconstructTimeoutMs,
          onLog: this.log,
        });
        if (this.stopped || this.leadingTerm !== term) return void (await plane.stop());
        this.incarnation = plane;
        this.log('info', `${this.self.id}: leading under term ${term}; workers and data planes connect at ${this.self.clusterAddress}`);
      } catch (error) {
        this.log('error', `${this.self.id}: could not start leading under term ${term}: ${(error as Error).message}`);
        await this.leadership.close();
        this.config.onFatal?.(error as Error);
      }
    });
  }

  /** Starts the next incarnation's runtime in the background, unless one is ready. */
  private prepareStandby(): void {
    if (this.stopped || this.standby) return;
    const standby = startControlPlaneRuntime(this.config.shards, this.log);
    // A failed start is retried by the next `takeStandby`, which starts one on the spot.
    standby.catch((error: Error) => this.log('warn', `${this.self.id}: standby runtime did not start: ${error.message}`));
    this.standby = standby;
  }

  private async takeStandby(): Promise<ActorRuntime> {
    const standby = this.standby;
    this.standby = undefined;
    return (await standby?.catch(() => undefined)) ?? startControlPlaneRuntime(this.config.shards, this.log);
  }

  private stepDown(reason: string): void {
    this.leadingTerm = undefined;
    const plane = this.incarnation;
    this.incarnation = undefined;
    if (plane === undefined) return;
    this.log(this.stopped ? 'info' : 'warn', `${this.self.id}: no longer leading (${reason}); stopping the control plane`);
    // `stop` closes the cluster connections synchronously before anything else: no command leaves after this.
    const stopping = plane.stop();
    this.transitions = this.transitions
      .then(() => stopping)
      .catch((error: Error) => this.log('error', `${this.self.id}: stopping the deposed control plane failed: ${error.message}`))
      // A follower again: ready for the next election.
      .then(() => this.prepareStandby());
  }

  /** Resigns (a follower takes over at once), stops leading, closes the store. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.leadership.close();
    this.stepDown('stopping');
    await this.transitions;
    await (await this.standby?.catch(() => undefined))?.stop();
    await this.listener.server.close();
    await this.store.close();
  }
}

/**
 * The replica's cluster listener: greeted peers go to the leading incarnation; while there is none they are
 * refused with the leader's name, and the welcome always carries the current term.
 */
async function startClusterListener(config: ReplicaConfig, replica: () => ControlPlaneReplica | undefined): Promise<ClusterListener & { server: FrameServer }> {
  let handlers: ListenerHandlers | undefined;
  const server = await listenFrames({
    host: config.host,
    port: config.clusterPort,
    token: config.token,
    role: 'control-plane',
    id: config.id,
    // The term of the incarnation serving (from the moment it serves, before its start has returned).
    info: () => ({ term: handlers?.term ?? 0 }),
    accept: (connection, hello) => {
      if (handlers) return handlers.accept(connection, hello);
      const leader = replica()?.leader();
      return leader && leader.info.id !== config.id ? `replica ${config.id} does not lead; the leader is ${leader.info.id} at ${leader.info.clusterAddress}` : `replica ${config.id} does not lead; no leader is elected yet`;
    },
    accepted: (connection, hello) => handlers?.accepted?.(connection, hello),
  });
  return { host: config.host, port: server.port, server, serve: (next) => (handlers = next) };
}

async function probe(info: ReplicaInfo): Promise<ReplicaStatus> {
  try {
    const response = await fetch(`${info.adminUrl}/readyz`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    const text = (await response.text()).trim();
    const role = text.startsWith('leader') ? 'leader' : text.startsWith('follower') ? 'follower' : 'candidate';
    const term = /term (\d+)/.exec(text);
    return { ...info, role, term: term ? Number(term[1]) : null, readiness: text };
  } catch (error) {
    return { ...info, role: 'unreachable', term: null, readiness: (error as Error).message };
  }
}
