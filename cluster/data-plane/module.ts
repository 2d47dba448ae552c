// The data plane's shard module: the uWS front, the sandbox pool and async jobs (shard.ts) with the real
// routing kinds: one `router` per function and one `dpsandbox` per sandbox endpoint (actors/).
// Load it with `ActorRuntime.start({ modules: [{ url: dataPlaneModuleUrl, options }] })`; DataPlane does.
import { dataPlaneSandboxKind } from '../../actors/dp-sandbox.js';
import { routerKind } from '../../actors/router.js';
import { SANDBOX_INVOKE } from './sandbox-pool.js';
import { createDataPlaneModule } from './shard.js';

export const shardModule = createDataPlaneModule((o) => [
  routerKind({ dataplaneId: o.dataplaneId, policy: o.policy, ...(o.tickMs === undefined ? {} : { tickMs: o.tickMs }) }),
  dataPlaneSandboxKind({ invokeService: SANDBOX_INVOKE }),
]);
