// The function actor (control plane): owns one function's spec, its desired scale, its sandbox set and
// therefore its endpoint set. Because one actor holds all three, the counts the autoscaler and the console
// see (desired, creating, ready, draining) are read from the same sandbox map that the endpoint updates are
// derived from, and cannot drift apart (Dirigent records desired scale before acting and appends endpoints).
//
// Sandbox lifecycle (one record per sandbox id, a union by phase):
//   creating --sandboxReady--> ready --scale down--> draining --drained by every data plane / timeout--> gone
//   creating --scale down / delete--> gone          (deleted on the worker before it ever served)
//   gone --sandboxDeleted--> (record removed, allocation released)
// A failed sandbox (`fn.sandboxFailed`) is removed at once: the worker has already cleaned it up, so there
// is nothing to wait for and a `failed` record would only sit in the map.
//
// Versions (rollouts, as Knative's revisions). Every sandbox runs one template version (`spec.templateVersion`
// when it was created). Desired scale counts the current version only; sandboxes of an older one are outdated:
// those still creating are deleted at once, ready ones keep serving only while fewer of the current version are
// ready than wanted, so each new sandbox that becomes ready drains an old one (one out per one in), and the last
// old ones go as soon as the new version holds the whole desired scale. A rollout whose new version cannot start
// leaves the old one serving. Adopted sandboxes of an older version are replaced the same way.
//
// Creation failures (Kubernetes' CrashLoopBackOff, Lambda's function state). A sandbox of the current version
// that fails while creating is counted (`failures`: how many, the last error, when) and no sandbox is created for
// a backoff of 10 s, doubling per failed retry up to 5 min; sandboxes asked for together that fail together are
// one failed attempt. While failures are recorded and no sandbox of the current version is ready, the function is
// `failed`: the routers get the reason in the endpoint snapshot and answer any request that would wait for a
// sandbox 503 FUNCTION_FAILED at once. A successful start of the current version, or any update, clears it.
//
// The state and its phase transitions are in function-state.ts; the working copy a step changes, and the views
// read from it, in function-work.ts.

import { assertNever, type ActorError, type ActorKind } from './actor.js';
import type { FunctionSpec } from './function-spec.js';
import { initialFunctionState, sandboxTemplateOf, sortedUnique, toDraining, toGone, toReady, type FunctionInit, type FunctionState, type SandboxRecord } from './function-state.js';
import { outstanding, pushSnapshot, snapshotOf, statusOf, Work } from './function-work.js';
import {
  autoscalerAddress,
  nodeAddress,
  routerAddress,
  schedulerAddress,
  type AutoscalerMessage,
  type Endpoint,
  type FunctionMessage,
  type PlaceReply,
  type SandboxReport,
  type SandboxRequest,
  type SchedulerMessage,
} from './messages.js';
import { chooseEvictions, type SandboxView } from './placement.js';

export { routingConfigOf, sandboxTemplateOf, SandboxTransitionError, toDraining, toGone, toReady, type FunctionInit, type FunctionState, type SandboxRecord } from './function-state.js';

/** How long a function waits for the scheduler to answer a placement, ms. */
export const PLACE_TIMEOUT_MS = 5000;
/** Delay before trying again after a placement fell short or failed, ms. */
export const RETRY_SCALE_MS = 1000;
/** A draining sandbox is deleted at the latest this long after the function's request timeout, ms. */
export const DRAIN_GRACE_MS = 1000;
/** Pause after the first failed creation, ms (Kubernetes' CrashLoopBackOff starts at 10 s)... */
export const BACKOFF_INITIAL_MS = 10_000;
/** ...doubled after each failed retry, up to this, ms (5 min, as Kubernetes). */
export const BACKOFF_MAX_MS = 300_000;

export const functionKind: ActorKind<FunctionState, FunctionMessage> = {
  kind: 'function',
  init(address, arg) {
    const init = arg as FunctionInit | undefined;
    if (init?.spec === undefined || typeof init.term !== 'number') throw new TypeError(`function ${address.id}: init needs { spec, term }`);
    if (init.spec.name !== address.id) throw new TypeError(`function ${address.id}: spec is for ${init.spec.name}`);
    return initialFunctionState(init);
  },
  step(state, message, ctx) {
    const w = new Work(state, ctx);
    handle(w, message);
    return w.commit();
  },
  summary(state) {
    const counts = state.counts;
    return {
      name: state.name,
      term: state.term,
      specVersion: state.spec.version,
      version: state.spec.templateVersion,
      desired: state.desired,
      ...counts,
      outdated: state.outdated.creating + state.outdated.ready,
      failures: state.failures?.count ?? 0,
      placing: outstanding(state.placing),
      endpointVersion: state.endpointVersion,
      dataplanes: state.dataplanes.length,
      deleting: state.deleting,
    };
  },
};

function handle(w: Work, message: FunctionMessage): void {
  switch (message.type) {
    case 'fn.configure':
      return configure(w, message.spec);
    case 'fn.delete':
      return deleteFunction(w);
    case 'fn.scale':
      if (w.deleting) return;
      if (!Number.isInteger(message.desired) || message.desired < 0) {
        return w.warn(`fn.scale ignored: desired must be an integer >= 0 sandboxes, got ${message.desired}`);
      }
      w.desired = message.desired;
      return reconcile(w);
    case 'fn.sandboxReady':
      return sandboxReady(w, message.sandboxId, message.endpoint);
    case 'fn.sandboxFailed': {
      // Whatever the function knew, the worker no longer runs it: forget it and free its allocation.
      const record = w.sandboxes.get(message.sandboxId);
      if (record !== undefined) forget(w, record);
      w.send(schedulerAddress, { type: 'sch.release', functionName: w.name, sandboxId: message.sandboxId, nodeId: message.nodeId });
      w.warn(`sandbox ${message.sandboxId} on ${message.nodeId} failed${record ? ` while ${record.phase}` : ''}: ${message.reason}`);
      // A sandbox that served and then died is replaced at once. One that could not even start (a refused create,
      // a module that fails to load) would most likely fail again: it is counted, and `reconcile` replaces it only
      // after the backoff. (Creating sandboxes are all of the current version: an update deletes older ones.)
      if (record?.phase === 'creating') recordFailure(w, record, message.reason);
      return reconcile(w);
    }
    case 'fn.sandboxDeleted': {
      // Usually a `gone` sandbox; any other phase means the worker removed it on its own (replaced below).
      const record = w.sandboxes.get(message.sandboxId);
      if (record !== undefined) forget(w, record);
      w.send(schedulerAddress, { type: 'sch.release', functionName: w.name, sandboxId: message.sandboxId, nodeId: message.nodeId });
      if (record !== undefined && record.phase !== 'gone') w.warn(`sandbox ${message.sandboxId} was deleted by its worker while ${record.phase}`);
      return reconcile(w);
    }
    case 'fn.drained': {
      const record = w.sandboxes.get(message.sandboxId);
      if (record?.phase !== 'draining') return;
      const waitingFor = record.waitingFor.filter((id) => id !== message.dataplaneId);
      if (waitingFor.length === 0) deleteOnNode(w, record);
      else w.put({ ...record, waitingFor });
      return;
    }
    case 'fn.nodeLost': {
      // The scheduler has already dropped the node's allocations: no release here.
      const lost = [...w.sandboxes.values()].filter((record) => record.nodeId === message.nodeId);
      for (const record of lost) forget(w, record);
      if (lost.length > 0) w.warn(`node ${message.nodeId} lost with ${lost.length} sandbox(es) of ${w.name}`);
      return reconcile(w);
    }
    case 'fn.getEndpoints':
      // With the term, so that a router that had seen none (a data plane that just restarted) fences from now on.
      return w.reply({ ...snapshotOf(w), term: w.base.term });
    case 'fn.status':
      return w.reply(statusOf(w));
    case 'fn.adopt':
      return adopt(w, message.sandboxes);
    case 'fn.dataplanes':
      return setDataplanes(w, message.ids);
    case 'fn.load':
      w.load = new Map(w.load).set(message.dataplaneId, message.inFlight);
      return;
    case 'fn.placed':
      return placed(w, message.requestId, message.result, message.error);
    case 'fn.drainTimeout': {
      const record = w.sandboxes.get(message.sandboxId);
      if (record?.phase !== 'draining') return;
      w.warn(`sandbox ${record.sandboxId} not drained by ${record.waitingFor.join(', ')} within ${drainTimeoutMs(w.spec)} ms: deleting it`);
      return deleteOnNode(w, record);
    }
    case 'fn.retryScale':
      return reconcile(w);
    default:
      return assertNever(message, 'function message');
  }
}

function configure(w: Work, spec: FunctionSpec): void {
  if (w.deleting || spec.name !== w.name) {
    const error: ActorError = w.deleting
      ? { code: 'FUNCTION_DELETING', message: `function ${w.name} is being deleted` }
      : { code: 'NAME_MISMATCH', message: `function ${w.name} cannot take the spec of ${spec.name}` };
    if (w.ctx.replyTo) w.effects.push({ type: 'fail', to: w.ctx.replyTo, error });
    else w.warn(`fn.configure ignored: ${error.message}`);
    return;
  }
  // An older version can only be a late duplicate; the stored spec stays.
  if (spec.version < w.spec.version) {
    w.warn(`fn.configure ignored: spec version ${spec.version} is older than ${w.spec.version}`);
    return w.reply(statusOf(w));
  }
  if (spec.version > w.spec.version && w.failures !== null) {
    // An update is a fresh start: whatever failed before may work now, so no backoff holds it back.
    w.effects.push({ type: 'log', level: 'info', text: `function ${w.name} updated to version ${spec.version}: creation failures and backoff cleared` });
    w.failures = null;
  }
  w.setSpec(spec);
  const configureScaler: AutoscalerMessage = { type: 'as.configure', config: spec.scaling, containerConcurrency: spec.concurrency };
  if (!w.autoscalerStarted) {
    // The autoscaler starts knowing 0 ready sandboxes; `commit` tells it more if there are.
    w.effects.push({ type: 'spawn', address: autoscalerAddress(w.name), init: { config: spec.scaling, containerConcurrency: spec.concurrency } });
    w.autoscalerStarted = true;
    w.reportedReady = 0;
    // Rebuilt by a new leader: no metric has been seen yet, so a first tick would read no demand.
    if (w.base.holdOnStart) w.send(autoscalerAddress(w.name), { type: 'as.hold', untilMs: w.ctx.now + spec.scaling.stableWindowMs });
  }
  w.send(autoscalerAddress(w.name), configureScaler);
  // A new template version starts its sandboxes now (and the outdated ones give way as they become ready).
  reconcile(w);
  pushSnapshot(w);
  w.reply(statusOf(w));
}

function deleteFunction(w: Work): void {
  if (!w.deleting) {
    w.deleting = true;
    w.desired = 0;
    if (w.autoscalerStarted) w.send(autoscalerAddress(w.name), { type: 'as.stop' });
    w.effects.push({ type: 'cancel', timer: RETRY_TIMER });
    // Ready sandboxes start draining (their removal goes out as a delta before this) and routers fail
    // queued requests with 404 at once instead of letting them wait for a sandbox that will not come.
    reconcile(w);
    w.send(routerAddress(w.name), { type: 'rt.deleted', term: w.base.term, functionName: w.name });
  }
  w.reply({ deleting: true });
}

function sandboxReady(w: Work, sandboxId: string, endpoint: Endpoint): void {
  const record = w.sandboxes.get(sandboxId);
  if (record === undefined || record.phase === 'gone') {
    // Not wanted: unknown, or deleted while it was being created (`fn.delete` turns every creating sandbox
    // gone, so this covers a function being deleted too). Delete the orphan rather than leave it running.
    w.send(nodeAddress(endpoint.nodeId), { type: 'node.delete', term: w.base.term, sandboxId });
    if (record === undefined) w.warn(`sandbox ${sandboxId} on ${endpoint.nodeId} is not ${w.name}'s: deleting it`);
    return;
  }
  switch (record.phase) {
    case 'creating':
      w.put(toReady(record, endpoint, w.ctx.now));
      if (record.version === w.spec.templateVersion && w.failures !== null) {
        w.effects.push({ type: 'log', level: 'info', text: `sandbox ${sandboxId} started after ${w.failures.count} failed creation(s): backoff cleared` });
        w.failures = null;
      }
      retireOutdated(w);
      return;
    // A repeated report: the sandbox is already routed (ready) or leaving (draining deletes it when drained).
    case 'ready':
    case 'draining':
      return;
    default:
      return assertNever(record, 'sandbox record');
  }
}

function adopt(w: Work, reports: readonly SandboxReport[]): void {
  for (const report of reports) {
    if (report.functionName !== w.name) continue;
    const known = w.sandboxes.get(report.sandboxId);
    if (w.deleting) {
      if (known === undefined) {
        w.put({ phase: 'gone', sandboxId: report.sandboxId, nodeId: report.nodeId, version: report.version, createdAt: report.createdAt, since: w.ctx.now });
        w.send(nodeAddress(report.nodeId), { type: 'node.delete', term: w.base.term, sandboxId: report.sandboxId });
      }
      continue;
    }
    if (known === undefined) {
      w.put({
        phase: 'ready',
        sandboxId: report.sandboxId,
        nodeId: report.nodeId,
        version: report.version,
        createdAt: report.createdAt,
        since: w.ctx.now,
        endpoint: report.endpoint,
      });
    } else if (known.phase === 'creating') {
      w.put(toReady(known, report.endpoint, w.ctx.now));
    }
  }
  if (w.deleting) return;
  // The adopted sandboxes are wanted until the autoscaler says otherwise; a desired count below them would
  // evict them at the next reconcile, before the autoscaler has seen a single metric.
  const counts = w.counts;
  w.desired = Math.max(w.desired, counts.creating + counts.ready);
  // Adopted sandboxes of an older version (an update the previous leader had not rolled out) are replaced, from the
  // first configure on (a rebuilt function adopts before it).
  if (w.autoscalerStarted && w.outdated.creating + w.outdated.ready > 0) reconcile(w);
  if (w.autoscalerStarted) pushSnapshot(w);
}

function setDataplanes(w: Work, ids: readonly string[]): void {
  const joined = ids.some((id) => !w.dataplanes.includes(id));
  w.dataplanes = sortedUnique(ids);
  // A data plane that went away serves nothing any more: forget its load report.
  if ([...w.load.keys()].some((id) => !w.dataplanes.includes(id))) w.load = new Map([...w.load].filter(([id]) => w.dataplanes.includes(id)));
  // A data plane that went away will never report a drain; one that joined got a snapshot without the
  // draining sandboxes, so it has nothing to drain.
  for (const record of [...w.sandboxes.values()]) {
    if (record.phase !== 'draining') continue;
    const waitingFor = record.waitingFor.filter((id) => w.dataplanes.includes(id));
    if (waitingFor.length === 0) deleteOnNode(w, record);
    else if (waitingFor.length !== record.waitingFor.length) w.put({ ...record, waitingFor });
  }
  // A data plane that joined (or came back, or reached a new leader) may hold an older set, or another term's:
  // the full set under this term brings it up to date at once rather than at the next change.
  if (joined && w.autoscalerStarted && !w.deleting) pushSnapshot(w);
}

/**
 * Moves creating + ready sandboxes of the current version (plus outstanding placements) towards the desired count,
 * then lets outdated ones give way.
 */
function reconcile(w: Work): void {
  const target = w.deleting ? 0 : w.desired;
  const current = w.currentLive();
  const live = current.creating + current.ready;
  const asked = outstanding(w.placing);
  if (target > live + asked) startSandboxes(w, target - live - asked);
  // Outstanding placements are not evicted here: `placed` keeps only as many as are still wanted.
  else if (target < live) evict(w, live - target);
  retireOutdated(w);
}

/** Asks for `count` more sandboxes, unless a creation backoff holds: then tries again when it ends. */
function startSandboxes(w: Work, count: number): void {
  const retryAt = w.failures?.retryAt ?? w.ctx.now;
  if (retryAt > w.ctx.now) {
    w.effects.push({ type: 'schedule', afterMs: retryAt - w.ctx.now, message: { type: 'fn.retryScale' }, timer: RETRY_TIMER });
    return;
  }
  requestPlacement(w, count);
}

/**
 * Outdated sandboxes: those still creating will never be routed and are deleted; ready ones keep serving only
 * while fewer sandboxes of the current version are ready than wanted (none at all once the function is deleted).
 */
function retireOutdated(w: Work): void {
  if (w.outdated.creating + w.outdated.ready === 0) return;
  const keep = w.deleting ? 0 : Math.max(0, w.desired - w.currentLive().ready);
  const ready: SandboxView[] = [];
  for (const record of [...w.sandboxes.values()]) {
    if (record.version === w.spec.templateVersion) continue;
    if (record.phase === 'creating') deleteOnNode(w, record);
    else if (record.phase === 'ready') ready.push({ id: record.sandboxId, nodeId: record.nodeId, inFlight: inFlightOf(w, record.sandboxId), state: record.phase, createdAt: record.createdAt });
  }
  for (const id of chooseEvictions(ready, Math.max(0, ready.length - keep))) {
    const record = w.sandboxes.get(id);
    if (record !== undefined) retire(w, record);
  }
}

/** Records a failed creation of the current version and sets the backoff before the next one. */
function recordFailure(w: Work, record: SandboxRecord, reason: string): void {
  const previous = w.failures;
  const now = w.ctx.now;
  // Sandboxes asked for together fail together: only one created after the last failure (a retry) doubles the delay.
  const retried = previous === null || record.createdAt >= previous.lastAt;
  const backoffMs = previous === null ? BACKOFF_INITIAL_MS : retried ? Math.min(previous.backoffMs * 2, BACKOFF_MAX_MS) : previous.backoffMs;
  const retryAt = retried ? now + backoffMs : (previous?.retryAt ?? now + backoffMs);
  w.failures = { count: (previous?.count ?? 0) + 1, lastError: reason, lastAt: now, backoffMs, retryAt };
  if (retried) w.warn(`${w.name} version ${w.spec.templateVersion}: ${w.failures.count} failed creation(s); next attempt in ${backoffMs} ms`);
}

function requestPlacement(w: Work, count: number): void {
  const sandboxIds: string[] = [];
  for (let i = 0; i < count; i++) sandboxIds.push(`${w.name}-${w.base.term}-${w.nextSeq++}`);
  const requestId = w.nextRequestId++;
  w.placing.set(requestId, sandboxIds);
  const request: SchedulerMessage = { type: 'sch.place', functionName: w.name, request: sandboxRequestOf(w.spec), sandboxIds };
  w.effects.push({
    type: 'ask',
    to: schedulerAddress,
    message: request,
    timeoutMs: PLACE_TIMEOUT_MS,
    then: (result) =>
      result.ok
        ? { type: 'fn.placed', requestId, result: result.value as PlaceReply }
        : { type: 'fn.placed', requestId, result: null, error: `${result.error.code}: ${result.error.message}` },
  });
}

function placed(w: Work, requestId: number, result: PlaceReply | null, error: string | undefined): void {
  const asked = w.placing.get(requestId);
  if (asked === undefined) return;
  w.placing.delete(requestId);
  if (result === null) {
    // The scheduler may have allocated before the ask timed out; nothing will ever use those allocations.
    w.send(schedulerAddress, { type: 'sch.abandon', functionName: w.name, sandboxIds: asked });
    w.warn(`placement of ${asked.length} sandbox(es) failed: ${error ?? 'unknown error'}; retrying in ${RETRY_SCALE_MS} ms`);
    return scheduleRetry(w);
  }
  // Demand may have fallen while the ask was out: create only what is still wanted, release the rest.
  const current = w.currentLive();
  let need = (w.deleting ? 0 : w.desired) - current.creating - current.ready - outstanding(w.placing);
  const template = sandboxTemplateOf(w.spec);
  for (const { sandboxId, nodeId } of result.placements) {
    if (!asked.includes(sandboxId) || w.sandboxes.has(sandboxId)) continue;
    if (need > 0) {
      w.put({ phase: 'creating', sandboxId, nodeId, version: template.version, createdAt: w.ctx.now, since: w.ctx.now });
      w.send(nodeAddress(nodeId), { type: 'node.create', term: w.base.term, sandboxId, template });
      need -= 1;
    } else {
      w.send(schedulerAddress, { type: 'sch.release', functionName: w.name, sandboxId, nodeId });
    }
  }
  if (need > 0) {
    w.warn(`placed ${result.placements.length}/${asked.length} sandbox(es): ${result.shortfall ?? 'no reason given'}; retrying in ${RETRY_SCALE_MS} ms`);
    scheduleRetry(w);
  }
}

/**
 * What a sandbox of this spec needs of a node: its resources, and the runtime its source needs (a module runs on
 * thread workers, a command on process workers; a builtin workload on any).
 */
export function sandboxRequestOf(spec: FunctionSpec): SandboxRequest {
  const resources = { cpuMilli: spec.cpuMilli, memoryMiB: spec.memoryMiB };
  switch (spec.source.kind) {
    case 'thread':
    case 'process':
      return { ...resources, runtime: spec.source.kind };
    case 'builtin':
      return resources;
    default:
      return assertNever(spec.source, 'runtime source');
  }
}

/** Scale-down of the current version (outdated sandboxes go by `retireOutdated`). */
function evict(w: Work, count: number): void {
  const views: SandboxView[] = [];
  for (const record of w.sandboxes.values()) {
    if (record.version !== w.spec.templateVersion) continue;
    if (record.phase === 'creating' || record.phase === 'ready') {
      views.push({ id: record.sandboxId, nodeId: record.nodeId, inFlight: inFlightOf(w, record.sandboxId), state: record.phase, createdAt: record.createdAt });
    }
  }
  for (const id of chooseEvictions(views, count)) {
    const record = w.sandboxes.get(id);
    if (record !== undefined) retire(w, record);
  }
}

/** Requests in flight on a sandbox as the data planes last reported (ticks while busy): idle ones go first. */
function inFlightOf(w: Work, sandboxId: string): number {
  let inFlight = 0;
  for (const perSandbox of w.load.values()) inFlight += perSandbox[sandboxId] ?? 0;
  return inFlight;
}

/** A ready sandbox drains on every connected data plane first; any other is deleted at once. */
function retire(w: Work, record: SandboxRecord): void {
  if (record.phase === 'ready' && w.dataplanes.length > 0) {
    w.put(toDraining(record, w.dataplanes, w.ctx.now));
    w.effects.push({ type: 'schedule', afterMs: drainTimeoutMs(w.spec), message: { type: 'fn.drainTimeout', sandboxId: record.sandboxId }, timer: drainTimer(record.sandboxId) });
  } else {
    deleteOnNode(w, record);
  }
}

/** Asks the worker to delete the sandbox; the record stays `gone` until the worker confirms. */
function deleteOnNode(w: Work, record: SandboxRecord): void {
  if (record.phase === 'draining') w.effects.push({ type: 'cancel', timer: drainTimer(record.sandboxId) });
  w.put(toGone(record, w.ctx.now));
  w.send(nodeAddress(record.nodeId), { type: 'node.delete', term: w.base.term, sandboxId: record.sandboxId });
}

/** Drops a sandbox the worker no longer runs. */
function forget(w: Work, record: SandboxRecord): void {
  if (record.phase === 'draining') w.effects.push({ type: 'cancel', timer: drainTimer(record.sandboxId) });
  w.drop(record.sandboxId);
}


function scheduleRetry(w: Work): void {
  w.effects.push({ type: 'schedule', afterMs: RETRY_SCALE_MS, message: { type: 'fn.retryScale' }, timer: RETRY_TIMER });
}

const RETRY_TIMER = 'retryScale';
const drainTimer = (sandboxId: string): string => `drain:${sandboxId}`;
const drainTimeoutMs = (spec: FunctionSpec): number => spec.timeoutMs + DRAIN_GRACE_MS;

