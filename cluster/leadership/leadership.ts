// The leadership port: which control-plane replica acts, and under which term.
//
// Every command a leader sends carries its term; workers and data planes refuse a lower one. So a term must
// increase strictly from one leader to the next, and must come from the shared store, never from a local
// clock. `single` (the embedded default: one replica, always leader) counts terms in its store; `etcd` uses
// the create revision of the leader key, which etcd makes strictly increasing.
import type { Store } from '../store/index.js';

/** What followers need to reach the leader, published by the leader while it leads. */
export interface ReplicaInfo {
  readonly id: string;
  /** `http://host:port` of its admin API (followers forward to it). */
  readonly adminUrl: string;
  /** `host:port` of its cluster listener (workers and data planes connect to it). */
  readonly clusterAddress: string;
}

export interface LeaderView {
  readonly info: ReplicaInfo;
  readonly term: number;
}

export interface LeadershipEvents {
  /** This replica leads from now on, under `term`. */
  elected(term: number): void;
  /**
   * This replica must stop acting at once (lease lost or not renewed in time, key taken over). Called at most
   * once per `elected`; campaigning goes on afterwards.
   */
  deposed(reason: string): void;
  /** Another replica's (or no) leadership as last seen; for forwarding and status. */
  leaderChanged?(leader: LeaderView | undefined): void;
  /** Campaigning stopped for good (the thread holding the lease died): this replica can never lead again. */
  failed?(error: Error): void;
}

export interface Leadership {
  readonly kind: 'single' | 'etcd';
  /** Starts campaigning; events follow. */
  start(events: LeadershipEvents): Promise<void>;
  /** The leader as last seen (this replica's own view while it leads). */
  leader(): LeaderView | undefined;
  /** Stops campaigning; a leader resigns so that a follower takes over at once instead of after the lease. */
  close(): Promise<void>;
}

const TERM_KEY = 'leader/term';

/** The term after the last one `store` remembers, recorded before it is used (one replica only). */
export async function takeNextTerm(store: Store): Promise<number> {
  const term = (((await store.get(TERM_KEY)) as number | undefined) ?? 0) + 1;
  await store.put(TERM_KEY, term);
  return term;
}

/** One replica, always leader; its term is one more than the last one its store remembers. */
export class SingleLeadership implements Leadership {
  readonly kind = 'single';
  private view: LeaderView | undefined;

  constructor(
    private readonly store: Store,
    private readonly self: ReplicaInfo,
  ) {}

  async start(events: LeadershipEvents): Promise<void> {
    const term = await takeNextTerm(this.store);
    this.view = { info: this.self, term };
    events.elected(term);
  }

  leader(): LeaderView | undefined {
    return this.view;
  }

  async close(): Promise<void> {}
}
