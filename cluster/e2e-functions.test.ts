// End to end, a user's first day with functions, over real local clusters as `dirigent up` starts them: one of
// thread workers, one of process workers. Broken functions are explained at once (refused at deploy with the
// cause, or 503 FUNCTION_FAILED with the cause in the first answer), creation backs off, and an update rolls out
// so that the first call after `dirigent deploy` returns runs the new code.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AdminClient, AdminError, type FunctionViewJson } from './admin-client.js';
import { errorOf, request, TestWs, until, type HttpResult } from './data-plane/fixtures/harness.js';
import { LocalCluster } from './launcher.js';

const CLI = new URL('./cli.js', import.meta.url).pathname;
const source = (path: string): string => new URL(`../../cluster/${path}`, import.meta.url).pathname;
/** The cause must be seen this soon after a deploy or a call, ms. */
const CAUSE_WITHIN_MS = 1000;

interface Running {
  readonly cluster: LocalCluster;
  readonly admin: AdminClient;
  readonly port: number;
}

let dataDir: string;
let thread: Running;
const output: string[] = [];

async function start(name: string, runtime: 'thread' | 'process', workers: number): Promise<Running> {
  // A generous bound: this machine's cores are shared, and a child's start is mostly module loading.
  const cluster = await LocalCluster.start({ host: '127.0.0.1', adminPort: 0, invokePort: 0, compatPort: 0, dataDir: join(dataDir, name), workers, runtime, onOutput: (line) => output.push(line), startTimeoutMs: 60_000 });
  const admin = new AdminClient({ adminUrl: cluster.adminUrl });
  await until(`${workers} ${runtime} worker(s) registered`, async () => ((await admin.nodes()).length === workers ? true : undefined), 15_000);
  return { cluster, admin, port: Number(new URL(cluster.invokeUrl).port) };
}

test.before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'dirigent-e2e-fns-'));
  thread = await start('thread', 'thread', 2);
});

test.after.always(async () => {
  await thread?.cluster.stop();
  await rm(dataDir, { recursive: true, force: true });
});

const invoke = (on: Running, name: string, body = '', timeoutMs = 15_000): Promise<HttpResult> =>
  request(on.port, { method: 'POST', path: `/invoke/${name}`, body, timeoutMs, headers: { 'content-type': 'text/plain' } });

/** The CLI as a user runs it, against `on`'s admin API: exit code and output. */
async function dirigent(on: Running, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args, '--admin', on.cluster.adminUrl], { timeout: 90_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

/** Creates a function through the admin API; the refusal's code and message, and how long the answer took. */
async function refusal(on: Running, spec: Record<string, unknown>): Promise<{ code: string; message: string; ms: number }> {
  const started = performance.now();
  try {
    await on.admin.createFunction(spec);
  } catch (error) {
    if (!(error instanceof AdminError) || error.status !== 422) throw error;
    return { code: error.code, message: error.message, ms: performance.now() - started };
  }
  throw new Error(`${String(spec.name)} was created, not refused`);
}

const moduleSpec = (name: string, module: string, extra: Record<string, unknown> = {}) => ({ name, source: { kind: 'thread', module }, ...extra });

test.serial('each kind of broken function is refused at deploy, within a second, with its cause', async (t) => {
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['missing', moduleSpec('missing', '/nonexistent/handler.mjs'), 'SOURCE_FAILED', /Cannot find module '\/nonexistent\/handler.mjs'/],
    ['throws', moduleSpec('throws', source('sandbox/fixtures/broken.mjs')), 'SOURCE_FAILED', /cannot initialise: missing configuration/],
    ['syntax', moduleSpec('syntax', source('fixtures/syntax-error.mjs')), 'SOURCE_FAILED', /syntax-error\.mjs|Unexpected token|missing \)/],
    ['nohandler', moduleSpec('nohandler', source('sandbox/fixtures/no-handler.mjs')), 'SOURCE_FAILED', /exports neither a 'handler' nor a default function/],
    ['command', { name: 'command', source: { kind: 'process', command: process.execPath, args: [source('examples/server.mjs')] } }, 'NO_WORKER_FOR_RUNTIME', /a command runs on process workers, and no connected worker runs process sandboxes \(the 2 connected node\(s\) run thread\)/],
  ];
  const largest = Math.max(...(await thread.admin.nodes()).map((n) => (n.capacity as { memoryMiB: number }).memoryMiB));
  if (largest < 65_536) cases.push(['huge', moduleSpec('huge', source('fixtures/e2e-handler.mjs'), { memoryMiB: largest + 1 }), 'NO_NODE_FITS', new RegExp(`no node can hold a sandbox of ${largest + 1} MiB`)]);
  for (const [name, spec, code, cause] of cases) {
    const refused = await refusal(thread, spec);
    t.is(refused.code, code, name);
    t.regex(refused.message, cause, name);
    t.true(refused.ms < CAUSE_WITHIN_MS, `${name} refused after ${Math.round(refused.ms)} ms`);
  }
  t.deepEqual(await thread.admin.listFunctions(), [], 'nothing was created');

  // On a process-only cluster (started for these only) a module is refused; a command that does not start is
  // tried and refused.
  const processes = await start('process', 'process', 1);
  t.teardown(() => processes.cluster.stop());
  t.like(await refusal(processes, moduleSpec('module', source('fixtures/e2e-handler.mjs'))), { code: 'NO_WORKER_FOR_RUNTIME' });
  const exits = await refusal(processes, { name: 'exits', source: { kind: 'process', command: process.execPath, args: ['-e', 'console.error("no database configured"); process.exit(3)'] } });
  t.is(exits.code, 'SOURCE_FAILED');
  t.regex(exits.message, /no database configured/);
  t.true(exits.ms < CAUSE_WITHIN_MS, `refused after ${Math.round(exits.ms)} ms`);
  // A command that serves passes its trial start, and serves.
  await processes.admin.createFunction({ name: 'web', source: { kind: 'process', command: process.execPath, args: [source('examples/server.mjs')] } });
  const served = await invoke(processes, 'web', 'hi');
  t.is(served.status, 200, served.body.toString());
  t.is(served.headers['x-dirigent-version'], '1');
  await processes.admin.deleteFunction('web');

  // As a user sees it.
  const cli = await dirigent(thread, 'deploy', 'broken', '--module', source('sandbox/fixtures/broken.mjs'));
  t.is(cli.code, 1);
  t.regex(cli.stderr, /broken does not start .*cannot initialise: missing configuration \(HTTP 422, SOURCE_FAILED\)/);
});

test.serial('a function that breaks after its deploy answers 503 with the cause at once, backs off, shows in ls and status, and a deploy of a fix serves', async (t) => {
  const dir = await mkdtemp(join(dataDir, 'module-'));
  const module = join(dir, 'flaky.mjs');
  await writeFile(module, 'export const handler = () => "fine";\n');
  await thread.admin.createFunction(moduleSpec('flaky', module));
  // The file changes under the deployed function: its next sandbox cannot load it.
  await writeFile(module, 'throw new Error("the config file is gone");\n');
  const started = performance.now();
  const first = await invoke(thread, 'flaky');
  const firstMs = performance.now() - started;
  t.is(first.status, 503, first.body.toString());
  t.is(errorOf(first).code, 'FUNCTION_FAILED');
  t.regex(errorOf(first).message, /flaky \(version 1\) cannot start: .*the config file is gone/);
  t.true(firstMs < CAUSE_WITHIN_MS, `first answer after ${Math.round(firstMs)} ms`);

  // Later calls are answered at once, and creation is retried only after the backoff (10 s, then 20 s).
  const windowStarted = Date.now();
  while (Date.now() - windowStarted < 12_000) {
    const callStarted = performance.now();
    const answer = await invoke(thread, 'flaky');
    t.is(answer.status, 503);
    t.true(performance.now() - callStarted < CAUSE_WITHIN_MS);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const view: FunctionViewJson = await thread.admin.getFunction('flaky');
  t.is(view.status?.state, 'failed');
  t.true((view.status?.failures?.count ?? 0) >= 1 && (view.status?.failures?.count ?? 0) <= 3, `${view.status?.failures?.count} failed creations in 12 s`);
  t.regex(view.status?.stateReason ?? '', /the config file is gone/);

  const ls = await dirigent(thread, 'ls');
  t.regex(ls.stdout, /flaky .* v1 failed .*\n .*cannot start: .*the config file is gone/);
  const status = await dirigent(thread, 'status');
  t.regex(status.stdout, /function flaky: failed \(version 1\)/);

  // Fixed and deployed again (the same path): the backoff is cleared and the new version serves at once.
  await writeFile(module, 'export const handler = () => "fixed";\n');
  const deployed = await dirigent(thread, 'deploy', 'flaky', '--module', module);
  t.is(deployed.code, 0, deployed.stderr);
  t.regex(deployed.stdout, /flaky: version 2 serves/);
  const fixed = await invoke(thread, 'flaky');
  t.is(fixed.status, 200);
  t.is(fixed.body.toString(), 'fixed');
  t.is(fixed.headers['x-dirigent-version'], '2');
  await thread.admin.deleteFunction('flaky');
});

test.serial('an update rolls out: the first call after deploy returns runs the new code; a scaling-only deploy restarts nothing', async (t) => {
  const dir = await mkdtemp(join(dataDir, 'module-'));
  const module = join(dir, 'greeter.mjs');
  await writeFile(module, 'export const handler = () => "version one";\n');
  const created = await dirigent(thread, 'deploy', 'greeter', '--module', module, '--min-scale', '1');
  t.is(created.code, 0, created.stderr);
  t.regex(created.stdout, /greeter: version 1 serves \(1 sandbox\(es\) ready\)/);
  const one = await invoke(thread, 'greeter');
  t.is(one.body.toString(), 'version one');
  t.is(one.headers['x-dirigent-version'], '1');
  t.is(one.headers['x-dirigent-cold-start'], 'false', 'the deploy waited for a ready sandbox');

  // The same path, new content: deploy returns once version 2 serves and version 1 is out of routing.
  await writeFile(module, 'export const handler = () => "version two";\n');
  const updated = await dirigent(thread, 'deploy', 'greeter', '--module', module);
  t.is(updated.code, 0, updated.stderr);
  t.regex(updated.stdout, /greeter: version 2 serves/);
  const calls: HttpResult[] = [];
  for (let i = 0; i < 4; i++) calls.push(await invoke(thread, 'greeter'));
  t.deepEqual(calls.map((c) => c.body.toString()), Array(4).fill('version two'));
  t.deepEqual(calls.map((c) => c.headers['x-dirigent-version']), Array(4).fill('2'));

  // The version is on WebSocket replies too.
  const ws = await TestWs.open(t, thread.port);
  ws.send(JSON.stringify({ id: 1, function: 'greeter', body: '' }));
  const [reply] = (await ws.waitFrames(1, 15_000)).map((f) => JSON.parse(f.data.toString()) as { body: string; headers: Record<string, string> });
  t.is(reply?.body, 'version two');
  t.is(reply?.headers['x-dirigent-version'], '2');

  // Scaling only, without restating the source: the same sandboxes serve on.
  const ready = async () => ((await thread.admin.getFunction('greeter')).status?.sandboxes ?? []).filter((s) => s.phase === 'ready').map((s) => s.sandboxId);
  const before = await ready();
  const scaled = await dirigent(thread, 'deploy', 'greeter', '--max-scale', '3');
  t.is(scaled.code, 0, scaled.stderr);
  t.regex(scaled.stdout, /scaling and routing only, nothing restarted; version 2 serves/);
  const after = await invoke(thread, 'greeter');
  t.is(after.headers['x-dirigent-version'], '2');
  t.true(before.includes(String(after.headers['x-dirigent-sandbox'])), 'a sandbox of version 2 from before serves');
  t.deepEqual(await ready(), before, 'nothing restarted');
  const view = await thread.admin.getFunction('greeter');
  t.like(view, { spec: { version: 3, templateVersion: 2, scaling: { maxScale: 3 } }, status: { version: 2, state: 'active', outdated: 0 } });

  const unknown = await dirigent(thread, 'deploy', 'nosuch', '--max-scale', '3');
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /nosuch does not exist; create it with --module, --command or --builtin/);
  await thread.admin.deleteFunction('greeter');
});
