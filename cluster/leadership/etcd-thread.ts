// etcd leadership with its lease held by a thread of its own.
//
// Why: a leader's main thread relays every message between its actor shards and its sockets, and after a
// failover with 10 000 sandboxes it is busy for hundreds of ms at a time. Holding the lease there meant that a
// busy leader missed its keepalives, lost the lease, and the cluster went through another election. Here an
// EtcdLeadership runs on its own thread with its own etcd client, so keepalives and the followers' campaign go
// out on time however busy the main thread is.
//
// Fencing stays as in etcd.ts: the lease thread writes, into shared memory, the term it leads under and until
// when a renewal proved it may act (the proven lease expiry minus the safety margin). The main thread reads
// them every CHECK_MS and stops acting as soon as the term changes or the time passes, without waiting for the
// thread's message; the thread itself campaigns again only after it deposed itself. A main thread stalled for
// longer than `stallMs` (it beats every BEAT_MS) is treated as stuck: the thread withholds keepalives, the
// lease expires and another replica leads, and the main thread finds its deadline passed when it runs again.
import { Worker } from 'node:worker_threads';
import { processMonotonicMs } from '../../runtime/clock.js';
import { SLOT, SLOT_COUNT, type ThreadData, type ToMain, type ToThread } from './etcd-thread-protocol.js';
import { DEFAULT_LEASE_TTL_S } from './etcd.js';
import type { LeaderView, Leadership, LeadershipEvents, ReplicaInfo } from './leadership.js';

export interface ThreadedEtcdLeadershipOptions {
  /** etcd client URLs, e.g. `http://127.0.0.1:2379`. */
  readonly endpoints: readonly string[];
  /** Prefix of every key of this cluster (the store's), e.g. `dirigent/`. */
  readonly prefix: string;
  readonly self: ReplicaInfo;
  /** Lease TTL, s. */
  readonly ttlS?: number;
  /** Stop acting this long before the lease could expire on etcd, ms. */
  readonly safetyMs?: number;
  /** Followers re-read the leader key at least this often, ms. */
  readonly pollMs?: number;
  /** A main thread that has not run for this long is stuck and gives up the lease, ms; default 5 lease TTLs. */
  readonly stallMs?: number;
  readonly log?: (level: 'info' | 'warn' | 'debug' | 'error', text: string) => void;
}

/** How often the main thread checks the shared deadline, ms. */
const CHECK_MS = 20;
/** How often the main thread says it runs, ms. */
const BEAT_MS = 50;
/** Bound on the lease thread's resignation at close, ms. */
const CLOSE_TIMEOUT_MS = 5000;

export class ThreadedEtcdLeadership implements Leadership {
  readonly kind = 'etcd';
  private readonly shared = new BigInt64Array(new SharedArrayBuffer(SLOT_COUNT * BigInt64Array.BYTES_PER_ELEMENT));
  private worker: Worker | undefined;
  private events: LeadershipEvents | undefined;
  private view: LeaderView | undefined;
  /** The term this (main) thread acts under; undefined while it does not lead. */
  private actingTerm: number | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private closing: Promise<void> | undefined;

  constructor(private readonly options: ThreadedEtcdLeadershipOptions) {
    const ttlS = options.ttlS ?? DEFAULT_LEASE_TTL_S;
    if (!Number.isInteger(ttlS) || ttlS < 1) throw new RangeError(`the lease TTL must be a whole number of seconds >= 1, got ${ttlS}`);
  }

  start(events: LeadershipEvents): Promise<void> {
    this.events = events;
    this.beat();
    this.timers.push(setInterval(() => this.beat(), BEAT_MS), setInterval(() => this.check(), CHECK_MS));
    const data: ThreadData = {
      endpoints: this.options.endpoints,
      prefix: this.options.prefix,
      self: this.options.self,
      ttlS: this.options.ttlS,
      safetyMs: this.options.safetyMs,
      pollMs: this.options.pollMs,
      stallMs: this.options.stallMs ?? 5 * (this.options.ttlS ?? DEFAULT_LEASE_TTL_S) * 1000,
      shared: this.shared.buffer as SharedArrayBuffer,
    };
    const worker = new Worker(new URL('./etcd-thread-worker.js', import.meta.url), { workerData: data });
    this.worker = worker;
    return new Promise((resolve, reject) => {
      let started = false;
      worker.on('message', (message: ToMain) => {
        if (message.type === 'started') {
          started = true;
          resolve();
        } else if (message.type === 'failed') {
          // Its thread and timers go with it: the replica that failed to start closes nothing else of this.
          void this.close();
          reject(new Error(`the leadership thread could not start: ${message.message}`));
        }
        else this.onMessage(message);
      });
      worker.on('error', (error) => {
        this.log('error', `leadership thread failed: ${error.stack ?? error.message}`);
        if (!started) reject(error);
      });
      worker.on('exit', (code) => {
        if (this.closing) return;
        const error = new Error(`the leadership thread exited (code ${code}); this replica can no longer lead`);
        this.stopActing(error.message);
        if (started) this.events?.failed?.(error);
        else reject(error);
      });
    });
  }

  leader(): LeaderView | undefined {
    return this.view;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const worker = this.worker;
      // Resigning is the thread's; this thread stops acting now, as a replica stopping does anyway.
      this.actingTerm = undefined;
      if (worker) {
        const closed = new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
          worker.on('message', (message: ToMain) => message.type === 'closed' && (clearTimeout(timer), resolve()));
          worker.once('exit', () => (clearTimeout(timer), resolve()));
        });
        worker.postMessage({ type: 'close' } satisfies ToThread);
        await closed;
        await worker.terminate();
      }
      for (const timer of this.timers) clearInterval(timer);
    })();
    return this.closing;
  }

  private onMessage(message: Exclude<ToMain, { type: 'started' | 'failed' }>): void {
    switch (message.type) {
      case 'elected':
        if (this.closing) return;
        // Deposed again before this thread heard of it: its `deposed` follows; nothing to start.
        if (!this.valid(message.term)) return;
        this.actingTerm = message.term;
        this.events?.elected(message.term);
        return;
      case 'deposed':
        return this.stopActing(message.reason);
      case 'view':
        this.view = message.view;
        this.events?.leaderChanged?.(message.view);
        return;
      case 'log':
        return this.log(message.level, message.text);
      case 'closed':
        return;
    }
  }

  /** Whether this replica may act under `term` now, as the lease thread last proved. */
  private valid(term: number): boolean {
    // The term first: the thread writes the deadline before the term (see etcd-thread-worker.ts).
    if (Number(Atomics.load(this.shared, SLOT.term)) !== term) return false;
    return processMonotonicMs() * 1000 < Number(Atomics.load(this.shared, SLOT.actUntilUs));
  }

  private check(): void {
    if (this.actingTerm === undefined || this.valid(this.actingTerm)) return;
    const term = Number(Atomics.load(this.shared, SLOT.term));
    this.stopActing(term === this.actingTerm ? 'the lease was not proven in time (checked on the main thread)' : 'the leadership thread no longer leads under this term');
  }

  private stopActing(reason: string): void {
    if (this.actingTerm === undefined) return;
    this.actingTerm = undefined;
    this.events?.deposed(reason);
  }

  private beat(): void {
    Atomics.store(this.shared, SLOT.mainBeatUs, BigInt(Math.floor(processMonotonicMs() * 1000)));
  }

  private log(level: 'info' | 'warn' | 'debug' | 'error', text: string): void {
    this.options.log?.(level, text);
  }
}
