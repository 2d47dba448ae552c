// The data plane's shard module: the uWS front, the sandbox pool and async jobs (shard.ts) with the real
// routing kinds: one `router` per function and one `dpsandbox` per sandbox endpoint (actors/).
// Load it with `ActorRuntime.start({ modules: [{ url: dataPlaneModuleUrl, options }] })`; DataPlane does.
import { dataPlaneSandboxKind } from '../../actors/dp-sandbox.js';
import { dataplaneReplicaId, routerAddress } from '../../actors/messages.js';
import { shardOf } from '../../runtime/hash.js';
import { routerKind } from '../../actors/router.js';
import { SANDBOX_INVOKE } from './sandbox-pool.js';
import { createDataPlaneModule } from './shard.js';

export const shardModule = createDataPlaneModule((o, ctx) => [
  // A router replica per shard, each reporting as one data plane (dataplaneReplicaId) with its share of the slots.
  routerKind({
    dataplaneId: dataplaneReplicaId(o.dataplaneId, ctx.shard),
    policy: o.policy,
    shard: ctx.shard,
    shards: ctx.shards,
    home: (name) => shardOf(routerAddress(name), ctx.shards),
    ...(o.tickMs === undefined ? {} : { tickMs: o.tickMs }),
  }),
  dataPlaneSandboxKind({ invokeService: SANDBOX_INVOKE }),
]);
