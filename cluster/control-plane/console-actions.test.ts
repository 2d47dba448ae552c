// The console's actions against a real control plane with an admin token (its admin API in this process, one
// simulated worker): refused without the token or with another (401, logged), done with it (logged, with who
// asked), and bad bodies refused with a 400 naming the field.
import test from 'ava';
import { until } from '../../runtime/fixtures/until.js';
import { WorkerDaemon } from '../worker/daemon.js';
import { soleReplica, startAdminApi } from './admin-api.js';
import { ControlPlane } from './control-plane.js';

const TOKEN = 'console-actions-cluster';
const ADMIN_TOKEN = 'console-actions-admin';

test('scale, drain and restart: 401 without the token, done and logged with it', async (t) => {
  const log: string[] = [];
  const plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store: { kind: 'memory' }, shards: 1, onLog: (level, text) => log.push(`${level} ${text}`) });
  t.teardown(() => plane.stop());
  const admin = await startAdminApi(soleReplica(plane), { host: '127.0.0.1', port: 0, adminToken: ADMIN_TOKEN });
  t.teardown(() => admin.close());
  const daemon = await WorkerDaemon.start({ id: 'w1', controlPlane: plane.clusterAddress, token: TOKEN, host: '127.0.0.1', runtime: 'simulated', capacity: { cpuMilli: 4000, memoryMiB: 4096, slots: 16 }, shards: 1, onLog: () => undefined });
  t.teardown(() => daemon.stop());
  await until('the worker registered', async () => ((await plane.nodes()).length === 1 ? true : undefined), 10_000);
  t.true((await plane.createFunction({ name: 'f', source: { kind: 'builtin', workload: 'echo' } })).ok);

  const post = async (action: string, body: unknown, token?: string) => {
    const res = await fetch(`${admin.url}/api/v1/console/${action}`, {
      method: 'POST',
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      signal: AbortSignal.timeout(15_000),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  for (const token of [undefined, 'wrong']) {
    const refused = await post('drain', { node: 'w1' }, token);
    t.is(refused.status, 401);
    t.is(refused.body.error.code, 'UNAUTHORIZED');
    t.regex(refused.body.error.message, /Bearer <admin token>/);
  }
  t.true((await plane.nodes())[0]!.schedulable, 'not drained');
  t.is(log.filter((l) => /^warn console action refused for 127\.0\.0\.1:\d+: drain: (no token|a wrong token)$/.test(l)).length, 2, log.join('\n'));

  const drained = await post('drain', { node: 'w1' }, ADMIN_TOKEN);
  t.is(drained.status, 200);
  t.false(drained.body.schedulable);
  t.true(log.some((l) => /^info console action by 127\.0\.0\.1:\d+: node w1 drained/.test(l)));
  t.true((await post('drain', { node: 'w1', drain: false }, ADMIN_TOKEN)).body.schedulable);

  const scaled = await post('scale', { function: 'f', minScale: 2, maxScale: 5 }, ADMIN_TOKEN);
  t.is(scaled.status, 200);
  t.deepEqual([scaled.body.spec.scaling.minScale, scaled.body.spec.scaling.maxScale], [2, 5]);
  t.true(log.some((l) => l.includes('function f scaled to {"minScale":2,"maxScale":5}')));

  // The autoscaler's state is what it observed: it starts again from its init and learns anew.
  const autoscaler = (await plane.inspector.topActors({ kind: 'autoscaler', sort: 'address', offset: 0, limit: 1 })).items[0]!;
  const restarted = await post('restart', { process: 'control-plane', shard: autoscaler.shard, name: autoscaler.address }, ADMIN_TOKEN);
  t.deepEqual(restarted, { status: 200, body: { restarts: 1 } });
  t.true(log.some((l) => l.includes(`console action by 127.0.0.1:`) && l.includes(`: actor ${autoscaler.address} on shard 0 restarted (restart 1)`)), log.join('\n'));
  t.is((await plane.inspector.inspect('control-plane', 0, autoscaler.address)).stats.restarts, 1);

  const bad: [string, unknown, number, string][] = [
    ['scale', { function: 'f' }, 400, 'INVALID_BODY'],
    ['scale', { function: 'f', minScale: -1 }, 400, 'INVALID_BODY'],
    ['scale', { function: 'nope', minScale: 1 }, 404, 'UNKNOWN_FUNCTION'],
    ['scale', { function: 'f', minScale: 9, maxScale: 1 }, 400, 'INVALID_SPEC'],
    ['drain', { node: 'nope' }, 404, 'UNKNOWN_NODE'],
    ['drain', { node: 'w1', drain: 'yes' }, 400, 'INVALID_BODY'],
    ['drain', { node: 'w1', extra: 1 }, 400, 'INVALID_BODY'],
    ['restart', { process: 'worker:w1', shard: 0, name: 'node/w1' }, 403, 'REMOTE_ACTOR'],
    ['restart', { process: 'control-plane', shard: 7, name: 'x' }, 400, 'BAD_REQUEST'],
    ['restart', { process: 'control-plane', shard: 0, name: 'nobody/x' }, 404, 'NO_SUCH_ACTOR'],
    ['restart', '[1]', 400, 'INVALID_JSON'],
    ['restart', '{', 400, 'INVALID_JSON'],
  ];
  for (const [action, body, status, code] of bad) {
    const answer = await post(action, body, ADMIN_TOKEN);
    t.is(answer.status, status, `${action} ${JSON.stringify(body)}: ${JSON.stringify(answer.body)}`);
    t.is(answer.body.error.code, code, `${action} ${JSON.stringify(body)}`);
  }
});
