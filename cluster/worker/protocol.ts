// The sandbox invocation protocol between a data plane (client) and a worker shard's invocation server,
// spoken over one frames connection (runtime/frames.ts: length-prefixed msgpack, token handshake).
//
// Handshake: the client greets with `hello { token, role, id }` (any role, e.g. 'dataplane'); the server
// answers `welcome { role: 'worker', id: 'shard-<n>' }` or refuses (wrong token) and closes.
// Then the client sends request frames and the server answers each with exactly one result frame:
//
//   request  { i: number, s: sandboxId, m: method, p: path and query, h: headers, b: body bytes }
//   result   { i, st: status, h: headers, b: body bytes }       the sandbox answered (any status)
//         or { i, e: { code, message } }                        no answer from the sandbox
//
// `i` is chosen by the client and unique among its requests in flight on that connection; the server
// echoes it. Many requests may be in flight on one connection; results come back as invocations
// complete, in any order. Header names are lower-case. Error codes (`InvokeErrorCode`):
//   SANDBOX_GONE      no such sandbox on this server (never created, deleted, or failed)
//   SANDBOX_TIMEOUT   the invocation ran past the function's timeoutMs (a thread sandbox dies of it)
//   SANDBOX_CRASHED   the sandbox died under the invocation
//   BAD_REQUEST       a field of the request frame has the wrong type
//   INVOKE_FAILED     anything else (a bug): the message says what
// A frame without a numeric `i` cannot be answered: the server closes that connection.
// A closed connection does not cancel its invocations (their results are dropped); the worker carries on.
import type { InvokeRequest, SandboxErrorCode } from '../sandbox/index.js';

export interface RequestFrame {
  readonly i: number;
  readonly s: string;
  readonly m: string;
  readonly p: string;
  readonly h: Record<string, string>;
  readonly b: Uint8Array;
}

export type ResultFrame =
  | { readonly i: number; readonly st: number; readonly h: Record<string, string>; readonly b: Uint8Array }
  | { readonly i: number; readonly e: { readonly code: InvokeErrorCode; readonly message: string } };

export type InvokeErrorCode = Extract<SandboxErrorCode, 'SANDBOX_GONE' | 'SANDBOX_TIMEOUT' | 'SANDBOX_CRASHED'> | 'BAD_REQUEST' | 'INVOKE_FAILED';

const SANDBOX_CODES: ReadonlySet<string> = new Set(['SANDBOX_GONE', 'SANDBOX_TIMEOUT', 'SANDBOX_CRASHED']);

/** The protocol code for whatever a sandbox's `invoke` rejected with. */
export function invokeErrorCode(error: unknown): InvokeErrorCode {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && SANDBOX_CODES.has(code) ? (code as InvokeErrorCode) : 'INVOKE_FAILED';
}

/** The request a frame carries (its sandbox is `frame.s`), or why it is malformed (naming the field). Assumes `i` was checked. */
export function readRequestFrame(frame: Partial<RequestFrame>): InvokeRequest | string {
  if (typeof frame.s !== 'string') return `s (sandbox id) must be a string, got ${typeof frame.s}`;
  if (typeof frame.m !== 'string') return `m (method) must be a string, got ${typeof frame.m}`;
  if (typeof frame.p !== 'string') return `p (path) must be a string, got ${typeof frame.p}`;
  if (!(frame.b instanceof Uint8Array)) return `b (body) must be bytes, got ${typeof frame.b}`;
  const headers = frame.h;
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) return 'h (headers) must be a map of strings';
  for (const name in headers) if (typeof headers[name] !== 'string') return `h.${name} must be a string`;
  return { method: frame.m, path: frame.p, headers, body: frame.b };
}
