// The Observer view's query: actors of one kind (or all), ordered by one counter, one page at a time.
// Each shard answers its own first `offset + limit` in that order; whoever asked several shards (or
// processes) merges those answers with the same order and cuts the page, so the page is exact while no
// shard sends more than a page's worth, whatever the number of actors.
import type { ActorStats } from './stats.js';

/** Orders, each descending except `address` (ascending): the busiest actor first. */
export const ACTOR_SORTS = ['mailbox', 'processed', 'p99Us', 'meanUs', 'restarts', 'lastActiveAt', 'address'] as const;
export type ActorSort = (typeof ACTOR_SORTS)[number];

/** Bounds of a page and of how deep one may page, actors. */
export const ACTOR_PAGE_LIMIT = { min: 1, max: 1000 } as const;
export const ACTOR_OFFSET_MAX = 100_000;

export interface ActorQuery {
  readonly kind?: string | undefined;
  readonly sort: ActorSort;
  /** Actors to skip, in that order. */
  readonly offset: number;
  readonly limit: number;
}

export interface ActorTop {
  /** Actors matching the kind filter. */
  readonly total: number;
  readonly items: ActorStats[];
}

export function isActorSort(value: string): value is ActorSort {
  return (ACTOR_SORTS as readonly string[]).includes(value);
}

/**
 * Total order: the sort key, then the address, the process and the shard (one address may run on several
 * shards: a router's replicas; and in several processes: every data plane's).
 */
export function compareActors(sort: ActorSort): (a: ActorStats, b: ActorStats) => number {
  const text = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  const tie = (a: ActorStats, b: ActorStats) => text(a.address, b.address) || text(a.process ?? '', b.process ?? '') || a.shard - b.shard;
  if (sort === 'address') return tie;
  return (a, b) => b[sort] - a[sort] || tie(a, b);
}

/** The first `offset + limit` of `items` in the query's order (what one shard answers). */
export function head(items: ActorStats[], query: ActorQuery): ActorStats[] {
  return items.sort(compareActors(query.sort)).slice(0, query.offset + query.limit);
}

/** Merge shards' heads into the page the query asks for. */
export function mergePage(answers: readonly ActorTop[], query: ActorQuery): ActorTop {
  const all = answers.flatMap((a) => a.items).sort(compareActors(query.sort));
  return { total: answers.reduce((n, a) => n + a.total, 0), items: all.slice(query.offset, query.offset + query.limit) };
}
