// What crosses a thread (and later a process) boundary: plain data only, so it survives
// structured clone and msgpack alike.
import type { Address } from '../actors/actor.js';
import type { ActorSort } from './actor-query.js';

export const TELL = 0;
export const ASK = 1;
export const REPLY = 2;
export const SPAWN = 3;

/**
 * `b`, on a tell or ask between processes: the message packed by the shard that sent it (`m` is then undefined),
 * relayed as bytes by both main threads and unpacked by the shard that delivers it (see packed.ts).
 */
export type Envelope =
  | { readonly t: typeof TELL; readonly to: Address; readonly m: unknown; readonly b?: Uint8Array | undefined; readonly from?: Address | undefined }
  /** `o` = endpoint that asked, `i` = its correlation id, `ms` = the asker's timeout (lets a remote proxy expire it). */
  /** `r`: the asker is in another process, so an ok reply is packed by the shard that makes it (REPLY's `b`). */
  | { readonly t: typeof ASK; readonly to: Address; readonly m: unknown; readonly b?: Uint8Array | undefined; readonly r?: boolean | undefined; readonly from?: Address | undefined; readonly o: number; readonly i: number; readonly ms: number }
  /** Routed to endpoint `o`; `v` is the value when ok, else an ActorError; `b` an ok value packed (`v` then undefined). */
  | { readonly t: typeof REPLY; readonly o: number; readonly i: number; readonly ok: boolean; readonly v: unknown; readonly b?: Uint8Array | undefined }
  | { readonly t: typeof SPAWN; readonly to: Address; readonly init: unknown };

/** Shard control actor: asks to `{kind: SHARD_KIND, id: String(shard)}` reach the shard host itself. */
export const SHARD_KIND = '$shard';

export type ShardControl =
  | { readonly op: 'stats' }
  | { readonly op: 'count'; readonly kind?: string | undefined }
  | { readonly op: 'list'; readonly kind?: string | undefined; readonly offset: number; readonly limit: number }
  /** The Observer view: this shard's first `offset + limit` actors in `sort` order (see actor-query.ts). */
  | { readonly op: 'top'; readonly kind?: string | undefined; readonly sort: ActorSort; readonly offset: number; readonly limit: number }
  | { readonly op: 'inspect'; readonly address: Address }
  /**
   * The same by the actor's name on this shard (ActorStats.address), as a listing gives it. `watchMs`: keep its
   * recent messages for that long from now (renewed by each such inspect; off again once it passes).
   */
  | { readonly op: 'inspect-name'; readonly name: string; readonly watchMs?: number | undefined }
  | { readonly op: 'advance'; readonly ms: number }
  /** Turn step-time measurement on or off from now on (ShardHostOptions.counters); answers the previous setting. */
  | { readonly op: 'set-counters'; readonly on: boolean }
  | { readonly op: 'stop-actor'; readonly address: Address }
  /** The console's restart action: the actor starts again from its init, as after a crash (counted as a restart). */
  | { readonly op: 'restart-actor'; readonly name: string }
  | { readonly op: 'shutdown' };
