// Stable shard placement: the same colocation key maps to the same shard in every process and run.
import { defaultKey, type Address } from '../actors/actor.js';

/** 32-bit FNV-1a over UTF-16 code units; stable across processes and Node versions. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

export function shardOf(address: Address, shards: number): number {
  // One shard needs no hash (the data plane often runs one, and this runs per message).
  if (shards === 1) return 0;
  return address.shard !== undefined ? address.shard % shards : fnv1a(defaultKey(address)) % shards;
}

const keys = new WeakMap<Address, string>();

/**
 * Unique string form of an address, used as the actor's name inside its shard. Remembered for frozen
 * address objects, which are the reused ones (actors/messages.ts memoizes and freezes the per-request
 * ones): they cost no new string. Others (an address that crossed threads is a new object every time)
 * are not remembered: a WeakMap entry per message cost cross-shard messaging a third of its rate.
 */
export function addressKey(address: Address): string {
  let key = keys.get(address);
  if (key === undefined) {
    key = address.key === undefined ? `${address.kind}/${address.id}` : `${address.kind}/${address.id}@${address.key}`;
    if (Object.isFrozen(address)) keys.set(address, key);
  }
  return key;
}
