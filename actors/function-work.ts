// Endpoint updates are derived, not hand-written: after every step the ready set is compared with the ready
// set before it, and any difference goes to the data planes as ONE `rt.delta` (version + 1). So no endpoint is
// ever announced twice, and a sandbox that leaves `ready` for any reason is always removed.
//
// A step works on a `Work`: a working copy of the state that keeps the phase counts in step with the sandbox
// map, remembers what each touched record was, and turns into the next state and the step's effects at the end.
// The views the function answers with (status, endpoint snapshot) are read from it.

import type { Address, Effect, Step, StepContext } from './actor.js';
import type { FunctionSpec } from './function-spec.js';
import { compareIds, routingConfigOf, type FunctionState, type SandboxRecord } from './function-state.js';
import {
  autoscalerAddress,
  routerAddress,
  type AutoscalerMessage,
  type CreationFailures,
  type Endpoint,
  type EndpointSnapshot,
  type FunctionMessage,
  type FunctionPhase,
  type FunctionStatus,
  type NodeMessage,
  type RouterUpdate,
  type SchedulerMessage,
} from './messages.js';

/** One step's mutable working copy of the state, and the effects it produces. */
export class Work {
  desired: number;
  deleting: boolean;
  spec: FunctionSpec;
  autoscalerStarted: boolean;
  nextSeq: number;
  nextRequestId: number;
  endpointVersion: number;
  reportedReady: number;
  dataplanes: readonly string[];
  load: ReadonlyMap<string, Readonly<Record<string, number>>>;
  failures: CreationFailures | null;
  routedFailure: string | null;
  readonly placing: Map<number, readonly string[]>;
  /** Ids whose record this step changed: the endpoint delta looks only at these. */
  readonly touched = new Set<string>();
  /**
   * The sandbox table, updated in place (the step owns its state: `ActorKind.step`): copying it on every step
   * was O(sandboxes) per message and made large functions the control plane's bottleneck. `before` keeps each
   * touched record's previous value for the endpoint delta.
   */
  private readonly current: Map<string, SandboxRecord>;
  readonly before = new Map<string, SandboxRecord | undefined>();
  readonly counts: { creating: number; ready: number; draining: number; gone: number };
  outdated: { creating: number; ready: number; draining: number; gone: number };
  readonly effects: Effect<FunctionMessage>[] = [];
  /** Set when this step pushed a full snapshot, which makes a delta redundant. */
  snapshotSent = false;

  constructor(
    readonly base: FunctionState,
    readonly ctx: StepContext,
  ) {
    this.desired = base.desired;
    this.deleting = base.deleting;
    this.spec = base.spec;
    this.autoscalerStarted = base.autoscalerStarted;
    this.nextSeq = base.nextSeq;
    this.nextRequestId = base.nextRequestId;
    this.endpointVersion = base.endpointVersion;
    this.reportedReady = base.reportedReady;
    this.dataplanes = base.dataplanes;
    this.load = base.load;
    this.failures = base.failures;
    this.routedFailure = base.routedFailure;
    this.current = base.sandboxes as Map<string, SandboxRecord>;
    this.counts = { ...base.counts };
    this.outdated = { ...base.outdated };
    this.placing = new Map(base.placing);
  }

  get sandboxes(): ReadonlyMap<string, SandboxRecord> {
    return this.current;
  }

  put(record: SandboxRecord): void {
    this.touch(record.sandboxId);
    this.current.set(record.sandboxId, record);
    this.counts[record.phase] += 1;
    if (record.version !== this.spec.templateVersion) this.outdated[record.phase] += 1;
  }

  drop(sandboxId: string): void {
    this.touch(sandboxId);
    this.current.delete(sandboxId);
  }

  /** Remember the record as it was before this step, and take it out of the counts. */
  private touch(sandboxId: string): void {
    const previous = this.current.get(sandboxId);
    if (!this.before.has(sandboxId)) this.before.set(sandboxId, previous);
    this.touched.add(sandboxId);
    if (previous === undefined) return;
    this.counts[previous.phase] -= 1;
    if (previous.version !== this.spec.templateVersion) this.outdated[previous.phase] -= 1;
  }

  /** Sets the spec; a new template version makes every sandbox of another one outdated (a scan: updates are rare). */
  setSpec(spec: FunctionSpec): void {
    const changed = spec.templateVersion !== this.spec.templateVersion;
    this.spec = spec;
    if (!changed) return;
    this.outdated = { creating: 0, ready: 0, draining: 0, gone: 0 };
    for (const record of this.current.values()) if (record.version !== spec.templateVersion) this.outdated[record.phase] += 1;
  }

  /** Creating and ready sandboxes of the current template version. */
  currentLive(): { readonly creating: number; readonly ready: number } {
    return { creating: this.counts.creating - this.outdated.creating, ready: this.counts.ready - this.outdated.ready };
  }

  get name(): string {
    return this.base.name;
  }

  send(to: Address, message: AutoscalerMessage | SchedulerMessage | NodeMessage | RouterUpdate): void {
    this.effects.push({ type: 'send', to, message });
  }

  reply(value: unknown): void {
    if (this.ctx.replyTo) this.effects.push({ type: 'reply', to: this.ctx.replyTo, value });
  }

  warn(text: string): void {
    this.effects.push({ type: 'log', level: 'warn', text });
  }

  /**
   * Turns the working copy into the next state. Effects go out as: the endpoint delta first (so data planes
   * stop routing to a sandbox before anything deletes it), then the step's own, then the ready count for the
   * autoscaler (after a spawn, which the autoscaler needs first), then `stop` once a deleted function is empty.
   */
  commit(): Step<FunctionState, FunctionMessage> {
    const before = this.base;
    const first: Effect<FunctionMessage>[] = [];
    // A failure that starts or ends goes out in a full snapshot (rare), which covers any endpoint change too.
    // Not before the first configure (which pushes the whole set), nor once deleted: the routers have stopped, and
    // a snapshot would bring one back for a function that is gone.
    if (this.autoscalerStarted && !this.deleting && failureOf(this) !== this.routedFailure) pushSnapshot(this);
    // Nothing is announced before the first configure, which pushes the whole set (a rebuilt function adopts first).
    if (!this.snapshotSent && this.autoscalerStarted) {
      const delta = endpointDelta(this.before, this.sandboxes, this.touched);
      if (delta.add.length > 0 || delta.remove.length > 0) {
        this.endpointVersion += 1;
        const update: RouterUpdate = { type: 'rt.delta', term: before.term, functionName: this.name, version: this.endpointVersion, ...delta };
        first.push({ type: 'send', to: routerAddress(this.name), message: update });
      }
    }
    const last: Effect<FunctionMessage>[] = [];
    const ready = this.counts.ready;
    if (this.autoscalerStarted && !this.deleting && ready !== this.reportedReady) {
      const update: AutoscalerMessage = { type: 'as.ready', ready };
      last.push({ type: 'send', to: autoscalerAddress(this.name), message: update });
      this.reportedReady = ready;
    }
    if (this.deleting && this.sandboxes.size === 0 && this.placing.size === 0) {
      last.push({ type: 'log', level: 'info', text: `function ${this.name} deleted: no sandbox left` }, { type: 'stop' });
    }
    const state: FunctionState = {
      name: before.name,
      term: before.term,
      spec: this.spec,
      autoscalerStarted: this.autoscalerStarted,
      holdOnStart: before.holdOnStart,
      desired: this.desired,
      deleting: this.deleting,
      nextSeq: this.nextSeq,
      nextRequestId: this.nextRequestId,
      sandboxes: this.sandboxes,
      counts: this.counts,
      outdated: this.outdated,
      failures: this.failures,
      routedFailure: this.routedFailure,
      placing: this.placing,
      endpointVersion: this.endpointVersion,
      reportedReady: this.reportedReady,
      dataplanes: this.dataplanes,
      load: this.load,
    };
    return { state, effects: [...first, ...this.effects, ...last] };
  }
}

export function pushSnapshot(w: Work): void {
  w.endpointVersion += 1;
  const snapshot = snapshotOf(w);
  w.send(routerAddress(w.name), { type: 'rt.snapshot', term: w.base.term, snapshot });
  w.snapshotSent = true;
  w.routedFailure = snapshot.failure;
}

export function outstanding(placing: ReadonlyMap<number, readonly string[]>): number {
  let total = 0;
  for (const ids of placing.values()) total += ids.length;
  return total;
}

function readyEndpoints(sandboxes: ReadonlyMap<string, SandboxRecord>): Endpoint[] {
  const endpoints: Endpoint[] = [];
  for (const record of sandboxes.values()) if (record.phase === 'ready') endpoints.push(record.endpoint);
  return endpoints.sort((a, b) => compareIds(a.sandboxId, b.sandboxId));
}

/** What the data planes must change to go from the ready set `before` to `after`, given the ids that changed. */
function endpointDelta(
  before: ReadonlyMap<string, SandboxRecord | undefined>,
  after: ReadonlyMap<string, SandboxRecord>,
  touched: ReadonlySet<string>,
): { readonly add: readonly Endpoint[]; readonly remove: readonly string[] } {
  const add: Endpoint[] = [];
  const remove: string[] = [];
  for (const id of [...touched].sort(compareIds)) {
    const was = before.get(id);
    const is = after.get(id);
    if (is?.phase === 'ready' && was?.phase !== 'ready') add.push(is.endpoint);
    else if (was?.phase === 'ready' && is?.phase !== 'ready') remove.push(id);
  }
  return { add, remove };
}

export function snapshotOf(w: Work): EndpointSnapshot {
  return { functionName: w.name, version: w.endpointVersion, endpoints: readyEndpoints(w.sandboxes), routing: routingConfigOf(w.spec), failure: failureOf(w) };
}

/** Why the function cannot start sandboxes now (failures recorded, none of the current version ready), or null. */
function failureOf(w: Work): string | null {
  if (w.failures === null || w.deleting || w.currentLive().ready > 0) return null;
  return `function ${w.name} (version ${w.spec.templateVersion}) cannot start: ${w.failures.lastError}`;
}

function phaseOf(w: Work): { readonly state: FunctionPhase; readonly stateReason: string | null } {
  const failure = failureOf(w);
  const failures = w.failures;
  if (failure !== null && failures !== null) {
    const next = failures.retryAt > w.ctx.now ? `next attempt in ${Math.ceil((failures.retryAt - w.ctx.now) / 1000)} s` : 'trying again';
    const older = w.outdated.ready > 0 ? `; ${w.outdated.ready} sandbox(es) of an older version still serve` : '';
    return { state: 'failed', stateReason: `${failure} (${failures.count} failed creation(s); ${next})${older}` };
  }
  if (w.outdated.creating + w.outdated.ready > 0) {
    const ready = w.currentLive().ready;
    return { state: 'updating', stateReason: `rolling out version ${w.spec.templateVersion}: ${ready} of ${w.desired} ready, ${w.outdated.ready} older still serving` };
  }
  return { state: 'active', stateReason: null };
}

export function statusOf(w: Work): FunctionStatus {
  const counts = w.counts;
  return {
    name: w.name,
    specVersion: w.spec.version,
    version: w.spec.templateVersion,
    ...phaseOf(w),
    failures: w.failures,
    desired: w.desired,
    creating: counts.creating,
    ready: counts.ready,
    draining: counts.draining,
    outdated: w.outdated.creating + w.outdated.ready,
    endpointVersion: w.endpointVersion,
    deleting: w.deleting,
    sandboxes: [...w.sandboxes.values()]
      .sort((a, b) => compareIds(a.sandboxId, b.sandboxId))
      .map((record) => ({ sandboxId: record.sandboxId, nodeId: record.nodeId, phase: record.phase, since: record.since, version: record.version })),
  };
}
