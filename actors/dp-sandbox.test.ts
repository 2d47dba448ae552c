import test from 'ava';
import type { AskResult, Effect, ReplyTo } from './actor.js';
import { dataPlaneSandboxKind, type DataPlaneSandboxInit, type DataPlaneSandboxState, type SandboxInvokeInput } from './dp-sandbox.js';
import { dataPlaneSandboxAddress, routerAddress, type DataPlaneSandboxMessage, type Invocation, type InvocationOutcome } from './messages.js';

const INIT: DataPlaneSandboxInit = {
  functionName: 'f',
  endpoint: { sandboxId: 's1', nodeId: 'n1', address: '10.0.0.1:7000', concurrency: 2, version: 1 },
  timeoutMs: 3000,
};
const SELF = dataPlaneSandboxAddress('f', 's1');
const INVOCATION: Invocation = { method: 'POST', path: '/x', headers: { a: 'b' }, body: new Uint8Array([1, 2]) };

/** Drives one data-plane sandbox actor's pure step. */
class Script {
  readonly kind;
  state: DataPlaneSandboxState;
  private nextAsk = 1;

  constructor(invokeService?: string, init: DataPlaneSandboxInit = INIT) {
    this.kind = dataPlaneSandboxKind(invokeService === undefined ? {} : { invokeService });
    this.state = this.kind.init(SELF, init, 0);
  }

  step(message: DataPlaneSandboxMessage): Effect<DataPlaneSandboxMessage>[] {
    const result = this.kind.step(this.state, message, { now: 0, self: SELF, random: () => 0 });
    this.state = result.state;
    return [...(result.effects ?? [])];
  }

  /** `sb.invoke` for a new edge ask: the ask's token and the effects. */
  invoke(coldStart = false, queuedMs = 0): { replyTo: ReplyTo; fx: Effect<DataPlaneSandboxMessage>[] } {
    const replyTo = { origin: 3, id: this.nextAsk++ };
    return { replyTo, fx: this.step({ type: 'sb.invoke', invocation: INVOCATION, replyTo, coldStart, queuedMs }) };
  }

  /** Invoke, then complete the service call with `result`. */
  complete(result: AskResult, coldStart = false, queuedMs = 0): { replyTo: ReplyTo; fx: Effect<DataPlaneSandboxMessage>[] } {
    const { replyTo, fx } = this.invoke(coldStart, queuedMs);
    const call = fx.find((e) => e.type === 'call');
    if (call?.type !== 'call') throw new Error('no call effect');
    return { replyTo, fx: this.step(call.then(result)) };
  }
}

function outcome(fx: Effect<DataPlaneSandboxMessage>[]): InvocationOutcome | undefined {
  const reply = fx.find((e) => e.type === 'reply');
  return reply?.type === 'reply' ? (reply.value as InvocationOutcome) : undefined;
}

function replyTarget(fx: Effect<DataPlaneSandboxMessage>[]): ReplyTo | undefined {
  const reply = fx.find((e) => e.type === 'reply');
  return reply?.type === 'reply' ? reply.to : undefined;
}

function releases(fx: Effect<DataPlaneSandboxMessage>[]): unknown[] {
  return fx.flatMap((e) => (e.type === 'send' ? [{ to: e.to, message: e.message }] : []));
}

const stops = (fx: Effect<DataPlaneSandboxMessage>[]): boolean => fx.some((e) => e.type === 'stop');

test('an invocation calls the invoke service with the endpoint, and answers the edge with its response', (t) => {
  const s = new Script();
  const { replyTo, fx } = s.invoke(true, 120);
  t.is(fx.length, 1);
  const call = fx[0];
  if (call?.type !== 'call') return t.fail('expected a call effect');
  t.is(call.service, 'sandbox.invoke');
  const input: SandboxInvokeInput = { address: '10.0.0.1:7000', sandboxId: 's1', invocation: INVOCATION, timeoutMs: 3000 };
  t.deepEqual(call.input, input);
  t.is(s.state.inFlight, 1);

  const body = new TextEncoder().encode('hi');
  const done = s.step(call.then({ ok: true, value: { status: 201, headers: { 'x-y': 'z' }, body } }));
  t.deepEqual(done.find((e) => e.type === 'reply'), {
    type: 'reply',
    to: replyTo,
    value: { ok: true, status: 201, headers: { 'x-y': 'z' }, body, sandboxId: 's1', coldStart: true, queuedMs: 120, version: 1 },
  });
  t.deepEqual(releases(done), [{ to: SELF, message: { type: 'sb.release' } }], 'the release goes behind the answers already queued');
  t.false(stops(done));
  t.is(s.state.inFlight, 0);
  t.is(s.state.served, 1);
  t.deepEqual(releases(s.step({ type: 'sb.release' })), [{ to: routerAddress('f'), message: { type: 'rt.released', sandboxId: 's1', count: 1, failed: false } }]);
});

test('releases are batched: one sb.release per batch of answers, one rt.released with their count', (t) => {
  const s = new Script(undefined, { ...INIT, endpoint: { ...INIT.endpoint, concurrency: 10 } });
  const calls = [s.invoke(), s.invoke(), s.invoke()].map(({ fx }) => fx[0]);
  const ok: AskResult = { ok: true, value: { status: 200, headers: {}, body: new Uint8Array() } };
  const sent = calls.map((call) => (call?.type === 'call' ? releases(s.step(call.then(ok))) : []));
  t.deepEqual(sent, [[{ to: SELF, message: { type: 'sb.release' } }], [], []], 'only the first answer of a batch sends sb.release');
  t.is(s.state.unreleased, 3);
  t.deepEqual(releases(s.step({ type: 'sb.release' })), [{ to: routerAddress('f'), message: { type: 'rt.released', sandboxId: 's1', count: 3, failed: false } }]);
  t.is(s.state.unreleased, 0);
  t.deepEqual(s.step({ type: 'sb.release' }), [], 'a release with nothing left to tell does nothing');
});

test('a broken sandbox, a refusal and sb.close release everything unreleased at once', (t) => {
  const ok: AskResult = { ok: true, value: { status: 200, headers: {}, body: new Uint8Array() } };
  const broken = new Script();
  broken.complete(ok);
  const failed = broken.complete({ ok: false, error: { code: 'SANDBOX_GONE', message: 'destroyed' } });
  t.deepEqual(releases(failed.fx), [{ to: routerAddress('f'), message: { type: 'rt.released', sandboxId: 's1', count: 2, failed: true } }]);
  t.deepEqual(broken.step({ type: 'sb.release' }), [], 'the queued sb.release finds nothing left');

  const closing = new Script();
  const first = closing.invoke().fx[0];
  closing.complete(ok);
  t.deepEqual(releases(closing.step({ type: 'sb.close' })), [{ to: routerAddress('f'), message: { type: 'rt.released', sandboxId: 's1', count: 1, failed: false } }]);
  const last = first?.type === 'call' ? closing.step(first.then(ok)) : [];
  t.deepEqual(releases(last), [{ to: routerAddress('f'), message: { type: 'rt.released', sandboxId: 's1', count: 1, failed: false } }], 'closing: at once');
  t.false(stops(last), 'an sb.release is still queued: stopping now would make it a dead letter');
  t.deepEqual(closing.step({ type: 'sb.release' }), [{ type: 'stop' }], 'it finds nothing to tell, and the actor stops');
});

test('the invoke service is the configured one', (t) => {
  const { fx } = new Script('sandbox.invoke.shard2').invoke();
  t.is(fx[0]?.type === 'call' ? fx[0].service : undefined, 'sandbox.invoke.shard2');
});

test('a failed invocation answers 502 SANDBOX_FAILED; gone, timed-out, crashed or unreachable sandboxes count as broken', (t) => {
  const cases: { result: AskResult; broken: boolean; message: RegExp }[] = [
    { result: { ok: false, error: { code: 'SANDBOX_GONE', message: 'destroyed' } }, broken: true, message: /SANDBOX_GONE: destroyed/ },
    { result: { ok: false, error: { code: 'SANDBOX_TIMEOUT', message: 'ran past 3000 ms' } }, broken: true, message: /SANDBOX_TIMEOUT: ran past 3000 ms/ },
    { result: { ok: false, error: { code: 'SANDBOX_CRASHED', message: 'thread exited' } }, broken: true, message: /SANDBOX_CRASHED/ },
    { result: { ok: false, error: { code: 'CONNECTION_LOST', message: 'closed in flight' } }, broken: true, message: /CONNECTION_LOST: closed in flight/ },
    { result: { ok: false, error: { code: 'UND_ERR_SOCKET', message: 'other side closed' } }, broken: true, message: /other side closed/ },
    { result: { ok: false, error: { code: 'SERVICE_FAILED', message: 'handler threw' } }, broken: false, message: /SERVICE_FAILED: handler threw/ },
    { result: { ok: true, value: { status: 'teapot' } }, broken: false, message: /BAD_RESPONSE/ },
  ];
  for (const c of cases) {
    const s = new Script();
    const { replyTo, fx } = s.complete(c.result, false, 7);
    const answered = outcome(fx);
    if (answered?.ok !== false) return t.fail('expected a failure outcome');
    t.is(answered.status, 502);
    t.false(answered.coldStart);
    t.is(answered.code, 'SANDBOX_FAILED');
    t.is(answered.sandboxId, 's1');
    t.is(answered.queuedMs, 7);
    t.regex(answered.message, c.message);
    t.is(replyTarget(fx), replyTo);
    const release = c.broken ? { to: routerAddress('f'), message: { type: 'rt.released', sandboxId: 's1', count: 1, failed: true } } : { to: SELF, message: { type: 'sb.release' } };
    t.deepEqual(releases(fx), [release], answered.message);
    t.is(s.state.failed, 1);
  }
});

test('a request that never reached the sandbox (no connection to its worker) goes back to the router, behind the release that breaks the sandbox', (t) => {
  for (const code of ['CONNECTION_FAILED', 'ECONNREFUSED', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT'] as const) {
    const s = new Script();
    const { replyTo, fx } = s.complete({ ok: false, error: { code, message: 'cannot reach 10.0.0.1:7000' } }, true, 40);
    t.is(outcome(fx), undefined, `${code}: the edge gets no answer from this sandbox`);
    t.deepEqual(releases(fx), [
      { to: routerAddress('f'), message: { type: 'rt.released', sandboxId: 's1', count: 1, failed: true } },
      { to: routerAddress('f'), message: { type: 'rt.forwarded', invocation: INVOCATION, replyTo } },
    ], code);
    t.like(s.state, { inFlight: 0, failed: 0, returned: 1, served: 0 }, code);
  }
  // A request that was sent may have run: it is answered, never sent again.
  const lost = new Script().complete({ ok: false, error: { code: 'CONNECTION_LOST', message: 'closed in flight' } });
  t.like(outcome(lost.fx), { ok: false, status: 502 });
  t.false(releases(lost.fx).some((r) => (r as { message: { type: string } }).message.type === 'rt.forwarded'));
});

test('a request given back by a closing sandbox goes to the replica that spawned it', (t) => {
  const router = { kind: 'router', id: 'f', key: 'fn:f#1' } as const;
  const s = new Script(undefined, { ...INIT, router });
  const first = s.invoke().fx[0];
  s.step({ type: 'sb.close' });
  const fx = first?.type === 'call' ? s.step(first.then({ ok: false, error: { code: 'CONNECTION_FAILED', message: 'refused' } })) : [];
  t.deepEqual(releases(fx).map((r) => [(r as { to: unknown }).to, (r as { message: { type: string } }).message.type]), [
    [router, 'rt.released'],
    [router, 'rt.forwarded'],
  ]);
  t.true(stops(fx), 'closing and nothing in flight: it stops');
});

test('it enforces its slots: a request beyond them is refused with 502 and counted, and the slot still released', (t) => {
  const s = new Script();
  s.invoke();
  s.invoke();
  const { replyTo, fx } = s.invoke();
  t.false(fx.some((e) => e.type === 'call'));
  const answered = outcome(fx);
  t.like(answered, { ok: false, status: 502, code: 'SANDBOX_FAILED', sandboxId: 's1' });
  t.is(replyTarget(fx), replyTo);
  t.deepEqual(releases(fx), [{ to: routerAddress('f'), message: { type: 'rt.released', sandboxId: 's1', count: 1, failed: false } }]);
  t.is(s.state.refused, 1);
  t.is(s.state.inFlight, 2);
});

test('sb.close stops once in-flight requests are answered, and takes no new ones meanwhile', (t) => {
  const s = new Script();
  const first = s.invoke();
  const call = first.fx[0];
  if (call?.type !== 'call') return t.fail('expected a call effect');
  t.deepEqual(s.step({ type: 'sb.close' }), [], 'one request is still in flight');
  const refused = s.invoke();
  t.like(outcome(refused.fx), { ok: false, status: 502, code: 'SANDBOX_FAILED' });
  t.is(s.state.refused, 1);
  const done = s.step(call.then({ ok: true, value: { status: 200, headers: {}, body: new Uint8Array() } }));
  t.like(outcome(done), { ok: true, status: 200 });
  t.is(releases(done).length, 1);
  t.deepEqual(done.at(-1), { type: 'stop' }, 'answered first, then stopped');
  t.true(stops(new Script().step({ type: 'sb.close' })), 'an idle sandbox actor stops at once');
});

test('init needs the endpoint, the function and a timeout', (t) => {
  const kind = dataPlaneSandboxKind();
  t.is(kind.kind, 'dpsandbox');
  t.falsy(kind.virtual);
  t.throws(() => kind.init(SELF, undefined, 0), { message: /init needs/ });
  t.throws(() => kind.init(SELF, { ...INIT, timeoutMs: 0 }, 0), { message: /timeoutMs > 0 ms/ });
  t.throws(() => dataPlaneSandboxKind({ invokeService: '' }), { message: /invokeService/ });
});

test('a failure of a request that waited for this new sandbox says coldStart, as its success would', (t) => {
  const s = new Script();
  const failed = outcome(s.complete({ ok: false, error: { code: 'SANDBOX_CRASHED', message: 'thread exited' } }, true, 250).fx);
  t.like(failed, { ok: false, status: 502, code: 'SANDBOX_FAILED', coldStart: true, queuedMs: 250 });
  const full = new Script(undefined, { ...INIT, endpoint: { ...INIT.endpoint, concurrency: 1 } });
  full.invoke();
  t.like(outcome(full.invoke(true, 90).fx), { ok: false, code: 'SANDBOX_FAILED', coldStart: true, queuedMs: 90 }, 'refused for want of a slot');
});
