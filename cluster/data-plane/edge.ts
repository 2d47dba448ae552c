// The invocation API's rules, shared by the uWS front (HTTP/1.1 and WebSocket) and the compat front (HTTP/1.1
// and h2c), with no I/O: which function a request names, which headers pass, and how an outcome becomes a
// status, headers and body. Expected outcomes are values; each maps to one status with a JSON error body
// `{ "error": { "code", "message" } }`, so a failure is never a 200, and never an empty body.
//
// Which function a request names:
//   /invoke/<function>[/<rest>]   the function from the path; the sandbox sees `/<rest>` and the query.
//   /async/<function>[/<rest>]    POST: the same, run asynchronously (202 and a job id).
//   /async/<id>                   GET: the job's state.
//   /ws (a WebSocket upgrade)     the multiplexed WebSocket API (each frame names its function); a plain
//                                 request to /ws is Host-routed like any other path.
//   anything else                 Dirigent-compatible: the function is the Host header (HTTP/2: :authority)
//                                 without its port, and when it has dots, its first label only. Dirigent's
//                                 loader sends the bare function name; the first-label rule also accepts the
//                                 Knative style `<function>.<namespace>.<domain>`. The path goes to the sandbox
//                                 as it is. An IP-literal host names no function (404).
// The prefixes /invoke and /async (and WebSocket upgrades to /ws) are therefore the data plane's own and
// never reach a sandbox under Host routing.
import type { ActorError, AskResult } from '../../actors/actor.js';
import { failureStatus, INVOCATION_FAILURES, type FailureCode, type InvocationOutcome } from '../../actors/messages.js';

export interface EdgeResponse {
  readonly status: number;
  /** Lower-case names; values already checked for CR/LF. The timing headers are not here but in `timing`. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  /** Present when the data plane failed the invocation (the body then holds the same, as JSON). */
  readonly error?: { readonly code: EdgeErrorCode; readonly message: string };
  /**
   * The timing headers' values, on every answer to an invocation. Kept as numbers so that a front can write
   * them as bytes (the uWS front does: strings cost it a UTF-8 copy each); `headersWithTiming` has them as text.
   */
  readonly timing?: ResponseTiming;
}

/** ms, finite and >= 0. */
export interface ResponseTiming {
  readonly queuedMs: number;
  readonly totalMs: number;
  readonly coldStart: boolean;
  /** The sandbox that served the request, free of CR, LF and NUL; undefined when none did. */
  readonly sandboxId: string | undefined;
  /** The function's template version that sandbox runs (a whole number >= 1); undefined when no sandbox answered. */
  readonly version: number | undefined;
}

/** Every failure the edge answers with; its status comes from the one table, `INVOCATION_FAILURES`. */
export type EdgeErrorCode = FailureCode;

export const HEADER_QUEUE_MS = 'x-dirigent-queue-ms';
export const HEADER_COLD_START = 'x-dirigent-cold-start';
export const HEADER_SANDBOX = 'x-dirigent-sandbox';
/** The function's template version that served the request (`FunctionSpec.templateVersion`). */
export const HEADER_VERSION = 'x-dirigent-version';
export const HEADER_SERVER_TIMING = 'server-timing';

const encoder = new TextEncoder();

/** A DNS label, which is exactly what a function name is (actors/function-spec.ts). */
const FUNCTION_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function isFunctionName(name: string): boolean {
  return FUNCTION_NAME.test(name);
}

/** Job ids are made by the async-jobs actor: lower-case base-36 and '-', at most 64 characters. */
const JOB_ID = /^[a-z0-9-]{1,64}$/;

// ---- Which function -------------------------------------------------------------------------------

export type Target =
  | { readonly kind: 'invoke'; readonly functionName: string; readonly path: string }
  | { readonly kind: 'async-submit'; readonly functionName: string; readonly path: string }
  | { readonly kind: 'async-get'; readonly id: string }
  | { readonly kind: 'reject'; readonly response: EdgeResponse };

/**
 * Where a request goes. `url` is the path without the query (as uWS's getUrl gives it), `query` the part
 * after `?` without it (empty when none), `method` upper-case, `host` the Host header ('' when absent).
 */
export function resolveTarget(method: string, url: string, query: string, host: string): Target {
  const search = query === '' ? '' : `?${query}`;
  if (url === '/invoke' || url.startsWith('/invoke/')) {
    const { name, rest } = splitFirstSegment(url.slice('/invoke'.length));
    if (name === '') return reject('UNKNOWN_FUNCTION', 'no function named: use /invoke/<function>[/<path>]');
    if (!isFunctionName(name)) return reject('UNKNOWN_FUNCTION', `no function named ${JSON.stringify(name)} (a function name is a DNS label)`);
    return { kind: 'invoke', functionName: name, path: rest + search };
  }
  if (url === '/async' || url.startsWith('/async/')) {
    const { name, rest } = splitFirstSegment(url.slice('/async'.length));
    if (method === 'GET') {
      if (rest !== '/' || !JOB_ID.test(name)) return reject('UNKNOWN_JOB', `no async job ${JSON.stringify(url.slice('/async/'.length))}: use GET /async/<id>`);
      return { kind: 'async-get', id: name };
    }
    if (method !== 'POST') return reject('METHOD_NOT_ALLOWED', `${method} is not allowed on /async: POST /async/<function>[/<path>] submits a job, GET /async/<id> reads it`, { allow: 'GET, POST' });
    if (!isFunctionName(name)) return reject('UNKNOWN_FUNCTION', name === '' ? 'no function named: use POST /async/<function>[/<path>]' : `no function named ${JSON.stringify(name)} (a function name is a DNS label)`);
    return { kind: 'async-submit', functionName: name, path: rest + search };
  }
  const functionName = functionFromHost(host);
  if (functionName === undefined) {
    return reject('UNKNOWN_FUNCTION', host === '' ? 'the request names no function: use /invoke/<function>[/<path>] or a Host header naming the function' : `the Host header ${JSON.stringify(host)} names no function`);
  }
  return { kind: 'invoke', functionName, path: url + search };
}

/** `/name/rest...` -> name and `/rest...` (at least `/`). */
function splitFirstSegment(tail: string): { name: string; rest: string } {
  if (!tail.startsWith('/')) return { name: '', rest: '/' };
  const slash = tail.indexOf('/', 1);
  return slash === -1 ? { name: tail.slice(1), rest: '/' } : { name: tail.slice(1, slash), rest: tail.slice(slash) };
}

/** The function a Host header (or :authority) names: the host without port, first label only; undefined for IP literals and junk. */
export function functionFromHost(host: string): string | undefined {
  if (host === '' || host.startsWith('[')) return undefined; // IPv6 literal
  const colon = host.indexOf(':');
  const bare = (colon === -1 ? host : host.slice(0, colon)).toLowerCase();
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(bare)) return undefined; // IPv4 literal
  const dot = bare.indexOf('.');
  const label = dot === -1 ? bare : bare.slice(0, dot);
  return isFunctionName(label) ? label : undefined;
}

// ---- Headers ----------------------------------------------------------------------------------------

/** Hop-by-hop headers (RFC 9110 7.6.1) and HTTP/2 pseudo-headers never cross the edge in either direction. */
const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings']);
/** Set by the front itself on the way out: a sandbox's copy would duplicate or contradict it. */
const SET_BY_FRONT: ReadonlySet<string> = new Set(['content-length', 'date', HEADER_QUEUE_MS, HEADER_COLD_START, HEADER_SANDBOX, HEADER_VERSION, HEADER_SERVER_TIMING]);

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const UNSAFE_VALUE = /[\r\n\0]/;

/**
 * Adds one request header for the sandbox: repeats joined with ', ', hop-by-hop and pseudo-headers dropped.
 * Names must be lower-case already (uWS and HTTP/2 give them so). Runs per header of every request.
 */
export function addRequestHeader(headers: Record<string, string>, name: string, value: string): void {
  if (name.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP.has(name) || name === '__proto__') return;
  const previous = headers[name];
  headers[name] = previous === undefined ? value : `${previous}, ${value}`;
}

/** Request headers for the sandbox from name-value pairs (see addRequestHeader). */
export function requestHeaders(pairs: Iterable<readonly [string, string]>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of pairs) addRequestHeader(headers, name, value);
  return headers;
}

/** The sandbox's response headers that may go to the client: valid names and values only (no header injection). */
export function passableResponseHeaders(headers: Readonly<Record<string, unknown>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rawName in headers) {
    const value = headers[rawName];
    const name = passableName(rawName);
    if (name === undefined || typeof value !== 'string' || UNSAFE_VALUE.test(value)) continue;
    out[name] = value;
  }
  return out;
}

/** Verdicts on response header names seen (a sandbox sends the same few on every response): lower-cased, or null. */
const NAME_VERDICTS = new Map<string, string | null>();
/** Names remembered at most; past this, names are judged each time. */
const MAX_NAME_VERDICTS = 1024;

/** `rawName` lower-cased when a client may see it: a token, not hop-by-hop, not one the front sets itself. */
function passableName(rawName: string): string | undefined {
  const known = NAME_VERDICTS.get(rawName);
  if (known !== undefined) return known ?? undefined;
  const name = rawName.toLowerCase();
  const verdict = TOKEN.test(name) && !HOP_BY_HOP.has(name) && !SET_BY_FRONT.has(name) && name !== '__proto__' ? name : null;
  if (NAME_VERDICTS.size < MAX_NAME_VERDICTS) NAME_VERDICTS.set(rawName, verdict);
  return verdict ?? undefined;
}

// ---- Responses ----------------------------------------------------------------------------------------

export function errorBody(code: EdgeErrorCode, message: string): Uint8Array {
  return encoder.encode(JSON.stringify({ error: { code, message } }));
}

export function errorResponse(code: EdgeErrorCode, message: string, timing?: ResponseTiming): EdgeResponse {
  return { status: failureStatus(code), headers: JSON_HEADERS, body: errorBody(code, message), error: { code, message }, timing };
}

const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': 'application/json' });

function reject(code: EdgeErrorCode, message: string, extraHeaders?: Record<string, string>): Target {
  const response = errorResponse(code, message);
  return { kind: 'reject', response: extraHeaders === undefined ? response : { ...response, headers: { ...response.headers, ...extraHeaders } } };
}

export function jsonResponse(status: number, value: unknown): EdgeResponse {
  return { status, headers: { 'content-type': 'application/json' }, body: encoder.encode(JSON.stringify(value)) };
}

/** `ms.toFixed(3)` for ms >= 0, without toFixed's cost (it showed in the data plane's per-request profile). */
export function fixed3(ms: number): string {
  const thousandths = Math.round(ms * 1000);
  if (!Number.isSafeInteger(thousandths)) return ms.toFixed(3);
  const fraction = thousandths % 1000;
  return `${(thousandths - fraction) / 1000}.${fraction < 10 ? '00' : fraction < 100 ? '0' : ''}${fraction}`;
}

/** Timing with its numbers made finite and >= 0, and a sandbox id or version that cannot be a header dropped. ms. */
function timingOf(queuedMs: number, totalMs: number, coldStart: boolean, sandboxId: string | undefined, version?: unknown): ResponseTiming {
  return {
    queuedMs: queuedMs > 0 && queuedMs < Infinity ? queuedMs : 0,
    totalMs: totalMs > 0 && totalMs < Infinity ? totalMs : 0,
    coldStart,
    sandboxId: sandboxId !== undefined && !UNSAFE_VALUE.test(sandboxId) ? sandboxId : undefined,
    version: Number.isSafeInteger(version) && (version as number) >= 1 ? (version as number) : undefined,
  };
}

/** The timing headers as text, one `add(name, value)` each, for the fronts that write text. */
export function addTimingHeaders(timing: ResponseTiming, add: (name: string, value: string) => void): void {
  add(HEADER_QUEUE_MS, String(Math.round(timing.queuedMs)));
  add(HEADER_COLD_START, timing.coldStart ? 'true' : 'false');
  add(HEADER_SERVER_TIMING, `queue;dur=${fixed3(timing.queuedMs)}, total;dur=${fixed3(timing.totalMs)}`);
  if (timing.sandboxId !== undefined) add(HEADER_SANDBOX, timing.sandboxId);
  if (timing.version !== undefined) add(HEADER_VERSION, String(timing.version));
}

/** The response's headers with its timing headers, as text (a new object). */
export function headersWithTiming(response: EdgeResponse): Record<string, string> {
  // Copied by a loop: a spread of these objects measured ~15x slower, and made JSON.stringify of the copy 3x slower.
  const headers: Record<string, string> = {};
  for (const name in response.headers) headers[name] = response.headers[name]!;
  if (response.timing !== undefined) addTimingHeaders(response.timing, (name, value) => void (headers[name] = value));
  return headers;
}

/** The codes a router's outcome may carry (it crossed threads: checked, not trusted). */
const OUTCOME_CODES: ReadonlySet<string> = new Set(Object.entries(INVOCATION_FAILURES).filter(([, f]) => f.by === 'router').map(([code]) => code));

/**
 * The response for what the router's ask settled with. `totalMs` is the time since the request arrived, ms.
 * The outcome crossed threads, so its shape is checked rather than trusted.
 */
export function responseFor(result: AskResult, totalMs: number): EdgeResponse {
  if (!result.ok) return askFailureResponse(result.error, totalMs);
  const outcome = result.value as InvocationOutcome | null;
  if (outcome === null || typeof outcome !== 'object' || typeof outcome.ok !== 'boolean') {
    return errorResponse('ROUTING_FAILED', 'the router answered something that is not an invocation outcome', timingOf(0, totalMs, false, undefined));
  }
  const queuedMs = typeof outcome.queuedMs === 'number' && Number.isFinite(outcome.queuedMs) ? outcome.queuedMs : 0;
  const sandboxId = typeof outcome.sandboxId === 'string' ? outcome.sandboxId : undefined;
  if (!outcome.ok) {
    const code = OUTCOME_CODES.has(outcome.code) ? (outcome.code as EdgeErrorCode) : 'ROUTING_FAILED';
    return errorResponse(code, typeof outcome.message === 'string' ? outcome.message : code, timingOf(queuedMs, totalMs, outcome.coldStart === true, sandboxId));
  }
  if (!Number.isInteger(outcome.status) || outcome.status < 200 || outcome.status > 599) {
    return errorResponse('BAD_SANDBOX_RESPONSE', `the sandbox answered with status ${JSON.stringify(outcome.status)}, which is not in 200..599`, timingOf(queuedMs, totalMs, outcome.coldStart === true, sandboxId, outcome.version));
  }
  const body = outcome.body instanceof Uint8Array ? outcome.body : new Uint8Array(0);
  const headers = outcome.headers !== null && typeof outcome.headers === 'object' ? passableResponseHeaders(outcome.headers) : {};
  return { status: outcome.status, headers, body, timing: timingOf(queuedMs, totalMs, outcome.coldStart === true, sandboxId, outcome.version) };
}

/** An ask that failed (no outcome at all): timed out, runtime stopping, router crashed or unreachable. */
export function askFailureResponse(error: ActorError, totalMs: number): EdgeResponse {
  const timing = timingOf(0, totalMs, false, undefined);
  switch (error.code) {
    case 'ASK_TIMEOUT':
      return errorResponse('DEADLINE_PASSED', `no outcome within the data plane's request timeout: ${error.message}`, timing);
    case 'RUNTIME_STOPPED':
    case 'ACTOR_STOPPED':
      return errorResponse('UNAVAILABLE', `the data plane is stopping: ${error.message}`, timing);
    default:
      return errorResponse('ROUTING_FAILED', `${error.code}: ${error.message}`, timing);
  }
}

