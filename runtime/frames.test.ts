import test from 'ava';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Packr } from 'msgpackr';
import { FrameConnection, MAX_FRAME_BYTES } from './frames.js';

/** Just enough of a Socket for FrameConnection: records what is written; `feed` plays bytes in as arriving data. */
class FakeSocket extends EventEmitter {
  readonly written: Buffer[] = [];
  destroyed = false;
  writableNeedDrain = false;
  setNoDelay(): this {
    return this;
  }
  write(data: Buffer): boolean {
    // Copied as a socket would hand the bytes to the kernel, so a later overwrite of the source shows in the test.
    this.written.push(Buffer.from(data));
    return true;
  }
  end(): void {}
  destroy(): void {
    this.destroyed = true;
  }
  feed(bytes: Buffer): void {
    this.emit('data', bytes);
  }
}

function connection(): { socket: FakeSocket; connection: FrameConnection; frames: unknown[] } {
  const socket = new FakeSocket();
  const conn = new FrameConnection(socket as unknown as Socket);
  const frames: unknown[] = [];
  conn.onFrame((frame) => frames.push(frame));
  return { socket, connection: conn, frames };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

const sample = (n: number) => ({ i: n, s: `sandbox-${n}`, h: { 'content-type': 'text/plain', n: String(n) }, b: new Uint8Array(n % 50).fill(n & 0xff) });

test('frames of a turn go out in one write, each with its length prefix, and decode in order', async (t) => {
  const sender = connection();
  const frames = Array.from({ length: 300 }, (_, n) => sample(n));
  for (const frame of frames) sender.connection.send(frame);
  t.is(sender.socket.written.length, 0, 'nothing is written before the turn ends');
  await turn();
  t.is(sender.socket.written.length, 1);
  const receiver = connection();
  receiver.socket.feed(sender.socket.written[0]!);
  t.deepEqual(receiver.frames, frames.map((f) => ({ ...f, b: Buffer.from(f.b) })));
  t.is(receiver.connection.framesIn, 300);
  t.is(sender.connection.framesOut, 300);
});

test('a frame packed early survives later packing in the same thread before its turn is written', async (t) => {
  const sender = connection();
  const first = sample(7);
  sender.connection.send(first);
  // Far more than one msgpackr buffer of other packing (other connections, other packers) before the flush.
  const other = new Packr({ useRecords: false });
  for (let n = 0; n < 2000; n++) other.pack({ filler: 'x'.repeat(40), n });
  const another = connection();
  for (let n = 0; n < 200; n++) another.connection.send(sample(n));
  await turn();
  const receiver = connection();
  receiver.socket.feed(sender.socket.written[0]!);
  t.deepEqual(receiver.frames, [{ ...first, b: Buffer.from(first.b) }]);
});

test('frames split anywhere across chunks are reassembled, big and small', async (t) => {
  const sender = connection();
  const frames: unknown[] = [sample(1), { big: Buffer.alloc(200_000, 3) }, sample(2), sample(3), { big: Buffer.alloc(70_000, 4) }, sample(4)];
  for (const frame of frames) sender.connection.send(frame);
  await turn();
  const stream = Buffer.concat(sender.socket.written);
  const expected = frames.map((f) => ('b' in (f as object) ? { ...(f as object), b: Buffer.from((f as { b: Uint8Array }).b) } : f));
  for (const size of [1, 2, 3, 5, 7, 64, 1000, 65_536, stream.length]) {
    const receiver = connection();
    for (let at = 0; at < stream.length; at += size) receiver.socket.feed(stream.subarray(at, at + size));
    t.deepEqual(receiver.frames, expected, `chunks of ${size} bytes`);
    t.false(receiver.connection.isClosed);
  }
});

test('an oversized length prefix or a malformed frame ends the connection only', (t) => {
  const oversized = connection();
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
  let closedWith: Error | undefined;
  oversized.connection.onClose((error) => (closedWith = error));
  oversized.socket.feed(prefix.subarray(0, 2));
  t.false(oversized.connection.isClosed);
  oversized.socket.feed(prefix.subarray(2));
  t.true(oversized.connection.isClosed);
  t.true(oversized.socket.destroyed);
  t.regex(closedWith?.message ?? '', /exceeds the \d+ byte limit/);

  const malformed = connection();
  const bad = Buffer.from([0, 0, 0, 2, 0xc1, 0xc1]);
  malformed.socket.feed(bad);
  t.true(malformed.connection.isClosed);
  t.deepEqual(malformed.frames, []);
});

/** A codec for `{ n: number }` frames: four bytes. */
const NUMBER_CODEC = {
  tag: 9,
  maxBytes: () => 4,
  write: (frame: { n: number }, buffer: Buffer, at: number) => buffer.writeUInt32LE(frame.n, at),
  read: (buffer: Buffer, start: number, end: number) => {
    if (end - start !== 4) throw new Error('a number frame has 4 bytes');
    return { n: buffer.readUInt32LE(start) };
  },
};

test('codec frames and msgpack frames interleave in order; the listener learns which codec decoded each', async (t) => {
  const sender = connection();
  const sent: unknown[] = [];
  for (let n = 0; n < 15_000; n++) {
    // 10 000 codec frames of 10 bytes: more than one 64 KB slab.
    if (n % 3 === 0) sender.connection.send(sample(n));
    else sender.connection.sendWith(NUMBER_CODEC, { n });
    sent.push(n % 3 === 0 ? { ...sample(n), b: Buffer.from(sample(n).b) } : { n });
  }
  await turn();
  const socket = new FakeSocket();
  const receiver = new FrameConnection(socket as unknown as Socket);
  receiver.useCodec(NUMBER_CODEC);
  const got: unknown[] = [];
  const codecs: unknown[] = [];
  receiver.onFrame((frame, codec) => {
    got.push(frame);
    codecs.push(codec);
  });
  socket.feed(Buffer.concat(sender.socket.written));
  t.deepEqual(got, sent);
  t.true(codecs.every((codec, n) => codec === (n % 3 === 0 ? undefined : NUMBER_CODEC)));
});

test('a codec frame for a tag nobody registered, or that its codec cannot read, closes the connection', (t) => {
  for (const register of [false, true]) {
    const sender = connection();
    sender.connection.sendWith({ ...NUMBER_CODEC, maxBytes: () => 5, write: (_f: { n: number }, buffer: Buffer, at: number) => buffer.writeUInt8(1, buffer.writeUInt32LE(1, at)) }, { n: 1 });
    sender.connection.close();
    const receiver = connection();
    if (register) receiver.connection.useCodec(NUMBER_CODEC);
    receiver.socket.feed(Buffer.concat(sender.socket.written));
    t.true(receiver.connection.isClosed);
    t.true(receiver.socket.destroyed);
    t.deepEqual(receiver.frames, []);
  }
});
