// The compose cluster in containers, end to end, as a user runs it: the stand-in base images
// (scripts/base-images.sh, kept when they exist), the image from the Dockerfile, `podman-compose up -d` on
// docker-compose.yml as it is, readiness, a function registered the way Dirigent's loader does it, invoked
// over HTTP (Host routing) and WebSocket through every data plane; then, under an open-loop load of 200 req/s
// through both data planes, the leader control plane, a data plane, etcd (3 s) and a worker killed with
// `podman kill` one at a time and started again, each fault judged by the issue's bounds and printed as one
// line; `down -v` last, and the project's containers, volumes and network removed always.
// Skipped, with the reason printed, where podman or podman-compose is missing. The published ports are
// ports the kernel picks (the compose file's variables move them).
// Bounds: a first run builds the base images (~80 s) and the image (~40-120 s); the rest takes ~2 min; every
// test stays under ava's 120 s timeout.
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHECKOUT_ID, COMPOSE_FILE, flagOf, freePort, installed, readComposeServices, roleOf, ROOT, run, type ComposeService } from './fixtures/compose-file.js';
import { request, TestWs, type HttpResult } from './data-plane/fixtures/harness.js';
import { OpenLoop, type LoadSummary } from './fixtures/open-loop.js';

// Every name this file gives podman ends in the checkout's id, so that runs of two checkouts on one machine
// (CI on main and a developer's branch, say) never touch each other's containers, volumes, network or images.
// The base images (scripts/base-images.sh) are shared on purpose: they are the same for every checkout.
const PROJECT = `dirigent-e2e-${CHECKOUT_ID}`;
const IMAGE = `localhost/dirigent-ts-${CHECKOUT_ID}:e2e`;
const BUILD_STAGE_TAG = `localhost/dirigent-ts-build-stage-${CHECKOUT_ID}:latest`;
/** Marks this checkout's build stages, so that the teardown prunes its own and no other checkout's. */
const CHECKOUT_LABEL = `dirigent-ts.checkout=${CHECKOUT_ID}`;
const TOKEN = 'compose-e2e-token-0123456789';
/** The control planes listen beyond loopback (0.0.0.0 in their containers), so their admin API needs one. */
const ADMIN_TOKEN = 'compose-e2e-admin-token-0123';
/** ms */
const SETUP_MS = 5 * 60_000;
const READY_MS = 90_000;
const FAILOVER_MS = 30_000;

// `podman info` also fails where podman is installed but cannot work (no storage, no privileges).
const available = (await installed('podman', ['info'])) && (await installed('podman-compose'));
if (!available) console.log('# compose.e2e: skipped: a working podman and podman-compose are needed (apt-get install podman podman-compose catatonit mmdebstrap)');
const serial = available ? test.serial : test.serial.skip;

interface Role {
  readonly service: ComposeService;
  /** The container podman-compose names after the project and the service. */
  readonly container: string;
  /** The published host port of the admin API (control plane) or the invoke front (data plane). */
  readonly port: number;
}

let workDir: string;
let env: NodeJS.ProcessEnv;
let controlPlanes: Role[] = [];
let dataPlanes: Role[] = [];
/** The worker replicas' containers (the worker service runs WORKERS of them, podman-compose numbers them from 1). */
let workerContainers: string[] = [];
/** Node id (a replica's hostname, its short container id) -> container name, known once the project is up. */
const workerByNode = new Map<string, string>();
let allContainers: string[] = [];
const killed = new Set<string>();

const container = (service: string, replica = 1) => `${PROJECT}_${service}_${replica}`;
/** The containers of a service: one, or as many as its replicas variable says (its default when unset). */
const containersOf = (service: ComposeService): string[] => {
  const count = service.replicas === undefined ? 1 : Number(env[service.replicas.variable] ?? service.replicas.defaultCount);
  return Array.from({ length: count }, (_, i) => container(service.name, i + 1));
};
const compose = (args: string[], timeoutMs: number) => run('podman-compose', ['-p', PROJECT, '-f', COMPOSE_FILE, ...args], { env, timeoutMs });

/** A probe's verdict that waiting longer cannot help. */
class GiveUp extends Error {}

/** Polls until `probe` gives a value; a probe that throws counts as not yet, unless it throws GiveUp. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, withinMs: number, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + withinMs;
  let last = '';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      last = ` (last: ${(error as Error).message})`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${withinMs} ms waiting for ${what}${last}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Throws GiveUp, with its log, when a container keeps exiting (podman restarts it at once, without a back-off). */
async function noCrashLoop(): Promise<void> {
  const inspect = await run('podman', ['inspect', '--format', '{{.Name}} {{.RestartCount}}', ...allContainers], { env, timeoutMs: 20_000 });
  for (const line of inspect.stdout.trim().split('\n')) {
    const [name, restarts] = line.split(' ');
    if (name === undefined || Number(restarts) < 10) continue;
    const logs = await run('podman', ['logs', '--tail', '5', name], { env, timeoutMs: 10_000 });
    throw new GiveUp(`${name} keeps exiting (${restarts} restarts); its last lines:\n${withoutSystemdNoise(logs.stdout + logs.stderr)}`);
  }
}

/** podman without systemd says on every start that it cannot schedule the healthcheck: not our news. */
const withoutSystemdNoise = (text: string) => text.replace(/^.*systemd.*\n?/gm, '');

async function admin(port: number, path: string, init: { method?: string; body?: string; contentType?: string } = {}): Promise<HttpResult> {
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_TOKEN}`, ...(init.contentType ? { 'content-type': init.contentType } : {}) };
  return request(port, { method: init.method ?? 'GET', path, body: init.body, headers, timeoutMs: 5000 });
}

/** The control plane that leads now: the one whose /readyz says `leader`, or the only one. */
async function leader(): Promise<Role | undefined> {
  const alive = controlPlanes.filter((cp) => !killed.has(cp.container));
  for (const cp of alive) {
    const ready = await admin(cp.port, '/readyz').catch(() => undefined);
    if (ready?.status !== 200) continue;
    if (controlPlanes.length === 1 || /^leader/.test(ready.body.toString().trim())) return cp;
  }
  return undefined;
}

/** Registers a function as Dirigent's loader does: a form POST to /registerService on the leader's admin port. */
function registration(name: string, lowerBound = 0, upperBound = 3): string {
  const form = new URLSearchParams();
  form.append('name', name);
  form.append('image', 'docker.io/cvetkovic/dirigent_echo:latest'); // an image named `echo` runs the built-in echo
  form.append('port_forwarding', '80');
  form.append('port_forwarding', 'tcp');
  form.append('requested_cpu', '10');
  form.append('requested_memory', '64');
  form.append('scaling_upper_bound', String(upperBound));
  form.append('scaling_lower_bound', String(lowerBound));
  return form.toString();
}

async function register(t: ExecutionContext, name: string): Promise<HttpResult> {
  const lead = await until('a leader', leader, FAILOVER_MS);
  const reply = await admin(lead.port, '/registerService', { method: 'POST', body: registration(name), contentType: 'application/x-www-form-urlencoded' });
  t.log(`registered ${name} on ${lead.service.name}: ${reply.status} ${reply.body.toString()}`);
  return reply;
}

const invoke = (dp: Role, name: string, body: string, timeoutMs = 15_000): Promise<HttpResult> => request(dp.port, { method: 'POST', path: '/', body, timeoutMs, headers: { host: name, 'content-type': 'text/plain' } });

/** One invocation as `status body` (status 0 and the error when no answer came), for assertions that say what happened. */
async function answer(dp: Role, name: string, body: string): Promise<string> {
  const started = Date.now();
  try {
    const r = await invoke(dp, name, body);
    return `${r.status} ${r.body.toString()}`;
  } catch (error) {
    return `0 ${(error as Error).message} (after ${Date.now() - started} ms)`;
  }
}

/** `down -v` (which stops and removes the containers one by one), then `removeLeftovers`. */
async function removeProject(): Promise<void> {
  await compose(['down', '-v'], 120_000);
  await removeLeftovers();
}

/** What `down -v` can miss, or an interrupted run left: the project's containers (one podman was restarting, say),
 * its volumes, and its network, which podman-compose 1.0.3 never removes. Found by the project's label and name
 * only, in one podman call each: quick when there is nothing, as at the start of a run. */
async function removeLeftovers(): Promise<void> {
  const label = `label=io.podman.compose.project=${PROJECT}`;
  const left = await run('podman', ['ps', '-aq', '--filter', label], { env, timeoutMs: 30_000 });
  if (left.stdout.trim() !== '') await run('podman', ['rm', '--force', '--time', '1', ...left.stdout.trim().split('\n')], { env, timeoutMs: 60_000 });
  const volumes = await run('podman', ['volume', 'ls', '-q', '--filter', label], { env, timeoutMs: 30_000 });
  if (volumes.stdout.trim() !== '') await run('podman', ['volume', 'rm', '--force', ...volumes.stdout.trim().split('\n')], { env, timeoutMs: 60_000 });
  await run('podman', ['network', 'rm', '--force', `${PROJECT}_default`], { env, timeoutMs: 30_000 });
}

test.before(async (t) => {
  if (!available) return;
  t.timeout(SETUP_MS);
  const services = readComposeServices(await readFile(COMPOSE_FILE, 'utf8'));
  workDir = await mkdtemp(join(tmpdir(), 'dirigent-compose-'));
  // runc here refuses to set rlimits (REFERENCE.md section 5); crun, where installed too, fails on hybrid cgroups.
  const conf = join(workDir, 'containers.conf');
  await writeFile(conf, `[containers]\ndefault_ulimits = []\n${(await installed('runc')) ? '\n[engine]\nruntime = "runc"\n' : ''}`);
  env = { ...process.env, DIRIGENT_TOKEN: TOKEN, DIRIGENT_ADMIN_TOKEN: ADMIN_TOKEN, DIRIGENT_IMAGE: IMAGE, CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? conf };
  // Ports the kernel picks, never the defaults: another checkout's cluster may hold those, or take them
  // between a check and our `up`.
  for (const service of services) for (const port of service.ports) env[port.variable] = String(await freePort());
  const published = (service: ComposeService, containerPort: number): number => {
    const port = service.ports.find((p) => p.containerPort === containerPort);
    if (port === undefined) throw new Error(`${service.name} does not publish its port ${containerPort}`);
    return Number(env[port.variable]);
  };
  controlPlanes = services.filter((s) => roleOf(s) === 'control-plane').map((s) => ({ service: s, container: container(s.name), port: published(s, Number(flagOf(s.command, 'admin-port'))) }));
  dataPlanes = services.filter((s) => roleOf(s) === 'data-plane').map((s) => ({ service: s, container: container(s.name), port: published(s, Number(flagOf(s.command, 'invoke-port'))) }));
  workerContainers = services.filter((s) => roleOf(s) === 'worker').flatMap(containersOf);
  allContainers = services.flatMap(containersOf);

  await removeLeftovers(); // what an interrupted run may have left
  const started = Date.now();
  const bases = await run('nice', ['-n', '10', `${ROOT}scripts/base-images.sh`], { env, timeoutMs: 180_000 });
  if (bases.code !== 0) throw new Error(`scripts/base-images.sh failed:\n${bases.stderr}`);
  const basesDone = Date.now();
  // The image compose runs (DIRIGENT_IMAGE); built here rather than by `up` to keep HEALTHCHECK (docker format).
  const image = IMAGE;
  const previous = await run('podman', ['image', 'inspect', '--format', '{{.Id}}', image], { env, timeoutMs: 30_000 });
  const podmanBuild = (args: string[]) => run('nice', ['-n', '10', 'podman', 'build', '--quiet', '--format', 'docker', '--pull=never', '--network', 'host', '--label', CHECKOUT_LABEL, ...args, '.'], { env, timeoutMs: 240_000 });
  // The build stage tagged first keeps its layers (npm ci above all) as the cache of the next run, and
  // makes the previous run's build stage dangling, for the prune in the teardown.
  const stage = await podmanBuild(['--target', 'build', '-t', BUILD_STAGE_TAG]);
  if (stage.code !== 0) throw new Error(`podman build --target build failed:\n${stage.stderr.slice(-4000)}`);
  const build = await podmanBuild(['-t', image]);
  if (build.code !== 0) throw new Error(`podman build failed:\n${build.stderr.slice(-4000)}`);
  const built = Date.now();
  // The image this build replaced, if any: nothing else would ever remove it.
  if (previous.code === 0 && previous.stdout.trim() !== build.stdout.trim().split('\n').at(-1)) await run('podman', ['rmi', previous.stdout.trim()], { env, timeoutMs: 60_000 });
  const up = await compose(['up', '-d'], 120_000);
  if (up.code !== 0) throw new Error(`podman-compose up failed:\n${up.stderr.slice(-4000)}`);
  try {
    await until('every control plane ready', async () => {
      await noCrashLoop();
      for (const cp of controlPlanes) if ((await admin(cp.port, '/readyz')).status !== 200) return undefined;
      return true;
    }, READY_MS);
    const lead = await until('a leader', leader, READY_MS);
    await until(`${workerContainers.length} workers and ${dataPlanes.length} data planes connected`, async () => {
      const nodes = JSON.parse((await admin(lead.port, '/api/v1/nodes')).body.toString()) as { nodes: { alive: boolean }[] };
      const dps = JSON.parse((await admin(lead.port, '/api/v1/dataplanes')).body.toString()) as { dataplanes: { connected: boolean }[] };
      return nodes.nodes.filter((n) => n.alive).length === workerContainers.length && dps.dataplanes.filter((d) => d.connected).length === dataPlanes.length ? true : undefined;
    }, READY_MS);
    // A worker replica is known by its hostname, which podman sets to its short container id.
    const hostnames = await run('podman', ['inspect', '--format', '{{.Config.Hostname}} {{.Name}}', ...workerContainers], { env, timeoutMs: 20_000 });
    for (const line of hostnames.stdout.trim().split('\n')) {
      const [node, name] = line.split(' ');
      if (node !== undefined && name !== undefined) workerByNode.set(node, name);
    }
  } catch (error) {
    if (!(error instanceof GiveUp)) await logContainers(t);
    throw error;
  }
  t.log(`base images ${basesDone - started} ms, image ${built - basesDone} ms, up and ready ${Date.now() - built} ms`);
});

async function logContainers(t: ExecutionContext): Promise<void> {
  for (const name of allContainers) {
    const logs = await run('podman', ['logs', '--tail', '15', name], { env, timeoutMs: 10_000 });
    t.log(`--- ${name}\n${withoutSystemdNoise(logs.stdout + logs.stderr)}`);
  }
}

test.afterEach.always(async (t) => {
  if (available && !t.passed) await logContainers(t);
});

test.after.always(async () => {
  await load?.stop();
  if (!available || env === undefined) return;
  await removeLeftovers(); // the last test ran `down -v`; this removes what a failure before it left
  // This checkout's earlier build stages (~550 MB each), dangling now; this run's stays, tagged, as the cache.
  await run('podman', ['image', 'prune', '--force', '--filter', 'label=dirigent-ts.stage=build', '--filter', `label=${CHECKOUT_LABEL}`], { env, timeoutMs: 60_000 });
  await rm(workDir, { recursive: true, force: true });
});

serial('the image: non-root, the CLI as entrypoint, a healthcheck that passes for every role', async (t) => {
  const whoami = await run('podman', ['exec', container(controlPlanes[0]!.service.name), 'id', '-u'], { env, timeoutMs: 20_000 });
  t.is(whoami.stdout.trim(), '1000');
  for (const role of [controlPlanes[0]!.container, dataPlanes[0]!.container, workerContainers[0]!]) {
    const health = await run('podman', ['healthcheck', 'run', role], { env, timeoutMs: 20_000 });
    t.is(health.code, 0, `${role}: ${health.stdout}${health.stderr}`);
  }
});

serial('a function registered the loader\'s way is served over HTTP and WebSocket by every data plane', async (t) => {
  const reply = await register(t, 'compose-echo');
  t.is(reply.status, 200);
  // Byte-exact: each data plane's compatibility address, joined by ';'.
  t.deepEqual(reply.body.toString().split(';').sort(), dataPlanes.map((dp) => `${dp.service.name}:${flagOf(dp.service.command, 'compat-port')}`).sort());
  for (const dp of dataPlanes) {
    const answer = await until(`${dp.service.name} serves compose-echo`, async () => {
      const r = await invoke(dp, 'compose-echo', `hello ${dp.service.name}`);
      return r.status === 200 ? r : undefined;
    }, 30_000);
    t.is(answer.body.toString(), `hello ${dp.service.name}`);
    const ws = await TestWs.open(t, dp.port);
    for (let id = 0; id < 5; id++) ws.send(JSON.stringify({ id, function: 'compose-echo', body: `ws ${id}` }));
    const replies = (await ws.waitFrames(5, 15_000)).map((f) => JSON.parse(f.data.toString()) as { id: number; status: number; body: string });
    t.deepEqual(replies.map((r) => [r.id, r.status, r.body]).sort(), [0, 1, 2, 3, 4].map((id) => [id, 200, `ws ${id}`]));
  }
});

// ---- Faults under load ---------------------------------------------------------------------------
// An open loop of LOAD_RATE_PER_S requests (cluster/fixtures/open-loop.ts) runs through both data planes from
// here, on `compose-load`, a function held at LOAD_SANDBOXES sandboxes (lower bound = upper bound), while one
// container after the other is killed with `podman kill` and started again. Each fault prints one line: the
// requests sent in its window, answered 200, failed by status (or connection error), resent by a client that
// reconnected, and its recovery times.

const LOAD_FUNCTION = 'compose-load';
const LOAD_RATE_PER_S = 200;
const LOAD_SANDBOXES = 2;
/** The control plane's lease (docker-compose.yml: --lease-ttl-s 2) plus a second, the distributed-mode bound, ms. */
const LEADER_BOUND_MS = 3000;
/** etcd revokes expired leases in a sweep every 500 ms, so a lease outlives its TTL by up to this, ms (as in failover.test.ts). */
const ETCD_SWEEP_MS = 500;
/** How often the probes below ask, ms: the error of every time they measure. */
const PROBE_MS = 100;
/** A client whose data plane died is served by the other within this, ms (the issue's bound). */
const RECONNECT_BOUND_MS = 1000;
/** Load kept running after each fault before its window closes, ms. */
const SETTLE_MS = 2000;
/** A container started again serves within this, ms. */
const RESTORE_MS = 45_000;
/**
 * Each fault test's bound, ms: below ava's 120 s, so that a stuck test fails as itself and the teardown still
 * runs (ava ends the whole process when its own timeout fires).
 */
const TEST_MS = 100_000;
/** podman kill of etcd, then podman start after this, ms. */
const ETCD_DOWN_MS = 3000;

let load: OpenLoop | undefined;
/** Where the next fault's window begins (ms since the epoch): windows are contiguous, each closing once its
 * fault is repaired (the container started again and serving) and SETTLE_MS more have passed, so that every
 * request of the run is judged by exactly one fault's bounds. */
let windowFrom = 0;

interface FunctionView {
  status: { ready: number; sandboxes: { sandboxId: string; nodeId: string; phase: string }[] } | null;
}

async function functionView(cp: Role, name: string): Promise<FunctionView> {
  const reply = await admin(cp.port, `/api/v1/functions/${name}`);
  if (reply.status !== 200) throw new Error(`GET /api/v1/functions/${name} on ${cp.service.name}: ${reply.status} ${reply.body.toString()}`);
  return JSON.parse(reply.body.toString()) as FunctionView;
}

/** The function's ready sandboxes as `id@node`, sorted. */
async function readySandboxes(cp: Role, name: string): Promise<string[]> {
  const view = await functionView(cp, name);
  return (view.status?.sandboxes ?? []).filter((s) => s.phase === 'ready').map((s) => `${s.sandboxId}@${s.nodeId}`).sort();
}

/**
 * `podman kill` of a container, and when it died (ms since the epoch): the time podman recorded its exit, which
 * falls inside the kill command (that takes up to a second here), so fault times count from the death itself.
 */
async function kill(t: ExecutionContext, name: string): Promise<number> {
  await podman(t, 'kill', name);
  killed.add(name);
  const finished = await run('podman', ['inspect', '--format', '{{.State.FinishedAt.UnixMilli}}', name], { env, timeoutMs: 20_000 });
  const at = Number(finished.stdout.trim());
  if (!Number.isSafeInteger(at) || at <= 0) throw new Error(`podman inspect: no exit time for ${name}: ${finished.stdout}${finished.stderr}`);
  return at;
}

async function podman(t: ExecutionContext, ...args: string[]): Promise<void> {
  const result = await run('podman', args, { env, timeoutMs: 60_000 });
  t.is(result.code, 0, `podman ${args.join(' ')}: ${result.stderr}`);
}

/** Waits until every request sent before `at` is answered or timed out (bounded by the load's request timeout). */
async function answeredBefore(at: number): Promise<void> {
  await until('the window\'s requests answered', async () => (load!.records.every((r) => r.sentAt >= at || r.doneAt !== 0) ? true : undefined), 20_000, PROBE_MS);
}

/** The one line a fault prints (console and the test's log). */
function report(t: ExecutionContext, fault: string, summary: LoadSummary, recovery: string): void {
  const failed = Object.entries(summary.failed).map(([why, n]) => `${why}:${n}`).join(' ') || 'none';
  const line = `# compose fault ${fault}: sent ${summary.sent} ok ${summary.ok} failed ${failed} resent ${summary.resent} max latency ${summary.maxLatencyMs} ms; ${recovery}`;
  console.log(line);
  t.log(line);
}

/** Starts a killed container again and waits until `ready` says it serves, ms taken. */
async function restore(t: ExecutionContext, name: string, ready: () => Promise<true | undefined>): Promise<number> {
  const started = Date.now();
  await podman(t, 'start', name);
  killed.delete(name);
  await until(`${name} serving again`, async () => {
    await noCrashLoop();
    return ready();
  }, RESTORE_MS, PROBE_MS);
  return Date.now() - started;
}

const servesLoad = (dp: Role) => async (): Promise<true | undefined> => ((await invoke(dp, LOAD_FUNCTION, 'probe', 5000)).status === 200 ? true : undefined);

serial(`faults under an open-loop load of ${LOAD_RATE_PER_S} req/s: the load starts on ${LOAD_SANDBOXES} sandboxes through both data planes`, async (t) => {
  t.timeout(TEST_MS);
  const lead = await until('a leader', leader, READY_MS);
  const reply = await admin(lead.port, '/registerService', { method: 'POST', body: registration(LOAD_FUNCTION, LOAD_SANDBOXES, LOAD_SANDBOXES), contentType: 'application/x-www-form-urlencoded' });
  t.is(reply.status, 200, reply.body.toString());
  for (const dp of dataPlanes) await until(`${dp.service.name} serves ${LOAD_FUNCTION}`, servesLoad(dp), 30_000, PROBE_MS);
  const sandboxes = await until(`${LOAD_SANDBOXES} sandboxes of ${LOAD_FUNCTION} ready`, async () => {
    const ready = await readySandboxes(lead, LOAD_FUNCTION);
    return ready.length === LOAD_SANDBOXES ? ready : undefined;
  }, 30_000, PROBE_MS);
  t.log(`${LOAD_FUNCTION} runs on ${sandboxes.join(', ')}`);
  load = new OpenLoop({ targets: dataPlanes.map((dp) => ({ name: dp.service.name, port: dp.port })), ratePerS: LOAD_RATE_PER_S, functionName: LOAD_FUNCTION, timeoutMs: 15_000 });
  const from = Date.now();
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const to = Date.now();
  windowFrom = to;
  await answeredBefore(to);
  const summary = load.summary(from, to);
  report(t, 'none (baseline)', summary, `${dataPlanes.length} data planes`);
  t.deepEqual(summary.failed, {}, 'without a fault, every request is answered 200');
  // The machine is shared: a rate within a fifth of the target is the load asked for.
  t.true(summary.sent >= (LOAD_RATE_PER_S * SETTLE_MS * 0.8) / 1000, `sent ${summary.sent} in ${to - from} ms`);
});

serial('the leader control plane killed under load: no request lost, a new leader within the lease plus a second, the sandboxes rebuilt from the workers', async (t) => {
  t.timeout(TEST_MS);
  t.truthy(load, 'the load runs');
  const old = await until('a leader', leader, READY_MS);
  const before = await readySandboxes(old, LOAD_FUNCTION);
  const from = windowFrom;
  const killedAt = await kill(t, old.container);
  const next = await until('a new leader', leader, FAILOVER_MS, PROBE_MS);
  const leaderMs = Date.now() - killedAt;
  // The new leader knows the sandboxes only from the workers' reports (etcd holds no sandbox).
  const after = await until('the sandboxes rebuilt', async () => {
    const ready = await readySandboxes(next, LOAD_FUNCTION);
    return ready.length >= before.length ? ready : undefined;
  }, FAILOVER_MS, PROBE_MS);
  const rebuiltMs = Date.now() - killedAt;
  // Cold starts need the leader: a new function is served once it leads (409: an earlier attempt was stored).
  await until('a registration accepted', async () => {
    const status = (await register(t, 'compose-after')).status;
    return status === 200 || status === 409 ? status : undefined;
  }, FAILOVER_MS, 500);
  const cold = await until('a cold start of the new function', async () => {
    const r = await invoke(dataPlanes[0]!, 'compose-after', 'cold');
    return r.status === 200 ? r : undefined;
  }, FAILOVER_MS, PROBE_MS);
  t.is(cold.body.toString(), 'cold');
  const coldMs = Date.now() - killedAt;
  const restoredMs = await restore(t, old.container, async () => ((await admin(old.port, '/readyz')).status === 200 ? true : undefined));
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const to = Date.now();
  windowFrom = to;
  await answeredBefore(to);
  const summary = load!.summary(from, to);
  report(t, `leader ${old.service.name}`, summary, `${next.service.name} leads after ${leaderMs} ms, sandboxes rebuilt after ${rebuiltMs} ms, a new function cold-started after ${coldMs} ms; ${old.service.name} a follower ${restoredMs} ms after podman start`);
  t.deepEqual(summary.failed, {}, 'no request lost: warm invocations never involve the control plane');
  t.deepEqual(after, before, 'the same sandboxes before and after');
  t.true(leaderMs <= LEADER_BOUND_MS + ETCD_SWEEP_MS + PROBE_MS, `a new leader after ${leaderMs} ms (bound ${LEADER_BOUND_MS} ms, + ${ETCD_SWEEP_MS} ms for etcd's expiry sweep, + ${PROBE_MS} ms of probing)`);
});

serial('a data plane killed under load: only its requests fail, with a connection error, and a client that reconnects to the other is served within 1 s', async (t) => {
  t.timeout(TEST_MS);
  t.truthy(load, 'the load runs');
  const [victim, other] = dataPlanes as [Role, Role];
  const from = windowFrom;
  const killedAt = await kill(t, victim.container);
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const restoredMs = await restore(t, victim.container, servesLoad(victim));
  load!.up(victim.service.name);
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const to = Date.now();
  windowFrom = to;
  await answeredBefore(to);
  const window = load!.records.filter((r) => r.sentAt >= from && r.sentAt < to);
  const failures = window.filter((r) => r.status !== 200);
  // Every failure is a request to the killed data plane that got no HTTP answer (in flight when it died, or
  // sent before this client noticed), and the client's resend of it to the other data plane was served.
  t.deepEqual(failures.filter((r) => r.target !== victim.service.name || r.status !== 0 || r.resendOf !== undefined).map((r) => `${r.target} ${r.status} ${r.error ?? ''}`), [], 'nothing failed on the other data plane, and nothing answered with a status');
  const resends = window.filter((r) => r.resendOf !== undefined);
  t.is(resends.length, failures.length, 'every failed request was resent once');
  const reconnectMs = Math.max(0, ...resends.map((r) => r.doneAt - r.resendOf!.doneAt));
  t.deepEqual(resends.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.error ?? ''}`), [], 'every resend served by the other data plane');
  t.true(reconnectMs <= RECONNECT_BOUND_MS, `a reconnected client served within ${reconnectMs} ms of its failure`);
  const summary = load!.summary(from, to);
  const firstServed = Math.min(...resends.map((r) => r.doneAt));
  report(t, `data plane ${victim.service.name}`, summary, `${other.service.name} served the first resend ${resends.length > 0 ? firstServed - killedAt : 0} ms after ${victim.service.name} died, every resend within ${reconnectMs} ms of its failure; ${victim.service.name} serving again ${restoredMs} ms after podman start`);
});

serial('etcd killed for 3 s under load: no request lost, and registrations accepted again once it is back', async (t) => {
  t.timeout(TEST_MS);
  t.truthy(load, 'the load runs');
  const etcd = container('etcd');
  const from = windowFrom;
  const killedAt = await kill(t, etcd);
  await new Promise((resolve) => setTimeout(resolve, killedAt + ETCD_DOWN_MS - Date.now()));
  const startedAt = Date.now();
  await podman(t, 'start', etcd);
  killed.delete(etcd);
  const lead = await until('a leader after etcd is back', leader, FAILOVER_MS, PROBE_MS);
  const leaderMs = Date.now() - startedAt;
  await until('a registration accepted after etcd is back', async () => {
    const status = (await register(t, 'compose-after-etcd')).status;
    return status === 200 || status === 409 ? status : undefined;
  }, FAILOVER_MS, 500);
  const registeredMs = Date.now() - startedAt;
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const to = Date.now();
  windowFrom = to;
  await answeredBefore(to);
  const summary = load!.summary(from, to);
  report(t, 'etcd', summary, `podman start issued ${startedAt - killedAt} ms after it died; from then, ${lead.service.name} leads after ${leaderMs} ms and a registration is accepted after ${registeredMs} ms`);
  t.deepEqual(summary.failed, {}, 'no request lost: the data path never touches etcd');
});

serial('a worker killed under load: only requests running on it can fail (502), later ones go to the other sandbox, and its sandbox is replaced', async (t) => {
  t.timeout(TEST_MS);
  t.truthy(load, 'the load runs');
  const lead = await until('a leader', leader, READY_MS);
  const before = await readySandboxes(lead, LOAD_FUNCTION);
  // A worker that runs a sandbox of the loaded function: killing it takes requests in flight.
  const victimNode = before[0]?.split('@')[1];
  const victim = workerByNode.get(victimNode ?? '');
  if (victim === undefined) return t.fail(`no worker container runs node ${String(victimNode)} (sandboxes: ${before.join(', ')}; workers: ${[...workerByNode].join(', ')})`);
  const from = windowFrom;
  const killedAt = await kill(t, victim);
  const replaced = await until(`${LOAD_SANDBOXES} sandboxes ready again, none on ${victimNode}`, async () => {
    const ready = await readySandboxes(lead, LOAD_FUNCTION);
    return ready.length === LOAD_SANDBOXES && ready.every((s) => !s.endsWith(`@${victimNode}`)) ? ready : undefined;
  }, FAILOVER_MS, PROBE_MS);
  const replacedMs = Date.now() - killedAt;
  const restoredMs = await restore(t, victim, async () => {
    const nodes = JSON.parse((await admin(lead.port, '/api/v1/nodes')).body.toString()) as { nodes: { alive: boolean }[] };
    return nodes.nodes.filter((n) => n.alive).length === workerContainers.length ? true : undefined;
  });
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const to = Date.now();
  windowFrom = to;
  await answeredBefore(to);
  const summary = load!.summary(from, to);
  const failures = load!.records.filter((r) => r.sentAt >= from && r.sentAt < to && r.status !== 200);
  const lastFailedSentMs = Math.max(-Infinity, ...failures.map((r) => r.sentAt - killedAt));
  report(t, `worker ${victimNode}`, summary, `its sandbox replaced after ${replacedMs} ms (${replaced.join(', ')}); ${failures.length === 0 ? 'no failure' : `the last failed request was sent ${lastFailedSentMs} ms after it died`}; connected again ${restoredMs} ms after podman start`);
  // A request the data plane had sent to the worker may have run, so it is answered 502 and not retried;
  // one it could not send goes to the other sandbox (actors/dp-sandbox.ts). So failures are 502s of
  // requests sent before the data plane saw the connection close: within a second of the kill, and no
  // more than a second's load.
  t.deepEqual(failures.filter((r) => r.status !== 502).map((r) => `${r.target} ${r.status} ${r.error ?? ''}`), [], 'only 502s');
  t.true(lastFailedSentMs <= 1000, `no request sent more than 1 s after the kill failed (the last: ${lastFailedSentMs} ms)`);
});

serial('the load stops, and the cluster serves on every data plane after all the faults', async (t) => {
  t.timeout(TEST_MS);
  t.truthy(load, 'the load runs');
  await load!.stop();
  const rest = load!.summary(windowFrom, Date.now());
  t.deepEqual(rest.failed, {}, 'after the faults, every request answered 200');
  const total = load!.summary(0, Date.now());
  report(t, 'all (whole run)', total, `${load!.records.length} requests in all`);
  load = undefined;
  for (const dp of dataPlanes) t.is(await answer(dp, 'compose-echo', 'still'), '200 still', `compose-echo on ${dp.service.name} after the faults`);
});

serial('down -v leaves no container, volume or network of the project behind', async (t) => {
  await removeProject();
  const label = `label=io.podman.compose.project=${PROJECT}`;
  t.is((await run('podman', ['ps', '-aq', '--filter', label], { env, timeoutMs: 30_000 })).stdout.trim(), '');
  t.is((await run('podman', ['volume', 'ls', '-q', '--filter', label], { env, timeoutMs: 30_000 })).stdout.trim(), '');
  t.not((await run('podman', ['network', 'exists', `${PROJECT}_default`], { env, timeoutMs: 30_000 })).code, 0);
});
