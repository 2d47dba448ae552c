// The edge's rules without sockets: targets, Host routing, headers, outcome mapping, WebSocket frames and
// the per-connection backpressure bookkeeping (with a fake socket).
import test from 'ava';
import { Packr } from 'msgpackr';
import type { AskResult } from '../../actors/actor.js';
import type { InvocationOutcome } from '../../actors/messages.js';
import { askFailureResponse, fixed3, functionFromHost, headersWithTiming, passableResponseHeaders, requestHeaders, resolveTarget, responseFor, type EdgeResponse } from './edge.js';
import { encodeReply, parseFrame, WsSession, type WsPort, type WsRequest } from './ws.js';

const text = (r: EdgeResponse) => new TextDecoder().decode(r.body);
const code = (r: EdgeResponse) => (JSON.parse(text(r)) as { error: { code: string } }).error.code;

test('targets: /invoke, /async and Host routing', (t) => {
  t.deepEqual(resolveTarget('POST', '/invoke/fn/a/b', 'x=1', ''), { kind: 'invoke', functionName: 'fn', path: '/a/b?x=1' });
  t.deepEqual(resolveTarget('GET', '/invoke/fn', '', 'other'), { kind: 'invoke', functionName: 'fn', path: '/' }, 'the path wins over the Host header');
  t.deepEqual(resolveTarget('GET', '/invoke/fn/', '', ''), { kind: 'invoke', functionName: 'fn', path: '/' });
  t.deepEqual(resolveTarget('POST', '/async/fn/p', 'q', ''), { kind: 'async-submit', functionName: 'fn', path: '/p?q' });
  t.deepEqual(resolveTarget('GET', '/async/abc-123', '', ''), { kind: 'async-get', id: 'abc-123' });
  t.deepEqual(resolveTarget('GET', '/x/y', 'z', 'fn:8080'), { kind: 'invoke', functionName: 'fn', path: '/x/y?z' });
  t.deepEqual(resolveTarget('GET', '/invokes', '', 'fn'), { kind: 'invoke', functionName: 'fn', path: '/invokes' }, 'only the /invoke/ segment is reserved');
  const rejects: [string, string, string, number, string][] = [
    ['GET', '/invoke/', '', 404, 'UNKNOWN_FUNCTION'],
    ['GET', '/invoke/UPPER', '', 404, 'UNKNOWN_FUNCTION'],
    ['GET', '/async/', '', 404, 'UNKNOWN_JOB'],
    ['GET', '/async/id/extra', '', 404, 'UNKNOWN_JOB'],
    ['PUT', '/async/fn', '', 405, 'METHOD_NOT_ALLOWED'],
    ['POST', '/async/', '', 404, 'UNKNOWN_FUNCTION'],
    ['GET', '/', '', 404, 'UNKNOWN_FUNCTION'],
  ];
  for (const [method, url, host, status, c] of rejects) {
    const target = resolveTarget(method, url, '', host);
    if (target.kind !== 'reject') {
      t.fail(`${method} ${url} should be rejected`);
      continue;
    }
    t.is(target.response.status, status, url);
    t.is(code(target.response), c, url);
  }
});

test('the function a Host header names', (t) => {
  t.is(functionFromHost('echo'), 'echo');
  t.is(functionFromHost('echo:80'), 'echo');
  t.is(functionFromHost('Echo.default.example.com:443'), 'echo');
  t.is(functionFromHost('trace-func-0-1234'), 'trace-func-0-1234');
  t.is(functionFromHost(''), undefined);
  t.is(functionFromHost('127.0.0.1:8080'), undefined);
  t.is(functionFromHost('[::1]:8080'), undefined);
  t.is(functionFromHost('bad_name'), undefined);
  t.is(functionFromHost('-x'), undefined);
});

test('headers: request hop-by-hop dropped and repeats joined; response filtered against injection', (t) => {
  // Request header names arrive lower-case (uWS and HTTP/2 give them so).
  t.deepEqual(
    requestHeaders([
      ['accept', 'a'],
      ['accept', 'b'],
      ['connection', 'keep-alive'],
      ['__proto__', 'x'],
      ['transfer-encoding', 'chunked'],
      [':path', '/x'],
      ['x-y', 'z'],
    ]),
    { accept: 'a, b', 'x-y': 'z' },
  );
  t.deepEqual(
    passableResponseHeaders({ 'Content-Type': 'text/plain', 'x-bad': 'a\r\nb', 'bad name': 'v', connection: 'close', 'content-length': '3', date: 'x', 'x-dirigent-cold-start': 'true', 'x-num': 5 }),
    { 'content-type': 'text/plain' },
  );
});

test('fixed3 writes ms as toFixed(3) does', (t) => {
  for (const ms of [0, 0.0004, 0.0005, 0.001, 0.0999, 0.5, 1, 9.9996, 12.5, 20.25, 123.4567, 3_600_000.123, 1e12]) t.is(fixed3(ms), ms.toFixed(3), String(ms));
  t.is(fixed3(1e300), (1e300).toFixed(3));
});

test('outcomes map to statuses; timing headers on every answer', (t) => {
  const ok: AskResult = { ok: true, value: { ok: true, status: 201, headers: { 'x-a': 'b' }, body: new Uint8Array([1, 2]), sandboxId: 'sb', coldStart: true, queuedMs: 12.5, version: 3 } satisfies InvocationOutcome };
  const r = responseFor(ok, 20.25);
  t.is(r.status, 201);
  t.deepEqual(r.headers, { 'x-a': 'b' }, 'the timing is not among the headers');
  t.deepEqual(headersWithTiming(r), { 'x-a': 'b', 'x-dirigent-queue-ms': '13', 'x-dirigent-cold-start': 'true', 'x-dirigent-sandbox': 'sb', 'x-dirigent-version': '3', 'server-timing': 'queue;dur=12.500, total;dur=20.250' });
  t.deepEqual([...r.body], [1, 2]);
  t.is(r.error, undefined);
  const failures: [InvocationOutcome['status'], Extract<InvocationOutcome, { ok: false }>['code']][] = [
    [404, 'UNKNOWN_FUNCTION'],
    [413, 'BODY_TOO_LARGE'],
    [429, 'QUEUE_FULL'],
    [503, 'NO_CAPACITY'],
    [503, 'FUNCTION_FAILED'],
    [504, 'DEADLINE_PASSED'],
    [502, 'SANDBOX_FAILED'],
  ];
  for (const [status, c] of failures) {
    const f = responseFor({ ok: true, value: { ok: false, status, code: c, message: 'm', queuedMs: 1 } }, 2);
    t.is(f.status, status);
    t.deepEqual(f.error, { code: c, message: 'm' });
    t.is(code(f), c);
    t.is(headersWithTiming(f)['x-dirigent-cold-start'], 'false');
    t.is(headersWithTiming(f)['x-dirigent-version'], undefined, 'no sandbox answered');
  }
  // A failed request that waited for a new sandbox still tells it was a cold start, with its queue time.
  const waited = responseFor({ ok: true, value: { ok: false, status: 504, code: 'DEADLINE_PASSED', message: 'm', queuedMs: 900, coldStart: true } }, 901);
  t.like(headersWithTiming(waited), { 'x-dirigent-cold-start': 'true', 'x-dirigent-queue-ms': '900' });
  t.is(responseFor({ ok: false, error: { code: 'ASK_TIMEOUT', message: 'x' } }, 1).status, 504);
  t.is(askFailureResponse({ code: 'RUNTIME_STOPPED', message: 'x' }, 1).status, 503);
  t.is(askFailureResponse({ code: 'ACTOR_CRASHED', message: 'x' }, 1).status, 502);
  t.is(responseFor({ ok: true, value: 'nonsense' }, 1).status, 502);
  t.is(code(responseFor({ ok: true, value: { ok: true, status: 700, headers: {}, body: new Uint8Array(0), sandboxId: 's', coldStart: false, queuedMs: 0, version: 1 } }, 1)), 'BAD_SANDBOX_RESPONSE');
  const odd = responseFor({ ok: true, value: { ok: true, status: 200, headers: {}, body: new Uint8Array(0), sandboxId: 's', coldStart: false, queuedMs: 0, version: 1.5 } }, 1);
  t.is(headersWithTiming(odd)['x-dirigent-version'], undefined, 'a version that is not a whole number >= 1 is left out');
});

test('WebSocket frames: parse with defaults; reply in the request encoding', (t) => {
  const packr = new Packr({ useRecords: false });
  const enc = new TextEncoder();
  const parsed = parseFrame(packr, enc.encode(JSON.stringify({ id: 7, function: 'fn', body: 'hi' })), false, 100);
  t.true(parsed.ok);
  if (parsed.ok) t.deepEqual({ ...parsed.request, body: [...parsed.request.body] }, { id: 7, functionName: 'fn', method: 'POST', path: '/', headers: {}, body: [104, 105], encoding: 'json', base64: false });
  const tooBig = parseFrame(packr, enc.encode(JSON.stringify({ id: 'x', function: 'fn', body: 'x'.repeat(101) })), false, 100);
  t.false(tooBig.ok);
  if (!tooBig.ok) {
    t.is(tooBig.id, 'x');
    t.is(tooBig.response.status, 413);
  }
  const response: EdgeResponse = { status: 200, headers: { a: 'b' }, body: new Uint8Array([0xff]) };
  t.deepEqual(JSON.parse(encodeReply(packr, 1, 'json', false, response) as string), { id: 1, status: 200, headers: { a: 'b' }, bodyBase64: '/w==' }, 'not UTF-8: base64');
  t.deepEqual(JSON.parse(encodeReply(packr, 1, 'json', true, { ...response, body: enc.encode('ok') }) as string), { id: 1, status: 200, headers: { a: 'b' }, bodyBase64: 'b2s=' });
  const binary = packr.unpack(encodeReply(packr, 'm', 'msgpack', false, response) as Uint8Array) as { id: string; body: Uint8Array };
  t.is(binary.id, 'm');
  t.deepEqual([...binary.body], [0xff]);
});

class FakePort implements WsPort {
  buffered = 0;
  sent: (Uint8Array | string)[] = [];
  ended: [number, string] | undefined;
  bufferedAmount(): number {
    return this.buffered;
  }
  send(data: Uint8Array | string): void {
    if (!this.corked) throw new Error('send outside cork');
    // Like uWS, which copies what it sends: the session may reuse the bytes afterwards.
    this.sent.push(typeof data === 'string' ? data : Buffer.from(data));
  }
  corked = false;
  corks = 0;
  cork(fn: () => void): void {
    this.corks += 1;
    this.corked = true;
    try {
      fn();
    } finally {
      this.corked = false;
    }
  }
  end(code: number, reason: string): void {
    this.ended = [code, reason];
  }
}

function harness(limits: Partial<{ highWaterBytes: number; maxOutboxBytes: number; maxInFlight: number; maxHeld: number }> = {}) {
  const port = new FakePort();
  const answers = new Map<string | number, (r: EdgeResponse) => void>();
  // The end of the event-loop turn, run by hand: replies of one turn are flushed together.
  const flushes: (() => void)[] = [];
  const endTurn = () => flushes.splice(0).forEach((flush) => flush());
  // The backlog watchdog's timer, run by hand too.
  const checks: (() => void)[] = [];
  const runChecks = () => checks.splice(0).forEach((check) => check());
  const session = new WsSession(
    port,
    { maxBodyBytes: 1000, highWaterBytes: 100, maxOutboxBytes: 10_000, maxInFlight: 2, maxHeld: 3, ...limits },
    (request: WsRequest, done) => answers.set(request.id, done),
    (flush) => flushes.push(flush),
    (check) => checks.push(check),
  );
  const send = (id: number) => session.onMessage(new TextEncoder().encode(JSON.stringify({ id, function: 'fn' })), false);
  const ids = () => {
    endTurn();
    return port.sent.map((s) => (JSON.parse(s as string) as { id: number }).id);
  };
  const ok: EdgeResponse = { status: 200, headers: {}, body: new TextEncoder().encode('x'.repeat(50)) };
  return { port, answers, session, send, ids, ok, endTurn, flushes, checks, runChecks };
}

test('WsSession: bytes uWS holds that do not move, with no drain, get an empty cork until none are left', (t) => {
  const h = harness();
  h.send(1);
  h.port.buffered = 40; // what uWS kept of the reply below: under highWaterBytes, so the reply is sent
  h.answers.get(1)!(h.ok);
  t.deepEqual(h.ids(), [1]);
  t.is(h.checks.length, 1, 'the flush left bytes in uWS: a check is due');
  const corks = h.port.corks;
  h.runChecks();
  t.is(h.port.corks, corks + 1, 'nothing moved and no drain came: an empty cork');
  t.deepEqual(h.ids(), [1], 'and nothing was sent with it');
  h.session.onDrain();
  h.runChecks();
  t.is(h.port.corks, corks + 1, 'a drain came meanwhile: no cork');
  h.port.buffered = 0;
  h.runChecks();
  t.is(h.checks.length, 0, 'nothing held any more: no more checks');
});

test('WsSession: at most maxInFlight dispatched; the rest held and dispatched as answers come back', (t) => {
  const h = harness();
  for (let i = 1; i <= 5; i++) h.send(i);
  t.deepEqual([...h.answers.keys()], [1, 2]);
  t.is(h.session.heldCount, 3);
  h.send(6);
  t.deepEqual(h.ids(), [6], 'beyond maxHeld: TOO_MANY_REQUESTS at once');
  h.answers.get(2)!(h.ok);
  t.deepEqual([...h.answers.keys()], [1, 2, 3]);
  t.deepEqual(h.ids(), [6, 2]);
});

test('WsSession: replies wait in the outbox while the socket is over its high-water mark, and drain in order', (t) => {
  const h = harness({ maxInFlight: 10 });
  for (let i = 1; i <= 3; i++) h.send(i);
  h.port.buffered = 500;
  h.answers.get(1)!(h.ok);
  h.answers.get(3)!(h.ok);
  t.deepEqual(h.ids(), []);
  t.is(h.session.queuedReplies, 2);
  h.send(4);
  t.false(h.answers.has(4), 'no new work while congested');
  h.port.buffered = 0;
  h.session.onDrain();
  t.deepEqual(h.ids(), [1, 3]);
  t.true(h.answers.has(4), 'held work starts after the drain');
});

test('WsSession: an outbox over its bound closes the connection with 1008; answers after close are dropped', (t) => {
  const h = harness({ maxInFlight: 100, maxHeld: 100, maxOutboxBytes: 200 });
  for (let i = 1; i <= 4; i++) h.send(i);
  h.port.buffered = 500;
  for (let i = 1; i <= 4; i++) h.answers.get(i)!(h.ok);
  h.endTurn();
  t.deepEqual(h.port.ended, [1008, 'too many unread replies']);
  t.true(h.session.isClosed);
  h.session.onClose();
  h.send(5);
  t.false(h.answers.has(5));
  t.deepEqual(h.port.sent, []);
});

test('WsSession: the replies of one turn leave together, under one cork, in the order they came', (t) => {
  const h = harness({ maxInFlight: 10 });
  for (let i = 1; i <= 4; i++) h.send(i);
  h.session.onMessage(new TextEncoder().encode('{not json'), false);
  for (const i of [3, 1, 4]) h.answers.get(i)!(h.ok);
  t.deepEqual(h.port.sent, [], 'nothing is sent before the turn ends');
  t.is(h.session.queuedReplies, 4);
  t.is(h.flushes.length, 1, 'one flush for the turn');
  t.deepEqual(h.ids(), [null, 3, 1, 4]);
  t.is(h.port.corks, 1);
  h.answers.get(2)!(h.ok);
  t.deepEqual(h.ids(), [null, 3, 1, 4, 2]);
  t.is(h.port.corks, 2);
  t.is(h.session.queuedReplies, 0);
});

test('WsSession: a flush stops at the high-water mark; the rest wait in order, and later replies queue behind them', (t) => {
  const h = harness({ maxInFlight: 10, highWaterBytes: 150 });
  // Every send lands in uWS's buffer (the peer reads nothing): ~80 bytes per reply.
  const send = h.port.send.bind(h.port);
  h.port.send = (data) => {
    send(data);
    h.port.buffered += typeof data === 'string' ? data.length : data.byteLength;
  };
  for (let i = 1; i <= 5; i++) h.send(i);
  for (let i = 1; i <= 4; i++) h.answers.get(i)!(h.ok);
  t.deepEqual(h.ids(), [1, 2], 'sent until the buffer passed 150 bytes');
  t.is(h.session.queuedReplies, 2);
  h.answers.get(5)!(h.ok);
  t.deepEqual(h.ids(), [1, 2], 'behind the waiting ones, even at the end of the turn');
  h.send(6);
  t.false(h.answers.has(6), 'no new work while replies wait');
  h.port.buffered = 0;
  h.session.onDrain();
  t.deepEqual(h.ids(), [1, 2, 3, 4]);
  h.port.buffered = 0;
  h.session.onDrain();
  t.deepEqual(h.ids(), [1, 2, 3, 4, 5]);
  t.true(h.answers.has(6), 'held work starts once the outbox is empty');
});

test('WsSession: ending the session sends this turn\'s replies first', (t) => {
  const h = harness();
  h.send(1);
  h.answers.get(1)!(h.ok);
  h.session.end(1001, 'stopping');
  t.deepEqual(h.port.sent.map((s) => (JSON.parse(s as string) as { id: number }).id), [1]);
  t.deepEqual(h.port.ended, [1001, 'stopping']);
  h.endTurn();
  t.is(h.port.sent.length, 1);
});
