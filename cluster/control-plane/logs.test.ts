// `GET /api/v1/functions/<name>/logs` over a real control plane and a real thread worker: the control plane
// asks the node actors, the worker's service reads its sandboxes' rings, the answers merge by time.
import test from 'ava';
import type { SandboxLogLine } from '../../actors/sandbox-logs.js';
import { fixtureModule, startSmallCluster, type SmallCluster } from '../fixtures/small-cluster.js';
import { until } from '../../runtime/fixtures/until.js';

const CHATTY = fixtureModule('chatty.mjs');
/** Decisions every 100 ms and a short stable window: with minScale 0 and no traffic it scales to zero in ~1 s. */
const FAST = { tickMs: 100, stableWindowMs: 500, panicWindowMs: 200, keepAliveMs: 0 };

async function get(cluster: SmallCluster, path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${cluster.adminUrl}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.json() };
}

async function readySandbox(cluster: SmallCluster, name: string): Promise<{ sandboxId: string; nodeId: string }> {
  return until(`a ready sandbox of ${name}`, async () => (await cluster.client.getFunction(name)).status?.sandboxes?.find((s) => s.phase === 'ready'), 15_000);
}

test.serial('lines of a function: tagged, merged, bounded by tail and since; a gone sandbox keeps its output', async (t) => {
  const cluster = await startSmallCluster(t, 'thread');
  await cluster.client.createFunction({ name: 'chatty', source: { kind: 'thread', module: CHATTY }, scaling: { ...FAST, minScale: 1 } });
  const sandbox = await readySandbox(cluster, 'chatty');
  const all = await until('three ticks', async () => {
    const { body } = await get(cluster, '/api/v1/functions/chatty/logs');
    return (body.lines as SandboxLogLine[]).length >= 4 ? (body as { lines: SandboxLogLine[]; unreachable: string[] }) : undefined;
  });
  t.deepEqual(all.unreachable, []);
  t.like(all.lines[0], { stream: 'stdout', line: 'started', sandboxId: sandbox.sandboxId, nodeId: 'w1', seq: 1 });
  t.true(all.lines.slice(1).every((l, i) => l.line === `tick ${i + 1}` && l.t >= all.lines[i]!.t), 'in time order');

  const tail = (await get(cluster, '/api/v1/functions/chatty/logs?tail=2')).body.lines as SandboxLogLine[];
  t.is(tail.length, 2);
  t.true(tail[0]!.seq >= all.lines.at(-1)!.seq - 1, 'the newest lines');
  const since = all.lines.at(-1)!.t;
  const recent = (await get(cluster, `/api/v1/functions/chatty/logs?since=${since}`)).body.lines as SandboxLogLine[];
  t.true(recent.length >= 1 && recent.every((l) => l.t >= since));

  // Scale to zero: the sandbox is deleted on the worker, its lines stay readable.
  await cluster.client.updateFunction('chatty', { scaling: { minScale: 0 } });
  await until('scaled to zero', async () => ((await cluster.client.getFunction('chatty')).status?.sandboxes?.length === 0 ? true : undefined), 15_000);
  const after = (await get(cluster, '/api/v1/functions/chatty/logs')).body.lines as SandboxLogLine[];
  t.like(after[0], { line: 'started', sandboxId: sandbox.sandboxId });
});

test.serial('follow streams each new line once, and ends with an error when the function is deleted', async (t) => {
  const cluster = await startSmallCluster(t, 'thread');
  await cluster.client.createFunction({ name: 'followed', source: { kind: 'thread', module: CHATTY }, scaling: { minScale: 1 } });
  await readySandbox(cluster, 'followed');
  const response = await fetch(`${cluster.adminUrl}/api/v1/functions/followed/logs?follow=true&tail=1`, { signal: AbortSignal.timeout(20_000) });
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), 'application/x-ndjson');
  const objects: Record<string, unknown>[] = [];
  const decoder = new TextDecoder();
  let buffered = '';
  let deleted = false;
  for await (const chunk of response.body!) {
    buffered += decoder.decode(chunk, { stream: true });
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    objects.push(...parts.map((p) => JSON.parse(p) as Record<string, unknown>));
    // Past five lines (over several polls), delete the function: the stream must say so and end.
    if (!deleted && objects.length >= 5) {
      deleted = true;
      await cluster.client.deleteFunction('followed');
    }
  }
  const lines = objects.filter((o) => 'line' in o) as unknown as SandboxLogLine[];
  t.true(lines.length >= 5);
  const seqs = lines.map((l) => l.seq);
  t.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in order');
  t.is(new Set(seqs).size, seqs.length, 'no line twice');
  t.deepEqual(seqs.slice(1), seqs.slice(1).map((_s, i) => seqs[0]! + i + 1), 'none missing after the first (tail=1)');
  t.like(objects.at(-1), { error: { code: 'UNKNOWN_FUNCTION' } });
});

test.serial('an unknown function is 404; a bad query names the parameter', async (t) => {
  const cluster = await startSmallCluster(t, 'simulated');
  t.like(await get(cluster, '/api/v1/functions/nope/logs'), { status: 404, body: { error: { code: 'UNKNOWN_FUNCTION' } } });
  await cluster.client.createFunction({ name: 'quiet', runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' } });
  t.deepEqual(await get(cluster, '/api/v1/functions/quiet/logs'), { status: 200, body: { lines: [], unreachable: [] } });
  const badTail = await get(cluster, '/api/v1/functions/quiet/logs?tail=0');
  t.is(badTail.status, 400);
  t.regex(badTail.body.error.message, /tail must be an integer in 1\.\.10000 lines, got "0"/);
  t.regex((await get(cluster, '/api/v1/functions/quiet/logs?since=yesterday')).body.error.message, /since must be an integer/);
  t.regex((await get(cluster, '/api/v1/functions/quiet/logs?lines=3')).body.error.message, /unknown query parameter "lines"/);
  t.is((await fetch(`${cluster.adminUrl}/api/v1/functions/quiet/logs`, { method: 'DELETE' })).status, 405);
});
