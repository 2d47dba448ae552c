// Turns whatever a user handler returned into an InvokeResponse.
import type { InvokeResponse } from './runtime.js';

const encoder = new TextEncoder();
const RESPONSE_KEYS = new Set(['status', 'headers', 'body']);

/**
 * - `{ status, headers?, body? }` (a number `status` and no other keys): that response, `body` normalised below;
 * - a string: 200 text/plain; a Uint8Array (Buffer included): 200 application/octet-stream;
 * - `undefined`/`null`: 200 with an empty body;
 * - anything else: 200 application/json of `JSON.stringify(value)`.
 * Header names are lower-cased; values are stringified.
 */
export function normaliseHandlerResult(value: unknown): InvokeResponse {
  if (isResponseShape(value)) {
    const headers: Record<string, string> = {};
    for (const [name, v] of Object.entries(value.headers ?? {})) headers[name.toLowerCase()] = String(v);
    const body = normaliseBody(value.body);
    if (body.contentType !== undefined && headers['content-type'] === undefined) headers['content-type'] = body.contentType;
    return { status: value.status, headers, body: body.bytes };
  }
  const body = normaliseBody(value);
  return { status: 200, headers: body.contentType === undefined ? {} : { 'content-type': body.contentType }, body: body.bytes };
}

function isResponseShape(value: unknown): value is { status: number; headers?: Record<string, unknown>; body?: unknown } {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array || Array.isArray(value)) return false;
  const record = value as Record<string, unknown>;
  const status = record['status'];
  return (
    typeof status === 'number' &&
    Number.isInteger(status) &&
    status >= 100 &&
    status <= 599 &&
    Object.keys(record).every((key) => RESPONSE_KEYS.has(key)) &&
    (record['headers'] === undefined || (typeof record['headers'] === 'object' && record['headers'] !== null))
  );
}

function normaliseBody(value: unknown): { bytes: Uint8Array; contentType?: string } {
  if (value === undefined || value === null) return { bytes: new Uint8Array(0) };
  if (typeof value === 'string') return { bytes: encoder.encode(value), contentType: 'text/plain; charset=utf-8' };
  if (value instanceof Uint8Array) return { bytes: value, contentType: 'application/octet-stream' };
  return { bytes: encoder.encode(JSON.stringify(value)), contentType: 'application/json' };
}
