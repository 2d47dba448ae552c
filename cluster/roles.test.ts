// Role configuration as the CLI resolves it: flags, then DIRIGENT_* environment, then validation that names
// the value; `--dry-run` prints the result (secrets masked) and starts nothing.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { UsageError } from './flags.js';
import { parseStoreSpec } from './roles.js';

const CLI = new URL('./cli.js', import.meta.url).pathname;

function dryRun(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args, '--dry-run'], { encoding: 'utf8', env: { ...process.env, DIRIGENT_TOKEN: '', ...env }, timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('store specs: memory, file:<dir>, etcd:<urls>; anything else is refused with the forms allowed', (t) => {
  t.deepEqual(parseStoreSpec('memory'), { kind: 'memory' });
  t.like(parseStoreSpec('file:/data/store'), { kind: 'file', dir: '/data/store' });
  t.deepEqual(parseStoreSpec('etcd:http://etcd:2379,http://10.0.0.2:2379'), { kind: 'etcd', endpoints: ['http://etcd:2379', 'http://10.0.0.2:2379'] });
  for (const bad of ['etcd:', 'etcd:etcd:2379', 'redis://x', 'file:']) t.throws(() => parseStoreSpec(bad), { instanceOf: UsageError });
});

test('--dry-run prints each role\'s resolved config with the token masked, and starts nothing', (t) => {
  const cp = dryRun(['control-plane', '--id', 'cp2', '--host', 'cp2', '--store', 'etcd:http://etcd:2379', '--lease-ttl-s', '3', '--token', 'secret-token']);
  t.is(cp.status, 0, cp.stderr);
  t.deepEqual(JSON.parse(cp.stdout), {
    dryRun: 'control-plane',
    config: { id: 'cp2', host: 'cp2', advertise: 'cp2', clusterPort: 9090, adminPort: 9091, token: '***', store: { kind: 'etcd', endpoints: ['http://etcd:2379'] }, leaseTtlS: 3, placement: 'kubernetes' },
  });
  // Listening on every interface, a role announces a host the others can reach: --advertise, else the hostname.
  const dp = dryRun(['data-plane', '--id', 'dp2', '--host', '0.0.0.0', '--advertise', 'dp2', '--control-plane', 'cp1:9090,cp2:9090,cp3:9090'], { DIRIGENT_TOKEN: 'from-the-environment' });
  t.is(dp.status, 0, dp.stderr);
  t.like(JSON.parse(dp.stdout), { dryRun: 'data-plane', config: { id: 'dp2', host: '0.0.0.0', advertise: 'dp2', controlPlane: 'cp1:9090,cp2:9090,cp3:9090', token: '***', httpPort: 8080 } });
  const worker = dryRun(['worker', '--id', 'w3', '--host', '0.0.0.0', '--runtime', 'simulated', '--control-plane', 'cp1:9090', '--token', 'secret-token']);
  t.like(JSON.parse(worker.stdout), { dryRun: 'worker', config: { id: 'w3', host: '0.0.0.0', advertise: hostname(), runtime: 'simulated' } });
  // Without --id, a worker listening on every interface is known by what it announces (one id per compose replica).
  const replica = dryRun(['worker', '--host', '0.0.0.0', '--runtime', 'simulated', '--control-plane', 'cp1:9090', '--token', 'secret-token']);
  t.like(JSON.parse(replica.stdout), { dryRun: 'worker', config: { id: hostname(), host: '0.0.0.0', advertise: hostname() } });
  const local = dryRun(['worker', '--runtime', 'simulated', '--token', 'secret-token']);
  t.like(JSON.parse(local.stdout), { dryRun: 'worker', config: { id: 'w1', host: '127.0.0.1', advertise: '127.0.0.1' } });
});

test('--dry-run refuses what a role would refuse at start, naming the value (exit 2)', (t) => {
  const cases: [string[], RegExp][] = [
    [['control-plane', '--token', 'secret-token', '--store', 'etcd:nope'], /--store etcd: needs client URLs/],
    [['control-plane', '--token', 'secret-token', '--lease-ttl-s', '1'], /--lease-ttl-s must be an integer in 2\.\.60 s, got "1"/],
    [['data-plane', '--token', 'secret-token', '--control-plane', 'cp1:9090,cp2'], /--control-plane: expected host:port/],
    [['worker', '--control-plane', 'cp1:9090'], /a cluster token of at least 8 characters is required/],
    [['worker', '--token', 'secret-token', '--advertise', 'w1:7000'], /--advertise must be a host name or an IPv4 address, got "w1:7000"/],
  ];
  for (const [args, message] of cases) {
    const result = dryRun(args);
    t.is(result.status, 2, args.join(' '));
    t.regex(result.stderr, message);
  }
});

test('a role still starting (its etcd unreachable) ends at SIGTERM instead of swallowing it', async (t) => {
  const child = spawn(process.execPath, [CLI, 'control-plane', '--token', 'secret-token', '--store', 'etcd:http://dirigent-test.invalid:2379', '--admin-port', '0', '--cluster-port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(`exited ${code ?? signal}`)));
  t.teardown(() => child.kill('SIGKILL'));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  child.kill('SIGTERM');
  // Either the signal ends the start (exit 0, "SIGTERM while starting") or the start failed by itself first,
  // saying why (where the name fails to resolve at once): never a process that outlives the signal.
  const outcome = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running 10 s after SIGTERM'), 10_000))]);
  t.regex(outcome, /^exited/, stderr);
  // On a loaded machine the signal may come before Node has installed the role's handler: Node's default then
  // ends the process by the signal, which is as good (nothing outlived it).
  if (outcome !== 'exited SIGTERM') t.regex(stderr, /SIGTERM while starting; exiting|dirigent: .*dirigent-test\.invalid/);
});
