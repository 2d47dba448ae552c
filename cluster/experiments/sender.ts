// Sends the loader's invocation request over HTTP/1.1 keep-alive: `POST /` to the address registration
// returned, the function named by the Host header, the trace function's parameters as headers
// (vhive-serverless/loader, pkg/driver/clients/http_client.go). Open loop: `send` never waits for an answer.
// Bounded: at most `maxSockets` connections per address (requests beyond wait for one, and that wait counts in
// their response time, as in the loader's Go transport), at most `maxPending` requests at once (beyond that a
// request fails at once, marked as a connection failure: the client, not the system, was the limit), and each
// request at most `timeoutMs` from send to the end of its answer.
//
// A small HTTP/1.1 client of its own on net sockets, not node:http: measured here, node:http's client cost
// ~500 µs of CPU per request (a bare server answering it ~170 µs), so at a few hundred requests a second on 2
// shared cores the sender fell behind its own schedule by a second and more; and its agent closes idle
// connections beyond 256, so every burst paid a connect per request again. This one writes a request as one
// string and reads only what the replay needs: status, content-length or chunked body, `connection: close`,
// `x-dirigent-cold-start` and `x-dirigent-queue-ms`.
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface SenderOptions {
  /** Connections per address. */
  readonly maxSockets: number;
  /** Requests sent and not yet answered, at most. */
  readonly maxPending: number;
  /** Send -> answer read, ms. */
  readonly timeoutMs: number;
}

export interface SendResult {
  /** µs since the Unix epoch. */
  readonly startTimeUs: number;
  /** Send -> answer read, µs. */
  readonly responseTimeUs: number;
  /** 0 without an answer. */
  readonly status: number;
  readonly body: string;
  /** `x-dirigent-cold-start` of the answer; undefined without one. */
  readonly coldStart?: boolean;
  /** `x-dirigent-queue-ms` of the answer, ms; undefined without one. */
  readonly queueMs?: number;
  /** Why there is no answer. */
  readonly error?: string;
}

/** An idle connection older than this is closed rather than reused (servers close theirs after ~5-65 s), ms. */
const IDLE_REUSE_MS = 4000;
const HEAD_END = Buffer.from('\r\n\r\n');
/** A response head larger than this is refused, bytes. */
const MAX_HEAD_BYTES = 64 * 1024;

interface Request {
  readonly head: string;
  readonly startedAt: number;
  readonly startTimeUs: number;
  readonly done: (result: SendResult) => void;
  timer?: NodeJS.Timeout;
  /** The connection carrying it, once it has one. */
  connection?: Connection;
}

interface Pool {
  readonly host: string;
  readonly port: number;
  readonly idle: Connection[];
  readonly waiting: Request[];
  count: number;
}

class Connection {
  readonly socket: net.Socket;
  request: Request | undefined;
  idleSince = 0;
  private buffer: Buffer = Buffer.alloc(0);
  private status = 0;
  private coldStart: boolean | undefined;
  private queueMs: number | undefined;
  private close = false;
  /** -1: still reading the head; -2: chunked; else the body length. */
  private bodyLength = -1;
  private closed = false;

  constructor(
    readonly pool: Pool,
    private readonly sender: HttpSender,
  ) {
    this.socket = net.connect({ host: pool.host, port: pool.port });
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (error) => this.onClose(error.message));
    this.socket.on('close', () => this.onClose('the connection closed before the answer'));
  }

  start(request: Request): void {
    this.request = request;
    request.connection = this;
    this.buffer = Buffer.alloc(0);
    this.bodyLength = -1;
    this.coldStart = undefined;
    this.queueMs = undefined;
    this.close = false;
    this.socket.write(request.head, 'latin1');
  }

  private onData(chunk: Buffer): void {
    if (this.request === undefined) return this.onClose('data without a request');
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    if (this.bodyLength === -1) {
      const end = this.buffer.indexOf(HEAD_END);
      if (end === -1) {
        if (this.buffer.length > MAX_HEAD_BYTES) this.fail('a response head over 64 KiB');
        return;
      }
      if (!this.parseHead(this.buffer.toString('latin1', 0, end))) return;
      this.buffer = this.buffer.subarray(end + 4);
    }
    if (this.bodyLength === -2) {
      const body = dechunk(this.buffer);
      if (body === undefined) return;
      return this.finish(body.toString('utf8'));
    }
    if (this.buffer.length >= this.bodyLength) this.finish(this.buffer.toString('utf8', 0, this.bodyLength));
  }

  /** false when the head cannot be read (the request has failed then). */
  private parseHead(head: string): boolean {
    const lines = head.split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (status === null) {
      this.fail(`not an HTTP/1.1 answer: ${JSON.stringify((lines[0] ?? '').slice(0, 40))}`);
      return false;
    }
    this.status = Number(status[1]);
    let length: number | undefined;
    let chunked = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon === -1) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding') chunked = value.toLowerCase().includes('chunked');
      else if (name === 'connection') this.close = value.toLowerCase() === 'close';
      else if (name === 'x-dirigent-cold-start') this.coldStart = value === 'true';
      else if (name === 'x-dirigent-queue-ms' && Number.isFinite(Number(value))) this.queueMs = Number(value);
    }
    if (chunked) this.bodyLength = -2;
    else if (length !== undefined && Number.isSafeInteger(length) && length >= 0) this.bodyLength = length;
    else {
      // No length: the body ends with the connection. Nothing here answers that way; refuse it.
      this.fail('an answer without content-length or chunked encoding');
      return false;
    }
    return true;
  }

  private finish(body: string): void {
    const request = this.request!;
    this.request = undefined;
    this.buffer = Buffer.alloc(0);
    const result: SendResult = { startTimeUs: request.startTimeUs, responseTimeUs: Math.round((performance.now() - request.startedAt) * 1000), status: this.status, body, ...(this.coldStart === undefined ? {} : { coldStart: this.coldStart }), ...(this.queueMs === undefined ? {} : { queueMs: this.queueMs }) };
    if (this.close) this.destroy();
    this.sender.settled(request, result);
    if (!this.close) this.sender.release(this);
  }

  /** Fails the request in progress and drops the connection. */
  fail(reason: string): void {
    const request = this.request;
    this.request = undefined;
    this.destroy();
    if (request !== undefined) this.sender.settled(request, { startTimeUs: request.startTimeUs, responseTimeUs: Math.round((performance.now() - request.startedAt) * 1000), status: 0, body: '', error: reason });
  }

  private onClose(reason: string): void {
    if (this.request !== undefined) return this.fail(reason);
    this.destroy();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.pool.count--;
    const at = this.pool.idle.indexOf(this);
    if (at !== -1) this.pool.idle.splice(at, 1);
    this.sender.replace(this.pool);
  }
}

/** The body of a complete chunked message at the start of `buffer`, or undefined while it is incomplete. */
function dechunk(buffer: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = buffer.indexOf('\r\n', at);
    if (lineEnd === -1) return undefined;
    const size = Number.parseInt(buffer.toString('latin1', at, lineEnd), 16);
    if (!Number.isFinite(size)) return Buffer.alloc(0);
    at = lineEnd + 2;
    if (size === 0) return buffer.indexOf('\r\n', at) === -1 ? undefined : Buffer.concat(parts);
    if (buffer.length < at + size + 2) return undefined;
    parts.push(buffer.subarray(at, at + size));
    at += size + 2;
  }
}

export class HttpSender {
  private readonly pools = new Map<string, Pool>();
  private pendingCount = 0;

  constructor(private readonly options: SenderOptions) {}

  get pending(): number {
    return this.pendingCount;
  }

  /** `address` is `host:port`. `done` is called exactly once. */
  send(address: string, hostHeader: string, headers: Readonly<Record<string, string>>, done: (result: SendResult) => void): void {
    const startedAt = performance.now();
    const startTimeUs = Math.round((performance.timeOrigin + startedAt) * 1000);
    let head = `POST / HTTP/1.1\r\nhost: ${hostHeader}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    head += 'content-length: 0\r\n\r\n';
    const request: Request = { head, startedAt, startTimeUs, done };
    this.pendingCount++;
    if (this.pendingCount > this.options.maxPending) return this.settled(request, { startTimeUs, responseTimeUs: 0, status: 0, body: '', error: `more than ${this.options.maxPending} requests pending in the client` });
    request.timer = setTimeout(() => this.timedOut(request), this.options.timeoutMs);
    const pool = this.pool(address);
    const connection = this.idleConnection(pool);
    if (connection !== undefined) return connection.start(request);
    if (pool.count < this.options.maxSockets) {
      pool.count++;
      return new Connection(pool, this).start(request);
    }
    pool.waiting.push(request);
  }

  private pool(address: string): Pool {
    let pool = this.pools.get(address);
    if (pool === undefined) {
      const colon = address.lastIndexOf(':');
      pool = { host: address.slice(0, colon), port: Number(address.slice(colon + 1)), idle: [], waiting: [], count: 0 };
      this.pools.set(address, pool);
    }
    return pool;
  }

  /** The most recently used idle connection that is not too old; older ones are closed. */
  private idleConnection(pool: Pool): Connection | undefined {
    const now = performance.now();
    for (;;) {
      const connection = pool.idle.pop();
      if (connection === undefined) return undefined;
      if (now - connection.idleSince < IDLE_REUSE_MS) return connection;
      connection.destroy();
    }
  }

  private timedOut(request: Request): void {
    const reason = `no answer within ${this.options.timeoutMs} ms`;
    // On a connection: failing it there closes the connection (its answer may still come).
    if (request.connection !== undefined) return request.connection.fail(reason);
    for (const pool of this.pools.values()) {
      const at = pool.waiting.indexOf(request);
      if (at !== -1) pool.waiting.splice(at, 1);
    }
    this.settled(request, { startTimeUs: request.startTimeUs, responseTimeUs: Math.round((performance.now() - request.startedAt) * 1000), status: 0, body: '', error: reason });
  }

  /** A request ended, answered or not. */
  settled(request: Request, result: SendResult): void {
    clearTimeout(request.timer);
    this.pendingCount--;
    request.done(result);
  }

  /** A connection is free again: the next waiting request takes it, or it waits idle. */
  release(connection: Connection): void {
    const next = connection.pool.waiting.shift();
    if (next !== undefined) return connection.start(next);
    connection.idleSince = performance.now();
    connection.pool.idle.push(connection);
  }

  /** A connection closed: a waiting request gets a new one in its place. */
  replace(pool: Pool): void {
    const next = pool.waiting.shift();
    if (next === undefined || this.closing) return;
    pool.count++;
    new Connection(pool, this).start(next);
  }

  private closing = false;

  /** Closes every connection; call when nothing is pending. */
  close(): void {
    this.closing = true;
    for (const pool of this.pools.values()) {
      for (const request of pool.waiting.splice(0)) clearTimeout(request.timer);
      for (const connection of [...pool.idle]) connection.destroy();
    }
  }
}
