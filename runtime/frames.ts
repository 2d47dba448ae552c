// Length-prefixed msgpack frames over TCP, with a handshake that carries the cluster token, the
// peer's role and id. Used by the cluster transport (actor envelopes between processes) and by
// the worker's sandbox invocation protocol. Frames written in one event-loop turn go out in one write.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { Packr } from 'msgpackr';

/** Largest accepted frame, bytes (a 6 MiB body plus headers fits with room to spare). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
const HANDSHAKE_TIMEOUT_MS = 5000;

export interface Hello {
  readonly token: string;
  readonly role: string;
  readonly id: string;
  /** Extra plain data the peer announces (e.g. its addresses or the leader term). */
  readonly info?: unknown;
}

type HandshakeFrame = { readonly hello: Hello } | { readonly welcome: { readonly role: string; readonly id: string; readonly info?: unknown } } | { readonly refused: string };

export class FrameConnection {
  private readonly packr = new Packr({ useRecords: false });
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private buffered: Buffer = Buffer.alloc(0);
  private closed = false;
  /** Frames that arrived while no listener was set (between handshake and protocol start). */
  private backlog: unknown[] = [];
  private frameListener: ((frame: unknown) => void) | undefined;
  private readonly closeListeners: ((error?: Error) => void)[] = [];
  /** Frames and bytes written, for stats. */
  framesOut = 0;
  framesIn = 0;

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.finish(error));
    socket.on('close', () => this.finish());
  }

  /** Only one frame listener: the protocol on top owns the connection. Frames held meanwhile are replayed. */
  onFrame(listener: ((frame: unknown) => void) | undefined): void {
    this.frameListener = listener;
    while (this.frameListener === listener && listener && this.backlog.length > 0) listener(this.backlog.shift());
  }

  onClose(listener: (error?: Error) => void): void {
    if (this.closed) queueMicrotask(() => listener());
    else this.closeListeners.push(listener);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  send(frame: unknown): void {
    if (this.closed) return;
    const body = this.packr.pack(frame);
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(body.length, 0);
    // pack() may return a view of a reused buffer: copy before it is overwritten.
    this.pending.push(header, Buffer.from(body));
    this.pendingBytes += body.length + 4;
    this.framesOut += 1;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  /** True when the socket's buffer is over its high-water mark (the caller should slow down). */
  get congested(): boolean {
    return this.socket.writableNeedDrain;
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.closed || this.pending.length === 0) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.socket.write(data);
  };

  close(): void {
    this.flush();
    this.socket.end();
    this.finish();
  }

  destroy(): void {
    this.socket.destroy();
    this.finish();
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    let offset = 0;
    while (this.buffered.length - offset >= 4) {
      const length = this.buffered.readUInt32BE(offset);
      if (length > MAX_FRAME_BYTES) {
        this.finish(new Error(`frame of ${length} bytes exceeds the ${MAX_FRAME_BYTES} byte limit`));
        this.socket.destroy();
        return;
      }
      if (this.buffered.length - offset - 4 < length) break;
      let frame: unknown;
      try {
        frame = this.packr.unpack(this.buffered.subarray(offset + 4, offset + 4 + length));
      } catch (error) {
        // A malformed frame ends this connection only, never the thread that reads it.
        this.finish(new Error(`malformed frame: ${(error as Error).message}`));
        this.socket.destroy();
        return;
      }
      offset += 4 + length;
      this.framesIn += 1;
      if (this.frameListener) this.frameListener(frame);
      else this.backlog.push(frame);
      if (this.closed) return;
    }
    this.buffered = offset === this.buffered.length ? Buffer.alloc(0) : this.buffered.subarray(offset);
  }

  private finish(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    for (const listener of this.closeListeners.splice(0)) listener(error);
  }
}

function tokensMatch(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface FrameServer {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

export interface FrameServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly token: string;
  readonly role: string;
  readonly id: string;
  readonly info?: unknown;
  /** Decide on a greeted peer; return a reason string to refuse it. Must not send on the connection yet. */
  readonly accept: (connection: FrameConnection, hello: Hello) => string | undefined;
  /** Runs once the welcome is on its way: from here the connection may carry the peer protocol. */
  readonly accepted?: (connection: FrameConnection, hello: Hello) => void;
}

/** Listen for framed peers; each must greet with the cluster token before anything else. */
export async function listenFrames(options: FrameServerOptions): Promise<FrameServer> {
  const connections = new Set<FrameConnection>();
  const server: Server = createServer((socket) => {
    const connection = new FrameConnection(socket);
    connections.add(connection);
    connection.onClose(() => connections.delete(connection));
    const timer = setTimeout(() => connection.destroy(), HANDSHAKE_TIMEOUT_MS);
    connection.onFrame((frame) => {
      clearTimeout(timer);
      const hello = (frame as { hello?: Hello }).hello;
      const refusal =
        !hello || typeof hello.token !== 'string' || typeof hello.role !== 'string' || typeof hello.id !== 'string'
          ? 'the first frame must be a hello'
          : !tokensMatch(hello.token, options.token)
            ? 'wrong cluster token'
            : options.accept(connection, hello);
      if (refusal !== undefined) {
        connection.send({ refused: refusal } satisfies HandshakeFrame);
        connection.close();
        return;
      }
      connection.send({ welcome: { role: options.role, id: options.id, info: options.info } } satisfies HandshakeFrame);
      options.accepted?.(connection, hello!);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    port,
    host: options.host,
    close: () =>
      new Promise<void>((resolve) => {
        for (const connection of connections) connection.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface Welcome {
  readonly role: string;
  readonly id: string;
  readonly info?: unknown;
}

/** Connect and greet; resolves once the peer welcomed us, rejects with its refusal otherwise. */
export function connectFrames(options: { host: string; port: number; hello: Hello; timeoutMs?: number }): Promise<{ connection: FrameConnection; welcome: Welcome }> {
  return new Promise((resolve, reject) => {
    const socket = connect(options.port, options.host);
    const connection = new FrameConnection(socket);
    const timer = setTimeout(() => {
      connection.destroy();
      reject(Object.assign(new Error(`no handshake from ${options.host}:${options.port} within ${options.timeoutMs ?? HANDSHAKE_TIMEOUT_MS} ms`), { code: 'CONNECT_TIMEOUT' }));
    }, options.timeoutMs ?? HANDSHAKE_TIMEOUT_MS);
    connection.onClose((error) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`connection to ${options.host}:${options.port} closed during handshake${error ? `: ${error.message}` : ''}`), { code: 'CONNECT_FAILED' }));
    });
    connection.onFrame((frame) => {
      clearTimeout(timer);
      const reply = frame as HandshakeFrame;
      if ('welcome' in reply) {
        connection.onFrame(undefined);
        resolve({ connection, welcome: reply.welcome });
      } else {
        reject(Object.assign(new Error(`refused by ${options.host}:${options.port}: ${'refused' in reply ? reply.refused : 'bad handshake'}`), { code: 'CONNECT_REFUSED' }));
        connection.destroy();
      }
    });
    socket.once('connect', () => connection.send({ hello: options.hello }));
  });
}
