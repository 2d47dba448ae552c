// Replicas. A data plane with several shards runs a router per function on every shard (`routerReplicaAddress`),
// each fronting its shard's connections. A replica holds its share of each sandbox's slots (`slotShare`: an even
// split, the remainder to the lowest ranks counted from the home shard, where `routerAddress` lands) in sandbox
// actors on its own shard, and reports as a data plane of its own (`dataplaneId`, e.g. `dp1#1`). The home replica
// hears the control plane and relays every update once (`relayed`); a replica whose share is 0 (the function's
// concurrency is below the shard count) forwards every request to the home replica (`rt.forwarded`).

import type { Address, ReplyTo } from './actor.js';
import { dataPlaneSandboxAddress, routerAddress, routerReplicaAddress, type Invocation, type RouterUpdate } from './messages.js';
import type { Effects, RouterSettings } from './router-state.js';

/** This replica's sandbox actor of `sandboxId`: on this replica's shard. */
export function sandboxActor(name: string, sandboxId: string, settings: RouterSettings): Address {
  return dataPlaneSandboxAddress(name, sandboxId, settings.shards === 1 ? undefined : settings.shard);
}

export function selfAddress(name: string, settings: RouterSettings): Address {
  return settings.shards === 1 ? routerAddress(name) : routerReplicaAddress(name, settings.shard);
}

/** This replica's slots of a sandbox of `name` with `concurrency` slots (all of them with one shard: no lookup). */
export function share(name: string, concurrency: number, settings: RouterSettings): number {
  if (settings.shards === 1) return concurrency;
  const rank = (settings.shard - settings.home(name) + settings.shards) % settings.shards;
  return slotShare(concurrency, rank, settings.shards);
}

/**
 * The slots of a sandbox with `concurrency` slots held by the replica of rank `rank`: an even split over the
 * shards, the remainder to the lowest ranks. 0 past `concurrency` when it is below the shard count: those
 * replicas forward every request to the home replica, which always has a share.
 */
export function slotShare(concurrency: number, rank: number, shards: number): number {
  return Math.floor(concurrency / shards) + (rank < concurrency % shards ? 1 : 0);
}

export function forwarded(name: string, invocation: Invocation, replyTo: ReplyTo, settings: RouterSettings): Effects[number] {
  return { type: 'send', to: routerReplicaAddress(name, settings.home(name)), message: { type: 'rt.forwarded', invocation, replyTo } };
}

/** What the control plane tells the replica on the key's shard goes on to every other shard's replica. */
export function relay(name: string, update: RouterUpdate, fx: Effects, settings: RouterSettings): void {
  if (settings.shards === 1 || update.relayed) return;
  const copy: RouterUpdate = { ...update, relayed: true };
  for (let shard = 0; shard < settings.shards; shard++) if (shard !== settings.shard) fx.push({ type: 'send', to: routerReplicaAddress(name, shard), message: copy });
}
