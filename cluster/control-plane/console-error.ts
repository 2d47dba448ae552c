// An expected refusal of a console request (a bad query, an action without the token); the admin API turns it
// into `{ error: { code, message } }` with its status.
export class ConsoleApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
