// Length-prefixed msgpack frames over TCP, with a handshake that carries the cluster token, the
// peer's role and id. Used by the cluster transport (actor envelopes between processes) and by
// the worker's sandbox invocation protocol. Frames written in one event-loop turn go out in one write.
//
// A protocol may also send frames in a format of its own (a FrameCodec: the invocation protocol's frames,
// one per request, cost a third of what msgpack does). Such a frame starts with CODEC_MARK, a byte msgpack
// never uses, then the codec's tag; the receiver decodes it with the codec it registered for that tag.
//
// No copy per frame on either side. Sending: msgpackr packs every frame into its own (per-thread) buffer
// with four bytes reserved in front for the length prefix, and hands back where it wrote; the frames of a
// turn are copied once, into the one buffer written (a lone frame is written from msgpackr's buffer as is).
// This relies on msgpackr never writing twice over bytes it has handed out: when its buffer runs low it
// starts a new one (true of msgpackr 2.x unless someone calls `useBuffer` or sets `position` in the same
// thread, which nothing here does; frames.test.ts checks it). Receiving: frames are decoded in place from
// the socket's chunks; only a frame split across chunks is assembled, into a buffer of its own size.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Packr, RESERVE_START_SPACE, REUSE_BUFFER_MODE } from 'msgpackr';
import { DirigentError } from '../actors/errors.js';
import { listen, secretsMatch } from './net.js';

/** Largest accepted frame, bytes (a 6 MiB body plus headers fits with room to spare). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
const HANDSHAKE_TIMEOUT_MS = 5000;
/** Length prefix, bytes (big-endian uint32). */
const PREFIX_BYTES = 4;
/** pack() options: reserve the prefix in front of the frame; answer msgpackr's buffer and where the frame is in it. */
const PACK_FRAME = RESERVE_START_SPACE | PREFIX_BYTES | REUSE_BUFFER_MODE;

/** What pack() answers with REUSE_BUFFER_MODE: its whole buffer, the frame at [start, end). */
type PackedFrame = Buffer & { start: number; end: number };
/** First byte of a frame in a codec's own format (0xc1 is "never used" in msgpack). */
const CODEC_MARK = 0xc1;
/** Bytes before a codec's payload: the length prefix, CODEC_MARK and the tag. */
const CODEC_HEADER_BYTES = PREFIX_BYTES + 2;
/** Codec frames are written into buffers of this size (a larger frame gets one of its own), bytes. */
const SLAB_BYTES = 64 * 1024;

/** A frame format of one protocol's own, for frames of one shape sent often. */
export interface FrameCodec<T> {
  /** Tells this codec's frames from others' on a connection: 0..255. */
  readonly tag: number;
  /** At least the bytes `write` takes for `frame`. Throws when `frame` cannot be written (the send then fails). */
  maxBytes(frame: T): number;
  /** Writes `frame` at `at` (with maxBytes(frame) bytes free from there); answers where it ended. */
  write(frame: T, buffer: Buffer, at: number): number;
  /** The frame in buffer[start, end); throws on malformed bytes (the connection then closes). May keep views of `buffer`. */
  read(buffer: Buffer, start: number, end: number): T;
}

/** Gets each frame, and the codec that decoded it (undefined: msgpack). */
export type FrameListener = (frame: unknown, codec: FrameCodec<unknown> | undefined) => void;

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
  /** Codecs this end decodes, by tag. */
  private readonly codecs: (FrameCodec<unknown> | undefined)[] = [];
  /** Where codec frames are written; like msgpackr's buffer, bytes handed out are never written again. */
  private slab: Buffer | undefined;
  private slabAt = 0;
  /** Frames sent this turn, not yet written: where each lies in msgpackr's buffers (bytes [start, end), prefix included). */
  private readonly pendingBuffers: Buffer[] = [];
  private readonly pendingStarts: number[] = [];
  private readonly pendingEnds: number[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  /** The start of a frame split across chunks (prefix included), in arrival order. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** The split frame's size with its prefix; 0 while fewer than PREFIX_BYTES of it arrived. */
  private partialTotal = 0;
  /** unpack()'s window into the chunk being read (reused: msgpackr does not keep it). */
  private readonly window = { start: 0, end: 0 };
  private closed = false;
  /** Frames that arrived while no listener was set (between handshake and protocol start). */
  private backlog: { frame: unknown; codec: FrameCodec<unknown> | undefined }[] = [];
  private frameListener: FrameListener | undefined;
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
  onFrame(listener: FrameListener | undefined): void {
    this.frameListener = listener;
    while (this.frameListener === listener && listener !== undefined && this.backlog.length > 0) {
      const held = this.backlog.shift()!;
      listener(held.frame, held.codec);
    }
  }

  /** Frames starting with `codec.tag` are decoded with `codec` from now on. */
  useCodec(codec: FrameCodec<unknown>): void {
    if (!Number.isInteger(codec.tag) || codec.tag < 0 || codec.tag > 255) throw new RangeError(`codec tag ${codec.tag} is not in 0..255`);
    this.codecs[codec.tag] = codec;
  }

  onClose(listener: (error?: Error) => void): void {
    if (this.closed) queueMicrotask(() => listener());
    else this.closeListeners.push(listener);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Packs `frame` now (a frame that cannot be packed throws here); it goes out with this turn's write. */
  send(frame: unknown): void {
    if (this.closed) return;
    const packed = this.packr.pack(frame, PACK_FRAME) as PackedFrame;
    const { start, end } = packed;
    packed.writeUInt32BE(end - start - PREFIX_BYTES, start);
    this.queue(packed, start, end);
  }

  /** `send` in `codec`'s format (the peer must have registered it). Throws when the codec cannot write `frame`. */
  sendWith<T>(codec: FrameCodec<T>, frame: T): void {
    if (this.closed) return;
    const need = CODEC_HEADER_BYTES + codec.maxBytes(frame);
    if (this.slab === undefined || this.slab.length - this.slabAt < need) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, need));
      this.slabAt = 0;
    }
    const slab = this.slab;
    const start = this.slabAt;
    slab[start + PREFIX_BYTES] = CODEC_MARK;
    slab[start + PREFIX_BYTES + 1] = codec.tag;
    const end = codec.write(frame, slab, start + CODEC_HEADER_BYTES);
    slab.writeUInt32BE(end - start - PREFIX_BYTES, start);
    this.slabAt = end;
    this.queue(slab, start, end);
  }

  /** Files bytes [start, end) of `buffer` (a whole frame, prefix included) for this turn's write. */
  private queue(buffer: Buffer, start: number, end: number): void {
    this.pendingBuffers.push(buffer);
    this.pendingStarts.push(start);
    this.pendingEnds.push(end);
    this.pendingBytes += end - start;
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
    const count = this.pendingBuffers.length;
    if (this.closed || count === 0) return;
    const buffers = this.pendingBuffers;
    let data: Buffer;
    if (count === 1) {
      data = buffers[0]!.subarray(this.pendingStarts[0], this.pendingEnds[0]);
    } else {
      data = Buffer.allocUnsafe(this.pendingBytes);
      let at = 0;
      for (let k = 0; k < count; k++) at += buffers[k]!.copy(data, at, this.pendingStarts[k], this.pendingEnds[k]);
    }
    this.clearPending();
    this.socket.write(data);
  };

  private clearPending(): void {
    this.pendingBuffers.length = 0;
    this.pendingStarts.length = 0;
    this.pendingEnds.length = 0;
    this.pendingBytes = 0;
  }

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
    let offset = this.partialBytes > 0 ? this.completePartial(chunk) : 0;
    if (offset < 0) return;
    // Whole frames, decoded where they lie in the chunk.
    while (chunk.length - offset >= PREFIX_BYTES) {
      const length = chunk.readUInt32BE(offset);
      if (!this.acceptLength(length)) return;
      if (chunk.length - offset - PREFIX_BYTES < length) break;
      if (!this.deliver(chunk, offset + PREFIX_BYTES, offset + PREFIX_BYTES + length)) return;
      offset += PREFIX_BYTES + length;
    }
    if (offset < chunk.length) {
      // The start of a frame: kept as a view of the chunk until the rest arrives.
      const rest = chunk.subarray(offset);
      this.partial.push(rest);
      this.partialBytes = rest.length;
      this.partialTotal = rest.length >= PREFIX_BYTES ? PREFIX_BYTES + rest.readUInt32BE(0) : 0;
    }
  }

  /**
   * Feeds `chunk` to the frame split across chunks. Answers where in `chunk` the next frame starts once
   * that frame is complete and delivered, or -1 when `chunk` went entirely into it (or the connection ended).
   */
  private completePartial(chunk: Buffer): number {
    let offset = 0;
    if (this.partialTotal === 0) {
      // Not even the prefix yet: take what is missing of it.
      offset = Math.min(PREFIX_BYTES - this.partialBytes, chunk.length);
      this.partial.push(chunk.subarray(0, offset));
      this.partialBytes += offset;
      if (this.partialBytes < PREFIX_BYTES) return -1;
      const prefix = Buffer.concat(this.partial, PREFIX_BYTES);
      const length = prefix.readUInt32BE(0);
      if (!this.acceptLength(length)) return -1;
      this.partial = [prefix];
      this.partialTotal = PREFIX_BYTES + length;
    }
    const missing = this.partialTotal - this.partialBytes;
    if (chunk.length - offset < missing) {
      this.partial.push(offset === 0 ? chunk : chunk.subarray(offset));
      this.partialBytes += chunk.length - offset;
      return -1;
    }
    this.partial.push(chunk.subarray(offset, offset + missing));
    const frame = Buffer.concat(this.partial, this.partialTotal);
    this.partial = [];
    this.partialBytes = this.partialTotal = 0;
    return this.deliver(frame, PREFIX_BYTES, frame.length) ? offset + missing : -1;
  }

  private acceptLength(length: number): boolean {
    if (length <= MAX_FRAME_BYTES) return true;
    this.finish(new Error(`frame of ${length} bytes exceeds the ${MAX_FRAME_BYTES} byte limit`));
    this.socket.destroy();
    return false;
  }

  /** Decodes the frame at [start, end) of `bytes` and hands it on; false once the connection is over. */
  private deliver(bytes: Buffer, start: number, end: number): boolean {
    let frame: unknown;
    let codec: FrameCodec<unknown> | undefined;
    try {
      if (bytes[start] === CODEC_MARK && end - start >= 2) {
        codec = this.codecs[bytes[start + 1]!];
        if (codec === undefined) throw new Error(`no codec for tag ${bytes[start + 1]}`);
        frame = codec.read(bytes, start + 2, end);
      } else {
        this.window.start = start;
        this.window.end = end;
        frame = this.packr.unpack(bytes, this.window);
      }
    } catch (error) {
      // A malformed frame ends this connection only, never the thread that reads it.
      this.finish(new Error(`malformed frame: ${(error as Error).message}`));
      this.socket.destroy();
      return false;
    }
    this.framesIn += 1;
    if (this.frameListener) this.frameListener(frame, codec);
    else this.backlog.push({ frame, codec });
    return !this.closed;
  }

  private finish(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.clearPending();
    this.partial = [];
    for (const listener of this.closeListeners.splice(0)) listener(error);
  }
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
  /** Sent in every welcome; a function is called for each welcome (the info may change while listening). */
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
          : !secretsMatch(hello.token, options.token)
            ? 'wrong cluster token'
            : options.accept(connection, hello);
      if (refusal !== undefined) {
        connection.send({ refused: refusal } satisfies HandshakeFrame);
        connection.close();
        return;
      }
      const info = typeof options.info === 'function' ? (options.info as () => unknown)() : options.info;
      connection.send({ welcome: { role: options.role, id: options.id, info } } satisfies HandshakeFrame);
      options.accepted?.(connection, hello!);
    });
  });
  const port = await listen(server, options.port, options.host);
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
      reject(new DirigentError('CONNECT_TIMEOUT', `no handshake from ${options.host}:${options.port} within ${options.timeoutMs ?? HANDSHAKE_TIMEOUT_MS} ms`));
    }, options.timeoutMs ?? HANDSHAKE_TIMEOUT_MS);
    connection.onClose((error) => {
      clearTimeout(timer);
      reject(new DirigentError('CONNECT_FAILED', `connection to ${options.host}:${options.port} closed during handshake${error ? `: ${error.message}` : ''}`, { cause: error }));
    });
    connection.onFrame((frame) => {
      clearTimeout(timer);
      const reply = frame as HandshakeFrame;
      if ('welcome' in reply) {
        connection.onFrame(undefined);
        resolve({ connection, welcome: reply.welcome });
      } else {
        reject(new DirigentError('CONNECT_REFUSED', `refused by ${options.host}:${options.port}: ${'refused' in reply ? reply.refused : 'bad handshake'}`));
        connection.destroy();
      }
    });
    socket.once('connect', () => connection.send({ hello: options.hello }));
  });
}
