// The `sandbox.invoke` service against a real worker invocation server (cluster/worker) with fake sandboxes.
import test, { type ExecutionContext } from 'ava';
import type { Invocation } from '../../actors/messages.js';
import type { InvokeRequest, InvokeResponse, Sandbox } from '../sandbox/index.js';
import { serveInvocations, type InvocationServer } from '../worker/invoke-server.js';
import { SandboxPool, SandboxPoolError } from './sandbox-pool.js';

const TOKEN = 'pool-test-token';
const invocation: Invocation = { method: 'POST', path: '/p', headers: { 'x-a': 'b' }, body: new TextEncoder().encode('hi') };

function sandbox(id: string, answer: (req: InvokeRequest) => Promise<InvokeResponse>): Sandbox {
  return { id, invoke: answer, logs: () => [] };
}

async function server(t: ExecutionContext, port = 0, sandboxes: Sandbox[] = [sandbox('sb1', async (req) => ({ status: 201, headers: { 'x-path': req.path }, body: req.body }))]): Promise<InvocationServer> {
  const s = await serveInvocations({ host: '127.0.0.1', port, token: TOKEN, id: 'shard-0', lookup: (id) => sandboxes.find((x) => x.id === id), log: () => undefined });
  t.teardown(() => s.close());
  return s;
}

function pool(t: ExecutionContext, token = TOKEN): SandboxPool {
  const p = SandboxPool.forCluster(token, 'dp-1');
  t.teardown(() => p.close());
  return p;
}

const code = async (promise: Promise<unknown>): Promise<string | undefined> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return error instanceof SandboxPoolError ? error.code : `not a pool error: ${String(error)}`;
};

test.serial('invocations share one connection per server; the answer comes back whole', async (t) => {
  const s = await server(t);
  const p = pool(t);
  const answers = await Promise.all(Array.from({ length: 20 }, () => p.invoke({ address: s.address, sandboxId: 'sb1', invocation, timeoutMs: 2000 })));
  t.is(p.size, 1);
  for (const a of answers) {
    t.is(a.status, 201);
    t.is(a.headers['x-path'], '/p');
    t.is(new TextDecoder().decode(a.body), 'hi');
  }
});

test.serial('errors carry stable codes: unknown sandbox, timeout, bad input, unreachable server, wrong token', async (t) => {
  const s = await server(t, 0, [sandbox('stuck', () => new Promise(() => undefined))]);
  const p = pool(t);
  t.is(await code(p.invoke({ address: s.address, sandboxId: 'nope', invocation, timeoutMs: 2000 })), 'SANDBOX_GONE');
  t.is(await code(p.invoke({ address: s.address, sandboxId: 'stuck', invocation, timeoutMs: 50 })), 'SANDBOX_TIMEOUT');
  t.is(await code(p.invoke({ address: s.address, sandboxId: 'x', invocation: { ...invocation, body: 'text' }, timeoutMs: 50 })), 'BAD_REQUEST');
  t.is(await code(p.invoke(null)), 'BAD_REQUEST');
  t.is(await code(p.invoke({ address: '127.0.0.1:1', sandboxId: 'x', invocation, timeoutMs: 500 })), 'CONNECTION_FAILED');
  t.is(await code(p.invoke({ address: 'no-port', sandboxId: 'x', invocation, timeoutMs: 500 })), 'CONNECTION_FAILED');
  t.is(await code(pool(t, 'wrong').invoke({ address: s.address, sandboxId: 'stuck', invocation, timeoutMs: 500 })), 'CONNECTION_FAILED');
});

test.serial('a connection lost mid-invocation fails with CONNECTION_LOST; the next call reconnects to the restarted server', async (t) => {
  const s = await server(t, 0, [sandbox('stuck', () => new Promise(() => undefined))]);
  const port = Number(s.address.split(':')[1]);
  const p = pool(t);
  const inFlight = p.invoke({ address: s.address, sandboxId: 'stuck', invocation, timeoutMs: 5000 });
  await new Promise((resolve) => setTimeout(resolve, 50));
  await s.close();
  t.is(await code(inFlight), 'CONNECTION_LOST');
  const again = await server(t, port);
  const answer = await p.invoke({ address: again.address, sandboxId: 'sb1', invocation, timeoutMs: 2000 });
  t.is(answer.status, 201);
});

test.serial('after close every call fails with CONNECTION_FAILED', async (t) => {
  const s = await server(t);
  const p = pool(t);
  await p.invoke({ address: s.address, sandboxId: 'sb1', invocation, timeoutMs: 2000 });
  p.close();
  t.is(await code(p.invoke({ address: s.address, sandboxId: 'sb1', invocation, timeoutMs: 2000 })), 'CONNECTION_FAILED');
  t.is(p.size, 0);
});
