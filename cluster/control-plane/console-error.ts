import { DirigentError, type ErrorCode } from '../../actors/errors.js';

/** An expected refusal of a console request (a bad query, an action without the token); the admin API turns it
 * into `{ error: { code, message } }` with its status (0: no HTTP answer at all). */
export class ConsoleApiError extends DirigentError {
  override name = 'ConsoleApiError';
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    options?: { readonly cause?: unknown },
  ) {
    super(code, message, options);
  }
}
