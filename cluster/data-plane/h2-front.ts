// The compat port's HTTP/2 side: cleartext HTTP/2 with prior knowledge (h2c), as the in-vitro loader's
// HTTP/2 mode speaks it, on node:http2. It does not listen: compat-front.ts hands it the connections that
// start with the HTTP/2 preface. Same API and the same rules as the uWS front (edge.ts, api.ts):
// `:authority` plays the Host header's part.
import http2, { type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { LogLevel } from '../../runtime/host.js';
import type { InvokeApi } from './api.js';
import { errorResponse, headersWithTiming, requestHeaders, resolveTarget, type EdgeResponse } from './edge.js';

export interface H2FrontOptions {
  /** bytes. */
  readonly maxBodyBytes: number;
}

/** A session without a frame for this long is sent a GOAWAY (its streams still finish), ms: as HTTP/1.1 keep-alive. */
const SESSION_IDLE_MS = 65_000;

export class H2Front {
  private readonly server: Http2Server = http2.createServer();
  private readonly sessions = new Set<Http2Session>();
  /** Streams waiting for their answer; `respond` answers one at most once. */
  private readonly pending = new Set<{ done: boolean; respond: (response: EdgeResponse) => void }>();
  private closing = false;

  constructor(
    private readonly options: H2FrontOptions,
    private readonly api: InvokeApi,
    private readonly log: (level: LogLevel, text: string) => void,
  ) {
    this.server.on('session', (session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
      session.on('error', (error) => log('debug', `h2c session error: ${error.message}`));
      session.setTimeout(SESSION_IDLE_MS, () => session.close());
    });
    this.server.on('stream', (stream, headers) => {
      try {
        this.onStream(stream, headers);
      } catch (error) {
        log('error', `h2c handler failed: ${(error as Error).stack ?? String(error)}`);
        stream.destroy();
      }
    });
  }

  /**
   * Serve a connection whose first bytes (put back with unshift) are the HTTP/2 preface. The socket must be
   * paused and must not be resumed: node:http2 reads what the socket buffered when it takes the connection
   * over, and bytes a flowing socket emitted before that would be lost.
   */
  accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.server.emit('connection', socket);
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const { api, log } = this;
    const maxBodyBytes = this.options.maxBodyBytes;
    // A client resetting its stream emits 'error' here; unheard, it would throw in this thread.
    stream.on('error', (error) => log('debug', `h2c stream error: ${error.message}`));
    const method = String(headers[':method'] ?? 'GET').toUpperCase();
    const fullPath = String(headers[':path'] ?? '/');
    const q = fullPath.indexOf('?');
    const url = q === -1 ? fullPath : fullPath.slice(0, q);
    const query = q === -1 ? '' : fullPath.slice(q + 1);
    const authority = String(headers[':authority'] ?? headers.host ?? '');
    const target = resolveTarget(method, url, query, authority);
    const respond = (response: EdgeResponse) => {
      if (entry.done) return;
      entry.done = true;
      this.pending.delete(entry);
      if (stream.destroyed || stream.closed) return;
      const head = method === 'HEAD' || response.status === 204 || response.status === 304;
      try {
        stream.respond({ ':status': response.status, ...headersWithTiming(response), ...(head ? {} : { 'content-length': String(response.body.byteLength) }) }, { endStream: head });
        if (!head) stream.end(response.body);
      } catch (error) {
        // Node refuses some header sets on HTTP/2 (e.g. connection-specific ones) by throwing.
        log('warn', `h2c response refused by node:http2: ${(error as Error).message}`);
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      }
    };
    const entry = { done: false, respond };
    if (this.closing) {
      respond(errorResponse('UNAVAILABLE', 'the data plane is stopping'));
      return;
    }
    if (target.kind === 'reject') {
      respond(target.response);
      stream.resume(); // discard a body nobody will read
      return;
    }
    const declared = headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBodyBytes) {
      respond(errorResponse('BODY_TOO_LARGE', `the body has ${declared} bytes, more than the data plane's limit of ${maxBodyBytes} bytes`));
      stream.close(http2.constants.NGHTTP2_NO_ERROR);
      return;
    }
    this.pending.add(entry);
    stream.on('close', () => {
      entry.done = true;
      this.pending.delete(entry);
    });
    const chunks: Buffer[] = [];
    let received = 0;
    stream.on('data', (chunk: Buffer) => {
      if (entry.done) return;
      received += chunk.length;
      if (received > maxBodyBytes) {
        respond(errorResponse('BODY_TOO_LARGE', `the body has at least ${received} bytes, more than the data plane's limit of ${maxBodyBytes} bytes`));
        stream.close(http2.constants.NGHTTP2_NO_ERROR);
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => {
      if (entry.done) return;
      const pairs: [string, string][] = [];
      for (const [name, value] of Object.entries(headers)) {
        if (value === undefined) continue;
        // HTTP/2 may split cookies into several fields; they join with '; ' (RFC 9113 8.2.3).
        pairs.push([name, Array.isArray(value) ? value.join(name === 'cookie' ? '; ' : ', ') : String(value)]);
      }
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      api.serve(target, { method, path: target.kind === 'async-get' ? url : target.path, headers: requestHeaders(pairs), body }, respond);
    });
  }

  /** Streams not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Answer pending streams 503 and send every session a GOAWAY; new streams get 503 too. Idempotent. */
  close(): void {
    this.closing = true;
    for (const entry of [...this.pending]) entry.respond(errorResponse('UNAVAILABLE', 'the data plane is stopping'));
    for (const session of this.sessions) session.close();
  }

  /** Destroy the sessions still open (after close() gave them time to finish). */
  destroy(): void {
    for (const session of [...this.sessions]) session.destroy();
  }
}
