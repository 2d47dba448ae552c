// `dirigent ls --watch`: the real CLI against a real control plane and a simulated worker.
import test from 'ava';
import { RunningCli, runCli, startSmallCluster } from './fixtures/small-cluster.js';

const HEADER = /^Every 0\.2 s: dirigent ls {4}\d{4}-/;

test.serial('ls --watch redraws when the scale changes, not otherwise, and Ctrl-C ends it with exit 0', async (t) => {
  const cluster = await startSmallCluster(t, 'simulated');
  await cluster.client.createFunction({ name: 'watched', runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' } });
  const watcher = new RunningCli(['ls', '--watch', '--interval-ms', '200', '--admin', cluster.adminUrl]);
  t.teardown(() => watcher.stop('SIGKILL').then(() => undefined));
  await watcher.waitFor('the first frame', (lines) => (lines.some((l) => /^watched +simulated +v1 active +desired 0, ready 0/.test(l)) ? true : undefined));
  t.regex(watcher.lines[0]!, HEADER);

  await cluster.client.updateFunction('watched', { scaling: { minScale: 2 } });
  await watcher.waitFor('a frame with two ready', (lines) => (lines.some((l) => /^watched +simulated +v1 active +desired 2, ready 2/.test(l)) ? true : undefined));
  // Settled: a second at 200 ms per look (five looks) draws nothing new.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const frames = watcher.lines.filter((l) => HEADER.test(l)).length;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.is(watcher.lines.filter((l) => HEADER.test(l)).length, frames, 'no redraw without a change');
  t.deepEqual(await watcher.stop('SIGINT'), { code: 0, stderr: '' });
});

test.serial('ls --watch --json prints one line per change; the interval is bounded', async (t) => {
  const cluster = await startSmallCluster(t, 'simulated');
  const watcher = new RunningCli(['ls', '-w', '--json', '--interval-ms', '200', '--admin', cluster.adminUrl]);
  t.teardown(() => watcher.stop('SIGKILL').then(() => undefined));
  await watcher.waitFor('the empty list', (lines) => (lines.length === 1 ? true : undefined));
  t.deepEqual(JSON.parse(watcher.lines[0]!), []);
  await cluster.client.createFunction({ name: 'later', runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' } });
  const [, second] = await watcher.waitFor('a second line', (lines) => (lines.length >= 2 ? lines : undefined));
  t.is((JSON.parse(second!) as { spec: { name: string } }[])[0]?.spec.name, 'later');
  t.is((await watcher.stop('SIGTERM')).code, 0);

  t.like(await runCli(['ls', '--watch', '--interval-ms', '10', '--admin', cluster.adminUrl]), { code: 2, stderr: 'dirigent: --interval-ms must be an integer in 200..60000 ms, got "10"\n' });
});
