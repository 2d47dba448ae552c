// The one error hierarchy, after undici's lib/core/errors.js: every error this codebase raises is a
// `DirigentError`, or a subclass of it per area, whose `code` comes from the closed catalogue below. Callers
// branch on the code (`hasCode` also looks down the `cause` chain), never on message text: the message is for
// people. An error that crosses a thread or a socket travels as a `WireError` (name, code, message, stack) and
// is rebuilt on the other side (`fromWire`) as the `cause` of the error raised there, as Temporal's worker
// threads send theirs. Expected outcomes of an invocation are not errors: see `INVOCATION_FAILURES` in
// messages.ts. Of Node's own codes, the catalogue holds those a decision reads; any other becomes the
// caller's fallback code, with the original in the message (runtime/errors.ts, `toActorError`).

/**
 * Node's and undici's own codes for a socket that could not be opened or broke: a service may fail with them, and
 * actors/dp-sandbox.ts decides on them (a sandbox whose worker cannot be reached is broken).
 */
export const SOCKET_ERROR_CODES = [
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
] as const;

/** Every code a `DirigentError` or an `ActorError` may carry, by area. */
export const ERROR_CODES = [
  // The actor runtime (runtime/): asks, actors, services, shards, peers.
  'ASK_TIMEOUT',
  'NO_SUCH_ACTOR',
  'ACTOR_CRASHED',
  'ACTOR_STOPPED',
  'NO_SUCH_SERVICE',
  'SERVICE_FAILED',
  'RUNTIME_STOPPED',
  'SHARD_START_FAILED',
  'PEER_GONE',
  'PEER_UNAVAILABLE',
  'FORBIDDEN',
  /** Inspection: an actor kind's `summary` threw; a shard's shutdown failed. */
  'SUMMARY_FAILED',
  'SHUTDOWN_FAILED',
  /** A request or message whose fields have the wrong type or range (any area). */
  'BAD_REQUEST',
  // Framed connections (runtime/frames.ts) and addresses.
  'CONNECT_TIMEOUT',
  'CONNECT_FAILED',
  'CONNECT_REFUSED',
  'BAD_ADDRESS',
  'BAD_RESPONSE',
  'TIMEOUT',
  // Actor states (actors/).
  'IMPOSSIBLE_TRANSITION',
  'INVALID_NODE_INIT',
  // Sandbox runtimes (cluster/sandbox/).
  'INVALID_SPEC',
  'UNSUPPORTED_SOURCE',
  'SANDBOX_EXISTS',
  'SANDBOX_CREATE_FAILED',
  'SANDBOX_TIMEOUT',
  'SANDBOX_CRASHED',
  'SANDBOX_GONE',
  'SANDBOX_ABORTED',
  'SANDBOX_FAILED',
  'RUNTIME_CLOSED',
  'INVALID_POOL_SETTINGS',
  // Workers and their invocation connections (cluster/worker/).
  'INVALID_WORKER_OPTIONS',
  'WORKER_NOT_STARTED',
  'INVOKE_FAILED',
  'INVOKE_TIMEOUT',
  'CONNECTION_CLOSED',
  'NAME_MISMATCH',
  'REGISTRATION_FAILED',
  'CONTROL_PLANE_UNREACHABLE',
  // Placement (actors/scheduler.ts, the control plane).
  'NO_FIT',
  'NO_NODES',
  'NO_NODE_FITS',
  'NO_WORKER',
  'NO_WORKER_FOR_RUNTIME',
  'FUNCTION_DELETING',
  // The data plane (cluster/data-plane/).
  'INVALID_DATA_PLANE_OPTIONS',
  'PORT_TAKEN',
  'LISTEN_FAILED',
  'UWS_NOT_NATIVE',
  'CONNECTION_FAILED',
  'CONNECTION_LOST',
  'ASYNC_QUEUE_FULL',
  'ASYNC_STORE_FAILED',
  'ASYNC_UNAVAILABLE',
  'UNAVAILABLE',
  // The store (cluster/store/).
  'STORE_CLOSED',
  'STORE_INVALID_KEY',
  'STORE_NOT_JSON',
  'STORE_CORRUPT',
  'STORE_FENCED',
  // The admin and console APIs (cluster/control-plane/) and their clients.
  'BODY_TOO_LARGE',
  'CONCURRENT_UPDATE',
  'FUNCTION_EXISTS',
  'INVALID_JSON',
  'INVALID_QUERY',
  'INVALID_REGISTRATION',
  'LEADER_UNREACHABLE',
  'METHOD_NOT_ALLOWED',
  'NOT_FOUND',
  'NOT_LEADER',
  'NO_DATAPLANE',
  'NO_LEADER',
  'SOURCE_FAILED',
  'UNAUTHORIZED',
  'UNKNOWN_FUNCTION',
  'INTERNAL_ERROR',
  /** The console's actions (cluster/control-plane/console-actions.ts) and event stream. */
  'ACTIONS_DISABLED',
  'INVALID_BODY',
  'REMOTE_ACTOR',
  'TOO_MANY_STREAMS',
  'UNKNOWN_NODE',
  /** An HTTP answer that is not the API's JSON error body. */
  'HTTP_ERROR',
  // The command line (cluster/flags.ts, cluster/cli.ts).
  'INVALID_USAGE',
  'UNKNOWN_COMMAND',
  'UNKNOWN_OPTION',
  'INVALID_OPTION',
  'MISSING_ARGUMENT',
  // Experiments (cluster/experiments/).
  'INVALID_TRACE',
  'INVALID_REPLAY',
  /** A server the experiment drives cannot be reached. */
  'UNREACHABLE',
  'NO_SUCH_PROCESS',
  'INVALID_RECORDS',
  'EIO',
  ...SOCKET_ERROR_CODES,
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES);

/** Whether `code` (from another thread, process or peer) is one of ours. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && KNOWN.has(code);
}

/** The base of every error raised here: a stable code from the catalogue, a message for people, an optional cause. */
export class DirigentError<C extends ErrorCode = ErrorCode> extends Error {
  override name = 'DirigentError';
  constructor(
    readonly code: C,
    message: string,
    options?: { readonly cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Whether `error`, or an error in its `cause` chain, carries one of `codes` (at most 8 levels deep). */
export function hasCode(error: unknown, ...codes: readonly ErrorCode[]): boolean {
  let current = error;
  for (let depth = 0; depth < 8 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (codes as readonly string[]).includes(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** An error as plain data, for a thread boundary or a socket. `code` is absent when the error had none of ours. */
export interface WireError {
  readonly name: string;
  readonly code?: ErrorCode;
  readonly message: string;
  readonly stack?: string;
}

/** `error` as plain data (anything thrown: an Error, one of ours, or a value). */
export function toWire(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const code = (error as { code?: unknown }).code;
  return { name: error.name, ...(isErrorCode(code) ? { code } : {}), message: error.message, ...(error.stack === undefined ? {} : { stack: error.stack }) };
}

/**
 * The error a `WireError` describes, rebuilt on this side: a `DirigentError` when it had a code of ours, else a
 * plain Error; its name and remote stack kept. Raise it as the `cause` of an error of this side's own.
 */
export function fromWire(wire: WireError): Error {
  const error = wire.code === undefined ? new Error(wire.message) : new DirigentError(wire.code, wire.message);
  error.name = typeof wire.name === 'string' ? wire.name : 'Error';
  if (typeof wire.stack === 'string') error.stack = wire.stack;
  return error;
}
