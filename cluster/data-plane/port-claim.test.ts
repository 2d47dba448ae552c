// One data plane per invoke port: a second one on a taken port (in this process, or as `dirigent data-plane`)
// is refused with the port and its holder named, and the first keeps every request; so is a port another
// program holds, with or without SO_REUSEPORT; the compat port likewise.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { DataPlane } from './data-plane.js';
import { startHarness, request, TOKEN, FAKE_MODULE } from './fixtures/harness.js';
import { foreignListeners, portHolder, PortTakenError } from './port-claim.js';
import { listen } from '../../runtime/net.js';
import { loadNativeUws } from './uws.js';

const CLI = new URL('../cli.js', import.meta.url).pathname;
const HOLDER = new URL('./fixtures/reuseport-holder.js', import.meta.url).pathname;

const portOf = (address: string) => Number(address.split(':')[1]);

function secondDataPlane(cp: string, invokePort: number, compatPort?: number): Promise<DataPlane> {
  return DataPlane.start({ id: 'dp-second', controlPlane: cp, token: TOKEN, host: '127.0.0.1', httpPort: invokePort, ...(compatPort === undefined ? {} : { compatPort }), shards: 2, moduleUrl: FAKE_MODULE, onLog: () => undefined });
}

/** Runs the CLI to its exit (bounded); its exit code and stderr. */
function runCli(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, DIRIGENT_TOKEN: TOKEN }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dirigent ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

/** A uWS listener (SO_REUSEPORT) in another process on `port`, until the test ends. */
async function reuseportHolder(t: ExecutionContext, port: number): Promise<void> {
  const child = spawn(process.execPath, [HOLDER, String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(async () => {
    child.stdin.end();
    await exited;
  });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', () => resolve());
    child.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
  });
}

async function freshPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server, 0, '127.0.0.1');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test.serial('a second data plane on a taken invoke port is refused, naming the port and the holder; the first keeps every request', async (t) => {
  const { dp, cp, port } = await startHarness(t);
  const error = await t.throwsAsync(secondDataPlane(cp.address, port), { instanceOf: PortTakenError });
  t.is(error?.message, `invoke port ${port} is taken: dirigent data plane dp-test (pid ${process.pid}, ${dp.invokeAddress}) serves on it; stop it or choose another invoke port`);
  t.deepEqual(await portHolder(port), { pid: process.pid, dataplaneId: 'dp-test', address: dp.invokeAddress });
  // Before the claim, the kernel split these between the two data planes (8 calls: 200 200 404 404 404 200 404 404).
  const statuses = await Promise.all(Array.from({ length: 16 }, () => request(port, { method: 'POST', path: '/invoke/echo', body: 'x' }).then((r) => r.status)));
  t.deepEqual(statuses, Array.from({ length: 16 }, () => 200));
  t.deepEqual(foreignListeners(port), []);
  await dp.stop();
  t.is(await portHolder(port), undefined, 'stopping gives the claim up');
});

test.serial('`dirigent data-plane` on a taken invoke port exits 1 with the port named', async (t) => {
  const { cp, port } = await startHarness(t);
  const { code, stderr } = await runCli(['data-plane', '--id', 'dp2', '--invoke-port', String(port), '--compat-port', '0', '--control-plane', cp.address, '--data-dir', '/nonexistent-dirigent-test']);
  t.is(code, 1);
  t.regex(stderr, new RegExp(`invoke port ${port} is taken: dirigent data plane dp-test \\(pid ${process.pid}`));
});

test.serial('a port another program holds is refused: with SO_REUSEPORT (which the kernel would share) and without', async (t) => {
  const { cp } = await startHarness(t);
  const shared = await freshPort();
  await reuseportHolder(t, shared);
  const refused = await t.throwsAsync(secondDataPlane(cp.address, shared), { instanceOf: PortTakenError });
  t.regex(refused?.message ?? '', new RegExp(`^invoke port ${shared} on 127.0.0.1 is in use by another process`));

  const plain = createServer();
  const exclusive = await listen(plain, 0, '127.0.0.1');
  t.teardown(() => new Promise<void>((resolve) => plain.close(() => resolve())));
  await t.throwsAsync(secondDataPlane(cp.address, exclusive), { instanceOf: PortTakenError, message: new RegExp(`^invoke port ${exclusive} on 127.0.0.1 is in use`) });
});

test.serial('a taken compat port is refused with its port named, and the invoke port is given back', async (t) => {
  const { cp } = await startHarness(t);
  const plain = createServer();
  const compat = await listen(plain, 0, '127.0.0.1');
  t.teardown(() => new Promise<void>((resolve) => plain.close(() => resolve())));
  const invoke = await freshPort();
  await t.throwsAsync(secondDataPlane(cp.address, invoke, compat), { instanceOf: PortTakenError, message: new RegExp(`^compat port ${compat} on 127.0.0.1 is in use by another process`) });
  t.is(await portHolder(invoke), undefined);
  const dp = await secondDataPlane(cp.address, invoke);
  t.teardown(() => dp.stop());
  t.is(dp.invokeAddress, `127.0.0.1:${invoke}`);
});

test.serial('the check after listening sees an SO_REUSEPORT listener of another process on our port, and not our own', async (t) => {
  const uws = loadNativeUws();
  const port = await freshPort();
  let socket: unknown = false;
  uws.App().listen('127.0.0.1', port, (s) => void (socket = s));
  t.not(socket, false);
  t.teardown(() => uws.us_listen_socket_close(socket as never));
  t.deepEqual(foreignListeners(port), [], 'only our own socket listens');
  await reuseportHolder(t, port);
  t.is(foreignListeners(port).length, 1, 'the other process joined the port');
});
