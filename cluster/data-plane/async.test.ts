// Asynchronous invocations over real sockets: durable acceptance, polling, retries, and restarts.
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeControlPlane } from './fixtures/fake-control-plane.js';
import { errorOf, request, startHarness, TOKEN, until, type HttpResult } from './fixtures/harness.js';

interface JobJson {
  id: string;
  function: string;
  status: 'pending' | 'done' | 'failed';
  attempts: number;
  response?: { status: number; headers: Record<string, string>; body: string; sandboxId: string; coldStart: boolean; queuedMs: number };
  error?: { status: number; code: string; message: string };
}

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dp-async-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const json = <T>(r: HttpResult): T => JSON.parse(r.body.toString('utf8')) as T;

async function submit(port: number, path: string, body = '', headers: Record<string, string> = {}): Promise<string> {
  const r = await request(port, { method: 'POST', path, body, headers });
  if (r.status !== 202) throw new Error(`expected 202, got ${r.status} ${r.body.toString()}`);
  return json<{ id: string }>(r).id;
}

async function job(port: number, id: string): Promise<JobJson> {
  return json<JobJson>(await request(port, { path: `/async/${id}` }));
}

function finished(port: number, id: string, withinMs = 5000): Promise<JobJson> {
  return until(`job ${id} to finish`, async () => {
    const j = await job(port, id);
    return j.status === 'pending' ? undefined : j;
  }, withinMs);
}

const FAST_RETRIES = { asyncJobs: { retryBaseMs: 20 } };

test.serial('POST /async/<fn> answers 202 with an id once the job is on disk; GET shows pending, then the stored response', async (t) => {
  const dir = await tempDir(t);
  const { port } = await startHarness(t, { asyncDir: dir });
  const r = await request(port, { method: 'POST', path: '/async/slow/work?n=1', headers: { 'x-delay-ms': '300', 'content-type': 'text/plain' }, body: 'payload' });
  t.is(r.status, 202);
  const { id } = json<{ id: string }>(r);
  t.regex(id, /^[a-z0-9-]+$/);
  t.is(r.headers.location, `/async/${id}`);
  t.true((await readdir(dir)).includes(`jobs%2F${id}.json`), 'the job was written before the 202');
  const early = await job(port, id);
  t.is(early.status, 'pending');
  t.is(early.function, 'slow');
  const done = await finished(port, id);
  t.is(done.status, 'done');
  t.is(done.attempts, 0);
  t.is(done.response?.status, 200);
  t.is(Buffer.from(done.response!.body, 'base64').toString(), 'payload');
  t.is(done.response?.headers['x-path'], '/work?n=1');
  t.is(done.response?.headers['x-method'], 'POST');
  t.is(done.response?.sandboxId, 'sb-1');
});

test.serial('a job is retried on 502/503/504 with backoff, up to 3 attempts; a 404 fails at once', async (t) => {
  const dir = await tempDir(t);
  const { port } = await startHarness(t, { asyncDir: dir, tuning: FAST_RETRIES });
  const flaky = await submit(port, '/async/flaky', 'third time lucky', { 'x-fail-times': '2' });
  const doomed = await submit(port, '/async/doomed', 'never');
  const missing = await submit(port, '/async/missing', 'nobody');
  const f = await finished(port, flaky);
  t.is(f.status, 'done');
  t.is(f.attempts, 2, 'two failed attempts before the one that succeeded');
  t.is(Buffer.from(f.response!.body, 'base64').toString(), 'third time lucky');
  const d = await finished(port, doomed);
  t.is(d.status, 'failed');
  t.is(d.attempts, 3);
  t.deepEqual(d.error, { status: 502, code: 'SANDBOX_FAILED', message: 'fake SANDBOX_FAILED' });
  const m = await finished(port, missing);
  t.is(m.status, 'failed');
  t.is(m.attempts, 1);
  t.is(m.error?.code, 'UNKNOWN_FUNCTION');
});

test.serial('accepted jobs survive a data-plane restart: pending ones run again, finished ones stay readable', async (t) => {
  const dir = await tempDir(t);
  const cp = await startFakeControlPlane(TOKEN);
  t.teardown(() => cp.close());
  const first = await startHarness(t, { asyncDir: dir, tuning: { fakeHang: ['gate'] } }, cp);
  const stuck = await submit(first.port, '/async/gate/resume', 'survive me');
  const done = await submit(first.port, '/async/echo', 'already done');
  await finished(first.port, done);
  t.is((await job(first.port, stuck)).status, 'pending');
  await first.dp.stop();

  const second = await startHarness(t, { asyncDir: dir }, cp);
  const resumed = await finished(second.port, stuck);
  t.is(resumed.status, 'done');
  t.is(Buffer.from(resumed.response!.body, 'base64').toString(), 'survive me');
  t.is(resumed.response?.headers['x-path'], '/resume');
  const kept = await job(second.port, done);
  t.is(kept.status, 'done');
  t.is(Buffer.from(kept.response!.body, 'base64').toString(), 'already done');
  t.true(second.logs.some((l) => /loaded 1 pending and 1 finished async jobs/.test(l)), second.logs.join('\n'));
});

test.serial('async errors: unknown id 404, full queue 429, disabled without an asyncDir 501', async (t) => {
  const dir = await tempDir(t);
  const { port } = await startHarness(t, { asyncDir: dir, tuning: { asyncJobs: { maxPending: 2 } } });
  const unknown = await request(port, { path: '/async/nope-123' });
  t.is(unknown.status, 404);
  t.is(errorOf(unknown).code, 'UNKNOWN_JOB');
  const badId = await request(port, { path: '/async/UPPER/x' });
  t.is(badId.status, 404);
  await submit(port, '/async/hang');
  await submit(port, '/async/hang');
  const full = await request(port, { method: 'POST', path: '/async/hang' });
  t.is(full.status, 429);
  t.is(errorOf(full).code, 'ASYNC_QUEUE_FULL');
  t.is(full.headers['retry-after'], '1');

  const off = await startHarness(t);
  const disabled = await request(off.port, { method: 'POST', path: '/async/echo', body: 'x' });
  t.is(disabled.status, 501);
  t.is(errorOf(disabled).code, 'ASYNC_DISABLED');
  t.is((await request(off.port, { path: '/async/abc' })).status, 501);
});

test.serial('POST /async/<fn> for a function the control plane does not have answers 404 at once, and stores nothing', async (t) => {
  const dir = await tempDir(t);
  const cp = await startFakeControlPlane(TOKEN, { unknownFunctions: ['nosuch'] });
  t.teardown(() => cp.close());
  const { port } = await startHarness(t, { asyncDir: dir }, cp);
  const started = Date.now();
  const r = await request(port, { method: 'POST', path: '/async/nosuch/x', body: 'lost' });
  t.is(r.status, 404);
  t.deepEqual(errorOf(r), { code: 'UNKNOWN_FUNCTION', message: 'no function named nosuch' });
  t.true(Date.now() - started < 1000, `answered in ${Date.now() - started} ms`);
  t.deepEqual((await readdir(dir)).filter((f) => f.startsWith('jobs')), [], 'no job was written');
  t.is((await request(port, { method: 'POST', path: '/async/echo', body: 'x' })).status, 202, 'a known function is still accepted');
});

test.serial('async jobs are accepted while the control plane cannot be asked: they are durable, and their attempts find out', async (t) => {
  const dir = await tempDir(t);
  const cp = await startFakeControlPlane(TOKEN);
  const { port, dp } = await startHarness(t, { asyncDir: dir }, cp);
  await cp.close();
  await until('the data plane to notice', () => (dp.connected ? undefined : true));
  const id = await submit(port, '/async/echo', 'meanwhile');
  t.is((await finished(port, id)).status, 'done');
});
