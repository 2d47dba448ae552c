// The etcd store: desired state for the distributed mode, shared by every control-plane replica.
//
// Keys live under one prefix (`dirigent/` by default) so that a cluster can share an etcd with others.
// Values are JSON text, exactly as the memory and file stores keep them. A read is served by etcd (no
// cache): the replicas come and go, and only etcd knows what the last leader wrote.
//
// Fencing: a leader's writes go through `fenced(term)`, a view whose puts and deletes are transactions
// that commit only while the leader key still has the create revision the leader won it with (its term).
// A deposed leader that has not noticed yet (partitioned, paused) can therefore not overwrite what a newer
// leader wrote: its write fails with STORE_FENCED.

import { noop } from 'cockatiel';
import { Etcd3, type IOptions } from 'etcd3';
import { checkKey, closedError, encodeValue, StoreError, type Store } from './store.js';
import { DISTRIBUTED } from '../../actors/settings.js';

/** Per request, ms: a store call never waits longer on an unreachable etcd. */
const CALL_TIMEOUT_MS = 3000;

export interface EtcdStoreOptions {
  /** Client URLs, e.g. `http://127.0.0.1:2379`. */
  readonly endpoints: readonly string[];
  /** Prefix of every key this cluster writes. */
  readonly prefix?: string;
}

/**
 * No retries and no circuit breaker: etcd3's defaults open a breaker for 5 s after three failures, which
 * would keep a replica from campaigning for 5 s after etcd restarts. Callers retry on their own schedule.
 * Streams (watches, keepalives) get no deadline; unary calls one of CALL_TIMEOUT_MS.
 */
export function etcdClientOptions(endpoints: readonly string[]): IOptions {
  return {
    hosts: [...endpoints],
    dialTimeout: CALL_TIMEOUT_MS,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS }),
    faultHandling: { host: () => noop, global: noop },
  };
}

export class EtcdStore implements Store {
  private closed = false;
  private writeCount = 0;
  /**
   * Writes run one after another: concurrent gRPC calls may be applied by etcd in any order, and the port
   * promises that the last put to a key (in call order) wins.
   */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly client: Etcd3,
    readonly prefix: string,
    /** When set: writes commit only while `fence.key` has create revision `fence.term`. */
    private readonly fence: { readonly key: string; readonly term: number } | undefined,
    private readonly ownsClient: boolean,
  ) {}

  static open(options: EtcdStoreOptions): EtcdStore {
    return new EtcdStore(new Etcd3(etcdClientOptions(options.endpoints)), options.prefix ?? DISTRIBUTED.etcdPrefix, undefined, true);
  }

  /** A view of this store whose writes commit only while `leaderKey` (unprefixed) was created at revision `term`. */
  fenced(leaderKey: string, term: number): EtcdStore {
    return new EtcdStore(this.client, this.prefix, { key: this.prefix + leaderKey, term }, false);
  }

  get writes(): number {
    return this.writeCount;
  }

  async get(key: string): Promise<unknown | undefined> {
    this.ensureOpen();
    checkKey(key);
    const text = await this.client.get(this.prefix + key).string();
    return text === null ? undefined : (JSON.parse(text) as unknown);
  }

  async list(prefix: string): Promise<{ key: string; value: unknown }[]> {
    this.ensureOpen();
    const entries = await this.client.getAll().prefix(this.prefix + prefix).strings();
    // etcd sorts by bytes; the port promises UTF-16 code unit order, which differs outside the BMP.
    return Object.keys(entries)
      .map((full) => full.slice(this.prefix.length))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .map((key) => ({ key, value: JSON.parse(entries[this.prefix + key]!) as unknown }));
  }

  async put(key: string, value: unknown): Promise<void> {
    this.ensureOpen();
    checkKey(key);
    const text = encodeValue(key, value);
    await this.enqueue(async () => {
      if (this.fence === undefined) await this.client.put(this.prefix + key).value(text);
      else await this.fencedCommit(key, this.client.put(this.prefix + key).value(text));
      this.writeCount += 1;
    });
  }

  async delete(key: string): Promise<boolean> {
    this.ensureOpen();
    checkKey(key);
    return this.enqueue(async () => {
      let deleted: boolean;
      if (this.fence === undefined) {
        deleted = Number((await this.client.delete().key(this.prefix + key)).deleted) > 0;
      } else {
        const response = await this.fencedCommit(key, this.client.delete().key(this.prefix + key));
        deleted = Number(response.responses[0]?.response_delete_range?.deleted ?? 0) > 0;
      }
      if (deleted) this.writeCount += 1;
      return deleted;
    });
  }

  /** Lets writes already accepted finish; later calls fail with STORE_CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
    if (this.ownsClient) this.client.close();
  }

  private enqueue<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.tail.then(operation);
    // A failed write fails its own caller only; the queue goes on.
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async fencedCommit(key: string, operation: Parameters<ReturnType<Etcd3['if']>['then']>[0]) {
    const fence = this.fence!;
    const response = await this.client.if(fence.key, 'Create', '==', fence.term).then(operation).commit();
    if (!response.succeeded) throw new StoreError('STORE_FENCED', `write of ${key} refused: this replica no longer leads (term ${fence.term} is over)`);
    return response;
  }

  private ensureOpen(): void {
    if (this.closed) throw closedError();
  }
}
