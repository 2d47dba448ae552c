// `dirigent describe`: the real CLI against a real control plane and thread worker, and against a stand-in
// admin API whose function status has fields this CLI has no section for.
import test from 'ava';
import { createServer } from 'node:http';
import { fixtureModule, runCli, startSmallCluster } from './fixtures/small-cluster.js';
import { until } from '../runtime/fixtures/until.js';

test.serial('describe shows spec, version, sandboxes with node and state, and the counters', async (t) => {
  const cluster = await startSmallCluster(t, 'thread');
  const admin = ['--admin', cluster.adminUrl];
  const module = fixtureModule('chatty.mjs');
  t.is((await runCli(['deploy', 'shown', '--module', module, '--min-scale', '1', '--concurrency', '2', '--env', 'GREETING=hi', ...admin])).code, 0);
  const sandbox = await until('a ready sandbox', async () => (await cluster.client.getFunction('shown')).status?.sandboxes?.find((s) => s.phase === 'ready'), 15_000);

  const described = await runCli(['describe', 'shown', ...admin]);
  t.is(described.code, 0, described.stderr);
  const out = described.stdout;
  t.regex(out, /^Name: +shown$/m);
  t.regex(out, /^Version: +1 \(spec v1, endpoint set v\d+\)$/m);
  t.regex(out, /^State: +active$/m);
  t.regex(out, /^Runtime: +thread$/m);
  t.true(out.includes(`Source:       module ${module}`));
  t.regex(out, /^Resources: +cpu 100 millicores, memory 128 MiB, concurrency 2, timeout 60000 ms$/m);
  t.regex(out, /^Env: +GREETING=hi$/m);
  t.regex(out, /^Scaling: +min 1, max \d+, keep-alive 60000 ms/m);
  t.regex(out, /^Scale: +desired 1, ready 1, creating 0, draining 0$/m);
  t.regex(out, /^Autoscaler: +stable, 0 in flight or queued/m);
  t.regex(out, /^Windows: +stable 60 s /m);
  t.regex(out, /^Invocations: +0, cold starts 0$/m);
  t.regex(out, /^Sandboxes \(1\):\n {2}SANDBOX +NODE +STATE +VERSION +AGE\n/m);
  t.regex(out, new RegExp(`^  ${sandbox.sandboxId} +w1 +ready +v1 +\\d+s$`, 'm'));

  const json = await runCli(['describe', 'shown', '--json', ...admin]);
  t.like(JSON.parse(json.stdout), { spec: { name: 'shown', version: 1, env: { GREETING: 'hi' } }, status: { ready: 1 } });

  t.is((await runCli(['deploy', 'shown', '--module', module, '--memory', '256', ...admin])).code, 0);
  t.regex((await runCli(['describe', 'shown', ...admin])).stdout, /^Version: +2 /m);

  const missing = await runCli(['describe', 'nope', '--json', ...admin]);
  t.is(missing.code, 1);
  t.deepEqual(JSON.parse(missing.stderr), { error: { code: 'UNKNOWN_FUNCTION', message: 'no function named nope' } });
});

test('counters from the metrics; fields the status gains show without a change to the CLI: events with reasons, any other field', async (t) => {
  const now = Date.now();
  const view = {
    spec: { name: 'broken', version: 3, runtime: 'thread', source: { kind: 'thread', module: '/m.mjs' }, cpuMilli: 100, memoryMiB: 128, concurrency: 1, timeoutMs: 1000, queueDepth: 10, queueTimeoutMs: 100, maxBodyBytes: 10, env: {}, scaling: { minScale: 0, maxScale: 5 }, revision: 'abc' },
    status: {
      name: 'broken',
      specVersion: 3,
      desired: 1,
      creating: 0,
      ready: 0,
      draining: 0,
      sandboxes: [{ sandboxId: 'broken-7', nodeId: 'w2', phase: 'failed', since: now - 65_000, version: 3 }],
      events: [
        { at: now - 5000, type: 'Warning', reason: 'CreateFailed', message: 'cannot load the module: boom', count: 4 },
        { at: now - 1000, type: 'Normal', reason: 'BackOff', message: 'next attempt in 20 s' },
      ],
      state: 'failed',
      lastError: { message: 'cannot load the module: boom', at: now - 5000 },
    },
    autoscaler: { panic: true, observedInFlight: 3, queued: 1, decisions: 7, lastDecision: 'panic: 1 -> 2', totals: { invocations: 120, coldStarts: 3, coldStartMsSum: 150, coldStartMsBuckets: [], rejected: { '503': 2 } } },
  };
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(view)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as { port: number };
  const described = await runCli(['describe', 'broken', '--admin', `http://127.0.0.1:${port}`]);
  t.is(described.code, 0, described.stderr);
  const out = described.stdout;
  t.regex(out, /^Scaling: +min 0, max 5$/m);
  t.regex(out, /^Autoscaler: +panic, 3 in flight or queued, 7 decisions, last: panic: 1 -> 2$/m);
  t.regex(out, /^Invocations: +120, cold starts 3, 50 ms queued on average; answered without a sandbox: 503 x2$/m);
  t.regex(out, /^Spec \(more\): +revision=abc$/m);
  // Ages count from when the CLI ran: a slow start on a busy machine adds seconds.
  t.regex(out, /^ {2}broken-7 +w2 +failed +v3 +1m\d\ds$/m);
  t.regex(out, /^Version: +3 \(spec v3\)$/m, 'a status without a version: the spec\'s');
  t.regex(out, /^State: +failed$/m);
  t.regex(out, /^Events \(2\):\n {2}AGE +TYPE +REASON +MESSAGE\n {2}\d+s +Warning +CreateFailed +cannot load the module: boom \(count=4\)\n {2}\d+s +Normal +BackOff +next attempt in 20 s$/m);
  t.regex(out, /^Status \(more\):\n {2}lastError: \{"message":"cannot load the module: boom","at":\d+\}$/m);
});

test('the autoscaler: observed concurrency (average and peak), the windows, the mode and the last decisions with their reasons', async (t) => {
  const now = Date.now();
  const view = {
    spec: { name: 'scaled', version: 1, runtime: 'thread', source: { kind: 'builtin', workload: 'echo' }, concurrency: 1, scaling: { minScale: 0, peakWeightPercent: 0 } },
    status: { name: 'scaled', specVersion: 1, desired: 2, creating: 0, ready: 2, draining: 0, sandboxes: [] },
    autoscaler: {
      panic: false,
      mode: 'stable',
      observedInFlight: 6,
      observedAverage: 0.62,
      stableWindowAverage: 0.6,
      panicWindowAverage: 0.71,
      stableWindowMs: 60_000,
      panicWindowMs: 6000,
      decisions: 3,
      lastDecision: 'stable -> 1',
      recentDecisions: [
        { at: now - 20_000, from: 0, to: 1, reason: 'backlog', panic: false, trigger: 'backlog', backlog: 1, ready: 0 },
        { at: now - 9000, from: 1, to: 2, reason: 'backlog', panic: false, trigger: 'backlog', backlog: 1, ready: 1 },
        { at: now - 2000, from: 2, to: 1, reason: 'stable', panic: false, trigger: 'tick', stable: 0.6, panicWindow: 0.71, ready: 2 },
      ],
    },
  };
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(view)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as { port: number };
  const described = await runCli(['describe', 'scaled', '--admin', `http://127.0.0.1:${port}`]);
  t.is(described.code, 0, described.stderr);
  const out = described.stdout;
  t.regex(out, /^Scaling: +min 0, peak weight 0 %$/m);
  t.regex(out, /^Observed: +0\.62 in flight on average, 6 at the peak/m);
  t.regex(out, /^Windows: +stable 60 s mean 0\.6, panic 6 s mean 0\.71 \(requests in flight\)$/m);
  t.regex(out, /^Scaling decisions \(last 3\):\n {2}AGE +COUNT +REASON +MODE +FROM\n/m);
  t.regex(out, /^ {2}\d+s +1 -> 2 +backlog +stable +backlog of 1, 1 ready$/m);
  t.regex(out, /^ {2}\d+s +2 -> 1 +stable +stable +tick: stable mean 0\.6, panic mean 0\.71, 2 ready$/m);
});
