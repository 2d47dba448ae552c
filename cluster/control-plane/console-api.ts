// The inspection console's JSON endpoints, answered by the leader (followers forward, as for the rest of
// the admin API). Read-only: nothing here changes the cluster, so, like every GET of the admin API, they
// need no token. Each request asks what it shows and nothing more: the actor list is one page, sorted and
// cut on every shard (see runtime/actor-query.ts), so that 10 000 actors cost a page, not a list.
//
//   GET /api/v1/console/cluster    leader, term, replicas, data planes, workers (capacity, allocation,
//                                  heartbeat age), reconstruction progress, and each process's shards
//   GET /api/v1/console/functions  per function: scale by phase, panic, queue, in-flight (peak and average),
//                                  the autoscaler's windows and last decisions, cumulative
//                                  invocations and cold starts (the page derives rates), cold-start queue-time
//                                  percentiles, rejections
//   GET /api/v1/console/kinds      actors by kind, process and shard: count, processed, mailbox, step times
//   GET /api/v1/console/actors     ?kind=&process=&shard=&sort=&offset=&limit=  one page of the Observer view
//   GET /api/v1/console/actor      ?process=&shard=&name=&watch=1  one actor: counters, state, state in one
//                                  line; with watch, its recent messages (kept from then on, for WATCH_MS
//                                  after each such request: only while someone looks)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { COLD_START_BUCKETS_MS } from '../../actors/messages.js';
import { ACTOR_OFFSET_MAX, ACTOR_PAGE_LIMIT, ACTOR_SORTS, ActorRuntimeError, isActorSort, merge, newHistogram, quantileUs, type ShardStats } from '../../runtime/index.js';
import type { ControlPlane } from './control-plane.js';
import type { ProcessStats } from './inspection.js';

/** An expected refusal of a console request; the admin API turns it into `{ error: { code, message } }`. */
export class ConsoleApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What the cluster view needs of the replica serving it (the admin API's AdminTarget). */
export interface ConsoleTarget {
  readonly replicaId: string;
  replicas(): Promise<unknown[]>;
}

/** How long an actor keeps its recent messages after a `watch` request, ms: a few of the page's 2 s polls. */
const WATCH_MS = 10_000;

const QUERIES: Record<string, readonly string[]> = {
  cluster: [],
  functions: [],
  kinds: ['process'],
  actors: ['kind', 'process', 'shard', 'sort', 'offset', 'limit'],
  actor: ['process', 'shard', 'name', 'watch'],
};

export async function serveConsoleApi(target: ConsoleTarget, plane: ControlPlane, view: string, req: IncomingMessage, params: URLSearchParams, res: ServerResponse): Promise<void> {
  const known = QUERIES[view];
  if (known === undefined) throw new ConsoleApiError(404, 'NOT_FOUND', `no console view ${JSON.stringify(view)}; known: ${Object.keys(QUERIES).join(', ')}`);
  if (req.method !== 'GET') throw new ConsoleApiError(405, 'METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on the console's views; use GET`);
  for (const key of params.keys()) {
    if (!known.includes(key)) throw new ConsoleApiError(400, 'INVALID_QUERY', `unknown query parameter ${JSON.stringify(key)} for ${view}${known.length ? `; known: ${known.join(', ')}` : ''}`);
  }
  try {
    send(res, await answer(target, plane, view, params));
  } catch (error) {
    if (error instanceof ActorRuntimeError) {
      const status = error.code === 'BAD_REQUEST' ? 400 : error.code === 'NO_SUCH_ACTOR' ? 404 : 503;
      throw new ConsoleApiError(status, error.code, error.message);
    }
    throw error;
  }
}

async function answer(target: ConsoleTarget, plane: ControlPlane, view: string, params: URLSearchParams): Promise<unknown> {
  switch (view) {
    case 'cluster':
      return clusterView(target, plane);
    case 'functions':
      return functionsView(plane);
    case 'kinds':
      return kindsView(plane, params.get('process') ?? undefined);
    case 'actors': {
      const sort = params.get('sort') ?? 'mailbox';
      if (!isActorSort(sort)) throw new ConsoleApiError(400, 'INVALID_QUERY', `sort must be one of ${ACTOR_SORTS.join(', ')}, got ${JSON.stringify(sort)}`);
      const query = {
        kind: nonEmpty(params, 'kind'),
        sort,
        offset: int(params, 'offset', 0, ACTOR_OFFSET_MAX, 'actors') ?? 0,
        limit: int(params, 'limit', ACTOR_PAGE_LIMIT.min, ACTOR_PAGE_LIMIT.max, 'actors') ?? 50,
      };
      const page = await plane.inspector.topActors(query, { process: nonEmpty(params, 'process'), shard: int(params, 'shard', 0, 255, '(shard index)') });
      return { at: Date.now(), ...query, ...page };
    }
    case 'actor': {
      const process = nonEmpty(params, 'process');
      const name = nonEmpty(params, 'name');
      const shard = int(params, 'shard', 0, 255, '(shard index)');
      if (process === undefined || name === undefined || shard === undefined) throw new ConsoleApiError(400, 'INVALID_QUERY', 'an actor is named by process, shard and name (as the actor list gives them)');
      const watch = params.get('watch');
      if (watch !== null && !['0', '1', 'true', 'false'].includes(watch)) throw new ConsoleApiError(400, 'INVALID_QUERY', `watch must be 1 or 0, got ${JSON.stringify(watch)}`);
      const watchMs = watch === '1' || watch === 'true' ? WATCH_MS : undefined;
      return { at: Date.now(), process, shard, name, ...(await plane.inspector.inspect(process, shard, name, watchMs)) };
    }
    default:
      throw new ConsoleApiError(404, 'NOT_FOUND', `no console view ${view}`);
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
        // The autoscaler's inputs (requests in flight): the data planes' time-weighted average and the windows' means.
        inFlightAverage: autoscaler?.observedAverage ?? 0,
        mode: autoscaler?.mode ?? 'stable',
        stableWindowMs: spec.scaling.stableWindowMs,
        panicWindowMs: spec.scaling.panicWindowMs,
        stableWindowAverage: autoscaler?.stableWindowAverage ?? null,
        panicWindowAverage: autoscaler?.panicWindowAverage ?? null,
        lastDecision: autoscaler?.lastDecision ?? null,
        recentDecisions: autoscaler?.recentDecisions ?? [],
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
