// A minimal WebSocket client (RFC 6455) on one TCP socket, for bench/ws.ts: Node 20 has no stable global
// WebSocket client, and the `ws` package the tests use (a dependency of uWebSockets.js's package, not ours)
// costs a write and a random mask per frame. This one sends the frames produced in one event-loop turn with
// one write. Client frames are masked, as the RFC requires, with one random key per connection rather than
// per frame (the per-frame key protects proxies' caches, which loopback does not have). Unfragmented
// messages only; pings are answered; the server's close ends the socket.
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface WsMessage {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

export class BenchWebSocket {
  private readonly mask = randomBytes(4);
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private buffered: Buffer = Buffer.alloc(0);
  private closed = false;
  onMessage: (data: Buffer, isBinary: boolean) => void = () => undefined;
  onClose: (reason: string) => void = () => undefined;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.finish('socket closed'));
    socket.on('error', (error) => this.finish(error.message));
  }

  /** Opens ws://host:port/path; rejects unless the server answers 101 with the right accept key within timeoutMs (ms). */
  static open(host: string, port: number, path: string, timeoutMs = 5000): Promise<BenchWebSocket> {
    return new Promise((resolve, reject) => {
      const key = randomBytes(16).toString('base64');
      const expected = createHash('sha1').update(key + GUID).digest('base64');
      const socket = connect(port, host);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no WebSocket handshake from ${host}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        clearTimeout(timer);
        const text = head.subarray(0, end).toString('latin1');
        const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(text)?.[1];
        if (!text.startsWith('HTTP/1.1 101') || accept !== expected) {
          socket.destroy();
          reject(new Error(`WebSocket handshake refused: ${text.split('\r\n')[0]}`));
          return;
        }
        const client = new BenchWebSocket(socket);
        const rest = head.subarray(end + 4);
        resolve(client);
        if (rest.length > 0) queueMicrotask(() => client.onData(rest));
      };
      socket.on('data', onData);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once('connect', () =>
        socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`),
      );
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Queues one message; everything queued in this event-loop turn leaves in one write. */
  send(payload: Uint8Array | string, isBinary = typeof payload !== 'string'): void {
    if (this.closed) return;
    const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
    this.queueFrame(isBinary ? 0x2 : 0x1, data);
  }

  close(): void {
    if (this.closed) return;
    this.queueFrame(0x8, Buffer.from([0x03, 0xe8])); // 1000, normal closure
    this.flush();
    this.socket.end();
    this.finish('closed by the client');
  }

  private queueFrame(opcode: number, data: Uint8Array): void {
    const length = data.byteLength;
    const headerBytes = length < 126 ? 2 : length < 65_536 ? 4 : 10;
    const frame = Buffer.allocUnsafe(headerBytes + 4 + length);
    frame[0] = 0x80 | opcode;
    if (length < 126) frame[1] = 0x80 | length;
    else if (length < 65_536) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeBigUInt64BE(BigInt(length), 2);
    }
    const mask = this.mask;
    frame.set(mask, headerBytes);
    const start = headerBytes + 4;
    for (let i = 0; i < length; i++) frame[start + i] = data[i]! ^ mask[i & 3]!;
    this.out.push(frame);
    this.outBytes += frame.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.closed || this.out.length === 0) return;
    this.socket.write(this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out, this.outBytes));
    this.out = [];
    this.outBytes = 0;
  };

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    let offset = 0;
    const buf = this.buffered;
    while (buf.length - offset >= 2) {
      const b0 = buf[offset]!;
      const b1 = buf[offset + 1]!;
      let length = b1 & 0x7f;
      let header = 2;
      if (length === 126) {
        if (buf.length - offset < 4) break;
        length = buf.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (buf.length - offset < 10) break;
        length = Number(buf.readBigUInt64BE(offset + 2));
        header = 10;
      }
      if (b1 & 0x80) {
        this.socket.destroy();
        this.finish('the server sent a masked frame');
        return;
      }
      if (buf.length - offset - header < length) break;
      const payload = buf.subarray(offset + header, offset + header + length);
      offset += header + length;
      const opcode = b0 & 0x0f;
      if ((b0 & 0x80) === 0 || opcode === 0x0) {
        this.socket.destroy();
        this.finish('the server sent a fragmented message, which this client does not read');
        return;
      }
      switch (opcode) {
        case 0x1:
        case 0x2:
          this.onMessage(payload, opcode === 0x2);
          break;
        case 0x8:
          this.socket.end();
          this.finish(`closed by the server (${payload.length >= 2 ? payload.readUInt16BE(0) : 'no code'}: ${payload.subarray(2).toString()})`);
          return;
        case 0x9:
          this.queueFrame(0xa, Buffer.from(payload));
          break;
        default:
          break; // pong or reserved: ignored
      }
      if (this.closed) return;
    }
    this.buffered = offset === buf.length ? Buffer.alloc(0) : buf.subarray(offset);
  }

  private finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.out = [];
    this.onClose(reason);
  }
}
