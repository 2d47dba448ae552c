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
  /** clock.now() past which the ask has timed out, ms. */
  readonly deadline: number;
}

/**
 * Ask timeouts are swept, not timed one by one: one clock timer, due at the earliest deadline, and at least
 * this long after the previous sweep, ms; so a timeout fires up to this late. An ask due later than the timer
 * costs nothing more: a timer, or a deadline index, per ask was a visible share of the data plane's CPU (an
 * invocation's ask is due in hours and nearly always answered long before).
 */
const SWEEP_MS = 25;

export abstract class Endpoint {
  /** Asks sent and not settled, by ask id (a SlotTable: see there why not a Map). */
  private readonly pending = new SlotTable<PendingAsk>();
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
    const deadline = this.clock.now() + timeoutMs;
    const id = this.pending.add({ settle, to, timeoutMs, deadline });
    // Usually a sweep is due already, no later than this deadline allows: nothing to do.
    if (this.armed === undefined || deadline < this.armed.at - SWEEP_MS) this.arm(deadline);
    this.route({ t: ASK, to, m: message, from, o: this.index, i: id, ms: timeoutMs });
  }

  reply(origin: number, id: number, result: AskResult): void {
    // An ask of this endpoint's own (a data plane's invocation, nearly always): no envelope.
    if (origin === this.index) {
      this.settleReply(id, result);
      return;
    }
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
    this.pending.take(id)?.settle(result);
  }

  private arm(at: number): void {
    if (this.armed) this.clock.clearTimer(this.armed.handle);
    this.armed = { at, handle: this.clock.setTimer(at - this.clock.now(), () => this.expire()) };
  }

  /** Time out every ask past its deadline, then arm the timer for the earliest deadline left. */
  private expire(): void {
    // The timer may fire a little before its time by clock.now(): what it was armed for counts as due.
    const now = Math.max(this.clock.now(), this.armed?.at ?? 0);
    this.armed = undefined;
    const expired = this.pending.takeWhere((pending) => pending.deadline <= now);
    let next = Infinity;
    for (const pending of this.pending) if (pending.deadline < next) next = pending.deadline;
    if (next !== Infinity) this.arm(Math.max(next, now + SWEEP_MS));
    // Last: a settle may send another ask, which may arm the timer itself.
    for (const pending of expired) pending.settle({ ok: false, error: actorError('ASK_TIMEOUT', `no reply from ${pending.to.kind}:${pending.to.id} within ${pending.timeoutMs} ms`) });
  }

  /** Fail every outstanding ask (at shutdown). */
  protected failPending(error: ActorError): void {
    const all = this.pending.takeAll();
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
