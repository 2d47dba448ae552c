// Counters kept per actor and per shard for the inspection console.

/** Processing-time histogram with power-of-two bucket bounds in microseconds: bucket i counts samples < 2^i us. */
export const HISTOGRAM_BUCKETS = 24;

export interface Histogram {
  /** counts[i] = samples with duration in [2^(i-1), 2^i) us; the last bucket is open-ended. */
  readonly counts: number[];
  count: number;
  /** Sum of all samples, us. */
  sumUs: number;
  maxUs: number;
}

export function newHistogram(): Histogram {
  return { counts: new Array<number>(HISTOGRAM_BUCKETS).fill(0), count: 0, sumUs: 0, maxUs: 0 };
}

export function record(h: Histogram, us: number): void {
  const bucket = us < 1 ? 0 : Math.min(HISTOGRAM_BUCKETS - 1, 32 - Math.clz32(Math.floor(us)));
  h.counts[bucket] = (h.counts[bucket] ?? 0) + 1;
  h.count += 1;
  h.sumUs += us;
  if (us > h.maxUs) h.maxUs = us;
}

export function merge(into: Histogram, from: Histogram): void {
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) into.counts[i] = (into.counts[i] ?? 0) + (from.counts[i] ?? 0);
  into.count += from.count;
  into.sumUs += from.sumUs;
  into.maxUs = Math.max(into.maxUs, from.maxUs);
}

/** Upper bound (us) of the bucket holding quantile q in [0, 1]; 0 when empty. */
export function quantileUs(h: Histogram, q: number): number {
  if (h.count === 0) return 0;
  const rank = Math.ceil(q * h.count);
  let seen = 0;
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
    seen += h.counts[i] ?? 0;
    if (seen >= rank) return 2 ** i;
  }
  return h.maxUs;
}

export interface ActorStats {
  readonly address: string;
  readonly kind: string;
  readonly mailbox: number;
  readonly processed: number;
  readonly restarts: number;
  /** Mean step time, us (0 with the counters off). Step times are a sample: see TIMED_ONE_IN in host.ts. */
  readonly meanUs: number;
  /** Step-time percentiles, us: upper bounds of power-of-two buckets (0 with the counters off). */
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  /** When its last message was processed, ms on the shard's clock (its creation until then). */
  readonly lastActiveAt: number;
  readonly shard: number;
  /** The process it runs in, set by whoever gathered actors from several processes (`cp`, `worker:w1`, `dataplane:dp1`). */
  readonly process?: string;
}

/** One kind's actors on one shard, summed (stopped actors' counts are not kept per kind). */
export interface KindStats {
  readonly kind: string;
  readonly actors: number;
  readonly processed: number;
  readonly mailbox: number;
  readonly restarts: number;
  readonly histogram: Histogram;
}

export interface ShardStats {
  readonly shard: number;
  /** Shards of the runtime this one belongs to (lets a remote caller ask every shard after asking one). */
  readonly shards: number;
  /** Whether step times are measured (RuntimeOptions.counters); processed, mailbox and restarts always are. */
  readonly counters: boolean;
  readonly kinds: KindStats[];
  readonly actors: number;
  readonly actorsByKind: Record<string, number>;
  readonly processed: number;
  readonly mailbox: number;
  readonly restarts: number;
  readonly deadLetters: number;
  /** Envelopes sent to / received from other threads, and batches posted. */
  readonly crossSent: number;
  readonly crossReceived: number;
  readonly batchesSent: number;
  readonly pendingAsks: number;
  readonly histogram: Histogram;
}
