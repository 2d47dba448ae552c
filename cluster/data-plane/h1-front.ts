// The compat port's HTTP/1.1 side, on node:http: unlike our uWS build it accepts header names with
// underscores, which Dirigent's loader sends (`requested_cpu`, `requested_memory`). It does not listen:
// compat-front.ts owns the node:http server and passes its requests here. Same API and the same rules as
// the uWS front (edge.ts, api.ts); node:http's parser itself answers malformed requests with 400.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LogLevel } from '../../runtime/host.js';
import type { InvokeApi } from './api.js';
import { addRequestHeader, errorResponse, headersWithTiming, resolveTarget, type EdgeResponse } from './edge.js';

export interface H1FrontOptions {
  /** Largest request body, bytes; a larger one is refused with 413 (before it is read when its length is declared). */
  readonly maxBodyBytes: number;
}

interface Pending {
  readonly res: ServerResponse;
  readonly head: boolean;
  done: boolean;
}

export class H1Front {
  private readonly pending = new Set<Pending>();
  private closing = false;

  constructor(
    private readonly options: H1FrontOptions,
    private readonly api: InvokeApi,
    private readonly log: (level: LogLevel, text: string) => void,
  ) {}

  /** node:http's 'request' handler; for its 'checkContinue', `expectContinue` is true. */
  onRequest(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    // A client going away mid-body makes req emit 'error'; unheard, it would throw.
    req.on('error', (error) => this.log('debug', `compat HTTP/1.1 request error: ${error.message}`));
    const pending: Pending = { res, head: req.method === 'HEAD', done: false };
    res.on('close', () => {
      pending.done = true; // answered, or the connection is gone: never written again
      this.pending.delete(pending);
    });
    this.pending.add(pending);
    try {
      this.serve(req, pending, expectContinue);
    } catch (error) {
      this.log('error', `compat HTTP/1.1 handler failed: ${(error as Error).stack ?? String(error)}`);
      this.respond(pending, errorResponse('INTERNAL_ERROR', 'the data plane failed to handle this request'), true);
    }
  }

  private serve(req: IncomingMessage, pending: Pending, expectContinue: boolean): void {
    if (this.closing) return this.respond(pending, errorResponse('UNAVAILABLE', 'the data plane is stopping'), true);
    const method = (req.method ?? 'GET').toUpperCase();
    const where = requestTarget(req.url ?? '/', req.headers.host ?? '');
    if (where === undefined) return this.respond(pending, errorResponse('BAD_REQUEST', `the request target ${JSON.stringify(req.url)} is not a path`), true);
    const target = resolveTarget(method, where.url, where.query, where.host);
    const declared = req.headers['content-length'];
    // An unread body would otherwise be read and thrown away before the connection can serve the next request.
    if (target.kind === 'reject') return this.respond(pending, target.response, declared !== undefined ? declared !== '0' : req.headers['transfer-encoding'] !== undefined);
    const max = this.options.maxBodyBytes;
    // node:http's parser has checked content-length already: digits only, never two different values.
    if (declared !== undefined && Number(declared) > max) return this.respond(pending, tooLarge(Number(declared), max), true);
    const headers: Record<string, string> = {};
    const raw = req.rawHeaders; // as sent, repeats included (req.headers drops some repeats)
    for (let i = 0; i + 1 < raw.length; i += 2) addRequestHeader(headers, raw[i]!.toLowerCase(), raw[i + 1]!);
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      if (pending.done) return;
      received += chunk.length;
      if (received > max) return this.respond(pending, tooLarge(received, max), true);
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (pending.done) return;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      this.api.serve(target, { method, path: target.kind === 'async-get' ? where.url : target.path, headers, body }, (response) => this.respond(pending, response, false));
    });
    if (expectContinue) pending.res.writeContinue();
  }

  private respond(pending: Pending, response: EdgeResponse, closeConnection: boolean): void {
    if (pending.done) return;
    pending.done = true;
    this.pending.delete(pending);
    const res = pending.res;
    if (res.destroyed || res.headersSent) return;
    try {
      write(res, response, pending.head, closeConnection);
    } catch (error) {
      // node:http refuses header values with control characters that edge.ts lets through (it checks CR, LF, NUL).
      this.log('warn', `compat HTTP/1.1 response refused by node:http: ${(error as Error).message}`);
      try {
        write(res, errorResponse('BAD_SANDBOX_RESPONSE', 'the sandbox answered a header HTTP/1.1 cannot carry'), pending.head, closeConnection);
      } catch {
        res.destroy();
      }
    }
  }

  /** Requests not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** New requests get 503 (their connection closed); those in flight are still answered. */
  refuseNew(): void {
    this.closing = true;
  }

  /** Answer pending requests 503 (closing their connections); later requests get 503 too. Idempotent. */
  close(): void {
    this.closing = true;
    for (const pending of [...this.pending]) this.respond(pending, errorResponse('UNAVAILABLE', 'the data plane is stopping'), true);
  }
}

function write(res: ServerResponse, response: EdgeResponse, head: boolean, closeConnection: boolean): void {
  const headers = headersWithTiming(response);
  const noBody = response.status === 204 || response.status === 304;
  if (!noBody) headers['content-length'] = String(response.body.byteLength);
  if (closeConnection) headers.connection = 'close'; // node:http then ends the connection after this response
  res.writeHead(response.status, headers);
  res.end(head || noBody ? undefined : response.body);
}

/**
 * The path, query and host of a request target: origin-form (`/path?query`), or absolute-form
 * (`http://host/path`), whose authority replaces the Host header (RFC 9112 3.2.2). Undefined for anything else.
 */
export function requestTarget(target: string, host: string): { url: string; query: string; host: string } | undefined {
  let path = target;
  if (!target.startsWith('/')) {
    if (!/^https?:\/\//i.test(target) || !URL.canParse(target)) return undefined;
    const parsed = new URL(target);
    host = parsed.host;
    path = parsed.pathname + parsed.search;
  }
  const q = path.indexOf('?');
  return q === -1 ? { url: path, query: '', host } : { url: path.slice(0, q), query: path.slice(q + 1), host };
}

function tooLarge(bytes: number, max: number): EdgeResponse {
  return errorResponse('BODY_TOO_LARGE', `the body has at least ${bytes} bytes, more than the data plane's limit of ${max} bytes`);
}
