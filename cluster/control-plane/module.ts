// The control plane's shard module: the function, autoscaler and scheduler actor kinds.
import { autoscalerKind } from '../../actors/autoscaler-actor.js';
import { functionKind } from '../../actors/function.js';
import { schedulerKind } from '../../actors/scheduler.js';
import type { ShardModule } from '../../runtime/index.js';

export const shardModule: ShardModule = { kinds: [functionKind, autoscalerKind, schedulerKind] };
