// `dirigent up` as a process, the way a person runs it: killed with SIGKILL its data plane and workers end with it
// and give the ports back; `npm start` stopped with SIGTERM stops the whole cluster; a restart says which functions
// it restored and from where; a second `dirigent up` on taken ports is refused before it starts anything.
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { AdminClient } from './admin-client.js';
import { portHolder } from './data-plane/port-claim.js';
import { LocalCluster } from './launcher.js';
import { until } from '../runtime/fixtures/until.js';

const CLI = new URL('./cli.js', import.meta.url).pathname;
const ROOT = new URL('../../', import.meta.url).pathname;
const TOKEN = 'launcher-test-token';
/**
 * Bound on a cluster's start, and on its processes ending, ms. Generous: a restart waits up to 3 s for its
 * workers to list their sandboxes, and under a full test run on 2 cores a start has taken over 30 s.
 */
const WITHIN_MS = 60_000;

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dirigent-up-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** State letter and parent pid of a live process; undefined once it is gone (or a zombie: it ended). */
function processInfo(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so parse after the last ')'.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return state === 'Z' ? undefined : { state: state!, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((child) => processInfo(child)?.ppid === pid);
}

interface Running {
  readonly process: ChildProcess;
  readonly stdout: string[];
  readonly stderr: string[];
}

/** Spawns `command`, kills whatever is left of it (and of `also`) at teardown, and waits for a stdout line. */
async function run(t: ExecutionContext, command: string, args: string[], ready: (line: string) => boolean, options: { cwd?: string } = {}): Promise<Running> {
  const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, DIRIGENT_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] });
  const running: Running = { process: child, stdout: [], stderr: [] };
  const pids = new Set<number>([child.pid!]);
  // Remembered as they appear, so that teardown can end them even when their parent is gone.
  const watch = setInterval(() => {
    for (const pid of [...pids]) for (const grandchild of childrenOf(pid)) pids.add(grandchild);
  }, 100);
  t.teardown(() => {
    clearInterval(watch);
    for (const pid of pids) if (processInfo(pid)) process.kill(pid, 'SIGKILL');
  });
  createInterface({ input: child.stderr! }).on('line', (line) => running.stderr.push(line));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} ${args.join(' ')} not ready within ${WITHIN_MS} ms:\n${running.stderr.join('\n')}`)), WITHIN_MS);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      running.stdout.push(line);
      if (ready(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited with ${code} before it was ready:\n${running.stderr.join('\n')}`));
    });
  });
  return running;
}

const upArgs = (dataDir: string, json: boolean) => ['up', ...(json ? ['--json'] : []), '--admin-port', '0', '--invoke-port', '0', '--compat-port', '0', '--data-dir', dataDir, '--workers', '1', '--runtime', 'simulated'];

const gone = (pids: readonly number[]) => until(`processes ${pids.join(', ')} to end`, () => (pids.every((pid) => processInfo(pid) === undefined) ? true : undefined), WITHIN_MS, 50);

test.serial('SIGKILL of `dirigent up` ends its data plane and workers and frees the invoke port; a restart restores its functions and says from where', async (t) => {
  const dataDir = await tempDir(t);
  const up = await run(t, process.execPath, [CLI, ...upArgs(dataDir, true)], (line) => line.startsWith('{'));
  const info = JSON.parse(up.stdout[0]!) as { admin: string; invoke: string; restored: { functions: string[] } };
  t.deepEqual(info.restored.functions, []);
  const admin = new AdminClient({ adminUrl: info.admin });
  await admin.createFunction({ name: 'kept', runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' } });
  const children = childrenOf(up.process.pid!);
  t.is(children.length, 2, 'a data plane and a worker');
  const invokePort = Number(new URL(info.invoke).port);
  t.truthy(await portHolder(invokePort));

  up.process.kill('SIGKILL');
  await gone(children);
  t.is(await portHolder(invokePort), undefined, 'the invoke port is free again');

  const again = await run(t, process.execPath, [CLI, ...upArgs(dataDir, false)], (line) => line.startsWith('Press Ctrl-C'));
  t.true(again.stdout.includes(`restored 1 function from ${join(dataDir, 'store')}: kept`), again.stdout.join('\n'));
  const exited = new Promise((resolve) => again.process.once('exit', resolve));
  const grandchildren = childrenOf(again.process.pid!);
  again.process.kill('SIGTERM');
  t.is(await exited, 0);
  await gone(grandchildren);
});

test.serial('SIGTERM of the `npm start` process stops the cluster: nothing is left holding the ports', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  t.is(pkg.scripts.start, 'npm run build && exec node dist/cluster/cli.js up');
  // The same script without its build (this test must not rebuild the dist/ it runs from), in a package of its own.
  const dir = await tempDir(t);
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'start-fixture', private: true, scripts: { start: pkg.scripts.start.replace('npm run build', 'true').replace('dist/cluster/cli.js', CLI) } }));
  const dataDir = join(dir, 'data');
  const npm = await run(t, 'npm', ['start', '--silent', '--', ...upArgs(dataDir, true).slice(1)], (line) => line.startsWith('{'), { cwd: dir });
  const info = JSON.parse(npm.stdout.find((line) => line.startsWith('{'))!) as { invoke: string };
  const [up] = childrenOf(npm.process.pid!);
  t.truthy(up, 'npm runs the cluster');
  const cluster = [up!, ...childrenOf(up!)];
  t.is(cluster.length, 3, '`dirigent up` (exec replaced the shell), a data plane and a worker');

  npm.process.kill('SIGTERM');
  await gone(cluster);
  t.is(await portHolder(Number(new URL(info.invoke).port)), undefined);
});

test.serial('a second `dirigent up` on a taken invoke or compat port exits 1 naming the port, before it starts anything', async (t) => {
  const first = await LocalCluster.start({ host: '127.0.0.1', adminPort: 0, invokePort: 0, compatPort: 0, dataDir: await tempDir(t), workers: 1, runtime: 'simulated', token: TOKEN, onOutput: () => undefined });
  t.teardown(() => first.stop());
  const invokePort = Number(new URL(first.invokeUrl).port);
  const compatPort = Number(new URL(first.compatUrl).port);
  const holder = await portHolder(invokePort);
  const dataDir = join(await tempDir(t), 'second');
  const second = (ports: string[]) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'up', '--admin-port', '0', ...ports, '--data-dir', dataDir], { env: { ...process.env, DIRIGENT_TOKEN: TOKEN }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), WITHIN_MS);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    });
  const onInvoke = await second(['--invoke-port', String(invokePort), '--compat-port', '0']);
  t.is(onInvoke.code, 1);
  t.is(onInvoke.stderr, `dirigent: invoke port ${invokePort} is taken: dirigent data plane dp1 (pid ${holder?.pid}, 127.0.0.1:${invokePort}) serves on it; stop it or choose another invoke port\n`);
  const onCompat = await second(['--invoke-port', '0', '--compat-port', String(compatPort)]);
  t.is(onCompat.code, 1);
  t.regex(onCompat.stderr, new RegExp(`^dirigent: compat port ${compatPort} on 127\\.0\\.0\\.1 is in use by another process`));
  t.false(existsSync(dataDir), 'refused before its data directory (and store) was touched');
  const served = await fetch(`${first.invokeUrl}/invoke/nosuch`, { method: 'POST' });
  t.is(served.status, 404, 'the first cluster still answers on its port');
});
