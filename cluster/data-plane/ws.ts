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
// The replies produced in one event-loop turn leave together, under one cork (a few writes, not one each);
// their order on a connection is the order they were produced in.
//
// Backpressure, per connection, so that a client that does not read never costs the others anything:
// replies are sent while uWS buffers at most `highWaterBytes` for the socket; beyond that they wait in an
// outbox, drained by uWS's `drain` event; an outbox over `maxOutboxBytes` closes the connection (1008).
// While the socket is congested (or `maxInFlight` invocations run), new requests are held, not dispatched;
// more than `maxHeld` held requests are answered TOO_MANY_REQUESTS at once. uWS 20.30 cannot pause reading
// a WebSocket, so holding requests is how we stop reading them.
import { Packr } from 'msgpackr';
import { errorResponse, headersWithTiming, isFunctionName, type EdgeResponse } from './edge.js';
import { packReply } from './msgpack-reply.js';

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

/**
 * Reads one frame. Nothing returned views `data` when `packr` has copyBuffers set (the caller may then pass
 * uWS's frame, which is neutered after its callback); without it, `data` must be a copy the caller owns.
 */
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

/** Shared by every request without headers (frozen: no one adds to a request's headers). */
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

function readHeaders(value: unknown): Record<string, string> | string {
  if (value === undefined) return NO_HEADERS;
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

/** Shared by every request without a body: no one writes to a request body, and this one has no bytes to write. */
const NO_BODY: { readonly bytes: Uint8Array; readonly base64: false } = { bytes: new Uint8Array(0), base64: false };

function readBody(frame: Record<string, unknown>, isBinary: boolean): { readonly bytes: Uint8Array; readonly base64: boolean } | string {
  const body = frame.body;
  const b64 = frame.bodyBase64;
  if (body !== undefined && b64 !== undefined) return 'give body or bodyBase64, not both';
  if (typeof b64 === 'string') {
    if (isBinary) return 'bodyBase64 is for JSON frames; a msgpack frame carries body as bytes';
    if (b64.length % 4 !== 0 || !BASE64.test(b64)) return 'bodyBase64 is not valid base64';
    return { bytes: Buffer.from(b64, 'base64'), base64: true };
  }
  if (b64 !== undefined) return 'bodyBase64 must be a string';
  if (body === undefined || body === null) return NO_BODY;
  if (typeof body === 'string') return { bytes: encoder.encode(body), base64: false };
  if (isBinary && body instanceof Uint8Array) return { bytes: body, base64: false };
  return isBinary ? 'body must be bytes or a string' : 'body must be a string (use bodyBase64 for bytes)';
}

/**
 * The reply frame for a request (or an unreadable frame) in its encoding. A msgpack frame is a view into an
 * encoder's buffer, valid until the next reply is encoded, unless `copy` (the default): a caller that does not
 * keep it (uWS's send copies) passes false. `packr` encodes the replies the reply encoder does not take.
 */
export function encodeReply(packr: Packr, id: RequestId | null, encoding: WsEncoding, base64: boolean, response: EdgeResponse, copy = true): Uint8Array | string {
  if (encoding === 'msgpack') {
    let packed: Uint8Array | undefined = packReply(id, response);
    if (packed === undefined) {
      const reply: Record<string, unknown> = { id, status: response.status, headers: headersWithTiming(response), body: response.body };
      if (response.error) reply.error = response.error;
      packed = packr.pack(reply);
    }
    return copy ? Buffer.from(packed) : packed;
  }
  // Built by assignment, not spread: this runs once per reply.
  const reply: Record<string, unknown> = { id, status: response.status, headers: headersWithTiming(response) };
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
  /** Sends one message; called only inside `cork`. uWS copies `data` before it returns. */
  send(data: Uint8Array | string, isBinary: boolean): void;
  /** Runs `fn`, whose sends leave together (uWS: one write for what fits its cork buffer). */
  cork(fn: () => void): void;
  end(code: number, reason: string): void;
}

export type Dispatch = (request: WsRequest, done: (response: EdgeResponse) => void) => void;

/** Runs a session's flush once the current event-loop turn's replies are in. */
export type FlushScheduler = (flush: () => void) => void;
/** Runs `check` once, `ms` from now (the backlog watchdog's timer). */
export type CheckTimer = (check: () => void, ms: number) => void;

/** How often a session looks at bytes uWS holds for its socket, ms (see WsSession.watchBacklog). */
export const BACKLOG_CHECK_MS = 25;
const unrefTimer: CheckTimer = (check, ms) => void setTimeout(check, ms).unref();
const nothing = (): void => undefined;

/** Whom a reply answers, and in which encoding (a WsRequest is one). */
export interface ReplyTarget {
  readonly id: RequestId | null;
  readonly encoding: WsEncoding;
  /** JSON only: the body goes back as bodyBase64. */
  readonly base64: boolean;
}

/** A reply the socket was too congested to take: encoded, waiting for uWS's drain. */
interface Parked {
  readonly data: Uint8Array | string;
  readonly isBinary: boolean;
  readonly bytes: number;
}

/**
 * One connection's multiplexing and backpressure bookkeeping.
 *
 * Replies are not sent one by one: those produced in one event-loop turn are collected (unsent) and sent by
 * one flush, scheduled by the first of them, under one cork, so that they leave in a few writes rather than
 * a syscall each. The flush encodes and offers them in order while uWS buffers at most `highWaterBytes`; the
 * rest wait, in order, in the outbox (`parked`) until uWS's drain. While the outbox is not empty a new reply
 * goes straight to its end, so the unsent and the parked replies are never both there, and order is kept.
 */
export class WsSession {
  /** copyBuffers: a request's body must not view the frame it came in (see parseFrame). */
  private readonly packr = new Packr({ useRecords: false, copyBuffers: true });
  private readonly held: WsRequest[] = [];
  private heldHead = 0;
  /** This turn's replies, not yet offered to the socket: whom each answers, and the response. */
  private unsentTo: ReplyTarget[] = [];
  private unsentResponses: EdgeResponse[] = [];
  /** The other pair of arrays the unsent ones alternate with (no arrays per flush). */
  private spareTo: ReplyTarget[] = [];
  private spareResponses: EdgeResponse[] = [];
  private readonly parked: Parked[] = [];
  private parkedHead = 0;
  private parkedBytes = 0;
  private flushScheduled = false;
  /** The outbox passed maxOutboxBytes during a cork: the connection closes (1008) once the cork is done. */
  private overflowed = false;
  private inFlight = 0;
  private closed = false;
  /** uWS drain events so far, and whether the backlog watchdog's timer is pending. */
  private drains = 0;
  private watching = false;

  constructor(
    private readonly port: WsPort,
    private readonly limits: WsLimits,
    private readonly dispatch: Dispatch,
    /** Runs the flush once this turn's replies are in; setImmediate by default. */
    private readonly schedule: FlushScheduler = setImmediate,
    private readonly checkLater: CheckTimer = unrefTimer,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** Invocations dispatched and not answered yet. */
  get inFlightCount(): number {
    return this.inFlight;
  }

  get heldCount(): number {
    return this.held.length - this.heldHead;
  }

  /** Replies not yet handed to the socket: this turn's, and those waiting for a drain. */
  get queuedReplies(): number {
    return this.unsentTo.length + this.parked.length - this.parkedHead;
  }

  onMessage(data: Uint8Array, isBinary: boolean): void {
    if (this.closed) return;
    const parsed = parseFrame(this.packr, data, isBinary, this.limits.maxBodyBytes);
    if (!parsed.ok) {
      this.deliver({ id: parsed.id, encoding: parsed.encoding, base64: false }, parsed.response);
      return;
    }
    const request = parsed.request;
    if (this.heldCount > 0 || this.congested()) {
      if (this.heldCount >= this.limits.maxHeld) {
        this.deliver(request, errorResponse('TOO_MANY_REQUESTS', `this connection has ${this.heldCount} requests waiting: read the replies before sending more`));
        return;
      }
      this.held.push(request);
      return;
    }
    this.start(request);
  }

  /** uWS drained some of the socket's buffer. */
  onDrain(): void {
    this.drains += 1;
    this.flush();
    this.pump();
  }

  /** The socket closed: nothing may touch it any more; results still to come are dropped. */
  onClose(): void {
    this.closed = true;
    this.held.length = 0;
    this.heldHead = 0;
    this.unsentTo.length = 0;
    this.unsentResponses.length = 0;
    this.parked.length = 0;
    this.parkedHead = 0;
    this.parkedBytes = 0;
  }

  /** Close from our side (the data plane is stopping): this turn's replies go first, as far as the socket takes them. */
  end(code: number, reason: string): void {
    if (this.closed) return;
    this.flush();
    this.close(code, reason);
  }

  private close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.port.end(code, reason);
  }

  private congested(): boolean {
    return this.parkedHead < this.parked.length || this.inFlight >= this.limits.maxInFlight || this.port.bufferedAmount() > this.limits.highWaterBytes;
  }

  private start(request: WsRequest): void {
    this.inFlight += 1;
    let answered = false;
    this.dispatch(request, (response) => {
      if (answered) return;
      answered = true;
      this.inFlight -= 1;
      if (this.closed) return;
      this.deliver(request, response);
      this.pump();
    });
  }

  private pump(): void {
    while (!this.closed && this.heldHead < this.held.length && !this.congested()) {
      const request = this.held[this.heldHead]!;
      this.held[this.heldHead++] = undefined as unknown as WsRequest;
      if (this.heldHead === this.held.length) {
        this.held.length = 0;
        this.heldHead = 0;
      }
      this.start(request);
    }
  }

  private deliver(to: ReplyTarget, response: EdgeResponse): void {
    if (this.closed) return;
    if (this.parkedHead < this.parked.length) {
      // The socket is congested: behind what already waits for the drain.
      this.park(to, response);
      if (this.overflowed) this.close(1008, 'too many unread replies');
      return;
    }
    this.unsentTo.push(to);
    this.unsentResponses.push(response);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.schedule(this.scheduledFlush);
    }
  }

  private readonly scheduledFlush = (): void => {
    this.flushScheduled = false;
    this.flush();
    // A flush that emptied the outbox may let held requests start (as a drain would).
    this.pump();
  };

  /**
   * uWS can stop polling a socket for writability while it still holds bytes for it: seen under CPU
   * contention, the last reply sat in its buffer with the client reading and no drain ever came. So while uWS
   * holds any, look again every BACKLOG_CHECK_MS; a backlog that did not move, with no drain since, gets an
   * empty cork, on which uWS writes what it holds (and polls again for what the socket does not take).
   */
  private watchBacklog(): void {
    if (this.watching || this.closed) return;
    const held = this.port.bufferedAmount();
    if (held === 0) return;
    const drains = this.drains;
    this.watching = true;
    this.checkLater(() => {
      this.watching = false;
      if (this.closed) return;
      if (this.drains === drains && this.port.bufferedAmount() === held) this.port.cork(nothing);
      this.watchBacklog();
    }, BACKLOG_CHECK_MS);
  }

  /** Offers the outbox, then this turn's replies, in order, to the socket under one cork. */
  private flush(): void {
    if (this.closed || (this.unsentTo.length === 0 && this.parkedHead === this.parked.length)) return;
    this.port.cork(this.sendQueued);
    this.watchBacklog();
    if (this.overflowed) {
      this.close(1008, 'too many unread replies');
      return;
    }
    // Inside a cork the buffered amount counts what the cork itself collected. If uncorking wrote it all,
    // there is no backpressure and uWS will never fire a drain: offer what is still parked next turn.
    if (this.parkedHead < this.parked.length && this.port.bufferedAmount() <= this.limits.highWaterBytes && !this.flushScheduled) {
      this.flushScheduled = true;
      this.schedule(this.scheduledFlush);
    }
  }

  private readonly sendQueued = (): void => {
    const port = this.port;
    const highWater = this.limits.highWaterBytes;
    while (this.parkedHead < this.parked.length) {
      if (port.bufferedAmount() > highWater) break;
      const next = this.parked[this.parkedHead]!;
      this.parked[this.parkedHead++] = undefined as unknown as Parked;
      this.parkedBytes -= next.bytes;
      port.send(next.data, next.isBinary);
    }
    if (this.parkedHead === this.parked.length) {
      this.parked.length = 0;
      this.parkedHead = 0;
    }
    const to = this.unsentTo;
    const responses = this.unsentResponses;
    const count = to.length;
    if (count === 0) return;
    this.unsentTo = this.spareTo;
    this.unsentResponses = this.spareResponses;
    let i = 0;
    if (this.parked.length === 0) {
      for (; i < count && port.bufferedAmount() <= highWater; i++) {
        const target = to[i]!;
        // Sent straight from msgpackr's buffer: uWS copies it before send returns.
        port.send(encodeReply(this.packr, target.id, target.encoding, target.base64, responses[i]!, false), target.encoding === 'msgpack');
      }
    }
    for (; i < count && !this.overflowed; i++) this.park(to[i]!, responses[i]!);
    to.length = 0;
    responses.length = 0;
    this.spareTo = to;
    this.spareResponses = responses;
  };

  private park(to: ReplyTarget, response: EdgeResponse): void {
    const data = encodeReply(this.packr, to.id, to.encoding, to.base64, response);
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    this.parked.push({ data, isBinary: to.encoding === 'msgpack', bytes });
    this.parkedBytes += bytes;
    if (this.parkedBytes > this.limits.maxOutboxBytes) this.overflowed = true;
  }
}
