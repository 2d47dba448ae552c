// The control plane's admin API: JSON REST for functions, nodes, data planes and cluster status;
// Dirigent-compatible form registration; Prometheus metrics; health; the OpenAPI document.
// Expected outcomes arrive as values from ControlPlane and are mapped to statuses here.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listen, secretsMatch } from '../../runtime/net.js';
import type { ControlPlane, Outcome } from './control-plane.js';
import { renderControlPlaneMetrics } from './metrics.js';
import { openApiDocument } from './openapi.js';

/** Admin request bodies are small JSON or form documents, bytes. */
const MAX_ADMIN_BODY_BYTES = 1024 * 1024;

export interface AdminApiOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** When set, requests that change state need `Authorization: Bearer <token>`. */
  readonly adminToken?: string;
  /** Runtime for Dirigent-form registrations (which only name images). */
  readonly registrationRuntime?: 'thread' | 'simulated';
}

export interface AdminApi {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startAdminApi(plane: ControlPlane, options: AdminApiOptions): Promise<AdminApi> {
  const server: Server = createServer((req, res) => {
    handle(plane, options, req, res).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      const code = error instanceof HttpError ? error.code : 'INTERNAL';
      if (!(error instanceof HttpError)) process.stderr.write(`error admin API ${req.method} ${req.url}: ${(error as Error).stack ?? String(error)}\n`);
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
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function handle(plane: ControlPlane, options: AdminApiOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const method = req.method ?? 'GET';
  const segments = path.split('/').filter(Boolean);

  if (path === '/healthz') return sendText(res, 200, 'ok\n');
  if (path === '/readyz') return sendText(res, 200, 'ready\n');
  if (path === '/metrics') return sendText(res, 200, await renderControlPlaneMetrics(plane), 'text/plain; version=0.0.4');
  if (path === '/openapi.json') return sendJson(res, 200, openApiDocument);

  if (segments[0] === 'api' && segments[1] === 'v1') {
    const resource = segments[2];
    const name = segments[3] === undefined ? undefined : decodeURIComponent(segments[3]);
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
