// The async-jobs actor (data plane, one per data plane): owns asynchronous invocations from submission to
// result. A job is written to the store before its submitter hears its id, so an accepted job survives a
// crash; it then runs through the function's router like any invocation, and is retried when the failure is
// one a later attempt may not see (429 queue full, 502 sandbox failed, 503 no capacity, 504 deadline), up to
// `maxAttempts` attempts with exponential backoff. Its result is stored too, and kept for `resultTtlMs` and
// at most `maxResults` finished jobs. After a restart the actor loads the store, answers for finished jobs and
// runs every pending one again (at-least-once: a job interrupted mid-attempt runs again).
//
// Pure: persistence is the `call` service named by `storeService` (input `AsyncStoreInput`), which the
// data plane backs with a FileStore. Job lifecycle (one record per id):
//   saving --stored--> queued --> running --done/non-retryable--> done | failed
//                                 running --retryable--> backoff --timer--> queued     (attempts < max)
// The step mutates its own maps and arrays in place (O(1) per message with thousands of jobs); a state value
// must not be reused after it was stepped.

import { assertNever, type ActorError, type ActorKind, type Address, type AskResult, type Effect, type ReplyTo, type Step, type StepContext } from './actor.js';
import { failureStatus, routerAddress, type FailureCode, type Invocation, type InvocationOutcome, type RouterMessage } from './messages.js';

export const asyncJobsAddress: Address = { kind: 'asyncjobs', id: 'jobs' };

/** Default name of the persistence service. */
export const ASYNC_STORE = 'async.store';

/** What the persistence service is asked: `list` resolves to StoredJob[]; `put` and `delete` resolve once durable. */
export type AsyncStoreInput = { readonly op: 'list' } | { readonly op: 'put'; readonly job: StoredJob } | { readonly op: 'delete'; readonly id: string };

/** A job's stored answer: the sandbox's outcome. */
export type AsyncResponse = Omit<Extract<InvocationOutcome, { ok: true }>, 'ok'>;

export interface AsyncError {
  /** The HTTP status the failure would have had on a synchronous call (`failureStatus(code)`). */
  readonly status: number;
  readonly code: FailureCode;
  readonly message: string;
}

/** A job as persisted (plain data; the service decides the encoding of the bytes). */
export interface StoredJob {
  readonly id: string;
  readonly functionName: string;
  readonly invocation: Invocation;
  /** ms. */
  readonly submittedAt: number;
  /** Attempts that ended in a retryable failure. */
  readonly attempts: number;
  readonly state: 'pending' | 'done' | 'failed';
  readonly response?: AsyncResponse;
  readonly error?: AsyncError;
  /** ms. */
  readonly finishedAt?: number;
}

/** The answer to `aj.get` (null when the id is unknown or expired). */
export interface AsyncJobView {
  readonly id: string;
  readonly functionName: string;
  readonly status: 'pending' | 'done' | 'failed';
  readonly attempts: number;
  readonly submittedAt: number;
  readonly finishedAt?: number;
  readonly response?: AsyncResponse;
  readonly error?: AsyncError;
}

export type AsyncJobsMessage =
  /** Load the store and run pending jobs (sent once at data-plane start; any other message also triggers it). */
  | { readonly type: 'aj.start' }
  /** Asked by the edge: replies `{ id }` once the job is durable; fails ASYNC_QUEUE_FULL, ASYNC_STORE_FAILED or BAD_REQUEST. */
  | { readonly type: 'aj.submit'; readonly functionName: string; readonly invocation: Invocation }
  /** Asked by the edge: replies AsyncJobView | null. */
  | { readonly type: 'aj.get'; readonly id: string }
  /** Outcomes of effects and timers. */
  | { readonly type: 'aj.loaded'; readonly result: AskResult }
  | { readonly type: 'aj.saved'; readonly id: string; readonly result: AskResult }
  | { readonly type: 'aj.outcome'; readonly id: string; readonly result: AskResult }
  | { readonly type: 'aj.retry'; readonly id: string }
  | { readonly type: 'aj.written'; readonly id: string; readonly what: string; readonly result: AskResult }
  | { readonly type: 'aj.sweep' };

export interface AsyncJobsConfig {
  /** Bound of one attempt (the ask to the router), ms. */
  readonly attemptTimeoutMs: number;
  /** Attempts per job, >= 1. Default 3. */
  readonly maxAttempts?: number;
  /** Delay before the second attempt, ms; each later one waits 4x longer. Default 500. */
  readonly retryBaseMs?: number;
  /** Jobs running at once. Default 64. */
  readonly maxRunning?: number;
  /** Jobs accepted and not finished, beyond which submissions fail with ASYNC_QUEUE_FULL. Default 10 000. */
  readonly maxPending?: number;
  /** How long a finished job's result is kept, ms. Default 1 h. */
  readonly resultTtlMs?: number;
  /** Finished jobs kept at most (oldest dropped first). Default 10 000. */
  readonly maxResults?: number;
  /** Pause before loading the store again after it failed, ms. Default 1000. */
  readonly loadRetryMs?: number;
  readonly storeService?: string;
}

type Settings = Required<AsyncJobsConfig>;

export const ASYNC_JOBS_DEFAULTS: Omit<Settings, 'attemptTimeoutMs'> = {
  maxAttempts: 3,
  retryBaseMs: 500,
  maxRunning: 64,
  maxPending: 10_000,
  resultTtlMs: 3_600_000,
  maxResults: 10_000,
  loadRetryMs: 1000,
  storeService: ASYNC_STORE,
};

/** Statuses a later attempt may not see again. */
const RETRYABLE: ReadonlySet<number> = new Set([429, 502, 503, 504]);

type JobPhase = 'saving' | 'queued' | 'running' | 'backoff' | 'done' | 'failed';

interface Job {
  readonly id: string;
  readonly functionName: string;
  readonly invocation: Invocation;
  readonly submittedAt: number;
  attempts: number;
  phase: JobPhase;
  /** The submitter, while the job is being saved. */
  replyTo?: ReplyTo;
  response?: AsyncResponse;
  error?: AsyncError;
  finishedAt?: number;
}

interface Waiting {
  readonly message: AsyncJobsMessage;
  readonly replyTo: ReplyTo | undefined;
}

export type AsyncJobsState =
  | { readonly phase: 'idle' }
  | { readonly phase: 'loading'; readonly waiting: Waiting[] }
  | {
      readonly phase: 'ready';
      readonly jobs: Map<string, Job>;
      /** Ids waiting to run, FIFO. */
      readonly queue: string[];
      /** Ids of finished jobs, oldest first (finish order). */
      readonly finished: string[];
      running: number;
      /** Jobs accepted and not finished (saving, queued, running, backoff). */
      pending: number;
      seq: number;
      sweepScheduled: boolean;
    };

type Ready = Extract<AsyncJobsState, { phase: 'ready' }>;
type Fx = Effect<AsyncJobsMessage>;

const SWEEP_TIMER = 'sweep';

export function asyncJobsKind(config: AsyncJobsConfig): ActorKind<AsyncJobsState, AsyncJobsMessage> {
  const settings = settle(config);
  return {
    kind: asyncJobsAddress.kind,
    virtual: true,
    init: () => ({ phase: 'idle' }),
    step: (state, message, ctx) => step(settings, state, message, ctx),
    summary: (state) =>
      state.phase === 'ready'
        ? { phase: state.phase, jobs: state.jobs.size, pending: state.pending, queued: state.queue.length, running: state.running, finished: state.finished.length }
        : { phase: state.phase },
  };
}

function settle(config: AsyncJobsConfig): Settings {
  const s: Settings = { ...ASYNC_JOBS_DEFAULTS, ...definedOnly(config) } as Settings;
  const positive = (name: keyof Settings, min: number) => {
    const value = s[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) throw new Error(`async jobs: ${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  };
  positive('attemptTimeoutMs', 1);
  positive('maxAttempts', 1);
  positive('retryBaseMs', 0);
  positive('maxRunning', 1);
  positive('maxPending', 1);
  positive('resultTtlMs', 1);
  positive('maxResults', 1);
  positive('loadRetryMs', 1);
  return s;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function step(s: Settings, state: AsyncJobsState, message: AsyncJobsMessage, ctx: StepContext): Step<AsyncJobsState, AsyncJobsMessage> {
  switch (state.phase) {
    case 'idle':
      return startLoading(s, [], message, ctx);
    case 'loading':
      if (message.type === 'aj.loaded') return loaded(s, state.waiting, message.result, ctx);
      if (message.type === 'aj.submit' || message.type === 'aj.get') state.waiting.push({ message, replyTo: ctx.replyTo });
      return { state };
    case 'ready':
      return stepReady(s, state, message, ctx);
    default:
      return assertNever(state, 'async jobs phase');
  }
}

function startLoading(s: Settings, waiting: Waiting[], message: AsyncJobsMessage, ctx: StepContext): Step<AsyncJobsState, AsyncJobsMessage> {
  // Results of effects from before a restart (a crash restarts the actor from init) are meaningless now.
  const buffered = message.type === 'aj.submit' || message.type === 'aj.get' ? [...waiting, { message, replyTo: ctx.replyTo }] : waiting;
  return {
    state: { phase: 'loading', waiting: buffered },
    effects: [{ type: 'call', service: s.storeService, input: { op: 'list' } satisfies AsyncStoreInput, then: (result) => ({ type: 'aj.loaded', result }) }],
  };
}

function loaded(s: Settings, waiting: Waiting[], result: AskResult, ctx: StepContext): Step<AsyncJobsState, AsyncJobsMessage> {
  if (!result.ok) {
    const effects: Fx[] = [
      { type: 'log', level: 'error', text: `cannot load async jobs (${result.error.code}: ${result.error.message}); retrying in ${s.loadRetryMs} ms` },
      { type: 'schedule', afterMs: s.loadRetryMs, message: { type: 'aj.start' }, timer: 'load' },
    ];
    for (const w of waiting) if (w.replyTo) effects.push({ type: 'fail', to: w.replyTo, error: { code: 'ASYNC_UNAVAILABLE', message: `async jobs cannot be loaded: ${result.error.message}` } });
    return { state: { phase: 'idle' }, effects };
  }
  const state: Ready = { phase: 'ready', jobs: new Map(), queue: [], finished: [], running: 0, pending: 0, seq: 0, sweepScheduled: false };
  const records = Array.isArray(result.value) ? (result.value as StoredJob[]) : [];
  const pending = records.filter((r) => r.state === 'pending').sort((a, b) => a.submittedAt - b.submittedAt);
  const finished = records.filter((r) => r.state !== 'pending').sort((a, b) => (a.finishedAt ?? 0) - (b.finishedAt ?? 0));
  const effects: Fx[] = [];
  for (const r of pending) {
    state.jobs.set(r.id, { id: r.id, functionName: r.functionName, invocation: r.invocation, submittedAt: r.submittedAt, attempts: r.attempts, phase: 'queued' });
    state.queue.push(r.id);
    state.pending += 1;
  }
  for (const r of finished) {
    const job: Job = { id: r.id, functionName: r.functionName, invocation: r.invocation, submittedAt: r.submittedAt, attempts: r.attempts, phase: r.state === 'done' ? 'done' : 'failed', finishedAt: r.finishedAt ?? ctx.now };
    if (r.response) job.response = r.response;
    if (r.error) job.error = r.error;
    state.jobs.set(r.id, job);
    state.finished.push(r.id);
  }
  if (pending.length > 0 || finished.length > 0) effects.push({ type: 'log', level: 'info', text: `loaded ${pending.length} pending and ${finished.length} finished async jobs` });
  effects.push(...expire(s, state, ctx.now), ...scheduleSweep(s, state));
  for (const w of waiting) {
    const next = stepReady(s, state, w.message, w.replyTo ? { ...ctx, replyTo: w.replyTo } : ctx);
    effects.push(...(next.effects ?? []));
  }
  effects.push(...pump(s, state));
  return { state, effects };
}

function stepReady(s: Settings, state: Ready, message: AsyncJobsMessage, ctx: StepContext): Step<AsyncJobsState, AsyncJobsMessage> {
  switch (message.type) {
    case 'aj.start':
    case 'aj.loaded':
      return { state };
    case 'aj.submit':
      return { state, effects: submit(s, state, message, ctx) };
    case 'aj.get': {
      const job = state.jobs.get(message.id);
      const value = job === undefined || job.phase === 'saving' ? null : view(job);
      return { state, effects: ctx.replyTo ? [{ type: 'reply', to: ctx.replyTo, value }] : [] };
    }
    case 'aj.saved':
      return { state, effects: saved(s, state, message.id, message.result) };
    case 'aj.outcome':
      return { state, effects: outcome(s, state, message.id, message.result, ctx) };
    case 'aj.retry': {
      const job = state.jobs.get(message.id);
      if (job?.phase !== 'backoff') return { state };
      job.phase = 'queued';
      state.queue.push(job.id);
      return { state, effects: pump(s, state) };
    }
    case 'aj.written':
      return {
        state,
        effects: message.result.ok ? [] : [{ type: 'log', level: 'warn', text: `async job ${message.id}: storing its ${message.what} failed (${message.result.error.code}: ${message.result.error.message})` }],
      };
    case 'aj.sweep':
      state.sweepScheduled = false;
      return { state, effects: [...expire(s, state, ctx.now), ...scheduleSweep(s, state)] };
    default:
      return assertNever(message, 'async jobs message');
  }
}

function submit(s: Settings, state: Ready, message: Extract<AsyncJobsMessage, { type: 'aj.submit' }>, ctx: StepContext): Fx[] {
  const replyTo = ctx.replyTo;
  if (replyTo === undefined) return [{ type: 'log', level: 'warn', text: 'aj.submit must be asked (its answer is the job id); ignored' }];
  const problem = invalidSubmission(message);
  if (problem !== undefined) return [{ type: 'fail', to: replyTo, error: { code: 'BAD_REQUEST', message: problem } }];
  if (state.pending >= s.maxPending) {
    return [{ type: 'fail', to: replyTo, error: { code: 'ASYNC_QUEUE_FULL', message: `${state.pending} async jobs are pending, the most this data plane accepts (maxPending ${s.maxPending})` } }];
  }
  const id = newId(state, ctx);
  const job: Job = { id, functionName: message.functionName, invocation: message.invocation, submittedAt: ctx.now, attempts: 0, phase: 'saving', replyTo };
  state.jobs.set(id, job);
  state.pending += 1;
  return [{ type: 'call', service: s.storeService, input: { op: 'put', job: stored(job) } satisfies AsyncStoreInput, then: (result) => ({ type: 'aj.saved', id, result }) }];
}

function invalidSubmission(message: { functionName: unknown; invocation: unknown }): string | undefined {
  if (typeof message.functionName !== 'string' || message.functionName === '') return 'functionName must be a non-empty string';
  const inv = message.invocation as Partial<Invocation> | null;
  if (inv === null || typeof inv !== 'object') return 'invocation must be an object';
  if (typeof inv.method !== 'string' || typeof inv.path !== 'string') return 'invocation.method and invocation.path must be strings';
  if (inv.headers === null || typeof inv.headers !== 'object') return 'invocation.headers must be an object of strings';
  if (!(inv.body instanceof Uint8Array)) return 'invocation.body must be bytes';
  return undefined;
}

/** Ids are `<time base 36>-<seq><4 random base-36 digits>`: unique across restarts as long as the clock moves on. */
function newId(state: Ready, ctx: StepContext): string {
  for (;;) {
    state.seq += 1;
    const random = Math.floor(ctx.random() * 36 ** 4)
      .toString(36)
      .padStart(4, '0');
    const id = `${Math.max(0, Math.floor(ctx.now)).toString(36)}-${state.seq.toString(36)}${random}`;
    if (!state.jobs.has(id)) return id;
  }
}

function saved(s: Settings, state: Ready, id: string, result: AskResult): Fx[] {
  const job = state.jobs.get(id);
  if (job?.phase !== 'saving') return [];
  const replyTo = job.replyTo;
  delete job.replyTo;
  if (!result.ok) {
    state.jobs.delete(id);
    state.pending -= 1;
    return replyTo ? [{ type: 'fail', to: replyTo, error: { code: 'ASYNC_STORE_FAILED', message: `the job could not be stored: ${result.error.message}` } }] : [];
  }
  job.phase = 'queued';
  state.queue.push(id);
  const effects: Fx[] = replyTo ? [{ type: 'reply', to: replyTo, value: { id } }] : [];
  return [...effects, ...pump(s, state)];
}

function pump(s: Settings, state: Ready): Fx[] {
  const effects: Fx[] = [];
  while (state.running < s.maxRunning && state.queue.length > 0) {
    const id = state.queue.shift()!;
    const job = state.jobs.get(id);
    if (job?.phase !== 'queued') continue;
    job.phase = 'running';
    state.running += 1;
    effects.push({
      type: 'ask',
      to: routerAddress(job.functionName),
      message: { type: 'rt.invoke', invocation: job.invocation } satisfies RouterMessage,
      timeoutMs: s.attemptTimeoutMs,
      then: (result) => ({ type: 'aj.outcome', id, result }),
    });
  }
  return effects;
}

/** How one attempt ended: a response, or a failure that may or may not be worth another attempt. */
function classify(result: AskResult): { response: AsyncResponse } | { error: AsyncError; retryable: boolean } {
  if (!result.ok) return { error: askError(result.error), retryable: true };
  const o = result.value as InvocationOutcome | null;
  if (o === null || typeof o !== 'object' || typeof o.ok !== 'boolean') return { error: failure('ROUTING_FAILED', 'the router answered something that is not an invocation outcome'), retryable: true };
  if (o.ok) return { response: { status: o.status, headers: o.headers, body: o.body, sandboxId: o.sandboxId, coldStart: o.coldStart, queuedMs: o.queuedMs, version: o.version } };
  return { error: { status: o.status, code: o.code, message: o.message }, retryable: RETRYABLE.has(o.status) };
}

function askError(error: ActorError): AsyncError {
  return error.code === 'ASK_TIMEOUT' ? failure('DEADLINE_PASSED', `no outcome within ${error.message}`) : failure('ROUTING_FAILED', `${error.code}: ${error.message}`);
}

function failure(code: FailureCode, message: string): AsyncError {
  return { status: failureStatus(code), code, message };
}

function outcome(s: Settings, state: Ready, id: string, result: AskResult, ctx: StepContext): Fx[] {
  const job = state.jobs.get(id);
  if (job?.phase !== 'running') return [];
  state.running -= 1;
  const ended = classify(result);
  const effects: Fx[] = [];
  if ('error' in ended && ended.retryable && job.attempts + 1 < s.maxAttempts) {
    job.attempts += 1;
    job.phase = 'backoff';
    job.error = ended.error;
    const delay = s.retryBaseMs * 4 ** (job.attempts - 1);
    effects.push(
      { type: 'log', level: 'info', text: `async job ${id} attempt ${job.attempts} failed (${ended.error.code}); retrying in ${delay} ms` },
      { type: 'schedule', afterMs: delay, message: { type: 'aj.retry', id }, timer: `retry:${id}` },
      // The attempt count is stored so that a job that keeps failing cannot retry forever across restarts.
      write(s, job, 'attempt count'),
    );
  } else {
    if ('error' in ended) {
      job.attempts += 1;
      job.phase = 'failed';
      job.error = ended.error;
    } else {
      job.phase = 'done';
      job.response = ended.response;
      delete job.error;
    }
    job.finishedAt = ctx.now;
    state.pending -= 1;
    state.finished.push(id);
    effects.push(write(s, job, 'result'), ...expire(s, state, ctx.now), ...scheduleSweep(s, state));
  }
  return [...effects, ...pump(s, state)];
}

function write(s: Settings, job: Job, what: string): Fx {
  return { type: 'call', service: s.storeService, input: { op: 'put', job: stored(job) } satisfies AsyncStoreInput, then: (result) => ({ type: 'aj.written', id: job.id, what, result }) };
}

/** Drop finished jobs past their time or beyond the count bound, oldest first. */
function expire(s: Settings, state: Ready, now: number): Fx[] {
  const effects: Fx[] = [];
  while (state.finished.length > 0) {
    const id = state.finished[0]!;
    const job = state.jobs.get(id);
    const old = job === undefined || (job.finishedAt ?? now) + s.resultTtlMs <= now;
    if (!old && state.finished.length <= s.maxResults) break;
    state.finished.shift();
    state.jobs.delete(id);
    effects.push({ type: 'call', service: s.storeService, input: { op: 'delete', id } satisfies AsyncStoreInput, then: (result) => ({ type: 'aj.written', id, what: 'deletion', result }) });
  }
  return effects;
}

function scheduleSweep(s: Settings, state: Ready): Fx[] {
  if (state.sweepScheduled || state.finished.length === 0) return [];
  state.sweepScheduled = true;
  // Often enough that a result outlives its TTL by at most a minute.
  return [{ type: 'schedule', afterMs: Math.min(s.resultTtlMs, 60_000), message: { type: 'aj.sweep' }, timer: SWEEP_TIMER }];
}

function stored(job: Job): StoredJob {
  const state = job.phase === 'done' ? 'done' : job.phase === 'failed' ? 'failed' : 'pending';
  const record: StoredJob = { id: job.id, functionName: job.functionName, invocation: job.invocation, submittedAt: job.submittedAt, attempts: job.attempts, state };
  if (state === 'pending') return record;
  return { ...record, ...(job.response ? { response: job.response } : {}), ...(job.error ? { error: job.error } : {}), ...(job.finishedAt !== undefined ? { finishedAt: job.finishedAt } : {}) };
}

function view(job: Job): AsyncJobView {
  const status = job.phase === 'done' ? 'done' : job.phase === 'failed' ? 'failed' : 'pending';
  const base: AsyncJobView = { id: job.id, functionName: job.functionName, status, attempts: job.attempts, submittedAt: job.submittedAt };
  if (status === 'pending') return base;
  return { ...base, ...(job.finishedAt !== undefined ? { finishedAt: job.finishedAt } : {}), ...(status === 'done' && job.response ? { response: job.response } : {}), ...(status === 'failed' && job.error ? { error: job.error } : {}) };
}
