// The runtime's error hierarchy: every error carries a stable `code`.
import type { ActorError } from '../actors/actor.js';

export type RuntimeErrorCode =
  | 'ASK_TIMEOUT'
  | 'NO_SUCH_ACTOR'
  | 'ACTOR_CRASHED'
  | 'ACTOR_STOPPED'
  | 'NO_SUCH_SERVICE'
  | 'SERVICE_FAILED'
  | 'RUNTIME_STOPPED'
  | 'BAD_REQUEST';

export class ActorRuntimeError extends Error {
  constructor(
    readonly code: RuntimeErrorCode | string,
    message: string,
  ) {
    super(message);
    this.name = 'ActorRuntimeError';
  }

  static from(error: ActorError): ActorRuntimeError {
    return new ActorRuntimeError(error.code, error.message);
  }
}

export function actorError(code: RuntimeErrorCode | string, message: string): ActorError {
  return { code, message };
}

/** Turn anything thrown by a service or handler into plain-data ActorError. */
export function toActorError(error: unknown, fallbackCode: string): ActorError {
  if (error && typeof error === 'object') {
    const code = (error as { code?: unknown }).code;
    const message = (error as { message?: unknown }).message;
    return { code: typeof code === 'string' ? code : fallbackCode, message: typeof message === 'string' ? message : String(error) };
  }
  return { code: fallbackCode, message: String(error) };
}
