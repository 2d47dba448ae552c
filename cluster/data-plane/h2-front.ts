// The data plane's cleartext HTTP/2 front (h2c with prior knowledge), for the in-vitro loader's HTTP/2 mode.
//
// Why a second port in the main thread: uWS has no HTTP/2, and the connection preface cannot be sniffed on
// the uWS port and handed over. Node's http2 server cannot share a port between worker threads either (no
// SO_REUSEPORT in Node 20), so one h2c listener runs in the thread that owns the runtime and asks the routers
// through it (one cross-thread hop, like a uWS shard whose router lives on another shard). Same API and the
// same rules as the uWS front (edge.ts, api.ts): `:authority` plays the Host header's part.
import http2, { type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { LogLevel } from '../../runtime/host.js';
import type { InvokeApi } from './api.js';
import { errorResponse, requestHeaders, resolveTarget, type EdgeResponse } from './edge.js';

export interface H2FrontOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** bytes. */
  readonly maxBodyBytes: number;
}

/** How long close() lets open sessions finish their streams before destroying them, ms. */
const CLOSE_GRACE_MS = 1000;

export class H2Front {
  private readonly sessions = new Set<Http2Session>();
  private readonly pending = new Set<{ stream: ServerHttp2Stream; done: boolean }>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Http2Server,
    readonly port: number,
  ) {}

  static async listen(options: H2FrontOptions, api: InvokeApi, log: (level: LogLevel, text: string) => void): Promise<H2Front> {
    const server = http2.createServer();
    let front: H2Front | undefined;
    server.on('session', (session) => {
      front?.sessions.add(session);
      session.on('close', () => front?.sessions.delete(session));
      session.on('error', (error) => log('debug', `h2c session error: ${error.message}`));
    });
    server.on('stream', (stream, headers) => {
      try {
        front?.onStream(stream, headers, options.maxBodyBytes, api, log);
      } catch (error) {
        log('error', `h2c handler failed: ${(error as Error).stack ?? String(error)}`);
        stream.destroy();
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    front = new H2Front(server, typeof address === 'object' && address ? address.port : options.port);
    return front;
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, maxBodyBytes: number, api: InvokeApi, log: (level: LogLevel, text: string) => void): void {
    // A client resetting its stream emits 'error' here; unheard, it would throw in this thread.
    stream.on('error', (error) => log('debug', `h2c stream error: ${error.message}`));
    const method = String(headers[':method'] ?? 'GET').toUpperCase();
    const fullPath = String(headers[':path'] ?? '/');
    const q = fullPath.indexOf('?');
    const url = q === -1 ? fullPath : fullPath.slice(0, q);
    const query = q === -1 ? '' : fullPath.slice(q + 1);
    const authority = String(headers[':authority'] ?? headers.host ?? '');
    const target = resolveTarget(method, url, query, authority);
    const entry = { stream, done: false };
    const respond = (response: EdgeResponse) => {
      if (entry.done) return;
      entry.done = true;
      this.pending.delete(entry);
      if (stream.destroyed || stream.closed) return;
      const head = method === 'HEAD' || response.status === 204 || response.status === 304;
      try {
        stream.respond({ ':status': response.status, ...response.headers, ...(head ? {} : { 'content-length': String(response.body.byteLength) }) }, { endStream: head });
        if (!head) stream.end(response.body);
      } catch (error) {
        // Node refuses some header sets on HTTP/2 (e.g. connection-specific ones) by throwing.
        log('warn', `h2c response refused by node:http2: ${(error as Error).message}`);
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      }
    };
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

  /** Stop accepting, answer pending requests 503, let sessions end, then destroy what is left. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const closed = new Promise<void>((done) => this.server.close(() => done()));
      for (const entry of [...this.pending]) {
        entry.done = true;
        if (!entry.stream.destroyed && !entry.stream.closed && !entry.stream.headersSent) {
          const response = errorResponse('UNAVAILABLE', 'the data plane is stopping');
          entry.stream.respond({ ':status': response.status, ...response.headers });
          entry.stream.end(response.body);
        }
      }
      this.pending.clear();
      for (const session of this.sessions) session.close();
      const timer = setTimeout(() => {
        for (const session of this.sessions) session.destroy();
      }, CLOSE_GRACE_MS);
      void closed.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.closing;
  }
}
