// The compose cluster in containers, end to end, as a user runs it: the stand-in base images
// (scripts/base-images.sh, kept when they exist), the image from the Dockerfile, `podman-compose up -d` on
// docker-compose.yml as it is, readiness, a function registered the way Dirigent's loader does it, invoked
// over HTTP (Host routing) and WebSocket through every data plane, then the leader control plane killed
// (`podman kill`) and a new function's cold start checked; `down -v` and the network removed always.
// Skipped, with the reason printed, where podman or podman-compose is missing. The published ports are the
// ports the kernel picks (the compose file's variables move them).
// Bounds: a first run builds the base images (~80 s) and the image (~40 s); the whole file stays under 6 min.
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHECKOUT_ID, COMPOSE_FILE, flagOf, freePort, installed, readComposeServices, roleOf, ROOT, run, type ComposeService } from './fixtures/compose-file.js';
import { request, TestWs, type HttpResult } from './data-plane/fixtures/harness.js';

// Every name this file gives podman ends in the checkout's id, so that runs of two checkouts on one machine
// (CI on main and a developer's branch, say) never touch each other's containers, volumes, network or images.
// The base images (scripts/base-images.sh) are shared on purpose: they are the same for every checkout.
const PROJECT = `dirigent-e2e-${CHECKOUT_ID}`;
const IMAGE = `localhost/dirigent-ts-${CHECKOUT_ID}:e2e`;
const BUILD_STAGE_TAG = `localhost/dirigent-ts-build-stage-${CHECKOUT_ID}:latest`;
/** Marks this checkout's build stages, so that the teardown prunes its own and no other checkout's. */
const CHECKOUT_LABEL = `dirigent-ts.checkout=${CHECKOUT_ID}`;
const TOKEN = 'compose-e2e-token-0123456789';
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
let workers: ComposeService[] = [];
let allContainers: string[] = [];
const killed = new Set<string>();

const container = (service: string) => `${PROJECT}_${service}_1`;
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
  const headers: Record<string, string> = init.contentType ? { 'content-type': init.contentType } : {};
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
function registration(name: string): string {
  const form = new URLSearchParams();
  form.append('name', name);
  form.append('image', 'docker.io/cvetkovic/dirigent_echo:latest'); // an image named `echo` runs the built-in echo
  form.append('port_forwarding', '80');
  form.append('port_forwarding', 'tcp');
  form.append('requested_cpu', '10');
  form.append('requested_memory', '64');
  form.append('scaling_upper_bound', '3');
  form.append('scaling_lower_bound', '0');
  return form.toString();
}

async function register(t: ExecutionContext, name: string): Promise<HttpResult> {
  const lead = await until('a leader', leader, FAILOVER_MS);
  const reply = await admin(lead.port, '/registerService', { method: 'POST', body: registration(name), contentType: 'application/x-www-form-urlencoded' });
  t.log(`registered ${name} on ${lead.service.name}: ${reply.status} ${reply.body.toString()}`);
  return reply;
}

const invoke = (dp: Role, name: string, body: string, timeoutMs = 15_000) => request(dp.port, { method: 'POST', path: '/', body, timeoutMs, headers: { host: name, 'content-type': 'text/plain' } });

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

/** `down -v`, and what it can miss: a container podman was restarting meanwhile (and so its volume), and the
 * project's network, which podman-compose 1.0.3 never removes. */
async function removeProject(): Promise<void> {
  await compose(['down', '-v'], 120_000);
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
  env = { ...process.env, DIRIGENT_TOKEN: TOKEN, DIRIGENT_IMAGE: IMAGE, CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? conf };
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
  workers = services.filter((s) => roleOf(s) === 'worker');
  allContainers = services.map((s) => container(s.name));

  await removeProject(); // what an interrupted run may have left
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
    await until(`${workers.length} workers and ${dataPlanes.length} data planes connected`, async () => {
      const nodes = JSON.parse((await admin(lead.port, '/api/v1/nodes')).body.toString()) as { nodes: { alive: boolean }[] };
      const dps = JSON.parse((await admin(lead.port, '/api/v1/dataplanes')).body.toString()) as { dataplanes: { connected: boolean }[] };
      return nodes.nodes.filter((n) => n.alive).length === workers.length && dps.dataplanes.filter((d) => d.connected).length === dataPlanes.length ? true : undefined;
    }, READY_MS);
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
  if (!available || env === undefined) return;
  await removeProject();
  // This checkout's earlier build stages (~550 MB each), dangling now; this run's stays, tagged, as the cache.
  await run('podman', ['image', 'prune', '--force', '--filter', 'label=dirigent-ts.stage=build', '--filter', `label=${CHECKOUT_LABEL}`], { env, timeoutMs: 60_000 });
  await rm(workDir, { recursive: true, force: true });
});

serial('the image: non-root, the CLI as entrypoint, a healthcheck that passes for every role', async (t) => {
  const whoami = await run('podman', ['exec', container(controlPlanes[0]!.service.name), 'id', '-u'], { env, timeoutMs: 20_000 });
  t.is(whoami.stdout.trim(), '1000');
  for (const role of [controlPlanes[0]!.container, dataPlanes[0]!.container, container(workers[0]!.name)]) {
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

serial('the leader control plane killed: warm invocations go on, and a new function cold-starts', async (t) => {
  const old = await until('a leader', leader, READY_MS);
  const dp = dataPlanes[0]!;
  const killedAt = Date.now();
  const kill = await run('podman', ['kill', old.container], { env, timeoutMs: 30_000 });
  t.is(kill.code, 0, kill.stderr);
  killed.add(old.container);
  // Warm requests never involve the control plane.
  for (let i = 0; i < 5; i++) t.is(await answer(dp, 'compose-echo', `warm ${i}`), `200 warm ${i}`, `warm invocation ${i} on ${dp.service.name} after the kill`);
  if (controlPlanes.length === 1) {
    // One replica: nothing takes over; it comes back with its file store and rebuilds from the workers.
    // (`podman kill` counts as stopped by the user, so the restart policy leaves it down.)
    const start = await run('podman', ['start', old.container], { env, timeoutMs: 30_000 });
    t.is(start.code, 0, start.stderr);
    killed.delete(old.container);
  }
  const next = await until('a new leader', leader, FAILOVER_MS);
  t.log(`${next.service.name} leads ${Date.now() - killedAt} ms after ${old.service.name} was killed`);
  // 409: an earlier attempt was stored though its answer was lost.
  const registered = await until('a registration accepted', async () => {
    const status = (await register(t, 'compose-after')).status;
    return status === 200 || status === 409 ? status : undefined;
  }, FAILOVER_MS, 500);
  t.true(registered === 200 || registered === 409);
  const cold = await until('a cold start of the new function', async () => {
    const r = await invoke(dp, 'compose-after', 'cold');
    return r.status === 200 ? r : undefined;
  }, FAILOVER_MS, 250);
  t.is(cold.body.toString(), 'cold');
  // The function is new, so a sandbox was created for it; the answer that came back may be a retry's.
  t.log(`the new function served ${Date.now() - killedAt} ms after the kill (cold-start header: ${String(cold.headers['x-dirigent-cold-start'])})`);
  // The function registered before the kill is still there and served.
  for (const other of dataPlanes) {
    const still = await answer(other, 'compose-echo', 'still');
    if (still !== '200 still') t.log(`compose-echo as the leader sees it: ${(await admin(next.port, '/api/v1/functions/compose-echo').catch((e: Error) => ({ body: e.message }))).body.toString()}`);
    t.is(still, '200 still', `compose-echo on ${other.service.name} after the failover`);
  }
});

serial('down -v leaves no container, volume or network of the project behind', async (t) => {
  await removeProject();
  const label = `label=io.podman.compose.project=${PROJECT}`;
  t.is((await run('podman', ['ps', '-aq', '--filter', label], { env, timeoutMs: 30_000 })).stdout.trim(), '');
  t.is((await run('podman', ['volume', 'ls', '-q', '--filter', label], { env, timeoutMs: 30_000 })).stdout.trim(), '');
  t.not((await run('podman', ['network', 'exists', `${PROJECT}_default`], { env, timeoutMs: 30_000 })).code, 0);
});
