// The cluster transport: actor envelopes between processes over framed TCP connections.
// Envelopes for kinds hosted elsewhere reach this process's client endpoint (see Endpoint.route)
// and leave here; frames from peers enter the local runtime as if sent locally.
//
// Asks cross processes through a proxy: the outbound side keeps (origin endpoint, correlation id)
// under a wire id and the inbound side asks locally, so correlation ids never leave their process.
import type { Address, AskResult } from '../actors/actor.js';
import { ASK, REPLY, SHARD_KIND, SPAWN, TELL, type Envelope, type ShardControl } from './envelope.js';
import { ActorRuntimeError, actorError, actorErrorFrom } from './errors.js';
import { unpackMessage } from './packed.js';
import type { FrameConnection } from './frames.js';
import type { ActorRuntime } from './runtime.js';

/** `b`: the message as packed by the sending shard (see packed.ts), relayed as is; `m` is then absent. */
type WireFrame =
  | { readonly t: typeof TELL; readonly to: Address; readonly m?: unknown; readonly b?: Uint8Array | undefined; readonly from?: Address | undefined }
  | { readonly t: typeof ASK; readonly to: Address; readonly m?: unknown; readonly b?: Uint8Array | undefined; readonly from?: Address | undefined; readonly w: number; readonly ms: number }
  /** `b`: an ok value as packed by the replying shard, relayed as is (`v` then absent). */
  | { readonly t: typeof REPLY; readonly w: number; readonly ok: boolean; readonly v?: unknown; readonly b?: Uint8Array | undefined }
  | { readonly t: typeof SPAWN; readonly to: Address; readonly init: unknown };

interface ProxiedAsk {
  readonly origin: number;
  readonly id: number;
  /** Set for an ask made with `askPeer` (no local asker endpoint): settled here instead of routed. */
  readonly settle?: (result: AskResult) => void;
  readonly connection: FrameConnection;
  /** ms on Date.now(); after it the asker has given up, so the entry is dropped. */
  readonly expiresAt: number;
}

/** Which connections an envelope for this address goes to: one (unicast), several (broadcast tells) or none. */
export type PeerResolver = (address: Address) => readonly FrameConnection[];

const SWEEP_MS = 1000;
/** Longest ask timeout a peer may ask for, ms: the most a Node timer can wait (longer ones fire at once). */
const MAX_WIRE_ASK_MS = 2_147_483_647;

function isAddress(value: unknown): value is Address {
  return typeof value === 'object' && value !== null && typeof (value as Address).kind === 'string' && typeof (value as Address).id === 'string';
}

/** Why `frame` is not a WireFrame this side can act on, or undefined when it is one. */
export function wireFrameProblem(frame: unknown): string | undefined {
  if (typeof frame !== 'object' || frame === null) return 'not a map';
  const f = frame as Record<string, unknown>;
  const wireId = (value: unknown) => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
  switch (f.t) {
    case TELL:
    case SPAWN:
    case ASK:
      if (!isAddress(f.to)) return 'to must be an address { kind, id } of strings';
      if (f.from !== undefined && f.from !== null && !isAddress(f.from)) return 'from must be an address when present';
      if (f.t !== ASK) return undefined;
      if (!wireId(f.w)) return 'an ask needs a wire id w (a safe integer >= 0)';
      if (typeof f.ms !== 'number' || !(f.ms > 0 && f.ms <= MAX_WIRE_ASK_MS)) return `an ask needs a timeout ms in (0, ${MAX_WIRE_ASK_MS}]`;
      return undefined;
    case REPLY:
      if (!wireId(f.w)) return 'a reply needs a wire id w (a safe integer >= 0)';
      if (typeof f.ok !== 'boolean') return 'a reply needs ok (a boolean)';
      if (!f.ok && (typeof f.v !== 'object' || f.v === null || typeof (f.v as { code?: unknown }).code !== 'string' || typeof (f.v as { message?: unknown }).message !== 'string')) return 'a failed reply needs v { code, message } of strings';
      return undefined;
    default:
      return `unknown frame type ${JSON.stringify(f.t)}`;
  }
}
/**
 * Shard controls a peer may ask over the wire: the reads the console makes (cluster/control-plane/inspection.ts).
 * The rest (shutdown, stop-actor, advance, set-counters) belong to the process that runs the shards.
 */
const REMOTE_SHARD_READS: ReadonlySet<ShardControl['op']> = new Set(['stats', 'count', 'list', 'top', 'inspect', 'inspect-name']);

export class ClusterTransport {
  private readonly proxied = new Map<number, ProxiedAsk>();
  private nextWireId = 1;
  private readonly sweeper: NodeJS.Timeout;
  /** Envelopes with no connection to go to. */
  undeliverable = 0;

  constructor(
    private readonly runtime: ActorRuntime,
    private readonly resolve: PeerResolver,
    private readonly remoteKinds: ReadonlySet<string>,
    private readonly now: () => number = Date.now,
  ) {
    runtime.onRemote((envelope) => this.outbound(envelope));
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /** Start serving frames from a greeted peer. */
  attach(connection: FrameConnection): void {
    connection.onFrame((frame) => {
      const problem = wireFrameProblem(frame);
      // A greeted peer holds the cluster token, so a bad frame is a bug or a version skew: end that connection.
      if (problem !== undefined) connection.destroy(new Error(`malformed cluster frame: ${problem}`));
      else this.inbound(connection, frame as WireFrame);
    });
    connection.onClose(() => this.failProxied(connection));
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const [wire, ask] of this.proxied) {
      this.proxied.delete(wire);
      this.replyTo(ask, { ok: false, error: actorError('PEER_GONE', 'the cluster transport closed') });
    }
  }

  private outbound(envelope: Envelope): void {
    if (envelope.t === REPLY) return; // replies to remote askers go back through their proxy, never here
    const peers = this.resolve(envelope.to);
    if (peers.length === 0) {
      this.undeliverable += 1;
      if (envelope.t === ASK) this.runtime.routeFromRemote({ t: REPLY, o: envelope.o, i: envelope.i, ok: false, v: actorError('PEER_UNAVAILABLE', `no connected process hosts ${envelope.to.kind}:${envelope.to.id}`) });
      return;
    }
    switch (envelope.t) {
      case TELL: {
        // Only one of m and b on the wire (an absent key costs nothing; an undefined one 5 bytes).
        const frame: WireFrame = envelope.b === undefined ? { t: TELL, to: envelope.to, m: envelope.m, from: envelope.from } : { t: TELL, to: envelope.to, b: envelope.b, from: envelope.from };
        for (const peer of peers) peer.send(frame);
        return;
      }
      case SPAWN:
        for (const peer of peers) peer.send({ t: SPAWN, to: envelope.to, init: envelope.init } satisfies WireFrame);
        return;
      case ASK: {
        // An ask has one answer: it goes to the first peer only.
        const connection = peers[0]!;
        const wire = this.nextWireId++;
        this.proxied.set(wire, { origin: envelope.o, id: envelope.i, connection, expiresAt: this.now() + envelope.ms });
        connection.send(
          (envelope.b === undefined
            ? { t: ASK, to: envelope.to, m: envelope.m, from: envelope.from, w: wire, ms: envelope.ms }
            : { t: ASK, to: envelope.to, b: envelope.b, from: envelope.from, w: wire, ms: envelope.ms }) satisfies WireFrame,
        );
        return;
      }
    }
  }

  /**
   * Ask an actor in one given peer process, whatever this process would route its address to: a `$shard`
   * control address names that peer's shard (how the control plane reads every process's counters).
   */
  askPeer(connection: FrameConnection, to: Address, message: unknown, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (connection.isClosed) return reject(new ActorRuntimeError('PEER_GONE', 'the peer is disconnected'));
      const wire = this.nextWireId++;
      let timer: NodeJS.Timeout | undefined;
      const settle = (result: AskResult) => {
        clearTimeout(timer);
        if (result.ok) resolve(result.value);
        else reject(ActorRuntimeError.from(result.error));
      };
      timer = setTimeout(() => {
        if (this.proxied.delete(wire)) settle({ ok: false, error: actorError('ASK_TIMEOUT', `no reply from ${to.kind}:${to.id} of the peer within ${timeoutMs} ms`) });
      }, timeoutMs);
      this.proxied.set(wire, { origin: -1, id: -1, settle, connection, expiresAt: this.now() + timeoutMs });
      connection.send({ t: ASK, to, m: message, w: wire, ms: timeoutMs } satisfies WireFrame);
    });
  }

  private inbound(connection: FrameConnection, frame: WireFrame): void {
    // Packed bytes are unpacked by the shard that delivers them (a shard control ask is read here, so never packed).
    if ((frame.t === TELL || frame.t === ASK) && frame.b !== undefined && (!(frame.b instanceof Uint8Array) || frame.to.kind === SHARD_KIND)) {
      this.undeliverable += 1;
      if (frame.t === ASK) connection.send({ t: REPLY, w: frame.w, ok: false, v: actorError('BAD_REQUEST', 'a packed message must be bytes, for an actor') } satisfies WireFrame);
      return;
    }
    switch (frame.t) {
      case TELL:
        if (!this.remoteKinds.has(frame.to.kind) && frame.to.kind !== SHARD_KIND) this.runtime.routeFromRemote({ t: TELL, to: frame.to, m: frame.m, b: frame.b, from: frame.from });
        return;
      case SPAWN:
        if (!this.remoteKinds.has(frame.to.kind)) this.runtime.routeFromRemote({ t: SPAWN, to: frame.to, init: frame.init });
        return;
      case ASK: {
        const answer = (result: AskResult) =>
          connection.send({ t: REPLY, w: frame.w, ok: result.ok, v: result.ok ? result.value : result.error } satisfies WireFrame);
        if (this.remoteKinds.has(frame.to.kind)) answer({ ok: false, error: actorError('NO_SUCH_ACTOR', `${frame.to.kind} actors are not hosted by this process`) });
        else if (frame.to.kind === SHARD_KIND && !REMOTE_SHARD_READS.has((frame.m as Partial<ShardControl> | undefined)?.op as ShardControl['op'])) {
          answer({ ok: false, error: actorError('FORBIDDEN', `a peer may only read this process's shards (${[...REMOTE_SHARD_READS].join(', ')})`) });
        } else if (frame.to.kind === SHARD_KIND && !(/^\d+$/.test(frame.to.id) && Number(frame.to.id) < this.runtime.shards)) {
          // Routing an unknown shard index would throw (no link to it) inside this frame handler.
          answer({ ok: false, error: actorError('NO_SUCH_ACTOR', `this process has shards 0..${this.runtime.shards - 1}, not ${JSON.stringify(frame.to.id)}`) });
        } else this.runtime.askFor(frame.to, frame.m, frame.ms, frame.from, answer, frame.b, (bytes) => connection.send({ t: REPLY, w: frame.w, ok: true, b: bytes } satisfies WireFrame));
        return;
      }
      case REPLY: {
        const ask = this.proxied.get(frame.w);
        if (ask === undefined) return; // the asker already timed out
        this.proxied.delete(frame.w);
        if (frame.b !== undefined) return this.packedReplyTo(ask, frame.b);
        this.replyTo(ask, frame.ok ? { ok: true, value: frame.v } : { ok: false, error: actorErrorFrom(frame.v) });
        return;
      }
    }
  }

  /** An ok reply packed by the peer's shard: unpacked by whoever asked (a shard, or this thread), not here. */
  private packedReplyTo(ask: ProxiedAsk, bytes: unknown): void {
    if (!(bytes instanceof Uint8Array)) return this.replyTo(ask, { ok: false, error: actorError('BAD_REQUEST', 'a packed reply must be bytes') });
    if (ask.settle) {
      let value: unknown;
      try {
        value = unpackMessage(bytes);
      } catch {
        return ask.settle({ ok: false, error: actorError('BAD_REQUEST', 'the reply could not be unpacked') });
      }
      return ask.settle({ ok: true, value });
    }
    this.runtime.routeFromRemote({ t: REPLY, o: ask.origin, i: ask.id, ok: true, v: undefined, b: bytes });
  }

  private replyTo(ask: ProxiedAsk, result: AskResult): void {
    if (ask.settle) return ask.settle(result);
    this.runtime.routeFromRemote(
      result.ok ? { t: REPLY, o: ask.origin, i: ask.id, ok: true, v: result.value } : { t: REPLY, o: ask.origin, i: ask.id, ok: false, v: result.error },
    );
  }

  /** A peer went away: its outstanding asks fail now rather than at their timeout. */
  private failProxied(connection: FrameConnection): void {
    for (const [wire, ask] of this.proxied) {
      if (ask.connection !== connection) continue;
      this.proxied.delete(wire);
      this.replyTo(ask, { ok: false, error: actorError('PEER_GONE', 'the process hosting the actor disconnected') });
    }
  }

  private sweep(): void {
    const now = this.now();
    // askPeer entries expire by their own timer, which settles them.
    for (const [wire, ask] of this.proxied) if (ask.expiresAt < now && ask.settle === undefined) this.proxied.delete(wire);
  }

  pendingProxiedAsks(): number {
    return this.proxied.size;
  }
}
