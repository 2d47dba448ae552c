// The msgpack encoder of WebSocket replies: one shape ({id, status, headers, body, error?}) written straight
// into a reused buffer. It runs once per reply, where msgpackr's general encoder was a visible share of the
// data-plane shard's time. The output is plain msgpack (maps with string keys, str, bin, ints, float64, nil)
// that any decoder reads as msgpackr's would be read; numbers follow msgpackr's choice of types.
import { addTimingHeaders, type EdgeResponse } from './edge.js';

let buf = Buffer.allocUnsafe(64 * 1024);
let pos = 0;

/** Pre-encoded keys (fixstr). */
const KEY_ID = key('id');
const KEY_STATUS = key('status');
const KEY_HEADERS = key('headers');
const KEY_BODY = key('body');
const KEY_ERROR = key('error');
const KEY_CODE = key('code');
const KEY_MESSAGE = key('message');

function key(name: string): Buffer {
  return Buffer.concat([Buffer.from([0xa0 | name.length]), Buffer.from(name, 'latin1')]);
}

/**
 * The reply as msgpack: a view into this module's buffer, valid until the next call (the caller sends or
 * copies it at once). Undefined when the reply holds something this encoder does not write (a header value
 * that is not a string): the caller then uses a general encoder.
 */
export function packReply(id: string | number | null, response: EdgeResponse): Buffer | undefined {
  const headers = response.headers;
  const body = response.body;
  const error = response.error;
  pos = 0;
  ensure(64 + body.byteLength);
  buf[pos++] = 0x80 | (error ? 5 : 4);
  raw(KEY_ID);
  if (id === null) buf[pos++] = 0xc0;
  else if (typeof id === 'number') number(id);
  else string(id);
  raw(KEY_STATUS);
  number(response.status);
  raw(KEY_HEADERS);
  // One byte for the map's size, filled in (or widened) once the headers are counted.
  const sizeAt = pos++;
  let headerCount = 0;
  for (const name in headers) {
    const value = headers[name];
    if (typeof value !== 'string') return undefined;
    string(name);
    string(value);
    headerCount += 1;
  }
  if (response.timing !== undefined) {
    addTimingHeaders(response.timing, (name, value) => {
      string(name);
      string(value);
      headerCount += 1;
    });
  }
  if (headerCount < 16) buf[sizeAt] = 0x80 | headerCount;
  else {
    const wide = headerCount < 0x10000 ? 3 : 5;
    ensure(wide - 1);
    buf.copyWithin(sizeAt + wide, sizeAt + 1, pos);
    pos += wide - 1;
    if (wide === 3) {
      buf[sizeAt] = 0xde;
      buf.writeUInt16BE(headerCount, sizeAt + 1);
    } else {
      buf[sizeAt] = 0xdf;
      buf.writeUInt32BE(headerCount, sizeAt + 1);
    }
  }
  raw(KEY_BODY);
  bin(body);
  if (error) {
    raw(KEY_ERROR);
    buf[pos++] = 0x82;
    raw(KEY_CODE);
    string(error.code);
    raw(KEY_MESSAGE);
    string(error.message);
  }
  return buf.subarray(0, pos);
}

function ensure(bytes: number): void {
  if (pos + bytes <= buf.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, pos + bytes + 1024));
  buf.copy(bigger, 0, 0, pos);
  buf = bigger;
}

/** A few bytes (a key): copied here, which beats a native call. */
function raw(bytes: Buffer): void {
  const length = bytes.length;
  ensure(length);
  for (let i = 0; i < length; i++) buf[pos + i] = bytes[i]!;
  pos += length;
}

/** As msgpackr writes numbers: the smallest int type for 32-bit integers, float64 for everything else. */
function number(value: number): void {
  ensure(9);
  if (value >>> 0 === value) {
    if (value < 0x80) buf[pos++] = value;
    else if (value < 0x100) {
      buf[pos++] = 0xcc;
      buf[pos++] = value;
    } else if (value < 0x10000) {
      buf[pos++] = 0xcd;
      buf.writeUInt16BE(value, pos);
      pos += 2;
    } else {
      buf[pos++] = 0xce;
      buf.writeUInt32BE(value, pos);
      pos += 4;
    }
  } else if (value >> 0 === value) {
    if (value >= -0x20) buf[pos++] = 0x100 + value;
    else if (value >= -0x80) {
      buf[pos++] = 0xd0;
      buf[pos++] = value + 0x100;
    } else if (value >= -0x8000) {
      buf[pos++] = 0xd1;
      buf.writeInt16BE(value, pos);
      pos += 2;
    } else {
      buf[pos++] = 0xd2;
      buf.writeInt32BE(value, pos);
      pos += 4;
    }
  } else {
    buf[pos++] = 0xcb;
    buf.writeDoubleBE(value, pos);
    pos += 8;
  }
}

function string(value: string): void {
  const length = value.length;
  ensure(length * 3 + 5);
  // ASCII up to 255 characters (header names and values, ids): copied here, which beats a native call.
  if (length < 0x100) {
    const start = pos + (length < 32 ? 1 : 2);
    let i = 0;
    for (; i < length; i++) {
      const c = value.charCodeAt(i);
      if (c >= 0x80) break;
      buf[start + i] = c;
    }
    if (i === length) {
      if (length < 32) buf[pos] = 0xa0 | length;
      else {
        buf[pos] = 0xd9;
        buf[pos + 1] = length;
      }
      pos = start + length;
      return;
    }
  }
  // Anything else: the header is sized for the longest UTF-8 the string can take, then filled in.
  const most = length * 3;
  const header = most < 32 ? 1 : most < 0x100 ? 2 : most < 0x10000 ? 3 : 5;
  const written = buf.write(value, pos + header, 'utf8');
  if (header === 1) buf[pos] = 0xa0 | written;
  else if (header === 2) {
    buf[pos] = 0xd9;
    buf[pos + 1] = written;
  } else if (header === 3) {
    buf[pos] = 0xda;
    buf.writeUInt16BE(written, pos + 1);
  } else {
    buf[pos] = 0xdb;
    buf.writeUInt32BE(written, pos + 1);
  }
  pos += header + written;
}

function bin(bytes: Uint8Array): void {
  const length = bytes.byteLength;
  ensure(length + 5);
  if (length < 0x100) {
    buf[pos++] = 0xc4;
    buf[pos++] = length;
  } else if (length < 0x10000) {
    buf[pos++] = 0xc5;
    buf.writeUInt16BE(length, pos);
    pos += 2;
  } else {
    buf[pos++] = 0xc6;
    buf.writeUInt32BE(length, pos);
    pos += 4;
  }
  buf.set(bytes, pos);
  pos += length;
}
