// The data plane's HTTP/1.1 and WebSocket front on uWebSockets.js, one per shard thread, all listening on
// the same port (uWS sets SO_REUSEPORT, so the kernel spreads connections over the threads).
//
// uWS rules this file follows (each one crashes or corrupts something when broken):
// - An HttpRequest is valid only during the handler: everything needed is read before returning.
// - A response not ended in the handler needs onAborted, and must not be touched after it fired.
// - onData's chunk is neutered when the callback returns: it is copied.
// - Writes from outside a uWS callback (an ask settling) go inside cork().
// - A WebSocket must not be used after its close handler ran.
// - A listen socket, or any connection, still open when the thread exits aborts the whole process, so
//   close() shuts the listen socket first, answers what is pending, ends the WebSockets and closes every
//   remaining connection (idle keep-alive ones included) with app.close().
import { STATUS_CODES } from 'node:http';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from 'uWebSockets.js';
import { DirigentError } from '../../actors/errors.js';
import type { Invocation } from '../../actors/messages.js';
import type { LogLevel } from '../../runtime/host.js';
import { SlotTable } from '../../runtime/slot-table.js';
import type { InvokeApi } from './api.js';
import { addRequestHeader, errorResponse, headersWithTiming, resolveTarget, type EdgeResponse } from './edge.js';
import { FIRST_HEADER_NAME, headerBlock } from './head-bytes.js';
import { UwsNotNativeError, type UwsModule } from './uws.js';
import { WsSession, type WsLimits } from './ws.js';

export interface UwsFrontOptions {
  readonly host: string;
  readonly port: number;
  /** Largest request body, bytes; a larger one is refused with 413 before it is read. */
  readonly maxBodyBytes: number;
  readonly ws: WsLimits;
}

interface Pending {
  readonly res: HttpResponse;
  readonly head: boolean;
  /** Its id in `UwsFront.pending`. */
  id: number;
  aborted: boolean;
  done: boolean;
}

interface WsData {
  session?: WsSession;
}

/** Methods already upper-case as clients send them (others are upper-cased). */
const COMMON_METHODS: ReadonlySet<string> = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']);
const NO_BODY = new Uint8Array(0);
/** Bodies up to this size are written with one end(); larger ones are streamed with tryEnd/onWritable. bytes. */
const STREAM_THRESHOLD_BYTES = 64 * 1024;
/** A WebSocket silent this long is closed; uWS pings before that, so only dead peers hit it. s. */
const WS_IDLE_TIMEOUT_S = 120;

export class UwsFront {
  private listenSocket: us_listen_socket | undefined;
  /** Requests not answered yet (a SlotTable: see there why not a Set). */
  private readonly pending = new SlotTable<Pending>();
  private readonly sessions = new Set<WsSession>();
  private closed = false;

  private constructor(
    private readonly uws: UwsModule,
    private readonly app: TemplatedApp & { close(): void },
    private readonly options: UwsFrontOptions,
    private readonly api: InvokeApi,
    private readonly log: (level: LogLevel, text: string) => void,
  ) {}

  /** Listens on host:port; rejects with LISTEN_FAILED when uWS cannot bind it. */
  static listen(uws: UwsModule, options: UwsFrontOptions, api: InvokeApi, log: (level: LogLevel, text: string) => void): UwsFront {
    const app = uws.App() as TemplatedApp & { close?: () => void };
    if (typeof app.close !== 'function') throw new UwsNotNativeError('this uWebSockets.js build has no App.close(), which a clean shutdown needs');
    const front = new UwsFront(uws, app as TemplatedApp & { close(): void }, options, api, log);
    front.routes();
    let socket: us_listen_socket | false = false;
    // uWS calls the listen callback synchronously.
    app.listen(options.host, options.port, (s) => {
      socket = s;
    });
    if (socket === false) {
      app.close?.();
      throw new DirigentError('LISTEN_FAILED', `uWebSockets.js could not listen on ${options.host}:${options.port} (is another process using the port?)`);
    }
    front.listenSocket = socket;
    return front;
  }

  private routes(): void {
    const o = this.options;
    // A JSON request may carry its body as base64 (4/3 larger) plus fields; anything longer closes the socket.
    const maxPayloadLength = Math.ceil((o.maxBodyBytes * 4) / 3) + 64 * 1024;
    this.app.ws<WsData>('/ws', {
      maxPayloadLength,
      // Our own outbox keeps uWS's buffer near highWaterBytes; this bound is never the one that acts.
      maxBackpressure: o.ws.highWaterBytes + 4 * maxPayloadLength,
      idleTimeout: WS_IDLE_TIMEOUT_S,
      sendPingsAutomatically: true,
      compression: this.uws.DISABLED,
      upgrade: (res, req, context) => {
        if (this.closed) {
          res.writeStatus('503 Service Unavailable').end(undefined, true);
          return;
        }
        res.upgrade<WsData>({}, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
      },
      open: (ws) => {
        const session = new WsSession(
          {
            bufferedAmount: () => ws.getBufferedAmount(),
            // Only ever called inside cork (the session flushes a turn's replies under one).
            send: (data, isBinary) => void ws.send(data, isBinary),
            cork: (fn) => void ws.cork(fn),
            end: (code, reason) => ws.end(code, reason),
          },
          { ...o.ws, maxBodyBytes: o.maxBodyBytes },
          (request, done) => this.api.invoke(request.functionName, { method: request.method, path: request.path, headers: request.headers, body: request.body }, done),
          // Once per turn and socket at most, when that turn produced replies for it.
          (flush) => void setImmediate(this.guard, 'websocket flush', flush),
        );
        ws.getUserData().session = session;
        this.sessions.add(session);
      },
      message: (ws, message, isBinary) => {
        // uWS neuters the frame after this callback. No copy is needed: the session reads it at once, and its
        // msgpack reader copies the byte strings it returns (copyBuffers) rather than viewing the frame.
        this.guard('websocket message', () => ws.getUserData().session?.onMessage(new Uint8Array(message), isBinary));
      },
      drain: (ws) => this.guard('websocket drain', () => ws.getUserData().session?.onDrain()),
      close: (ws: WebSocket<WsData>) => {
        const session = ws.getUserData().session;
        if (session === undefined) return;
        session.onClose();
        this.sessions.delete(session);
      },
    });
    this.app.any('/*', (res, req) => {
      try {
        this.onRequest(res, req);
      } catch (error) {
        // A bug here must not take the shard thread down with it: answer if still possible.
        this.log('error', `data-plane HTTP handler failed: ${(error as Error).stack ?? String(error)}`);
        try {
          res.cork(() => writeResponse(res, errorResponse('INTERNAL_ERROR', 'the data plane failed to handle this request'), false, true));
        } catch {
          // Already answered (uWS refuses a second answer): nothing more to do.
        }
      }
    });
  }

  private readonly guard = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (error) {
      this.log('error', `data-plane ${what} handler failed: ${(error as Error).stack ?? String(error)}`);
    }
  };

  private onRequest(res: HttpResponse, req: HttpRequest): void {
    if (this.closed) {
      writeResponse(res, errorResponse('UNAVAILABLE', 'the data plane is stopping'), false, true);
      return;
    }
    const raw = req.getCaseSensitiveMethod();
    const method = COMMON_METHODS.has(raw) ? raw : raw.toUpperCase();
    const url = req.getUrl();
    const query = req.getQuery() ?? ''; // uWS gives undefined, not '', when there is no query
    // One pass over the headers serves the sandbox's copy, the Host routing and the body's length: every
    // getHeader is a call into uWS and a new string, per request.
    const headers: Record<string, string> = {};
    req.forEach((name, value) => addRequestHeader(headers, name, value));
    const target = resolveTarget(method, url, query, headers['host'] ?? '');
    const head = method === 'HEAD';
    // transfer-encoding is hop-by-hop, so not in `headers`; only a request without a length can be chunked.
    const lengthHeader = headers['content-length'];
    const hasBody = lengthHeader !== undefined ? lengthHeader !== '0' : req.getHeader('transfer-encoding') !== '';
    if (target.kind === 'reject') {
      // An unread body would be parsed as the next request: close the connection when there is one.
      writeResponse(res, target.response, head, hasBody);
      return;
    }
    let expected: number | undefined;
    if (lengthHeader !== undefined) {
      // Repeated content-length headers arrive joined with ', ' and are refused here, as they should be.
      expected = lengthHeader === '0' ? 0 : /^\d{1,15}$/.test(lengthHeader) ? Number(lengthHeader) : NaN;
      if (!Number.isSafeInteger(expected)) {
        writeResponse(res, errorResponse('BAD_REQUEST', `content-length ${JSON.stringify(lengthHeader)} is not a byte count`), head, true);
        return;
      }
      if (expected > this.options.maxBodyBytes) {
        writeResponse(res, tooLarge(expected, this.options.maxBodyBytes), head, true);
        return;
      }
    }
    const pending: Pending = { res, head, id: 0, aborted: false, done: false };
    pending.id = this.pending.add(pending);
    res.onAborted(() => {
      pending.aborted = true;
      this.pending.take(pending.id);
    });
    const serve = (body: Uint8Array) => {
      const invocation: Invocation = { method, path: target.kind === 'async-get' ? url : target.path, headers, body };
      this.api.serve(target, invocation, (response) => this.respond(pending, response, false));
    };
    // Without a body (content-length 0, or neither length nor chunking) there is nothing to read: no onData,
    // which costs a native callback registration and a call per request.
    if (!hasBody) serve(NO_BODY);
    else this.readBody(pending, expected, serve);
  }

  /** Collects the body (copying every chunk) and refuses it with 413 as soon as it passes the limit. */
  private readBody(pending: Pending, expected: number | undefined, then: (body: Uint8Array) => void): void {
    const max = this.options.maxBodyBytes;
    // With a content-length the body lands in one buffer; chunked bodies are gathered and joined once.
    const whole = expected !== undefined && expected > 0 ? Buffer.allocUnsafe(expected) : undefined;
    const chunks: Buffer[] = [];
    let received = 0;
    pending.res.onData((chunk, isLast) => {
      if (pending.aborted || pending.done) return;
      const size = chunk.byteLength;
      if (received + size > max) {
        this.respond(pending, tooLarge(received + size, max), true);
        return;
      }
      if (whole !== undefined && received + size <= whole.length) whole.set(new Uint8Array(chunk), received);
      else if (size > 0) chunks.push(Buffer.from(new Uint8Array(chunk)));
      received += size;
      if (!isLast) return;
      const body = whole !== undefined ? (chunks.length === 0 ? whole.subarray(0, received) : Buffer.concat([whole, ...chunks])) : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      this.guard('request', () => then(body));
    });
  }

  private respond(pending: Pending, response: EdgeResponse, closeConnection: boolean): void {
    if (pending.aborted || pending.done) return;
    pending.done = true;
    this.pending.take(pending.id);
    pending.res.cork(() => writeResponse(pending.res, response, pending.head, closeConnection));
  }

  /** Stop serving: listen socket first, then every request and connection still open. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.listenSocket !== undefined) {
      this.uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
    }
    for (const pending of this.pending.takeAll()) this.respond(pending, errorResponse('UNAVAILABLE', 'the data plane is stopping'), true);
    for (const session of [...this.sessions]) session.end(1001, 'the data plane is stopping');
    this.sessions.clear();
    this.app.close();
  }
}

function tooLarge(bytes: number, max: number): EdgeResponse {
  return errorResponse('BODY_TOO_LARGE', `the body has at least ${bytes} bytes, more than the data plane's limit of ${max} bytes`);
}

/**
 * Status lines and header names as bytes, made once: uWS turns every string argument into a fresh UTF-8 copy
 * (measured at ~0.3 µs per string per response against ~0 for bytes), and a response with no status written is
 * a 200.
 */
const STATUS_LINES = new Map<number, Buffer>();
const HEADER_NAMES = new Map<string, Buffer>();
/** Distinct header names remembered as bytes; past this, names are passed as strings. */
const MAX_HEADER_NAMES = 1024;

function statusLine(status: number): Buffer {
  let line = STATUS_LINES.get(status);
  if (line === undefined) {
    line = Buffer.from(`${status} ${STATUS_CODES[status] ?? 'Status'}`, 'latin1');
    STATUS_LINES.set(status, line);
  }
  return line;
}

function headerName(name: string): Buffer | string {
  let bytes = HEADER_NAMES.get(name);
  if (bytes === undefined) {
    if (HEADER_NAMES.size >= MAX_HEADER_NAMES) return name;
    bytes = Buffer.from(name, 'latin1'); // header names are tokens: ASCII
    HEADER_NAMES.set(name, bytes);
  }
  return bytes;
}

/** Writes a whole response; must run inside the handler or a cork(). */
function writeResponse(res: HttpResponse, response: EdgeResponse, head: boolean, closeConnection: boolean): void {
  if (response.status !== 200) res.writeStatus(statusLine(response.status));
  const block = response.timing === undefined ? undefined : headerBlock(response.headers, response.timing, closeConnection);
  if (block !== undefined) res.writeHeader(FIRST_HEADER_NAME, block);
  else writeHeaderText(res, response.timing === undefined ? response.headers : headersWithTiming(response), closeConnection);
  const body = response.body;
  if (head || response.status === 204 || response.status === 304) {
    res.endWithoutBody(head ? body.byteLength : undefined, closeConnection);
    return;
  }
  if (body.byteLength <= STREAM_THRESHOLD_BYTES || closeConnection) {
    // An empty body as no argument: a typed array costs uWS a backing-store lookup even when empty.
    res.end(body.byteLength === 0 ? undefined : body, closeConnection);
    return;
  }
  // Large bodies: write what the socket takes now, the rest as it drains, without copying the body again.
  const startOffset = res.getWriteOffset();
  const [ok, done] = res.tryEnd(body, body.byteLength);
  if (ok || done) return;
  res.onWritable((offset) => res.tryEnd(body.subarray(offset - startOffset), body.byteLength)[0]);
}

/**
 * The headers as one writeHeader of strings: uWS writes `name: value\r\n` per call, so the other headers ride in
 * the first one's value as `\r\nname: value` lines (values never hold CR or LF: see EdgeResponse).
 */
function writeHeaderText(res: HttpResponse, headers: Readonly<Record<string, string>>, closeConnection: boolean): void {
  let first: string | undefined;
  let block = '';
  for (const name in headers) {
    const value = headers[name]!;
    if (first === undefined) {
      first = name;
      block = value;
    } else block += `\r\n${name}: ${value}`;
  }
  // uWS closes after end(body, true) but does not say so; a client should know not to reuse the connection.
  if (closeConnection && first === undefined) {
    first = 'connection';
    block = 'close';
  } else if (closeConnection) block += '\r\nconnection: close';
  if (first !== undefined) res.writeHeader(headerName(first), block);
}
