// `dirigent logs`: the real CLI against a real control plane and thread worker.
import test from 'ava';
import { fixtureModule, RunningCli, runCli, startSmallCluster, type SmallCluster } from './fixtures/small-cluster.js';
import { until } from '../runtime/fixtures/until.js';

const CHATTY = fixtureModule('chatty.mjs');
const LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+)\/(\S+) (stdout|stderr) (.*)$/;

async function deployChatty(cluster: SmallCluster, name: string): Promise<string> {
  await cluster.client.createFunction({ name, source: { kind: 'thread', module: CHATTY }, scaling: { minScale: 1 } });
  const sandbox = await until(`${name} ready`, async () => (await cluster.client.getFunction(name)).status?.sandboxes?.find((s) => s.phase === 'ready'), 15_000);
  await until(`${name} ticked`, async () => ((await cluster.client.functionLogs(name)).lines.length >= 3 ? true : undefined));
  return sandbox.sandboxId;
}

test.serial('logs prints each line with time, node/sandbox and stream; --tail, --since and --json narrow and shape it', async (t) => {
  const cluster = await startSmallCluster(t, 'thread');
  const sandboxId = await deployChatty(cluster, 'chatty');
  const admin = ['--admin', cluster.adminUrl];

  const all = await runCli(['logs', 'chatty', ...admin]);
  t.is(all.code, 0, all.stderr);
  const lines = all.stdout.trimEnd().split('\n');
  t.true(lines.length >= 3);
  const first = LINE.exec(lines[0]!);
  t.truthy(first, lines[0]);
  t.deepEqual(first?.slice(2), ['w1', sandboxId, 'stdout', 'started']);
  t.true(lines.every((l) => LINE.test(l)));

  const tail = await runCli(['logs', 'chatty', '--tail', '2', ...admin]);
  t.is(tail.stdout.trimEnd().split('\n').length, 2);
  t.regex(tail.stdout, /tick \d+\n$/);

  const json = await runCli(['logs', 'chatty', '--tail', '1', '--json', ...admin]);
  t.like(JSON.parse(json.stdout), { stream: 'stdout', nodeId: 'w1', sandboxId });

  t.regex((await runCli(['logs', 'chatty', '--since', '1h', ...admin])).stdout, / started\n/);
  const future = await runCli(['logs', 'chatty', '--since', '2999-01-01T00:00:00Z', ...admin]);
  t.is(future.code, 0);
  t.is(future.stdout, '');
  t.regex(future.stderr, /no output from chatty since 2999/);

  t.like(await runCli(['logs', 'chatty', '--tail', '0', ...admin]), { code: 2, stderr: 'dirigent: --tail must be an integer in 1..10000 lines, got "0"\n' });
  t.like(await runCli(['logs', 'chatty', '--since', 'yesterday', ...admin]), { code: 2 });
  const unknown = await runCli(['logs', 'nope', ...admin]);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /no function named nope \(HTTP 404, UNKNOWN_FUNCTION\)/);
});

test.serial('logs --follow prints new lines as they come until Ctrl-C (exit 0), or until the function is deleted (exit 1)', async (t) => {
  const cluster = await startSmallCluster(t, 'thread');
  await deployChatty(cluster, 'followed');
  const follower = new RunningCli(['logs', 'followed', '--follow', '--tail', '1', '--admin', cluster.adminUrl]);
  t.teardown(() => follower.stop('SIGKILL').then(() => undefined));
  const ticks = await follower.waitFor('four lines', (lines) => (lines.length >= 4 ? lines.slice(0, 4) : undefined));
  const numbers = ticks.map((l) => Number(/tick (\d+)$/.exec(l)?.[1]));
  t.deepEqual(numbers, [numbers[0]!, numbers[0]! + 1, numbers[0]! + 2, numbers[0]! + 3], 'consecutive: none missed, none twice');
  t.deepEqual(await follower.stop('SIGINT'), { code: 0, stderr: '' });

  const orphan = new RunningCli(['logs', 'followed', '-f', '--json', '--admin', cluster.adminUrl]);
  t.teardown(() => orphan.stop('SIGKILL').then(() => undefined));
  await orphan.waitFor('a line', (lines) => (lines.length > 0 ? true : undefined));
  t.is(JSON.parse(orphan.lines[0]!).line, 'started');
  await cluster.client.deleteFunction('followed');
  const ended = await orphan.exited();
  t.is(ended.code, 1);
  t.is(JSON.parse(ended.stderr).error.code, 'UNKNOWN_FUNCTION');
});
