// What every front (uWS HTTP and WebSocket in the shard threads, the compat port's HTTP/1.1 and h2c in the
// main thread) does with a request once it is read: ask the function's router (or the async-jobs actor) and
// turn the answer into an EdgeResponse. The fronts differ only in how they ask (a shard's askWith, the
// runtime's askFor).
import { assertNever, type Address, type AskResult } from '../../actors/actor.js';
import { asyncJobsAddress, type AsyncJobView, type AsyncJobsMessage } from '../../actors/async-jobs.js';
import { functionAddress, routerAddress, type FunctionMessage, type FunctionStatus, type Invocation, type RouterMessage } from '../../actors/messages.js';
import { monotonicUs } from '../../runtime/clock.js';
import { askFailureResponse, errorResponse, jsonResponse, responseFor, type EdgeResponse, type Target } from './edge.js';

export type Ask = (to: Address, message: unknown, timeoutMs: number, settle: (result: AskResult) => void) => void;

export interface ApiOptions {
  /** Bound of one synchronous invocation at the edge, ms (the router enforces each function's own deadlines first). */
  readonly requestTimeoutMs: number;
  /** False when the data plane runs without an asyncDir: the async API answers 501. */
  readonly asyncEnabled: boolean;
  /** The router (replica) a function's invocations go to; default `routerAddress`. */
  readonly router?: (functionName: string) => Address;
}

/** Submitting a job waits for one durable store write; reading one is in memory. ms. */
const ASYNC_ASK_TIMEOUT_MS = 10_000;
/** Bound on asking the control plane whether an async job's function exists, ms (a loopback round trip is ~0.3 ms). */
const FUNCTION_CHECK_TIMEOUT_MS = 2000;

export class InvokeApi {
  private readonly router: (functionName: string) => Address;

  constructor(
    private readonly ask: Ask,
    private readonly options: ApiOptions,
  ) {
    this.router = options.router ?? routerAddress;
  }

  /** Serve a resolved target; `invocation` is only read for invoke and async-submit targets. */
  serve(target: Target, invocation: Invocation, done: (response: EdgeResponse) => void): void {
    switch (target.kind) {
      case 'reject':
        return done(target.response);
      case 'invoke':
        return this.invoke(target.functionName, invocation, done);
      case 'async-submit':
        return this.submitAsync(target.functionName, invocation, done);
      case 'async-get':
        return this.getAsync(target.id, done);
      default:
        return assertNever(target, 'target');
    }
  }

  invoke(functionName: string, invocation: Invocation, done: (response: EdgeResponse) => void): void {
    const startedUs = monotonicUs();
    const message: RouterMessage = { type: 'rt.invoke', invocation };
    this.ask(this.router(functionName), message, this.options.requestTimeoutMs, (result) => done(responseFor(result, (monotonicUs() - startedUs) / 1000)));
  }

  /**
   * A job for a function the control plane does not have is answered 404 at once, as a synchronous call would
   * be, rather than accepted and failed later. When the control plane cannot say (unreachable, failing over, slow)
   * the job is accepted: it is durable, and its attempts find out.
   */
  submitAsync(functionName: string, invocation: Invocation, done: (response: EdgeResponse) => void): void {
    if (!this.options.asyncEnabled) return done(asyncDisabled());
    const check: FunctionMessage = { type: 'fn.status' };
    this.ask(functionAddress(functionName), check, FUNCTION_CHECK_TIMEOUT_MS, (result) => {
      const unknown = result.ok ? result.value === null || typeof result.value !== 'object' : result.error.code === 'NO_SUCH_ACTOR';
      if (unknown) return done(errorResponse('UNKNOWN_FUNCTION', `no function named ${functionName}`));
      if (result.ok && (result.value as FunctionStatus).deleting) return done(errorResponse('UNKNOWN_FUNCTION', `function ${functionName} is being deleted`));
      this.enqueueAsync(functionName, invocation, done);
    });
  }

  private enqueueAsync(functionName: string, invocation: Invocation, done: (response: EdgeResponse) => void): void {
    const message: AsyncJobsMessage = { type: 'aj.submit', functionName, invocation };
    this.ask(asyncJobsAddress, message, ASYNC_ASK_TIMEOUT_MS, (result) => {
      if (result.ok) {
        const id = (result.value as { id: string }).id;
        return done({ ...jsonResponse(202, { id }), headers: { 'content-type': 'application/json', location: `/async/${id}` } });
      }
      switch (result.error.code) {
        case 'ASYNC_QUEUE_FULL':
          return done(errorResponse('ASYNC_QUEUE_FULL', result.error.message));
        case 'BAD_REQUEST':
          return done(errorResponse('BAD_REQUEST', result.error.message));
        case 'ASYNC_STORE_FAILED':
        case 'ASYNC_UNAVAILABLE':
        case 'ASK_TIMEOUT':
          return done(errorResponse('UNAVAILABLE', `the job was not accepted: ${result.error.message}`));
        default:
          return done(askFailureResponse(result.error, 0));
      }
    });
  }

  getAsync(id: string, done: (response: EdgeResponse) => void): void {
    if (!this.options.asyncEnabled) return done(asyncDisabled());
    const message: AsyncJobsMessage = { type: 'aj.get', id };
    this.ask(asyncJobsAddress, message, ASYNC_ASK_TIMEOUT_MS, (result) => {
      if (!result.ok) return done(result.error.code === 'ASK_TIMEOUT' || result.error.code === 'ASYNC_UNAVAILABLE' ? errorResponse('UNAVAILABLE', result.error.message) : askFailureResponse(result.error, 0));
      const view = result.value as AsyncJobView | null;
      if (view === null) return done(errorResponse('UNKNOWN_JOB', `no async job ${id} (never submitted here, or its result expired)`));
      done(jsonResponse(200, jobJson(view)));
    });
  }
}

function asyncDisabled(): EdgeResponse {
  return errorResponse('ASYNC_DISABLED', 'asynchronous invocations are disabled: start the data plane with an asyncDir');
}

/** The job as the API shows it; the response body is base64 (it may be any bytes). */
export function jobJson(view: AsyncJobView): unknown {
  const base = { id: view.id, function: view.functionName, status: view.status, attempts: view.attempts, submittedAt: view.submittedAt };
  if (view.status === 'done' && view.response) {
    const body = view.response.body;
    return {
      ...base,
      finishedAt: view.finishedAt,
      response: {
        status: view.response.status,
        headers: view.response.headers,
        body: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64'),
        sandboxId: view.response.sandboxId,
        coldStart: view.response.coldStart,
        queuedMs: view.response.queuedMs,
        version: view.response.version,
      },
    };
  }
  if (view.status === 'failed' && view.error) return { ...base, finishedAt: view.finishedAt, error: view.error };
  return base;
}
