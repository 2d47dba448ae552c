// The multiplexed WebSocket API over real sockets (the `ws` client), on fake routers.
import test from 'ava';
import { pack, unpack } from 'msgpackr';
import { startHarness, TestWs, until } from './fixtures/harness.js';

interface JsonReply {
  id: string | number | null;
  status: number;
  headers: Record<string, string>;
  body?: string;
  bodyBase64?: string;
  error?: { code: string; message: string };
}

test.serial('JSON frames: many invocations in flight on one connection, answered by id as they finish', async (t) => {
  const { port } = await startHarness(t);
  const ws = await TestWs.open(t, port);
  const count = 60;
  for (let i = 0; i < count; i++) {
    // Slow ones first with decreasing delays, so replies come back out of request order.
    const request = i % 3 === 0 ? { id: i, function: 'slow', headers: { 'x-delay-ms': String(200 - i * 3) }, body: `slow ${i}` } : { id: `r${i}`, function: 'echo', method: 'PUT', path: `/p/${i}?q=${i}`, body: `echo ${i}` };
    ws.send(JSON.stringify(request));
  }
  await ws.waitFrames(count);
  const replies = ws.json() as unknown as JsonReply[];
  t.is(replies.length, count);
  const byId = new Map(replies.map((r) => [r.id, r]));
  for (let i = 0; i < count; i++) {
    const reply = byId.get(i % 3 === 0 ? i : `r${i}`);
    t.is(reply?.status, 200);
    t.is(reply?.body, i % 3 === 0 ? `slow ${i}` : `echo ${i}`);
    if (i % 3 !== 0) {
      t.is(reply?.headers['x-method'], 'PUT');
      t.is(reply?.headers['x-path'], `/p/${i}?q=${i}`);
    }
    t.is(reply?.headers['x-dirigent-cold-start'], 'false');
  }
  const order = replies.map((r) => r.id);
  t.notDeepEqual(order.slice(0, 5), [0, 'r1', 'r2', 3, 'r4'], 'fast replies overtake slow ones');
});

test.serial('JSON frames: bodyBase64 in, bodyBase64 out; failures carry status and error; binary bodies come back as base64', async (t) => {
  const { port } = await startHarness(t);
  const ws = await TestWs.open(t, port);
  const bytes = Buffer.from([0, 255, 1, 254, 128]);
  ws.send(JSON.stringify({ id: 'b64', function: 'echo', bodyBase64: bytes.toString('base64') }));
  ws.send(JSON.stringify({ id: 'nf', function: 'missing' }));
  ws.send(JSON.stringify({ id: 'q', function: 'full' }));
  ws.send(JSON.stringify({ id: 'bin', function: 'echo', body: '\u00ff' }));
  await ws.waitFrames(4);
  const byId = new Map((ws.json() as unknown as JsonReply[]).map((r) => [r.id, r]));
  t.is(byId.get('b64')?.bodyBase64, bytes.toString('base64'));
  t.is(byId.get('b64')?.body, undefined);
  t.is(byId.get('nf')?.status, 404);
  t.deepEqual(byId.get('nf')?.error, { code: 'UNKNOWN_FUNCTION', message: 'fake UNKNOWN_FUNCTION' });
  t.is(byId.get('q')?.status, 429);
  t.is(byId.get('q')?.error?.code, 'QUEUE_FULL');
  t.is(byId.get('bin')?.body, '\u00ff', 'valid UTF-8 comes back as a string');
});

test.serial('msgpack frames: bodies as bytes both ways, replies in msgpack, by id', async (t) => {
  const { port } = await startHarness(t);
  const ws = await TestWs.open(t, port);
  const body = Buffer.from([9, 8, 7, 0, 255]);
  ws.send(pack({ id: 1, function: 'echo', method: 'post', path: '/m', headers: { 'X-A': 'b' }, body }));
  ws.send(pack({ id: 'two', function: 'echo', body: 'text body' }));
  ws.send(pack({ id: 3, function: 'broken' }));
  await ws.waitFrames(3);
  t.true(ws.frames.every((f) => f.isBinary));
  const replies = ws.frames.map((f) => unpack(f.data) as { id: unknown; status: number; headers: Record<string, string>; body: Uint8Array; error?: { code: string } });
  const byId = new Map(replies.map((r) => [r.id, r]));
  t.deepEqual(Buffer.from(byId.get(1)!.body), body);
  t.is(byId.get(1)?.headers['x-method'], 'POST');
  t.is(byId.get(1)?.headers['x-path'], '/m');
  t.is((JSON.parse(byId.get(1)!.headers['x-headers']!) as Record<string, string>)['x-a'], 'b');
  t.is(Buffer.from(byId.get('two')!.body).toString(), 'text body');
  t.is(byId.get(3)?.status, 502);
  t.is(byId.get(3)?.error?.code, 'SANDBOX_FAILED');
});

test.serial('invalid frames get an error reply and the connection stays usable', async (t) => {
  const { port, logs } = await startHarness(t);
  const ws = await TestWs.open(t, port);
  const bad: (string | Uint8Array)[] = [
    '{not json',
    '[1,2]',
    JSON.stringify({ function: 'echo' }),
    JSON.stringify({ id: { nested: true }, function: 'echo' }),
    JSON.stringify({ id: 'f', function: 42 }),
    JSON.stringify({ id: 'p', function: 'echo', path: 'no-slash' }),
    JSON.stringify({ id: 'h', function: 'echo', headers: { a: 1 } }),
    JSON.stringify({ id: 'b', function: 'echo', bodyBase64: '***' }),
    JSON.stringify({ id: 'both', function: 'echo', body: 'a', bodyBase64: 'YQ==' }),
    JSON.stringify({ id: 'name', function: 'Bad Name' }),
    Uint8Array.from([0xc1, 0xff, 0x00]),
    pack({ id: 'mb', function: 'echo', body: 12 }),
  ];
  for (const frame of bad) ws.send(frame);
  ws.send(JSON.stringify({ id: 'ok', function: 'echo', body: 'after all that' }));
  await ws.waitFrames(bad.length + 1);
  const statuses = ws.frames.map((f) => (f.isBinary ? (unpack(f.data) as JsonReply) : (JSON.parse(f.data.toString()) as JsonReply)));
  const last = statuses.find((s) => s.id === 'ok');
  t.is(last?.status, 200);
  t.is(last?.body, 'after all that');
  const errors = statuses.filter((s) => s.id !== 'ok');
  t.is(errors.length, bad.length);
  for (const e of errors) t.true(e.status === 400 || e.status === 404, JSON.stringify(e));
  t.is(errors.find((e) => e.id === 'name')?.error?.code, 'UNKNOWN_FUNCTION');
  t.is(errors.filter((e) => e.id === null).length, 5, 'unreadable frames and unreadable ids reply with id null');
  t.is(ws.closeCode, undefined);
  t.false(logs.some((l) => l.startsWith('error')), logs.join('\n'));
});

test.serial('a client that does not read: its requests are held and its replies queued, another client on the same thread is not slowed, and nothing is lost', async (t) => {
  const { port } = await startHarness(t, { shards: 1, tuning: { ws: { highWaterBytes: 256 * 1024, maxInFlight: 8 } } });
  const slow = await TestWs.open(t, port);
  const fast = await TestWs.open(t, port);
  slow.socket._socket.pause();
  const n = 40;
  for (let i = 0; i < n; i++) slow.send(JSON.stringify({ id: i, function: 'big', headers: { 'x-size': String(256 * 1024) } }));
  await new Promise((resolve) => setTimeout(resolve, 300)); // let the slow client's buffers fill up
  const started = Date.now();
  for (let i = 0; i < 50; i++) fast.send(JSON.stringify({ id: i, function: 'echo', body: `f${i}` }));
  await fast.waitFrames(50, 3000);
  const fastMs = Date.now() - started;
  t.true(fastMs < 1000, `the other client got its 50 replies in ${fastMs} ms`);
  t.true(slow.frames.length < n, 'the slow client has not read everything yet');
  slow.socket._socket.resume();
  await slow.waitFrames(n, 10_000);
  const ids = slow.json().map((r) => r.id as number).sort((a, b) => a - b);
  t.deepEqual(ids, Array.from({ length: n }, (_, i) => i), 'every held request ran once the client read again');
  t.true(slow.json().every((r) => r.status === 200 && (r.body as string).length === 256 * 1024));
});

test.serial('a client that never reads is cut off once its queued replies pass the bound; others carry on', async (t) => {
  const { port } = await startHarness(t, { shards: 1, tuning: { ws: { highWaterBytes: 64 * 1024, maxOutboxBytes: 2 * 1024 * 1024, maxInFlight: 64, maxHeld: 8 } } });
  const hog = await TestWs.open(t, port);
  const other = await TestWs.open(t, port);
  hog.socket._socket.pause();
  // All 64 start at once (nothing has come back yet), then 32 MiB of replies arrive together: more than
  // the kernel's socket buffers and the 2 MiB outbox hold. The 8 after them are held, the rest refused.
  for (let i = 0; i < 100; i++) hog.send(JSON.stringify({ id: i, function: 'slow', headers: { 'x-delay-ms': '300', 'x-size': String(512 * 1024) } }));
  await new Promise((resolve) => setTimeout(resolve, 600));
  other.send(JSON.stringify({ id: 'still', function: 'echo', body: 'here' }));
  await other.waitFrames(1);
  t.is((other.json()[0] as { body?: string }).body, 'here');
  hog.socket._socket.resume();
  await until('the hog to be disconnected', () => hog.closeCode, 10_000);
  t.is(hog.closeCode, 1008);
  const replies = hog.json();
  t.true(replies.some((r) => (r.error as { code?: string } | undefined)?.code === 'TOO_MANY_REQUESTS'), 'requests beyond maxInFlight + maxHeld were refused at once');
  t.true(replies.filter((r) => r.status === 200).length < 64, 'replies past the bound were dropped with the connection');
});

test.serial('stopping the data plane closes open WebSockets', async (t) => {
  const { port, dp } = await startHarness(t);
  const ws = await TestWs.open(t, port);
  ws.send(JSON.stringify({ id: 1, function: 'echo', body: 'x' }));
  await ws.waitFrames(1);
  await dp.stop();
  await until('the socket to close', () => ws.closeCode, 3000);
  t.true(ws.closeCode === 1001 || ws.closeCode === 1006, `closed with ${ws.closeCode}`);
});
