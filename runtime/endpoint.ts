// An endpoint is one thread's place in the actor mesh: a shard (0..shards-1) or the client side of
// the process that started the runtime (index = shards). It routes envelopes and keeps the pending
// asks it sent, with its own correlation ids (never nact's query, which loses replies under load).
import type { ActorError, Address, AskResult } from '../actors/actor.js';
import type { Clock, TimerHandle } from './clock.js';
import { ASK, REPLY, SHARD_KIND, TELL, type Envelope } from './envelope.js';
import { actorError } from './errors.js';
import { shardOf } from './hash.js';
import type { OutboundLink } from './link.js';
import { SlotTable } from './slot-table.js';

interface PendingAsk {
  readonly settle: (result: AskResult) => void;
  readonly to: Address;
  readonly timeoutMs: number;
  /** Deadline bucket the ask is filed under (see ASK_BUCKET_MS). */
  readonly bucket: number;
}

/**
 * Ask timeouts are filed in buckets of this many ms (deadlines rounded up), with one clock timer for the
 * earliest bucket, instead of a timer per ask: a timer per request was a visible share of the data plane's
 * CPU and garbage. A timeout may fire up to this late.
 */
const ASK_BUCKET_MS = 25;

export abstract class Endpoint {
  /** Asks sent and not settled, by ask id (a SlotTable: see there why not a Map). */
  private readonly pending = new SlotTable<PendingAsk>();
  /** Deadline bucket (ms) -> ids of the asks due then. */
  private readonly buckets = new Map<number, Set<number>>();
  private armed: { readonly at: number; readonly handle: TimerHandle } | undefined;
  protected stopped = false;

  constructor(
    readonly index: number,
    readonly shards: number,
    readonly clock: Clock,
    /** Outbound link per endpoint index; undefined for this endpoint itself. */
    protected readonly links: (OutboundLink | undefined)[],
    /** Kinds hosted by other processes: their envelopes go to the client endpoint, which owns the cluster transport. */
    private readonly remoteKinds: ReadonlySet<string> = new Set(),
  ) {}

  /** Deliver an envelope addressed to an actor on this endpoint (shards only). */
  protected abstract deliverLocal(envelope: Envelope): void;

  route(envelope: Envelope): void {
    // Replies go back to the asking endpoint; shard control asks name their shard; the rest hash.
    const target =
      envelope.t === REPLY ? envelope.o : envelope.to.kind === SHARD_KIND ? Number(envelope.to.id) : this.remoteKinds.has(envelope.to.kind) ? this.shards : shardOf(envelope.to, this.shards);
    if (target === this.index) {
      if (envelope.t === REPLY) this.settleReply(envelope.i, envelope.ok ? { ok: true, value: envelope.v } : { ok: false, error: envelope.v as ActorError });
      else this.deliverLocal(envelope);
      return;
    }
    const link = this.links[target];
    if (link === undefined) throw new Error(`endpoint ${this.index} has no link to endpoint ${target}`);
    link.send(envelope);
  }

  tell(to: Address, message: unknown, from?: Address): void {
    this.route({ t: TELL, to, m: message, from });
  }

  /** Send an ask; `settle` runs exactly once, with the reply or a timeout/stop error. */
  askWith(to: Address, message: unknown, timeoutMs: number, settle: (result: AskResult) => void, from?: Address): void {
    if (this.stopped) {
      settle({ ok: false, error: actorError('RUNTIME_STOPPED', 'the actor runtime is stopped') });
      return;
    }
    const bucket = Math.ceil((this.clock.now() + timeoutMs) / ASK_BUCKET_MS) * ASK_BUCKET_MS;
    const id = this.pending.add({ settle, to, timeoutMs, bucket });
    let ids = this.buckets.get(bucket);
    if (ids === undefined) {
      ids = new Set();
      this.buckets.set(bucket, ids);
    }
    ids.add(id);
    if (this.armed === undefined || bucket < this.armed.at) this.arm(bucket);
    this.route({ t: ASK, to, m: message, from, o: this.index, i: id, ms: timeoutMs });
  }

  reply(origin: number, id: number, result: AskResult): void {
    this.route(result.ok ? { t: REPLY, o: origin, i: id, ok: true, v: result.value } : { t: REPLY, o: origin, i: id, ok: false, v: result.error });
  }

  protected handleEnvelope(envelope: Envelope): void {
    if (envelope.t === REPLY && envelope.o === this.index) {
      this.settleReply(envelope.i, envelope.ok ? { ok: true, value: envelope.v } : { ok: false, error: envelope.v as ActorError });
    } else {
      this.route(envelope);
    }
  }

  /** A late reply (after its timeout) finds no pending entry and is dropped. */
  private settleReply(id: number, result: AskResult): void {
    const pending = this.pending.take(id);
    if (pending === undefined) return;
    const ids = this.buckets.get(pending.bucket);
    // An emptied bucket goes at once: under load a new one starts every ASK_BUCKET_MS, and each would otherwise
    // stay until its deadline (hours for an invocation), growing the heap and every GC's work.
    if (ids !== undefined && ids.delete(id) && ids.size === 0) this.buckets.delete(pending.bucket);
    pending.settle(result);
  }

  private arm(at: number): void {
    if (this.armed) this.clock.clearTimer(this.armed.handle);
    this.armed = { at, handle: this.clock.setTimer(at - this.clock.now(), () => this.expire()) };
  }

  /** Time out every ask whose bucket is due, then arm the timer for the earliest bucket left. */
  private expire(): void {
    this.armed = undefined;
    const now = this.clock.now();
    let next: number | undefined;
    for (const [bucket, ids] of this.buckets) {
      if (bucket > now) {
        if (ids.size > 0 && (next === undefined || bucket < next)) next = bucket;
        else if (ids.size === 0) this.buckets.delete(bucket);
        continue;
      }
      this.buckets.delete(bucket);
      for (const id of ids) {
        const pending = this.pending.take(id);
        if (pending === undefined) continue;
        pending.settle({ ok: false, error: actorError('ASK_TIMEOUT', `no reply from ${pending.to.kind}:${pending.to.id} within ${pending.timeoutMs} ms`) });
      }
    }
    if (next !== undefined && this.armed === undefined) this.arm(next);
  }

  /** Fail every outstanding ask (at shutdown). */
  protected failPending(error: ActorError): void {
    const all = this.pending.takeAll();
    this.buckets.clear();
    if (this.armed) this.clock.clearTimer(this.armed.handle);
    this.armed = undefined;
    for (const pending of all) pending.settle({ ok: false, error });
  }

  pendingAsks(): number {
    return this.pending.size;
  }

  closeLinks(): void {
    for (const link of this.links) link?.close();
  }
}
