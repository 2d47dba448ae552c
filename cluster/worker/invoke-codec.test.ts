import test from 'ava';
import type { FrameCodec } from '../../runtime/frames.js';
import { decodeShort, REQUEST_CODEC, RESULT_CODEC } from './invoke-codec.js';
import type { RequestFrame, ResultFrame } from './protocol.js';

/** Writes `frame` at an offset into a larger buffer, as a connection does, and reads it back. */
function roundTrip<T>(codec: FrameCodec<T>, frame: T): { read: T; bytes: number; max: number } {
  const max = codec.maxBytes(frame);
  const buffer = Buffer.alloc(max + 10);
  const end = codec.write(frame, buffer, 3);
  return { read: codec.read(buffer, 3, end), bytes: end - 3, max };
}

/** The frame with its body as a plain array (a Buffer and a Uint8Array of the same bytes compare unequal). */
const plain = (frame: RequestFrame | ResultFrame) => ('b' in frame ? { ...frame, b: [...frame.b] } : frame);

test('a request frame comes back as it went, non-ASCII and long strings included', (t) => {
  const long = 'x'.repeat(5000);
  const frame: RequestFrame = {
    i: 2 ** 40 + 7,
    s: 'sb-1',
    m: 'POST',
    p: `/päth?q=${long}`,
    h: { host: 'f', 'x-ünicode': 'välue ✓', empty: '', [long]: long },
    b: new Uint8Array([0, 1, 2, 255]),
  };
  const { read, bytes, max } = roundTrip(REQUEST_CODEC, frame);
  t.deepEqual(plain(read), plain(frame));
  t.true(bytes <= max);
});

test('result frames, answers and errors, come back as they went', (t) => {
  const ok: ResultFrame = { i: 1, st: 404, h: { 'content-type': 'text/plain' }, b: new TextEncoder().encode('gone') };
  const error: ResultFrame = { i: 9, e: { code: 'SANDBOX_GONE', message: 'no sandbox sb on shard-0 ✗' } };
  t.deepEqual(plain(roundTrip(RESULT_CODEC, ok).read), plain(ok));
  t.deepEqual(roundTrip(RESULT_CODEC, error).read, error);
  const empty: ResultFrame = { i: 3, st: 204, h: {}, b: new Uint8Array(0) };
  t.deepEqual(plain(roundTrip(RESULT_CODEC, empty).read), plain(empty));
});

test('frames that cannot be written throw before anything is sent', (t) => {
  const bad = { i: 1, s: 'sb', m: 'GET', p: '/', h: { n: 1 }, b: new Uint8Array() } as unknown as RequestFrame;
  t.throws(() => REQUEST_CODEC.maxBytes(bad), { message: /header n is not a string/ });
  const status = { i: 1, st: 70_000, h: {}, b: new Uint8Array() } as ResultFrame;
  t.throws(() => RESULT_CODEC.write(status, Buffer.alloc(RESULT_CODEC.maxBytes(status)), 0), { instanceOf: RangeError });
});

test('malformed bytes throw (the connection then closes); they never read past the frame', (t) => {
  const frame: RequestFrame = { i: 5, s: 'sb', m: 'GET', p: '/', h: { a: 'b' }, b: new Uint8Array([1]) };
  const buffer = Buffer.alloc(REQUEST_CODEC.maxBytes(frame));
  const end = REQUEST_CODEC.write(frame, buffer, 0);
  for (let cut = 0; cut < end; cut++) t.throws(() => REQUEST_CODEC.read(buffer, 0, cut), undefined, `cut at ${cut}`);
  t.throws(() => REQUEST_CODEC.read(Buffer.concat([buffer.subarray(0, end), Buffer.from([0])]), 0, end + 1), { message: /after the frame's last field/ });
  const huge = Buffer.from(buffer.subarray(0, end));
  huge.writeUInt32LE(0xffffffff, 8); // the sandbox id's length
  t.throws(() => REQUEST_CODEC.read(huge, 0, end), { message: /inside a field/ });
  const kind = Buffer.alloc(9);
  kind[8] = 7;
  t.throws(() => RESULT_CODEC.read(kind, 0, 9), { message: /unknown kind 7/ });
});

test('a __proto__ header is dropped, never set on the object prototype', (t) => {
  const headers = JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>;
  const frame: RequestFrame = { i: 1, s: 'sb', m: 'GET', p: '/', h: headers, b: new Uint8Array() };
  const { read } = roundTrip(REQUEST_CODEC, frame);
  t.deepEqual(Object.keys(read.h), ['a']);
  t.is(Object.getPrototypeOf(read.h), Object.prototype);
});

test('short strings decode as toString does, from the cache or not, whatever shares their slot', (t) => {
  // 2 000 distinct strings through 256 slots: every slot is taken over many times; each answer must still be its own.
  const texts = Array.from({ length: 2000 }, (_, k) => (k % 7 === 0 ? `h\u00e9-${k}` : `x-header-${k}`));
  for (let round = 0; round < 3; round++) {
    for (const text of texts) {
      const bytes = Buffer.from(`..${text}..`);
      t.is(decodeShort(bytes, 2, bytes.length - 4), text);
    }
  }
  const invalid = Buffer.from([0xff, 0xfe, 0x41]);
  t.is(decodeShort(invalid, 0, 3), invalid.toString('utf8'));
  t.is(decodeShort(invalid, 0, 3), invalid.toString('utf8'), 'again, from the cache');
  t.is(decodeShort(Buffer.alloc(0), 0, 0), '');
  // Bytes change under a cached string: the next decode sees the new bytes.
  const reused = Buffer.from('content-type');
  t.is(decodeShort(reused, 0, reused.length), 'content-type');
  reused.write('content-typf');
  t.is(decodeShort(reused, 0, reused.length), 'content-typf');
});
