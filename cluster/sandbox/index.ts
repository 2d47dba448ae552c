// Sandbox runtimes: where a worker node runs function code, behind one port (`SandboxRuntime`).
// `thread` runs a user ES module in a piscina worker per sandbox, `process` runs any HTTP-serving command
// in its own process group, `simulated` runs builtin workloads on an injected clock for scale tests.
// Thread and process runtimes can keep a pool of started generic sandboxes (stem cells, pool.ts).
// Not here: placement, scaling, sandbox lifecycle decisions (actors/) and the node's wiring (cluster/worker).
export type {
  BuiltinWorkload,
  InvokeRequest,
  InvokeResponse,
  LogRingBounds,
  RuntimeSource,
  Sandbox,
  SandboxErrorCode,
  SandboxEvent,
  SandboxLogEntry,
  SandboxRuntime,
  SandboxSpec,
  SandboxStart,
} from './runtime.js';
export type { PoolSettings, PoolSize, PoolStats, StemFactory } from './pool.js';
export { DEFAULT_IDLE_DELAY_MS, PoolSettingsError, StemPool, validatePoolSettings } from './pool.js';
export { SandboxError, validateSpec } from './runtime.js';
export type { ThreadRuntimeOptions } from './thread.js';
export { ThreadRuntime } from './thread.js';
export type { ProcessRuntimeOptions } from './process.js';
export { BUILTIN_SERVER, ProcessRuntime } from './process.js';
export type { LatencyDistribution, SimulatedClock, SimulatedRuntimeOptions } from './simulated.js';
export { SimulatedRuntime, validateLatency } from './simulated.js';
export { ManualClock } from './manual-clock.js';
export type { WorkloadContext } from './workloads.js';
export { realWorkloadContext, runWorkload } from './workloads.js';
export { normaliseHandlerResult } from './handler-result.js';
