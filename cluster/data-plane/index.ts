// cluster/data-plane: the data-plane role. `DataPlane.start` runs an ActorRuntime whose shards each serve the
// invocation API on one uWS port (HTTP/1.1 by path or Host header, a multiplexed WebSocket, async jobs),
// host the routers and sandbox actors (actors/router.ts, actors/dp-sandbox.ts), and reach sandboxes through
// a per-shard connection pool; an optional compat front serves Dirigent's loader (HTTP/1.1 with underscore
// header names, and h2c) on a second port. A data plane claims its invoke port for itself (port-claim.ts).
// Not here: routing decisions (actors/), the worker's side of the sandbox protocol (cluster/worker).
export { CONTROL_PLANE_KINDS, DataPlane, dataPlaneModuleUrl, type DataPlaneConfig } from './data-plane.js';
export {
  createDataPlaneModule,
  DataPlaneOptionsError,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  parseDataPlaneOptions,
  type DataPlaneModuleOptions,
  type RoutingKinds,
} from './shard.js';
export { functionFromHost, resolveTarget, responseFor, type EdgeErrorCode, type EdgeResponse, type Target } from './edge.js';
export { DEFAULT_WS_LIMITS, type WsLimits } from './ws.js';
export { SANDBOX_INVOKE, SandboxPool, SandboxPoolError, type SandboxPoolErrorCode } from './sandbox-pool.js';
export { loadNativeUws, UwsNotNativeError } from './uws.js';
export { assertPortFree, portHolder, PortTakenError, type PortHolder } from './port-claim.js';
