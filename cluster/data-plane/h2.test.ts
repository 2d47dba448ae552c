// The h2c front (HTTP/2 with prior knowledge, as the in-vitro loader speaks it) with node:http2 as the client.
import test, { type ExecutionContext } from 'ava';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type IncomingHttpStatusHeader } from 'node:http2';
import { startHarness } from './fixtures/harness.js';

interface H2Result {
  readonly status: number;
  readonly headers: IncomingHttpHeaders & IncomingHttpStatusHeader;
  readonly body: Buffer;
}

function connectH2(t: ExecutionContext, address: string): ClientHttp2Session {
  const session = http2.connect(`http://${address}`);
  t.teardown(() => session.destroy());
  return session;
}

function h2request(session: ClientHttp2Session, headers: Record<string, string>, body?: string | Buffer): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), 5000);
    let head: IncomingHttpHeaders & IncomingHttpStatusHeader = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (head = h));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) });
    });
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

test.serial('h2c with prior knowledge: by path and by :authority, many streams on one session, failures with JSON bodies', async (t) => {
  const { dp } = await startHarness(t, { http2Port: 0, maxBodyBytes: 1024 });
  t.truthy(dp.http2Address);
  t.not(dp.http2Address, dp.invokeAddress);
  const session = connectH2(t, dp.http2Address!);
  const byPath = await h2request(session, { ':method': 'POST', ':path': '/invoke/echo/x?y=1', 'content-type': 'text/plain' }, 'over h2');
  t.is(byPath.status, 200);
  t.is(byPath.body.toString(), 'over h2');
  t.is(byPath.headers['x-path'], '/x?y=1');
  t.is(byPath.headers['x-dirigent-cold-start'], 'false');
  t.regex(String(byPath.headers['server-timing']), /^queue;dur=3\.000, total;dur=/);
  const seen = JSON.parse(String(byPath.headers['x-headers'])) as Record<string, string>;
  t.false(Object.keys(seen).some((name) => name.startsWith(':')), 'pseudo-headers stay at the edge');

  const byAuthority = await Promise.all(Array.from({ length: 20 }, (_, i) => h2request(session, { ':method': 'POST', ':path': `/n/${i}`, ':authority': 'echo' }, `s${i}`)));
  t.deepEqual(byAuthority.map((r) => r.body.toString()), Array.from({ length: 20 }, (_, i) => `s${i}`));
  t.is(byAuthority[3]?.headers['x-path'], '/n/3');

  const missing = await h2request(session, { ':method': 'GET', ':path': '/', ':authority': 'nope' });
  t.is(missing.status, 404);
  t.is((JSON.parse(missing.body.toString()) as { error: { code: string } }).error.code, 'UNKNOWN_FUNCTION');
  const late = await h2request(session, { ':method': 'GET', ':path': '/invoke/late' });
  t.is(late.status, 504);
  const tooBig = await h2request(session, { ':method': 'POST', ':path': '/invoke/echo' }, Buffer.alloc(4096));
  t.is(tooBig.status, 413);
  // A stream reset by the client mid-body, and one reset while its answer is pending.
  const reset = session.request({ ':method': 'POST', ':path': '/invoke/echo' }, { endStream: false });
  reset.on('error', () => undefined);
  reset.write('partial');
  reset.close(http2.constants.NGHTTP2_CANCEL);
  const abandoned = session.request({ ':method': 'POST', ':path': '/invoke/slow' });
  abandoned.on('error', () => undefined);
  abandoned.end('x');
  setTimeout(() => abandoned.close(http2.constants.NGHTTP2_CANCEL), 20);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const after = await h2request(session, { ':method': 'POST', ':path': '/invoke/echo' }, 'session still fine');
  t.is(after.body.toString(), 'session still fine');
});

test.serial('stopping answers pending h2 streams with 503 and closes sessions', async (t) => {
  const { dp } = await startHarness(t, { http2Port: 0 });
  const session = connectH2(t, dp.http2Address!);
  await h2request(session, { ':method': 'GET', ':path': '/invoke/echo' });
  const pending = h2request(session, { ':method': 'POST', ':path': '/invoke/hang' }, 'x');
  await new Promise((resolve) => setTimeout(resolve, 100));
  await dp.stop();
  const answer = await pending;
  t.is(answer.status, 503);
  await new Promise<void>((resolve) => (session.closed ? resolve() : session.once('close', () => resolve())));
  t.true(session.closed);
});
