// The inspection console's JSON endpoints, answered by the leader (followers forward, as for the rest of
// the admin API). The views are read-only and, like every GET of the admin API, need no token; the actions
// (console-actions.ts) need it. Each request asks what it shows and nothing more: the actor list is one page,
// sorted and cut on every shard (see runtime/actor-query.ts), so that 10 000 actors cost a page, not a list.
//
//   GET /api/v1/console/cluster    leader, term, replicas, data planes, workers (capacity, allocation,
//                                  heartbeat age), reconstruction progress, and each process's shards
//   GET /api/v1/console/functions  per function: scale by phase, panic, queue, in-flight, cumulative
//                                  invocations and cold starts (the page derives rates), cold-start queue-time
//                                  percentiles, rejections
//   GET /api/v1/console/history    per function, the last 5 minutes of those counters, sampled every 5 s by
//                                  the leader (function-history.ts): what the page's charts start from
//   GET /api/v1/console/kinds      actors by kind, process and shard: count, processed, mailbox, step times
//   GET /api/v1/console/actors     ?kind=&process=&shard=&sort=&offset=&limit=  one page of the Observer view
//   GET /api/v1/console/actor      ?process=&shard=&name=&watch=1  one actor: counters, state, state in one
//                                  line; with watch, its recent messages (kept from then on, for WATCH_MS
//                                  after each such request: only while someone looks)
//   GET /api/v1/console/stream     ?watch=<view>?<query> (1..4): the same views, pushed as server-sent
//                                  events when they change (console-push.ts); what the page uses
//   POST /api/v1/console/scale|drain|restart   the actions (console-actions.ts)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { COLD_START_BUCKETS_MS } from '../../actors/messages.js';
import { assertNever } from '../../actors/actor.js';
import { ACTOR_OFFSET_MAX, ACTOR_PAGE_LIMIT, ACTOR_SORTS, ActorRuntimeError, isActorSort, merge, newHistogram, quantileUs, type ActorQuery, type ShardStats } from '../../runtime/index.js';
import type { ControlPlane } from './control-plane.js';
import { ConsoleApiError } from './console-error.js';
import { ACTIONS, isAction, serveConsoleAction } from './console-actions.js';
import { MAX_STREAMS, MAX_WATCHES, type ConsolePush, type Watch } from './console-push.js';
import type { ActorFilter, ProcessStats } from './inspection.js';

export { ConsoleApiError };

/** What the cluster view needs of the replica serving it (the admin API's AdminTarget). */
export interface ConsoleTarget {
  readonly replicaId: string;
  replicas(): Promise<unknown[]>;
}

/** How long an actor keeps its recent messages after a `watch` request, ms: several of a stream's reads (PUSH_MS). */
const WATCH_MS = 10_000;

const QUERIES = {
  cluster: [],
  functions: [],
  history: [],
  kinds: ['process'],
  actors: ['kind', 'process', 'shard', 'sort', 'offset', 'limit'],
  actor: ['process', 'shard', 'name', 'watch'],
} as const satisfies Record<string, readonly string[]>;

/** One console view's request, checked: what a GET asks once and a stream's watch asks every PUSH_MS. */
export type ViewRequest =
  | { readonly view: 'cluster' }
  | { readonly view: 'functions' }
  | { readonly view: 'history' }
  | { readonly view: 'kinds'; readonly process: string | undefined }
  | { readonly view: 'actors'; readonly query: ActorQuery; readonly filter: ActorFilter }
  | { readonly view: 'actor'; readonly process: string; readonly shard: number; readonly name: string; readonly watchMs: number | undefined };

/** Checks a view's name and query; a mistake is a 404 (no such view) or a 400 naming the parameter. */
export function parseView(view: string, params: URLSearchParams): ViewRequest {
  if (!Object.hasOwn(QUERIES, view)) throw new ConsoleApiError(404, 'NOT_FOUND', `no console view ${JSON.stringify(view)}; known: ${[...Object.keys(QUERIES), 'stream', ...ACTIONS].join(', ')}`);
  const known: readonly string[] = QUERIES[view as keyof typeof QUERIES];
  for (const key of params.keys()) {
    if (!known.includes(key)) throw new ConsoleApiError(400, 'INVALID_QUERY', `unknown query parameter ${JSON.stringify(key)} for ${view}${known.length ? `; known: ${known.join(', ')}` : ''}`);
  }
  switch (view as keyof typeof QUERIES) {
    case 'cluster':
      return { view: 'cluster' };
    case 'functions':
      return { view: 'functions' };
    case 'history':
      return { view: 'history' };
    case 'kinds':
      return { view: 'kinds', process: nonEmpty(params, 'process') };
    case 'actors': {
      const sort = params.get('sort') ?? 'mailbox';
      if (!isActorSort(sort)) throw new ConsoleApiError(400, 'INVALID_QUERY', `sort must be one of ${ACTOR_SORTS.join(', ')}, got ${JSON.stringify(sort)}`);
      const query: ActorQuery = {
        kind: nonEmpty(params, 'kind'),
        sort,
        offset: int(params, 'offset', 0, ACTOR_OFFSET_MAX, 'actors') ?? 0,
        limit: int(params, 'limit', ACTOR_PAGE_LIMIT.min, ACTOR_PAGE_LIMIT.max, 'actors') ?? 50,
      };
      return { view: 'actors', query, filter: { process: nonEmpty(params, 'process'), shard: int(params, 'shard', 0, 255, '(shard index)') } };
    }
    case 'actor': {
      const process = nonEmpty(params, 'process');
      const name = nonEmpty(params, 'name');
      const shard = int(params, 'shard', 0, 255, '(shard index)');
      if (process === undefined || name === undefined || shard === undefined) throw new ConsoleApiError(400, 'INVALID_QUERY', 'an actor is named by process, shard and name (as the actor list gives them)');
      const watch = params.get('watch');
      if (watch !== null && !['0', '1', 'true', 'false'].includes(watch)) throw new ConsoleApiError(400, 'INVALID_QUERY', `watch must be 1 or 0, got ${JSON.stringify(watch)}`);
      return { view: 'actor', process, shard, name, watchMs: watch === '1' || watch === 'true' ? WATCH_MS : undefined };
    }
  }
}

/**
 * `?watch=<view>[?<query>]`, once per view a stream follows: each checked as its GET would be. A watch is
 * URL-encoded inside the stream's query (`watch=actors%3Fkind%3Drouter`).
 */
export function parseWatches(params: URLSearchParams): Watch[] {
  for (const key of params.keys()) if (key !== 'watch') throw new ConsoleApiError(400, 'INVALID_QUERY', `unknown query parameter ${JSON.stringify(key)} for stream; known: watch`);
  const watches = params.getAll('watch');
  if (watches.length === 0 || watches.length > MAX_WATCHES) throw new ConsoleApiError(400, 'INVALID_QUERY', `a stream watches 1..${MAX_WATCHES} views (watch=<view>?<query>), got ${watches.length}`);
  return watches.map((text) => {
    const at = text.indexOf('?');
    const watch = { view: at < 0 ? text : text.slice(0, at), params: new URLSearchParams(at < 0 ? '' : text.slice(at + 1)) };
    parseView(watch.view, watch.params);
    return watch;
  });
}

/** What a console request needs of the replica serving it. */
export interface ConsoleContext {
  readonly target: ConsoleTarget;
  readonly plane: ControlPlane;
  readonly push: ConsolePush;
  /** The admin token; without one the console's actions are off. */
  readonly adminToken: string | undefined;
}

export async function serveConsoleApi({ target, plane, push, adminToken }: ConsoleContext, view: string, req: IncomingMessage, params: URLSearchParams, res: ServerResponse): Promise<void> {
  if (isAction(view)) return serveConsoleAction(plane, adminToken, view, req, res);
  if (view === 'stream') {
    if (req.method !== 'GET') throw new ConsoleApiError(405, 'METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on the console's stream; use GET`);
    const watches = parseWatches(params);
    if (push.full) throw new ConsoleApiError(503, 'TOO_MANY_STREAMS', `${MAX_STREAMS} console streams are open on this replica already; close a console tab and retry`);
    return push.open(watches, res);
  }
  const request = parseView(view, params);
  if (req.method !== 'GET') throw new ConsoleApiError(405, 'METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on the console's views; use GET`);
  send(res, await readView(target, plane, request));
}

/** Answers one view; the runtime's refusals become console errors with their status. */
export async function readView(target: ConsoleTarget, plane: ControlPlane, request: ViewRequest): Promise<unknown> {
  try {
    return await answer(target, plane, request);
  } catch (error) {
    if (error instanceof ActorRuntimeError) {
      const status = error.code === 'BAD_REQUEST' ? 400 : error.code === 'NO_SUCH_ACTOR' ? 404 : 503;
      throw new ConsoleApiError(status, error.code, error.message);
    }
    throw error;
  }
}

async function answer(target: ConsoleTarget, plane: ControlPlane, request: ViewRequest): Promise<unknown> {
  switch (request.view) {
    case 'cluster':
      return clusterView(target, plane);
    case 'functions':
      return functionsView(plane);
    case 'history': {
      const names = (await plane.listFunctions()).map((f) => f.spec.name);
      return { at: Date.now(), functions: Object.fromEntries(names.map((name) => [name, plane.history.of(name)])) };
    }
    case 'kinds':
      return kindsView(plane, request.process);
    case 'actors': {
      const page = await plane.inspector.topActors(request.query, request.filter);
      return { at: Date.now(), ...request.query, ...page };
    }
    case 'actor': {
      const { process, shard, name, watchMs } = request;
      return { at: Date.now(), process, shard, name, ...(await plane.inspector.inspect(process, shard, name, watchMs)) };
    }
    default:
      return assertNever(request);
  }
}

async function clusterView(target: ConsoleTarget, plane: ControlPlane): Promise<unknown> {
  const [replicas, workers, processes] = await Promise.all([target.replicas(), plane.nodes().catch(() => []), plane.inspector.processes()]);
  const status = plane.status();
  return {
    at: Date.now(),
    replicaId: target.replicaId,
    term: status.term,
    serving: plane.isServing,
    replicas,
    dataplanes: plane.listDataplanes(),
    workers,
    reconstruction: status.reconstruction,
    functions: status.functions,
    processes: processes.processes.map((p) => ({ process: p.process, shards: p.shards.map(shardSummary) })),
    unreachable: processes.unreachable,
  };
}

function shardSummary(s: ShardStats): unknown {
  return {
    shard: s.shard,
    actors: s.actors,
    processed: s.processed,
    mailbox: s.mailbox,
    restarts: s.restarts,
    deadLetters: s.deadLetters,
    pendingAsks: s.pendingAsks,
    crossSent: s.crossSent,
    crossReceived: s.crossReceived,
    counters: s.counters,
    p50Us: quantileUs(s.histogram, 0.5),
    p99Us: quantileUs(s.histogram, 0.99),
  };
}

async function functionsView(plane: ControlPlane): Promise<unknown> {
  const views = await plane.listFunctions();
  return {
    at: Date.now(),
    functions: views.map(({ spec, status, autoscaler }) => {
      const totals = autoscaler?.totals;
      return {
        name: spec.name,
        runtime: spec.runtime,
        version: status?.version ?? spec.templateVersion,
        state: status?.state ?? 'unknown',
        stateReason: status?.stateReason ?? null,
        desired: status?.desired ?? 0,
        creating: status?.creating ?? 0,
        ready: status?.ready ?? 0,
        draining: status?.draining ?? 0,
        minScale: spec.scaling.minScale,
        maxScale: spec.scaling.maxScale,
        panic: autoscaler?.panic ?? false,
        queued: autoscaler?.queued ?? 0,
        inFlight: autoscaler?.observedInFlight ?? 0,
        lastDecision: autoscaler?.lastDecision ?? null,
        invocations: totals?.invocations ?? 0,
        coldStarts: totals?.coldStarts ?? 0,
        coldStartP50Ms: totals ? bucketQuantile(totals.coldStartMsBuckets, 0.5) : null,
        coldStartP99Ms: totals ? bucketQuantile(totals.coldStartMsBuckets, 0.99) : null,
        rejected: totals?.rejected ?? {},
        sandboxes: (status?.sandboxes ?? []).map((s) => ({ sandboxId: s.sandboxId, nodeId: s.nodeId, phase: s.phase, version: s.version })),
      };
    }),
  };
}

/** Upper bound (ms) of the cumulative bucket holding quantile q; null with no sample, or past the last bound (10 s). */
export function bucketQuantile(cumulative: readonly number[], q: number): number | null {
  const count = cumulative[cumulative.length - 1] ?? 0;
  if (count === 0) return null;
  const rank = Math.ceil(q * count);
  for (let i = 0; i < cumulative.length; i++) if ((cumulative[i] ?? 0) >= rank) return COLD_START_BUCKETS_MS[i] ?? null;
  return null;
}

async function kindsView(plane: ControlPlane, process: string | undefined): Promise<unknown> {
  const { processes, unreachable } = await plane.inspector.processes();
  const wanted = processes.filter((p) => process === undefined || p.process === process);
  if (process !== undefined && wanted.length === 0) throw new ConsoleApiError(404, 'NO_SUCH_PROCESS', `no connected process named ${process}`);
  return { at: Date.now(), kinds: byKind(wanted), unreachable };
}

/** One row per kind, process and shard, and one total per kind (its step-time histogram merged). */
function byKind(processes: readonly ProcessStats[]): unknown[] {
  const totals = new Map<string, { actors: number; processed: number; mailbox: number; restarts: number; histogram: ReturnType<typeof newHistogram>; where: unknown[] }>();
  for (const p of processes) {
    for (const shard of p.shards) {
      for (const k of shard.kinds) {
        let total = totals.get(k.kind);
        if (total === undefined) totals.set(k.kind, (total = { actors: 0, processed: 0, mailbox: 0, restarts: 0, histogram: newHistogram(), where: [] }));
        total.actors += k.actors;
        total.processed += k.processed;
        total.mailbox += k.mailbox;
        total.restarts += k.restarts;
        merge(total.histogram, k.histogram);
        total.where.push({ process: p.process, shard: shard.shard, actors: k.actors, processed: k.processed, mailbox: k.mailbox, p99Us: quantileUs(k.histogram, 0.99) });
      }
    }
  }
  return [...totals]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([kind, t]) => ({ kind, actors: t.actors, processed: t.processed, mailbox: t.mailbox, restarts: t.restarts, p50Us: quantileUs(t.histogram, 0.5), p99Us: quantileUs(t.histogram, 0.99), where: t.where }));
}

function nonEmpty(params: URLSearchParams, key: string): string | undefined {
  const value = params.get(key);
  return value === null || value === '' ? undefined : value;
}

function int(params: URLSearchParams, key: string, min: number, max: number, unit: string): number | undefined {
  const raw = params.get(key);
  if (raw === null || raw === '') return undefined;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new ConsoleApiError(400, 'INVALID_QUERY', `${key} must be an integer in ${min}..${max} ${unit}, got ${JSON.stringify(raw)}`);
  return value;
}

function send(res: ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
