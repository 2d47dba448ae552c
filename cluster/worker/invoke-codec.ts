// The invocation protocol's frames in a format of their own (runtime/frames.ts FrameCodec): one request
// frame and one result frame per invocation, the data plane's hottest path. Packing and unpacking them with
// msgpack was ~9 % of the data plane's time per request; this format costs about a third of that.
// Peers that send msgpack frames are still served (in msgpack): the server answers in the format asked.
//
// Little-endian; a string is a u32 byte length and UTF-8; headers are a u16 count of (name, value) strings;
// bytes are a u32 length and the bytes. Ids are float64 (SlotTable ids go past 2^32).
//   request (tag 1): i f64 | s string | m string | p string | headers | b bytes
//   result  (tag 2): i f64 | 0 u8 | st u16 | headers | b bytes
//                  | i f64 | 1 u8 | code string | message string
import type { FrameCodec } from '../../runtime/frames.js';
import type { InvokeErrorCode, RequestFrame, ResultFrame } from './protocol.js';

const REQUEST_TAG = 1;
const RESULT_TAG = 2;
const OK = 0;
const ERROR = 1;
/** Header pairs in one frame at most (the u16 count). */
const MAX_HEADERS = 0xffff;
/** Strings this short and all ASCII are written char by char: faster than Buffer#write for them. */
const SHORT_STRING = 32;

export const REQUEST_CODEC: FrameCodec<RequestFrame> = {
  tag: REQUEST_TAG,
  maxBytes: (f) => 8 + maxStringBytes(f.s) + maxStringBytes(f.m) + maxStringBytes(f.p) + maxHeadersBytes(f.h) + 4 + f.b.byteLength,
  write(f, buffer, at) {
    buffer.writeDoubleLE(f.i, at);
    let end = writeString(buffer, at + 8, f.s);
    end = writeString(buffer, end, f.m);
    end = writeString(buffer, end, f.p);
    end = writeHeaders(buffer, end, f.h);
    return writeBytes(buffer, end, f.b);
  },
  read(buffer, start, end) {
    const reader = new Reader(buffer, start, end);
    const frame: RequestFrame = { i: reader.id(), s: reader.string(), m: reader.string(), p: reader.string(), h: reader.headers(), b: reader.bytes() };
    reader.done();
    return frame;
  },
};

export const RESULT_CODEC: FrameCodec<ResultFrame> = {
  tag: RESULT_TAG,
  maxBytes: (f) => ('e' in f ? 9 + maxStringBytes(f.e.code) + maxStringBytes(f.e.message) : 9 + 2 + maxHeadersBytes(f.h) + 4 + f.b.byteLength),
  write(f, buffer, at) {
    buffer.writeDoubleLE(f.i, at);
    if ('e' in f) {
      buffer[at + 8] = ERROR;
      return writeString(buffer, writeString(buffer, at + 9, f.e.code), f.e.message);
    }
    if (!Number.isInteger(f.st) || f.st < 0 || f.st > 0xffff) throw new RangeError(`status ${f.st} is not a u16`);
    buffer[at + 8] = OK;
    buffer.writeUInt16LE(f.st, at + 9);
    return writeBytes(buffer, writeHeaders(buffer, at + 11, f.h), f.b);
  },
  read(buffer, start, end) {
    const reader = new Reader(buffer, start, end);
    const i = reader.id();
    const kind = reader.u8();
    let frame: ResultFrame;
    if (kind === OK) frame = { i, st: reader.u16(), h: reader.headers(), b: reader.bytes() };
    else if (kind === ERROR) frame = { i, e: { code: reader.string() as InvokeErrorCode, message: reader.string() } };
    else throw new Error(`result frame of unknown kind ${kind}`);
    reader.done();
    return frame;
  },
};

function maxStringBytes(text: unknown): number {
  if (typeof text !== 'string') throw new TypeError(`expected a string, got ${typeof text}`);
  return 4 + 3 * text.length;
}

function maxHeadersBytes(headers: Readonly<Record<string, unknown>>): number {
  let bytes = 2;
  let count = 0;
  for (const name in headers) {
    const value = headers[name];
    if (typeof value !== 'string') throw new TypeError(`header ${name} is not a string (${typeof value})`);
    bytes += maxStringBytes(name) + maxStringBytes(value);
    count += 1;
  }
  if (count > MAX_HEADERS) throw new RangeError(`more than ${MAX_HEADERS} headers`);
  return bytes;
}

function writeString(buffer: Buffer, at: number, text: string): number {
  const length = text.length;
  if (length <= SHORT_STRING) {
    let k = 0;
    for (; k < length; k++) {
      const code = text.charCodeAt(k);
      if (code >= 0x80) break;
      buffer[at + 4 + k] = code;
    }
    if (k === length) {
      buffer.writeUInt32LE(length, at);
      return at + 4 + length;
    }
  }
  const written = buffer.write(text, at + 4, 'utf8');
  buffer.writeUInt32LE(written, at);
  return at + 4 + written;
}

function writeHeaders(buffer: Buffer, at: number, headers: Readonly<Record<string, string>>): number {
  let end = at + 2;
  let count = 0;
  for (const name in headers) {
    end = writeString(buffer, end, name);
    end = writeString(buffer, end, headers[name]!);
    count += 1;
  }
  buffer.writeUInt16LE(count, at);
  return end;
}

function writeBytes(buffer: Buffer, at: number, bytes: Uint8Array): number {
  buffer.writeUInt32LE(bytes.byteLength, at);
  buffer.set(bytes, at + 4);
  return at + 4 + bytes.byteLength;
}

/**
 * Short strings decoded lately, by a hash of their bytes. Methods, paths, sandbox ids and header names and values
 * repeat from frame to frame, and a hit costs a loop over a few bytes where decoding costs a native call and a
 * new string (~15 % of a worker shard's time under load). Direct-mapped: a clash only costs a decode.
 */
const CACHE_SLOTS = 256;
const cachedBytes: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(CACHE_SLOTS).fill(undefined);
const cachedTexts: string[] = new Array<string>(CACHE_SLOTS).fill('');

/** The UTF-8 string in bytes [at, at + length) of `buffer`, from the cache when those bytes were decoded lately. */
export function decodeShort(buffer: Buffer, at: number, length: number): string {
  let hash = 0x811c9dc5; // FNV-1a
  for (let k = 0; k < length; k++) hash = Math.imul(hash ^ buffer[at + k]!, 0x01000193);
  const slot = (hash >>> 24) & (CACHE_SLOTS - 1);
  const known = cachedBytes[slot];
  if (known !== undefined && known.length === length) {
    let k = 0;
    while (k < length && known[k] === buffer[at + k]) k++;
    if (k === length) return cachedTexts[slot]!;
  }
  const text = buffer.toString('utf8', at, at + length);
  cachedBytes[slot] = Uint8Array.prototype.slice.call(buffer, at, at + length);
  cachedTexts[slot] = text;
  return text;
}

/** Reads fields in order, checking each against the frame's end. */
class Reader {
  constructor(
    private readonly buffer: Buffer,
    private at: number,
    private readonly end: number,
  ) {}

  private take(bytes: number): number {
    const at = this.at;
    if (bytes > this.end - at) throw new Error('frame ends inside a field');
    this.at = at + bytes;
    return at;
  }

  id(): number {
    const id = this.buffer.readDoubleLE(this.take(8));
    if (!Number.isSafeInteger(id)) throw new Error(`request id ${id} is not an integer`);
    return id;
  }

  u8(): number {
    return this.buffer[this.take(1)]!;
  }

  u16(): number {
    return this.buffer.readUInt16LE(this.take(2));
  }

  string(): string {
    const length = this.buffer.readUInt32LE(this.take(4));
    const at = this.take(length);
    return length <= SHORT_STRING ? decodeShort(this.buffer, at, length) : this.buffer.toString('utf8', at, at + length);
  }

  headers(): Record<string, string> {
    const count = this.u16();
    const headers: Record<string, string> = {};
    for (let k = 0; k < count; k++) {
      const name = this.string();
      const value = this.string();
      if (name !== '__proto__') headers[name] = value;
    }
    return headers;
  }

  /** A view of the frame's bytes, not a copy (as msgpackr's). */
  bytes(): Uint8Array {
    const length = this.buffer.readUInt32LE(this.take(4));
    const at = this.take(length);
    return this.buffer.subarray(at, at + length);
  }

  done(): void {
    if (this.at !== this.end) throw new Error(`${this.end - this.at} bytes after the frame's last field`);
  }
}
