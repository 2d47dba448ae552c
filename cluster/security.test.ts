// Security of a running `dirigent up` (a real process tree on loopback, driven over HTTP and TCP):
// - changes through the admin API need its bearer token (missing or wrong: 401), reads do not;
// - the admin API under hostile JSON (fast-check, seeded): any body to create or update a function, invalid
//   names, huge and negative numbers, wrong types, module paths that climb out (`../`): a 4xx with a JSON error
//   body, never a 5xx, and the control plane goes on serving;
// - the cluster transport refuses a peer with a wrong or a missing token;
// - neither token appears in anything the cluster prints or answers: its logs (every process's, captured), the
//   JSON line of `up`, /metrics, status, replicas, console views, and error bodies;
// - a thread sandbox's `process.env` holds only its function's environment, nothing of the worker's.
import test from 'ava';
import fc from 'fast-check';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectFrames } from '../runtime/frames.js';
import { startUp } from './fixtures/up-process.js';

const TOKEN = 'cluster-token-Zq81xW3pLm';
const ADMIN_TOKEN = 'admin-token-Vr55bN0kTy';
const SEED = 1414;
/** Bound on the cluster's start, ms: generous, a full test run on 2 cores is slow. */
const START_MS = 90_000;

const SPY_MODULE = `export async function handler() {
  let environ = '';
  try { environ = (await import('node:fs')).readFileSync('/proc/self/environ', 'latin1'); } catch {}
  return { status: 200, headers: { 'content-type': 'application/json' }, body: { env: { ...process.env }, environHasClusterToken: environ.includes(${JSON.stringify(TOKEN)}) } };
}
`;

test.serial('tokens: changes need the admin token, a peer needs the cluster token, and neither is ever printed or answered', async (t) => {
  t.timeout(300_000);
  const dir = await mkdtemp(join(tmpdir(), 'dirigent-security-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const spy = join(dir, 'spy.mjs');
  await writeFile(spy, SPY_MODULE);

  // Every log line at debug level (stacks included): the most a cluster ever prints.
  const { info, output } = await startUp(t, ['--workers', '1', '--data-dir', join(dir, 'state')], { DIRIGENT_TOKEN: TOKEN, DIRIGENT_ADMIN_TOKEN: ADMIN_TOKEN, DIRIGENT_LOG: 'debug' }, START_MS);
  const answers: string[] = [];
  const admin = async (path: string, init: { method?: string; body?: string; token?: string } = {}) => {
    const response = await fetch(`${info.admin}${path}`, {
      method: init.method ?? 'GET',
      body: init.body,
      headers: { 'content-type': 'application/json', ...(init.token === undefined ? {} : { authorization: `Bearer ${init.token}` }) },
      signal: AbortSignal.timeout(60_000),
    });
    const text = await response.text();
    answers.push(`${path} ${response.status} ${JSON.stringify(Object.fromEntries(response.headers))} ${text}`);
    return { status: response.status, text };
  };

  // The whole cluster is ready once `up` printed its addresses.
  t.is((await admin('/readyz')).status, 200);

  // Changes need the admin token; reads do not.
  const spec = JSON.stringify({ name: 'spy', runtime: 'thread', source: { kind: 'thread', module: spy }, env: { GREETING: 'hi' } });
  t.is((await admin('/api/v1/functions', { method: 'POST', body: spec })).status, 401, 'no token');
  t.is((await admin('/api/v1/functions', { method: 'POST', body: spec, token: 'wrong-admin-token' })).status, 401, 'a wrong token');
  t.is((await admin('/api/v1/functions', { method: 'POST', body: spec, token: ADMIN_TOKEN.slice(0, -1) })).status, 401, 'a prefix of the token');
  t.is((await admin('/api/v1/functions/spy', { method: 'DELETE' })).status, 401);
  t.is((await admin('/registerService', { method: 'POST', body: 'name=x' })).status, 401);
  const created = await admin('/api/v1/functions', { method: 'POST', body: spec, token: ADMIN_TOKEN });
  t.is(created.status, 201, created.text);
  t.is((await admin('/api/v1/functions')).status, 200);

  // A thread sandbox sees its function's environment and nothing of the worker's (which holds the cluster token).
  const invoked = await fetch(`${info.invoke}/invoke/spy`, { method: 'POST', body: 'x', signal: AbortSignal.timeout(60_000) });
  const seen = (await invoked.json()) as { env: Record<string, string>; environHasClusterToken: boolean };
  t.is(invoked.status, 200);
  t.deepEqual(seen.env, { GREETING: 'hi' });
  // Not a security boundary: the thread shares its worker's process, whose initial environment the kernel
  // still shows in /proc/self/environ (README, "What is isolated").
  t.log(`a thread sandbox reading /proc/self/environ ${seen.environHasClusterToken ? 'finds' : 'does not find'} the cluster token`);

  // Hostile function specs: a 4xx with a JSON error, never a 5xx.
  const hostileSpec = fc.oneof(
    fc.anything(),
    fc.record(
      {
        name: fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom('../etc', 'a'.repeat(64), 'UPPER', '-x', 'x_y', ''), fc.anything()),
        runtime: fc.oneof(fc.constantFrom('thread', 'process', 'simulated'), fc.anything()),
        source: fc.oneof(
          fc.record({ kind: fc.constant('thread'), module: fc.oneof(fc.constantFrom('../../../../etc/passwd', '/etc/shadow', 'file:///proc/self/environ', '..\\..\\x.mjs', 'data:text/javascript,export const handler=()=>1'), fc.string()) }),
          fc.record({ kind: fc.constant('builtin'), workload: fc.oneof(fc.constantFrom('echo', 'empty'), fc.string()) }),
          fc.anything(),
        ),
        memoryMiB: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(-1, 0, 2 ** 53, 1e308), fc.anything()),
        concurrency: fc.oneof(fc.integer(), fc.constantFrom(-5, 0, 1e9), fc.anything()),
        timeoutMs: fc.oneof(fc.integer(), fc.constantFrom(-1, Number.MAX_SAFE_INTEGER)),
        env: fc.oneof(fc.dictionary(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 })), fc.anything()),
        scaling: fc.oneof(fc.record({ minScale: fc.integer(), maxScale: fc.integer(), tickMs: fc.integer() }, { requiredKeys: [] }), fc.anything()),
      },
      { requiredKeys: [] },
    ),
  );
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(hostileSpec, fc.boolean(), async (value, update) => {
      const body = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) ?? 'null';
      const { status, text } = await admin(update ? '/api/v1/functions/spy' : '/api/v1/functions', { method: update ? 'PATCH' : 'POST', body, token: ADMIN_TOKEN });
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status === 201 || status === 200) {
        // A valid spec that runs: fine, but remove what was made (an update leaves spy as it now is).
        const name = (value as { name?: unknown }).name;
        if (!update && typeof name === 'string') await admin(`/api/v1/functions/${encodeURIComponent(name)}`, { method: 'DELETE', token: ADMIN_TOKEN });
        return true;
      }
      const error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
      return status >= 400 && status < 500 && typeof error?.code === 'string' && typeof error.message === 'string';
    }),
    { seed: SEED, numRuns: 120 },
  );
  t.log(`120 hostile specs: ${[...statuses].sort().map(([s, n]) => `${s} x${n}`).join(', ')}`);
  // Malformed bodies, queries, names and methods.
  for (const [path, method, body] of [
    ['/api/v1/functions', 'POST', '{"name":'],
    ['/api/v1/functions', 'POST', ''],
    ['/api/v1/functions', 'POST', 'x'.repeat(2 * 1024 * 1024)],
    ['/api/v1/functions/%2e%2e%2f%2e%2e', 'GET', undefined],
    ['/api/v1/functions/spy/logs?tail=-1', 'GET', undefined],
    ['/api/v1/functions/spy/logs?since=99999999999999999999', 'GET', undefined],
    ['/api/v1/functions/spy/logs?follow=maybe', 'GET', undefined],
    ['/api/v1/console/actors?limit=-5&offset=1e99', 'GET', undefined],
    ['/api/v1/nodes', 'DELETE', undefined],
    ['/../../etc/passwd', 'GET', undefined],
  ] as const) {
    // A body over the 1 MiB limit may be cut off by the 413 before it is all sent: a closed connection.
    const { status } = await admin(path, { method, body, token: ADMIN_TOKEN }).catch(() => ({ status: 0 }));
    t.true((status >= 400 && status < 500) || (status === 0 && body !== undefined && body.length > 1024 * 1024), `${method} ${path}: ${status}`);
  }

  // The cluster transport: a wrong and a missing token are refused.
  const [host, port] = [info.cluster.slice(0, info.cluster.lastIndexOf(':')), Number(info.cluster.slice(info.cluster.lastIndexOf(':') + 1))];
  const wrong = await t.throwsAsync(connectFrames({ host, port, hello: { token: 'not-the-cluster-token', role: 'worker', id: 'intruder', info: { nodes: ['evil'] } } }));
  t.regex(wrong!.message, /wrong cluster token/);
  const missing = await t.throwsAsync(connectFrames({ host, port, hello: { role: 'worker', id: 'intruder' } as never }));
  t.regex(missing!.message, /the first frame must be a hello/);

  // Everything readable, then the grep.
  for (const path of ['/metrics', '/api/v1/status', '/api/v1/replicas', '/api/v1/dataplanes', '/api/v1/nodes', '/api/v1/functions/spy', '/api/v1/console/cluster', '/api/v1/console/functions', '/api/v1/console/kinds', '/openapi.json', '/api/v1/functions/nope']) await admin(path);
  const unknown = await fetch(`${info.invoke}/invoke/nope`);
  answers.push(await unknown.text());
  t.is(unknown.status, 404);
  const everything = [...output, ...answers].join('\n');
  t.true(output.length >= 5 && answers.length >= 140, `${output.length} lines of output, ${answers.length} answers`);
  t.false(everything.includes(TOKEN), 'the cluster token appears in output or an answer');
  t.false(everything.includes(ADMIN_TOKEN), 'the admin token appears in output or an answer');
  t.log(`${output.length} lines of output and ${answers.length} answers hold neither token`);
});
