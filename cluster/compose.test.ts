// docker-compose.yml checked without running a container: the topology it promises (etcd, three control-plane
// replicas, two data planes, a worker service of three replicas by default, wired to each other by service name, published on loopback only),
// that it is valid compose (Debian's docker-compose `config -q`; skipped with the reason printed where that is
// not installed) and refuses to start without DIRIGENT_TOKEN, saying why, and that every service's command line
// passes the CLI's own validation: `dirigent <role> ... --dry-run` resolves flags and environment, prints the
// config as one JSON line and exits 0 (2 on a usage error). compose.e2e.test.ts runs the file for real.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { COMPOSE_FILE, flagOf, installed, readComposeServices, roleOf, ROOT, run, type ComposeService } from './fixtures/compose-file.js';

const CLI = `${ROOT}dist/cluster/cli.js`;
const TOKEN = 'compose-test-token-0123456789';
const ADMIN_TOKEN = 'compose-test-admin-token-0123';
const services = readComposeServices(readFileSync(COMPOSE_FILE, 'utf8'));
const byRole = (role: ReturnType<typeof roleOf>) => services.filter((s) => roleOf(s) === role);
/** A clean environment: nothing of the developer's DIRIGENT_* or port variables leaks in. */
const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, ...extra });

const hasCompose = await installed('docker-compose');
if (!hasCompose) console.log('# compose: `docker-compose config` checks skipped: docker-compose is not installed (apt-get install docker-compose)');
const withCompose = hasCompose ? test : test.skip;

test('the topology: etcd, control planes cp1..cp3, data planes dp1 and dp2, one worker service of WORKERS replicas (3)', (t) => {
  t.deepEqual(services.map((s) => s.name), ['etcd', 'cp1', 'cp2', 'cp3', 'dp1', 'dp2', 'worker']);
  t.deepEqual(byRole('control-plane').map((s) => s.name), ['cp1', 'cp2', 'cp3']);
  t.deepEqual(byRole('data-plane').map((s) => s.name), ['dp1', 'dp2']);
  t.deepEqual(byRole('worker').map((s) => s.name), ['worker']);
  t.deepEqual(services.filter((s) => s.replicas !== undefined).map((s) => [s.name, s.replicas]), [['worker', { variable: 'WORKERS', defaultCount: 3 }]]);
  // A worker replica has neither --id nor --advertise: listening on 0.0.0.0 it is known by its container's
  // hostname, which differs per replica (roles.ts; checked by --dry-run below).
  for (const worker of byRole('worker')) {
    t.is(flagOf(worker.command, 'host'), '0.0.0.0', `${worker.name} --host`);
    t.is(flagOf(worker.command, 'id'), undefined, `${worker.name} --id`);
    t.is(flagOf(worker.command, 'advertise'), undefined, `${worker.name} --advertise`);
  }
  for (const service of services.filter((s) => roleOf(s) === 'control-plane' || roleOf(s) === 'data-plane')) {
    // A role listens on every interface and announces its service name, which the others resolve; it never
    // resolves its own name (podman's DNS may not know it yet when the container starts).
    t.is(flagOf(service.command, 'host'), '0.0.0.0', `${service.name} --host`);
    t.is(flagOf(service.command, 'advertise'), service.name, `${service.name} --advertise`);
    t.is(flagOf(service.command, 'id'), service.name, `${service.name} --id`);
  }
});

test('the wiring: control planes on etcd, every data plane and worker given every replica', (t) => {
  const etcd = services.find((s) => s.name === 'etcd')!;
  const etcdUrl = flagOf(etcd.command, 'advertise-client-urls');
  t.is(etcdUrl, 'http://etcd:2379');
  const replicas = byRole('control-plane').map((cp) => `${cp.name}:${flagOf(cp.command, 'cluster-port')}`).join(',');
  for (const cp of byRole('control-plane')) t.is(flagOf(cp.command, 'store'), `etcd:${etcdUrl}`, `${cp.name} --store`);
  for (const service of [...byRole('data-plane'), ...byRole('worker')]) t.is(flagOf(service.command, 'control-plane'), replicas, `${service.name} --control-plane`);
});

test('published ports: loopback only, the admin APIs on 9091-9093, the data planes on 8080-8083', (t) => {
  const published = (service: ComposeService) => service.ports.map((p) => `${p.defaultPort}->${p.containerPort}`);
  t.deepEqual(services.map((s) => [s.name, published(s)]), [
    ['etcd', []],
    ['cp1', ['9091->9091']],
    ['cp2', ['9092->9091']],
    ['cp3', ['9093->9091']],
    ['dp1', ['8080->8080', '8081->8081']],
    ['dp2', ['8082->8080', '8083->8081']],
    ['worker', []],
  ]);
  // The reader refuses any other form of `ports:` entry, so none publishes beyond 127.0.0.1.
  t.notRegex(readFileSync(COMPOSE_FILE, 'utf8'), /^\s*- "?(0\.0\.0\.0:)?\d+:\d+"?\s*$/m);
});

test('the image: one for every role, named by DIRIGENT_IMAGE (dirigent-ts:latest by default), built from this checkout', (t) => {
  const text = readFileSync(COMPOSE_FILE, 'utf8');
  t.deepEqual([...text.matchAll(/^ {2}image:.*$/gm)].map((m) => m[0].trim()), ['image: ${DIRIGENT_IMAGE:-dirigent-ts:latest}']);
  t.regex(text, /^ {2}build: \.$/m);
});

withCompose('docker-compose config -q accepts the file when DIRIGENT_TOKEN is set', async (t) => {
  const result = await run('docker-compose', ['-f', COMPOSE_FILE, 'config', '-q'], { env: cleanEnv({ DIRIGENT_TOKEN: TOKEN, DIRIGENT_ADMIN_TOKEN: ADMIN_TOKEN }), timeoutMs: 60_000 });
  t.is(result.code, 0, result.stderr);
});

withCompose('WORKERS sets the number of worker replicas (an integer to compose)', async (t) => {
  const result = await run('docker-compose', ['-f', COMPOSE_FILE, 'config'], { env: cleanEnv({ DIRIGENT_TOKEN: TOKEN, DIRIGENT_ADMIN_TOKEN: ADMIN_TOKEN, WORKERS: '5' }), timeoutMs: 60_000 });
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^ {6}replicas: 5$/m);
});

withCompose('without DIRIGENT_TOKEN, compose refuses and says what to set', async (t) => {
  const result = await run('docker-compose', ['-f', COMPOSE_FILE, 'config', '-q'], { env: cleanEnv({ DIRIGENT_ADMIN_TOKEN: ADMIN_TOKEN }), timeoutMs: 60_000 });
  t.not(result.code, 0);
  t.regex(result.stderr, /set DIRIGENT_TOKEN to a shared secret of at least 8 characters/);
});

withCompose('without DIRIGENT_ADMIN_TOKEN, compose refuses: the admin APIs listen beyond loopback', async (t) => {
  const result = await run('docker-compose', ['-f', COMPOSE_FILE, 'config', '-q'], { env: cleanEnv({ DIRIGENT_TOKEN: TOKEN }), timeoutMs: 60_000 });
  t.not(result.code, 0);
  t.regex(result.stderr, /set DIRIGENT_ADMIN_TOKEN/);
});

const dryRun = (args: readonly string[], env: NodeJS.ProcessEnv) => run(process.execPath, [CLI, ...args, '--dry-run'], { env, timeoutMs: 30_000 });

for (const service of services.filter((s) => roleOf(s) !== undefined)) {
  test(`${service.name}: its command line passes the CLI's validation (--dry-run)`, async (t) => {
    const result = await dryRun(service.command!, cleanEnv({ DIRIGENT_TOKEN: TOKEN, DIRIGENT_ADMIN_TOKEN: ADMIN_TOKEN }));
    t.is(result.code, 0, `dirigent ${service.command!.join(' ')} --dry-run: ${result.stderr}`);
    const lines = result.stdout.trim().split('\n');
    t.is(lines.length, 1, `one JSON line, got:\n${result.stdout}`);
    const config = JSON.parse(lines[0]!) as unknown;
    t.true(typeof config === 'object' && config !== null);
    // A worker replica's id is its hostname (here, this machine's); the other roles are named by their service.
    const id = roleOf(service) === 'worker' ? hostname() : service.name;
    t.like(config, { config: { id } }, `the resolved config: ${lines[0]}`);
  });
}

test('--dry-run refuses what the roles would refuse: a bad port, a missing admin token beyond loopback, a missing token (exit 2)', async (t) => {
  const cp = byRole('control-plane')[0]!.command!;
  const badPort = cp.map((arg, i) => (cp[i - 1] === '--admin-port' ? '99999' : arg));
  const port = await dryRun(badPort, cleanEnv({ DIRIGENT_TOKEN: TOKEN, DIRIGENT_ADMIN_TOKEN: ADMIN_TOKEN }));
  t.is(port.code, 2, port.stdout);
  t.regex(port.stderr, /--admin-port/);
  // A control plane on 0.0.0.0 with no admin token would take changes from anyone who reaches it.
  const noAdminToken = await dryRun(cp, cleanEnv({ DIRIGENT_TOKEN: TOKEN }));
  t.is(noAdminToken.code, 2, noAdminToken.stdout);
  t.regex(noAdminToken.stderr, /beyond loopback, with no admin token/);
  const worker = byRole('worker')[0]!.command!;
  const noToken = await dryRun(worker, cleanEnv());
  t.is(noToken.code, 2, noToken.stdout);
  t.regex(noToken.stderr, /DIRIGENT_TOKEN/);
});
