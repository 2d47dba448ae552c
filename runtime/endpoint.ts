// An endpoint is one thread's place in the actor mesh: a shard (0..shards-1) or the client side of
// the process that started the runtime (index = shards). It routes envelopes and keeps the pending
// asks it sent, with its own correlation ids (never nact's query, which loses replies under load).
import type { ActorError, Address, AskResult } from '../actors/actor.js';
import type { Clock } from './clock.js';
import { DeadlineTable } from './deadline-table.js';
import { ASK, REPLY, SHARD_KIND, TELL, type Envelope } from './envelope.js';
import { actorError } from './errors.js';
import { shardOf } from './hash.js';
import type { OutboundLink } from './link.js';
import { packMessage, unpackMessage } from './packed.js';

interface PendingAsk {
  readonly settle: (result: AskResult) => void;
  readonly to: Address;
  readonly timeoutMs: number;
  /** clock.now() past which the ask has timed out, ms. */
  readonly deadline: number;
  /** Takes an ok reply that arrives packed, as bytes (a remote asker's proxy relays them unread). */
  readonly raw?: ((bytes: Uint8Array) => void) | undefined;
}

/** Ask timeouts are swept (DeadlineTable) at most this far apart, so one fires up to this late, ms. */
const SWEEP_MS = 25;

export abstract class Endpoint {
  /** Asks sent and not settled, by ask id (a SlotTable underneath: see there why not a Map). */
  private readonly pending: DeadlineTable<PendingAsk>;
  protected stopped = false;

  constructor(
    readonly index: number,
    readonly shards: number,
    readonly clock: Clock,
    /** Outbound link per endpoint index; undefined for this endpoint itself. */
    protected readonly links: (OutboundLink | undefined)[],
    /** Kinds hosted by other processes: their envelopes go to the client endpoint, which owns the cluster transport. */
    private readonly remoteKinds: ReadonlySet<string> = new Set(),
    /** A shard on msgpack links: pack the messages it sends to other processes itself (see packed.ts). */
    private readonly packRemote = false,
  ) {
    this.pending = new DeadlineTable<PendingAsk>(clock, SWEEP_MS, (ask) =>
      ask.settle({ ok: false, error: actorError('ASK_TIMEOUT', `no reply from ${ask.to.kind}:${ask.to.id} within ${ask.timeoutMs} ms`) }),
    );
  }

  /** Deliver an envelope addressed to an actor on this endpoint (shards only). */
  protected abstract deliverLocal(envelope: Envelope): void;

  route(envelope: Envelope): void {
    // Replies go back to the asking endpoint; shard control asks name their shard; the rest hash.
    const target =
      envelope.t === REPLY ? envelope.o : envelope.to.kind === SHARD_KIND ? Number(envelope.to.id) : this.remoteKinds.has(envelope.to.kind) ? this.shards : shardOf(envelope.to, this.shards);
    if (target === this.index) {
      if (envelope.t === REPLY) this.settleEnvelope(envelope);
      else this.deliverLocal(envelope);
      return;
    }
    const link = this.links[target];
    if (link === undefined) throw new Error(`endpoint ${this.index} has no link to endpoint ${target}`);
    if (this.packRemote && target === this.shards && (envelope.t === TELL || envelope.t === ASK) && envelope.b === undefined && this.remoteKinds.has(envelope.to.kind)) {
      link.send({ ...envelope, m: undefined, b: packMessage(envelope.m) });
    } else link.send(envelope);
  }

  tell(to: Address, message: unknown, from?: Address): void {
    this.route({ t: TELL, to, m: message, from });
  }

  /** Send an ask; `settle` runs exactly once, with the reply or a timeout/stop error. */
  /**
   * `packed`: the message, packed by another process's shard. `raw`: the asker is in another process; an ok
   * reply packed by the shard that makes it is handed over as bytes, to be relayed unread (see packed.ts).
   */
  askWith(to: Address, message: unknown, timeoutMs: number, settle: (result: AskResult) => void, from?: Address, packed?: Uint8Array, raw?: (bytes: Uint8Array) => void): void {
    if (this.stopped) {
      settle({ ok: false, error: actorError('RUNTIME_STOPPED', 'the actor runtime is stopped') });
      return;
    }
    const id = this.pending.add({ settle, to, timeoutMs, deadline: this.clock.now() + timeoutMs, raw });
    // Fields only when set: msgpack writes an undefined one (5 bytes on every ask).
    if (packed === undefined && raw === undefined) this.route({ t: ASK, to, m: message, from, o: this.index, i: id, ms: timeoutMs });
    else this.route({ t: ASK, to, m: message, b: packed, r: raw !== undefined, from, o: this.index, i: id, ms: timeoutMs });
  }

  /** `pack`: the asker is in another process (ReplyTo.packed): an ok value is packed here, on a shard with msgpack links. */
  reply(origin: number, id: number, result: AskResult, pack = false): void {
    // An ask of this endpoint's own (a data plane's invocation, nearly always): no envelope.
    if (origin === this.index) {
      this.settleReply(id, result);
      return;
    }
    if (result.ok && pack && this.packRemote) this.route({ t: REPLY, o: origin, i: id, ok: true, v: undefined, b: packMessage(result.value) });
    else this.route(result.ok ? { t: REPLY, o: origin, i: id, ok: true, v: result.value } : { t: REPLY, o: origin, i: id, ok: false, v: result.error });
  }

  protected handleEnvelope(envelope: Envelope): void {
    if (envelope.t === REPLY && envelope.o === this.index) this.settleEnvelope(envelope);
    else this.route(envelope);
  }

  private settleEnvelope(envelope: Extract<Envelope, { t: typeof REPLY }>): void {
    if (envelope.b === undefined) return this.settleReply(envelope.i, envelope.ok ? { ok: true, value: envelope.v } : { ok: false, error: envelope.v as ActorError });
    const pending = this.pending.take(envelope.i);
    if (pending === undefined) return;
    if (pending.raw) return pending.raw(envelope.b);
    let value: unknown;
    try {
      value = unpackMessage(envelope.b);
    } catch {
      return pending.settle({ ok: false, error: actorError('BAD_REQUEST', `the reply of ${pending.to.kind}:${pending.to.id} could not be unpacked`) });
    }
    pending.settle({ ok: true, value });
  }

  /** A late reply (after its timeout) finds no pending entry and is dropped. */
  private settleReply(id: number, result: AskResult): void {
    this.pending.take(id)?.settle(result);
  }

  /** Fail every outstanding ask (at shutdown). */
  protected failPending(error: ActorError): void {
    const all = this.pending.takeAll();
    for (const pending of all) pending.settle({ ok: false, error });
  }

  pendingAsks(): number {
    return this.pending.size;
  }

  closeLinks(): void {
    for (const link of this.links) link?.close();
  }
}
