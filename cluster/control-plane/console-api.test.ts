// The console's JSON views over a real local cluster (`dirigent up`: the control plane here, the data plane
// and a worker as child processes): every process's actors are read over the cluster links.
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminClient } from '../admin-client.js';
import { request, until } from '../data-plane/fixtures/harness.js';
import { LocalCluster } from '../launcher.js';

let cluster: LocalCluster;
let dataDir: string;

test.before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'dirigent-console-api-'));
  cluster = await LocalCluster.start({ host: '127.0.0.1', adminPort: 0, invokePort: 0, compatPort: 0, dataDir, workers: 1, runtime: 'thread' });
  const admin = new AdminClient({ adminUrl: cluster.adminUrl });
  await until('the worker registered', async () => ((await admin.nodes()).length === 1 ? true : undefined), 15_000);
  await admin.createFunction({ name: 'echo', source: { kind: 'builtin', workload: 'echo' } });
  const port = Number(new URL(cluster.invokeUrl).port);
  for (let i = 0; i < 3; i++) {
    const answer = await request(port, { method: 'POST', path: '/invoke/echo', body: `hi ${i}`, timeoutMs: 15_000 });
    if (answer.status !== 200) throw new Error(`invoke answered ${answer.status}`);
  }
});

test.after.always(async () => {
  await cluster?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly body: any;
  readonly headers: Headers;
}

/** GET without the admin token: every console view is read-only. */
async function get(path: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(`${cluster.adminUrl}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // the page's files are not JSON
  }
  return { status: res.status, body, headers: res.headers };
}

test.serial('cluster: leader, term, replicas, workers with capacity and heartbeat age, data planes, every process\'s shards', async (t) => {
  const { status, body } = await get('/api/v1/console/cluster');
  t.is(status, 200);
  t.is(body.replicas[0].role, 'leader');
  t.true(body.term >= 1);
  t.is(body.reconstruction.phase, 'serving');
  t.is(body.workers.length, 1);
  t.true(body.workers[0].capacity.slots > 0 && body.workers[0].allocated.slots >= 1 && body.workers[0].heartbeatAgeMs >= 0);
  t.deepEqual(body.dataplanes.map((d: { connected: boolean }) => d.connected), [true]);
  const processes = body.processes.map((p: { process: string }) => p.process);
  t.is(processes[0], 'control-plane');
  t.true(processes.some((p: string) => p.startsWith('worker:')));
  t.true(processes.some((p: string) => p.startsWith('dataplane:')));
  t.deepEqual(body.unreachable, []);
});

test.serial('functions: scale by phase, queue, in-flight and the cumulative invocation counters', async (t) => {
  // The data plane reports its counters every router tick.
  const fn = await until('the invocations to be counted', async () => {
    const f = (await get('/api/v1/console/functions')).body.functions.find((x: { name: string }) => x.name === 'echo');
    return f && f.invocations >= 3 ? f : undefined;
  }, 15_000);
  t.is(fn.state, 'active');
  t.is(fn.ready, 1);
  t.is(fn.coldStarts, 1);
  t.is(typeof fn.coldStartP50Ms, 'number');
  t.is(fn.sandboxes.length, 1);
  t.false(fn.panic);
  // The leader samples every function every 5 s for the charts: the first sample once it serves.
  const history = await until('a sample of echo', async () => {
    const samples = (await get('/api/v1/console/history')).body.functions.echo as { t: number; invocations: number; ready: number }[];
    return samples.length > 0 ? samples : undefined;
  }, 15_000);
  t.is(typeof history[0]!.t, 'number');
  t.true(history.every((s) => s.invocations >= 0 && s.ready >= 0));
});

test.serial('actors: by kind across processes, one sorted page, filters, and one actor\'s state', async (t) => {
  const kinds = (await get('/api/v1/console/kinds')).body.kinds as { kind: string; actors: number; where: { process: string }[] }[];
  const kindNames = kinds.map((k) => k.kind);
  for (const kind of ['function', 'autoscaler', 'scheduler', 'node', 'router', 'dpsandbox']) t.true(kindNames.includes(kind), `kind ${kind} in ${kindNames.join(',')}`);
  t.true(kinds.find((k) => k.kind === 'router')!.where.every((w) => w.process.startsWith('dataplane:')));

  const page = (await get('/api/v1/console/actors?sort=processed&limit=5')).body;
  t.is(page.items.length, 5);
  t.true(page.total > 5);
  for (let i = 1; i < page.items.length; i++) t.true(page.items[i - 1].processed >= page.items[i].processed);
  const next = (await get('/api/v1/console/actors?sort=processed&limit=5&offset=5')).body;
  t.false(next.items.some((a: { address: string; process: string; shard: number }) => page.items.some((b: typeof a) => a.address === b.address && a.process === b.process && a.shard === b.shard)));

  const routers = (await get('/api/v1/console/actors?kind=router&process=dataplane:dp1')).body;
  t.true(routers.total >= 1);
  t.true(routers.items.every((a: { kind: string; process: string }) => a.kind === 'router' && a.process === 'dataplane:dp1'));
  const router = routers.items.find((a: { address: string }) => a.address.includes('/echo'));
  t.truthy(router, JSON.stringify(routers.items.map((a: { address: string }) => a.address)));

  const one = await get(`/api/v1/console/actor?${new URLSearchParams({ process: router.process, shard: String(router.shard), name: router.address })}`);
  t.is(one.status, 200);
  t.is(one.body.stats.address, router.address);
  t.true(one.body.stats.processed >= 1);
  t.is(typeof one.body.line, 'string');
  t.truthy(one.body.state);

  // A shard filter alone skips the processes without that shard; with a process it must exist there.
  const far = await get('/api/v1/console/actors?shard=200');
  t.is(far.status, 200);
  t.is(far.body.total, 0);
  t.true((await get('/api/v1/console/actors?shard=0')).body.items.every((a: { shard: number }) => a.shard === 0));

  const fn = (await get('/api/v1/console/actors?kind=function')).body.items[0];
  const inspected = (await get(`/api/v1/console/actor?${new URLSearchParams({ process: 'control-plane', shard: String(fn.shard), name: fn.address })}`)).body;
  t.is(inspected.stats.kind, 'function');
});

test.serial('bad requests get a clear error and a status; the page is served with a strict policy', async (t) => {
  const cases: [string, number, string][] = [
    ['/api/v1/console/actors?sort=bogus', 400, 'INVALID_QUERY'],
    ['/api/v1/console/actors?limit=0', 400, 'INVALID_QUERY'],
    ['/api/v1/console/actors?nonsense=1', 400, 'INVALID_QUERY'],
    ['/api/v1/console/actors?process=worker:nobody', 404, 'NO_SUCH_ACTOR'],
    ['/api/v1/console/actors?process=control-plane&shard=9', 400, 'BAD_REQUEST'],
    ['/api/v1/console/actor?process=control-plane', 400, 'INVALID_QUERY'],
    ['/api/v1/console/actor?process=control-plane&shard=0&name=nobody%2Fx', 404, 'NO_SUCH_ACTOR'],
    ['/api/v1/console/actor?process=dataplane:dp1&shard=0&name=%3Cscript%3E', 404, 'NO_SUCH_ACTOR'],
    ['/api/v1/console/nothing', 404, 'NOT_FOUND'],
    ['/api/v1/console/stream', 400, 'INVALID_QUERY'],
    ['/api/v1/console/stream?watch=nothing', 404, 'NOT_FOUND'],
    ['/api/v1/console/stream?watch=actors%3Fsort%3Dbogus', 400, 'INVALID_QUERY'],
    ['/api/v1/console/stream?watch=cluster&other=1', 400, 'INVALID_QUERY'],
    [`/api/v1/console/stream?${'watch=cluster&'.repeat(5)}`, 400, 'INVALID_QUERY'],
  ];
  for (const [path, status, code] of cases) {
    const answer = await get(path);
    t.is(answer.status, status, path);
    t.is(answer.body.error?.code, code, path);
  }
  t.is((await get('/api/v1/console/cluster', { method: 'POST' })).status, 405);

  const page = await get('/console');
  t.is(page.status, 200);
  t.regex(page.headers.get('content-type') ?? '', /text\/html/);
  t.regex(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  t.regex(String(page.body), /\/console\/console\.js/);
  t.is((await get('/console/console.js')).status, 200);
  t.is((await get('/console/console.css')).status, 200);
  t.is((await get('/console/other.js')).status, 404);
});

test.serial('stream: the watched views pushed as server-sent events, the actor list one page of it', async (t) => {
  const query = new URLSearchParams([['watch', 'functions'], ['watch', 'actors?kind=router&sort=processed&limit=2']]);
  const abort = new AbortController();
  const res = await fetch(`${cluster.adminUrl}/api/v1/console/stream?${query}`, { signal: AbortSignal.any([abort.signal, AbortSignal.timeout(15_000)]) });
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  let text = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    text += Buffer.from(chunk).toString('utf8');
    if ((text.match(/^event: update$/gm) ?? []).length >= 2) break;
  }
  abort.abort();
  const events = [...text.matchAll(/^event: (.*)\ndata: (.*)$/gm)].map((m) => ({ name: m[1], data: JSON.parse(m[2]!) }));
  const byIndex = new Map(events.map((e) => [e.data.i, e.data.body]));
  t.true(byIndex.get(0).functions.some((f: { name: string }) => f.name === 'echo'));
  t.is(byIndex.get(1).items.length, Math.min(2, byIndex.get(1).total));
  t.true(byIndex.get(1).items.every((a: { kind: string }) => a.kind === 'router'));
});

test.serial('actions: refused when the cluster has no admin token (read-only by default)', async (t) => {
  const minScale = async () => (await get('/api/v1/console/functions')).body.functions.find((f: { name: string }) => f.name === 'echo').minScale;
  const before = await minScale();
  for (const [action, body] of [['scale', { function: 'echo', minScale: 3 }], ['drain', { node: 'w1' }], ['restart', { process: 'control-plane', shard: 0, name: 'scheduler/cluster' }]] as const) {
    const answer = await get(`/api/v1/console/${action}`, { method: 'POST', body: JSON.stringify(body), headers: { authorization: 'Bearer anything' } });
    t.is(answer.status, 403, action);
    t.is(answer.body.error.code, 'ACTIONS_DISABLED');
    t.regex(answer.body.error.message, /read-only.*--admin-token/);
  }
  t.is((await get('/api/v1/console/scale')).status, 405);
  t.is(await minScale(), before, 'nothing changed');
});
