// The data plane as a shard module, minus the routing kinds: module.ts adds the real router and dpsandbox
// kinds; tests add fakes. Every shard thread gets:
//   - the uWS front (HTTP/1.1 + WebSocket) on host:httpPort, opened in `start` and closed first in `stop`;
//   - the `sandbox.invoke` service: a per-shard pool of connections to worker invocation servers;
//   - with an asyncDir: the `asyncjobs` kind and its `async.store` service (a FileStore opened lazily by the
//     one shard that hosts the actor).
// Each shard thread imports this file afresh, so the state in the module's closure is per shard.
import type { ActorKind } from '../../actors/actor.js';
import { ASYNC_STORE, asyncJobsKind, type AsyncJobsConfig } from '../../actors/async-jobs.js';
import { routerAddress, routerReplicaAddress, type LoadBalancingPolicy } from '../../actors/messages.js';
import type { Service, ShardContext, ShardModule } from '../../runtime/host.js';
import { InvokeApi } from './api.js';
import { AsyncJobStore } from './async-store.js';
import { SANDBOX_INVOKE, SandboxPool } from './sandbox-pool.js';
import { UwsFront } from './uws-front.js';
import { loadNativeUws } from './uws.js';
import { DEFAULT_WS_LIMITS, type WsLimits } from './ws.js';
import { DirigentError } from '../../actors/errors.js';
import { LOAD_BALANCING_POLICIES } from '../../actors/settings.js';

/** The module's options (plain data: they cross into every shard thread). */
export interface DataPlaneModuleOptions {
  readonly dataplaneId: string;
  /** Cluster token, presented to the workers' invocation servers. */
  readonly token: string;
  /** Interface the front listens on. */
  readonly host: string;
  /** The port every shard listens on (SO_REUSEPORT); a real port, since shards cannot agree on a picked one. */
  readonly httpPort: number;
  readonly policy: LoadBalancingPolicy;
  /** Largest request body the front accepts, bytes. Default 6 MiB (a function's own limit may be lower). */
  readonly maxBodyBytes?: number;
  /** Where async jobs are stored; without it the async API answers 501. */
  readonly asyncDir?: string;
  /** Bound of one invocation at the edge, ms. Default DEFAULT_REQUEST_TIMEOUT_MS. */
  readonly requestTimeoutMs?: number;
  /** Metric period of the routers, ms (tests shorten it). */
  readonly tickMs?: number;
  readonly ws?: Partial<Omit<WsLimits, 'maxBodyBytes'>>;
  /** Async-job tuning (retry backoff, retention); attemptTimeoutMs is requestTimeoutMs. */
  readonly asyncJobs?: Omit<AsyncJobsConfig, 'attemptTimeoutMs' | 'storeService'>;
}

export type ParsedOptions = Required<Omit<DataPlaneModuleOptions, 'asyncDir' | 'tickMs' | 'ws' | 'asyncJobs'>> & {
  readonly asyncDir: string | undefined;
  readonly tickMs: number | undefined;
  readonly ws: Omit<WsLimits, 'maxBodyBytes'>;
  readonly asyncJobs: Omit<AsyncJobsConfig, 'attemptTimeoutMs' | 'storeService'>;
};

export const DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024;
/**
 * The edge's own bound on one invocation, ms: the longest queue wait plus the longest run a function spec
 * allows (1 h each), plus a minute. The router answers each function's deadlines well before this; this only
 * bounds an ask whose answer was lost.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 2 * 3_600_000 + 60_000;


export class DataPlaneOptionsError extends DirigentError<'INVALID_DATA_PLANE_OPTIONS'> {
  override name = 'DataPlaneOptionsError';
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super('INVALID_DATA_PLANE_OPTIONS', message, options);
  }
}

/** Defaults, then validation; an error names the option, its value and its unit. */
export function parseDataPlaneOptions(input: unknown): ParsedOptions {
  const bad = (field: string, value: unknown, want: string): never => {
    throw new DataPlaneOptionsError(`data-plane option ${field}=${JSON.stringify(value)} must be ${want}`);
  };
  if (input === null || typeof input !== 'object') return bad('(options)', input, 'an object');
  const o = input as Partial<DataPlaneModuleOptions>;
  const text = (field: keyof DataPlaneModuleOptions) => {
    const value = o[field];
    if (typeof value !== 'string' || value === '') bad(field, value, 'a non-empty string');
    return value as string;
  };
  const int = (field: string, value: unknown, min: number, max: number, unit: string) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) bad(field, value, `an integer in ${min}..${max} (${unit})`);
    return value as number;
  };
  if (!(LOAD_BALANCING_POLICIES as readonly unknown[]).includes(o.policy)) bad('policy', o.policy, `one of ${LOAD_BALANCING_POLICIES.join(', ')}`);
  const asyncDir = o.asyncDir === undefined ? undefined : text('asyncDir');
  const ws = { ...DEFAULT_WS_LIMITS, ...(o.ws ?? {}) };
  return {
    dataplaneId: text('dataplaneId'),
    token: text('token'),
    host: text('host'),
    httpPort: int('httpPort', o.httpPort, 1, 65_535, 'port'),
    policy: o.policy as LoadBalancingPolicy,
    maxBodyBytes: int('maxBodyBytes', o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, 0, 256 * 1024 * 1024, 'bytes'),
    asyncDir,
    requestTimeoutMs: int('requestTimeoutMs', o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, 1, 24 * 3_600_000, 'ms'),
    tickMs: o.tickMs === undefined ? undefined : int('tickMs', o.tickMs, 10, 3_600_000, 'ms'),
    ws: {
      highWaterBytes: int('ws.highWaterBytes', ws.highWaterBytes, 1024, 1024 ** 3, 'bytes'),
      maxOutboxBytes: int('ws.maxOutboxBytes', ws.maxOutboxBytes, 1024, 1024 ** 3, 'bytes'),
      maxInFlight: int('ws.maxInFlight', ws.maxInFlight, 1, 1_000_000, 'requests'),
      maxHeld: int('ws.maxHeld', ws.maxHeld, 0, 1_000_000, 'requests'),
    },
    asyncJobs: o.asyncJobs ?? {},
  };
}

/** Builds the routing kinds (router, dpsandbox or fakes) from the parsed options. */
export type RoutingKinds = (options: ParsedOptions, ctx: ShardContext) => readonly ActorKind[];

export function createDataPlaneModule(routingKinds: RoutingKinds): ShardModule {
  let front: UwsFront | undefined;
  let pool: SandboxPool | undefined;
  let store: AsyncJobStore | undefined;
  return {
    kinds: (ctx) => {
      const o = parseDataPlaneOptions(ctx.options);
      const asyncKinds = o.asyncDir === undefined ? [] : [asyncJobsKind({ ...o.asyncJobs, attemptTimeoutMs: o.requestTimeoutMs, storeService: ASYNC_STORE })];
      return [...routingKinds(o, ctx), ...asyncKinds];
    },
    services: (ctx) => {
      const o = parseDataPlaneOptions(ctx.options);
      pool = SandboxPool.forCluster(o.token, o.dataplaneId);
      const services: Record<string, Service> = { [SANDBOX_INVOKE]: pool.service };
      if (o.asyncDir !== undefined) {
        store = new AsyncJobStore(o.asyncDir, (level, text) => ctx.log(level, text));
        services[ASYNC_STORE] = store.call;
      }
      return services;
    },
    start: (ctx) => {
      const o = parseDataPlaneOptions(ctx.options);
      // Fails loudly (UWS_NOT_NATIVE) rather than serve from uWS's slow JavaScript fallback.
      const uws = loadNativeUws();
      // Invocations go to this shard's router replica: no thread hop on the way to a sandbox.
      const router = ctx.shards === 1 ? routerAddress : (name: string) => routerReplicaAddress(name, ctx.shard);
      const api = new InvokeApi((to, message, timeoutMs, settle) => ctx.askWith(to, message, timeoutMs, settle), { requestTimeoutMs: o.requestTimeoutMs, asyncEnabled: o.asyncDir !== undefined, router });
      front = UwsFront.listen(uws, { host: o.host, port: o.httpPort, maxBodyBytes: o.maxBodyBytes, ws: { ...o.ws, maxBodyBytes: o.maxBodyBytes } }, api, (level, text) => ctx.log(level, text));
    },
    stop: async () => {
      // The listen socket first: one still open when this thread exits aborts the process.
      front?.close();
      front = undefined;
      pool?.close();
      await store?.close();
    },
  };
}
