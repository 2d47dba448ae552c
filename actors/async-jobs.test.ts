// The async-jobs actor's step function, driven directly with a manual clock: effects are inspected and their
// outcomes fed back by hand.
import test from 'ava';
import type { AskResult, Effect, ReplyTo, StepContext } from './actor.js';
import { asyncJobsAddress, asyncJobsKind, type AsyncJobsConfig, type AsyncJobsMessage, type AsyncJobsState, type AsyncJobView, type AsyncStoreInput, type StoredJob } from './async-jobs.js';
import type { Invocation, InvocationOutcome } from './messages.js';

type Fx = Effect<AsyncJobsMessage>;

const invocation: Invocation = { method: 'POST', path: '/', headers: {}, body: new Uint8Array([1]) };
const okOutcome: InvocationOutcome = { ok: true, status: 200, headers: {}, body: new Uint8Array([2]), sandboxId: 'sb', coldStart: false, queuedMs: 0, version: 1 };
const failed = (status: 404 | 502 | 503): InvocationOutcome => ({ ok: false, status, code: status === 404 ? 'UNKNOWN_FUNCTION' : status === 502 ? 'SANDBOX_FAILED' : 'NO_CAPACITY', message: 'x', queuedMs: 0 });

class Driver {
  readonly kind;
  state: AsyncJobsState;
  now = 1_000_000;
  private asks = 0;
  effects: Fx[] = [];

  constructor(config: Partial<AsyncJobsConfig> = {}) {
    this.kind = asyncJobsKind({ attemptTimeoutMs: 1000, retryBaseMs: 100, ...config });
    this.state = this.kind.init(asyncJobsAddress, undefined, this.now);
  }

  /** Steps one message; returns its effects (also kept in `effects`). */
  step(message: AsyncJobsMessage, replyTo?: ReplyTo): Fx[] {
    const ctx: StepContext = { now: this.now, self: asyncJobsAddress, random: () => 0.5, ...(replyTo ? { replyTo } : {}) };
    const result = this.kind.step(this.state, message, ctx);
    this.state = result.state;
    this.effects = [...(result.effects ?? [])];
    return this.effects;
  }

  ask(message: AsyncJobsMessage): { replyTo: ReplyTo; effects: Fx[] } {
    const replyTo = { origin: 9, id: ++this.asks };
    return { replyTo, effects: this.step(message, replyTo) };
  }

  /** Feeds `result` to the first call effect (optionally of this store op) and returns the new effects. */
  settleCall(result: AskResult, op?: AsyncStoreInput['op']): Fx[] {
    const call = this.effects.find((e): e is Extract<Fx, { type: 'call' }> => e.type === 'call' && (op === undefined || (e.input as AsyncStoreInput).op === op));
    if (!call) throw new Error(`no call effect${op ? ` for ${op}` : ''} among ${JSON.stringify(this.effects.map((e) => e.type))}`);
    return this.step(call.then(result));
  }

  settleAsk(result: AskResult): Fx[] {
    const ask = this.effects.find((e): e is Extract<Fx, { type: 'ask' }> => e.type === 'ask');
    if (!ask) throw new Error('no ask effect');
    return this.step(ask.then(result));
  }
}

const of = <T extends Fx['type']>(effects: Fx[], type: T) => effects.filter((e): e is Extract<Fx, { type: T }> => e.type === type);

function ready(driver: Driver, stored: StoredJob[] = []): void {
  driver.step({ type: 'aj.start' });
  driver.settleCall({ ok: true, value: stored }, 'list');
}

function submitted(driver: Driver): string {
  const { replyTo } = driver.ask({ type: 'aj.submit', functionName: 'fn', invocation });
  const effects = driver.settleCall({ ok: true, value: undefined }, 'put');
  const reply = of(effects, 'reply').find((e) => e.to.id === replyTo.id);
  return (reply?.value as { id: string }).id;
}

test('a submission is answered only after the store write, then runs through the router', (t) => {
  const d = new Driver();
  ready(d);
  const { effects } = d.ask({ type: 'aj.submit', functionName: 'fn', invocation });
  t.deepEqual(of(effects, 'reply'), [], 'no id before the job is durable');
  const put = of(effects, 'call')[0]!;
  t.is((put.input as Extract<AsyncStoreInput, { op: 'put' }>).job.state, 'pending');
  const after = d.settleCall({ ok: true, value: undefined }, 'put');
  const id = (of(after, 'reply')[0]!.value as { id: string }).id;
  t.regex(id, /^[a-z0-9]+-[a-z0-9]+$/);
  const ask = of(after, 'ask')[0]!;
  t.deepEqual(ask.to, { kind: 'router', id: 'fn', key: 'fn:fn' });
  t.is(ask.timeoutMs, 1000);
  const done = d.settleAsk({ ok: true, value: okOutcome });
  const write = of(done, 'call')[0]!;
  t.is((write.input as Extract<AsyncStoreInput, { op: 'put' }>).job.state, 'done');
  const view = of(d.ask({ type: 'aj.get', id }).effects, 'reply')[0]!.value as AsyncJobView;
  t.is(view.status, 'done');
  t.deepEqual([...view.response!.body], [2]);
});

test('a failed store write fails the submission and forgets the job', (t) => {
  const d = new Driver();
  ready(d);
  const { replyTo } = d.ask({ type: 'aj.submit', functionName: 'fn', invocation });
  const effects = d.settleCall({ ok: false, error: { code: 'EIO', message: 'disk' } }, 'put');
  t.deepEqual(of(effects, 'fail'), [{ type: 'fail', to: replyTo, error: { code: 'ASYNC_STORE_FAILED', message: 'the job could not be stored: disk' } }]);
  t.deepEqual(of(effects, 'ask'), []);
});

test('retryable failures back off 100, 400 ms and fail after 3 attempts; 404 fails at once', (t) => {
  const d = new Driver();
  ready(d);
  const id = submitted(d);
  let effects = d.settleAsk({ ok: true, value: failed(502) });
  t.is(of(effects, 'schedule')[0]?.afterMs, 100);
  t.is((of(effects, 'call')[0]!.input as Extract<AsyncStoreInput, { op: 'put' }>).job.attempts, 1, 'the attempt count is stored');
  effects = d.step({ type: 'aj.retry', id });
  effects = d.settleAsk({ ok: false, error: { code: 'ASK_TIMEOUT', message: '1000 ms' } });
  t.is(of(effects, 'schedule')[0]?.afterMs, 400);
  d.step({ type: 'aj.retry', id });
  effects = d.settleAsk({ ok: true, value: failed(503) });
  t.deepEqual(of(effects, 'schedule').filter((s) => s.message.type === 'aj.retry'), []);
  const view = of(d.ask({ type: 'aj.get', id }).effects, 'reply')[0]!.value as AsyncJobView;
  t.is(view.status, 'failed');
  t.is(view.attempts, 3);
  t.is(view.error?.code, 'NO_CAPACITY');

  const other = submitted(d);
  d.settleAsk({ ok: true, value: failed(404) });
  const v2 = of(d.ask({ type: 'aj.get', id: other }).effects, 'reply')[0]!.value as AsyncJobView;
  t.is(v2.status, 'failed');
  t.is(v2.attempts, 1);
});

test('requests before the store is loaded wait; a failed load fails them and retries', (t) => {
  const d = new Driver();
  const { replyTo } = d.ask({ type: 'aj.get', id: 'x' });
  t.is(of(d.effects, 'call')[0]?.input && (of(d.effects, 'call')[0]!.input as AsyncStoreInput).op, 'list');
  const failedLoad = d.settleCall({ ok: false, error: { code: 'STORE_CORRUPT', message: 'bad file' } }, 'list');
  t.is(of(failedLoad, 'fail')[0]?.to, replyTo);
  t.is(of(failedLoad, 'fail')[0]?.error.code, 'ASYNC_UNAVAILABLE');
  t.is(of(failedLoad, 'schedule')[0]?.afterMs, 1000);
  const again = d.ask({ type: 'aj.get', id: 'x' });
  const loaded = d.settleCall({ ok: true, value: [] }, 'list');
  t.deepEqual(of(loaded, 'reply'), [{ type: 'reply', to: again.replyTo, value: null }]);
});

test('loading resumes pending jobs in submission order and keeps finished ones until their TTL', (t) => {
  const d = new Driver({ resultTtlMs: 10_000 });
  const base = { functionName: 'fn', invocation, attempts: 0 };
  d.step({ type: 'aj.start' });
  const effects = d.settleCall(
    {
      ok: true,
      value: [
        { ...base, id: 'b', submittedAt: 2, state: 'pending' },
        { ...base, id: 'a', submittedAt: 1, state: 'pending', attempts: 2 },
        { ...base, id: 'old', submittedAt: 0, state: 'done', finishedAt: d.now - 20_000, response: { ...okOutcome } },
        { ...base, id: 'new', submittedAt: 0, state: 'failed', finishedAt: d.now - 1000, error: { status: 502, code: 'SANDBOX_FAILED', message: 'x' } },
      ] satisfies StoredJob[],
    },
    'list',
  );
  t.deepEqual(of(effects, 'ask').map((a) => (a.then({ ok: true, value: okOutcome }) as { id: string }).id), ['a', 'b']);
  t.deepEqual(of(effects, 'call').map((c) => c.input), [{ op: 'delete', id: 'old' }], 'an expired result is deleted');
  t.is((of(d.ask({ type: 'aj.get', id: 'new' }).effects, 'reply')[0]!.value as AsyncJobView).status, 'failed');
  t.is(of(d.ask({ type: 'aj.get', id: 'old' }).effects, 'reply')[0]!.value, null);
  // A resumed job keeps its stored attempt count: one more failure is its last.
  d.step({ type: 'aj.outcome', id: 'a', result: { ok: true, value: failed(502) } });
  t.is((of(d.ask({ type: 'aj.get', id: 'a' }).effects, 'reply')[0]!.value as AsyncJobView).status, 'failed');
});

test('bounds: maxPending refuses submissions, maxRunning limits asks, maxResults drops the oldest results', (t) => {
  const d = new Driver({ maxPending: 2, maxRunning: 1, maxResults: 1 });
  ready(d);
  const first = submitted(d);
  t.is(of(d.effects, 'ask').length, 1);
  const second = submitted(d);
  t.is(of(d.effects, 'ask').length, 0, 'the second waits for the first');
  const { replyTo } = d.ask({ type: 'aj.submit', functionName: 'fn', invocation });
  t.deepEqual(of(d.effects, 'fail')[0], { type: 'fail', to: replyTo, error: { code: 'ASYNC_QUEUE_FULL', message: '2 async jobs are pending, the most this data plane accepts (maxPending 2)' } });
  const next = d.step({ type: 'aj.outcome', id: first, result: { ok: true, value: okOutcome } });
  t.is(of(next, 'ask').length, 1, 'the second starts when the first ends');
  const last = d.step({ type: 'aj.outcome', id: second, result: { ok: true, value: okOutcome } });
  t.deepEqual(of(last, 'call').map((c) => (c.input as AsyncStoreInput).op), ['put', 'delete']);
  t.is(of(d.ask({ type: 'aj.get', id: first }).effects, 'reply')[0]!.value, null);
});

test('invalid submissions are refused with BAD_REQUEST', (t) => {
  const d = new Driver();
  ready(d);
  const bad = d.ask({ type: 'aj.submit', functionName: '', invocation });
  t.is(of(bad.effects, 'fail')[0]?.error.code, 'BAD_REQUEST');
  const noBody = d.ask({ type: 'aj.submit', functionName: 'fn', invocation: { ...invocation, body: 'text' as unknown as Uint8Array } });
  t.is(of(noBody.effects, 'fail')[0]?.error.code, 'BAD_REQUEST');
  t.throws(() => asyncJobsKind({ attemptTimeoutMs: 0 }), { message: /attemptTimeoutMs must be an integer >= 1/ });
});
