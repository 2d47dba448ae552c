// The control plane's admin API: JSON REST for functions, nodes, data planes and cluster status;
// Dirigent-compatible form registration; Prometheus metrics; health; the OpenAPI document.
// Expected outcomes arrive as values from ControlPlane and are mapped to statuses here.
//
// Every replica serves it. The leader answers; a follower forwards the request to the leader's admin URL
// and relays the answer (status, headers, body), so clients (the CLI, Dirigent's loader) may talk to any
// replica and need not follow redirects with a body. A forwarded request carries `x-dirigent-forwarded-by`
// and is never forwarded again (503 NOT_LEADER), so two replicas that disagree cannot loop. With no leader
// known: 503 NO_LEADER and `retry-after: 1`. Health, readiness, metrics and the replica list are answered by
// each replica for itself.
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { advanceLogCursor, LOG_TAIL_LIMIT, logCursorFrom } from '../../actors/sandbox-logs.js';
import { listen, secretsMatch } from '../../runtime/net.js';
import type { LeaderView } from '../leadership/index.js';
import type { ControlPlane, Outcome } from './control-plane.js';
import { renderControlPlaneMetrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { ConsoleApiError, parseView, readView, serveConsoleApi } from './console-api.js';
import { ConsolePush } from './console-push.js';
import { isConsolePath, serveConsoleFile } from '../console/serve.js';
import { DirigentError, type ErrorCode } from '../../actors/errors.js';

/** Admin request bodies are small JSON or form documents, bytes. */
const MAX_ADMIN_BODY_BYTES = 1024 * 1024;
/** Between two reads of a followed function's output, ms: what following adds to a line's delay at most. */
const FOLLOW_POLL_MS = 500;
/**
 * A followed stream quiet for this long gets an empty line, ms: well inside FORWARD_TIMEOUT_MS, so a follower
 * relaying it (or any proxy) does not take a quiet function for a dead connection. Clients skip empty lines.
 */
const FOLLOW_KEEPALIVE_MS = 10_000;

export interface AdminApiOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** When set, requests that change state need `Authorization: Bearer <token>`. */
  readonly adminToken?: string;
  /** Runtime for Dirigent-form registrations (which only name images). */
  readonly registrationRuntime?: 'thread' | 'simulated';
}

/** One replica as `GET /api/v1/replicas` lists it. */
export interface ReplicaStatus {
  readonly id: string;
  readonly adminUrl: string;
  readonly clusterAddress: string;
  /** `unreachable`: its admin API did not answer within the probe's bound. */
  readonly role: 'leader' | 'follower' | 'candidate' | 'unreachable';
  /** The term it leads, or the term of the leader it follows. */
  readonly term: number | null;
  /** What its /readyz said. */
  readonly readiness: string;
}

/** What the admin API serves: one replica of the control plane. */
export interface AdminTarget {
  readonly replicaId: string;
  /** The leader incarnation while this replica leads (answers even while it reconstructs: operations wait). */
  plane(): ControlPlane | undefined;
  /** The leader as this replica last saw it. */
  leader(): LeaderView | undefined;
  replicas(): Promise<ReplicaStatus[]>;
}

/** The embedded control plane: one replica that always leads. */
export function soleReplica(plane: ControlPlane, adminUrl = '', clusterAddress = plane.clusterAddress): AdminTarget {
  const info = { id: 'leader', adminUrl, clusterAddress };
  return {
    replicaId: info.id,
    plane: () => plane,
    leader: () => ({ info, term: plane.term }),
    replicas: async () => [{ ...info, role: 'leader', term: plane.term, readiness: readiness(plane, undefined, info.id).text }],
  };
}

/** `/readyz`: 200 for a serving leader or a follower that knows its leader; 503 otherwise. */
export function readiness(plane: ControlPlane | undefined, leader: LeaderView | undefined, replicaId: string): { ready: boolean; text: string } {
  if (plane) return plane.isServing ? { ready: true, text: `leader (term ${plane.term})` } : { ready: false, text: `leader (term ${plane.term}), reconstructing` };
  if (leader && leader.info.id !== replicaId) return { ready: true, text: `follower (leader: ${leader.info.id}, term ${leader.term})` };
  return { ready: false, text: 'candidate (no leader elected yet)' };
}

/** Request headers not passed on when forwarding (hop-by-hop, or recomputed by the client). */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host', 'content-length']);
const FORWARDED_BY = 'x-dirigent-forwarded-by';
/** Bound on a forwarded request, ms (a deploy waits for the leader to start the function). */
const FORWARD_TIMEOUT_MS = 30_000;

export interface AdminApi {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

class HttpError extends DirigentError {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

export async function startAdminApi(target: AdminTarget, options: AdminApiOptions): Promise<AdminApi> {
  // The console's live views, read from whichever plane this replica leads at the time; a replica that
  // stops leading ends its streams and the pages reconnect (through it, forwarded, to the new leader).
  const push = new ConsolePush(
    async (watch) => {
      const plane = target.plane();
      if (plane === undefined) throw new ConsoleApiError(503, 'NOT_LEADER', `replica ${target.replicaId} no longer leads`);
      return readView(target, plane, parseView(watch.view, watch.params));
    },
    { ended: () => target.plane() === undefined },
  );
  const server: Server = createServer((req, res) => {
    route(target, options, push, req, res).catch((error: unknown) => {
      const expected = error instanceof HttpError || error instanceof ConsoleApiError;
      const status = expected ? error.status : 500;
      const code = expected ? error.code : 'INTERNAL';
      if (!expected) process.stderr.write(`error admin API ${req.method} ${req.url}: ${(error as Error).stack ?? String(error)}\n`);
      sendJson(res, status, { error: { code, message: (error as Error).message } });
    });
  });
  server.keepAliveTimeout = 5000;
  const port = await listen(server, options.port, options.host);
  return {
    port,
    url: `http://${options.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        push.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What every replica answers for itself; the rest goes to the leader. */
async function route(target: AdminTarget, options: AdminApiOptions, push: ConsolePush, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://admin').pathname.replace(/\/+$/, '') || '/';
  const plane = target.plane();
  const leader = target.leader();
  if (path === '/healthz') return sendText(res, 200, 'ok\n');
  if (path === '/readyz') {
    const { ready, text } = readiness(plane, leader, target.replicaId);
    return sendText(res, ready ? 200 : 503, `${text}\n`);
  }
  if (path === '/openapi.json') return sendJson(res, 200, openApiDocument);
  // The console's page is the same on every replica; the views it reads go to the leader like the rest.
  if (isConsolePath(path)) {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed(req.method ?? '', path, 'GET');
    await serveConsoleFile(path, res);
    return;
  }
  if (plane && path.startsWith('/api/v1/console/') && path.split('/').length === 5) {
    return serveConsoleApi({ target, plane, push, adminToken: options.adminToken }, path.split('/')[4]!, req, new URL(req.url ?? '/', 'http://admin').searchParams, res);
  }
  if (path === '/api/v1/replicas') {
    if (req.method !== 'GET') throw methodNotAllowed(req.method ?? '', path, 'GET');
    return sendJson(res, 200, { replicas: await target.replicas() });
  }
  if (plane) return handle(plane, options, req, res);
  if (path === '/metrics') {
    // Scrape the leader for the cluster's metrics; a follower only says that it follows.
    const text = `# HELP dirigent_control_plane_leader 1 when this replica leads.\n# TYPE dirigent_control_plane_leader gauge\ndirigent_control_plane_leader{replica="${target.replicaId}"} 0\n`;
    return sendText(res, 200, text, 'text/plain; version=0.0.4');
  }
  if (req.headers[FORWARDED_BY] !== undefined) throw new HttpError(503, 'NOT_LEADER', `replica ${target.replicaId} was forwarded a request by ${String(req.headers[FORWARDED_BY])} but does not lead; retry`);
  if (!leader || leader.info.id === target.replicaId) {
    res.setHeader('retry-after', '1');
    throw new HttpError(503, 'NO_LEADER', 'no control-plane replica leads at the moment (an election is under way); retry in a second');
  }
  return forward(target.replicaId, leader, req, res);
}

/** Relays the request to the leader and its answer back. */
function forward(replicaId: string, leader: LeaderView, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) if (!HOP_HEADERS.has(name)) headers[name] = value;
  headers[FORWARDED_BY] = replicaId;
  const url = new URL(req.url ?? '/', leader.info.adminUrl);
  return new Promise<void>((resolve, reject) => {
    const upstream = httpRequest(url, { method: req.method, headers, timeout: FORWARD_TIMEOUT_MS }, (answer) => {
      const relayed: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !HOP_HEADERS.has(name)) relayed[name] = value;
      res.writeHead(answer.statusCode ?? 502, { ...relayed, 'x-dirigent-leader': leader.info.id });
      // A client gone before the answer ends (a followed log stream) ends the relayed request too.
      res.once('close', () => {
        if (!answer.complete) upstream.destroy();
      });
      answer.pipe(res);
      answer.on('end', resolve);
      answer.on('error', reject);
    });
    upstream.on('timeout', () => upstream.destroy(new Error(`the leader ${leader.info.id} did not answer within ${FORWARD_TIMEOUT_MS} ms`)));
    upstream.on('error', (error) => reject(new HttpError(503, 'LEADER_UNREACHABLE', `could not forward to the leader ${leader.info.id} at ${leader.info.adminUrl}: ${error.message}`)));
    req.pipe(upstream);
  });
}

async function handle(plane: ControlPlane, options: AdminApiOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const method = req.method ?? 'GET';
  const segments = path.split('/').filter(Boolean);

  if (path === '/metrics') return sendText(res, 200, await renderControlPlaneMetrics(plane), 'text/plain; version=0.0.4');

  if (segments[0] === 'api' && segments[1] === 'v1') {
    const resource = segments[2];
    const name = segments[3] === undefined ? undefined : decodeURIComponent(segments[3]);
    if (resource === 'functions' && name !== undefined && segments[4] === 'logs' && segments.length === 5) {
      if (method !== 'GET') throw methodNotAllowed(method, path, 'GET');
      return serveLogs(plane, name, url.searchParams, res);
    }
    if (segments.length > 4) throw new HttpError(404, 'NOT_FOUND', `no route ${path}`);
    switch (resource) {
      case 'functions':
        if (name === undefined) {
          if (method === 'GET') return sendJson(res, 200, { functions: await plane.listFunctions() });
          if (method === 'POST') {
            authorize(options, req);
            return sendOutcome(res, await plane.createFunction(await readJson(req)), 201);
          }
          throw methodNotAllowed(method, path, 'GET, POST');
        }
        if (method === 'GET') return sendOutcome(res, await plane.getFunction(name));
        if (method === 'PATCH' || method === 'PUT') {
          authorize(options, req);
          return sendOutcome(res, await plane.updateFunction(name, await readJson(req)));
        }
        if (method === 'DELETE') {
          authorize(options, req);
          return sendOutcome(res, await plane.deleteFunction(name));
        }
        throw methodNotAllowed(method, path, 'GET, PATCH, PUT, DELETE');
      case 'nodes':
        if (method !== 'GET' || name !== undefined) throw methodNotAllowed(method, path, 'GET');
        return sendJson(res, 200, { nodes: await plane.nodes() });
      case 'dataplanes':
        if (method !== 'GET' || name !== undefined) throw methodNotAllowed(method, path, 'GET');
        return sendJson(res, 200, { dataplanes: plane.listDataplanes() });
      case 'status':
        if (method !== 'GET' || name !== undefined) throw methodNotAllowed(method, path, 'GET');
        return sendJson(res, 200, plane.status());
      default:
        throw new HttpError(404, 'NOT_FOUND', `no route ${path}`);
    }
  }

  // Dirigent registers functions with a form POST to any path (the loader uses /registerService).
  if (method === 'POST' && (path === '/registerService' || isForm(req))) {
    authorize(options, req);
    const outcome = await plane.registerDirigent(new URLSearchParams(await readText(req)), options.registrationRuntime);
    if (!outcome.ok) return sendText(res, outcome.status, `${outcome.message}\n`);
    // Byte-exact: the data-plane addresses joined by ';', no trailing newline.
    return sendText(res, 200, outcome.value);
  }
  throw new HttpError(404, 'NOT_FOUND', `no route ${method} ${path}`);
}

/**
 * `GET /api/v1/functions/<name>/logs?since=<ms since the epoch>&tail=<lines>&follow=true`: the function's output
 * merged by time, as `{ lines, unreachable }`; with `follow`, a chunked NDJSON stream of one line object each
 * (then, past the first `tail` lines, every new line) until the client goes away, and an `{ error }` object
 * last if the function is deleted meanwhile.
 */
async function serveLogs(plane: ControlPlane, name: string, params: URLSearchParams, res: ServerResponse): Promise<void> {
  for (const key of params.keys()) {
    if (!['since', 'tail', 'follow'].includes(key)) throw new HttpError(400, 'INVALID_QUERY', `unknown query parameter ${JSON.stringify(key)}; known: since, tail, follow`);
  }
  const sinceMs = queryInt(params, 'since', 0, Number.MAX_SAFE_INTEGER, 'ms since the Unix epoch') ?? 0;
  const tail = queryInt(params, 'tail', LOG_TAIL_LIMIT.min, LOG_TAIL_LIMIT.max, LOG_TAIL_LIMIT.unit);
  const follow = params.get('follow');
  if (follow !== null && !['true', 'false', '1', '0', ''].includes(follow)) throw new HttpError(400, 'INVALID_QUERY', `follow must be true or false, got ${JSON.stringify(follow)}`);
  let outcome = await plane.functionLogs(name, { sinceMs, tail });
  if (!outcome.ok || follow === null || follow === 'false' || follow === '0') return sendOutcome(res, outcome);

  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  const gone = new AbortController();
  res.once('close', () => gone.abort());
  let cursor = logCursorFrom(sinceMs);
  let wroteAt = performance.now();
  while (!gone.signal.aborted) {
    if (!outcome.ok) {
      res.write(`${JSON.stringify({ error: { code: outcome.code, message: outcome.message } })}\n`);
      break;
    }
    const next = advanceLogCursor(cursor, outcome.value.lines);
    cursor = next.cursor;
    if (next.fresh.length > 0 || performance.now() - wroteAt >= FOLLOW_KEEPALIVE_MS) {
      res.write(next.fresh.map((line) => `${JSON.stringify(line)}\n`).join('') || '\n');
      wroteAt = performance.now();
    }
    const stopped = await sleep(FOLLOW_POLL_MS, true, { signal: gone.signal }).then(
      () => false,
      () => true,
    );
    if (stopped) break;
    outcome = await plane.functionLogs(name, { sinceMs: cursor.sinceMs }).catch((error: unknown) => ({ ok: false as const, status: 503, code: 'UNAVAILABLE', message: (error as Error).message }));
  }
  res.end();
}

/** An optional integer query parameter in min..max; the error names it, the range and the unit. */
function queryInt(params: URLSearchParams, key: string, min: number, max: number, unit: string): number | undefined {
  const raw = params.get(key);
  if (raw === null) return undefined;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new HttpError(400, 'INVALID_QUERY', `${key} must be an integer in ${min}..${max} ${unit}, got ${JSON.stringify(raw)}`);
  return value;
}

function isForm(req: IncomingMessage): boolean {
  return (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
}

function methodNotAllowed(method: string, path: string, allowed: string): HttpError {
  return new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}; use ${allowed}`);
}

function authorize(options: AdminApiOptions, req: IncomingMessage): void {
  if (options.adminToken === undefined) return;
  if (!secretsMatch((req.headers.authorization ?? '').replace(/^Bearer\s+/i, ''), options.adminToken)) throw new HttpError(401, 'UNAUTHORIZED', 'this request needs Authorization: Bearer <admin token>');
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_ADMIN_BODY_BYTES) throw new HttpError(413, 'BODY_TOO_LARGE', `request body exceeds ${MAX_ADMIN_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readText(req);
  if (text.trim() === '') throw new HttpError(400, 'INVALID_JSON', 'the request body must be a JSON object');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpError(400, 'INVALID_JSON', `the request body is not valid JSON: ${(error as Error).message}`);
  }
}

function sendOutcome<T>(res: ServerResponse, outcome: Outcome<T>, okStatus = 200): void {
  if (outcome.ok) sendJson(res, okStatus, outcome.value);
  else sendJson(res, outcome.status, { error: { code: outcome.code, message: outcome.message, ...(outcome.details === undefined ? {} : { details: outcome.details }) } });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
