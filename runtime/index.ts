// The actor runtime: shard threads each running one nact system, envelopes batched between threads,
// pure actors adapted onto nact, supervision, passivation, stats and inspection.
// It knows nothing of functions, sandboxes or HTTP; those live in actors/ and cluster/.
export { ActorRuntime, defaultLog, type ActorInspection, type ActorPage, type ModuleSpec, type RuntimeOptions } from './runtime.js';
export { ShardHost, type LogLevel, type Service, type ShardContext, type ShardModule } from './host.js';
export { ManualClock, RealClock, monotonicUs, type Clock, type TimerHandle } from './clock.js';
export { ActorRuntimeError, type RuntimeErrorCode } from './errors.js';
export { fnv1a, shardOf, addressKey } from './hash.js';
export { seededRandom } from './random.js';
export { quantileUs, type ActorStats, type Histogram, type ShardStats } from './stats.js';
export type { CodecName } from './link.js';
