// The Dirigent-compatibility port: HTTP/1.1 (node:http, h1-front.ts) and cleartext HTTP/2 with prior
// knowledge (h2c, node:http2, h2-front.ts) on one port, in the main thread, told apart by the first bytes
// of each connection.
//
// Why a port besides the uWS one: our uWebSockets.js build (v20.30) silently drops every request with an
// underscore in a header name (uNetworking/uWebSockets.js#1018), and Dirigent's loader sends
// `requested_cpu` and `requested_memory`; uWS has no HTTP/2 either. Its requests cross one thread hop to
// their router (through the runtime), like a uWS shard whose router lives on another shard.
//
// How: the node:http server owns the listening socket, so that its own connection tracking runs
// (headersTimeout, requestTimeout, closing idle keep-alive connections). Its 'connection' listener is taken
// out and called only for connections that do not start with the HTTP/2 preface; the others go to the
// http2 server, which never listens. The sniffed bytes are put back with unshift(): node:http reads them
// once the socket flows again; node:http2 reads what the socket has buffered when it takes the connection
// over, so that socket must stay paused (resuming it first loses the preface: tested on Node 20).
import http, { type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { LogLevel } from '../../runtime/host.js';
import { listen } from '../../runtime/net.js';
import type { InvokeApi } from './api.js';
import { errorBody } from './edge.js';
import { H1Front } from './h1-front.js';
import { H2Front } from './h2-front.js';

export interface CompatFrontOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Largest request body, bytes. */
  readonly maxBodyBytes: number;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** A connection that has not told its protocol within this is closed. ms. */
const SNIFF_TIMEOUT_MS = 10_000;
/**
 * Idle keep-alive connections are closed after this, ms: longer than clients keep theirs (the loader: 5 s),
 * so that the client closes first and never sends a request into a connection being closed.
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/**
 * A request's headers must arrive within this, ms (node:http's default is 60 s): a slowloris client dripping
 * header bytes holds a connection this long, plus up to node:http's 30 s between checks. (A shorter check
 * interval, 1 s, made node:http stall kept-alive connections of the admin API: left at its default.)
 */
export const HEADERS_TIMEOUT_MS = 10_000;
/** A whole request (headers and a body of up to the body limit) must arrive within this, ms. */
const REQUEST_TIMEOUT_MS = 60_000;
/** While draining, how often to look whether every request is answered, ms. */
const DRAIN_POLL_MS = 20;
/** How long close() lets connections finish their answers before destroying them, ms. */
const CLOSE_GRACE_MS = 1000;

type ConnectionListener = (this: Server, socket: Socket) => void;

export class CompatFront {
  /** Every accepted connection until it closes. */
  private readonly sockets = new Set<Socket>();
  /** Connections whose protocol is not known yet. */
  private readonly sniffing = new Set<Socket>();
  private closing: Promise<void> | undefined;
  private draining = false;

  private constructor(
    private readonly server: Server,
    private readonly h1: H1Front,
    private readonly h2: H2Front,
    private readonly http1Connection: ConnectionListener,
    private readonly log: (level: LogLevel, text: string) => void,
  ) {}

  static async listen(options: CompatFrontOptions, api: InvokeApi, log: (level: LogLevel, text: string) => void): Promise<CompatFront> {
    const h1 = new H1Front(options, api, log);
    const h2 = new H2Front(options, api, log);
    // Without a Host header the edge's rules apply (a function by path, or 404), as on the uWS port.
    const server = http.createServer({ requireHostHeader: false, headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS });
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    server.on('request', (req, res) => h1.onRequest(req, res, false));
    server.on('checkContinue', (req, res) => h1.onRequest(req, res, true));
    // node:http closes a CONNECT unanswered when nobody listens for it.
    server.on('connect', (_req, socket: Socket) => {
      const body = errorBody('METHOD_NOT_ALLOWED', 'CONNECT is not allowed: this is not a proxy');
      socket.on('error', () => undefined);
      socket.end(`HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\ncontent-type: application/json\r\ncontent-length: ${body.byteLength}\r\nconnection: close\r\n\r\n${Buffer.from(body).toString('utf8')}`);
    });
    const listeners = server.listeners('connection');
    if (listeners.length !== 1) throw new Error(`node:http has ${listeners.length} connection listeners, expected its own one only`);
    server.removeAllListeners('connection');
    const front = new CompatFront(server, h1, h2, listeners[0] as ConnectionListener, log);
    server.on('connection', (socket: Socket) => front.accept(socket));
    await listen(server, options.port, options.host);
    return front;
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  private accept(socket: Socket): void {
    if (this.closing || this.draining) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    // Stays for the socket's life: whichever front owns it, a reset must never become an uncaught error.
    socket.on('error', (error) => this.log('debug', `compat connection error: ${error.message}`));
    this.sniffing.add(socket);
    let received: Buffer | undefined;
    const timer = setTimeout(() => socket.destroy(), SNIFF_TIMEOUT_MS);
    const stop = () => {
      clearTimeout(timer);
      this.sniffing.delete(socket);
      socket.off('data', onData);
      socket.off('end', onEnd);
    };
    // The peer ended before its first bytes told a protocol: nothing to answer.
    const onEnd = () => {
      stop();
      socket.destroy();
    };
    const onData = (chunk: Buffer) => {
      received = received === undefined ? chunk : Buffer.concat([received, chunk]);
      const n = Math.min(received.length, PREFACE.length);
      const h2 = received.compare(PREFACE, 0, n, 0, n) === 0;
      if (h2 && n < PREFACE.length) return; // a prefix of the preface: either protocol still
      stop();
      socket.pause();
      socket.unshift(received);
      try {
        if (h2) this.h2.accept(socket);
        else {
          this.http1Connection.call(this.server, socket);
          socket.resume();
        }
      } catch (error) {
        this.log('error', `compat front could not hand a connection over: ${(error as Error).stack ?? String(error)}`);
        socket.destroy();
      }
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.once('close', () => {
      stop();
      this.sockets.delete(socket);
    });
  }

  /**
   * Stop accepting and refuse new HTTP/1.1 requests (503, connection closed), then wait for those in flight (both
   * protocols) to be answered, at most `withinMs`, and close(). Idempotent with close().
   */
  async drain(withinMs: number): Promise<void> {
    if (this.closing) return this.closing;
    // New connections are closed at once (the server itself closes in close(), whose callback needs it open).
    this.draining = true;
    this.h1.refuseNew();
    const deadline = performance.now() + withinMs;
    while (this.h1.inFlight + this.h2.inFlight > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    return this.close();
  }

  /**
   * Stop accepting, answer pending requests 503, close idle connections and send GOAWAY to h2c sessions,
   * then destroy whatever is still open after a grace period. Resolves when every connection is closed. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const closed = new Promise<void>((done) => this.server.close(() => done()));
      for (const socket of [...this.sniffing]) socket.destroy();
      this.h1.close();
      this.h2.close();
      this.server.closeIdleConnections();
      const timer = setTimeout(() => {
        this.h2.destroy();
        for (const socket of [...this.sockets]) socket.destroy();
      }, CLOSE_GRACE_MS);
      void closed.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.closing;
  }
}
