// Leadership on etcd: a lease with a TTL and one leader key.
//
// Campaign: each replica holds a lease of `ttlS` seconds and tries one transaction: "if the leader key does
// not exist, create it (value: this replica's info) attached to my lease, else read it". The winner's term is
// the key's create revision: etcd revisions only grow, and the key is created anew for every leader, so terms
// increase strictly across leaders. Followers watch the key and try again as soon as it is deleted (its
// leader resigned, or its lease expired), and every `pollMs` in case a watch event was lost.
//
// Stepping down before a successor can start: a keepalive sent at local time `s` that etcd answers proves the
// lease lives until at least `s + ttl` on etcd (etcd extends it from when it receives the keepalive, which is
// after `s`). The leader renews every ttl/4 and deposes itself once its local time passes the last proven
// expiry minus `safetyMs`, whether or not etcd can be reached: partitioned from etcd, it stops acting while
// its key still exists, so no other replica can be elected before it stopped. It is also deposed when etcd
// says the lease is gone or the key is no longer the one it created.
import type { Etcd3, Lease, Watcher } from 'etcd3';
import type { LeaderView, Leadership, LeadershipEvents, ReplicaInfo } from './leadership.js';
import { DISTRIBUTED } from '../../actors/settings.js';

export interface EtcdLeadershipOptions {
  readonly client: Etcd3;
  /** Prefix of every key of this cluster (the store's), e.g. `dirigent/`. */
  readonly prefix: string;
  readonly self: ReplicaInfo;
  /** Lease TTL, s (etcd's floor is ~2 s with its default election timeout). */
  readonly ttlS?: number;
  /** Stop acting this long before the lease could expire on etcd, ms. */
  readonly safetyMs?: number;
  /** Followers re-read the leader key at least this often, ms. */
  readonly pollMs?: number;
  /** Monotonic clock, ms (injected so tests can age a lease). */
  readonly now?: () => number;
  readonly log?: (level: 'info' | 'warn' | 'debug', text: string) => void;
  /**
   * False while the replica cannot act (its main thread stalled, see etcd-thread.ts): no keepalive is sent and
   * no campaign made, so a stuck replica loses its lease and another can lead. Default: always true.
   */
  readonly healthy?: () => boolean;
  /**
   * Told on election, on every renewal while leading and on deposition (term 0): the local time (on `now`'s
   * clock, ms) until which the replica may act under `term`, i.e. the last proven lease expiry minus `safetyMs`.
   */
  readonly onValidity?: (term: number, actUntil: number) => void;
}

export const LEADER_KEY = 'leader/current';
export const DEFAULT_LEASE_TTL_S = DISTRIBUTED.leaseTtlS.default;

type Phase =
  | { readonly kind: 'idle' }
  | { readonly kind: 'follower' }
  /** `provenUntil`: local time before which the lease certainly lives on etcd, ms. */
  | { readonly kind: 'leader'; readonly term: number; provenUntil: number };

export class EtcdLeadership implements Leadership {
  readonly kind = 'etcd';
  private readonly key: string;
  private readonly ttlMs: number;
  private readonly safetyMs: number;
  private readonly now: () => number;
  private phase: Phase = { kind: 'idle' };
  private lease: Lease | undefined;
  /** Local time the lease was granted or last renewed (sent), ms; it lives until at least this + ttl. */
  private leaseProvenAt = 0;
  private events: LeadershipEvents | undefined;
  private watcher: Watcher | undefined;
  private view: LeaderView | undefined;
  private timers: NodeJS.Timeout[] = [];
  private attempting: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: EtcdLeadershipOptions) {
    this.key = options.prefix + LEADER_KEY;
    const ttlS = options.ttlS ?? DEFAULT_LEASE_TTL_S;
    if (!Number.isInteger(ttlS) || ttlS < 1) throw new RangeError(`the lease TTL must be a whole number of seconds >= 1, got ${ttlS}`);
    this.ttlMs = ttlS * 1000;
    this.safetyMs = options.safetyMs ?? Math.min(500, this.ttlMs / 4);
    this.now = options.now ?? (() => performance.now());
  }

  async start(events: LeadershipEvents): Promise<void> {
    this.events = events;
    this.phase = { kind: 'follower' };
    this.timers.push(setInterval(() => this.renew(), this.ttlMs / 4));
    this.timers.push(setInterval(() => this.checkValidity(), Math.max(20, this.safetyMs / 5)));
    this.timers.push(setInterval(() => void this.attempt(), this.options.pollMs ?? 1000));
    await this.watch();
    await this.attempt();
  }

  leader(): LeaderView | undefined {
    return this.view;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.attempting;
    await this.watcher?.cancel().catch(() => undefined);
    const wasLeader = this.phase.kind === 'leader';
    this.phase = { kind: 'idle' };
    // Revoking the lease deletes the leader key at once: a follower's watch fires and it takes over.
    if (this.lease) await this.lease.revoke().catch((error: Error) => this.log('warn', `could not revoke the lease: ${error.message}`));
    if (wasLeader) this.log('info', 'resigned the leadership');
  }

  /** One campaign step; concurrent callers share it. */
  private attempt(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.attempting ??= this.tryAcquire()
      .catch((error: Error) => this.log('debug', `campaign: ${error.message}`))
      .finally(() => {
        this.attempting = undefined;
      });
    return this.attempting;
  }

  private async tryAcquire(): Promise<void> {
    const { client } = this.options;
    if (this.phase.kind === 'leader') {
      // Still ours? (etcd may have been restored from a backup, or an operator deleted the key.)
      const kv = (await client.get(this.key).exec()).kvs[0];
      if (this.phase.kind === 'leader' && Number(kv?.create_revision ?? 0) !== this.phase.term) this.depose('the leader key is no longer the one this replica created');
      return;
    }
    if (this.options.healthy?.() === false) return;
    const lease = await this.ensureLease();
    const sent = this.now();
    const response = await client
      .if(this.key, 'Create', '==', 0)
      .then(lease.put(this.key).value(JSON.stringify(this.options.self)))
      .else(client.get(this.key))
      .commit();
    if (this.closed || this.phase.kind !== 'follower') return;
    if (response.succeeded) {
      const term = Number(response.header.revision);
      // The put succeeded with the lease attached, so the lease lived when etcd applied it (after `sent`).
      this.leaseProvenAt = Math.max(this.leaseProvenAt, sent);
      this.phase = { kind: 'leader', term, provenUntil: this.leaseProvenAt + this.ttlMs };
      this.options.onValidity?.(term, this.phase.provenUntil - this.safetyMs);
      this.setView({ info: this.options.self, term });
      this.log('info', `elected leader (term ${term})`);
      this.events?.elected(term);
      return;
    }
    const kv = response.responses[0]?.response_range?.kvs?.[0];
    if (kv === undefined) return this.setView(undefined);
    try {
      this.setView({ info: JSON.parse(kv.value.toString()) as ReplicaInfo, term: Number(kv.create_revision) });
    } catch {
      this.setView(undefined);
    }
  }

  /** The lease this replica campaigns with; a new one when the last expired. */
  private async ensureLease(): Promise<Lease> {
    if (this.lease && !this.lease.revoked() && this.now() < this.leaseProvenAt + this.ttlMs - this.safetyMs) return this.lease;
    this.lease?.release();
    const sent = this.now();
    const lease = this.options.client.lease(this.ttlMs / 1000, { autoKeepAlive: false });
    lease.on('lost', () => undefined);
    await lease.grant();
    this.lease = lease;
    this.leaseProvenAt = sent;
    return lease;
  }

  /** A keepalive; on success the lease is proven until `sent + ttl`. */
  private renew(): void {
    const lease = this.lease;
    if (lease === undefined || this.closed) return;
    if (this.options.healthy?.() === false) return this.log('warn', 'keepalive withheld: this replica is stalled');
    const sent = this.now();
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('keepalive timed out')), this.ttlMs / 2).unref());
    Promise.race([lease.keepaliveOnce(), timeout]).then(
      () => {
        if (lease !== this.lease) return;
        this.leaseProvenAt = Math.max(this.leaseProvenAt, sent);
        if (this.phase.kind === 'leader') {
          this.phase.provenUntil = this.leaseProvenAt + this.ttlMs;
          this.options.onValidity?.(this.phase.term, this.phase.provenUntil - this.safetyMs);
        }
      },
      (error: Error) => {
        if (lease !== this.lease) return;
        this.log('warn', `lease keepalive failed: ${error.message}`);
        if (lease.revoked()) this.depose('etcd says the lease expired');
      },
    );
  }

  private checkValidity(): void {
    if (this.phase.kind === 'leader' && this.now() >= this.phase.provenUntil - this.safetyMs) {
      this.depose(`the lease was not renewed for ${Math.round(this.now() - this.leaseProvenAt)} ms (TTL ${this.ttlMs} ms)`);
    }
  }

  private depose(reason: string): void {
    if (this.phase.kind !== 'leader') return;
    const term = this.phase.term;
    this.phase = { kind: 'follower' };
    this.options.onValidity?.(0, 0);
    this.lease?.release();
    this.lease = undefined;
    this.setView(undefined);
    this.log('warn', `stepped down from term ${term}: ${reason}`);
    this.events?.deposed(reason);
  }

  private async watch(): Promise<void> {
    const watcher = await this.options.client.watch().key(this.key).create();
    watcher.on('delete', () => {
      if (this.phase.kind === 'leader') this.depose('the leader key was deleted');
      else this.setView(undefined);
      void this.attempt();
    });
    watcher.on('put', () => void this.attempt());
    // A broken watch stream is retried by the client; the poll covers the gap.
    watcher.on('error', (error: Error) => this.log('debug', `leader watch: ${error.message}`));
    this.watcher = watcher;
  }

  private setView(view: LeaderView | undefined): void {
    const before = this.view;
    this.view = view;
    if (before?.term !== view?.term || before?.info.id !== view?.info.id) this.events?.leaderChanged?.(view);
  }

  private log(level: 'info' | 'warn' | 'debug', text: string): void {
    this.options.log?.(level, `leadership: ${text}`);
  }
}
