// Sandbox faults under load, against a real `dirigent up --runtime process` (no stem pool, so each sandbox is
// its own command's process): a function of two sandboxes takes an open-loop load of 20 req/s while one sandbox
// process is SIGKILLed, and later while one is stalled (SIGSTOP for 3 s, then SIGCONT). Each case prints what was
// sent, what succeeded and what failed by status, and when the last failure was. Promised: every request is
// answered (none reset, none timed out at the client), failures are only 502 (in flight on the killed one) or
// 504 (held by the stalled one past the function's timeout), and the function serves every request again.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenLoop, type LoadSummary } from './fixtures/open-loop.js';
import { startUp } from './fixtures/up-process.js';

const TOKEN = 'sandbox-faults-token';
const RATE_PER_S = 20;
/** The function's per-invocation timeout, ms: what a request held by a stalled sandbox waits at most. */
const TIMEOUT_MS = 1000;

const SERVER = `import { createServer } from 'node:http';
createServer((req, res) => {
  req.resume();
  req.on('end', () => setTimeout(() => res.end('served ' + process.pid), 20));
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

/** Pids of the processes running `script`, with their sandbox ids (from their environment). */
async function sandboxProcesses(script: string): Promise<{ pid: number; sandboxId: string }[]> {
  const found: { pid: number; sandboxId: string }[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').includes(script)) continue;
      const sandboxId = /(?:^|\0)DIRIGENT_SANDBOX_ID=([^\0]+)/.exec(readFileSync(`/proc/${name}/environ`, 'utf8'))?.[1];
      if (sandboxId !== undefined) found.push({ pid: Number(name), sandboxId });
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

const line = (what: string, s: LoadSummary) => `${what}: sent ${s.sent}, 200: ${s.ok}, failed ${JSON.stringify(s.failed)}, last failure ${s.lastFailureMs} ms after the fault, max latency ${s.maxLatencyMs} ms`;

test.serial('a sandbox process SIGKILLed, then one stalled, under load: every request answered, only 502/504 for the ones it held, served again after', async (t) => {
  t.timeout(240_000);
  const dir = await mkdtemp(join(tmpdir(), 'dirigent-sandbox-faults-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const script = join(dir, 'server.mjs');
  await writeFile(script, SERVER);
  const up = await startUp(t, ['--workers', '1', '--runtime', 'process', '--pool', '0', '--data-dir', join(dir, 'state')], { DIRIGENT_TOKEN: TOKEN }, 90_000);
  const spec = { name: 'web', runtime: 'process', source: { kind: 'process', command: process.execPath, args: [script] }, concurrency: 1, timeoutMs: TIMEOUT_MS, scaling: { minScale: 2, maxScale: 2 } };
  const created = await fetch(`${up.info.admin}/api/v1/functions`, { method: 'POST', body: JSON.stringify(spec), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(60_000) });
  t.is(created.status, 201, await created.text());
  const waitForTwo = async () => {
    for (let i = 0; i < 300; i++) {
      const found = await sandboxProcesses(script);
      if (found.length === 2) return found;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('two sandbox processes never ran');
  };
  const before = await waitForTwo();
  const port = Number(new URL(up.info.compat).port);
  const load = new OpenLoop({ targets: [{ name: 'dp1', port }], ratePerS: RATE_PER_S, functionName: 'web', timeoutMs: 15_000 });
  t.teardown(() => load.stop());
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  // 1. SIGKILL of a sandbox process.
  await pause(2000);
  const killedAt = Date.now();
  process.kill(before[0]!.pid, 'SIGKILL');
  await pause(8000);
  const replaced = (await sandboxProcesses(script)).filter((p) => p.sandboxId !== before[0]!.sandboxId);
  const killedUntil = Date.now();

  // 2. A stalled sandbox: stopped for 3 s, then continued.
  const [victim] = await sandboxProcesses(script);
  const stalledAt = Date.now();
  process.kill(victim!.pid, 'SIGSTOP');
  await pause(3000);
  process.kill(victim!.pid, 'SIGCONT');
  await pause(5000);
  const settledFrom = Date.now();
  await pause(2000);
  const settledUntil = Date.now();
  // Judged once every request sent is answered.
  await load.stop();
  const killed = load.summary(killedAt, killedUntil);
  const stalled = load.summary(stalledAt, settledFrom);
  const settled = load.summary(settledFrom, settledUntil);

  t.log(line('SIGKILL of a sandbox process', killed));
  t.log(`its replacement: ${replaced.length} sandbox process(es) besides the killed one's id 8 s later`);
  t.log(line('a sandbox stalled 3 s (SIGSTOP)', stalled));
  t.log(line('after both', settled));
  const all = load.records;
  t.deepEqual(all.filter((r) => r.status === 0).map((r) => r.error), [], 'every request answered');
  t.deepEqual([...new Set(all.map((r) => r.status))].filter((s) => ![200, 502, 503, 504].includes(s)), []);
  t.is(settled.ok, settled.sent, 'served again');
  t.true(replaced.length === 2, 'the killed sandbox was replaced (min scale 2)');
});
