// The protocols between the cluster's actors: addresses and plain-data messages. Everything here
// crosses threads and processes, so it is plain data (no classes, functions, Maps or Dates).
import type { Address, AskResult, ReplyTo } from './actor.js';
import type { AutoscalerConfig } from './autoscaler-config.js';
import type { FunctionSpec, SandboxRuntimeKind } from './function-spec.js';

// ---- Addresses --------------------------------------------------------------------------------
// A function's actors share the colocation key `fn:<name>`, so its hot path stays on one thread.

/**
 * Builds a value per name once (bounded: the table starts over past MEMO_LIMIT names). The data plane makes
 * addresses per request; a memoized one is the same object with the same key strings every time, so the
 * runtime finds its actor by strings whose hashes are known, instead of building and hashing new ones.
 * Pure: the same name always gives an equal value.
 */
function memoized<T>(build: (name: string) => T): (name: string) => T {
  const table = new Map<string, T>();
  return (name) => {
    let value = table.get(name);
    if (value === undefined) {
      if (table.size >= MEMO_LIMIT) table.clear();
      value = build(name);
      table.set(name, value);
    }
    return value;
  };
}
const MEMO_LIMIT = 4096;

export const functionKey = memoized((name: string): string => `fn:${name}`);

/** Control plane: owns a function's spec, its sandbox set and its endpoint set. */
export const functionAddress = (name: string): Address => ({ kind: 'function', id: name, key: functionKey(name) });
/** Control plane: the function's KPA autoscaler. */
export const autoscalerAddress = (name: string): Address => ({ kind: 'autoscaler', id: name, key: functionKey(name) });
/** Control plane: node table, placement and allocation accounting (one per cluster). */
export const schedulerAddress: Address = { kind: 'scheduler', id: 'cluster' };
/** Worker: the node agent that creates and deletes sandboxes on one node. */
export const nodeAddress = (nodeId: string): Address => ({ kind: 'node', id: nodeId });
/** Data plane: the function's router (endpoint set, cold-start queue). Sent from the control plane to every data plane. */
export const routerAddress = memoized((name: string): Address => Object.freeze({ kind: 'router', id: name, key: functionKey(name) }));
/** Memoized replica addresses, by shard. */
const replicaAddresses: ((name: string) => Address)[] = [];
/**
 * Data plane: the function's router replica on data-plane shard `shard`. With several shards every shard has one,
 * fronting that shard's connections with its share of every sandbox's slots; the replica on the shard the key
 * hashes to is the plain `routerAddress` one, which hears the control plane and relays to the others.
 */
export function routerReplicaAddress(name: string, shard: number): Address {
  for (let k = replicaAddresses.length; k <= shard; k++) replicaAddresses.push(memoized((n: string): Address => Object.freeze({ kind: 'router', id: n, key: functionKey(n), shard: k })));
  return replicaAddresses[shard]!(name);
}

// ---- Shared shapes ------------------------------------------------------------------------------

export interface Resources {
  readonly cpuMilli: number;
  readonly memoryMiB: number;
}

export interface NodeCapacity extends Resources {
  /** Most sandboxes the node will run at once. */
  readonly slots: number;
}

/** Where a data plane reaches a ready sandbox. */
export interface Endpoint {
  readonly sandboxId: string;
  readonly nodeId: string;
  /** `host:port` of the worker's sandbox invocation server. */
  readonly address: string;
  /** Max in-flight requests this sandbox accepts (the function's container concurrency). */
  readonly concurrency: number;
  /** The function's template version the sandbox runs (`FunctionSpec.templateVersion`): answers name it. */
  readonly version: number;
}

export type SandboxPhase = 'creating' | 'ready' | 'draining' | 'gone' | 'failed';

/** What a worker reports about one sandbox it runs (used for reconstruction after failover). */
export interface SandboxReport {
  readonly sandboxId: string;
  readonly functionName: string;
  readonly nodeId: string;
  readonly endpoint: Endpoint;
  readonly resources: Resources;
  /** ms on the worker's clock. */
  readonly createdAt: number;
  /** The template version it runs: a new leader replaces a sandbox older than its function's spec. */
  readonly version: number;
}

/** The parts of a function spec a worker needs to create its sandboxes, and their version (`templateVersion`). */
export type SandboxTemplate = Pick<FunctionSpec, 'name' | 'runtime' | 'source' | 'cpuMilli' | 'memoryMiB' | 'concurrency' | 'timeoutMs' | 'env'> & { readonly version: number };

/** The parts of a function spec a data plane needs to route it. */
export interface RoutingConfig {
  readonly concurrency: number;
  readonly queueDepth: number;
  readonly queueTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly timeoutMs: number;
  readonly maxScale: number;
}

// ---- Function actor (control plane) -------------------------------------------------------------

export type FunctionMessage =
  /** Create or update (from the admin API; asked, replies with the function status). */
  | { readonly type: 'fn.configure'; readonly spec: FunctionSpec }
  /** Deregister: drain and delete every sandbox, then stop (asked, replies when deletion has started). */
  | { readonly type: 'fn.delete' }
  /** From the autoscaler: the wanted sandbox count. */
  | { readonly type: 'fn.scale'; readonly desired: number; readonly reason: string }
  /** From a worker's node actor. */
  | { readonly type: 'fn.sandboxReady'; readonly sandboxId: string; readonly endpoint: Endpoint }
  | { readonly type: 'fn.sandboxFailed'; readonly sandboxId: string; readonly nodeId: string; readonly reason: string }
  | { readonly type: 'fn.sandboxDeleted'; readonly sandboxId: string; readonly nodeId: string }
  /** From a data plane: no request is in flight on this draining sandbox any more. */
  | { readonly type: 'fn.drained'; readonly sandboxId: string; readonly dataplaneId: string }
  /** From the scheduler: the node died; its sandboxes are gone. */
  | { readonly type: 'fn.nodeLost'; readonly nodeId: string }
  /** Asked by a data plane that saw a version gap or (re)connected: replies with `EndpointSnapshot`. */
  | { readonly type: 'fn.getEndpoints' }
  /** Asked by the admin API / console: replies with `FunctionStatus`. */
  | { readonly type: 'fn.status' }
  /** Reconstruction: sandboxes found on the workers for this function. */
  | { readonly type: 'fn.adopt'; readonly sandboxes: readonly SandboxReport[] }
  /** From a data plane at each metrics tick: requests in flight per busy sandbox, so scale-down evicts idle ones first. */
  | { readonly type: 'fn.load'; readonly dataplaneId: string; readonly inFlight: Readonly<Record<string, number>> }
  /** The data planes currently connected: a draining sandbox waits for `fn.drained` from each of them. */
  | { readonly type: 'fn.dataplanes'; readonly ids: readonly string[] }
  /** Internal results and timers (delivered by the host as the outcome of effects). */
  | { readonly type: 'fn.placed'; readonly requestId: number; readonly result: PlaceReply | null; readonly error?: string }
  | { readonly type: 'fn.drainTimeout'; readonly sandboxId: string }
  | { readonly type: 'fn.retryScale' };

export interface EndpointSnapshot {
  readonly functionName: string;
  readonly version: number;
  readonly endpoints: readonly Endpoint[];
  readonly routing: RoutingConfig;
  /**
   * Why the function cannot start sandboxes now (it is `failed`: see `FunctionStatus.state`), or null. A router
   * answers a request that would wait for a sandbox 503 FUNCTION_FAILED with it at once.
   */
  readonly failure: string | null;
}

/**
 * Lambda's function states, for one function: `active` serves its current template version (or is scaled to
 * zero and will start it on demand); `updating` still routes to sandboxes of an older version while the new ones
 * start (a rollout); `failed` cannot start sandboxes of its current version (`stateReason` says why) and waits
 * out a backoff before trying again.
 */
export type FunctionPhase = 'active' | 'updating' | 'failed';

/** Creation failures of the current template version since the last successful start or update. */
export interface CreationFailures {
  /** Sandboxes that failed to start. */
  readonly count: number;
  readonly lastError: string;
  /** When the last one failed, ms. */
  readonly lastAt: number;
  /** Delay before the next attempt, ms: 10 s doubling to 5 min (Kubernetes' CrashLoopBackOff). */
  readonly backoffMs: number;
  /** No sandbox is created before this, ms. */
  readonly retryAt: number;
}

export interface FunctionStatus {
  readonly name: string;
  readonly specVersion: number;
  /** The template version new sandboxes run (`FunctionSpec.templateVersion`). */
  readonly version: number;
  readonly state: FunctionPhase;
  /** Why the state is not `active`, for a person; null when it is. */
  readonly stateReason: string | null;
  readonly failures: CreationFailures | null;
  readonly desired: number;
  readonly creating: number;
  readonly ready: number;
  readonly draining: number;
  /** Sandboxes of older template versions still creating or routed (a rollout is done when this is 0). */
  readonly outdated: number;
  readonly endpointVersion: number;
  readonly deleting: boolean;
  readonly sandboxes: readonly { readonly sandboxId: string; readonly nodeId: string; readonly phase: SandboxPhase; readonly since: number; readonly version: number }[];
}

// ---- Autoscaler actor (control plane) -----------------------------------------------------------

/**
 * Upper bounds (`le`) of the cold-start queue-time histogram, ms, ascending. `InvocationTotals.coldStartMsBuckets`
 * has one more entry than this: the last bucket is `+Inf`.
 */
export const COLD_START_BUCKETS_MS: readonly number[] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];

/**
 * A data plane's cumulative request counters for one function, since its router started (they go back to 0 when
 * the router or its data plane restarts; the autoscaler treats any decrease as such a reset).
 */
export interface InvocationTotals {
  /** Requests handed to a sandbox (answered by the sandbox actor, whatever the sandbox replied). */
  readonly invocations: number;
  /** Of those, requests that waited for a sandbox created after they were queued. */
  readonly coldStarts: number;
  /** Sum of the queue times of the cold starts, ms. */
  readonly coldStartMsSum: number;
  /**
   * Cumulative counts of cold starts by queue time, Prometheus-style: entry `i` counts cold starts that waited
   * at most `COLD_START_BUCKETS_MS[i]` ms; the last entry (`+Inf`) equals `coldStarts`.
   */
  readonly coldStartMsBuckets: readonly number[];
  /**
   * Requests the router answered itself with an error, without a sandbox, by HTTP status (`"404"`, `"413"`,
   * `"429"`, `"503"`, `"504"`); only statuses that occurred are present. A 502 from a failing sandbox is the
   * sandbox actor's answer and counts under `invocations`.
   */
  readonly rejected: Readonly<Record<string, number>>;
}

export type AutoscalerMessage =
  | { readonly type: 'as.configure'; readonly config: AutoscalerConfig; readonly containerConcurrency: number }
  /**
   * From a data plane every tick while its in-flight or queued count is non-zero (and once when it returns to 0).
   * `inFlight` and `queued` are the peaks of the report period; `averageInFlight` is the period's demand by
   * Little's law (requests, fractional: the time-weighted average at sandboxes times arrivals / dispatches; see
   * actors/router-reports.ts), absent from older data planes. `totals`: the router's cumulative counters at the
   * moment of the report (absent from data planes that do not count).
   */
  | {
      readonly type: 'as.metric';
      readonly dataplaneId: string;
      readonly inFlight: number;
      readonly queued: number;
      readonly averageInFlight?: number;
      readonly totals?: InvocationTotals;
    }
  /**
   * From a data plane at once when a request finds no free slot: decide now, not at the next tick. `grown`: the
   * queue was reported before and has doubled since (absent: a queue that just formed).
   */
  | { readonly type: 'as.backlog'; readonly dataplaneId: string; readonly inFlight: number; readonly queued: number; readonly grown?: boolean }
  /** From the function actor whenever its ready count changes. */
  | { readonly type: 'as.ready'; readonly ready: number }
  /** After reconstruction: no scale-down before `untilMs` (one stable window). */
  | { readonly type: 'as.hold'; readonly untilMs: number }
  | { readonly type: 'as.status' }
  | { readonly type: 'as.stop' }
  | { readonly type: 'as.tick' };

/** One autoscaler decision that changed the count (or its reason), for a person. */
export interface DecisionRecord {
  /** ms (the control plane's clock). */
  readonly at: number;
  readonly from: number;
  readonly to: number;
  readonly reason: string;
  readonly panic: boolean;
  /** What it was decided from: a `tick` (the windows), a `backlog` (a data plane's queue, at once), or a config change. */
  readonly trigger: 'tick' | 'backlog' | 'configure';
  /** Window means of that tick (requests, two decimals), when the trigger is a tick. */
  readonly stable?: number;
  readonly panicWindow?: number;
  /** Queued requests, when the trigger is a backlog. */
  readonly backlog?: number;
  /** Ready sandboxes when it was decided. */
  readonly ready: number;
}

export interface AutoscalerStatus {
  readonly desired: number;
  readonly ready: number;
  readonly panic: boolean;
  /** In-flight plus queued requests over the data planes' latest reports (the peaks of their report periods). */
  readonly observedInFlight: number;
  /** The same, time-weighted over the report periods (requests, two decimals): what the windows average. */
  readonly observedAverage: number;
  /** Mean of the stable and panic windows' buckets at the last tick (requests); null before the first tick. */
  readonly stableWindowAverage: number | null;
  readonly panicWindowAverage: number | null;
  readonly stableWindowMs: number;
  readonly panicWindowMs: number;
  readonly mode: 'stable' | 'panic';
  /** The latest decisions that changed the count or its reason, oldest first. */
  readonly recentDecisions: readonly DecisionRecord[];
  /** Queued requests over the data planes' latest reports that are not stale (each the peak of its report period). */
  readonly queued: number;
  readonly lastDecision: string;
  /** `fn.scale` messages sent to the function since this autoscaler started. */
  readonly decisions: number;
  /** Request counters summed over every data plane heard from; they never decrease while this autoscaler runs (router restarts are folded in). */
  readonly totals: InvocationTotals;
}

// ---- Scheduler actor (control plane) ------------------------------------------------------------

export type SchedulerMessage =
  /** From a worker on start (asked; replies `{ term }`). Re-registration after a restart is fine. */
  /**
   * `incarnation`: the same for every registration of one run of a worker; a node that registers again under
   * another one was restarted, and what it ran is gone.
   */
  | { readonly type: 'sch.register'; readonly nodeId: string; readonly capacity: NodeCapacity; readonly address: string; readonly runtime: SandboxRuntimeKind; readonly incarnation: string }
  | { readonly type: 'sch.heartbeat'; readonly nodeId: string; readonly sandboxes: number; readonly pool?: PoolReport }
  /** Asked by a function actor: place one sandbox per id. Replies `PlaceReply`. */
  | { readonly type: 'sch.place'; readonly functionName: string; readonly request: SandboxRequest; readonly sandboxIds: readonly string[] }
  /**
   * Asked at deploy: could any live node ever run one sandbox like this (its runtime, its capacity when empty)?
   * Replies `Feasibility`.
   */
  | { readonly type: 'sch.feasible'; readonly request: SandboxRequest }
  | { readonly type: 'sch.release'; readonly functionName: string; readonly sandboxId: string; readonly nodeId: string }
  /** A `sch.place` ask the function gave up on (timed out): drop whatever was allocated for these ids. */
  | { readonly type: 'sch.abandon'; readonly functionName: string; readonly sandboxIds: readonly string[] }
  | { readonly type: 'sch.setSchedulable'; readonly nodeId: string; readonly schedulable: boolean }
  | { readonly type: 'sch.deregister'; readonly nodeId: string }
  /** Reconstruction: allocations found on the workers (a whole SandboxReport will do; this is what is read). */
  | { readonly type: 'sch.adopt'; readonly sandboxes: readonly Pick<SandboxReport, 'sandboxId' | 'functionName' | 'nodeId' | 'resources'>[] }
  /** Asked: replies `NodeView[]`. */
  | { readonly type: 'sch.nodes' }
  | { readonly type: 'sch.checkHeartbeats' };

/** What one sandbox needs of a node. */
export interface SandboxRequest extends Resources {
  /** The sandbox runtime a node must run (`thread` for a module, `process` for a command); absent: any (builtins). */
  readonly runtime?: SandboxRuntimeKind;
}

export type Feasibility =
  /** `nodeId`: a live node that fits, where the source can be tried. */
  | { readonly ok: true; readonly nodeId: string }
  | { readonly ok: false; readonly code: 'NO_WORKER' | 'NO_WORKER_FOR_RUNTIME' | 'NO_NODE_FITS'; readonly message: string };

export interface PlaceReply {
  readonly placements: readonly { readonly sandboxId: string; readonly nodeId: string }[];
  /** Why fewer than asked were placed, if so. */
  readonly shortfall?: string;
}

export interface NodeView {
  readonly nodeId: string;
  readonly address: string;
  readonly capacity: NodeCapacity;
  readonly allocated: NodeCapacity;
  readonly sandboxes: number;
  readonly schedulable: boolean;
  readonly alive: boolean;
  /** ms since the last heartbeat. */
  readonly heartbeatAgeMs: number;
  /** The node's pool of started generic sandboxes, as of its last heartbeat (absent: it keeps none). */
  readonly pool?: PoolReport;
}

/**
 * A worker's pool of started generic sandboxes ("stem cells", cluster/sandbox/pool.ts), summed over its memory
 * classes. Its memory is not placed: the worker registers its capacity less `capMiB`, the most the pool holds.
 */
export interface PoolReport {
  /** Started stems waiting for a function. */
  readonly idle: number;
  /** Stems the pool keeps when full. */
  readonly target: number;
  /** Measured idle memory of the waiting stems, MiB. */
  readonly idleMiB: number;
  /** Most idle memory the pool may hold, MiB. */
  readonly capMiB: number;
  /** Cold starts served by a stem, since the worker started. */
  readonly fromPool: number;
  /** Cold starts that started fresh (pool empty, or no stem for their class or source). */
  readonly fresh: number;
}

// ---- Node actor (worker) ------------------------------------------------------------------------

export type NodeMessage =
  /** From the worker daemon once its transport is up: register with the scheduler, then heartbeat. */
  | { readonly type: 'node.start' }
  /** Every control-plane command carries the leader's term; older terms are refused. */
  | { readonly type: 'node.create'; readonly term: number; readonly sandboxId: string; readonly template: SandboxTemplate }
  | { readonly type: 'node.delete'; readonly term: number; readonly sandboxId: string }
  /** Asked on reconstruction: replies `SandboxReport[]`. */
  | { readonly type: 'node.list' }
  /**
   * Asked by the control plane for `dirigent logs`: replies `SandboxLogLine[]`, this node's newest `tail` lines of
   * the function's sandboxes (recently gone ones too) written at or after `sinceMs` (ms since the epoch), oldest first.
   */
  | { readonly type: 'node.logs'; readonly functionName: string; readonly sinceMs: number; readonly tail: number }
  /**
   * Asked at deploy: start one sandbox of `template` in a throwaway thread or process, bounded in time, and throw
   * it away; replies `SourceCheck`. Nothing of it is recorded, placed or reported.
   */
  | { readonly type: 'node.check'; readonly template: SandboxTemplate }
  /** From the sandbox runtime: a sandbox died on its own. */
  | { readonly type: 'node.sandboxFailed'; readonly sandboxId: string; readonly reason: string }
  /** From the worker: its pool changed; reported with the next heartbeat. */
  | { readonly type: 'node.pool'; readonly pool: PoolReport }
  | { readonly type: 'node.heartbeat' }
  /** Outcomes of the runtime calls. */
  | { readonly type: 'node.created'; readonly sandboxId: string; readonly ok: boolean; readonly error?: string }
  | { readonly type: 'node.deleted'; readonly sandboxId: string }
  | { readonly type: 'node.registered'; readonly term: number | null; readonly error?: string };

export type SourceCheck =
  | { readonly outcome: 'ok' }
  /** The sandbox did not start: `reason` is the runtime's (a module that does not load, a command that exits). */
  | { readonly outcome: 'failed'; readonly reason: string }
  /** Still starting at the bound: neither good nor bad is known. */
  | { readonly outcome: 'timeout'; readonly afterMs: number };

// ---- Router actor (data plane) ------------------------------------------------------------------

/** `relayed`: a copy from the router replica that heard the control plane to the replicas on other shards. */
export type RouterUpdate =
  /** A full endpoint set (on registration, reconnection, failover or a version gap). */
  | { readonly type: 'rt.snapshot'; readonly term: number; readonly snapshot: EndpointSnapshot; readonly relayed?: true }
  /** A change keyed by sandbox id; applies only on top of `version - 1`. Removed sandboxes drain first. */
  | {
      readonly type: 'rt.delta';
      readonly term: number;
      readonly functionName: string;
      readonly version: number;
      readonly add: readonly Endpoint[];
      readonly remove: readonly string[];
      readonly relayed?: true;
    }
  /** The function was deleted: fail queued requests with 404 and forget it. */
  | { readonly type: 'rt.deleted'; readonly term: number; readonly functionName: string; readonly relayed?: true };

// ---- Data plane: invocations --------------------------------------------------------------------

/** One invocation as it travels from the edge to a sandbox (plain data; the body is bytes). */
export interface Invocation {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/**
 * Every way an invocation can fail without an answer of its sandbox's own, the HTTP status each is at the edge,
 * and who answers it: the router (an `InvocationOutcome` with `ok: false`) or the data plane's front (the edge and
 * the async jobs, which also answer for a request that never reached a router). The one table: the code unions,
 * the edge's status map and the README's outcome table follow it, so a new outcome is one edit here.
 */
export const INVOCATION_FAILURES = {
  /** no such function (or it was deleted). */
  UNKNOWN_FUNCTION: { status: 404, by: 'router' },
  /** over the function's `maxBodyBytes`. */
  BODY_TOO_LARGE: { status: 413, by: 'router' },
  /** the function's queue holds `queueDepth` requests already. */
  QUEUE_FULL: { status: 429, by: 'router' },
  /** the sandbox failed under the request (crashed, timed out, unreachable). */
  SANDBOX_FAILED: { status: 502, by: 'router' },
  /** at max scale, and no slot freed before the deadline. */
  NO_CAPACITY: { status: 503, by: 'router' },
  /** the function cannot start sandboxes (its state is `failed`): answered at once, with the cause. */
  FUNCTION_FAILED: { status: 503, by: 'router' },
  /** no sandbox was free before the deadline (also an ask of the router that timed out). */
  DEADLINE_PASSED: { status: 504, by: 'router' },
  /** The request itself is malformed (bad frame, bad path, bad job). */
  BAD_REQUEST: { status: 400, by: 'front' },
  METHOD_NOT_ALLOWED: { status: 405, by: 'front' },
  /** The data plane is stopping, or an internal actor is gone. */
  UNAVAILABLE: { status: 503, by: 'front' },
  /** The router could not be reached or answered something that is not an outcome (a bug). */
  ROUTING_FAILED: { status: 502, by: 'front' },
  /** The sandbox answered with something HTTP cannot carry (status out of range). */
  BAD_SANDBOX_RESPONSE: { status: 502, by: 'front' },
  /** Async jobs: no such job id (never existed, or its result expired). */
  UNKNOWN_JOB: { status: 404, by: 'front' },
  /** Async jobs: the data plane was started without an asyncDir. */
  ASYNC_DISABLED: { status: 501, by: 'front' },
  /** Async jobs: too many pending jobs. */
  ASYNC_QUEUE_FULL: { status: 429, by: 'front' },
  /** WebSocket: this connection has too many requests waiting (its client does not read its replies). */
  TOO_MANY_REQUESTS: { status: 429, by: 'front' },
  /** A bug in the data plane's own front (logged). */
  INTERNAL_ERROR: { status: 500, by: 'front' },
} as const satisfies Readonly<Record<string, { readonly status: number; readonly by: 'router' | 'front' }>>;

/** Any failure the data plane answers an invocation with. */
export type FailureCode = keyof typeof INVOCATION_FAILURES;

/** The failures a router answers with (in an `InvocationOutcome`). */
export type InvocationFailureCode = { [C in FailureCode]: (typeof INVOCATION_FAILURES)[C]['by'] extends 'router' ? C : never }[FailureCode];

/** The HTTP status of a failure. */
export function failureStatus<C extends FailureCode>(code: C): (typeof INVOCATION_FAILURES)[C]['status'] {
  return INVOCATION_FAILURES[code].status;
}

export type InvocationOutcome =
  | {
      readonly ok: true;
      readonly status: number;
      readonly headers: Readonly<Record<string, string>>;
      readonly body: Uint8Array;
      readonly sandboxId: string;
      /** The request waited for a sandbox to be created. */
      readonly coldStart: boolean;
      /** Time spent queued in the data plane before a slot was free, ms. */
      readonly queuedMs: number;
      /** The template version of the sandbox that served it. */
      readonly version: number;
    }
  | {
      readonly ok: false;
      readonly status: (typeof INVOCATION_FAILURES)[InvocationFailureCode]['status'];
      readonly code: InvocationFailureCode;
      readonly message: string;
      readonly queuedMs: number;
      readonly sandboxId?: string;
      /**
       * The request waited for a sandbox to be created (a cold start), and failed: its deadline passed before
       * the scale-up was ready, or the new sandbox failed it. Absent: false.
       */
      readonly coldStart?: boolean;
    };

export type { LoadBalancingPolicy } from './settings.js';

/** Data-plane router of one function (kind `router`): endpoint set, FIFO cold-start queue, slots per sandbox. */
export type RouterMessage =
  | RouterUpdate
  /** Asked by the edge; the reply is an InvocationOutcome (sent by the sandbox actor that served it, or by the router). */
  | { readonly type: 'rt.invoke'; readonly invocation: Invocation }
  /** From a router replica with no slots of its own (the function's concurrency is below the shard count). */
  | { readonly type: 'rt.forwarded'; readonly invocation: Invocation; readonly replyTo: ReplyTo }
  /**
   * From a data-plane sandbox actor: `count` (>= 1) of its requests finished and their slots are free (`failed`: the
   * sandbox is broken and must not get more).
   */
  | { readonly type: 'rt.released'; readonly sandboxId: string; readonly count: number; readonly failed: boolean }
  /** Result of asking the function actor for its endpoints (on first use or a version gap). */
  | { readonly type: 'rt.resynced'; readonly snapshot: EndpointSnapshot | null; readonly error?: string; /** The leader's term, when its reply named it. */ readonly term?: number }
  /** Timers: metrics to the autoscaler every tick while busy; queue deadline checks. */
  | { readonly type: 'rt.tick' }
  | { readonly type: 'rt.expire' }
  /** Coalesced backlog report to the autoscaler (a 0 ms timer, so one burst is one report). */
  | { readonly type: 'rt.backlog' }
  /** Asked by the console/admin: replies RouterStatus. */
  | { readonly type: 'rt.status' }
  /** Timer: look an unheard function up again (its last lookup failed: no control plane, say). */
  | { readonly type: 'rt.lookup' };

export interface RouterStatus {
  readonly functionName: string;
  readonly known: boolean;
  readonly version: number;
  readonly endpoints: number;
  readonly inFlight: number;
  readonly queued: number;
  readonly draining: number;
}

/** Data-plane actor of one sandbox (kind `dpsandbox`, colocated with its router): its slots and its connection. */
export type DataPlaneSandboxMessage =
  | {
      readonly type: 'sb.invoke';
      readonly invocation: Invocation;
      /** The edge's pending ask, answered directly by this actor. */
      readonly replyTo: ReplyTo;
      readonly coldStart: boolean;
      readonly queuedMs: number;
    }
  /** The invoke service's answer; `invocation` is the request, for the router to place again if it was never sent. */
  | { readonly type: 'sb.done'; readonly replyTo: ReplyTo; readonly coldStart: boolean; readonly queuedMs: number; readonly result: AskResult; readonly invocation: Invocation }
  /** To itself: tell the router of the slots freed since the last release. */
  | { readonly type: 'sb.release' }
  | { readonly type: 'sb.close' };

/**
 * The id a data-plane shard's router replicas report under (load, backlog, `fn.drained`): the data plane's own
 * for shard 0, `<id>#<shard>` for the others. The control plane waits for each of a data plane's shards.
 */
export function dataplaneReplicaId(dataplaneId: string, shard: number): string {
  return shard === 0 ? dataplaneId : `${dataplaneId}#${shard}`;
}

/** Data-plane sandbox actors' addresses by sandbox id, memoized as in `memoized`. */
const sandboxAddresses = new Map<string, Address>();
/**
 * Ids are unique in a cluster; an id seen again with another function or shard gets a new address. `shard` pins
 * it next to the router replica of that shard (see `routerReplicaAddress`).
 */
export const dataPlaneSandboxAddress = (functionName: string, sandboxId: string, shard?: number): Address => {
  const key = functionKey(functionName);
  let address = sandboxAddresses.get(sandboxId);
  if (address === undefined || address.key !== key || address.shard !== shard) {
    if (sandboxAddresses.size >= MEMO_LIMIT) sandboxAddresses.clear();
    address = Object.freeze(shard === undefined ? { kind: 'dpsandbox', id: sandboxId, key } : { kind: 'dpsandbox', id: sandboxId, key, shard });
    sandboxAddresses.set(sandboxId, address);
  }
  return address;
};
