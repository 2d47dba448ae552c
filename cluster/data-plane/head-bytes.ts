// The header block of an answered invocation as bytes, for the uWS front. uWS copies every string argument to
// UTF-8 on each call (measured at ~0.3 µs per string per response, bytes at ~0), and a block built as a string
// costs its concatenations and timing numbers as text besides: together ~1 µs of a warm request's ~12 µs on
// the data-plane shard. Here the timing headers are written from their numbers and constant parts are copied.
import { fixed3, HEADER_COLD_START, HEADER_QUEUE_MS, HEADER_SANDBOX, HEADER_SERVER_TIMING, HEADER_VERSION, type ResponseTiming } from './edge.js';

/** The block's first header name: uWS writes `name: value\r\n`, so the block rides in that header's value. */
export const FIRST_HEADER_NAME = Buffer.from(HEADER_QUEUE_MS, 'latin1');

/** Largest block written as bytes, bytes; a larger one goes as strings. */
const BLOCK_BYTES = 16 * 1024;
const block = Buffer.allocUnsafeSlow(BLOCK_BYTES);

const latin1 = (text: string) => Buffer.from(text, 'latin1');
const COLD_START = latin1(`\r\n${HEADER_COLD_START}: `);
const TRUE = latin1('true');
const FALSE = latin1('false');
const QUEUE_DUR = latin1(`\r\n${HEADER_SERVER_TIMING}: queue;dur=`);
const TOTAL_DUR = latin1(', total;dur=');
const SANDBOX = latin1(`\r\n${HEADER_SANDBOX}: `);
const VERSION = latin1(`\r\n${HEADER_VERSION}: `);
const CONNECTION_CLOSE = latin1('\r\nconnection: close');
/** Room kept for what follows the last variable-length part. */
const TAIL_BYTES = CONNECTION_CLOSE.length;

/**
 * The value to write under FIRST_HEADER_NAME: the queue time, then the other timing headers and `headers` as
 * `\r\nname: value` lines (and `connection: close` when asked). A view into a buffer the next call reuses, so
 * it must go to uWS at once (uWS copies it). Undefined when a header is not ASCII or the block would exceed
 * BLOCK_BYTES: the caller then writes strings. Header values never hold CR or LF (see EdgeResponse).
 */
export function headerBlock(headers: Readonly<Record<string, string>>, timing: ResponseTiming, closeConnection: boolean): Buffer | undefined {
  let at = writeInteger(0, Math.round(timing.queuedMs));
  at = copy(at, COLD_START);
  at = copy(at, timing.coldStart ? TRUE : FALSE);
  at = copy(at, QUEUE_DUR);
  at = writeFixed3(at, timing.queuedMs);
  at = copy(at, TOTAL_DUR);
  at = writeFixed3(at, timing.totalMs);
  if (timing.sandboxId !== undefined) {
    at = copy(at, SANDBOX);
    at = writeAscii(at, timing.sandboxId);
  }
  // A sandbox id that did not fit left `at` at -1: copying past it would make it look valid again.
  if (timing.version !== undefined && at >= 0) {
    at = copy(at, VERSION);
    at = writeInteger(at, timing.version);
  }
  for (const name in headers) {
    if (at < 0) return undefined;
    block[at] = 13; // \r
    block[at + 1] = 10; // \n
    at = writeAscii(at + 2, name);
    if (at < 0) return undefined;
    block[at] = 58; // :
    block[at + 1] = 32; // space
    at = writeAscii(at + 2, headers[name]!);
  }
  if (at < 0) return undefined;
  if (closeConnection) at = copy(at, CONNECTION_CLOSE);
  return block.subarray(0, at);
}

/** The fixed parts (timing, names we own) all fit: BLOCK_BYTES is far above their ~150 bytes. A few bytes each. */
function copy(at: number, bytes: Buffer): number {
  const length = bytes.length;
  for (let k = 0; k < length; k++) block[at + k] = bytes[k]!;
  return at + length;
}

/**
 * `text` as ASCII at `at`; -1 when a character is not ASCII or it would leave no room for the tail. A loop beats
 * a native call (and its string flattening) for the short strings of a header.
 */
function writeAscii(at: number, text: string): number {
  if (at < 0 || at + text.length > BLOCK_BYTES - TAIL_BYTES - 4) return -1;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) return -1;
    block[at + i] = code;
  }
  return at + text.length;
}

/** A whole number >= 0 in decimal (as String() writes it; past 2^53 through String itself). */
function writeInteger(at: number, value: number): number {
  if (!Number.isSafeInteger(value)) return writeAscii(at, String(value));
  let digits = 1;
  for (let power = 10; power <= value; power *= 10) digits++;
  for (let i = at + digits - 1; i >= at; i--) {
    block[i] = 48 + (value % 10);
    value = Math.floor(value / 10);
  }
  return at + digits;
}

/** ms >= 0 with three decimals, as fixed3 (and toFixed(3)) write it. */
function writeFixed3(at: number, ms: number): number {
  const thousandths = Math.round(ms * 1000);
  if (!Number.isSafeInteger(thousandths)) return writeAscii(at, fixed3(ms));
  const fraction = thousandths % 1000;
  at = writeInteger(at, (thousandths - fraction) / 1000);
  block[at] = 46; // .
  block[at + 1] = 48 + Math.floor(fraction / 100);
  block[at + 2] = 48 + (Math.floor(fraction / 10) % 10);
  block[at + 3] = 48 + (fraction % 10);
  return at + 4;
}
