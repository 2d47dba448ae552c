// The actor runtime: shard threads each running one nact system, envelopes batched between threads,
// pure actors adapted onto nact, supervision, passivation, stats and inspection.
// It knows nothing of functions, sandboxes or HTTP; those live in actors/ and cluster/.
export { ActorRuntime, countersFromEnv, defaultLog, type ActorPage, type ModuleSpec, type RuntimeOptions } from './runtime.js';
export { ShardHost, type ActorInspection, type LogLevel, type RecentMessage, type Service, type ShardContext, type ShardModule } from './host.js';
export { ManualClock, RealClock, monotonicUs, processMonotonicMs, type Clock, type TimerHandle } from './clock.js';
export { ActorRuntimeError, type RuntimeErrorCode } from './errors.js';
export { fnv1a, shardOf, addressKey } from './hash.js';
export { seededRandom } from './random.js';
export { merge, newHistogram, quantileUs, type ActorStats, type Histogram, type KindStats, type ShardStats } from './stats.js';
export { ACTOR_OFFSET_MAX, ACTOR_PAGE_LIMIT, ACTOR_SORTS, compareActors, isActorSort, mergePage, type ActorQuery, type ActorSort, type ActorTop } from './actor-query.js';
export type { CodecName } from './link.js';
