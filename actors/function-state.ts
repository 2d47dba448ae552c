// The function actor's state (see actors/function.ts for its behaviour): the sandbox records, a union by phase
// whose transitions live here and nowhere else, and the state's derived configuration for routers and workers.

import type { FunctionSpec } from './function-spec.js';
import type { CreationFailures, Endpoint, RoutingConfig, SandboxTemplate } from './messages.js';
import { DirigentError } from './errors.js';

export interface FunctionInit {
  readonly spec: FunctionSpec;
  /** The leader's term; carried by every command to workers and data planes. */
  readonly term: number;
  /** Data planes connected when the actor starts (see `fn.dataplanes`). */
  readonly dataplanes?: readonly string[];
  /**
   * Set when a new leader rebuilds the function: it is spawned before the workers have listed their sandboxes
   * (so that a sandbox that becomes ready meanwhile reaches an actor), learns them with `fn.adopt`, and when
   * configured holds its autoscaler's scale-down for one stable window (its metrics start from nothing).
   */
  readonly rebuilt?: boolean;
}

interface SandboxBase {
  readonly sandboxId: string;
  readonly nodeId: string;
  /** The template version it runs. */
  readonly version: number;
  /** When the function asked for it, ms (for adopted sandboxes: the worker's creation time). */
  readonly createdAt: number;
  /** When it entered its current phase, ms. */
  readonly since: number;
}

export type SandboxRecord =
  | (SandboxBase & { readonly phase: 'creating' })
  | (SandboxBase & { readonly phase: 'ready'; readonly endpoint: Endpoint })
  /** Removed from every data plane; waits for `fn.drained` from each of `waitingFor` (data plane ids). */
  | (SandboxBase & { readonly phase: 'draining'; readonly endpoint: Endpoint; readonly waitingFor: readonly string[] })
  /** `node.delete` sent; the worker's `fn.sandboxDeleted` releases its allocation and removes the record. */
  | (SandboxBase & { readonly phase: 'gone' });

export interface FunctionState {
  readonly name: string;
  readonly term: number;
  readonly spec: FunctionSpec;
  /** True once the first `fn.configure` spawned the autoscaler. */
  readonly autoscalerStarted: boolean;
  /** The function was rebuilt by a new leader: hold the autoscaler's scale-down when it is spawned. */
  readonly holdOnStart: boolean;
  /** Sandboxes wanted (creating + ready), as last asked by the autoscaler. */
  readonly desired: number;
  readonly deleting: boolean;
  /** Next sandbox sequence number; ids are `${name}-${term}-${seq}`, unique across leader terms. */
  readonly nextSeq: number;
  readonly nextRequestId: number;
  readonly sandboxes: ReadonlyMap<string, SandboxRecord>;
  /** Sandboxes by phase, kept in step with `sandboxes` (counting them on every step was O(sandboxes)). */
  readonly counts: PhaseCounts;
  /** Of `counts`, the sandboxes of a template version other than the spec's (outdated by an update). */
  readonly outdated: PhaseCounts;
  /** Creation failures of the current version since its last successful start or the last update; null: none. */
  readonly failures: CreationFailures | null;
  /** The failure the data planes were last sent (in a snapshot): a change sends a new snapshot. */
  readonly routedFailure: string | null;
  /** Outstanding `sch.place` asks: request id -> the sandbox ids asked for. */
  readonly placing: ReadonlyMap<number, readonly string[]>;
  /** Version of the endpoint set the data planes were last sent (snapshot or delta). */
  readonly endpointVersion: number;
  /** Ready count the autoscaler was last told. */
  readonly reportedReady: number;
  /** Connected data planes, sorted: a draining sandbox waits for each of them. */
  readonly dataplanes: readonly string[];
  /** Requests in flight per busy sandbox, as each data plane last reported (`fn.load`): scale-down evicts idle ones first. */
  readonly load: ReadonlyMap<string, Readonly<Record<string, number>>>;
}

export class SandboxTransitionError extends DirigentError<'IMPOSSIBLE_TRANSITION'> {
  override name = 'SandboxTransitionError';
  constructor(record: SandboxRecord, to: string) {
    super('IMPOSSIBLE_TRANSITION', `sandbox ${record.sandboxId} cannot go from ${record.phase} to ${to}`);
  }
}

export function routingConfigOf(spec: FunctionSpec): RoutingConfig {
  return {
    concurrency: spec.concurrency,
    queueDepth: spec.queueDepth,
    queueTimeoutMs: spec.queueTimeoutMs,
    maxBodyBytes: spec.maxBodyBytes,
    timeoutMs: spec.timeoutMs,
    maxScale: spec.scaling.maxScale,
  };
}

export function sandboxTemplateOf(spec: FunctionSpec): SandboxTemplate {
  const { name, runtime, source, cpuMilli, memoryMiB, concurrency, timeoutMs, env } = spec;
  return { name, runtime, source, cpuMilli, memoryMiB, concurrency, timeoutMs, env, version: spec.templateVersion };
}

export function initialFunctionState(init: FunctionInit): FunctionState {
  return {
    name: init.spec.name,
    term: init.term,
    spec: init.spec,
    autoscalerStarted: false,
    holdOnStart: init.rebuilt === true,
    desired: 0,
    deleting: false,
    nextSeq: 0,
    nextRequestId: 0,
    sandboxes: new Map(),
    counts: { creating: 0, ready: 0, draining: 0, gone: 0 },
    outdated: { creating: 0, ready: 0, draining: 0, gone: 0 },
    failures: null,
    routedFailure: null,
    placing: new Map(),
    endpointVersion: 0,
    reportedReady: 0,
    dataplanes: sortedUnique(init.dataplanes ?? []),
    load: new Map(),
  };
}

export interface PhaseCounts {
  readonly creating: number;
  readonly ready: number;
  readonly draining: number;
  readonly gone: number;
}

export function toReady(record: SandboxRecord, endpoint: Endpoint, now: number): SandboxRecord {
  if (record.phase !== 'creating') throw new SandboxTransitionError(record, 'ready');
  const { sandboxId, nodeId, version, createdAt } = record;
  return { phase: 'ready', sandboxId, nodeId, version, createdAt, since: now, endpoint };
}

export function toDraining(record: SandboxRecord, waitingFor: readonly string[], now: number): SandboxRecord {
  if (record.phase !== 'ready') throw new SandboxTransitionError(record, 'draining');
  return { ...record, phase: 'draining', since: now, waitingFor };
}

export function toGone(record: SandboxRecord, now: number): SandboxRecord {
  if (record.phase === 'gone') throw new SandboxTransitionError(record, 'gone');
  const { sandboxId, nodeId, version, createdAt } = record;
  return { phase: 'gone', sandboxId, nodeId, version, createdAt, since: now };
}

export function sortedUnique(ids: readonly string[]): readonly string[] {
  return [...new Set(ids)].sort(compareIds);
}

export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
