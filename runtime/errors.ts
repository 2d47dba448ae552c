// The runtime's errors: `ActorRuntimeError` is the thrown form of an `ActorError` (an ask that failed), with a
// code from the one catalogue (actors/errors.ts).
import type { ActorError } from '../actors/actor.js';
import { DirigentError, isErrorCode, type ErrorCode } from '../actors/errors.js';

/** The codes the runtime itself raises. */
export type RuntimeErrorCode = Extract<
  ErrorCode,
  'ASK_TIMEOUT' | 'NO_SUCH_ACTOR' | 'ACTOR_CRASHED' | 'ACTOR_STOPPED' | 'NO_SUCH_SERVICE' | 'SERVICE_FAILED' | 'RUNTIME_STOPPED' | 'SHARD_START_FAILED' | 'BAD_REQUEST'
>;

/** An ask that failed, thrown: its code is the `ActorError`'s (any code an actor may fail an ask with). */
export class ActorRuntimeError extends DirigentError {
  override name = 'ActorRuntimeError';

  static from(error: ActorError): ActorRuntimeError {
    return new ActorRuntimeError(error.code, error.message);
  }
}

export function actorError(code: ErrorCode, message: string): ActorError {
  return { code, message };
}

/**
 * Anything thrown by a service or handler as a plain-data ActorError: its code when it is one of ours, else
 * `fallbackCode`, with a foreign code (Node's `ENOENT`...) kept in front of the message for people.
 */
export function toActorError(error: unknown, fallbackCode: ErrorCode): ActorError {
  if (error && typeof error === 'object') {
    const code = (error as { code?: unknown }).code;
    const raw = (error as { message?: unknown }).message;
    const message = typeof raw === 'string' ? raw : String(error);
    if (isErrorCode(code)) return { code, message };
    return { code: fallbackCode, message: typeof code === 'string' && code !== '' ? `${code}: ${message}` : message };
  }
  return { code: fallbackCode, message: String(error) };
}

/** An ActorError that came from another process: checked, since a peer of another version may send any code. */
export function actorErrorFrom(value: unknown): ActorError {
  const { code, message } = (value ?? {}) as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message : JSON.stringify(value);
  return isErrorCode(code) ? { code, message: text } : { code: 'BAD_RESPONSE', message: `a peer failed with ${JSON.stringify(code)}: ${text}` };
}
