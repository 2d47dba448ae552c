// The WebSocket invocation API: many invocations multiplexed on one connection, matched by request id.
//
// A request is a JSON text frame
//   {"id": string|number, "function": string, "method"?: string, "path"?: string,
//    "headers"?: {name: value}, "body"?: string (UTF-8) | "bodyBase64"?: string}
// or a binary msgpack frame with the same fields (body as bytes, or a string). The reply comes in the same
// encoding: {id, status, headers, body, error?} where `error` {code, message} is present when the data plane
// failed the invocation (status and body then are those of the HTTP API). In JSON replies the body is a
// string when it is valid UTF-8 and the request did not use bodyBase64; otherwise it is `bodyBase64`.
// A frame that cannot be read gets an error reply (id null when none could be read); the connection stays.
//
// Backpressure, per connection, so that a client that does not read never costs the others anything:
// replies are sent while uWS buffers at most `highWaterBytes` for the socket; beyond that they wait in an
// outbox, drained by uWS's `drain` event; an outbox over `maxOutboxBytes` closes the connection (1008).
// While the socket is congested (or `maxInFlight` invocations run), new requests are held, not dispatched;
// more than `maxHeld` held requests are answered TOO_MANY_REQUESTS at once. uWS 20.30 cannot pause reading
// a WebSocket, so holding requests is how we stop reading them.
import { Packr } from 'msgpackr';
import { errorResponse, isFunctionName, type EdgeResponse } from './edge.js';

export type WsEncoding = 'json' | 'msgpack';
export type RequestId = string | number;

export interface WsRequest {
  readonly id: RequestId;
  readonly functionName: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
  readonly encoding: WsEncoding;
  /** JSON only: the request's body came as bodyBase64, so the reply's will too. */
  readonly base64: boolean;
}

export interface WsLimits {
  /** Largest request body, bytes. */
  readonly maxBodyBytes: number;
  /** Bytes uWS may buffer for a socket before replies wait in the outbox. */
  readonly highWaterBytes: number;
  /** Replies waiting in the outbox beyond which the connection is closed, bytes. */
  readonly maxOutboxBytes: number;
  /** Invocations running at once per connection. */
  readonly maxInFlight: number;
  /** Requests held (not yet dispatched) per connection. */
  readonly maxHeld: number;
}

export const DEFAULT_WS_LIMITS: Omit<WsLimits, 'maxBodyBytes'> = {
  highWaterBytes: 1024 * 1024,
  maxOutboxBytes: 64 * 1024 * 1024,
  maxInFlight: 1024,
  maxHeld: 4096,
};

const MAX_ID_CHARS = 256;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

type Parsed = { readonly ok: true; readonly request: WsRequest } | { readonly ok: false; readonly id: RequestId | null; readonly encoding: WsEncoding; readonly response: EdgeResponse };

/** Reads one frame. `data` must be a copy the caller owns (uWS neuters its buffer after the callback). */
export function parseFrame(packr: Packr, data: Uint8Array, isBinary: boolean, maxBodyBytes: number): Parsed {
  const encoding: WsEncoding = isBinary ? 'msgpack' : 'json';
  let value: unknown;
  try {
    value = isBinary ? packr.unpack(data) : JSON.parse(decoder.decode(data));
  } catch (error) {
    return bad(null, encoding, `the frame is not valid ${isBinary ? 'msgpack' : 'JSON'}: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return bad(null, encoding, 'a request frame must be an object');
  const frame = value as Record<string, unknown>;
  const id = frame.id;
  const validId = (typeof id === 'string' && id.length <= MAX_ID_CHARS) || (typeof id === 'number' && Number.isFinite(id));
  if (!validId) return bad(null, encoding, `id must be a string of at most ${MAX_ID_CHARS} characters or a finite number`);
  const requestId = id as RequestId;
  const fn = frame.function;
  if (typeof fn !== 'string') return bad(requestId, encoding, 'function must be a string');
  if (!isFunctionName(fn)) return { ok: false, id: requestId, encoding, response: errorResponse('UNKNOWN_FUNCTION', `no function named ${JSON.stringify(fn)} (a function name is a DNS label)`) };
  const method = frame.method ?? 'POST';
  if (typeof method !== 'string' || !/^[A-Za-z]{1,16}$/.test(method)) return bad(requestId, encoding, 'method must be an HTTP method name');
  const path = frame.path ?? '/';
  if (typeof path !== 'string' || !path.startsWith('/') || /[\r\n\0 ]/.test(path)) return bad(requestId, encoding, "path must start with '/' and hold no spaces or control characters");
  const headers = readHeaders(frame.headers);
  if (typeof headers === 'string') return bad(requestId, encoding, headers);
  const body = readBody(frame, isBinary);
  if (typeof body === 'string') return bad(requestId, encoding, body);
  if (body.bytes.byteLength > maxBodyBytes) {
    return { ok: false, id: requestId, encoding, response: errorResponse('BODY_TOO_LARGE', `the body has ${body.bytes.byteLength} bytes, more than the data plane's limit of ${maxBodyBytes} bytes`) };
  }
  return { ok: true, request: { id: requestId, functionName: fn, method: method.toUpperCase(), path, headers, body: body.bytes, encoding, base64: body.base64 } };
}

function bad(id: RequestId | null, encoding: WsEncoding, message: string): Parsed {
  return { ok: false, id, encoding, response: errorResponse('BAD_REQUEST', message) };
}

function readHeaders(value: unknown): Record<string, string> | string {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'headers must be an object of strings';
  const headers: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    if (typeof v !== 'string') return `header ${JSON.stringify(name)} must be a string`;
    const lower = name.toLowerCase();
    if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(lower) || /[\r\n\0]/.test(v)) return `header ${JSON.stringify(name)} has an invalid name or value`;
    headers[lower] = v;
  }
  return headers;
}

function readBody(frame: Record<string, unknown>, isBinary: boolean): { bytes: Uint8Array; base64: boolean } | string {
  const body = frame.body;
  const b64 = frame.bodyBase64;
  if (body !== undefined && b64 !== undefined) return 'give body or bodyBase64, not both';
  if (typeof b64 === 'string') {
    if (isBinary) return 'bodyBase64 is for JSON frames; a msgpack frame carries body as bytes';
    if (b64.length % 4 !== 0 || !BASE64.test(b64)) return 'bodyBase64 is not valid base64';
    return { bytes: Buffer.from(b64, 'base64'), base64: true };
  }
  if (b64 !== undefined) return 'bodyBase64 must be a string';
  if (body === undefined || body === null) return { bytes: new Uint8Array(0), base64: false };
  if (typeof body === 'string') return { bytes: encoder.encode(body), base64: false };
  if (isBinary && body instanceof Uint8Array) return { bytes: body, base64: false };
  return isBinary ? 'body must be bytes or a string' : 'body must be a string (use bodyBase64 for bytes)';
}

/** The reply frame for a request (or an unreadable frame) in its encoding. */
export function encodeReply(packr: Packr, id: RequestId | null, encoding: WsEncoding, base64: boolean, response: EdgeResponse): Uint8Array | string {
  // Built by assignment, not spread: this runs once per reply.
  const reply: Record<string, unknown> = { id, status: response.status, headers: response.headers };
  if (encoding === 'msgpack') {
    reply.body = response.body;
    if (response.error) reply.error = response.error;
    return Buffer.from(packr.pack(reply));
  }
  let text: string | undefined;
  if (!base64) {
    try {
      text = decoder.decode(response.body);
    } catch {
      text = undefined; // not UTF-8: send it as base64
    }
  }
  if (text === undefined) reply.bodyBase64 = Buffer.from(response.body.buffer, response.body.byteOffset, response.body.byteLength).toString('base64');
  else reply.body = text;
  if (response.error) reply.error = response.error;
  return JSON.stringify(reply);
}

/** What a session needs of its socket (a uWS WebSocket in production, a fake in tests). */
export interface WsPort {
  bufferedAmount(): number;
  send(data: Uint8Array | string, isBinary: boolean): void;
  end(code: number, reason: string): void;
}

export type Dispatch = (request: WsRequest, done: (response: EdgeResponse) => void) => void;

/** One connection's multiplexing and backpressure bookkeeping. */
export class WsSession {
  private readonly packr = new Packr({ useRecords: false });
  private readonly held: WsRequest[] = [];
  private readonly outbox: { data: Uint8Array | string; isBinary: boolean; bytes: number }[] = [];
  private outboxBytes = 0;
  private inFlight = 0;
  private closed = false;

  constructor(
    private readonly port: WsPort,
    private readonly limits: WsLimits,
    private readonly dispatch: Dispatch,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  get heldCount(): number {
    return this.held.length;
  }

  get queuedReplies(): number {
    return this.outbox.length;
  }

  onMessage(data: Uint8Array, isBinary: boolean): void {
    if (this.closed) return;
    const parsed = parseFrame(this.packr, data, isBinary, this.limits.maxBodyBytes);
    if (!parsed.ok) {
      this.deliver(parsed.id, parsed.encoding, false, parsed.response);
      return;
    }
    if (this.congested() || this.held.length > 0) {
      if (this.held.length >= this.limits.maxHeld) {
        this.deliver(parsed.request.id, parsed.request.encoding, parsed.request.base64, errorResponse('TOO_MANY_REQUESTS', `this connection has ${this.held.length} requests waiting: read the replies before sending more`));
        return;
      }
      this.held.push(parsed.request);
      return;
    }
    this.start(parsed.request);
  }

  /** uWS drained some of the socket's buffer. */
  onDrain(): void {
    this.flush();
    this.pump();
  }

  /** The socket closed: nothing may touch it any more; results still to come are dropped. */
  onClose(): void {
    this.closed = true;
    this.held.length = 0;
    this.outbox.length = 0;
    this.outboxBytes = 0;
  }

  /** Close from our side (too many unread replies, or the data plane is stopping). */
  end(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.port.end(code, reason);
  }

  private congested(): boolean {
    return this.outbox.length > 0 || this.inFlight >= this.limits.maxInFlight || this.port.bufferedAmount() > this.limits.highWaterBytes;
  }

  private start(request: WsRequest): void {
    this.inFlight += 1;
    let answered = false;
    this.dispatch(request, (response) => {
      if (answered) return;
      answered = true;
      this.inFlight -= 1;
      if (this.closed) return;
      this.deliver(request.id, request.encoding, request.base64, response);
      this.pump();
    });
  }

  private pump(): void {
    while (!this.closed && this.held.length > 0 && !this.congested()) this.start(this.held.shift()!);
  }

  private deliver(id: RequestId | null, encoding: WsEncoding, base64: boolean, response: EdgeResponse): void {
    if (this.closed) return;
    const data = encodeReply(this.packr, id, encoding, base64, response);
    const isBinary = encoding === 'msgpack';
    if (this.outbox.length === 0 && this.port.bufferedAmount() <= this.limits.highWaterBytes) {
      this.port.send(data, isBinary);
      return;
    }
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    this.outbox.push({ data, isBinary, bytes });
    this.outboxBytes += bytes;
    if (this.outboxBytes > this.limits.maxOutboxBytes) this.end(1008, 'too many unread replies');
  }

  private flush(): void {
    while (!this.closed && this.outbox.length > 0 && this.port.bufferedAmount() <= this.limits.highWaterBytes) {
      const next = this.outbox.shift()!;
      this.outboxBytes -= next.bytes;
      this.port.send(next.data, next.isBinary);
    }
  }
}
