// SIGTERM of `dirigent up` drains, as Kubernetes' graceful termination does: requests in flight when the signal
// comes (on the uWS invoke port and on the compat port) are answered by their sandboxes, 200, new connections are
// refused meanwhile, and the process exits 0, within the stated bound: 2 * DRAIN_MS for the data plane's two
// fronts, then the workers and the control plane stop (STOP_BOUND_MS here, with room for a loaded machine).
import test from 'ava';
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DRAIN_MS } from './data-plane/shard.js';
import { startUp } from './fixtures/up-process.js';

const TOKEN = 'drain-test-token';
/** How long each request runs in its sandbox, ms: well inside DRAIN_MS. */
const WORK_MS = 1500;
const STOP_BOUND_MS = 2 * DRAIN_MS + 10_000;

/** One POST with Host routing on its own connection: its status, or the connection error's code. */
function post(port: number, path: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, agent: false, headers: { host: 'slow' }, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'ERROR'));
    req.end('x');
  });
}

test.serial('SIGTERM: requests in flight on both ports are answered 200, and dirigent up exits 0 within the bound', async (t) => {
  t.timeout(180_000);
  const dir = await mkdtemp(join(tmpdir(), 'dirigent-drain-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'slow.mjs'), `export async function handler() {\n  await new Promise((resolve) => setTimeout(resolve, ${WORK_MS}));\n  return 'finished';\n}\n`);
  const up = await startUp(t, ['--workers', '1', '--data-dir', join(dir, 'state')], { DIRIGENT_TOKEN: TOKEN }, 90_000);
  const spec = { name: 'slow', runtime: 'thread', source: { kind: 'thread', module: join(dir, 'slow.mjs') }, concurrency: 1, scaling: { minScale: 4, maxScale: 4 } };
  const created = await fetch(`${up.info.admin}/api/v1/functions`, { method: 'POST', body: JSON.stringify(spec), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(60_000) });
  t.is(created.status, 201, await created.text());
  const invokePort = Number(new URL(up.info.invoke).port);
  const compatPort = Number(new URL(up.info.compat).port);
  // Four warm sandboxes, so that the four requests below all run at once.
  for (let i = 0; i < 100; i++) {
    const ready = ((await (await fetch(`${up.info.admin}/api/v1/functions/slow`)).json()) as { status?: { ready?: number } }).status?.ready;
    if (ready === 4) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  const exited = new Promise<{ code: number | null; at: number }>((resolve) => up.process.once('exit', (code) => resolve({ code, at: performance.now() })));
  const inFlight = [post(invokePort, '/invoke/slow'), post(invokePort, '/'), post(compatPort, '/'), post(compatPort, '/')];
  // The requests reach their sandboxes, then the signal.
  await new Promise((r) => setTimeout(r, 300));
  const signalledAt = performance.now();
  up.process.kill('SIGTERM');
  const statuses = await Promise.all(inFlight);
  const { code, at } = await Promise.race([exited, new Promise<{ code: 'still running'; at: number }>((resolve) => setTimeout(() => resolve({ code: 'still running', at: 0 }), STOP_BOUND_MS))]);
  t.log(`answers to the requests in flight: ${statuses.join(', ')}; exit ${code} ${Math.round(at - signalledAt)} ms after SIGTERM`);
  t.deepEqual(statuses, [200, 200, 200, 200]);
  t.is(code, 0);
  t.true(at - signalledAt < STOP_BOUND_MS);
});
