// The worker role: the node actor's host. Load `module.js` into an ActorRuntime to give every shard a
// sandbox runtime, an invocation server for data planes and the sandbox services; spawn one `node` actor
// (actors/node.ts) per worker host and tell it `node.start`. The invocation protocol is in protocol.ts;
// SandboxClient speaks it. Not here: sandbox runtimes themselves (cluster/sandbox), node behaviour (actors/).
export { DEFAULT_WORKER_HOST, parseWorkerOptions, shardModule, toSandboxSpec, WorkerError, type WorkerErrorCode, type WorkerOptions } from './module.js';
export { serveInvocations, type InvocationServer, type InvocationServerOptions } from './invoke-server.js';
export { parseAddress, SandboxClient, SandboxClientError, type SandboxClientErrorCode, type SandboxClientOptions } from './invoke-client.js';
export type { InvokeErrorCode, RequestFrame, ResultFrame } from './protocol.js';

/** URL of the shard module, for `ActorRuntime.start({ modules: [{ url: workerModuleUrl, options } ] })`. */
export const workerModuleUrl = new URL('./module.js', import.meta.url).href;
